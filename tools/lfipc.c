/* SPDX-License-Identifier: MIT */
/*
 * lfipc - list, inspect, recover and remove lfipc shared-memory regions.
 *
 *   lfipc [--json] ls [PATTERN]
 *   lfipc [--json] show REGION [OBJECT]
 *   lfipc [--json] ps REGION
 *   lfipc [--json] recover REGION
 *   lfipc [--json] clear REGION QUEUE
 *   lfipc [--json] rm [--force] REGION
 *   lfipc [--json] gc [--dry-run] [PATTERN]
 *
 * See doc/cli.md (verbs, output, exit codes). Everything here goes through
 * the public API (lfipc/inspect.h and friends): the command knows nothing
 * of the region's layout. Regions are found in /dev/shm, where shm_open()
 * names live, and named huge regions in the hugetlbfs mount the library
 * uses for them; a file there that is not an lfipc region is only probed
 * (opened read-only) and never changed.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <lfipc.h>

/* Exit codes (doc/cli.md). */
enum {
	EX_OK = 0,	/* done */
	EX_FAIL = 1,	/* an operation failed (no such region, ...) */
	EX_USAGE = 2,	/* bad command line */
	EX_REFUSED = 3, /* rm: live participants, --force not given */
};

static bool json;
static const char *prog = "lfipc";

/* ---- output ---------------------------------------------------------------- */

/* Names (of regions and objects) are any bytes: another process chose
 * them. Both outputs print them so that they cannot break the output. */

/* The length of the well-formed UTF-8 sequence at p (RFC 3629: shortest
 * form, no surrogates, at most U+10FFFF), or 0 if p does not start one. */
static int utf8_len(const unsigned char *p)
{
	int n;
	unsigned char lo = 0x80, hi = 0xbf;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (p[0] == 0xe0)
		lo = 0xa0; /* overlong */
	else if (p[0] == 0xed)
		hi = 0x9f; /* surrogates */
	else if (p[0] == 0xf0)
		lo = 0x90; /* overlong */
	else if (p[0] == 0xf4)
		hi = 0x8f; /* above U+10FFFF */
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (int i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0; /* also stops at the terminating NUL */
	return n;
}

/* A JSON string (RFC 8259) of s: '"', '\\' and control bytes escaped,
 * well-formed UTF-8 copied, and each byte that is not part of well-formed
 * UTF-8 written as \udcXX (XX: the byte), the lone low surrogate of
 * Python's "surrogateescape" convention: the output is valid JSON and
 * s.encode('utf-8', 'surrogateescape') in Python gives the bytes back
 * (doc/cli.md). */
static void json_str(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		int n = utf8_len(p);

		if (n == 0)
			printf("\\udc%02x", *p);
		else if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			printf("\\u%04x", *p);
		else
			fwrite(p, 1, (size_t)n, stdout);
		p += n ? n : 1;
	}
	putchar('"');
}

/* s for text output: printable ASCII as it is, '\\' doubled, every other
 * byte (control characters, ESC, newlines, bytes >= 0x80) as \xXX, so a
 * name can neither add lines nor reach the terminal as a control sequence.
 * The result lives in one of a few static buffers, reused in turn (enough
 * for the names of one printf). */
static const char *text(const char *s)
{
	static char buf[4][4 * (NAME_MAX + 2) + 1];
	static int turn;
	char *out = buf[turn++ % 4], *o = out;

	for (const unsigned char *p = (const unsigned char *)s;
	     *p && o + 5 <= out + sizeof(buf[0]); p++) {
		if (*p == '\\')
			o += sprintf(o, "\\\\");
		else if (*p < 0x20 || *p >= 0x7f)
			o += sprintf(o, "\\x%02x", *p);
		else
			*o++ = (char)*p;
	}
	*o = '\0';
	return out;
}

/* A list of key/value pairs: the status of one object, printed either as
 * a JSON object or as "key=value" words, from the same description. */
enum { KV_U, KV_I, KV_B, KV_S };
struct kv {
	const char *key;
	int kind;
	uint64_t u;
	int64_t i;
	bool b;
	const char *s;
};
#define KV_MAX 32
struct kvs {
	int n;
	struct kv v[KV_MAX];
};

