#!/bin/sh
# Each public header compiles alone, as C11 and as C++11, with warnings as
# errors: no header depends on another being included first.
set -u
top=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
CC=${CC:-cc}
CXX=${CXX:-c++}
fail=0
n=0
for h in "$top"/include/lfipc.h "$top"/include/lfipc/*.h; do
	rel=${h#"$top"/include/}
	n=$((n + 1))
	if ! printf '#include <%s>\nint lfipc_header_test_dummy;\n' "$rel" |
		$CC -std=c11 -Wall -Wextra -Werror -fsyntax-only -I"$top/include" -x c -; then
		echo "FAIL (C): $rel"; fail=$((fail + 1))
	fi
	if command -v "$CXX" >/dev/null 2>&1; then
		if ! printf '#include <%s>\nint lfipc_header_test_dummy;\n' "$rel" |
			$CXX -std=c++11 -Wall -Wextra -Werror -fsyntax-only -I"$top/include" -x c++ -; then
			echo "FAIL (C++): $rel"; fail=$((fail + 1))
		fi
	fi
done
echo "$((n - fail)) passed, $fail failed"
[ "$fail" -eq 0 ]
