/*
 * task_record.pml -- SPIN model of a JoinableQueue consumer's in-flight
 * record (lib/queue_tasks.c, "the in-flight record"): the count of a
 * consumer's messages and "which slots that count covers" made one store,
 * so that the recovery of a dead consumer's READING slot can tell a
 * message it counted (free the slot: the count is written off with the
 * entry) from one it did not (orphan it: delivered again).
 *
 * Run:
 *   spin -a task_record.pml && gcc -O2 -DSAFETY -o pan pan.c && ./pan
 * Macros (spin -DNAME=value):
 *   NM    messages, at positions 0 .. NM-1 (default 3)
 *   RUN   longest run a consumer claims at once (1 or 2; default 2)
 *   ADOPT2 1 (default): a second thread of token 2 adopts the entry at
 *         the same time as the first
 *   MODE  0 the record (default); 1 the old way (free, then got += n:
 *         negative control, the count is lost: P2 fails); 2 count first
 *         without the record (got += n, then free; recovery orphans every
 *         READING slot: negative control, P1 fails)
 *
 * WHAT IS MODELLED
 *  - slot[i]: the word of position i's slot, FULL, READING by token 1 or
 *    2, ORPHAN, or FREED (the next lap: no laps are modelled).
 *  - The task entry that both tokens share (the same participant slot):
 *    wst/wn/wcnt = W (state, n, cnt: changed together in one atomic
 *    step, one 64-bit word in C), P (first position of the range),
 *    got (the record-less count, MODE 1/2), settled, owner.
 *  - Consumer 1 (token 1): adopts the fresh entry, then claims runs of
 *    1..RUN contiguous FULL slots from the head and counts them with the
 *    record: CAS W IDLE -> CLAIMED(n); P = first; W = COUNTED(cnt + n)
 *    (one store); free each slot; W = IDLE(cnt + n); task_done for some of
 *    them (nondeterministically). A killer may kill it before any step
 *    (`unless`): the kill is its token's death (alive1 = 0); with no kill
 *    it is killed after its last step (it must die for token 2 to exist).
 *  - After the death, concurrently:
 *    the repairer (lfipc__q_repair / the sweeps): for each slot READING
 *    by token 1: owner, W, P, owner again (a snapshot that is token 1's
 *    only if owner was 1 both times); if the record is COUNTED and the
 *    position is in [P, P + n): free the slot (CAS from READING by 1),
 *    else orphan it (CAS); then, if COUNTED, when no slot of the range is
 *    READING by 1 any more: CAS W (the value seen) -> IDLE. Then the reap
 *    (got + W.cnt loaded, then owner; write-off if the owner is dead);
 *    the reap is also made once before the repairs.
 *    token 2, the new incarnation of the same participant slot: adopts
 *    the entry (resolves a COUNTED record of token 1 as the repairer does,
 *    loads got + W.cnt, looks at owner again, writes off, stores
 *    owner = 2), then takes every message (FULL, or ORPHAN: a rescue)
 *    in position order through the record and calls task_done for each.
 *    It waits for a slot READING by token 1 to be resolved (by itself or
 *    the repairer).
 *  - Every load, store and CAS is one step (seq_cst = interleaving).
 *
 * NOT MODELLED (argued in doc/queue.md, "The in-flight record"): a
 * second thread of the dying process holding the entry's second record
 * (layout 7: tests/model/task_record2.pml), the old way a third thread
 * takes (its window remains), the take-back of a count whose release CAS
 * failed (two threads releasing one message), a record scribbled by a
 * peer (validated in the C code; tests/unit/test_queue_record.c), laps
 * and the 32-bit seq (each position is its own slot here), the orphan
 * count and the queue lock (tests/model/queue_recovery.pml).
 *
 * PROPERTIES
 *  P1 (monitor and end) no message is counted twice: cntd[i] <= 1, and
 *     no ORPHAN slot holds a counted message (re-offered and counted).
 *  P2 (end) the count is exact: every message counted exactly once,
 *     every slot free, W IDLE, and unfinished = NM - settled equals the
 *     messages not yet task_done, i.e. 0 (token 2 calls task_done for
 *     all it got; token 1's outstanding tasks were written off).
 */

