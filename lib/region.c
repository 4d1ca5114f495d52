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
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal/futex.h"
#include "internal/guard.h"
#include "internal/proc.h"
#include "internal/region.h"
#include "internal/shm.h"

struct layout {
	uint64_t size, proc_off, dir_off, bitmap_off, heap_off, heap_granules;
	uint32_t proc_cap, dir_cap;
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
		return -EINVAL;
	memset(L, 0, sizeof(*L));
	L->size = size;
	L->proc_off = LFIPC_HDR_SIZE;
	L->proc_cap = LFIPC_PROC_SLOTS;
	L->dir_off = L->proc_off +
		     (uint64_t)LFIPC_PROC_SLOTS * sizeof(struct lfipc_proc_slot);
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
	    copy.heap_granules != L->heap_granules)
		return -EPROTO;
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
	r->lock_fd = -1;
	pthread_mutex_init(&r->reg_mu, NULL);
	pthread_mutex_init(&r->lock_mu, NULL);
	return r;
}

static void handle_free(lfipc_region *r)
{
	pthread_mutex_destroy(&r->lock_mu);
	pthread_mutex_destroy(&r->reg_mu);
	free(r);
}

/* Register, track for fork, hand out. On failure unmaps and closes. */
static int attach(lfipc_region *r, lfipc_region **out)
{
	int rc = lfipc__proc_register(r);

	if (rc < 0) {
		region_unmap(r->base, r->size);
		close(r->fd);
		handle_free(r);
		return rc;
	}
	lfipc__proc_track(r);
	*out = r;
	return 0;
}

int lfipc_region_create(const char *name, size_t size, mode_t mode,
			lfipc_region **out)
{
	struct layout L;
	struct lfipc_hdr hdr, *h;
	lfipc_region *r;
	uint8_t *base;
	long page = sysconf(_SC_PAGESIZE);
	int fd, rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (name && name_check_shm(name) < 0)
		return -EINVAL;
	if (size > LFIPC_REGION_MAX_SIZE)
		return -EINVAL;
	size = (size_t)align_up(size, page > 0 ? (uint64_t)page : 4096);
	rc = layout_compute(size, &L);
	if (rc < 0)
		return rc;
	if (mode == 0)
		mode = LFIPC_REGION_DEFAULT_MODE;

	if (name) {
		fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
			      mode & 07777);
		if (fd < 0)
			return -errno;
		if (fchmod(fd, mode & 07777) < 0) {
			rc = -errno;
			goto fail_unlink;
		}
	} else {
		fd = memfd_create("lfipc", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd < 0)
			return -errno;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		rc = -errno;
		goto fail_unlink;
	}
	/* Allocate the pages now: a full /dev/shm is -ENOSPC here, not a
	 * SIGBUS at some later store. */
	rc = posix_fallocate(fd, 0, (off_t)size);
	if (rc != 0 && rc != EOPNOTSUPP && rc != EINVAL) {
		rc = -rc;
		goto fail_unlink;
	}
	if (!name)
		fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	base = region_map(fd, size);
	if (base == MAP_FAILED) {
		rc = -errno;
		goto fail_unlink;
	}

	/* The header is built privately and copied out: the file is visible
	 * in /dev/shm already, so what is in it cannot be read back. */
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
		goto fail_unlink;
	}
	rc = attach(r, out);
	if (rc < 0 && name)
		shm_unlink(name);
	return rc;

fail_unlink:
	close(fd);
	if (name)
		shm_unlink(name);
	return rc;
}

/* Map fd (ours) and validate it; waits a little for a creator that has
 * sized the file but not yet written the magic. */
/* How long an open waits, in all, for a creator still initialising the
 * region (region.h: "up to about one second"). */
#define INIT_WAIT_NS ((int64_t)1000000000)
#define INIT_POLL_NS 1000000 /* between two looks */

/* Sleep a little before looking again, if deadline has not passed (then:
 * false). The wait is bounded by the clock, not by a count of sleeps,
 * which a loaded machine or a large timer slack stretches. */
static bool init_wait(lfipc_deadline deadline)
{
	int64_t left = deadline - lfipc__now_ns();

	if (left <= 0)
		return false;
	if (left > INIT_POLL_NS)
		left = INIT_POLL_NS;
	nanosleep(&(struct timespec){0, (long)left}, NULL);
	return true;
}

static int map_and_validate(int fd, bool named, lfipc_region **out)
{
	/* One deadline for both waits below. */
	lfipc_deadline deadline = lfipc__deadline(INIT_WAIT_NS);
	struct layout L;
	struct stat st;
	lfipc_region *r;
	uint8_t *base;
	int rc;

	for (;;) {
		if (fstat(fd, &st) < 0) {
			rc = -errno;
			goto fail;
		}
		if (st.st_size >= (off_t)LFIPC_HDR_SIZE)
			break;
		/* being created (ftruncate has not happened yet), or not */
		if (st.st_size != 0 || !init_wait(deadline)) {
			rc = -EPROTO;
			goto fail;
		}
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
	for (;;) {
		/* H2: acquire, pairs with H1. */
		uint64_t m = atomic_load_explicit(
			&((struct lfipc_hdr *)base)->magic,
			memory_order_acquire);

		if (m == LFIPC_MAGIC)
			break;
		/* being initialised (magic still 0), or not */
		if (m != 0 || !init_wait(deadline)) {
			rc = -EPROTO;
			goto fail_unmap;
		}
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

int lfipc_region_open(const char *name, lfipc_region **out)
{
	int fd;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (name_check_shm(name) < 0)
		return -EINVAL;
	fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	return map_and_validate(fd, true, out);
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
	lfipc__proc_untrack(r);
	lfipc__proc_unregister(r);
	region_unmap(r->base, r->size);
	close(r->fd);
	handle_free(r);
}

int lfipc_region_unlink(const char *name)
{
	if (name_check_shm(name) < 0)
		return -EINVAL;
	return shm_unlink(name) == 0 ? 0 : -errno;
}
