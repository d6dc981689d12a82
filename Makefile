# workersd and libworkers. `make` builds everything under $(BUILD)/;
# `make run` installs what building and running needs if it is missing
# (scripts/deps.sh), `make check` what the tests need too, then runs them.
# Sources are found by wildcard: a new .c file in a folder needs no edit here.

PREFIX     ?= /usr/local
BUILD      ?= build
# One spelling per object: an absolute BUILD inside the tree (the install
# test passes one) is made relative. Else the .d files it writes name
# targets the relative build never matches, and a changed header leaves
# stale objects behind (struct layouts that disagree between objects).
override BUILD := $(patsubst $(CURDIR)/%,%,$(BUILD))
CC         ?= cc
PKG_CONFIG ?= pkg-config

VERSION    := 2.0.0
SOMAJOR    := 2

OPT        ?= -O2 -g
SAN        ?=
WERROR     ?= -Werror
WARN       := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
              -Wmissing-prototypes -Wformat=2 $(WERROR)
BASEFLAGS  := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(SAN) -MMD -MP \
              -fno-omit-frame-pointer
LDSAN      := $(SAN)

INIH_CFLAGS  = $(shell $(PKG_CONFIG) --cflags inih 2>/dev/null)
INIH_LIBS    = $(shell $(PKG_CONFIG) --libs inih 2>/dev/null || echo -linih)
CHECK_CFLAGS = $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS   = $(shell $(PKG_CONFIG) --libs check 2>/dev/null || echo -lcheck)
EV_LIBS      = -lev
JANSSON_CFLAGS = $(shell $(PKG_CONFIG) --cflags jansson 2>/dev/null)
JANSSON_LIBS   = $(shell $(PKG_CONFIG) --libs jansson 2>/dev/null || echo -ljansson)
MHD_CFLAGS   = $(shell $(PKG_CONFIG) --cflags libmicrohttpd 2>/dev/null)
MHD_LIBS     = $(shell $(PKG_CONFIG) --libs libmicrohttpd 2>/dev/null || \
                 echo -lmicrohttpd)
# The daemon's metrics (cmd/workersd/metrics/): status JSON and HTTP.
METRICS_CFLAGS = $(JANSSON_CFLAGS) $(MHD_CFLAGS)
METRICS_LIBS   = $(JANSSON_LIBS) $(MHD_LIBS)

