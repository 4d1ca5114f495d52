/* SPDX-License-Identifier: MIT */
/*
 * region.c - create, open, validate and map regions.
 *
 * The layout of a region is a pure function of its size (layout_compute()),
 * so an opener recomputes it from the file size and refuses a header that
 * disagrees in any field, on top of the magic, the version and a checksum.
 * After validation the handle keeps private copies of the layout; the
 * header's immutable part is never read from shared memory again.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "internal/futex.h"
#include "internal/poll.h"
#include "internal/guard.h"
#include "internal/objtype.h"
#include "internal/proc.h"
#include "internal/region.h"
#include "internal/shm.h"
#include "internal/wait.h"

struct layout {
	uint64_t size, proc_off, dir_off, bitmap_off, heap_off, heap_granules;
	uint64_t death_off, poll_off;
	uint32_t proc_cap, dir_cap, death_slots, poll_cap;
	uint8_t uuid[16]; /* not a function of the size: copied, not computed */
};

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static int layout_compute(uint64_t size, struct layout *L)
{
	uint64_t rest, g, bitmap_bytes;
	uint64_t dir;

	if (size < LFIPC_REGION_MIN_SIZE || size > LFIPC_REGION_MAX_SIZE)
		return -ERANGE;
	memset(L, 0, sizeof(*L));
	L->size = size;
	L->proc_off = LFIPC_HDR_SIZE;
	L->proc_cap = LFIPC_PROC_SLOTS;
	/* Death words for min(1024, max(16, size / 32 KiB)) slots, 3 per
	 * page; a poll table of clamp(size / 64 KiB, 64, 1024) entries. */
	L->death_off = align_up(L->proc_off + (uint64_t)LFIPC_PROC_SLOTS *
						      sizeof(struct lfipc_proc_slot),
				4096);
	L->death_slots = (uint32_t)(size / 32768 < 16 ? 16
				    : size / 32768 > LFIPC_PROC_SLOTS
					? LFIPC_PROC_SLOTS
					: size / 32768);
	L->poll_off = L->death_off + (uint64_t)(L->death_slots + 2) /
					     LFIPC_DEATH_PER_PAGE * 4096;
	L->poll_cap = (uint32_t)(size / 65536 < 64 ? 64
				 : size / 65536 > 1024 ? 1024
						       : size / 65536);
	L->dir_off = align_up(L->poll_off + (uint64_t)L->poll_cap *
						    sizeof(struct lfipc_poll_entry),
			      4096);
	dir = size / 8192;
	if (dir < LFIPC_DIR_MIN)
		dir = LFIPC_DIR_MIN;
	if (dir > LFIPC_DIR_MAX)
		dir = LFIPC_DIR_MAX;
	L->dir_cap = (uint32_t)dir;
	L->bitmap_off = L->dir_off + dir * sizeof(struct lfipc_dirent);
	if (L->bitmap_off + 2 * 4096 > size)
		return -EINVAL;
	/* granules g such that bitmap (g bits, in whole 64-bit words) plus
	 * page-aligned heap fit in the rest */
	rest = size - L->bitmap_off;
	g = rest / LFIPC_GRANULE;
	for (;;) {
		bitmap_bytes = align_up((g + 63) / 64 * 8, LFIPC_CACHELINE);
		L->heap_off = align_up(L->bitmap_off + bitmap_bytes, 4096);
		if (L->heap_off < size &&
		    g <= (size - L->heap_off) / LFIPC_GRANULE)
			break;
		g = L->heap_off < size ? (size - L->heap_off) / LFIPC_GRANULE
				       : 0;
		if (g == 0)
			return -EINVAL;
	}
	L->heap_granules = g;
	return 0;
}

