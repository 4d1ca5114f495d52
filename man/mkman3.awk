# man/mkman3.awk - make the section-3 man pages from the public headers.
#
# Usage: awk -v outdir=DIR -v version=V -v docdir=D -f mkman3.awk \
#            include/lfipc/*.h
#
# The header comments are the single source of the API reference: this
# script turns them into man pages at build time, so a function added to a
# header gets its page without anyone writing one. For each header:
#  - the file's top comment is the overview (its first line is
#    "lfipc/<stem>.h - <summary>");
#  - a "/* ---- Title ---- */" line starts a new group (one page per group;
#    the part before the first such line is the first group);
#  - a comment ("/** ... */" or "/* ... */") documents the declaration that
#    follows it: a function (a line starting with LFIPC_API, up to its
#    ';'), a #define, a typedef or an enum; prototypes that follow one
#    another directly share the comment above the first.
# Pages are per object. A group whose functions mostly share one
# lfipc_<word>_ prefix makes the page of that prefix (lfipc_lock,
# lfipc_sem, ...; the first group of a header with lfipc_<stem>_ functions
# makes lfipc_<stem>; a one-function group with no prefix is named after
# that function). The functions of a group with no majority (a header of
# status calls for every object, say) join the page of their own prefix.
# So every page gathers one object's functions, whatever header declares
# them; types and constants go to the page of their name's prefix. Every
# function also gets a page of its own name holding ".so man3/<page>.3",
# so `man <function>` finds its object's page.
#
# Output: outdir/man3/*.3 and outdir/man3.list (one file name a line:
# the pages, then the links, as installed), and outdir/functions.list
# ("<function> <page>" a line). Functions without a doc comment are
# reported on stderr and make the script exit 1.

