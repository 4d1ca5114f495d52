/*
 * task_record2.pml -- SPIN model of a JoinableQueue task entry's two
 * in-flight records (session 24; lib/queue_tasks.c, doc/queue-record.md):
 * the threads of a process share its token and its entry; a thread holds
 * record 0, else record 1, else counts the old way. A dying process has
 * two threads, each of which may hold a record at the moment of the kill;
 * a repairer resolves the dead's READING slots record by record, and the
 * next incarnation adopts the entry (two of its threads at once).
 * task_record.pml is the one-record, one-thread model of session 22; this
 * one follows it step by step and differs only where the records do.
 *
 * Run:
 *   spin -a task_record2.pml && gcc -O2 -DSAFETY -DCOLLAPSE -o pan pan.c
 *   ./pan -m300000
 * Macros (spin -DNAME=value):
 *   NM    messages, at positions 0 .. NM-1 (default 4)
 *   RUN   longest run a thread claims at once (1 or 2; default 2)
 *   K     records per entry (default 2; 1 is the layout before session
 *         24: the second thread counts the old way, free then got += n:
 *         negative control, a message counted nowhere: P2 fails)
 *   RESK  records recovery and the adoption resolve (default K; 1:
 *         negative control, a layout-6 library that resolves record 0
 *         only: record 1's counted messages are orphaned and counted
 *         again, P1 fails)
 *   TD1   1 (default): token 1's threads call task_done for some of
 *         their messages
 *   NOWCHK 1: no check that the records end IDLE (so that a negative
 *         control reports the next property it breaks)
 *   ADOPT2 1 (default): a second thread of token 2 adopts at the same
 *         time as the first
 *
 * WHAT IS MODELLED
 *  - slot[i]: FULL, READING by token 1 or 2, ORPHAN, or FREED.
 *  - The entry both tokens share (one participant slot): records
 *    W[k] = wst[k]/wn[k]/wcnt[k] (one 64-bit word in C: changed together
 *    in one step) and P[k] (rec_pos[k]: the run's first position), got
 *    (the record-less count), settled, owner.
 *  - Token 1's two threads (consumer1): each claims runs of 1..RUN FULL
 *    slots at the head (hd, one step: a head claim), holds record 0 if it
 *    is IDLE (a CAS), else record 1, else takes the old way; through a
 *    record: P[k] = first; W[k] = COUNTED(cnt + n, n) (one store); free
 *    each slot; W[k] = IDLE(cnt + n). task_done for some (TD1). The
 *    killer kills token 1 at any step of either thread (`unless`: both
 *    stop at once); a thread that ends kills the process too.
 *  - After the death, concurrently: the repairer (for each slot READING by
 *    1: for each record k < RESK, owner, W[k], P[k], owner; the first
 *    record COUNTED and covering the slot frees it and, once no slot of
 *    its run is READING by 1, is CASed back to IDLE; no record: orphan;
 *    then the reap: got + W[0].cnt + W[1].cnt loaded one by one, owner,
 *    write-off); token 2's consumer (adopts: each record k < RESK resolved
 *    as the repairer does, or a CLAIMED one CASed back to IDLE; the sum,
 *    owner, write-off, owner = 2; then takes every message through its
 *    records, and task_done for each); token 2's second thread adopting
 *    at the same time.
 *  - Every load, store and CAS is one step (seq_cst = interleaving).
 *
 * NOT MODELLED: the HOLE state (tests/model/hole_drop.pml: the drop holds
 * a record the same way, record 0 else 1), a third thread (it takes the
 * old way: the window that remains), the take-back of a failed release's
 * count, scribbles, laps.
 *
 * PROPERTIES
 *  P1 (monitor) no message counted twice; no ORPHAN slot holds a counted
 *     message.
 *  P2 (end) every message counted exactly once, every slot free, every
 *     record IDLE, settled == NM (nothing unfinished: join returns).
 */