static uint64_t fnv1a(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	while (n--) {
		h ^= *b++;
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

static uint64_t header_sum(const struct lfipc_hdr *h)
{
	return fnv1a(&h->version, offsetof(struct lfipc_hdr, layout_sum) -
					  offsetof(struct lfipc_hdr, version));
}

/* Validate the header of a mapping of `size` bytes and fill L. */
static int validate(const uint8_t *base, uint64_t size, struct layout *L)
{
	const struct lfipc_hdr *h = (const struct lfipc_hdr *)base;
	struct lfipc_hdr copy;
	int rc;

	if (size < LFIPC_HDR_SIZE)
		return -EPROTO;
	lfipc__shm_copy(&copy, h, sizeof(copy));
	if (copy.version != LFIPC_LAYOUT_VERSION ||
	    copy.hdr_size != sizeof(struct lfipc_hdr) || copy.size != size)
		return -EPROTO;
	if (header_sum(&copy) != copy.layout_sum)
		return -EPROTO;
	rc = layout_compute(size, L);
	if (rc < 0)
		return -EPROTO;
	if (copy.proc_off != L->proc_off || copy.proc_cap != L->proc_cap ||
	    copy.dir_off != L->dir_off || copy.dir_cap != L->dir_cap ||
	    copy.bitmap_off != L->bitmap_off || copy.heap_off != L->heap_off ||
	    copy.heap_granules != L->heap_granules ||
	    copy.death_off != L->death_off || copy.poll_off != L->poll_off ||
	    copy.death_slots != L->death_slots || copy.poll_cap != L->poll_cap)
		return -EPROTO;
	memcpy(L->uuid, copy.uuid, sizeof(L->uuid));
	return 0;
}

/*
 * A POSIX shared-memory name as glibc maps it to a file: shm_open() strips
 * every leading '/' and opens /dev/shm/<rest> with O_NOFOLLOW, refusing an
 * empty rest or one that contains '/'. So "x" and "//x" would name "/x"
 * (we require exactly one leading slash, so each region has one spelling),
 * and "/." and "/.." would name /dev/shm itself and /dev: directories,
 * which O_CREAT | O_EXCL reports as -EEXIST and shm_unlink() would try to
 * unlink. The file name (without the slash) is at most NAME_MAX - 1 bytes.
 */
static int name_check_shm(const char *name)
{
	size_t n;

	if (!name || name[0] != '/')
		return -EINVAL;
	n = strlen(name);
	if (n < 2 || n > NAME_MAX || strchr(name + 1, '/'))
		return -EINVAL;
	if (strcmp(name, "/.") == 0 || strcmp(name, "/..") == 0)
		return -EINVAL;
	return 0;
}

/* Map size bytes of fd shared; unless the file is sealed against
 * shrinking, watch the mapping for truncation (internal/guard.h).
 * Return: the mapping, or MAP_FAILED with errno set. */
static uint8_t *region_map(int fd, uint64_t size)
{
	void *p =
	    mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p != MAP_FAILED && !lfipc__guard_sealed(fd))
		lfipc__guard_add(p, size, fd);
	return p;
}

/* Undo region_map (before fd is closed). */
static void region_unmap(uint8_t *base, uint64_t size)
{
	lfipc__guard_remove(base);
	munmap(base, (size_t)size);
}

static lfipc_region *handle_new(int fd, uint8_t *base, const struct layout *L,
				bool named)
{
	lfipc_region *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->fd = fd;
	r->base = base;
	r->size = L->size;
	r->named = named;
	r->proc_off = L->proc_off;
	r->proc_cap = L->proc_cap;
	r->dir_off = L->dir_off;
	r->dir_cap = L->dir_cap;
	r->bitmap_off = L->bitmap_off;
	r->heap_off = L->heap_off;
	r->heap_granules = L->heap_granules;
	r->death_off = L->death_off;
	r->death_slots = L->death_slots;
	r->poll_off = L->poll_off;
	r->poll_cap = L->poll_cap;
	memcpy(r->uuid, L->uuid, sizeof(r->uuid));
	pthread_mutex_init(&r->lock_mu, NULL);
	lfipc__proc_init(&r->proc, fd, base + L->proc_off, L->proc_cap,
			 &r->lock_mu);
	return r;
}

static void handle_free(lfipc_region *r)
{
	lfipc__proc_destroy(&r->proc);
	pthread_mutex_destroy(&r->lock_mu);
	free(r);
}

/* Register, track for fork, hand out. On failure unmaps and closes. */
static int attach(lfipc_region *r, lfipc_region **out)
{
	int rc = lfipc__proc_register(&r->proc);

	if (rc < 0) {
		region_unmap(r->base, r->size);
		close(r->fd);
		handle_free(r);
		return rc;
	}
	lfipc__proc_track(&r->proc);
	*out = r;
	return 0;
}

/* The file glibc's shm_open() gives name (checked by name_check_shm). */
static void shm_path(const char *name, char path[NAME_MAX + 16])
{
	snprintf(path, NAME_MAX + 16, "/dev/shm%s", name);
}

/* ---- huge pages -------------------------------------------------------- */

#define HUGETLBFS_MAGIC_ 0x958458f6 /* linux/magic.h HUGETLBFS_MAGIC */
#define HUGE_FLAGS (LFIPC_REGION_HUGE | LFIPC_REGION_HUGE_PREFER)
#define CREATE_FLAGS (LFIPC_REGION_OPEN_OR_CREATE | LFIPC_REGION_TAKEOVER)

/* The default huge page size (/proc/meminfo "Hugepagesize:"), in bytes;
 * 0 when the kernel has none. */
static uint64_t huge_default_size(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[128];
	unsigned long long kb = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Hugepagesize: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb * 1024;
}

/*
 * Named huge regions live in a hugetlbfs mount: the first one in
 * /proc/self/mounts whose page size is the default huge page size (such
 * as /dev/hugepages), looked up afresh each time (mounts come and go).
 * Fills dir (PATH_MAX bytes) and *page. Return: 0; -EOPNOTSUPP none.
 */
static int huge_mount(char *dir, uint64_t *page)
{
	uint64_t want = huge_default_size();
	struct mntent ent, *m;
	char buf[1024];
	FILE *f;
	int rc = -EOPNOTSUPP;

	if (want == 0)
		return -EOPNOTSUPP;
	f = setmntent("/proc/self/mounts", "re");
	if (!f)
		return -EOPNOTSUPP;
	while ((m = getmntent_r(f, &ent, buf, sizeof(buf)))) {
		struct statfs sf;

		if (strcmp(m->mnt_type, "hugetlbfs") != 0 ||
		    strlen(m->mnt_dir) >= PATH_MAX - NAME_MAX - 2 ||
		    statfs(m->mnt_dir, &sf) < 0 ||
		    sf.f_type != HUGETLBFS_MAGIC_ || (uint64_t)sf.f_bsize != want)
			continue;
		snprintf(dir, PATH_MAX, "%s", m->mnt_dir);
		*page = want;
		rc = 0;
		break;
	}
	endmntent(f);
	return rc;
}

/* The file of name (checked) in the hugetlbfs mount. Return: 0;
 * -EOPNOTSUPP no mount. */
static int huge_path(const char *name, char path[PATH_MAX])
{
	uint64_t page;
	int rc = huge_mount(path, &page);

	if (rc == 0)
		strcat(path, name); /* room kept by huge_mount() */
	return rc;
}

/*
 * Named regions have one namespace over two directories: /dev/shm (where
 * shm_open() looks) and the hugetlbfs mount. A name is looked up in
 * /dev/shm first, then in the hugetlbfs mount. Both are opened with
 * O_NOFOLLOW, as shm_open() does; callers refuse what is not a regular
 * file. Fills path (PATH_MAX bytes) with the file opened. Return: the fd;
 * -ENOENT in neither; other negative errno values from open().
 */
static int named_open(const char *name, int flags, char *path)
{
	int fd;

	shm_path(name, path);
	fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 || errno != ENOENT)
		return fd >= 0 ? fd : -errno;
	if (huge_path(name, path) < 0)
		return -ENOENT;
	fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

/* Does name exist in the other directory than the one huge says? */
static bool name_elsewhere(const char *name, bool huge)
{
	char path[PATH_MAX];

	if (huge)
		shm_path(name, path);
	else if (huge_path(name, path) < 0)
		return false;
	return access(path, F_OK) == 0;
}

size_t lfipc_region_page_size(const lfipc_region *r)
{
	long pg = sysconf(_SC_PAGESIZE);
	struct statfs sf;

	if (!r)
		return 0;
	if (fstatfs(r->fd, &sf) == 0 && sf.f_type == HUGETLBFS_MAGIC_ &&
	    sf.f_bsize > 0)
		return (size_t)sf.f_bsize;
	return pg > 0 ? (size_t)pg : 4096;
}

/*
 * A named region is made in a file that has no name yet (O_TMPFILE in
 * /dev/shm, where glibc's shm_open() keeps its names), sized, initialised
 * and registered in, and only then linked to its name (publish()); the
 * link fails if the name exists, which is the O_EXCL of a creation. So no
 * other process ever sees a region of ours half made (an empty or
 * unlocked file that a remover or a takeover would take for a stale
 * region and unlink under us), and a creator that loses, fails or dies
 * never unlinks anything: the nameless file goes with its last fd.
 */
static int nameless_in(const char *dir, mode_t mode)
{
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, mode & 07777);

	return fd >= 0 ? fd : -errno;
}