#ifndef NM
#define NM 3
#endif
#ifndef RUN
#define RUN 2
#endif
#ifndef ADOPT2
#define ADOPT2 1
#endif
#ifndef MODE
#define MODE 0
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
byte wst = IDLE, wn = 0, wcnt = 0; /* W */
byte P = 0;
byte got = 0, settled = 0, owner = 0;
bool alive1 = 1;
bool c1end = 0;   /* consumer 1 gone (dead) */
bool repdone = 0; /* the repairer has finished */
bool c2done = 0;
byte cntd[4];    /* ghost: times message i was counted */
byte tdone2 = 0;  /* ghost: task_done calls of token 2 */

/* Write-off to g: settled only rises (the CAS loop of write_off()). */
inline write_off(g)
{
	atomic { if :: settled < g -> settled = g :: else -> skip fi }
}

/* Count the run [first, first + n) through the record of the calling
 * token (the CLAIMED step was made already) and free it. */
inline count_free(first, n, rd, j)
{
	P = first;
	atomic {
		wcnt = wcnt + n; wst = COUNTED;
		j = first;
		do :: j < first + n -> cntd[j]++; j++ :: else -> break od
	}
	j = first;
	do
	:: j < first + n -> atomic { assert(slot[j] == rd); slot[j] = FREED };
		j++
	:: else -> break
	od;
	atomic { wst = IDLE; wn = 0 }
}

/* A snapshot of token 1's record and the resolution of its slot s
 * (READING by 1), as the repairer makes it. */
inline resolve_slot(s, o1, o2, st, n, c, p, j, busy)
{
	o1 = owner;
	atomic { st = wst; n = wn; c = wcnt };
	p = P;
	o2 = owner;
	if
	:: MODE == 0 && o1 == 1 && o2 == 1 && st == COUNTED &&
	   s >= p && s < p + n ->
		atomic { if :: slot[s] == RD1 -> slot[s] = FREED
			 :: else -> skip fi }
	:: else ->
		atomic { if :: slot[s] == RD1 -> slot[s] = ORPH
			 :: else -> skip fi }
	fi;
	/* after every slot of a COUNTED range is resolved: back to IDLE */
	if
	:: MODE == 0 && o1 == 1 && o2 == 1 && st == COUNTED ->
		busy = 0;
		j = p;
		do
		:: j < p + n && j < NM -> if :: slot[j] == RD1 -> busy = 1
					    :: else -> skip fi; j++
		:: else -> break
		od;
		if
		:: !busy -> atomic { if :: wst == COUNTED && wcnt == c &&
					      wn == n -> wst = IDLE; wn = 0
				     :: else -> skip fi }
		:: else -> skip
		fi
	:: else -> skip
	fi
}

/* The reap: got + W.cnt loaded, then owner; a dead owner is written off. */
inline reap(g, o)
{
	g = got; g = g + wcnt;
	o = owner;
	if :: o == 1 -> write_off(g) :: else -> skip fi
}

proctype consumer1()
{
	byte i = 0, n, j, k;

	{
		owner = 1; /* adopt the fresh entry: nothing to write off */
		do
		:: i < NM ->
			/* claim a run of 1 .. RUN FULL slots at the head */
			atomic { assert(slot[i] == FULL); slot[i] = RD1 };
			n = 1;
			if
			:: RUN > 1 && i + 1 < NM ->
				atomic { slot[i + 1] = RD1 }; n = 2
			:: true -> skip
			fi;
			if
			:: MODE == 0 ->
				atomic { assert(wst == IDLE);
					 wst = CLAIMED; wn = n };
				count_free(i, n, RD1, j)
			:: MODE == 1 ->
				j = i;
				do
				:: j < i + n -> slot[j] = FREED; j++
				:: else -> break
				od;
				atomic { got = got + n; j = i;
					 do :: j < i + n -> cntd[j]++; j++
					    :: else -> break od }
			:: MODE == 2 ->
				atomic { got = got + n; j = i;
					 do :: j < i + n -> cntd[j]++; j++
					    :: else -> break od };
				j = i;
				do
				:: j < i + n -> slot[j] = FREED; j++
				:: else -> break
				od
			fi;
			/* task_done for some of them */
			k = 0;
			do
			:: k < n -> atomic { settled++ }; k++
			:: true -> break
			od;
			i = i + n
		:: else -> break
		od
	} unless { !alive1 };
	atomic { alive1 = 0; c1end = 1 }
}

