#!/bin/sh
# Names are any bytes (another process chose them): --json output stays
# valid UTF-8 JSON (bytes that are not UTF-8 as \udcXX, Python's
# surrogateescape), and text output prints every byte that is not
# printable ASCII as \xXX, so a name adds no line and no terminal escape.
. "$(dirname "$0")/lib.sh"

R=/$P-a
run 0 "$FIX" names "$R"

run 0 "$LFIPC" --json show "$R"
python3 - "$T/out" <<'PY' || { cat "$T/out"; fail "--json show: names not kept"; }
import json, sys
raw = open(sys.argv[1], 'rb').read()
j = json.loads(raw.decode('utf-8'))   # strict UTF-8, then JSON
got = sorted(o['name'].encode('utf-8', 'surrogateescape') for o in j['objects'])
want = sorted([b'quote"back\\slash\nnl\x1b[31mred', b'caf\xe9', b'ok\xc3\xa9',
               b'\xff', b'x\xed\xa0\x80'])
sys.exit(0 if got == want else 1)
PY

run 0 "$LFIPC" show "$R"
# header line, column line, five objects: the newline forged no line
[ "$(wc -l <"$T/out")" -eq 7 ] || { cat "$T/out"; fail "show: a name added lines"; }
LC_ALL=C grep -q "$(printf '\033')" "$T/out" && fail "show printed an ESC"
out_has 'quote"back\\\\slash\\x0anl\\x1b\[31mred '
out_has 'caf\\xe9 '
out_has 'ok\\xc3\\xa9 '
out_has '^\\xff '
out_has 'x\\xed\\xa0\\x80 '

# A region whose file name holds a newline: one line in ls, one name in
# --json ls.
R2=$(printf '/%s-nl\nfake 1 1 1 1 stale' "$P")
run 0 "$FIX" create "$R2"
run 0 "$LFIPC" ls "$P-*"
[ "$(wc -l <"$T/out")" -eq 3 ] || { cat "$T/out"; fail "ls: a name added lines"; }
out_has "^/$P-nl\\\\x0afake "
run 0 "$LFIPC" --json ls "$P-*"
json_check "sorted(e['name'] for e in j) == sorted(['$R', '/$P-nl\\nfake 1 1 1 1 stale'])"
run 0 "$LFIPC" rm "$R2"
out_has "removed /$P-nl\\\\x0afake"
exit 0