#ifndef NM
#define NM 4
#endif
#ifndef RUN
#define RUN 2
#endif
#ifndef K
#define K 2
#endif
#ifndef RESK
#define RESK K
#endif
#ifndef TD1
#define TD1 1
#endif
#ifndef ADOPT2
#define ADOPT2 1
#endif

#define FULL 0
#define RD1 1
#define RD2 2
#define ORPH 3
#define FREED 4

#define IDLE 0
#define CLAIMED 1
#define COUNTED 2

byte slot[4]; /* NM <= 4 */
byte wst[2], wn[2], wcnt[2], P[2]; /* K <= 2 */
byte got = 0, settled = 0, owner = 1; /* token 1 adopted it, fresh */
byte hd = 0;	 /* the head: the next position to claim */
bool alive1 = 1;
byte c1gone = 0; /* token 1's threads stopped */
bool repdone = 0;
bool c2done = 0;
byte cntd[4]; /* ghost: times message i was counted */

inline write_off(g)
{
	atomic { if :: settled < g -> settled = g :: else -> skip fi }
}

/* Hold record 0, else 1 (a CAS from IDLE each); k = K: none. */
inline hold(k, n)
{
	k = 0;
	do
	:: k < K && wst[k] == IDLE ->
		atomic { if
			 :: wst[k] == IDLE -> wst[k] = CLAIMED; wn[k] = n; break
			 :: else -> k++
			 fi }
	:: k < K && wst[k] != IDLE -> k++
	:: k >= K -> break
	od
}

/* Count the run [first, first + n) through record k (held) and free it;
 * without a record (k == K), the old way: free, then got += n. */
inline count_free(k, first, n, rd, j)
{
	if
	:: k < K ->
		P[k] = first;
		atomic {
			wcnt[k] = wcnt[k] + n; wst[k] = COUNTED;
			j = first;
			do :: j < first + n -> cntd[j]++; j++ :: else -> break od
		}
		j = first;
		do
		:: j < first + n ->
			atomic { assert(slot[j] == rd); slot[j] = FREED }; j++
		:: else -> break
		od;
		atomic { wst[k] = IDLE; wn[k] = 0 }
	:: else ->
		j = first;
		do
		:: j < first + n ->
			atomic { assert(slot[j] == rd); slot[j] = FREED }; j++
		:: else -> break
		od;
		atomic {
			got = got + n; j = first;
			do :: j < first + n -> cntd[j]++; j++ :: else -> break od
		}
	fi
}

/* Free the slots of record k's run (snapshot st, n, c, p) still READING
 * by 1, then CAS it (the value seen) back to IDLE; a CLAIMED one only the
 * CAS. */
inline resolve_rec(k, st, n, c, p, j)
{
	if
	:: st == COUNTED ->
		j = p;
		do
		:: j < p + n && j < NM ->
			atomic { if :: slot[j] == RD1 -> slot[j] = FREED
				 :: else -> skip fi };
			j++
		:: else -> break
		od
	:: else -> skip
	fi;
	atomic { if :: wst[k] == st && wcnt[k] == c && wn[k] == n ->
			wst[k] = IDLE; wn[k] = 0
		 :: else -> skip fi }
}

/* The repair of slot s, READING by the dead token 1: the first record
 * (k < RESK) whose snapshot is token 1's, COUNTED and covering s is
 * resolved (s freed, then the rest of its run, then IDLE); none: s is
 * orphaned (a CAS from READING by 1). */
inline repair_slot(s, k, o1, o2, st, n, c, p, j)
{
	k = 0;
	do
	:: k < RESK ->
		o1 = owner;
		atomic { st = wst[k]; n = wn[k]; c = wcnt[k] };
		p = P[k];
		o2 = owner;
		if
		:: o1 == 1 && o2 == 1 && st == COUNTED && s >= p &&
		   s < p + n ->
			resolve_rec(k, st, n, c, p, j); break
		:: else -> k++
		fi
	:: else ->
		atomic { if :: slot[s] == RD1 -> slot[s] = ORPH
			 :: else -> skip fi };
		break
	od
}

