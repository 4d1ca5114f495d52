/* SPDX-License-Identifier: MIT */
/*
 * lfipc/region.h - a shared-memory region and the named objects in it.
 *
 * A region is one MAP_SHARED mapping of a file descriptor: a named POSIX
 * shared-memory object ("/name", shm_open) or an anonymous memfd that
 * children inherit across fork() and that can be sent to another process
 * over a Unix socket (SCM_RIGHTS). Each process may map it at a different
 * address: nothing inside is a pointer.
 *
 * Every process that opens a region registers as a participant. Liveness is
 * an open-file-description lock on the participant's byte of the region's
 * file, which the kernel drops when the process dies, so PID reuse and
 * zombies never fool it. Locks, queue slots and other things a participant
 * owns in flight are tagged with its token; when it dies they are recovered
 * by the next process that needs them, or explicitly by
 * lfipc_region_recover().
 *
 * fork(): a child inherits its parent's handles. On its first operation the
 * child registers itself as a new participant (it never takes over the
 * parent's identity or drops the parent's liveness lock). A child created by
 * a raw clone() that skips pthread_atfork handlers is not supported. That
 * registration may wait for a process deciding whether the region can be
 * removed (lfipc_region_remove(), quick unless it is stopped): within the
 * operation's timeout (LFIPC_NOWAIT: -EAGAIN without sleeping; a timeout:
 * -ETIMEDOUT at the deadline; LFIPC_FOREVER: as long as the gate is
 * held, as the operation itself would wait), or, for an operation without
 * a timeout, up to about one second, then -EBUSY.
 *
 * Handles (lfipc_region *) may be used by any number of threads at once.
 */
#ifndef LFIPC_REGION_H
#define LFIPC_REGION_H

#include <lfipc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lfipc_region lfipc_region;

/** Smallest region size accepted by lfipc_region_create() (a smaller one
 * is -ERANGE). lfipc_region_size_for(0, 0) (lfipc/inspect.h) returns it
 * rounded up to the page size; lfipc_region_size_for(bytes, n) the size a
 * region needs for given objects. */
#define LFIPC_REGION_MIN_SIZE ((size_t)256 * 1024)
/** Default permission bits of a named region (mode 0 means this). */
#define LFIPC_REGION_DEFAULT_MODE 0600

/**
 * Create a region of size bytes and map it.
 *
 * name: "/something" (POSIX shared-memory name, at most NAME_MAX bytes, one
 * leading slash and no other, neither "/." nor "/..", which shm_open()
 * would take for directories) creates it exclusively (as O_EXCL: the
 * region is built and registered in a file without a name, then linked to
 * the name, which fails if the name exists; no process ever sees it half
 * made) with the permission bits mode (0 means LFIPC_REGION_DEFAULT_MODE, 0600; the umask
 * does not apply: the bits are set with fchmod). NULL creates an anonymous
 * region (memfd, sealed against resizing) that children inherit across
 * fork() and that can be passed on with lfipc_region_fd(). size is rounded
 * up to the page size. The region's pages are allocated up front, so a full
 * /dev/shm is reported here as -ENOSPC rather than later as SIGBUS.
 *
 * Return: 0 and *out; -ERANGE size below LFIPC_REGION_MIN_SIZE (256 KiB)
 * or above 1 TiB (lfipc_strerror() names both limits);
 * -EINVAL bad name or out NULL; -EEXIST the name exists; -EACCES; -ENOSPC not
 * enough shared memory; -ENOMEM (also: size above what memory and swap
 * can hold now, MemAvailable + SwapFree, checked before any page is
 * taken); -EMFILE; -EUSERS no free participant slot
 * (cannot happen on a new region); other negative errno values from
 * open (O_TMPFILE in /dev/shm), linkat, memfd_create, mmap.
 * Concurrency: any thread.
 */
LFIPC_API int lfipc_region_create(const char *name, size_t size, mode_t mode,
				  lfipc_region **out);

/** lfipc_region_create_ex() flag: open the region if it exists already. */
#define LFIPC_REGION_OPEN_OR_CREATE 0x1u
/** lfipc_region_create_ex() flag: replace a stale region of that name. */
#define LFIPC_REGION_TAKEOVER 0x2u
/** lfipc_region_create_ex() flag: back the region with huge pages
 * (hugetlbfs), or fail. */
#define LFIPC_REGION_HUGE 0x4u
/** lfipc_region_create_ex() flag: huge pages if there are any, else
 * ordinary pages, silently. */
#define LFIPC_REGION_HUGE_PREFER 0x8u

