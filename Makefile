# workersd and libworkers. `make` builds everything under $(BUILD)/;
# `make check` installs missing dependencies, then runs the test suite.
# Sources are found by wildcard: a new .c file in a folder needs no edit here.

PREFIX     ?= /usr/local
BUILD      ?= build
CC         ?= cc
PKG_CONFIG ?= pkg-config

VERSION    := 1.0.0
SOMAJOR    := 1

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
D_CFLAGS := $(BASEFLAGS) -Ilib -Icmd/workersd $(INIH_CFLAGS) $(CFLAGS)
# -rdynamic and the whole archive: plugins call back into the library's
# context functions without linking it themselves.
D_LIBS   := -Wl,--whole-archive $(LIB_A) -Wl,--no-whole-archive -rdynamic \
            $(INIH_LIBS) $(EV_LIBS) -ldl -lpthread

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
            $(CHECK_CFLAGS) $(INIH_CFLAGS) \
            -DWORKERS_BUILD_DIR='"$(abspath $(BUILD))"' \
            -DWORKERS_SRC_DIR='"$(CURDIR)"' $(CFLAGS)
# The suite runner links the daemon's objects too (minus main) so that the
# config loader and job kinds can be unit-tested.
D_LIBOBJ := $(filter-out $(BUILD)/cmd/workersd/main.o,$(D_OBJ))
T_LIBS   := $(D_LIBOBJ) -Wl,--whole-archive $(LIB_A) -Wl,--no-whole-archive \
            -rdynamic $(CHECK_LIBS) $(INIH_LIBS) $(EV_LIBS) -ldl -lpthread -lm

# ---- benchmarks ----------------------------------------------------------
# Not part of `make check`: `make bench` builds and runs it. It links the
# daemon's objects (minus main) for the command job.
B_SRC    := $(wildcard tests/bench/*.c)
B_OBJ    := $(B_SRC:%.c=$(BUILD)/%.o)
B_BIN    := $(BUILD)/bench/bench
B_CFLAGS := $(BASEFLAGS) -Ilib -Icmd/workersd $(INIH_CFLAGS) $(CFLAGS)

# ---- test tools: programs a suite runs, linked apart from the runner ------
# (tests/tools/noalloc replaces malloc, which must not happen in the runner.)
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOLS    := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tests/tools/%)

.PHONY: all check check-asan check-tsan bench run deps clean format \
        install uninstall
all: $(LIB_A) $(LIB_SO) $(DAEMON) $(PLUGINS)

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
	@scripts/deps.sh

# CK_DEFAULT_TIMEOUT bounds each test; the tests that need longer set their
# own. CK_RUN_SUITE/CK_RUN_CASE pick one suite/case.
check: deps
	$(MAKE) all $(T_BIN) $(TPLUGINS) $(TOOLS)
	$(T_BIN)

check-asan: deps
	$(MAKE) check BUILD=build/asan OPT='-O1 -g' \
	    SAN='-fsanitize=address,undefined -fno-sanitize-recover=all'

check-tsan: deps
	$(MAKE) check BUILD=build/tsan OPT='-O1 -g' SAN='-fsanitize=thread'

$(BUILD)/tests/bench/%.o: tests/bench/%.c
	@mkdir -p $(@D)
	$(CC) $(B_CFLAGS) -c -o $@ $<

$(B_BIN): $(B_OBJ) $(D_LIBOBJ) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(LDSAN) -o $@ $(B_OBJ) $(D_LIBOBJ) $(LIB_A) $(INIH_LIBS) \
	    $(EV_LIBS) -ldl -lpthread -lm

$(BUILD)/tests/tools/%: tests/tools/%.c $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(BASEFLAGS) -Ilib $(CFLAGS) $(LDSAN) -o $@ $< $(LIB_A) -lpthread

bench: deps
	$(MAKE) all $(B_BIN) OPT='-O2 -g'
	$(B_BIN) --daemon $(abspath $(DAEMON))

run: deps
	$(MAKE) all
	$(DAEMON) -c conf/pool.ini

format:
	clang-format -i $(wildcard lib/*.[ch] lib/*/*.[ch] cmd/*/*.[ch] \
	    cmd/*/*/*.[ch] tests/*.[ch] tests/*/*.[ch])

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(D_OBJ:.o=.d) $(T_OBJ:.o=.d) $(B_OBJ:.o=.d) \
    $(TOOLS:=.d)
