#!/bin/sh
# Installs the dependencies that are missing, with apt-get (through sudo
# when not root); does nothing when everything is present.
#   deps.sh [run]  building and running workersd (make, make run): a C
#                  compiler and its headers, make, pkg-config, libev, inih,
#                  jansson (control replies, status JSON), libmicrohttpd
#                  (the metrics endpoint)
#   deps.sh test   that, and what make check needs: Check, valgrind (one
#                  daemon scenario runs under memcheck), promtool and a
#                  prometheus server (the metrics tests), unshare and
#                  setpriv (util-linux), and for the install test
#                  readelf (binutils: the installed library's SONAME),
#                  systemd-analyze (systemd: verifies the units), groff
#                  (groff-base: lints the man pages) and man (man-db:
#                  systemd-analyze verify reads each Documentation= page)
#   deps.sh fuzz   run's, and clang with libFuzzer (make fuzz)
# Each dependency is found the way the build uses it: pkg-config for inih,
# Check, libmicrohttpd and jansson, the header and library for libev, the
# command for the tools. Packages come without their recommends (valgrind's
# would bring gdb and python3). Not root: sudo, or the command in $SUDO
# (SUDO=doas); without it, the script says what is missing and the command
# to run as root, and fails.
set -eu

what=${1:-run}
case $what in
run | test | fuzz) ;;
*)
    echo "usage: deps.sh [run|test|fuzz]" >&2
    exit 64
    ;;
esac

missing=""
need() { missing="$missing $1"; }
have() { command -v "$1" >/dev/null 2>&1; }
have_pc() { have pkg-config && pkg-config --exists "$1"; }
have_hdr_lib() {
    # $1 header, $2 library (without lib prefix)
    printf '#include <%s>\nint main(void){return 0;}\n' "$1" |
        ${CC:-cc} -x c - -o /dev/null "-l$2" >/dev/null 2>&1
}

have cc || need gcc
have make || need make
have pkg-config || need pkg-config
# gcc only recommends the C library's headers, which a system installed
# without recommends may lack.
have_hdr_lib stdio.h c || need libc6-dev
have_pc inih || need libinih-dev
have_pc jansson || need libjansson-dev
have_hdr_lib ev.h ev || need libev-dev
have_pc libmicrohttpd || need libmicrohttpd-dev

case $what in
test)
    have_pc check || need check
    have valgrind || need valgrind
    have readelf || need binutils
    have promtool || need prometheus
    { have unshare && have setpriv; } || need util-linux
    have systemd-analyze || need systemd
    have groff || need groff-base
    have man || need man-db
    ;;
fuzz)
    printf 'int LLVMFuzzerTestOneInput(const char *d, long n)'\
'{(void)d;(void)n;return 0;}\n' |
        clang -fsanitize=fuzzer -x c - -o /dev/null >/dev/null 2>&1 ||
        need "clang libclang-rt-dev"
    ;;
esac

[ -z "$missing" ] && exit 0

install="apt-get install -y --no-install-recommends$missing"
if ! have apt-get; then
    echo "deps: missing:$missing" >&2
    echo "deps: no apt-get here: install their equivalents" >&2
    exit 1
fi
sudo=${SUDO:-sudo}
if [ "$(id -u)" -eq 0 ]; then
    up=""
elif have "$sudo"; then
    up=$sudo
else
    echo "deps: missing:$missing" >&2
    echo "deps: not root, and no $sudo: run as root:" >&2
    echo "    apt-get update && $install" >&2
    exit 1
fi
echo "deps: installing:$missing" >&2
# sudo resets the environment: DEBIAN_FRONTEND goes through env.
$up env DEBIAN_FRONTEND=noninteractive apt-get update -qq || true
# shellcheck disable=SC2086 # word splitting of $install is intended
if ! $up env DEBIAN_FRONTEND=noninteractive $install -qq >&2; then
    echo "deps: apt-get could not install:$missing; as root, run:" >&2
    echo "    apt-get update && $install" >&2
    exit 1
fi
