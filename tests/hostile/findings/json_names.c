/*
 * FINDING (`lfipc --json show/ls` print invalid JSON for names that are
 * not UTF-8, and the text output prints names raw; tools/lfipc.c, owner
 * life3): json_str() escapes '"', '\\' and bytes below 0x20 but copies
 * every byte >= 0x80 as it is. Object names (and /dev/shm file names) are
 * arbitrary bytes, so an object called "caf\xe9" (Latin-1) or "\xff"
 * makes the whole listing unparseable by any JSON reader (RFC 8259: JSON
 * text is UTF-8); a script that runs `lfipc --json show` on a region a
 * hostile peer can write to is denied its listing. The text output
 * prints the same names raw, with escape sequences and newlines: an
 * object or region name with "\n" forges lines of `lfipc ls`/`show`
 * (e.g. a fake "stale" region) and ESC sequences reach the terminal.
 * Suggested fix: escape invalid UTF-8 bytes (e.g. as \u00XX of the byte,
 * or U+FFFD plus a "name_hex" field), and in text mode print
 * non-printable bytes as \xXX.
 *
 * Build (from the worktree, normal build in build/normal):
 *   cc -O2 -Iinclude -o /tmp/json_names tests/hostile/findings/json_names.c \
 *      build/normal/.libs/liblfipc.a -lpthread
 * Run: /tmp/json_names build/normal/tools/lfipc   (needs python3)
 *   prints "BUG: lfipc --json show output is not valid JSON" and exits 1.
 */
#define _GNU_SOURCE
#include <lfipc.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *tool = argc > 1 ? argv[1] : "lfipc";
	char name[64], cmd[512];
	lfipc_region *r;
	lfipc_event *e;
	int rc;

	snprintf(name, sizeof(name), "/lfipc-review11-js-%d", getpid());
	if (lfipc_region_create(name, 1 << 20, 0600, &r) < 0)
		return 2;
	lfipc_event_create(r, "quote\"back\\slash\nnl\x1b[31mred", &e);
	lfipc_event_create(r, "caf\xe9", &e);
	snprintf(cmd, sizeof(cmd),
		 "%s --json show %s | python3 -c 'import sys, json; "
		 "json.loads(sys.stdin.buffer.read())'",
		 tool, name);
	rc = system(cmd);
	lfipc_region_close(r);
	lfipc_region_unlink(name);
	if (rc != 0) {
		printf("BUG: lfipc --json show output is not valid JSON\n");
		return 1;
	}
	printf("valid JSON\n");
	return 0;
}
