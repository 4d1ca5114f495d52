#!/bin/sh
# The repository's documentation stands alone: the README, HACKING.md,
# doc/*.md and the hand-written man pages point at nothing outside the
# source tree (no /work/..., ../shared, or notes kept elsewhere), and every
# file path they mention is in the tree. A path is looked up from the top
# of the tree, then from the directories such paths are usually written
# relative to (include/, lib/, bench/, tests/, the document's own). A file
# that does not exist is accepted only in a directory that does (the "how
# to add a peer" recipes name the file you would write, e.g.
# bench/peers/spinlock.c); a path whose directory is nowhere in the tree
# (findings/..., research/...) is a reference to somewhere else.
set -u
top=${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$top" || exit 99
fail=0
docs=$(ls README.md HACKING.md doc/*.md man/*.[0-9] 2>/dev/null)
[ -n "$docs" ] || { echo "no documents found in $top"; exit 99; }
for d in $docs; do
	if grep -n -e '/work/' -e '\.\./shared' -e 'shared/\(DESIGN\|API\|STYLE\|research\|findings\|model\)' "$d"; then
		echo "FAIL: $d points outside the repository (above)"
		fail=1
	fi
	dir=$(dirname "$d")
	# Path-like words: a '/' and a source or text extension.
	for p in $(grep -oE '[A-Za-z0-9_.*~-]*(/[A-Za-z0-9_.*-]+)+\.(md|c|h|sh|am|ac|awk|py|pml|sym|in)\b' "$d" | sort -u); do
		case $p in
		/*) continue ;; # absolute paths are system files (/dev/shm/...)
		sys/* | linux/* | bits/*) continue ;; # system headers
		esac
		found=
		# commands run from a build tree (build/release) say ../../x
		q=$p
		while [ "${q#../}" != "$q" ]; do q=${q#../}; done
		[ -e "$q" ] && found=1
		for base in . include lib bench tests "$dir"; do
			# shellcheck disable=SC2086 # the path may be a glob
			for f in $base/$p; do
				[ -e "$f" ] && { found=1; break; }
			done
			[ -n "$found" ] && break
		done
		if [ -z "$found" ]; then
			pd=$(dirname "$p")
			for base in . include lib bench tests "$dir"; do
				[ -d "$base/$pd" ] && { found=1; break; }
			done
		fi
		if [ -z "$found" ]; then
			echo "FAIL: $d mentions $p, whose directory is not in the repository"
			fail=1
		fi
	done
done
[ "$fail" -eq 0 ] && echo "PASS: $(echo "$docs" | wc -w) documents mention only files of the repository"
exit $fail