/**
 * lfipc_region_create() with flags (0 is exactly lfipc_region_create()).
 *
 * LFIPC_REGION_OPEN_OR_CREATE: if the named region exists, open it as
 * lfipc_region_open() does, provided it has the same size (size rounded up
 * to the page size as for a creation); any number of processes may race
 * to open-or-create one name: exactly one creates it, the others open
 * what it created (they wait for it to finish initialising).
 *
 * LFIPC_REGION_TAKEOVER: if the named region exists and is stale (every
 * participant that ever registered has died, and no creator is still
 * setting it up), remove it and create a fresh one in its place (a region
 * of another size or a corrupt lfipc region is replaced too; a file that
 * is not an lfipc region is not). Staleness is decided race-free with the
 * participants' liveness locks: a region with a live participant, even a
 * stopped (SIGSTOP) one, is never taken over, and a process that opens the
 * region at the same moment either registers before (then the region is
 * live and not taken) or ends up in the new region.
 *
 * With both flags: open a live region, take over a stale one. Anonymous
 * regions (name NULL) ignore both flags.
 *
 * LFIPC_REGION_HUGE: back the region with explicit huge pages of the
 * default huge page size (Hugepagesize in /proc/meminfo, 2 MiB on
 * x86-64), taken from the kernel's hugetlb pool (vm.nr_hugepages) when
 * the region is created, never later; size is rounded up to the huge page
 * size. An anonymous region is a memfd_create(MFD_HUGETLB). A named one is
 * a file in the first hugetlbfs mount of the default page size (such as
 * /dev/hugepages; looked up in /proc/self/mounts at each call), created
 * and published as in /dev/shm (nameless, then linked). Names are one
 * namespace over /dev/shm and that mount: lfipc_region_open(),
 * lfipc_region_unlink(), lfipc_region_remove(), lfipc_region_probe()
 * and the TAKEOVER flag look in /dev/shm first, then in the hugetlbfs
 * mount, and a name cannot be created in one while it exists in the
 * other (-EEXIST; two creators racing for one name in both may both get
 * -EEXIST). Every process that uses a named huge region must see the same
 * mount. Openers need no flag: they map what the name is.
 * Errors of this flag: -ENOMEM the pool has fewer free huge pages than the
 * region needs (reserve more: vm.nr_hugepages); -EOPNOTSUPP the kernel has
 * no huge pages, or a named region and no hugetlbfs mount.
 *
 * LFIPC_REGION_HUGE_PREFER: as LFIPC_REGION_HUGE, but where that would
 * fail with -ENOMEM or -EOPNOTSUPP, the region is created as without the
 * flag (size rounded to the ordinary page size), silently, and the
 * creator's mapping is advised MADV_HUGEPAGE (shmem transparent huge
 * pages, which only /sys/kernel/mm/transparent_hugepage/shmem_enabled or
 * the tmpfs mount's huge= option can allow; the pages are allocated at
 * creation, so in "advise" mode only khugepaged may collapse them later).
 * lfipc_region_page_size() tells which the region got. With
 * OPEN_OR_CREATE, an existing region of the size rounded either way is
 * opened, whatever its pages.
 *
 * Return: as lfipc_region_create(), and: -EEXIST the name exists and is
 * not taken (no flag; OPEN_OR_CREATE and a region of another size;
 * TAKEOVER alone and a live participant or a creator still setting it
 * up, or a file that is not an lfipc region); -EPROTO OPEN_OR_CREATE
 * found a file that is not a valid lfipc region; -EBUSY OPEN_OR_CREATE
 * and the region was removed and recreated under it again and again;
 * -EINVAL unknown flags. A size below LFIPC_REGION_MIN_SIZE is -ERANGE
 * as for lfipc_region_create().
 * Concurrency: any thread; any number of processes at once.
 */
LFIPC_API int lfipc_region_create_ex(const char *name, size_t size,
				     mode_t mode, unsigned flags,
				     lfipc_region **out);

/**
 * The size of the pages behind the region: the huge page size for a
 * region in hugetlbfs (LFIPC_REGION_HUGE, or HUGE_PREFER that found huge
 * pages), else the ordinary page size (transparent huge pages are not
 * reported: the kernel may split or collapse them at any time).
 *
 * Return: the page size in bytes; 0 when r is NULL.
 * Concurrency: any thread. Does not block.
 */
LFIPC_API size_t lfipc_region_page_size(const lfipc_region *r);

/**
 * Open and map the existing named region name and register as a participant.
 *
 * The region is validated (magic, layout version, size, layout fields) and
 * refused if anything does not match. If a creator is still initialising it,
 * this waits up to about one second (by the clock) for it to finish.
 *
 * Return: 0 and *out; -ENOENT no such region; -EACCES permission denied;
 * -EPROTO not an lfipc region, corrupt, or of another layout version;
 * -EINVAL bad name; -EUSERS the participant table is full; -ENOMEM;
 * other negative errno values from shm_open, mmap.
 * Concurrency: any thread.
 */
LFIPC_API int lfipc_region_open(const char *name, lfipc_region **out);