static void kv_u(struct kvs *k, const char *key, uint64_t u)
{
	if (k->n < KV_MAX)
		k->v[k->n++] = (struct kv){.key = key, .kind = KV_U, .u = u};
}

static void kv_i(struct kvs *k, const char *key, int64_t i)
{
	if (k->n < KV_MAX)
		k->v[k->n++] = (struct kv){.key = key, .kind = KV_I, .i = i};
}

static void kv_b(struct kvs *k, const char *key, bool b)
{
	if (k->n < KV_MAX)
		k->v[k->n++] = (struct kv){.key = key, .kind = KV_B, .b = b};
}

static void kv_s(struct kvs *k, const char *key, const char *s)
{
	if (k->n < KV_MAX)
		k->v[k->n++] = (struct kv){.key = key, .kind = KV_S, .s = s};
}

static void kv_holder(struct kvs *k, const char *pid_key,
		      const char *alive_key, const lfipc_holder *h)
{
	kv_i(k, pid_key, h->pid);
	if (h->pid)
		kv_b(k, alive_key, h->alive);
}

static void kvs_print(const struct kvs *k)
{
	if (json) {
		putchar('{');
		for (int i = 0; i < k->n; i++) {
			const struct kv *v = &k->v[i];

			if (i)
				putchar(',');
			json_str(v->key);
			putchar(':');
			switch (v->kind) {
			case KV_U:
				printf("%" PRIu64, v->u);
				break;
			case KV_I:
				printf("%" PRId64, v->i);
				break;
			case KV_B:
				fputs(v->b ? "true" : "false", stdout);
				break;
			default:
				json_str(v->s);
			}
		}
		putchar('}');
		return;
	}
	/* Text: false booleans and zero pids are left out. */
	for (int i = 0, first = 1; i < k->n; i++) {
		const struct kv *v = &k->v[i];

		if (v->kind == KV_B && !v->b)
			continue;
		if (v->kind == KV_I && v->i == 0 && strstr(v->key, "pid"))
			continue;
		if (!first)
			putchar(' ');
		first = 0;
		switch (v->kind) {
		case KV_U:
			printf("%s=%" PRIu64, v->key, v->u);
			break;
		case KV_I:
			printf("%s=%" PRId64, v->key, v->i);
			break;
		case KV_B:
			fputs(v->key, stdout);
			break;
		default:
			printf("%s=%s", v->key, text(v->s));
		}
	}
}

static int fail(const char *what, const char *name, int rc)
{
	fprintf(stderr, "%s: %s%s%s: %s\n", prog, what, name ? " " : "",
		name ? text(name) : "", lfipc_strerror(rc));
	return EX_FAIL;
}

/* "name" or "/name" -> "/name" in buf. */
static const char *shm_name(const char *arg, char *buf, size_t n)
{
	snprintf(buf, n, "%s%s", arg[0] == '/' ? "" : "/", arg);
	return buf;
}

/* Open REGION (a command-line argument) into *r; its "/name" goes into
 * name. Return: EX_OK, or EX_FAIL with a message. */
static int open_region(const char *arg, char name[NAME_MAX + 2],
		       lfipc_region **r)
{
	int rc;

	shm_name(arg, name, NAME_MAX + 2);
	rc = lfipc_region_open(name, r);
	return rc < 0 ? fail("cannot open region", name, rc) : EX_OK;
}

/* ---- listings: ls, show and ps ---------------------------------------------- */

/* A listing: a JSON array of items, or a table under its header line. */
struct listing {
	const char *indent; /* JSON: the indentation of each item */
	int n;		    /* items printed so far */
};

/* Start an item: in JSON, the separator from the item before. */
static void listing_item(struct listing *ls)
{
	if (json)
		printf("%s\n%s", ls->n ? "," : "", ls->indent);
	ls->n++;
}

/* End the listing: in JSON, a line break after the last item and end
 * (what closes the array). */
static void listing_end(const struct listing *ls, const char *end)
{
	if (json)
		printf("%s%s\n", ls->n ? "\n" : "", end);
}

/*
 * The items of the open region r (named name), one after another: next
 * fetches the one at *cursor into it (1; 0 after the last; a negative
 * errno), show prints it (calling listing_item() for each item it
 * prints). Then the listing's end (JSON) and r is closed. Return: EX_OK,
 * or EX_FAIL with "cannot list <what> of <name>".
 */