/* Give the nameless file behind fd the name path. Return: 0; -EEXIST the
 * name exists; other negative errno values from linkat(). */
static int publish(int fd, const char *path)
{
	char src[64];

	snprintf(src, sizeof(src), "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, src, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0
		   ? 0
		   : -errno;
}

/*
 * The name is one namespace over /dev/shm and the hugetlbfs mount
 * (named_open()), but a link is exclusive in one directory only. So a
 * creator links first, then looks in the other directory, and yields
 * (unlinks its own file again: it is registered, so no remover took it
 * meanwhile, and an opener that got in sees it unlinked and looks again)
 * if the name is there too. Of two creators racing in both directories
 * at least one sees the other, so at most one keeps the name (both may
 * yield: both report -EEXIST). Return: 0; -EEXIST.
 */
static int publish_unique(int fd, const char *path, const char *name,
			  bool huge)
{
	struct stat a, b;
	int rc = publish(fd, path);

	if (rc < 0 || !name_elsewhere(name, huge))
		return rc;
	if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino)
		unlink(path);
	return -EEXIST;
}

/* Bytes of memory the kernel could still give a tmpfs file: MemAvailable
 * plus SwapFree from /proc/meminfo; UINT64_MAX when it does not say. */
static uint64_t mem_room(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	unsigned long long kb;
	uint64_t room = 0;
	char line[128];
	int seen = 0;

	if (!f)
		return UINT64_MAX;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1 ||
		    sscanf(line, "SwapFree: %llu kB", &kb) == 1) {
			room += (uint64_t)kb * 1024;
			seen++;
		}
	fclose(f);
	return seen == 2 ? room : UINT64_MAX;
}

