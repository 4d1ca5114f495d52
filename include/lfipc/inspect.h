/* SPDX-License-Identifier: MIT */
/*
 * lfipc/inspect.h - what is in a region, who uses it, and the state of each
 * object: listing and status calls for supervisors, tools (the `lfipc`
 * command) and debugging.
 *
 * Every call here is a snapshot: other processes keep changing the region
 * while it is read, so two fields of one status may come from slightly
 * different instants, and a listing may miss an object created or include
 * one removed while it ran. Nothing here changes the state of an object;
 * nothing here waits for an object's operations (some calls take the
 * region's internal lock for the few microseconds it takes to copy a
 * directory entry).
 *
 * Shared memory is untrusted: every shared word is read once and checked;
 * a status of an object whose memory makes no sense is -EPROTO, never a
 * crash or a hang.
 *
 * Extensible structures: every structure filled by this header starts with
 * `size_t struct_size`, which the caller sets to sizeof the structure it
 * was compiled with (LFIPC_STATUS_INIT(var) does it). The library writes
 * only the first struct_size bytes, fills the fields it knows, and zeroes
 * the rest of those bytes; fields are only ever added at the end. So a
 * program built against an older header keeps working with a newer
 * library, and a program built against a newer header learns from a
 * zeroed field (or from struct_size, which the library leaves as the
 * caller set it) that an older library did not fill it. A struct_size
 * smaller than the first version of the structure is -EINVAL.
 *
 * Times are CLOCK_MONOTONIC nanoseconds (the clock of every lfipc
 * timeout); subtract from clock_gettime(CLOCK_MONOTONIC) for an age.
 */
#ifndef LFIPC_INSPECT_H
#define LFIPC_INSPECT_H

#include <string.h>

#include <lfipc/common.h>
#include <lfipc/pipe.h>
#include <lfipc/queue.h>
#include <lfipc/region.h>
#include <lfipc/sync.h>
#include <lfipc/value.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Set struct_size of an extensible status structure and zero the rest. */
#define LFIPC_STATUS_INIT(var)                                                 \
	do {                                                                   \
		memset(&(var), 0, sizeof(var));                                \
		(var).struct_size = sizeof(var);                               \
	} while (0)

/**
 * Object types, as the directory of a region stores them. The values are
 * part of the region layout and never change; new types get new values.
 */
typedef enum lfipc_obj_type {
	LFIPC_OBJ_QUEUE = 1,   /**< Queue or JoinableQueue */
	LFIPC_OBJ_LOCK = 2,    /**< Lock or RLock */
	LFIPC_OBJ_SEM = 3,     /**< Semaphore or BoundedSemaphore */
	LFIPC_OBJ_COND = 4,    /**< Condition */
	LFIPC_OBJ_EVENT = 5,   /**< Event */
	LFIPC_OBJ_BARRIER = 6, /**< Barrier */
	LFIPC_OBJ_ARRAY = 7,   /**< Array (a Value is an Array of length 1) */
	LFIPC_OBJ_PIPE = 8,    /**< Pipe (two connection ends) */
	LFIPC_OBJ_LISTENER = 9 /**< Listener (lfipc/listener.h) */
} lfipc_obj_type;

/**
 * The lower-case name of an object type ("queue", "lock", "semaphore",
 * "condition", "event", "barrier", "array", "pipe", "listener"), or
 * "unknown" for a value this library does not know. Never NULL. Thread-safe.
 */
LFIPC_API const char *lfipc_obj_type_name(int type);

/* ---- regions ---------------------------------------------------------- */