static int walk_region(lfipc_region *r, const char *name, const char *what,
		       int (*next)(lfipc_region *r, unsigned *cursor,
				   void *it),
		       void (*show)(lfipc_region *r, void *it,
				    struct listing *ls),
		       void *it, struct listing *ls, const char *end)
{
	unsigned cursor = 0;
	int rc;

	while ((rc = next(r, &cursor, it)) == 1)
		show(r, it, ls);
	listing_end(ls, end);
	lfipc_region_close(r);
	if (rc < 0) {
		char msg[64];

		snprintf(msg, sizeof(msg), "cannot list %s of", what);
		return fail(msg, name, rc);
	}
	return EX_OK;
}

static double age_s(int64_t since_ns)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec -
			since_ns) /
	       1e9;
}

/* ---- ls / gc: the regions in the shm directory ------------------------------ */

/* Where shm_open() names live on Linux (glibc and musl alike). */
static const char *shm_dir(void)
{
	return "/dev/shm";
}

/*
 * Named huge regions (LFIPC_REGION_HUGE) are files in the first hugetlbfs
 * mount of the default huge page size, where the library looks for a
 * name after /dev/shm (lfipc/region.h). Fills dir; false: none.
 */
static bool huge_dir(char *dir, size_t n)
{
	unsigned long long kb = 0;
	char line[128], buf[1024];
	struct mntent ent, *m;
	bool found = false;
	FILE *f = fopen("/proc/meminfo", "re");

	while (f && fgets(line, sizeof(line), f) &&
	       sscanf(line, "Hugepagesize: %llu kB", &kb) != 1)
		;
	if (f)
		fclose(f);
	f = kb ? setmntent("/proc/self/mounts", "re") : NULL;
	while (f && !found && (m = getmntent_r(f, &ent, buf, sizeof(buf)))) {
		struct statfs sf;

		if (!strcmp(m->mnt_type, "hugetlbfs") &&
		    statfs(m->mnt_dir, &sf) == 0 &&
		    (unsigned long long)sf.f_bsize == kb * 1024) {
			snprintf(dir, n, "%s", m->mnt_dir);
			found = true;
		}
	}
	if (f)
		endmntent(f);
	return found;
}

/* Call fn for each lfipc region in the directory dir whose name (without
 * its leading '/') matches the shell pattern pat (NULL: all), in name
 * order; in the hugetlbfs directory (shadowed true), only names that
 * /dev/shm does not have (a name is looked up there first). Files that
 * are not lfipc regions are skipped without being touched beyond the
 * read-only probe. */
static int foreach_in(const char *dir, bool shadowed, const char *pat,
		      int (*fn)(const char *name,
				const lfipc_region_status *st, void *arg),
		      void *arg)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, alphasort), rc = 0;

	if (n < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char name[NAME_MAX + 2], path[NAME_MAX + 16];
		lfipc_region_status st;

		snprintf(path, sizeof(path), "%s/%s", shm_dir(),
			 ents[i]->d_name);
		if (ents[i]->d_name[0] != '.' &&
		    (!pat || fnmatch(pat, ents[i]->d_name, 0) == 0) &&
		    (ents[i]->d_type == DT_REG || ents[i]->d_type == DT_UNKNOWN) &&
		    (!shadowed || access(path, F_OK) != 0)) {
			snprintf(name, sizeof(name), "/%s", ents[i]->d_name);
			LFIPC_STATUS_INIT(st);
			/* An empty file probes as a region being created:
			 * it cannot be told from any other empty file, so
			 * it is not listed. */
			if (lfipc_region_probe(name, &st) == 0 && rc == 0 &&
			    !(st.initialising && st.size == 0))
				rc = fn(name, &st, arg);
		}
		free(ents[i]);
	}
	free(ents);
	return rc;
}

/* foreach_in() /dev/shm, then the hugetlbfs mount if there is one. */
static int foreach_region(const char *pat,
			  int (*fn)(const char *name,
				    const lfipc_region_status *st, void *arg),
			  void *arg)
{
	char huge[4096];
	int rc;

	if (pat && pat[0] == '/')
		pat++;
	rc = foreach_in(shm_dir(), false, pat, fn, arg);
	if (rc == 0 && huge_dir(huge, sizeof(huge)))
		rc = foreach_in(huge, true, pat, fn, arg);
	return rc;
}

