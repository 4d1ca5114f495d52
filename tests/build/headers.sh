#!/bin/sh
# Each public header compiles alone, as C11, C99 and as C++11, with warnings as
# errors: no header depends on another being included first. All of them
# together (the umbrella lfipc.h) compile too. While a component is still
# being written, lfipc.h may name a header that does not exist yet: that is
# reported as SKIP for lfipc.h, not as a failure of the others.
set -u
top=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
CC=${CC:-cc}
CXX=${CXX:-c++}
fail=0
n=0
skip=0
compile() { # lang std header
	printf '#include <%s>\nint lfipc_header_test_dummy;\n' "$3" |
		$4 -std="$2" -Wall -Wextra -Werror -pedantic -fsyntax-only \
			-I"$top/include" -x "$1" -
}
for h in "$top"/include/lfipc.h "$top"/include/lfipc/*.h; do
	rel=${h#"$top"/include/}
	missing=
	for inc in $(sed -n 's/^#include <\(lfipc\/[a-z_]*\.h\)>.*/\1/p' "$h"); do
		[ -f "$top/include/$inc" ] || missing="$missing $inc"
	done
	if [ -n "$missing" ]; then
		echo "SKIP: $rel (not written yet:$missing)"
		skip=$((skip + 1))
		continue
	fi
	n=$((n + 1))
	if ! compile c c11 "$rel" "$CC"; then
		echo "FAIL (C): $rel"; fail=$((fail + 1))
	fi
	# C99 too: no C11-only construct such as a repeated typedef.
	if ! compile c c99 "$rel" "$CC"; then
		echo "FAIL (C99): $rel"; fail=$((fail + 1))
	fi
	if command -v "$CXX" >/dev/null 2>&1; then
		if ! compile c++ c++11 "$rel" "$CXX"; then
			echo "FAIL (C++): $rel"; fail=$((fail + 1))
		fi
	fi
done
echo "$n headers: $((n - fail > 0 ? n - fail : 0)) passed, $fail failures, $skip skipped"
[ "$fail" -eq 0 ] && [ "$n" -gt 0 ]