/*
 * Make the region's file: named (nameless until published) or anonymous,
 * in hugetlbfs when *huge, sized and allocated. LFIPC_REGION_HUGE_PREFER
 * that finds no huge pages clears *huge and makes an ordinary file.
 * Fills path (named) and *size (rounded to the page size in use).
 * Return: the fd; -ENOMEM not enough free huge pages, or a size above
 * what memory and swap hold now (mem_room()); -EOPNOTSUPP no huge pages
 * in the kernel, or (named) no hugetlbfs mount; -ENOSPC; other negative
 * errno values.
 */
static int region_file(const char *name, mode_t mode, unsigned flags,
		       uint64_t *size, char path[PATH_MAX], bool *huge)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint64_t page = pg > 0 ? (uint64_t)pg : 4096, want = *size;
	char dir[PATH_MAX];
	int fd, rc;

	*huge = (flags & HUGE_FLAGS) != 0;
	if (*huge) {
		rc = name ? huge_mount(dir, &page) : 0;
		if (!name)
			page = huge_default_size();
		if (rc == 0 && page == 0)
			rc = -EOPNOTSUPP;
		if (rc < 0)
			goto fallback;
		if (name)
			snprintf(path, PATH_MAX, "%s%s", dir, name);
	} else if (name) {
		shm_path(name, path);
	}
	*size = align_up(*size, page);
	if (*size > LFIPC_REGION_MAX_SIZE)
		return -ERANGE;
	if (name) {
		/* Fail early for a name that exists (publish() decides). */
		if (access(path, F_OK) == 0 || name_elsewhere(name, *huge))
			return -EEXIST;
		fd = nameless_in(*huge ? dir : "/dev/shm", mode);
		if (fd >= 0 && fchmod(fd, mode & 07777) < 0) {
			rc = -errno;
			close(fd);
			return rc;
		}
	} else {
		fd = memfd_create("lfipc", MFD_CLOEXEC | MFD_ALLOW_SEALING |
						   (*huge ? MFD_HUGETLB : 0));
		fd = fd >= 0 ? fd : -errno;
	}
	if (fd < 0) {
		rc = *huge && (fd == -EINVAL || fd == -EOPNOTSUPP)
			     ? -EOPNOTSUPP
			     : fd;
		goto fail_huge;
	}
	if (ftruncate(fd, (off_t)*size) < 0) {
		rc = -errno;
		goto fail;
	}
	/* Allocate the pages now: a full /dev/shm is -ENOSPC here, not a
	 * SIGBUS at some later store. In hugetlbfs this takes the huge
	 * pages out of the pool; too few is ENOSPC there, -ENOMEM to us.
	 * Ordinary pages come out of memory: a size that memory and swap
	 * cannot hold is -ENOMEM before any is taken (tmpfs is often as big
	 * as memory, so fallocate would fill memory and wake the OOM killer
	 * before it said ENOSPC). */
	if (!*huge && *size > mem_room()) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = posix_fallocate(fd, 0, (off_t)*size);
	if (rc != 0 && rc != EOPNOTSUPP && rc != EINVAL) {
		rc = *huge && rc == ENOSPC ? -ENOMEM : -rc;
		goto fail;
	}
	if (!name)
		fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	return fd;

fail:
	close(fd);
fail_huge:
	if (!*huge)
		return rc;
fallback:
	if (!(flags & LFIPC_REGION_HUGE_PREFER) ||
	    (rc != -ENOMEM && rc != -EOPNOTSUPP))
		return rc;
	*size = want; /* rounded to the ordinary page size instead */
	return region_file(name, mode, 0, size, path, huge);
}

/* LFIPC_REGION_HUGE_PREFER without hugetlbfs: ask for transparent huge
 * pages (shmem THP, where shmem_enabled or the mount's huge= option
 * allow "advise"). The pages are allocated already; khugepaged may
 * collapse them later. Advice only: errors are ignored. */
static void advise_huge(void *base, uint64_t size, unsigned flags, bool huge)
{
	if ((flags & LFIPC_REGION_HUGE_PREFER) && !huge)
		(void)madvise(base, (size_t)size, MADV_HUGEPAGE);
}

