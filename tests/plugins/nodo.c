/* Test plugin without job_do: loading it must fail. */
int job_init(const char *arg);

int
job_init(const char *arg)
{
    (void)arg;
    return 0;
}
