#!/bin/sh
# Installs the build and test dependencies that are missing, with apt-get
# (through sudo when not root). Does nothing when everything is present.
# Each dependency is found the way the build uses it: pkg-config for inih,
# Check, jansson and libmicrohttpd, the header and library for libev, the
# command for valgrind (make check runs one daemon scenario under memcheck)
# and for promtool and prometheus (the metrics tests).
# `deps.sh fuzz` also makes sure clang can build a libFuzzer target.
set -eu

missing=""
need() { missing="$missing $1"; }

command -v cc >/dev/null 2>&1 || need gcc
command -v make >/dev/null 2>&1 || need make
command -v pkg-config >/dev/null 2>&1 || need pkg-config

have_pc() { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "$1"; }
have_hdr_lib() {
    # $1 header, $2 library (without lib prefix)
    printf '#include <%s>\nint main(void){return 0;}\n' "$1" |
        ${CC:-cc} -x c - -o /dev/null "-l$2" >/dev/null 2>&1
}

# gcc only recommends the C library's headers; a --no-install-recommends
# system may lack them.
have_hdr_lib stdio.h c || need libc6-dev
have_pc inih || need libinih-dev
have_pc check || need check
have_hdr_lib ev.h ev || need libev-dev
command -v valgrind >/dev/null 2>&1 || need valgrind
have_pc jansson || need libjansson-dev
have_pc libmicrohttpd || need libmicrohttpd-dev
# promtool checks the metrics text; the prometheus server scrapes it.
command -v promtool >/dev/null 2>&1 || need prometheus

if [ "${1:-}" = fuzz ]; then
    printf 'int LLVMFuzzerTestOneInput(const char *d, long n)'\
'{(void)d;(void)n;return 0;}\n' |
        clang -fsanitize=fuzzer -x c - -o /dev/null >/dev/null 2>&1 ||
        need "clang libclang-rt-dev"
fi

[ -z "$missing" ] && exit 0

echo "deps: installing:$missing" >&2
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "deps: missing packages:$missing" >&2
    echo "deps: not root and no sudo: install them with apt-get as root" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "deps: no apt-get here: install the equivalents of:$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
# shellcheck disable=SC2086 # word splitting of the package list is intended
if ! $SUDO apt-get install -y -qq $missing >&2; then
    echo "deps: apt-get could not install:$missing" >&2
    exit 1
fi