static int region_create(const char *name, size_t size_in, mode_t mode,
			 unsigned flags, lfipc_region **out)
{
	struct layout L;
	struct lfipc_hdr hdr, *h;
	lfipc_region *r;
	uint8_t *base;
	uint64_t size = size_in;
	char path[PATH_MAX];
	bool huge;
	int fd, rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (name && name_check_shm(name) < 0)
		return -EINVAL;
	if (size > LFIPC_REGION_MAX_SIZE)
		return -ERANGE;
	if (flags & ~(CREATE_FLAGS | HUGE_FLAGS))
		return -EINVAL;
	/* Too small whatever the page size (rounding only grows it). */
	if (align_up(size, 4096) < LFIPC_REGION_MIN_SIZE)
		return -ERANGE;
	if (mode == 0)
		mode = LFIPC_REGION_DEFAULT_MODE;
	fd = region_file(name, mode, flags, &size, path, &huge);
	if (fd < 0)
		return fd;
	rc = layout_compute(size, &L);
	if (rc < 0)
		goto fail;
	base = region_map(fd, size);
	if (base == MAP_FAILED) {
		rc = huge && errno == ENOMEM ? -ENOMEM : -errno;
		goto fail;
	}
	advise_huge(base, size, flags, huge);

	/* The header is built privately and copied out, magic last. */
	memset(&hdr, 0, sizeof(hdr));
	hdr.version = LFIPC_LAYOUT_VERSION;
	hdr.hdr_size = sizeof(struct lfipc_hdr);
	hdr.size = size;
	hdr.proc_off = L.proc_off;
	hdr.proc_cap = L.proc_cap;
	hdr.dir_off = L.dir_off;
	hdr.dir_cap = L.dir_cap;
	hdr.bitmap_off = L.bitmap_off;
	hdr.heap_off = L.heap_off;
	hdr.heap_granules = L.heap_granules;
	hdr.death_off = L.death_off;
	hdr.poll_off = L.poll_off;
	hdr.death_slots = L.death_slots;
	hdr.poll_cap = L.poll_cap;
	if (getrandom(L.uuid, sizeof(L.uuid), 0) != (ssize_t)sizeof(L.uuid)) {
		/* no entropy source: time and pid still separate regions */
		int64_t t = lfipc__now_ns();
		pid_t pid = getpid();

		memcpy(L.uuid, &t, sizeof(t));
		memcpy(L.uuid + sizeof(t), &pid, sizeof(pid));
	}
	memcpy(hdr.uuid, L.uuid, sizeof(hdr.uuid));
	hdr.layout_sum = header_sum(&hdr);
	hdr.granules_free = L.heap_granules;
	h = (struct lfipc_hdr *)base;
	memcpy((uint8_t *)h + sizeof(hdr.magic),
	       (uint8_t *)&hdr + sizeof(hdr.magic),
	       sizeof(hdr) - sizeof(hdr.magic));
	/* H1: release: an opener that sees the magic (acquire, H2) sees the
	 * initialised header. */
	atomic_store_explicit(&h->magic, LFIPC_MAGIC, memory_order_release);

	r = handle_new(fd, base, &L, name != NULL);
	if (!r) {
		rc = -ENOMEM;
		region_unmap(base, size);
		goto fail;
	}
	rc = attach(r, out); /* on failure: unmapped and closed */
	if (rc < 0 || !name)
		return rc;
	/* Registered: from its first instant under the name, the region has
	 * a live participant, so no remover or takeover can take it. */
	rc = publish_unique(fd, path, name, huge);
	if (rc < 0) {
		lfipc_region_close(*out);
		*out = NULL;
	}
	return rc;

fail:
	close(fd);
	return rc;
}

int lfipc_region_create(const char *name, size_t size, mode_t mode,
			lfipc_region **out)
{
	return region_create(name, size, mode, 0, out);
}

/* How long an open waits, in all, for a creator still initialising the
 * region (region.h: "up to about one second"). */
#define INIT_WAIT_NS ((int64_t)1000000000)

/*
 * An open that races with a create waits for the creator to size the file
 * and then to write the magic. It polls, through the wait layer's back-off
 * (lfipc__wait_retry), because there is nothing to sleep on: until the
 * creator has sized the file there is no page to hold a futex word, and a
 * creator does not know who waits. Only an open that races with a create
 * ever gets past the first attempt. The wait is bounded by the clock, not
 * by a count of sleeps, which a loaded machine or a large timer slack
 * stretches.
 */
struct init_look {
	int fd;
	struct stat *st;
	const uint8_t *base;
};

/* The file is sized: 1; still empty (ftruncate has not happened yet): 0;
 * anything else: -EPROTO. */
static int init_sized(void *ctx, bool check)
{
	struct init_look *l = ctx;

	(void)check;
	if (fstat(l->fd, l->st) < 0)
		return -errno;
	if (l->st->st_size >= (off_t)LFIPC_HDR_SIZE)
		return 1;
	return l->st->st_size == 0 ? 0 : -EPROTO;
}