static void region_kvs(struct kvs *k, const char *name,
		       const lfipc_region_status *st)
{
	kv_s(k, "name", name);
	kv_u(k, "size", st->size);
	kv_u(k, "bytes_free", st->bytes_free);
	kv_u(k, "objects", st->objects);
	kv_u(k, "participants", st->participants);
	kv_u(k, "dead", st->dead);
	kv_b(k, "stale", st->stale);
	kv_b(k, "initialising", st->initialising);
}

static int ls_one(const char *name, const lfipc_region_status *st,
		  void *arg)
{
	struct listing *ls = arg;

	if (!json && ls->n == 0)
		printf("%-32s %12s %7s %6s %5s  %s\n", "REGION", "SIZE",
		       "OBJECTS", "ALIVE", "DEAD", "STATE");
	listing_item(ls);
	if (json) {
		struct kvs k = {0};

		region_kvs(&k, name, st);
		kvs_print(&k);
	} else {
		printf("%-32s %12zu %7u %6u %5u  %s\n", text(name), st->size,
		       st->objects, st->participants, st->dead,
		       st->initialising ? "initialising"
		       : st->stale	 ? "stale"
					 : "live");
	}
	return 0;
}

static int cmd_ls(const char *pat)
{
	struct listing ls = {" ", 0};

	if (json)
		putchar('[');
	if (foreach_region(pat, ls_one, &ls) < 0)
		return EX_FAIL;
	listing_end(&ls, "]");
	return EX_OK;
}

struct gc_state {
	bool dry_run;
	int removed, failed;
};

static int gc_one(const char *name, const lfipc_region_status *st, void *arg)
{
	struct gc_state *g = arg;
	int rc = 0;

	if (!st->stale)
		return 0;
	/* lfipc_region_remove() decides again, race-free: a process that
	 * registered since the probe makes it refuse (-EBUSY). */
	if (!g->dry_run)
		rc = lfipc_region_remove(name, 0);
	if (rc == -EBUSY || rc == -ENOENT)
		return 0; /* came alive, or somebody else removed it */
	if (json) {
		fputs(g->removed + g->failed ? ",\n " : "\n ", stdout);
		printf("{\"name\":");
		json_str(name);
		printf(",\"removed\":%s", rc == 0 ? "true" : "false");
		if (rc < 0) {
			printf(",\"error\":");
			json_str(lfipc_strerror(rc));
		}
		putchar('}');
	} else if (rc == 0) {
		printf("%s %s\n", g->dry_run ? "would remove" : "removed",
		       text(name));
	} else {
		fail("cannot remove", name, rc);
	}
	if (rc == 0)
		g->removed++;
	else
		g->failed++;
	return 0;
}

static int cmd_gc(bool dry_run, const char *pat)
{
	struct gc_state g = {.dry_run = dry_run};

	if (json)
		putchar('[');
	if (foreach_region(pat, gc_one, &g) < 0)
		return EX_FAIL;
	if (json)
		puts(g.removed + g.failed ? "\n]" : "]");
	return g.failed ? EX_FAIL : EX_OK;
}

/* ---- show ------------------------------------------------------------------- */

static void lock_kvs(struct kvs *k, const lfipc_lock_status *s)
{
	kv_b(k, "recursive", s->recursive);
	kv_b(k, "locked", s->locked);
	kv_holder(k, "holder_pid", "holder_alive", &s->holder);
	if (s->holder.tid)
		kv_i(k, "holder_tid", s->holder.tid);
	kv_u(k, "depth", s->depth);
	kv_u(k, "waiters", s->waiters);
	kv_b(k, "owner_died", s->owner_died);
}

/* Status of one object as key/value pairs; 0 or a negative errno. The
 * status structures live in *buf so the pairs may point into them. */
union status_buf {
	lfipc_queue_status q;
	lfipc_lock_status l;
	lfipc_sem_status s;
	lfipc_cond_status c;
	lfipc_event_status e;
	lfipc_barrier_status b;
	lfipc_array_status a;
	lfipc_pipe_status p;
	lfipc_listener_status n;
};

