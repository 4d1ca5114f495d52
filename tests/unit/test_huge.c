/* SPDX-License-Identifier: MIT */
/* Huge-page regions (LFIPC_REGION_HUGE, LFIPC_REGION_HUGE_PREFER).
 *
 * These run whatever the machine has: with no huge pages reserved
 * (vm.nr_hugepages 0) they check the documented error, -ENOMEM; with no
 * hugetlbfs mount, -EOPNOTSUPP for a named region; with enough pages (and
 * a mount, for named regions) they check the regions themselves. A case
 * in between (a pool too small for every test at once: Criterion runs
 * them in parallel) accepts either and says so. To run the huge-page
 * paths as root: echo 64 > /proc/sys/vm/nr_hugepages; mount -t hugetlbfs
 * none /dev/hugepages (and put both back afterwards). */
#include <criterion/criterion.h>
#include <errno.h>
#include <mntent.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <lfipc.h>

#include "common/testhelp.h"

#define MIB ((size_t)1 << 20)
#define REAP_MS 30000
/* Pages the whole file may hold at once (tests run in parallel). */
#define POOL_NEED 16

static char rname[64];

static void setup(void)
{
	th_name(rname, sizeof(rname), "huge");
}

static void teardown(void)
{
	lfipc_region_unlink(rname);
}

TestSuite(huge, .init = setup, .fini = teardown, .timeout = 120);