/* The magic is written: 1; still 0 (being initialised): 0; else
 * -EPROTO. */
static int init_magic(void *ctx, bool check)
{
	struct init_look *l = ctx;
	/* H2: acquire, pairs with H1. */
	uint64_t m = atomic_load_explicit(
	    &((struct lfipc_hdr *)l->base)->magic, memory_order_acquire);

	(void)check;
	if (m == LFIPC_MAGIC)
		return 1;
	return m == 0 ? 0 : -EPROTO;
}

/* Map fd (ours) and validate it; waits a little for a creator that has
 * not yet sized the file or written the magic. */
static int map_and_validate(int fd, bool named, lfipc_region **out)
{
	/* One deadline for both waits below. */
	lfipc_deadline deadline = lfipc__now_ns() + INIT_WAIT_NS;
	struct layout L;
	struct stat st;
	struct init_look look = {fd, &st, NULL};
	lfipc_region *r;
	uint8_t *base;
	int rc;

	rc = lfipc__wait_retry(init_sized, &look, deadline);
	if (rc < 0) {
		rc = rc == -ETIMEDOUT ? -EPROTO : rc;
		goto fail;
	}
	if ((uint64_t)st.st_size > LFIPC_REGION_MAX_SIZE) {
		rc = -EPROTO;
		goto fail;
	}
	base = region_map(fd, (uint64_t)st.st_size);
	if (base == MAP_FAILED) {
		rc = -errno;
		goto fail;
	}
	look.base = base;
	rc = lfipc__wait_retry(init_magic, &look, deadline);
	if (rc < 0) {
		rc = rc == -ETIMEDOUT ? -EPROTO : rc;
		goto fail_unmap;
	}
	rc = validate(base, (uint64_t)st.st_size, &L);
	if (rc < 0)
		goto fail_unmap;
	r = handle_new(fd, base, &L, named);
	if (!r) {
		rc = -ENOMEM;
		goto fail_unmap;
	}
	return attach(r, out);

fail_unmap:
	region_unmap(base, (uint64_t)st.st_size);
fail:
	close(fd);
	return rc;
}

/* Was the file behind r's fd removed (or replaced) while we attached? */
static bool unlinked(const lfipc_region *r)
{
	struct stat st;

	return fstat(r->fd, &st) == 0 && st.st_nlink == 0;
}

int lfipc_region_open(const char *name, lfipc_region **out)
{
	char path[PATH_MAX];
	int fd, rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (name_check_shm(name) < 0)
		return -EINVAL;
	for (int tries = 0;; tries++) {
		fd = named_open(name, O_RDWR, path);
		if (fd < 0)
			return fd;
		rc = map_and_validate(fd, true, out);
		/* A remover or a takeover unlinked the name between our
		 * shm_open and our registration (it held the gate): what we
		 * registered in is gone; open what the name is now. */
		if (rc < 0 || !unlinked(*out) || tries >= 100)
			return rc;
		lfipc_region_close(*out);
		*out = NULL;
	}
}

int lfipc_region_open_fd(int fd, lfipc_region **out)
{
	int own;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (fd < 0)
		return -EBADF;
	own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (own < 0)
		return -errno;
	return map_and_validate(own, false, out);
}

int lfipc_region_fd(const lfipc_region *r)
{
	return r ? r->fd : -EINVAL;
}

void lfipc_region_close(lfipc_region *r)
{
	if (!r)
		return;
	lfipc__proc_untrack(&r->proc);
	lfipc__poll_cache_free(r);
	lfipc__proc_unregister(&r->proc);
	region_unmap(r->base, r->size);
	close(r->fd);
	handle_free(r);
}

int lfipc_region_unlink(const char *name)
{
	char path[PATH_MAX];

	if (name_check_shm(name) < 0)
		return -EINVAL;
	if (shm_unlink(name) == 0)
		return 0;
	if (errno != ENOENT || huge_path(name, path) < 0)
		return -errno;
	return unlink(path) == 0 ? 0 : -errno;
}

/* ---- lifecycle: open-or-create, takeover, remove, probe ----------------- */

/* The OFD lock a remover takes: the gate and every liveness byte. */
static int remover_lock(int fd, short type)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = LFIPC_GATE_BYTE;
	fl.l_len = 1 + (off_t)LFIPC_PROC_SLOTS;
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
}

/*
 * Is the file behind fd an lfipc region? Return: 0 yes, it carries the
 * magic (a corrupt header still counts: its magic says it is ours); 1
 * perhaps: a regular file of a region's size (a page multiple within the
 * region size limits) whose whole header page is zero, which is what a
 * creator of an older lfipc (one that made the file visible before
 * writing it) left when it died; the caller counts it as ours only while
 * its remover lock proves that nobody is creating or registered in it;
 * -EPROTO no (anything else, including empty files, FIFOs and other
 * files that are not regular).
 */