static const char *array_type_name(lfipc_type t)
{
	static const char *const names[] = {"i8",  "u8",  "i16", "u16",
					    "i32", "u32", "i64", "u64",
					    "f32", "f64", "char", "bool"};

	return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t]
							       : "unknown";
}

static int object_kvs(lfipc_region *r, const char *name, int type,
		      union status_buf *buf, struct kvs *k)
{
	int rc;

	memset(buf, 0, sizeof(*buf));
	switch (type) {
	case LFIPC_OBJ_QUEUE: {
		lfipc_queue_status *s = &buf->q;

		s->struct_size = sizeof(*s);
		rc = lfipc_object_stat(r, name, type, s);
		if (rc < 0)
			return rc;
		kv_u(k, "depth", s->depth);
		kv_u(k, "capacity", s->capacity);
		kv_u(k, "msg_size", s->msg_size);
		kv_b(k, "joinable", s->joinable);
		kv_b(k, "shut_down", s->shut_down);
		kv_b(k, "producers_sleeping", s->producers_sleeping);
		kv_b(k, "consumers_sleeping", s->consumers_sleeping);
		kv_u(k, "writing", s->writing);
		kv_u(k, "reading", s->reading);
		kv_u(k, "holes", s->holes);
		kv_u(k, "orphans", s->orphans);
		kv_u(k, "dead_claims", s->dead_claims);
		kv_u(k, "puts", s->puts);
		kv_u(k, "gets", s->gets);
		kv_u(k, "cleared", s->cleared);
		kv_u(k, "corrupt", s->corrupt);
		if (s->joinable) {
			kv_u(k, "tasks_unfinished", s->tasks_unfinished);
			kv_u(k, "tasks_abandoned", s->tasks_abandoned);
		}
		return 0;
	}
	case LFIPC_OBJ_LOCK:
		buf->l.struct_size = sizeof(buf->l);
		rc = lfipc_object_stat(r, name, type, &buf->l);
		if (rc == 0)
			lock_kvs(k, &buf->l);
		return rc;
	case LFIPC_OBJ_SEM: {
		lfipc_sem_status *s = &buf->s;

		s->struct_size = sizeof(*s);
		rc = lfipc_object_stat(r, name, type, s);
		if (rc < 0)
			return rc;
		kv_u(k, "value", s->value);
		kv_u(k, "max", s->max);
		kv_b(k, "bounded", s->bounded);
		kv_u(k, "waiters", s->waiters);
		kv_b(k, "tracked", s->tracked);
		if (s->tracked) {
			kv_u(k, "holders", s->holders);
			kv_u(k, "held", s->held);
			kv_u(k, "dead_held", s->dead_held);
		}
		return 0;
	}
	case LFIPC_OBJ_COND: {
		lfipc_cond_status *s = &buf->c;

		s->struct_size = sizeof(*s);
		rc = lfipc_object_stat(r, name, type, s);
		if (rc < 0)
			return rc;
		kv_u(k, "waiters", s->waiters);
		kv_u(k, "notified", s->notified);
		kv_u(k, "dead_waiters", s->dead_waiters);
		kv_b(k, "lock_held", s->lock.locked);
		kv_holder(k, "lock_holder_pid", "lock_holder_alive",
			  &s->lock.holder);
		return 0;
	}
	case LFIPC_OBJ_EVENT:
		buf->e.struct_size = sizeof(buf->e);
		rc = lfipc_object_stat(r, name, type, &buf->e);
		if (rc == 0) {
			kv_b(k, "set", buf->e.set);
			kv_b(k, "waiters", buf->e.waiters);
		}
		return rc;
	case LFIPC_OBJ_BARRIER:
		buf->b.struct_size = sizeof(buf->b);
		rc = lfipc_object_stat(r, name, type, &buf->b);
		if (rc == 0) {
			kv_u(k, "parties", buf->b.parties);
			kv_u(k, "waiting", buf->b.waiting);
			kv_b(k, "broken", buf->b.broken);
			kv_u(k, "cycle", buf->b.cycle);
		}
		return rc;
	case LFIPC_OBJ_ARRAY:
		buf->a.struct_size = sizeof(buf->a);
		rc = lfipc_object_stat(r, name, type, &buf->a);
		if (rc == 0) {
			kv_s(k, "elem_type", array_type_name(buf->a.type));
			kv_u(k, "length", buf->a.length);
			kv_b(k, "has_lock", buf->a.has_lock);
			if (buf->a.has_lock) {
				kv_b(k, "lock_held", buf->a.lock.locked);
				kv_holder(k, "lock_holder_pid",
					  "lock_holder_alive",
					  &buf->a.lock.holder);
			}
		}
		return rc;
	case LFIPC_OBJ_PIPE: {
		static const char *const pid_key[2] = {"end0_pid", "end1_pid"};
		static const char *const alive_key[2] = {"end0_alive",
							 "end1_alive"};
		static const char *const closed_key[2] = {"end0_closed",
							  "end1_closed"};
		static const char *const buf_key[2] = {"end0_buffered",
						       "end1_buffered"};
		lfipc_pipe_status *s = &buf->p;

		s->struct_size = sizeof(*s);
		rc = lfipc_object_stat(r, name, type, s);
		if (rc < 0)
			return rc;
		kv_b(k, "duplex", s->duplex);
		kv_u(k, "ring_bytes", s->ring_bytes);
		for (int e = 0; e < 2; e++) {
			kv_holder(k, pid_key[e], alive_key[e],
				  &s->end[e].holder);
			kv_b(k, closed_key[e], s->end[e].closed);
			kv_u(k, buf_key[e], s->end[e].bytes_buffered);
		}
		return 0;
	}
	case LFIPC_OBJ_LISTENER: {
		lfipc_listener_status *s = &buf->n;

		s->struct_size = sizeof(*s);
		rc = lfipc_object_stat(r, name, type, s);
		if (rc < 0)
			return rc;
		kv_i(k, "server_pid", s->server_pid);
		if (s->serving)
			kv_b(k, "server_alive", s->server_alive);
		kv_u(k, "backlog", s->backlog);
		kv_u(k, "max_conns", s->max_conns);
		kv_u(k, "waiting", s->waiting);
		kv_u(k, "connections", s->connections);
		return 0;
	}
	default:
		return 0; /* a type this build does not know: no status */
	}
}