/** Status of a region (lfipc_region_stat(), lfipc_region_probe()). */
typedef struct lfipc_region_status {
	size_t struct_size;	 /**< set by the caller: sizeof(this struct) */
	size_t size;		 /**< bytes mapped */
	size_t bytes_free;	 /**< bytes the allocator can still hand out */
	size_t largest_free;	 /**< largest object block that still fits */
	unsigned objects;	 /**< named objects in the directory */
	unsigned objects_max;	 /**< directory capacity */
	unsigned participants;	 /**< live registered participants */
	unsigned dead;		 /**< participants that died without closing */
	unsigned participants_max; /**< participant table capacity */
	bool stale;		 /**< no live participant, nobody creating it:
				      lfipc_region_remove() and a create with
				      LFIPC_REGION_TAKEOVER may take it */
	bool initialising;	 /**< a creator has not finished setting it up */
	uint32_t layout_version; /**< the region's layout version */
} lfipc_region_status;

/**
 * Fill *st with the status of the open region r. st->struct_size must be
 * set (LFIPC_STATUS_INIT). The caller's own handle counts as a live
 * participant.
 *
 * Return: 0; -EINVAL NULL argument or struct_size too small; -EPROTO the
 * region is corrupt; -EUSERS registering this process (a fork child).
 * May block briefly on the region's internal lock.
 * Concurrency: any thread, concurrently with every other operation.
 */
LFIPC_API int lfipc_region_stat(lfipc_region *r, lfipc_region_status *st);

/**
 * Fill *st with the status of the named region name without becoming a
 * participant (so a tool that looks does not keep the region alive, and
 * is not counted): the file is opened read-only, mapped read-only,
 * validated and probed for its participants' liveness locks. objects and
 * bytes_free are read without the region lock (a snapshot that may be off
 * by an object being created or removed at that instant); largest_free is
 * 0 (not computed without the lock). A file that is not an lfipc region
 * is -EPROTO, one whose creator has not finished yet has initialising set.
 *
 * Return: 0; -ENOENT no such region; -EACCES; -EINVAL bad name, NULL
 * st or struct_size too small; -EPROTO not an lfipc region or corrupt;
 * other negative errno values from shm_open, mmap.
 * Does not block. Thread-safe.
 */
LFIPC_API int lfipc_region_probe(const char *name, lfipc_region_status *st);

/* ---- listing objects -------------------------------------------------- */

/** One directory entry (lfipc_object_next()). */
typedef struct lfipc_object_entry {
	size_t struct_size;		/**< set by the caller */
	char name[LFIPC_NAME_MAX + 1];	/**< NUL-terminated object name */
	int type;			/**< lfipc_obj_type (or an unknown
					     value from a newer library) */
	size_t bytes;			/**< bytes of the region it occupies */
	pid_t creator_pid;		/**< pid of the process that created
					     it, 0 if unknown (diagnostic:
					     pids are reused) */
} lfipc_object_entry;

/**
 * Iterate over the objects of r, like readdir(): set *cursor to 0 before
 * the first call; each call that returns 1 fills *out with the next object
 * and advances *cursor. Each entry is copied under the region lock, so it
 * is consistent in itself; objects created or removed during the
 * iteration may or may not be seen, and no object is returned twice.
 *
 * Return: 1 *out filled; 0 no more objects; -EINVAL NULL argument or
 * struct_size too small; -EPROTO corrupt region; -EUSERS registering.
 * May block briefly on the region's internal lock.
 * Concurrency: any thread, concurrently with every other operation.
 */
LFIPC_API int lfipc_object_next(lfipc_region *r, unsigned *cursor,
				lfipc_object_entry *out);

/**
 * Look up one object by name: as lfipc_object_next(), for that name only.
 *
 * Return: 0 and *out; -ENOENT no such object; -EINVAL NULL argument, empty
 * name or struct_size too small; -ENAMETOOLONG; -EPROTO corrupt region.
 * May block briefly on the region's internal lock.
 */
LFIPC_API int lfipc_object_find(lfipc_region *r, const char *name,
				lfipc_object_entry *out);

/* ---- listing participants --------------------------------------------- */

/** Liveness of a participant (lfipc_participant_info.state). */
enum {
	LFIPC_PART_ALIVE = 1, /**< registered; its liveness lock is held (a
				   stopped process is alive) */
	LFIPC_PART_DEAD = 2   /**< died (or was killed) without closing */
};