static int looks_ours(int fd)
{
	static const uint8_t zero[LFIPC_HDR_SIZE];
	uint8_t head[LFIPC_HDR_SIZE];
	struct stat st;
	uint64_t magic;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size < (off_t)LFIPC_HDR_SIZE ||
	    pread(fd, head, sizeof(head), 0) != (ssize_t)sizeof(head))
		return -EPROTO;
	memcpy(&magic, head, sizeof(magic));
	if (magic == LFIPC_MAGIC)
		return 0;
	if ((uint64_t)st.st_size < LFIPC_REGION_MIN_SIZE ||
	    (uint64_t)st.st_size > LFIPC_REGION_MAX_SIZE ||
	    st.st_size % 4096 != 0 || memcmp(head, zero, sizeof(head)) != 0)
		return -EPROTO;
	return 1;
}

/* Unlink name if it still names the file behind fd. Called with the
 * remover lock held on fd, so among lock-respecting removers nobody else
 * can unlink or replace the name in between. Return: 0; -EAGAIN the name
 * now names another file (start again); -ENOENT. */
static int unlink_if_same(const char *path, int fd)
{
	struct stat a, b;

	if (fstat(fd, &a) < 0)
		return -errno;
	if (stat(path, &b) < 0)
		return -errno;
	if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return -EAGAIN;
	return unlink(path) == 0 ? 0 : -errno;
}

static int remove_named(const char *name, unsigned flags)
{
	char path[PATH_MAX];
	int fd, rc, ours;

	for (int tries = 0; tries < 100; tries++) {
		fd = named_open(name, O_RDWR | O_NONBLOCK, path);
		if (fd < 0)
			return fd;
		/* Locked first, so that what looks_ours() reads is not being
		 * written by a creator. */
		rc = remover_lock(fd, F_WRLCK);
		ours = rc == 0 || rc == -EBUSY ? looks_ours(fd) : rc;
		if (ours < 0)
			rc = ours;
		else if (rc == -EBUSY && ours == 0 &&
			 (flags & LFIPC_REGION_FORCE))
			rc = 0; /* forced; never for a zero file (ours 1) */
		if (rc == 0)
			rc = unlink_if_same(path, fd);
		close(fd); /* drops our locks */
		if (rc != -EAGAIN)
			return rc;
	}
	return -EBUSY;
}

int lfipc_region_remove(const char *name, unsigned flags)
{
	if (name_check_shm(name) < 0 || (flags & ~LFIPC_REGION_FORCE))
		return -EINVAL;
	return remove_named(name, flags);
}

int lfipc_region_create_ex(const char *name, size_t size, mode_t mode,
			   unsigned flags, lfipc_region **out)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t hpage;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (flags & ~(CREATE_FLAGS | HUGE_FLAGS))
		return -EINVAL;
	if (!name || !(flags & CREATE_FLAGS))
		return region_create(name, size, mode, flags, out);
	for (int tries = 0; tries < 100; tries++) {
		rc = region_create(name, size, mode, flags, out);
		if (rc != -EEXIST)
			return rc;
		if (flags & LFIPC_REGION_TAKEOVER) {
			/* Removed only if stale: decided under the remover
			 * lock (every liveness byte and the gate). */
			rc = remove_named(name, 0);
			if (rc == 0 || rc == -ENOENT)
				continue; /* gone: create it afresh */
			if (rc != -EBUSY && rc != -EPROTO)
				return rc;
		}
		if (!(flags & LFIPC_REGION_OPEN_OR_CREATE))
			return -EEXIST;
		rc = lfipc_region_open(name, out);
		if (rc == -ENOENT)
			continue; /* removed meanwhile: create it */
		if (rc < 0)
			return rc;
		/* The same size as we would have made (in huge pages or,
		 * for a region that fell back or has none, in pages). */
		hpage = flags & HUGE_FLAGS ? huge_default_size() : 0;
		if ((*out)->size ==
			align_up(size, page > 0 ? (uint64_t)page : 4096) ||
		    (hpage && (*out)->size == align_up(size, hpage)))
			return 0;
		lfipc_region_close(*out);
		*out = NULL;
		return -EEXIST;
	}
	return -EBUSY;
}

/* Count the live and dead participants of the region behind fd (layout
 * L) into s, from a private copy of the participant table. Return: 0;
 * -EPROTO the file is shorter than its layout; -ENOMEM. */
