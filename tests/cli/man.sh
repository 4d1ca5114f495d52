#!/bin/sh
# lfipc(1) names exactly the commands, options and exit codes that
# `lfipc --help` lists: every one of the help's in the man page (synopsis
# and its section) and the other way round.
. "$(dirname "$0")/lib.sh"

page="$(dirname "$0")/../../man/lfipc.1"
[ -f "$page" ] || fail "no $page"
run 0 "$LFIPC" --help

# The help: "  verb ..." lines under "Commands:", "--option" under
# "Options:", "N text" after "Exit status:" (separated by ':' or ';').
sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z]*\) .*/\1/p' "$T/out" |
	sort -u >"$T/help.verbs"
sed -n '/^Options:/,/^$/s/.*\(--[a-z-]*\).*/\1/p' "$T/out" |
	sort -u >"$T/help.opts"
sed -n '/^Exit status:/,/^[^0-9]*$/p' "$T/out" | tr '\n' ' ' |
	grep -o '[:;] [0-9] ' | tr -dc '0-9\n ' | tr -s ' ' '\n' |
	sed '/^$/d' | sort -u >"$T/help.exit"

# The page: the first word of each .TP item in COMMANDS, the --options of
# the items in OPTIONS, the codes in EXIT STATUS.
section() { # NAME: the lines of section NAME of the page
	awk -v s="$1" '/^\.SH /{on = ($0 == ".SH " s); next} on' "$page"
}
section COMMANDS | awk 'tp && /^\.BI? /{print $2} {tp = /^\.TP/}' |
	sort -u >"$T/man.verbs"
section OPTIONS | awk 'tp {print} {tp = /^\.TP/}' | sed 's/\\-/-/g' |
	grep -o -- '--[a-z-]*' | sort -u >"$T/man.opts"
section "EXIT STATUS" | awk 'tp && /^\.B [0-9]+$/{print $2} {tp = /^\.TP/}' |
	sort -u >"$T/man.exit"
section SYNOPSIS | sed -n 's/^\.B \([a-z][a-z]*\)$/\1/p' | grep -vx lfipc |
	sort -u >"$T/man.synopsis"

for what in verbs opts exit; do
	[ -s "$T/help.$what" ] || fail "no $what found in lfipc --help"
	if ! cmp -s "$T/help.$what" "$T/man.$what"; then
		echo "lfipc --help (<) and man/lfipc.1 (>) differ in $what:"
		diff "$T/help.$what" "$T/man.$what"
		fail "man/lfipc.1 out of step with lfipc --help"
	fi
done
cmp -s "$T/help.verbs" "$T/man.synopsis" || {
	diff "$T/help.verbs" "$T/man.synopsis"
	fail "the SYNOPSIS of man/lfipc.1 does not list every command"
}
exit 0