/** One participant (lfipc_participant_next()). */
typedef struct lfipc_participant_info {
	size_t struct_size; /**< set by the caller */
	unsigned slot;	    /**< index in the participant table */
	pid_t pid;	    /**< pid at registration (diagnostic) */
	int state;	    /**< LFIPC_PART_ALIVE or LFIPC_PART_DEAD */
	int64_t since_ns;   /**< registration time, CLOCK_MONOTONIC */
	bool self;	    /**< this handle's own registration */
} lfipc_participant_info;

/**
 * Iterate over the participants of r: set *cursor to 0, then each call
 * that returns 1 fills *out with the next live or dead participant (free
 * slots and participants that closed are skipped). Liveness is decided by
 * the kernel's lock on the participant's liveness byte, so a SIGSTOPped
 * process is alive and a zombie is dead. A dead participant is listed
 * until its slot is reused by a new registration, which takes, in order:
 * a dead slot that names the registrant's own pid (a reused PID), a free
 * slot, then the dead slot registered longest ago; so a dead participant
 * stays listed until its pid registers again or the table (1024 slots) has
 * no free slot left. A reused slot never makes the dead one look alive:
 * liveness is its incarnation's lock, never its pid.
 *
 * Return: 1 *out filled; 0 no more; -EINVAL NULL argument or struct_size
 * too small. Does not block (one fcntl per registered slot).
 * Concurrency: any thread.
 */
LFIPC_API int lfipc_participant_next(lfipc_region *r, unsigned *cursor,
				     lfipc_participant_info *out);

/* ---- object status ---------------------------------------------------- */

/** Who holds something: a participant and, when known, a thread. */
typedef struct lfipc_holder {
	pid_t pid;   /**< pid of the holding participant, 0 if none */
	pid_t tid;   /**< kernel thread id (gettid), 0 if none or unknown */
	bool alive;  /**< false: the holder died (the next user recovers) */
} lfipc_holder;

/** Queue / JoinableQueue status (lfipc_queue_stat()). */
typedef struct lfipc_queue_status {
	size_t struct_size;	  /**< set by the caller */
	size_t depth;		  /**< messages queued (lfipc_queue_qsize) */
	size_t capacity;	  /**< messages it holds at most */
	size_t msg_size;	  /**< largest message, bytes */
	bool joinable;		  /**< created with LFIPC_QUEUE_JOINABLE */
	bool shut_down;		  /**< lfipc_queue_shutdown() was called */
	bool producers_sleeping;  /**< a producer may sleep (queue full) */
	bool consumers_sleeping;  /**< a consumer may sleep (queue empty) */
	size_t writing;		  /**< slots a live producer is writing */
	size_t reading;		  /**< slots a live consumer is reading */
	size_t holes;		  /**< positions without a message (a dead or
				       timed-out producer's), not yet skipped */
	size_t orphans;		  /**< messages whose consumer died reading,
				       waiting to be delivered again */
	size_t dead_claims;	  /**< slots held by dead participants, to be
				       repaired by the next operation or by
				       lfipc_region_recover() */
	uint64_t puts;		  /**< positions handed to producers so far */
	uint64_t gets;		  /**< positions consumed so far */
	uint64_t cleared;	  /**< messages discarded by lfipc_queue_clear
				       so far */
	uint64_t tasks_unfinished; /**< JoinableQueue: put and not yet
					settled by task_done; 0 otherwise */
	uint64_t tasks_abandoned;  /**< JoinableQueue: written off after the
					death of the consumer */
	uint64_t corrupt;	   /**< messages dropped so far because their
					stored length exceeded msg_size (a
					slot scribbled by a peer): a get or
					peek that took one said nothing of it,
					or -EPROTO if it took only such */
} lfipc_queue_status;