/* A /proc/meminfo field ("HugePages_Free"), as its number; 0 if absent. */
static unsigned long long meminfo(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	unsigned long long v = 0;
	size_t n = strlen(key);

	cr_assert(f);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, n) == 0 && line[n] == ':') {
			v = strtoull(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static size_t hpage(void)
{
	return (size_t)meminfo("Hugepagesize") * 1024;
}

enum expect { EXPECT_OK, EXPECT_ENOMEM, EXPECT_EITHER };

/* What a creation of pages huge pages must give: -ENOMEM when the pool
 * is empty and cannot grow, success when it has enough free pages for
 * every test of this file at once, either in between. */
static enum expect pool_expect(void)
{
	unsigned long long total = meminfo("HugePages_Total");
	unsigned long long over = 0;
	FILE *f = fopen("/proc/sys/vm/nr_overcommit_hugepages", "re");

	if (f) {
		if (fscanf(f, "%llu", &over) != 1)
			over = 0;
		fclose(f);
	}
	if (hpage() == 0)
		return EXPECT_EITHER;
	if (total == 0 && over == 0)
		return EXPECT_ENOMEM;
	/* free and not promised to a mapping (others may hold the rest) */
	if (meminfo("HugePages_Free") - meminfo("HugePages_Rsvd") >= POOL_NEED)
		return EXPECT_OK;
	return EXPECT_EITHER;
}

/* The hugetlbfs mount a named huge region goes to, as the library finds
 * it (the first of the default huge page size). */
static bool huge_mount(char *dir, size_t n)
{
	FILE *f = setmntent("/proc/self/mounts", "re");
	struct mntent *m;
	bool found = false;

	cr_assert(f);
	while (!found && (m = getmntent(f))) {
		struct statfs sf;

		if (strcmp(m->mnt_type, "hugetlbfs") == 0 &&
		    statfs(m->mnt_dir, &sf) == 0 &&
		    (size_t)sf.f_bsize == hpage()) {
			snprintf(dir, n, "%s", m->mnt_dir);
			found = true;
		}
	}
	endmntent(f);
	return found;
}

/* Put one message through a queue made in r, read it back. */
static void check_usable(lfipc_region *r)
{
	lfipc_queue *q;
	char buf[64];
	size_t n = 0;

	cr_assert_eq(lfipc_queue_create(r, "q", 16, 64, 0, &q), 0);
	cr_assert_eq(lfipc_queue_put(q, "huge", 4, LFIPC_NOWAIT), 0);
	cr_assert_eq(lfipc_queue_get(q, buf, sizeof(buf), &n, LFIPC_NOWAIT), 0);
	cr_assert_eq(n, 4);
	cr_assert_eq(memcmp(buf, "huge", 4), 0);
	lfipc_queue_close(q);
}

/* A region created with the given flags: 0, or skip the test after
 * checking the documented error. */
static lfipc_region *create_or_skip(const char *name, size_t size,
				    unsigned flags)
{
	enum expect e = pool_expect();
	lfipc_region *r = NULL;
	int rc = lfipc_region_create_ex(name, size, 0, flags, &r);

	if (e == EXPECT_ENOMEM) {
		cr_assert_eq(rc, -ENOMEM,
			     "no huge pages reserved: want -ENOMEM, got %d",
			     rc);
		cr_assert_null(r);
		cr_skip_test("no huge pages reserved (vm.nr_hugepages 0): "
			     "checked -ENOMEM only");
	}
	if (e == EXPECT_EITHER && rc == -ENOMEM)
		cr_skip_test("huge page pool too small for every test at "
			     "once: got -ENOMEM");
	cr_assert_eq(rc, 0, "create with huge pages: %d", rc);
	return r;
}

Test(huge, anonymous_huge_region_has_huge_pages_or_fails_with_enomem)
{
	lfipc_region_info info;
	lfipc_region *r, *o;
	lfipc_queue *q;
	size_t hp = hpage();

	if (hp == 0)
		cr_skip_test("the kernel has no huge pages");
	/* 3 MiB: rounded up to a whole number of huge pages */
	r = create_or_skip(NULL, 3 * MIB, LFIPC_REGION_HUGE);
	cr_assert_eq(lfipc_region_page_size(r), hp);
	cr_assert_eq(lfipc_region_stats(r, &info), 0);
	cr_assert_eq(info.size, (3 * MIB + hp - 1) / hp * hp);
	check_usable(r);
	/* passed on by its fd (as over SCM_RIGHTS): the same huge pages */
	cr_assert_eq(lfipc_region_open_fd(lfipc_region_fd(r), &o), 0);
	cr_assert_eq(lfipc_region_page_size(o), hp);
	cr_assert_eq(lfipc_queue_open(o, "q", &q), 0);
	lfipc_queue_close(q);
	lfipc_region_close(o);
	lfipc_region_close(r);
}

Test(huge, prefer_always_creates_a_region_and_says_which_pages)
{
	lfipc_region_info info;
	lfipc_region *r;
	size_t ps, hp = hpage();

	cr_assert_eq(lfipc_region_create_ex(NULL, 3 * MIB, 0,
					    LFIPC_REGION_HUGE_PREFER, &r),
		     0);
	ps = lfipc_region_page_size(r);
	cr_assert(ps == (size_t)sysconf(_SC_PAGESIZE) || (hp && ps == hp),
		  "page size %zu", ps);
	if (pool_expect() == EXPECT_ENOMEM)
		cr_assert_eq(ps, (size_t)sysconf(_SC_PAGESIZE));
	cr_assert_eq(lfipc_region_stats(r, &info), 0);
	cr_assert_eq(info.size % ps, 0);
	cr_assert_geq(info.size, 3 * MIB);
	/* fallen back: rounded to the ordinary page, not the huge one */
	if (ps != hp)
		cr_assert_eq(info.size, 3 * MIB);
	check_usable(r);
	lfipc_region_close(r);
}

Test(huge, ordinary_region_reports_the_ordinary_page_size)
{
	lfipc_region *r;

	cr_assert_eq(lfipc_region_create(NULL, MIB, 0, &r), 0);
	cr_assert_eq(lfipc_region_page_size(r), (size_t)sysconf(_SC_PAGESIZE));
	lfipc_region_close(r);
	cr_assert_eq(lfipc_region_page_size(NULL), 0);
}

Test(huge, unknown_flags_are_einval)
{
	lfipc_region *r = (lfipc_region *)1;

	cr_assert_eq(lfipc_region_create_ex(NULL, MIB, 0, 0x100u, &r), -EINVAL);
	cr_assert_null(r);
	cr_assert_eq(lfipc_region_create_ex(rname, MIB, 0,
					    LFIPC_REGION_HUGE | 0x100u, &r),
		     -EINVAL);
}

Test(huge, named_huge_region_without_a_mount_is_eopnotsupp)
{
	char dir[256];
	lfipc_region *r = NULL;

	if (huge_mount(dir, sizeof(dir)))
		cr_skip_test("a hugetlbfs mount exists (%s)", dir);
	cr_assert_eq(
	    lfipc_region_create_ex(rname, 4 * MIB, 0, LFIPC_REGION_HUGE, &r),
	    -EOPNOTSUPP);
	cr_assert_null(r);
	/* nothing was left under the name */
	cr_assert_eq(lfipc_region_open(rname, &r), -ENOENT);
	/* PREFER falls back to /dev/shm, silently */
	cr_assert_eq(lfipc_region_create_ex(rname, 4 * MIB, 0,
					    LFIPC_REGION_HUGE_PREFER, &r),
		     0);
	cr_assert_eq(lfipc_region_page_size(r), (size_t)sysconf(_SC_PAGESIZE));
	lfipc_region_close(r);
	cr_assert_eq(lfipc_region_remove(rname, 0), 0);
}

/* Skip unless named huge regions can be made here. */
static void need_mount(char *dir, size_t n)
{
	if (hpage() == 0)
		cr_skip_test("the kernel has no huge pages");
	if (!huge_mount(dir, n))
		cr_skip_test("no hugetlbfs mount of the default huge page "
			     "size (mount -t hugetlbfs none /dev/hugepages)");
}

Test(huge, named_huge_region_is_opened_probed_and_removed_by_name)
{
	char dir[256], path[512];
	lfipc_region_status st = {.struct_size = sizeof(st)};
	lfipc_region *r, *o;
	lfipc_queue *q;
	struct stat sb;
	char buf[64];

	need_mount(dir, sizeof(dir));
	r = create_or_skip(rname, 4 * MIB, LFIPC_REGION_HUGE);
	snprintf(path, sizeof(path), "%s%s", dir, rname);
	cr_assert_eq(stat(path, &sb), 0, "the region's file is in %s", dir);
	cr_assert(S_ISREG(sb.st_mode));
	cr_assert_eq(sb.st_mode & 07777, LFIPC_REGION_DEFAULT_MODE);
	cr_assert_eq(lfipc_region_page_size(r), hpage());
	check_usable(r);
	cr_assert_eq(lfipc_queue_open(r, "q", &q), 0);
	cr_assert_eq(lfipc_queue_put(q, "x", 1, LFIPC_NOWAIT), 0);

	/* an opener needs no flag and sees the same memory */
	cr_assert_eq(lfipc_region_open(rname, &o), 0);
	cr_assert_eq(lfipc_region_page_size(o), hpage());
	{
		lfipc_queue *q2;
		size_t n = 0;

		cr_assert_eq(lfipc_queue_open(o, "q", &q2), 0);
		cr_assert_eq(
		    lfipc_queue_get(q2, buf, sizeof(buf), &n, LFIPC_NOWAIT), 0);
		cr_assert_eq(n, 1);
		cr_assert_eq(buf[0], 'x');
		lfipc_queue_close(q2);
	}
	lfipc_queue_close(q);

	cr_assert_eq(lfipc_region_probe(rname, &st), 0);
	cr_assert_eq(st.participants, 2);
	cr_assert_eq(st.size, 4 * MIB);
	cr_assert(!st.stale);
	cr_assert_eq(lfipc_region_remove(rname, 0), -EBUSY);
	lfipc_region_close(o);
	lfipc_region_close(r);
	st.struct_size = sizeof(st);
	cr_assert_eq(lfipc_region_probe(rname, &st), 0);
	cr_assert(st.stale);
	cr_assert_eq(lfipc_region_remove(rname, 0), 0);
	cr_assert_eq(stat(path, &sb), -1);
	cr_assert_eq(lfipc_region_open(rname, &o), -ENOENT);
}

Test(huge, a_name_is_one_namespace_over_dev_shm_and_hugetlbfs)
{
	char dir[256];
	lfipc_region *r, *o = NULL;

	need_mount(dir, sizeof(dir));
	/* ordinary first: the huge one is refused */
	cr_assert_eq(lfipc_region_create(rname, MIB, 0, &r), 0);
	cr_assert_eq(
	    lfipc_region_create_ex(rname, 4 * MIB, 0, LFIPC_REGION_HUGE, &o),
	    -EEXIST);
	cr_assert_null(o);
	lfipc_region_close(r);
	cr_assert_eq(lfipc_region_remove(rname, 0), 0);

	/* huge first: the ordinary one is refused */
	r = create_or_skip(rname, 4 * MIB, LFIPC_REGION_HUGE);
	cr_assert_eq(lfipc_region_create(rname, MIB, 0, &o), -EEXIST);
	cr_assert_null(o);
	/* open-or-create opens the huge one */
	cr_assert_eq(lfipc_region_create_ex(
			 rname, 3 * MIB, 0,
			 LFIPC_REGION_OPEN_OR_CREATE | LFIPC_REGION_HUGE, &o),
		     0);
	cr_assert_eq(lfipc_region_page_size(o), hpage());
	lfipc_region_close(o);
	lfipc_region_close(r);
	cr_assert_eq(lfipc_region_unlink(rname), 0);
	cr_assert_eq(lfipc_region_unlink(rname), -ENOENT);
}

static int create_and_die(void *arg)
{
	lfipc_region *r;

	if (lfipc_region_create_ex(arg, 4 * MIB, 0, LFIPC_REGION_HUGE, &r) < 0)
		return 1;
	raise(SIGKILL); /* dies registered, never closing */
	return 2;
}

Test(huge, stale_named_huge_region_is_taken_over)
{
	char dir[256];
	lfipc_region_status st = {.struct_size = sizeof(st)};
	lfipc_region *r;
	pid_t pid;
	int rc;

	need_mount(dir, sizeof(dir));
	if (pool_expect() != EXPECT_OK)
		cr_skip_test("huge page pool too small for this test");
	pid = th_fork(create_and_die, rname);
	rc = th_reap(pid, REAP_MS);
	cr_assert_eq(rc, 128 + SIGKILL, "child: %d", rc);
	cr_assert_eq(lfipc_region_probe(rname, &st), 0);
	cr_assert(st.stale);
	cr_assert_eq(st.dead, 1);
	cr_assert_eq(lfipc_region_create_ex(
			 rname, 4 * MIB, 0,
			 LFIPC_REGION_TAKEOVER | LFIPC_REGION_HUGE, &r),
		     0);
	cr_assert_eq(lfipc_region_page_size(r), hpage());
	lfipc_region_close(r);
}