# ---- library -------------------------------------------------------------
LIB_SRC  := $(wildcard lib/*.c lib/*/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB_A    := $(BUILD)/libworkers.a
LIB_SO   := $(BUILD)/libworkers.so.$(VERSION)
LIB_CFLAGS := $(BASEFLAGS) -fPIC -fvisibility=hidden -Ilib $(CFLAGS)

# ---- daemon --------------------------------------------------------------
D_SRC    := $(wildcard cmd/workersd/*.c cmd/workersd/*/*.c)
D_OBJ    := $(D_SRC:%.c=$(BUILD)/%.o)
DAEMON   := $(BUILD)/workersd
D_CFLAGS := $(BASEFLAGS) -Ilib -Icmd/workersd $(INIH_CFLAGS) $(METRICS_CFLAGS) \
            $(CFLAGS)
# -rdynamic and the whole archive: plugins call back into the library's
# context functions without linking it themselves.
D_LIBS   := -Wl,--whole-archive $(LIB_A) -Wl,--no-whole-archive -rdynamic \
            $(INIH_LIBS) $(EV_LIBS) $(METRICS_LIBS) -ldl -lpthread -lm

# ---- workersctl: links the control module's path and request parsers
# (and the config loader, for durations, with the trust rule it applies)
# rather than a copy of them.
CTL_SRC  := $(wildcard cmd/workersctl/*.c)
CTL_OBJ  := $(CTL_SRC:%.c=$(BUILD)/%.o) \
            $(addprefix $(BUILD)/cmd/workersd/,control/path.o \
                control/request.o config.o trust.o metrics/listen.o)
CTL      := $(BUILD)/workersctl

# ---- plugins (example shipped, and the tests' own) -----------------------
PLUGIN_SRC := $(wildcard cmd/plugins/*.c)
PLUGINS    := $(PLUGIN_SRC:cmd/plugins/%.c=$(BUILD)/plugins/%.so)
TPLUG_SRC  := $(wildcard tests/plugins/*.c)
TPLUGINS   := $(TPLUG_SRC:tests/plugins/%.c=$(BUILD)/tests/plugins/%.so)
PLUG_CFLAGS := $(BASEFLAGS) -fPIC -Ilib $(CFLAGS)

# ---- tests ---------------------------------------------------------------
T_SRC    := $(wildcard tests/*.c)
T_OBJ    := $(T_SRC:%.c=$(BUILD)/%.o)
T_BIN    := $(BUILD)/tests/check_workers
T_CFLAGS := $(BASEFLAGS) -Ilib -Icmd/workersd -I$(BUILD)/tests \
            $(CHECK_CFLAGS) $(INIH_CFLAGS) $(METRICS_CFLAGS) \
            -DWORKERS_BUILD_DIR='"$(abspath $(BUILD))"' \
            -DWORKERS_SRC_DIR='"$(CURDIR)"' -DWORKERS_CC='"$(CC)"' \
            -DWORKERS_OPT='"$(OPT)"' -DWORKERS_SAN='"$(SAN)"' $(CFLAGS)
# The suite runner links the daemon's objects too (minus main) so that the
# config loader and job kinds can be unit-tested.
D_LIBOBJ := $(filter-out $(BUILD)/cmd/workersd/main.o,$(D_OBJ))
T_LIBS   := $(D_LIBOBJ) -Wl,--whole-archive $(LIB_A) -Wl,--no-whole-archive \
            -rdynamic $(CHECK_LIBS) $(INIH_LIBS) $(EV_LIBS) $(METRICS_LIBS) \
            -ldl -lpthread -lm

# ---- benchmarks ----------------------------------------------------------
# Not part of `make check`: `make bench` builds and runs it. It links the
# daemon's objects (minus main) for the command job; section 7 runs
# workersd with the test plugin soak_count.so.
B_SRC    := $(wildcard tests/bench/*.c)
B_OBJ    := $(B_SRC:%.c=$(BUILD)/%.o)
B_BIN    := $(BUILD)/bench/bench
B_CFLAGS := $(BASEFLAGS) -Ilib -Icmd/workersd $(INIH_CFLAGS) \
            $(METRICS_CFLAGS) $(CFLAGS)

# ---- test tools: programs a suite runs, linked apart from the runner ------
# (tests/tools/noalloc replaces malloc, which must not happen in the runner.)
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOLS    := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tests/tools/%)

.PHONY: all check check-asan check-tsan bench run deps test-deps clean \
        format install uninstall
all: $(LIB_A) $(LIB_SO) $(DAEMON) $(CTL) $(PLUGINS)

$(BUILD)/lib/%.o: lib/%.c
	@mkdir -p $(@D)
	$(CC) $(LIB_CFLAGS) -c -o $@ $<

$(LIB_A): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

$(LIB_SO): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libworkers.so.$(SOMAJOR) $(LDSAN) -o $@ $^ \
	    -lpthread
	ln -sf libworkers.so.$(VERSION) $(BUILD)/libworkers.so.$(SOMAJOR)
	ln -sf libworkers.so.$(SOMAJOR) $(BUILD)/libworkers.so

$(BUILD)/cmd/%.o: cmd/%.c
	@mkdir -p $(@D)
	$(CC) $(D_CFLAGS) -c -o $@ $<

$(DAEMON): $(D_OBJ) $(LIB_A)
	$(CC) $(LDSAN) -o $@ $(D_OBJ) $(D_LIBS)

$(CTL): $(CTL_OBJ) $(LIB_A)
	$(CC) $(LDSAN) -o $@ $(CTL_OBJ) $(LIB_A) $(INIH_LIBS) $(JANSSON_LIBS) \
	    -lpthread

$(BUILD)/plugins/%.so: cmd/plugins/%.c lib/workers.h
	@mkdir -p $(@D)
	$(CC) $(PLUG_CFLAGS) -shared -o $@ $<

$(BUILD)/tests/plugins/%.so: tests/plugins/%.c lib/workers.h
	@mkdir -p $(@D)
	$(CC) $(PLUG_CFLAGS) -shared -o $@ $<

# The runner's suite list is generated from the make_*_suite functions that
# tests/check_*.c define, so adding a suite needs no edit elsewhere.
$(BUILD)/tests/suites.h: $(wildcard tests/check_*.c)
	@mkdir -p $(@D)
	grep -ho 'make_[a-z0-9_]*_suite' $^ | sort -u | \
	    sed 's/.*/WORKERS_SUITE(&)/' > $@.tmp && mv $@.tmp $@

$(BUILD)/tests/%.o: tests/%.c $(BUILD)/tests/suites.h
	@mkdir -p $(@D)
	$(CC) $(T_CFLAGS) -c -o $@ $<

$(T_BIN): $(T_OBJ) $(D_LIBOBJ) $(LIB_A)
	$(CC) $(LDSAN) -o $@ $(T_OBJ) $(T_LIBS)

deps:
	@scripts/deps.sh run

test-deps:
	@scripts/deps.sh test

# CK_DEFAULT_TIMEOUT bounds each test; the tests that need longer set their
# own. CK_RUN_SUITE/CK_RUN_CASE pick one suite/case. The bench is built
# too (not run), so that a change to the library's headers cannot break it
# unseen.
check: test-deps
	$(MAKE) all $(T_BIN) $(TPLUGINS) $(TOOLS) $(B_BIN)
	$(T_BIN)

check-asan: test-deps
	$(MAKE) check BUILD=build/asan OPT='-O1 -g' \
	    SAN='-fsanitize=address,undefined -fno-sanitize-recover=all'

check-tsan: test-deps
	$(MAKE) check BUILD=build/tsan OPT='-O1 -g' SAN='-fsanitize=thread'

$(BUILD)/tests/bench/%.o: tests/bench/%.c
	@mkdir -p $(@D)
	$(CC) $(B_CFLAGS) -c -o $@ $<

$(B_BIN): $(B_OBJ) $(D_LIBOBJ) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(LDSAN) -o $@ $(B_OBJ) $(D_LIBOBJ) $(LIB_A) $(INIH_LIBS) \
	    $(EV_LIBS) $(METRICS_LIBS) -ldl -lpthread -lm

$(BUILD)/tests/tools/%: tests/tools/%.c $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(BASEFLAGS) -Ilib $(CFLAGS) $(LDSAN) -o $@ $< $(LIB_A) -lpthread

bench: deps
	$(MAKE) all $(B_BIN) $(BUILD)/tests/plugins/soak_count.so OPT='-O2 -g'
	$(B_BIN) --daemon $(abspath $(DAEMON))

run: deps
	$(MAKE) all
	$(DAEMON) -c conf/pool.ini

format:
	clang-format -i $(wildcard lib/*.[ch] lib/*/*.[ch] cmd/*/*.[ch] \
	    cmd/*/*/*.[ch] tests/*.[ch] tests/*/*.[ch])

# ---- install -------------------------------------------------------------
# Every directory is overridable; DESTDIR is prepended to all of them, so
# `make install DESTDIR=/tmp/pkg PREFIX=/usr` stages a package. Files whose
# content names an installed path (the .pc file, the unit) are generated at
# install time from the variables in force, never reused from an earlier
# install with another PREFIX.
SBINDIR      ?= $(PREFIX)/sbin
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
MANDIR       ?= $(PREFIX)/share/man
SYSCONFDIR   ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR      ?= $(PREFIX)/lib/systemd/system
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
PLUGINDIR    ?= $(LIBDIR)/workers
INSTALL      ?= install

SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
            -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@SBINDIR@|$(SBINDIR)|g' \
            -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@VERSION@|$(VERSION)|g'

# conf/workersd.service is written twice: workersd.service runs pool.ini,
# the template workersd@.service runs NAME.ini for workersd@NAME.
UNIT_SUBST = $(SUBST) -e 's|@UNIT@|$(1)|g' -e 's|@CONFIG@|$(2)|g' \
    conf/workersd.service > $(BUILD)/install/$(3)

# The example configs: kept on a reinstall when they exist (edited).
CONFIGS := pool.ini plugin.ini

# The exact list `make uninstall` removes (symlinks included).
INSTALLED := $(SBINDIR)/workersd $(BINDIR)/workersctl \
    $(LIBDIR)/libworkers.a $(LIBDIR)/libworkers.so.$(VERSION) \
    $(LIBDIR)/libworkers.so.$(SOMAJOR) $(LIBDIR)/libworkers.so \
    $(INCLUDEDIR)/workers.h $(PKGCONFIGDIR)/workers.pc \
    $(UNITDIR)/workersd.service $(UNITDIR)/workersd@.service \
    $(CONFIGS:%=$(SYSCONFDIR)/workersd/%) \
    $(PLUGINS:$(BUILD)/plugins/%=$(PLUGINDIR)/%) \
    $(MANDIR)/man8/workersd.8 $(MANDIR)/man5/workersd.ini.5 \
    $(MANDIR)/man1/workersctl.1

install: all
	@mkdir -p $(BUILD)/install
	$(SUBST) lib/workers.pc.in > $(BUILD)/install/workers.pc
	$(call UNIT_SUBST,workersd,pool,workersd.service)
	$(call UNIT_SUBST,workersd@%i,%i,workersd@.service)
	cp conf/pool.ini $(BUILD)/install/pool.ini
	sed 's|^Plugin = .*|Plugin = $(PLUGINDIR)/example.so|' conf/plugin.ini \
	    > $(BUILD)/install/plugin.ini
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBDIR) \
	    $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/workersd \
	    $(DESTDIR)$(PLUGINDIR) $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	$(INSTALL) -m 755 $(DAEMON) $(DESTDIR)$(SBINDIR)/workersd
	$(INSTALL) -m 755 $(CTL) $(DESTDIR)$(BINDIR)/workersctl
	$(INSTALL) -m 644 $(LIB_A) $(DESTDIR)$(LIBDIR)/libworkers.a
	$(INSTALL) -m 755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/libworkers.so.$(VERSION)
	ln -sf libworkers.so.$(VERSION) \
	    $(DESTDIR)$(LIBDIR)/libworkers.so.$(SOMAJOR)
	ln -sf libworkers.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libworkers.so
	$(INSTALL) -m 644 lib/workers.h $(DESTDIR)$(INCLUDEDIR)/workers.h
	$(INSTALL) -m 644 $(BUILD)/install/workers.pc \
	    $(DESTDIR)$(PKGCONFIGDIR)/workers.pc
	$(INSTALL) -m 644 $(BUILD)/install/workersd.service \
	    $(BUILD)/install/workersd@.service $(DESTDIR)$(UNITDIR)/
	@# An edited config survives a reinstall.
	for c in $(CONFIGS); do \
	    if [ -e $(DESTDIR)$(SYSCONFDIR)/workersd/$$c ]; then \
	        echo "keeping $(DESTDIR)$(SYSCONFDIR)/workersd/$$c"; else \
	        $(INSTALL) -m 644 $(BUILD)/install/$$c \
	            $(DESTDIR)$(SYSCONFDIR)/workersd/$$c; fi; done
	$(if $(PLUGINS),$(INSTALL) -m 755 $(PLUGINS) $(DESTDIR)$(PLUGINDIR)/)
	$(INSTALL) -m 644 cmd/workersd/workersd.8 $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL) -m 644 cmd/workersd/workersd.ini.5 $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -m 644 cmd/workersctl/workersctl.1 $(DESTDIR)$(MANDIR)/man1/
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ] && \
	    command -v ldconfig >/dev/null 2>&1; then ldconfig; fi

