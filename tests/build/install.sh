#!/bin/sh
# `make install DESTDIR=...` installs the headers, the library and lfipc.pc,
# and a program built against the installed tree with
# `pkg-config --cflags --libs lfipc` (and nothing from the source tree)
# compiles, links and runs. Run from the build directory (make check does).
set -u
MAKE=${MAKE:-make}
CC=${CC:-cc}
if ! command -v pkg-config >/dev/null 2>&1; then
	echo "SKIP: no pkg-config"; exit 77
fi
[ -f Makefile ] || { echo "run from the build directory"; exit 99; }
tmp=$(mktemp -d /tmp/lfipc-inst.XXXXXX) || exit 99
trap 'rm -rf "$tmp"' EXIT
prefix=$(sed -n 's/^prefix = //p' Makefile)
libdir=$(sed -n 's/^libdir = //p' Makefile | sed "s|\${exec_prefix}|$prefix|; s|\$(exec_prefix)|$prefix|")
san=$(sed -n 's/^SAN_LDFLAGS = //p' Makefile)
if ! $MAKE install DESTDIR="$tmp" >"$tmp/install.log" 2>&1; then
	cat "$tmp/install.log"; echo "FAIL: make install"; exit 1
fi
root=$tmp$prefix
fail=0
for f in include/lfipc.h include/lfipc/common.h include/lfipc/region.h \
	lib/pkgconfig/lfipc.pc; do
	[ -f "$root/$f" ] || { echo "FAIL: $f not installed"; fail=1; }
done
ls "$tmp$libdir"/liblfipc.so* >/dev/null 2>&1 || { echo "FAIL: no shared library"; fail=1; }
[ -f "$tmp$libdir/liblfipc.a" ] || { echo "FAIL: no static library"; fail=1; }
[ -d "$root/include/lfipc/internal" ] && { echo "FAIL: internal headers installed"; fail=1; }
[ "$fail" -eq 0 ] || exit 1

# Build against the installed tree only.
cat >"$tmp/t.c" <<'C'
#include <errno.h>
#include <stdio.h>
#include <lfipc/region.h>
int main(void)
{
	lfipc_region *r;
	lfipc_region_info info;

	if (lfipc_region_create(NULL, 1 << 20, 0, &r) != 0)
		return 1;
	if (lfipc_region_stats(r, &info) != 0 || info.participants != 1)
		return 2;
	if (lfipc_object_remove(r, "none") != -ENOENT)
		return 3;
	lfipc_region_close(r);
	puts(lfipc_strerror(-EPROTO));
	return 0;
}
C
export PKG_CONFIG_PATH="$tmp$libdir/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$tmp"
flags=$(pkg-config --cflags --libs lfipc) || { echo "FAIL: pkg-config"; exit 1; }
echo "pkg-config --cflags --libs lfipc: $flags"
# shellcheck disable=SC2086
if ! $CC -std=c11 -Wall -Werror $san "$tmp/t.c" -o "$tmp/t" $flags; then
	echo "FAIL: compile against the installed tree"; exit 1
fi
# internal symbols must not be exported
if nm -D "$tmp$libdir"/liblfipc.so | grep -q ' T lfipc__'; then
	echo "FAIL: internal symbols exported:"
	nm -D "$tmp$libdir"/liblfipc.so | grep ' T lfipc__'; exit 1
fi
LD_LIBRARY_PATH="$tmp$libdir" "$tmp/t" || { echo "FAIL: run"; exit 1; }
echo "PASS: installed headers, library and lfipc.pc work"