static void show_object(lfipc_region *r, void *it, struct listing *ls)
{
	const lfipc_object_entry *e = it;
	union status_buf buf;
	struct kvs k = {0};
	int rc = object_kvs(r, e->name, e->type, &buf, &k);

	listing_item(ls);
	if (json) {
		printf("{\"name\":");
		json_str(e->name);
		printf(",\"type\":");
		json_str(lfipc_obj_type_name(e->type));
		printf(",\"bytes\":%zu,\"creator_pid\":%d,", e->bytes,
		       (int)e->creator_pid);
		if (rc < 0) {
			printf("\"error\":");
			json_str(lfipc_strerror(rc));
		} else {
			printf("\"status\":");
			kvs_print(&k);
		}
		putchar('}');
	} else {
		printf("%-20s %-9s %9zu  ", text(e->name),
		       lfipc_obj_type_name(e->type), e->bytes);
		if (rc < 0)
			printf("error: %s", lfipc_strerror(rc));
		else
			kvs_print(&k);
		putchar('\n');
	}
}

/* walk_region()'s next for every object of the region. */
static int next_object(lfipc_region *r, unsigned *cursor, void *it)
{
	lfipc_object_entry *e = it;

	LFIPC_STATUS_INIT(*e);
	return lfipc_object_next(r, cursor, e);
}

/* walk_region()'s next for the one object found already in it. */
static int one_object(lfipc_region *r, unsigned *cursor, void *it)
{
	(void)r;
	(void)it;
	return (*cursor)++ == 0;
}