# Removes exactly what install put there, then the folders install made
# that are left empty (a shared folder such as $(LIBDIR) is never empty).
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	for d in $(DESTDIR)$(SYSCONFDIR)/workersd $(DESTDIR)$(PLUGINDIR); do \
	    rmdir "$$d" 2>/dev/null || :; done

clean:
	rm -rf build

# ---- reliability: soak, valgrind, fuzz ----------------------------------
# tests/check_reliability.c runs short in `make check`; `make soak` runs its
# soak at full length (4 workers; the shell job 100,000 times, the plugin
# job 10^9 times: the issue asks for 10 million, which the pool does in
# about 50 ms here) with the storm and valgrind, and prints the figures the
# README quotes. `make check-valgrind` runs only the memcheck scenario.
# `make fuzz` fuzzes the config loader with libFuzzer for FUZZ_TIME seconds
# over conf/*.ini and tests/fuzz/seeds/ (the corpus it grows stays in
# $(BUILD)/fuzz/corpus); a crash, leak or broken contract fails it and
# leaves the input in $(BUILD)/fuzz/artifacts/.
SOAK_SHELL_RUNS  ?= 100000
SOAK_PLUGIN_RUNS ?= 1000000000
FUZZ_CC   ?= clang
FUZZ_TIME ?= 60
FUZZ_BIN  := $(BUILD)/fuzz/fuzz_config
FUZZ_SRC  := tests/fuzz/fuzz_config.c cmd/workersd/config.c \
             cmd/workersd/control/path.c \
             cmd/workersd/trust.c \
             cmd/workersd/metrics/listen.c $(LIB_SRC)