/**
 * Map the region behind fd (for example received over SCM_RIGHTS) and
 * register as a participant. fd is not consumed: the region keeps its own
 * duplicate, and the caller may close fd afterwards.
 *
 * Registration reopens the file through /proc/self/fd (each participant
 * needs its own open file description for its liveness lock), so the
 * file's permission bits apply as they do to lfipc_region_open(): a 0600
 * region received by a process of another user gives -EACCES. An fd whose
 * file is still empty (its creator has not sized it yet) is waited for like
 * an initialising region, then refused with -EPROTO.
 *
 * Return: as lfipc_region_open(), and -EBADF when fd is not open.
 * Concurrency: any thread.
 */
LFIPC_API int lfipc_region_open_fd(int fd, lfipc_region **out);

/**
 * The region's file descriptor (close-on-exec), owned by the handle: pass
 * it to another process with SCM_RIGHTS, never close it.
 *
 * Return: the fd; -EINVAL r is NULL.
 */
LFIPC_API int lfipc_region_fd(const lfipc_region *r);

/**
 * Unregister, unmap and free the handle. Anything this participant still
 * owns (a held Lock, a half-done queue operation) is treated as owned by a
 * dead process. Handles of objects opened in this region must not be used
 * after this. NULL is a no-op. Does not unlink a named region.
 * Concurrency: no other thread may use r or its objects at the same time.
 */
LFIPC_API void lfipc_region_close(lfipc_region *r);

/**
 * Remove the name of a named region (shm_unlink). Processes that have it
 * mapped keep using it; it is freed when the last one closes it.
 *
 * Return: 0; -ENOENT; -EACCES; -EINVAL bad name.
 */
LFIPC_API int lfipc_region_unlink(const char *name);

/** lfipc_region_remove() flag: remove even while participants live. */
#define LFIPC_REGION_FORCE 0x1u

/**
 * Remove the named region name if nobody uses it any more: unlike
 * lfipc_region_unlink(), this refuses (-EBUSY) while a live participant
 * (a stopped one included) is registered or a creator is still setting
 * the region up, unless flags has LFIPC_REGION_FORCE. The decision is
 * race-free: it holds every participant's liveness lock while it unlinks,
 * so no process registers in between (an opener racing with it fails
 * with -ENOENT or opens a region created afterwards). The caller's own
 * open handle of the region counts as live: close it first.
 *
 * Return: 0 removed; -EBUSY live participants (without FORCE); -ENOENT;
 * -EACCES; -EINVAL bad name or unknown flags; -EPROTO the file is not an
 * lfipc region (it is left alone, even with FORCE: see
 * lfipc_region_unlink()). Does not block.
 * Concurrency: any thread; any number of processes.
 */
LFIPC_API int lfipc_region_remove(const char *name, unsigned flags);

/**
 * Recover everything owned by dead participants, now: locks they held,
 * queue slots they were writing or reading, objects they were creating,
 * semaphore units they held. Operations do this on their own when they meet
 * a dead owner; a supervisor calls this to do it eagerly.
 *
 * Return: the number of items recovered (>= 0); -EPROTO the region is
 * corrupt; -EINVAL r is NULL.
 * May block briefly on the region's internal lock.
 * Concurrency: any thread, concurrently with every other operation.
 */
LFIPC_API int lfipc_region_recover(lfipc_region *r);

/**
 * Region statistics. This structure never grows (so that a caller's
 * sizeof stays right); lfipc_region_stat() in lfipc/inspect.h reports
 * more, in an extensible structure.
 */
typedef struct lfipc_region_info {
	size_t size;           /**< bytes mapped */
	size_t bytes_free;     /**< bytes the allocator can still hand out */
	unsigned objects;      /**< named objects in the directory */
	unsigned participants; /**< live registered participants */
} lfipc_region_info;

/**
 * Fill *out with statistics.
 *
 * Return: 0; -EINVAL NULL argument; -EPROTO the region is corrupt.
 * May block briefly on the region's internal lock.
 */
LFIPC_API int lfipc_region_stats(const lfipc_region *r, lfipc_region_info *out);

/**
 * Remove the named object of any type and free its memory for reuse.
 *
 * Handles of the object that are still open anywhere must not be used
 * afterwards (as with unlink-then-use of a file that is then overwritten,
 * they see whatever reuses the memory; they never touch memory outside the
 * region).
 *
 * Return: 0; -ENOENT no such object; -ENAMETOOLONG name longer than
 * LFIPC_NAME_MAX; -EINVAL NULL or empty name; -EPROTO corrupt region.
 * May block briefly on the region's internal lock.
 */
LFIPC_API int lfipc_object_remove(lfipc_region *r, const char *name);

#ifdef __cplusplus
}
#endif

#endif /* LFIPC_REGION_H */