proctype killer()
{
	if :: alive1 = 0 :: true -> skip fi
}

proctype repairer()
{
	byte s = 0, o1, o2, st, n, c, p, j, g, o;
	bool busy;

	c1end;
	reap(g, o);
	do
	:: s < NM ->
		if
		:: slot[s] == RD1 -> resolve_slot(s, o1, o2, st, n, c, p, j,
						  busy)
		:: else -> skip
		fi;
		s++
	:: else -> break
	od;
	reap(g, o);
	repdone = 1
}

/* Adoption of the entry by a thread of token 2 (lfipc__q_tasks_adopt):
 * owner, W, P, owner again; if owner was not 2 both times, W and P are
 * the dead token 1's: free the slots of a COUNTED range still READING by
 * 1, CAS W (the value seen) back to IDLE (a CLAIMED record too: its
 * slots are orphans), then got + W.cnt, owner, write-off, owner = 2. */
inline adopt(o1, o2, st, n, c, p, j, g)
{
	o1 = owner;
	if
	:: o1 != 2 ->
		atomic { st = wst; n = wn; c = wcnt };
		p = P;
		o2 = owner;
		if
		:: MODE == 0 && o2 != 2 && st != IDLE ->
			if
			:: st == COUNTED ->
				j = p;
				do
				:: j < p + n && j < NM ->
					atomic { if :: slot[j] == RD1 ->
							slot[j] = FREED
						 :: else -> skip fi };
					j++
				:: else -> break
				od
			:: else -> skip
			fi;
			atomic { if :: wst == st && wcnt == c && wn == n ->
					wst = IDLE; wn = 0
				 :: else -> skip fi }
		:: else -> skip
		fi;
		g = got; g = g + wcnt;
		if :: owner != 2 -> write_off(g); owner = 2
		   :: else -> skip fi
	:: else -> skip
	fi
}

proctype consumer2()
{
	byte i = 0, o1, o2, st, n, c, p, j, g;

	c1end;
	adopt(o1, o2, st, n, c, p, j, g);
	do
	:: i < NM ->
		/* a slot still READING by the dead token 1 waits for its
		 * repair; FULL or ORPHAN is taken (a get or a rescue) */
		(slot[i] != RD1);
		if
		:: atomic { (slot[i] == FULL || slot[i] == ORPH) ->
			    slot[i] = RD2 };
			if
			:: MODE == 0 ->
				atomic { assert(wst == IDLE);
					 wst = CLAIMED; wn = 1 };
				count_free(i, 1, RD2, j)
			:: else ->
				atomic { got++; cntd[i]++ };
				slot[i] = FREED
			fi;
			atomic { settled++; tdone2++ }
		:: atomic { slot[i] == FREED -> skip }
		fi;
		i++
	:: else -> break
	od;
	c2done = 1
}

/* Another thread of token 2 adopting at the same time (ADOPT2). */
proctype adopter2()
{
	byte o1, o2, st, n, c, p, j, g;

	c1end;
	adopt(o1, o2, st, n, c, p, j, g)
}

/* P1 at every step */
#define BAD(i) (i < NM && (cntd[i] > 1 || (slot[i] == ORPH && cntd[i] > 0)))
active proctype monitor()
{
end:	atomic { (BAD(0) || BAD(1) || BAD(2) || BAD(3)) -> assert(false) }
}

init
{
	byte i;

	atomic {
		run consumer1(); run killer(); run repairer(); run consumer2();
		if :: ADOPT2 -> run adopter2() :: else -> skip fi
	};
	(c2done && repdone);
	/* P1, P2 at the end */
	i = 0;
	do
	:: i < NM -> assert(cntd[i] == 1); assert(slot[i] == FREED); i++
	:: else -> break
	od;
	assert(wst == IDLE);
	assert(settled == NM)
}