/* got + each record's cnt, loaded one after another. */
inline entry_got(g)
{
	g = got; g = g + wcnt[0]; g = g + wcnt[1]
}

inline reap(g, o)
{
	entry_got(g);
	o = owner;
	if :: o == 1 -> write_off(g) :: else -> skip fi
}

proctype consumer1()
{
	byte i, n, j, k, t;

	{
		do
		:: atomic { hd < NM -> i = hd; slot[i] = RD1; n = 1;
			    if
			    :: RUN > 1 && i + 1 < NM -> slot[i + 1] = RD1; n = 2
			    :: true -> skip
			    fi;
			    hd = i + n };
			hold(k, n);
			count_free(k, i, n, RD1, j);
			t = 0;
			do
			:: TD1 && t < n -> atomic { settled++ }; t++
			:: true -> break
			od
		:: atomic { hd >= NM -> break }
		od
	} unless { !alive1 };
	atomic { alive1 = 0; c1gone++ }
}

proctype killer()
{
	if :: alive1 = 0 :: true -> skip fi
}

proctype repairer()
{
	byte s = 0, k, o1, o2, st, n, c, p, j, g, o;

	c1gone == 2;
	reap(g, o);
	do
	:: s < NM ->
		if
		:: slot[s] == RD1 -> repair_slot(s, k, o1, o2, st, n, c, p, j)
		:: else -> skip
		fi;
		s++
	:: else -> break
	od;
	reap(g, o);
	repdone = 1
}

/* The adoption by a thread of token 2: each record k < RESK whose
 * snapshot (owner not 2 before and after) is not IDLE is resolved; then
 * the sum, owner, write-off, owner = 2. */
inline adopt(k, o1, o2, st, n, c, p, j, g)
{
	if
	:: owner != 2 ->
		k = 0;
		do
		:: k < RESK ->
			o1 = owner;
			atomic { st = wst[k]; n = wn[k]; c = wcnt[k] };
			p = P[k];
			o2 = owner;
			if
			:: o1 != 2 && o2 != 2 && st != IDLE ->
				resolve_rec(k, st, n, c, p, j)
			:: else -> skip
			fi;
			k++
		:: else -> break
		od;
		entry_got(g);
		if :: owner != 2 -> write_off(g); owner = 2
		   :: else -> skip fi
	:: else -> skip
	fi
}

proctype consumer2()
{
	byte i = 0, k, o1, o2, st, n, c, p, j, g;

	c1gone == 2;
	adopt(k, o1, o2, st, n, c, p, j, g);
	do
	:: i < NM ->
		(slot[i] != RD1);
		if
		:: atomic { (slot[i] == FULL || slot[i] == ORPH) ->
			    slot[i] = RD2 };
			n = 1;
			hold(k, n);
			count_free(k, i, n, RD2, j);
			atomic { settled++ }
		:: atomic { slot[i] == FREED -> skip }
		fi;
		i++
	:: else -> break
	od;
	c2done = 1
}

proctype adopter2()
{
	byte k, o1, o2, st, n, c, p, j, g;

	c1gone == 2;
	adopt(k, o1, o2, st, n, c, p, j, g)
}

#define BAD(i) (i < NM && (cntd[i] > 1 || (slot[i] == ORPH && cntd[i] > 0)))
active proctype monitor()
{
end:	atomic { (BAD(0) || BAD(1) || BAD(2) || BAD(3)) -> assert(false) }
}

init
{
	byte i;

	atomic {
		run consumer1(); run consumer1(); run killer(); run repairer();
		run consumer2();
		if :: ADOPT2 -> run adopter2() :: else -> skip fi
	};
	(c2done && repdone);
	i = 0;
	do
	:: i < NM -> assert(cntd[i] == 1); assert(slot[i] == FREED); i++
	:: else -> break
	od;
#ifndef NOWCHK
	assert(wst[0] == IDLE && wst[1] == IDLE);
#endif
	assert(settled == NM)
}