/** Lock / RLock status (lfipc_lock_stat()). */
typedef struct lfipc_lock_status {
	size_t struct_size;  /**< set by the caller */
	bool recursive;	     /**< RLock */
	bool locked;	     /**< held right now */
	lfipc_holder holder; /**< who holds it (pid 0 when free) */
	unsigned depth;	     /**< recursion depth (RLock; 1 for a held Lock) */
	unsigned waiters;    /**< threads asleep waiting for it */
	bool owner_died;     /**< held by a dead process: the next acquirer
				  gets -EOWNERDEAD */
} lfipc_lock_status;

/** Semaphore status (lfipc_sem_stat()). */
typedef struct lfipc_sem_status {
	size_t struct_size; /**< set by the caller */
	unsigned value;	    /**< current value */
	unsigned max;	    /**< largest value (the initial value of a
				 BoundedSemaphore) */
	bool bounded;	    /**< BoundedSemaphore */
	bool tracked;	    /**< created with LFIPC_SEM_TRACK_HOLDERS */
	unsigned waiters;   /**< threads asleep waiting for a unit */
	unsigned holders;   /**< tracked: participants holding units */
	unsigned held;	    /**< tracked: units they hold in total */
	unsigned dead_held; /**< tracked: units held by dead participants,
				 returned by the next waiter or recover */
	unsigned recovered; /**< tracked: units returned from the dead and
				 not yet handed out again */
} lfipc_sem_status;

/** Condition status (lfipc_cond_stat()). */
typedef struct lfipc_cond_status {
	size_t struct_size;  /**< set by the caller */
	unsigned waiters;    /**< threads waiting and not yet notified */
	unsigned notified;   /**< notified, not yet returned from wait */
	unsigned dead_waiters; /**< waiting slots of dead participants */
	unsigned waiters_max;  /**< LFIPC_COND_WAITERS_MAX */
	bool own_lock;	     /**< created with its own (embedded) RLock */
	lfipc_lock_status lock; /**< status of its lock; lock.struct_size is
				     set by the library */
} lfipc_cond_status;

/** Event status (lfipc_event_stat()). */
typedef struct lfipc_event_status {
	size_t struct_size; /**< set by the caller */
	bool set;	    /**< the flag is set */
	bool waiters;	    /**< somebody may sleep in lfipc_event_wait */
} lfipc_event_status;

/** Barrier status (lfipc_barrier_stat()). */
typedef struct lfipc_barrier_status {
	size_t struct_size; /**< set by the caller */
	unsigned parties;   /**< parties per cycle */
	unsigned waiting;   /**< parties waiting in the current cycle */
	bool broken;	    /**< broken (abort, timeout, dead party): waits
				 fail with -EPIPE until reset */
	uint32_t cycle;	    /**< completed cycles (mod 2^31) */
} lfipc_barrier_status;

/** Array / Value status (lfipc_array_stat()). */
typedef struct lfipc_array_status {
	size_t struct_size; /**< set by the caller */
	lfipc_type type;    /**< element type */
	size_t length;	    /**< number of elements */
	size_t elem_size;   /**< bytes per element */
	bool has_lock;	    /**< created with a lock */
	lfipc_lock_status lock; /**< its lock if has_lock; lock.struct_size
				     is set by the library */
} lfipc_array_status;

/** One end of a Pipe (lfipc_pipe_status.end). */
typedef struct lfipc_pipe_end_status {
	bool held;	     /**< a participant holds this end open */
	bool closed;	     /**< closed by its holder (the peer reads EOF) */
	lfipc_holder holder; /**< who holds it (pid 0 when free) */
	size_t bytes_buffered; /**< bytes sent to this end, not yet received */
	bool reader_sleeping;  /**< this end's receiver may sleep */
	bool writer_sleeping;  /**< a sender to this end may sleep (full) */
} lfipc_pipe_end_status;

/** Pipe status (lfipc_conn_stat(); lfipc_object_stat() by name). */
typedef struct lfipc_pipe_status {
	size_t struct_size;	     /**< set by the caller */
	bool duplex;		     /**< both ends send; else end 1 sends */
	size_t ring_bytes;	     /**< buffer bytes per direction */
	lfipc_pipe_end_status end[2]; /**< end 0 and end 1 */
} lfipc_pipe_status;