static int cmd_show(const char *region, const char *object)
{
	char name[NAME_MAX + 2];
	lfipc_region *r;
	lfipc_region_status st;
	lfipc_object_entry e;
	struct listing ls = {"  ", 0};
	int rc;

	if (open_region(region, name, &r) != EX_OK)
		return EX_FAIL;
	LFIPC_STATUS_INIT(st);
	rc = lfipc_region_stat(r, &st);
	if (rc < 0) {
		lfipc_region_close(r);
		return fail("cannot read region", name, rc);
	}
	LFIPC_STATUS_INIT(e);
	if (object) {
		rc = lfipc_object_find(r, object, &e);
		if (rc < 0) {
			lfipc_region_close(r);
			return fail("no object", object, rc);
		}
	}
	/* This command's own registration is not a participant of interest. */
	st.participants = st.participants ? st.participants - 1 : 0;
	if (json) {
		struct kvs k = {0};

		region_kvs(&k, name, &st);
		printf("{\"region\":");
		kvs_print(&k);
		printf(",\"objects\":[");
	} else {
		printf("region %s: %zu bytes, %zu free, %u objects, %u "
		       "participants alive, %u dead%s\n",
		       text(name), st.size, st.bytes_free, st.objects,
		       st.participants, st.dead, st.stale ? ", stale" : "");
		printf("%-20s %-9s %9s  %s\n", "OBJECT", "TYPE", "BYTES",
		       "STATUS");
	}
	return walk_region(r, name, "objects",
			   object ? one_object : next_object, show_object, &e,
			   &ls, "]}");
}

/* ---- ps ------------------------------------------------------------------------ */

static int next_participant(lfipc_region *r, unsigned *cursor, void *it)
{
	lfipc_participant_info *p = it;

	LFIPC_STATUS_INIT(*p);
	return lfipc_participant_next(r, cursor, p);
}

static void show_participant(lfipc_region *r, void *it, struct listing *ls)
{
	const lfipc_participant_info *p = it;
	const char *state = p->state == LFIPC_PART_ALIVE ? "alive" : "dead";

	(void)r;
	if (p->self)
		return; /* this command */
	listing_item(ls);
	if (json)
		printf("{\"slot\":%u,\"pid\":%d,\"state\":\"%s\","
		       "\"age_s\":%.3f}",
		       p->slot, (int)p->pid, state, age_s(p->since_ns));
	else
		printf("%5u %8d %-6s %10.1f\n", p->slot, (int)p->pid, state,
		       age_s(p->since_ns));
}

static int cmd_ps(const char *region)
{
	char name[NAME_MAX + 2];
	lfipc_region *r;
	lfipc_participant_info p;
	struct listing ls = {" ", 0};

	if (open_region(region, name, &r) != EX_OK)
		return EX_FAIL;
	if (json)
		putchar('[');
	else
		printf("%5s %8s %-6s %10s\n", "SLOT", "PID", "STATE", "AGE(s)");
	return walk_region(r, name, "participants", next_participant,
			   show_participant, &p, &ls, "]");
}

/* ---- recover / clear / rm ----------------------------------------------------- */

static int cmd_recover(const char *region)
{
	char name[NAME_MAX + 2];
	lfipc_region *r;
	int rc;

	if (open_region(region, name, &r) != EX_OK)
		return EX_FAIL;
	rc = lfipc_region_recover(r);
	lfipc_region_close(r);
	if (rc < 0)
		return fail("cannot recover", name, rc);
	if (json) {
		printf("{\"region\":");
		json_str(name);
		printf(",\"recovered\":%d}\n", rc);
	} else {
		printf("%s: recovered %d item%s\n", text(name), rc,
		       rc == 1 ? "" : "s");
	}
	return EX_OK;
}

static int cmd_clear(const char *region, const char *queue)
{
	char name[NAME_MAX + 2];
	lfipc_region *r;
	lfipc_queue *q;
	int64_t n;
	int rc;

	if (open_region(region, name, &r) != EX_OK)
		return EX_FAIL;
	rc = lfipc_queue_open(r, queue, &q);
	if (rc < 0) {
		lfipc_region_close(r);
		return fail("cannot open queue", queue, rc);
	}
	n = lfipc_queue_clear(q);
	lfipc_queue_close(q);
	lfipc_region_close(r);
	if (n < 0)
		return fail("cannot clear", queue, (int)n);
	if (json) {
		printf("{\"region\":");
		json_str(name);
		printf(",\"queue\":");
		json_str(queue);
		printf(",\"cleared\":%" PRId64 "}\n", n);
	} else {
		printf("%s %s: cleared %" PRId64 " message%s\n", text(name),
		       text(queue), n, n == 1 ? "" : "s");
	}
	return EX_OK;
}