.PHONY: soak check-valgrind fuzz fuzz-deps
soak: test-deps
	$(MAKE) all $(T_BIN) $(TPLUGINS) $(TOOLS)
	WORKERS_SOAK_SHELL_RUNS=$(SOAK_SHELL_RUNS) \
	    WORKERS_SOAK_PLUGIN_RUNS=$(SOAK_PLUGIN_RUNS) \
	    CK_RUN_SUITE=reliability $(T_BIN)

check-valgrind: test-deps
	$(MAKE) all $(T_BIN) $(TPLUGINS) $(TOOLS)
	CK_RUN_SUITE=reliability CK_RUN_CASE=valgrind $(T_BIN)

$(FUZZ_BIN): $(FUZZ_SRC) $(wildcard lib/*.h cmd/workersd/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -O1 -g $(WARN) -Ilib -Icmd/workersd \
	    $(INIH_CFLAGS) $(METRICS_CFLAGS) -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=all -o $@ $(FUZZ_SRC) $(INIH_LIBS) -lpthread

fuzz-deps:
	@scripts/deps.sh fuzz

fuzz: fuzz-deps
	$(MAKE) $(FUZZ_BIN)
	@mkdir -p $(BUILD)/fuzz/corpus $(BUILD)/fuzz/artifacts
	cp conf/*.ini tests/fuzz/seeds/* $(BUILD)/fuzz/corpus/
	$(FUZZ_BIN) -max_total_time=$(FUZZ_TIME) -max_len=4096 -timeout=10 \
	    -dict=tests/fuzz/ini.dict -print_final_stats=1 \
	    -artifact_prefix=$(BUILD)/fuzz/artifacts/ $(BUILD)/fuzz/corpus

-include $(LIB_OBJ:.o=.d) $(D_OBJ:.o=.d) $(T_OBJ:.o=.d) $(B_OBJ:.o=.d) \
    $(TOOLS:=.d) $(CTL_OBJ:.o=.d)