/*
 * Status of one object, through a handle. Each fills *st (struct_size set
 * by the caller) with a snapshot of the object.
 *
 * Return: 0; -EINVAL NULL argument or struct_size too small; -EPROTO the
 * object's memory makes no sense.
 * Does not block (holder liveness costs one fcntl per holder).
 * Concurrency: any thread, concurrently with every operation on the object.
 */
LFIPC_API int lfipc_queue_stat(const lfipc_queue *q, lfipc_queue_status *st);
LFIPC_API int lfipc_lock_stat(const lfipc_lock *l, lfipc_lock_status *st);
LFIPC_API int lfipc_sem_stat(const lfipc_sem *s, lfipc_sem_status *st);
LFIPC_API int lfipc_cond_stat(const lfipc_cond *c, lfipc_cond_status *st);
LFIPC_API int lfipc_event_stat(const lfipc_event *e, lfipc_event_status *st);
LFIPC_API int lfipc_barrier_stat(const lfipc_barrier *b,
				 lfipc_barrier_status *st);
LFIPC_API int lfipc_array_stat(const lfipc_array *a, lfipc_array_status *st);
LFIPC_API int lfipc_conn_stat(const lfipc_conn *c, lfipc_pipe_status *st);

/**
 * Status of the object called name, without opening a handle (a Pipe end
 * is not claimed): st points to the status structure of the object's type
 * (lfipc_queue_status for LFIPC_OBJ_QUEUE, ..., lfipc_pipe_status for
 * LFIPC_OBJ_PIPE, lfipc_listener_status of lfipc/listener.h for
 * LFIPC_OBJ_LISTENER), with struct_size set; type says which one it is and
 * must be the object's type (take it from lfipc_object_find() or
 * lfipc_object_next()).
 *
 * Return: 0; -ENOENT no such object; -EMEDIUMTYPE the object has another
 * type; -EINVAL NULL argument, unknown type or struct_size too small;
 * -ENAMETOOLONG; -EPROTO corrupt object or region; -EUSERS registering.
 * May block briefly on the region's internal lock.
 * Concurrency: any thread, concurrently with every other operation.
 */
LFIPC_API int lfipc_object_stat(lfipc_region *r, const char *name, int type,
				void *st);

/* ---- sizes ------------------------------------------------------------ */

/**
 * Region bytes an object of the given shape occupies (its block, rounded
 * to the allocation unit, plus alignment). Add the results for the
 * objects a region will hold and pass the sum to lfipc_region_size_for().
 * Return: the bytes; 0 when the shape is invalid (the create call would
 * return -EINVAL). Thread-safe.
 */
LFIPC_API size_t lfipc_queue_bytes(size_t capacity, size_t msg_size,
				   unsigned flags);
LFIPC_API size_t lfipc_pipe_bytes(size_t ring_bytes, bool duplex);
LFIPC_API size_t lfipc_array_bytes(lfipc_type type, size_t len,
				   bool with_lock);
/** Bytes of an object of a type without shape (Lock, RLock, Event,
 * untracked Semaphore, Condition, Barrier of parties parties); for
 * LFIPC_OBJ_SEM arg is the flags, for LFIPC_OBJ_BARRIER the parties, else
 * ignored; 0 for other types. */
LFIPC_API size_t lfipc_obj_bytes(int type, unsigned arg);

/**
 * The smallest region size (for lfipc_region_create()) whose heap holds
 * objects of object_bytes in total (a sum of the size helpers above) in
 * up to nobjects directory entries, without fragmentation. The result is
 * at least LFIPC_REGION_MIN_SIZE and a multiple of the page size; 0 when
 * no region is that large.
 */
LFIPC_API size_t lfipc_region_size_for(size_t object_bytes,
				       unsigned nobjects);

#ifdef __cplusplus
}
#endif

#endif /* LFIPC_INSPECT_H */
