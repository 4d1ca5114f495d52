#!/bin/sh
# The man pages: every symbol the library exports has a section-3 page of
# its own name (a .so link to its object's page, which documents it);
# every page formats without a warning; `make install` installs them, the
# hand-written lfipc(1) and lfipc(7), and every doc/*.md; and `man
# lfipc_queue_put` finds its page in the installed tree. Run from the
# build directory (make check does).
set -u
MAKE=${MAKE:-make}
top=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
[ -f Makefile ] || { echo "run from the build directory"; exit 99; }
[ -f man/man3.list ] || $MAKE man/man3.stamp >/dev/null || exit 99
fail=0

# 1. Every exported symbol (the version script, and the shared library's
#    dynamic symbol table when nm can read it) has a page.
syms=$(sed -n 's/^	\(lfipc_[A-Za-z0-9_]*\);$/\1/p' liblfipc.map)
[ -n "$syms" ] || { echo "no symbols in liblfipc.map"; exit 99; }
if command -v nm >/dev/null 2>&1 && [ -f .libs/liblfipc.so ]; then
	dyn=$(nm -D --defined-only .libs/liblfipc.so | awk '$3 ~ /^lfipc_/ { sub(/@.*/, "", $3); print $3 }' | sort -u)
	syms=$(printf '%s\n%s\n' "$syms" "$dyn" | sort -u)
fi
n=0
for s in $syms; do
	n=$((n + 1))
	page=man/man3/$s.3
	if [ ! -f "$page" ]; then
		echo "FAIL: $s has no man page (is it declared with LFIPC_API in include/lfipc/*.h?)"
		fail=1
		continue
	fi
	target=$(sed -n '1s/^\.so man3\///p' "$page")
	[ -n "$target" ] && page=man/man3/$target
	if ! grep -qx "\.SS $s()" "$page"; then
		echo "FAIL: $page does not document $s"
		fail=1
	fi
done
echo "$n exported symbols checked"
if grep -l '^Undocumented\.$' man/man3/*.3; then
	echo "FAIL: functions without a doc comment (pages above)"; fail=1
fi

# 2. Every page formats without a warning.
if command -v groff >/dev/null 2>&1; then
	for p in man/man3/*.3 "$top"/man/*.[17]; do
		head -1 "$p" | grep -q '^\.so ' && continue
		w=$(groff -man -ww -z -Tutf8 "$p" 2>&1)
		if [ -n "$w" ]; then
			echo "FAIL: $p: $w"; fail=1
		fi
	done
else
	echo "SKIP: no groff, pages not formatted"
fi

# 3. make install puts them (and doc/) where man and readers look.
tmp=$(mktemp -d /tmp/lfipc-man.XXXXXX) || exit 99
trap 'rm -rf "$tmp"' EXIT
if ! $MAKE install-data DESTDIR="$tmp" >"$tmp/install.log" 2>&1; then
	cat "$tmp/install.log"; echo "FAIL: make install-data"; exit 1
fi
m3=$(find "$tmp" -type d -name man3 | head -1)
[ -n "$m3" ] || { echo "FAIL: no man3 directory installed"; exit 1; }
mroot=$(dirname "$m3")
while read -r f; do
	[ -f "$m3/$f" ] || { echo "FAIL: man3/$f not installed"; fail=1; }
done <man/man3.list
for f in man1/lfipc.1 man7/lfipc.7; do
	[ -f "$mroot/$f" ] || { echo "FAIL: $f not installed"; fail=1; }
done
readme=$(find "$tmp" -name README.md | head -1)
if [ -z "$readme" ]; then
	echo "FAIL: README.md not installed in docdir"; fail=1
else
	for d in "$top"/doc/*.md; do
		[ -f "$(dirname "$readme")/$(basename "$d")" ] ||
			{ echo "FAIL: doc/$(basename "$d") not installed (add it to dist_doc_DATA in mk/doc.am)"; fail=1; }
	done
fi
if command -v man >/dev/null 2>&1; then
	for q in lfipc_queue_put lfipc_strerror lfipc_region_create; do
		# man -w follows the .so link to the object's page
		w=$(MANPATH=$mroot man -w "$q" 2>&1)
		case $w in
		"$m3"/lfipc_*.3*) ;;
		*) echo "FAIL: man -w $q: $w"; fail=1 ;;
		esac
		if ! MANPATH=$mroot MANWIDTH=80 man -P cat "$q" 2>/dev/null | grep -q "^   $q()"; then
			echo "FAIL: man $q does not show its description"; fail=1
		fi
	done
	MANPATH=$mroot man -w 7 lfipc >/dev/null 2>&1 || { echo "FAIL: man 7 lfipc"; fail=1; }
else
	echo "SKIP: no man command, lookups not tried"
fi
# -k: install-data put no programs in bindir, so uninstall-binPROGRAMS
# fails (no such directory); the data must still all go.
$MAKE -k uninstall DESTDIR="$tmp" >/dev/null 2>&1
left=$(find "$mroot" -type f 2>/dev/null | head -5)
[ -z "$left" ] || { echo "FAIL: make uninstall left $left"; fail=1; }
[ "$fail" -eq 0 ] && echo "PASS: man pages"
exit $fail