static int probe_slots(int fd, const struct layout *L, lfipc_region_status *s)
{
	size_t n = (size_t)L->proc_cap * sizeof(struct lfipc_proc_slot);
	void *table = malloc(n);
	int rc = 0;

	if (!table)
		return -ENOMEM;
	if (pread(fd, table, n, (off_t)L->proc_off) != (ssize_t)n) {
		rc = -EPROTO;
		goto out;
	}
	for (uint32_t i = 0; i < L->proc_cap; i++) {
		struct lfipc__slotinfo si;

		if (lfipc__slot_probe(fd, table, L->proc_cap, i, &si) < 0)
			continue;
		if (si.state == LFIPC_SLOT_ALIVE)
			s->participants++;
		else if (si.state == LFIPC_SLOT_DEAD)
			s->dead++;
	}
out:
	free(table);
	return rc;
}

int lfipc_region_probe(const char *name, lfipc_region_status *st)
{
	lfipc_region_status s;
	struct layout L;
	struct stat fs;
	const struct lfipc_hdr *h;
	uint8_t head[LFIPC_HDR_SIZE];
	char path[PATH_MAX];
	uint64_t magic, free_g;
	size_t want;
	int fd, rc = 0;

	if (name_check_shm(name) < 0 || !st)
		return -EINVAL;
	memcpy(&want, st, sizeof(want));
	if (want < sizeof(s))
		return -EINVAL;
	memset(&s, 0, sizeof(s));
	s.struct_size = sizeof(s);
	/* O_NONBLOCK: a FIFO put under the name must not hold the probe
	 * until a writer comes ("does not block"); only a regular file can
	 * be a region. */
	fd = named_open(name, O_RDONLY | O_NONBLOCK, path);
	if (fd < 0)
		return fd;
	if (fstat(fd, &fs) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(fs.st_mode)) {
		rc = -EPROTO;
		goto out;
	}
	s.size = (size_t)fs.st_size;
	if (fs.st_size == 0) {
		s.initialising = true;
		goto liveness;
	}
	if (fs.st_size < (off_t)LFIPC_HDR_SIZE ||
	    (uint64_t)fs.st_size > LFIPC_REGION_MAX_SIZE) {
		rc = -EPROTO;
		goto out;
	}
	/* Read with pread() into private copies, never through a mapping:
	 * another process may shrink the file at any moment (which would
	 * make a mapped read SIGBUS); a short read is -EPROTO. */
	if (pread(fd, head, sizeof(head), 0) != (ssize_t)sizeof(head)) {
		rc = -EPROTO;
		goto out;
	}
	h = (const struct lfipc_hdr *)head;
	memcpy(&magic, head, sizeof(magic));
	if (magic == 0) {
		s.initialising = true;
	} else if (magic != LFIPC_MAGIC ||
		   validate(head, (uint64_t)fs.st_size, &L) < 0) {
		rc = -EPROTO;
	} else {
		s.layout_version = LFIPC_LAYOUT_VERSION;
		s.objects_max = L.dir_cap;
		s.participants_max = L.proc_cap;
		free_g = lfipc__shm_ld64(&h->granules_free);
		s.bytes_free = free_g <= L.heap_granules
				       ? (size_t)(free_g * LFIPC_GRANULE)
				       : 0;
		s.objects = lfipc__shm_ld32(&h->nobjects);
		if (s.objects > L.dir_cap)
			s.objects = L.dir_cap;
		rc = probe_slots(fd, &L, &s);
	}
	if (rc < 0)
		goto out;
liveness:
	/* Creating: a creator holds the gate until it is registered. */
	{
		struct flock fl;

		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		fl.l_start = LFIPC_GATE_BYTE;
		fl.l_len = 1;
		if (fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK &&
		    s.participants == 0)
			s.initialising = true;
	}
	s.stale = s.participants == 0 && !s.initialising;
	rc = lfipc__status_out(st, &s, sizeof(s), sizeof(s));
out:
	close(fd);
	return rc;
}

size_t lfipc_region_size_for(size_t object_bytes, unsigned nobjects)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint64_t page = pg > 0 ? (uint64_t)pg : 4096;
	uint64_t lo = align_up(LFIPC_REGION_MIN_SIZE, page);
	uint64_t hi = LFIPC_REGION_MAX_SIZE;
	struct layout L;

	if (object_bytes > LFIPC_REGION_MAX_SIZE || nobjects > LFIPC_DIR_MAX)
		return 0;
	/* The heap grows with the size: binary search on pages. */
	if (layout_compute(hi, &L) < 0 ||
	    L.heap_granules * LFIPC_GRANULE < object_bytes)
		return 0;
	while (lo < hi) {
		uint64_t mid = align_up(lo + (hi - lo) / 2, page);

		if (mid >= hi)
			mid = lo;
		if (layout_compute(mid, &L) == 0 &&
		    L.heap_granules * LFIPC_GRANULE >= object_bytes &&
		    L.dir_cap >= nobjects)
			hi = mid;
		else
			lo = mid + page;
	}
	return (size_t)lo;
}