static int cmd_rm(const char *region, bool force)
{
	char name[NAME_MAX + 2];
	int rc;

	shm_name(region, name, sizeof(name));
	rc = lfipc_region_remove(name, force ? LFIPC_REGION_FORCE : 0);
	if (rc == -EBUSY) {
		fprintf(stderr,
			"%s: %s has live participants (see lfipc ps %s); "
			"use --force to remove it anyway\n",
			prog, text(name), text(name));
		return EX_REFUSED;
	}
	if (rc < 0)
		return fail("cannot remove", name, rc);
	if (json) {
		printf("{\"removed\":");
		json_str(name);
		puts("}");
	} else {
		printf("removed %s\n", text(name));
	}
	return EX_OK;
}

/* ---- command line --------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [--json] COMMAND [ARGS]\n"
		"List, inspect, recover and remove lfipc shared-memory "
		"regions.\n"
		"\n"
		"Commands:\n"
		"  ls [PATTERN]         regions in %s: size, objects, "
		"participants, stale\n"
		"  show REGION [OBJECT] objects of REGION with their status\n"
		"  ps REGION            participants of REGION, alive or dead\n"
		"  recover REGION       recover what dead participants left "
		"in flight\n"
		"  clear REGION QUEUE   discard every message in QUEUE\n"
		"  rm [--force] REGION  remove REGION; refused while "
		"participants live\n"
		"  gc [--dry-run] [PATTERN]\n"
		"                       remove every stale region (no "
		"live participant)\n"
		"\n"
		"Options:\n"
		"  -j, --json     machine-readable output (JSON) for every "
		"command\n"
		"  -f, --force    rm: remove even while participants live\n"
		"  -n, --dry-run  gc: list what would be removed, remove "
		"nothing\n"
		"  -h, --help     this help\n"
		"  -V, --version  the lfipc version\n"
		"\n"
		"REGION is a shared-memory name, with or without its leading "
		"'/'.\n"
		"PATTERN is a shell pattern that region names must match "
		"(e.g. 'app-*').\n"
		"Exit status: 0 done; 1 an operation failed; 2 bad command "
		"line;\n"
		"3 rm refused because the region has live participants.\n"
		"Files in %s that are not lfipc regions are never touched.\n",
		prog, shm_dir(), shm_dir());
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"force", no_argument, NULL, 'f'},
		{"dry-run", no_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	bool force = false, dry_run = false;
	const char *verb;
	int c, nargs;
	char **args;

	while ((c = getopt_long(argc, argv, "jfnhV", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'f':
			force = true;
			break;
		case 'n':
			dry_run = true;
			break;
		case 'h':
			usage(stdout);
			return EX_OK;
		case 'V':
			printf("lfipc %s\n", PACKAGE_VERSION);
			return EX_OK;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EX_USAGE;
	}
	verb = argv[optind];
	args = argv + optind + 1;
	nargs = argc - optind - 1;
	if ((force && strcmp(verb, "rm") != 0) ||
	    (dry_run && strcmp(verb, "gc") != 0)) {
		fprintf(stderr, "%s: %s takes no %s\n", prog, verb,
			force ? "--force" : "--dry-run");
		return EX_USAGE;
	}
	if (strcmp(verb, "ls") == 0 && nargs <= 1)
		return cmd_ls(nargs ? args[0] : NULL);
	if (strcmp(verb, "show") == 0 && (nargs == 1 || nargs == 2))
		return cmd_show(args[0], nargs == 2 ? args[1] : NULL);
	if (strcmp(verb, "ps") == 0 && nargs == 1)
		return cmd_ps(args[0]);
	if (strcmp(verb, "recover") == 0 && nargs == 1)
		return cmd_recover(args[0]);
	if (strcmp(verb, "clear") == 0 && nargs == 2)
		return cmd_clear(args[0], args[1]);
	if (strcmp(verb, "rm") == 0 && nargs == 1)
		return cmd_rm(args[0], force);
	if (strcmp(verb, "gc") == 0 && nargs <= 1)
		return cmd_gc(dry_run, nargs ? args[0] : NULL);
	fprintf(stderr, "%s: unknown command or wrong arguments: %s\n", prog,
		verb);
	usage(stderr);
	return EX_USAGE;
}