function esc(s) {
	gsub(/\\/, "\\e", s)
	gsub(/-/, "\\-", s)
	if (s ~ /^[.']/)
		s = "\\&" s
	return s
}

# Strip the comment decoration from one line of a comment block.
function strip(s) {
	sub(/^[ \t]*\/\*\*?[ \t]?/, "", s)
	sub(/[ \t]*\*\/[ \t]*$/, "", s)
	sub(/^[ \t]*\*[ \t]?/, "", s)
	return s
}

# The roff of a "label: text" line: head (the macro that sets the label),
# then the text after the colon.
function labelled(head, m) {
	m = substr(m, index(m, ":") + 1)
	sub(/^[ \t]*/, "", m)
	return head (m != "" ? esc(m) "\n" : "")
}

# Render a comment (lines separated by "\n") as roff text. Blank lines
# separate paragraphs; "@arg: text" lines become a tagged list; "- item"
# lines a bulleted one; "Return:" and "Concurrency:" start a paragraph.
function render(text, fname,    n, i, l, out, m, inlist, intag, ind, arg) {
	n = split(text, L, "\n")
	out = ""
	inlist = 0
	intag = 0
	for (i = 1; i <= n; i++) {
		l = L[i]
		if (i == 1 && fname != "") {
			# kernel-doc's "name() - summary" first line
			if (index(l, fname "() - ") == 1)
				l = substr(l, length(fname) + 6)
			else if (index(l, fname "() -") == 1)
				l = substr(l, length(fname) + 5)
		}
		if (l ~ /^[ \t]*$/) {
			if (out != "" && out !~ /\.PP\n$/)
				out = out ".PP\n"
			inlist = 0
			intag = 0
			continue
		}
		match(l, /^[ \t]*/)
		ind = RLENGTH
		m = l
		sub(/^[ \t]*/, "", m)
		if (m ~ /^@[A-Za-z_0-9]+:/) {
			arg = substr(m, 2, index(m, ":") - 2)
			out = out labelled(".TP\n.I " arg "\n", m)
			intag = 1
			inlist = 0
			continue
		}
		if (m ~ /^- /) {
			out = out ".IP \\(bu 2\n" esc(substr(m, 3)) "\n"
			inlist = 1
			intag = 0
			continue
		}
		if (m ~ /^(Return|Returns|Concurrency|Context|Note|Errors):/) {
			if (out != "" && out !~ /\.PP\n$/)
				out = out ".PP\n"
			out = out labelled(".B " substr(m, 1, index(m, ":")) "\n", m)
			inlist = 0
			intag = 0
			continue
		}
		if ((inlist || intag) && ind == 0) {
			out = out ".PP\n"
			inlist = 0
			intag = 0
		}
		out = out esc(m) "\n"
	}
	sub(/\.PP\n$/, "", out)
	return out
}

# Lay a prototype out for the synopsis: one line if it fits in 72 columns,
# else broken after commas with the arguments aligned after the '('.
function layout(p, fname,    out, col, pad, n, i, parts, line) {
	p = esc(p)
	if (length(p) <= 72)
		line = p
	else {
		col = index(p, "(")
		pad = sprintf("%" col "s", "")
		n = split(p, parts, ", ")
		line = parts[1]
		out = ""
		for (i = 2; i <= n; i++) {
			if (length(line) + 2 + length(parts[i]) > 72) {
				out = out line ",\n"
				line = pad parts[i]
			} else
				line = line ", " parts[i]
		}
		line = out line
	}
	fname = esc(fname)
	sub(fname "\\(", "\\fB" fname "\\fP(", line)
	return line
}

function new_group(title) {
	flush_const()
	ngroups++
	gfile[ngroups] = FILENAME
	gtitle[ngroups] = title
	gnf[ngroups] = 0
	gconst[ngroups] = ""
	gtypes[ngroups] = ""
}

FNR == 1 {
	stem = FILENAME
	sub(/.*\//, "", stem)
	sub(/\.h$/, "", stem)
	fstem[FILENAME] = stem
	nfiles++
	files[nfiles] = FILENAME
	state = "pre"
	doc = ""
	lastdefine = 0
	new_group("")
}

# The top comment: the first /* block after the SPDX line.
state == "pre" && /^\/\* SPDX/ { next }
state == "pre" && /^\/\*/ {
	state = "top"
	topc = ""
	if ($0 !~ /^\/\*[ \t]*$/)
		topc = strip($0)
	if ($0 ~ /\*\//)
		state = "body"
	else
		next
}
state == "top" {
	if ($0 ~ /\*\//) {
		l = strip($0)
		if (l != "")
			topc = topc (topc == "" ? "" : "\n") l
		state = "body"
	} else
		topc = topc (topc == "" ? "" : "\n") strip($0)
	if (state == "body") {
		first = topc
		sub(/\n.*/, "", first)
		if (first ~ /^lfipc\/[a-z_0-9]+\.h - /) {
			fsummary[FILENAME] = substr(first, index(first, " - ") + 3)
			sub(/^[^\n]*\n?/, "", topc)
			# a summary may run on to the next line
			while (topc ~ /^[^\n]/ && fsummary[FILENAME] !~ /\.$/) {
				l = topc
				sub(/\n.*/, "", l)
				fsummary[FILENAME] = fsummary[FILENAME] " " l
				if (index(topc, "\n"))
					topc = substr(topc, index(topc, "\n") + 1)
				else
					topc = ""
			}
			sub(/\.$/, "", fsummary[FILENAME])
			sub(/^\n+/, "", topc)
		} else
			fsummary[FILENAME] = first
		ftop[FILENAME] = topc
	}
	next
}
state == "pre" { next }

# A comment, one line or several: the doc of what follows it.
state == "body" && /^[ \t]*\/\*/ && !/^\/\* -+ .* -+ \*\/$/ {
	doc = strip($0)
	if ($0 ~ /\*\//) {
		next
	}
	state = "doc"
	next
}
state == "doc" {
	if ($0 ~ /^[ \t]*\*\/[ \t]*$/) {
		state = "body"
		next
	}
	l = strip($0)
	doc = doc (doc == "" ? "" : "\n") l
	if ($0 ~ /\*\//)
		state = "body"
	next
}

# A group heading.
state == "body" && /^\/\* -+ .* -+ \*\/$/ {
	t = $0
	sub(/^\/\* -+ /, "", t)
	sub(/ -+ \*\/$/, "", t)
	new_group(t)
	doc = ""
	next
}

# A function prototype, up to its ';'.
state == "body" && /^LFIPC_API/ {
	decl = $0
	declstart = FNR
	state = "func"
}
state == "func" {
	if (FNR != declstart)
		decl = decl " " $0
	if ($0 !~ /;/)
		next
	state = "body"
	sub(/^LFIPC_API[ \t]+/, "", decl)
	gsub(/[ \t]+/, " ", decl)
	gsub(/\( /, "(", decl)
	if (!match(decl, /lfipc_[A-Za-z_0-9]+ ?\(/)) {
		doc = ""
		next
	}
	name = substr(decl, RSTART, RLENGTH)
	sub(/ ?\($/, "", name)
	# a prototype right after another one shares its comment
	if (doc == "" && declstart == lastend + 1 && lastfile == FILENAME)
		doc = lastdoc
	nfuncs++
	funcs[nfuncs] = name
	fgroup[name] = ngroups
	g = ngroups
	gnf[g]++
	gfunc[g, gnf[g]] = name
	fproto[name] = decl
	fdoc[name] = doc
	if (doc == "") {
		print FILENAME ": " name " has no doc comment" > "/dev/stderr"
		bad = 1
	}
	lastend = FNR
	lastfile = FILENAME
	lastdoc = doc
	doc = ""
	next
}

# Constants: a #define LFIPC_... with the comment above it and/or a
# trailing comment. Defines that follow one another with no comment of
# their own share the entry of the first.
function flush_const() {
	if (ctag != "") {
		nconsts++
		cname[nconsts] = cfirst
		centry[nconsts] = ctag ctext
		cgroup[nconsts] = ngroups
	}
	ctag = ""
	ctext = ""
}
state == "body" && /^#define LFIPC_/ && $2 != "LFIPC_API" && $2 !~ /_H$/ {
	tc = ""
	if (match($0, /\/\*.*\*\//)) {
		tc = substr($0, RSTART + 2, RLENGTH - 4)
		sub(/^\*?<?[ \t]+/, "", tc)
		sub(/[ \t]+$/, "", tc)
	}
	if (doc == "" && tc == "" && lastdefine && ctag != "")
		ctag = ctag ".TQ\n.B " esc($2) "\n"
	else {
		flush_const()
		cfirst = $2
		ctag = ".TP\n.B " esc($2) "\n"
		ctext = doc
		if (tc != "")
			ctext = ctext (ctext == "" ? "" : "\n") tc
		ctext = render(ctext, "")
	}
	lastdefine = 1
	doc = ""
	next
}

# Types: typedefs and enums, up to the ';' that ends them.
function add_type(t, d,    n, i, L, l) {
	ntypes++
	# the name is on the line that holds the closing '}' (or the only line)
	n = split(t, L, "\n")
	l = L[1]
	for (i = 1; i <= n; i++)
		if (L[i] ~ /}/)
			l = L[i]
	sub(/\/\*.*/, "", l)
	sub(/;.*/, "", l)
	if (match(l, /\(\*[A-Za-z_0-9]+\)/))
		l = substr(l, RSTART + 2, RLENGTH - 3)
	else
		sub(/.*[^A-Za-z_0-9]/, "", l)
	if (l == "")
		l = "(anonymous " ntypes ")"
	tname[ntypes] = l
	tdecl[ntypes] = t
	tgroup[ntypes] = ngroups
	if (d != "" && index(d, "\n") == 0 && length(d) < 70)
		tdecl[ntypes] = "/* " d " */\n" t
}
state == "body" && /^(typedef|enum|struct)/ {
	tbuf = $0 "\n"
	tdoc = doc
	doc = ""
	depth = gsub(/{/, "{", $0) - gsub(/}/, "}", $0)
	if ($0 ~ /;/ && depth == 0)
		add_type(tbuf, tdoc)
	else
		state = "type"
	next
}
state == "type" {
	tbuf = tbuf $0 "\n"
	depth += gsub(/{/, "{", $0) - gsub(/}/, "}", $0)
	if (depth == 0 && $0 ~ /;/) {
		state = "body"
		add_type(tbuf, tdoc)
	}
	next
}

state == "body" {
	if ($0 !~ /^[ \t]*$/)
		doc = ""
	if ($0 !~ /^#define/) {
		lastdefine = 0
		flush_const()
	}
}

function prefix(f) {
	f = tolower(f)
	if (match(f, /^lfipc_[a-z0-9]+_/))
		return substr(f, 1, RLENGTH - 1)
	return f
}

# The page a group names, or "" when its functions have no majority prefix.
function grouppage(g,    stem, i, p, cnt, best, bestn) {
	stem = fstem[gfile[g]]
	if (gtitle[g] == "")
		for (i = 1; i <= gnf[g]; i++)
			if (index(gfunc[g, i], "lfipc_" stem "_") == 1)
				return "lfipc_" stem
	split("", cnt)
	best = ""
	bestn = 0
	for (i = 1; i <= gnf[g]; i++) {
		p = prefix(gfunc[g, i])
		cnt[p]++
		if (cnt[p] > bestn) {
			bestn = cnt[p]
			best = p
		}
	}
	return bestn * 2 > gnf[g] ? best : ""
}

# The page of a name (function, type, constant) of group g.
function pageof(n, g,    p) {
	p = prefix(n)
	if (p in prefmap)
		return prefmap[p]
	if (tolower(n) in ispage)
		return tolower(n)
	if (gpage[g] != "")
		return gpage[g]
	if (("lfipc_" fstem[gfile[g]]) in ispage)
		return "lfipc_" fstem[gfile[g]]
	return pageof_first[g]
}

function addpage(p, g) {
	if (p in ispage)
		return
	ispage[p] = 1
	npages++
	pages[npages] = p
	phome[p] = g
}

function addfunc(p, f) {
	pnf[p]++
	pfunc[p, pnf[p]] = f
	fpage[f] = p
	addhdr(p, gfile[fgroup[f]])
}

function addhdr(p, file) {
	if (!((p, file) in phas)) {
		phas[p, file] = 1
		pnh[p]++
		phdr[p, pnh[p]] = file
	}
}

function hname(file) {
	sub(/.*include\//, "", file)
	return file
}

# Expand tabs to the next multiple of 8 columns.
function expand(l,    out, i, c) {
	out = ""
	for (i = 1; i <= length(l); i++) {
		c = substr(l, i, 1)
		if (c == "\t")
			out = out sprintf("%" (8 - length(out) % 8) "s", "")
		else
			out = out c
	}
	return out
}

function typeblock(t,    n, i, T, out, l) {
	n = split(t, T, "\n")
	out = ""
	for (i = 1; i <= n; i++) {
		if (T[i] == "")
			continue
		l = T[i]
		gsub(/\/\*\*</, "/*", l)
		out = out esc(expand(l)) "\n"
	}
	return out
}

END {
	flush_const()
	# Pass 1: the pages the groups name; a header's own page first.
	for (pass = 1; pass <= 2; pass++)
		for (g = 1; g <= ngroups; g++) {
			if (gnf[g] == 0 || (g in gdone))
				continue
			p = grouppage(g)
			if (p == "")
				continue
			if (pass == 1 && p != "lfipc_" fstem[gfile[g]])
				continue
			gdone[g] = 1
			gpage[g] = p
			addpage(p, g)
			for (i = 1; i <= gnf[g]; i++)
				if (!(prefix(gfunc[g, i]) in prefmap))
					prefmap[prefix(gfunc[g, i])] = p
		}
	# A prefix that names a page of its own belongs to that page.
	for (k = 1; k <= npages; k++)
		prefmap[pages[k]] = pages[k]
	# Pass 2: every function joins its group's page, or the page of its
	# prefix, in the order of the headers.
	for (g = 1; g <= ngroups; g++) {
		for (i = 1; i <= gnf[g]; i++) {
			f = gfunc[g, i]
			p = gpage[g] != "" ? gpage[g] : pageof(f, g)
			if (p == "") {
				p = "lfipc_" fstem[gfile[g]]
				addpage(p, g)
			}
			if (i == 1)
				pageof_first[g] = p
			addfunc(p, f)
		}
	}
	# The home group's functions come first on its page.
	for (k = 1; k <= npages; k++) {
		p = pages[k]
		n = 0
		for (pass = 1; pass <= 2; pass++)
			for (i = 1; i <= pnf[p]; i++) {
				f = pfunc[p, i]
				if ((fgroup[f] == phome[p]) == (pass == 1))
					ord[++n] = f
			}
		for (i = 1; i <= n; i++)
			pfunc[p, i] = ord[i]
	}
	for (t = 1; t <= ntypes; t++)
		tpage[t] = pageof(tname[t], tgroup[t])
	for (pass = 1; pass <= 2; pass++)
	for (t = 1; t <= ntypes; t++) {
		p = tpage[t]
		if (p == "" || (p, tname[t]) in ptseen)
			continue
		if ((gfile[tgroup[t]] == gfile[phome[p]]) != (pass == 1))
			continue
		ptseen[p, tname[t]] = 1
		ptypes[p] = ptypes[p] tdecl[t]
		addhdr(p, gfile[tgroup[t]])
	}
	for (c = 1; c <= nconsts; c++) {
		p = pageof(cname[c], cgroup[c])
		if (p == "")
			continue
		pconst[p] = pconst[p] centry[c]
		addhdr(p, gfile[cgroup[c]])
	}

	listf = outdir "/man3.list"
	funcf = outdir "/functions.list"
	printf "" > listf
	printf "" > funcf
	for (k = 1; k <= npages; k++) {
		p = pages[k]
		g = phome[p]
		file = gfile[g]
		hdr = hname(file)
		out = outdir "/man3/" p ".3"
		names = ""
		for (i = 1; i <= pnf[p]; i++)
			names = names (i > 1 ? ", " : "") esc(pfunc[p, i])
		summary = gtitle[g] != "" ? gtitle[g] : fsummary[file]
		print ".\\\" Generated by man/mkman3.awk from the lfipc headers; do not edit." > out
		print ".TH " toupper(p) " 3 \"\" \"lfipc " version "\" \"lfipc Library Functions\"" > out
		print ".nh" > out
		print ".ad l" > out
		print ".SH NAME" > out
		print names " \\- " esc(summary) > out
		print ".SH LIBRARY" > out
		print "lfipc (\\fIliblfipc\\fP, \\fB\\-llfipc\\fP; \\fBpkg\\-config \\-\\-cflags \\-\\-libs lfipc\\fP)" > out
		print ".SH SYNOPSIS" > out
		print ".nf" > out
		print ".B #include <" hdr ">" > out
		for (h = 1; h <= pnh[p]; h++)
			if (phdr[p, h] != file)
				print ".B #include <" hname(phdr[p, h]) ">" > out
		print ".PP" > out
		if (ptypes[p] != "") {
			printf "%s", typeblock(ptypes[p]) > out
			print ".PP" > out
		}
		for (i = 1; i <= pnf[p]; i++) {
			f = pfunc[p, i]
			print layout(fproto[f], f) > out
		}
		print ".fi" > out
		print ".SH DESCRIPTION" > out
		if (gtitle[g] != "")
			print "This page documents the " esc(gtitle[g]) " functions of \\fI<" hdr ">\\fP, whose overview follows." > out
		if (ftop[file] != "") {
			if (gtitle[g] != "")
				print ".PP" > out
			printf "%s", render(ftop[file], "") > out
		}
		for (h = 1; h <= pnh[p]; h++)
			if (phdr[p, h] != file) {
				print ".PP" > out
				print "From \\fI<" hname(phdr[p, h]) ">\\fP (" esc(fsummary[phdr[p, h]]) "): see the functions below and that header's overview." > out
			}
		for (i = 1; i <= pnf[p]; i++) {
			f = pfunc[p, i]
			print ".SS " esc(f) "()" > out
			printf "%s", render(fdoc[f], f) > out
			if (fdoc[f] == "")
				print "Undocumented." > out
		}
		if (pconst[p] != "") {
			print ".SH CONSTANTS" > out
			printf "%s", pconst[p] > out
		}
		print ".SH RETURN VALUE" > out
		print "Unless its description says otherwise, a function returns 0 (or a" > out
		print "non\\-negative count) on success and a negative \\fIerrno\\fP value on" > out
		print "failure, never setting \\fIerrno\\fP; \\fBlfipc_strerror\\fP(3) describes a code." > out
		print "The errors of each function are listed with it above." > out
		print ".SH SEE ALSO" > out
		sa = "\\fBlfipc\\fP(7)"
		for (j = 1; j <= npages; j++)
			if (pages[j] != p)
				sa = sa ",\n\\fB" esc(pages[j]) "\\fP(3)"
		print sa > out
		print ".PP" > out
		print "The design notes in \\fI" esc(docdir) "\\fP." > out
		close(out)
		print p ".3" > listf
		for (i = 1; i <= pnf[p]; i++)
			print pfunc[p, i] " " p > funcf
	}
	for (k = 1; k <= npages; k++) {
		p = pages[k]
		for (i = 1; i <= pnf[p]; i++) {
			f = pfunc[p, i]
			if (f == p)
				continue
			out = outdir "/man3/" f ".3"
			print ".so man3/" p ".3" > out
			close(out)
			print f ".3" > listf
		}
	}
	exit bad
}
