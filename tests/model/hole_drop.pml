/*
 * hole_drop.pml -- SPIN model of a JoinableQueue's drop of a hole
 * (lib/queue_recover.c, lfipc__q_drop_hole()) through the dropper's
 * in-flight record, so that a dropper killed at any step leaves the
 * count exact (session 23; task_record.pml models the consumer's record).
 *
 * Run:
 *   spin -a hole_drop.pml && gcc -O2 -DSAFETY -o pan pan.c && ./pan
 * Macros (spin -DNAME=value):
 *   HOLES  bit i set: position i is a hole (TOMB), else a message (FULL);
 *          default 3 (both)
 *   ENQ0   enq_pos at the start (a dead producer's run: 0; default 0;
 *          must lie past every message)
 *   MODE   0 the record (default); 1 today's drop (CAS TOMB -> FREE,
 *          enq_pos, deq_pos, done++: negative control)
 *   NORESET 1: a dropper whose claim CAS lost leaves its record HOLE
 *          (negative control)
 *   REC    what the recovery of a dead dropper's READING slot does with
 *          a HOLE record naming it: 0 roll forward (default: enq_pos past
 *          p, CAS the record HOLE(c) -> COUNTED(c + 1, 1), then resolve
 *          it as a COUNTED record whoever won that CAS: free the slot if
 *          still READING by the dead dropper, CAS the record to IDLE; the
 *          write-off settles p with the dead one's tasks); 1 roll back
 *          (the slot back to TOMB, the record IDLE: negative control, a
 *          TOMB behind deq_pos, which a peer helped past the READING
 *          head, is never dropped); 2 none (orphan it as any dead
 *          reader's slot: negative control, the hole is delivered)
 *   NREP   repairers (default 1); 2: a second one, and the first may be
 *          killed before any step
 *   ROLLCAS 1: the roll forward frees the slot only after a CAS it won
 *          (negative control with NREP=2: a resolver that lost the CAS
 *          to a slower one leaves the slot READING, the adoption stores
 *          owner, and the next repairer orphans the hole)
 *
 * WHAT IS MODELLED
 *  - NP = 2 positions, slot[i] the word of position i (no laps): TOMB,
 *    FULL, READING by token 1, 2 or 3, ORPHAN, FREED. enq_pos, deq_pos,
 *    done; the task entry that tokens 1 and 2 share (one participant
 *    slot): W = (wst, wn, wcnt) one word, rec_pos = (P, PT) (position,
 *    token), got, settled, owner; token 3's entry (got3, settled3).
 *  - Token 1: adopts the fresh entry, then works at the head until every
 *    slot is free: drops a TOMB head through the record (MODE 0):
 *      1. CAS W IDLE(c) -> HOLE(c); else (held) today's drop;
 *      2. rec_pos = READING(p, 1);
 *      3. CAS slot TOMB(p) -> READING(p, 1); a loser stores W = IDLE(c);
 *      4. enq_pos past p (before anything counts p);
 *      5. W = COUNTED(c + 1, 1) (p counted in the entry's got);
 *      6. free the slot, CAS deq_pos p -> p + 1;
 *      7. settled++ (settled at once);
 *      8. W = IDLE(c + 1);
 *    takes a FULL head (or an ORPHAN anywhere, a rescue) through the
 *    record as task_record.pml does, and maybe calls task_done; helps
 *    deq_pos past a READING or free head. A killer may kill it before
 *    any step (`unless`); else it dies after its last step.
 *  - Token 3 (another process, never killed): works the same way from
 *    the start (its own record is never consulted: it does not die; its
 *    steps are as above), calling task_done for every message.
 *  - After token 1's death, concurrently: the repairer (every READING
 *    slot of token 1: snapshot owner, W, rec_pos, owner; COUNTED run
 *    covering it: free; HOLE whose rec_pos is that slot's word: REC;
 *    else orphan), with a reap before and after; token 2, the new
 *    incarnation of token 1's participant slot: adopts the entry
 *    (resolves the record as the repairer does: COUNTED frees its run,
 *    HOLE naming a slot READING by 1 as REC says, any other record
 *    back to IDLE; then the write-off), then works as token 1 does and
 *    calls task_done for every message. NREP 2: a second repairer, the
 *    first killable before any step.
 *  - Every load, store and CAS is one step (seq_cst = interleaving).
 *
 * NOT MODELLED: laps and the 32-bit seq, the queue lock and the orphan
 * count (queue_recovery.pml), clears, a record scribbled by a peer
 * (validated in C, tests/unit/test_queue_record.c), task_done of one
 * process charged to another's entry.
 *
 * PROPERTIES
 *  P1 (monitor) a hole is never ORPHAN, nor taken as a message
 *     (asserted at every take); no position is counted twice (cntd[i]
 *     <= 1); join's count never goes below 0 (enq - done - settled -
 *     settled3 >= 0), and settled <= got + W.cnt.
 *  P2 (end; an end that is not reached is an invalid end state) every
 *     slot free, deq_pos = enq_pos = NP, every position counted exactly
 *     once, W IDLE, and the count exact: enq - done - settled -
 *     settled3 == 0.
 */

#define NP 2
#ifndef HOLES
#define HOLES 3
#endif
#ifndef ENQ0
#define ENQ0 0
#endif
#ifndef MODE
#define MODE 0
#endif
#ifndef NORESET
#define NORESET 0
#endif
#ifndef REC
#define REC 0
#endif
#ifndef NREP
#define NREP 1
#endif
#ifndef ROLLCAS
#define ROLLCAS 0
#endif

#define FULL 0
#define RD1 1
#define RD2 2
#define ORPH 3
#define FREED 4
#define TOMB 5
#define RD3 6

#define IDLE 0
#define CLAIMED 1
#define COUNTED 2
#define HOLE 3

#define ISHOLE(i) ((HOLES >> (i)) & 1)

byte slot[NP];
byte enq = ENQ0, deq = 0, done = 0;
byte wst = IDLE, wn = 0, wcnt = 0; /* W */
byte P = 0, PT = 0;                 /* rec_pos */
byte got = 0, settled = 0, owner = 0;
byte got3 = 0, settled3 = 0;
bool alive1 = 1;
bool c1end = 0;
byte repdone = 0;
bool c2done = 0, c3done = 0;
bool rep1dead = 0; /* NREP 2: the first repairer killed */
byte cntd[NP]; /* ghost: times position i was counted (got or done) */

#define ALLFREE (slot[0] == FREED && slot[1] == FREED)
/* nothing left: a worker stops (deq_pos helped past a freed head) */
#define DONE (ALLFREE && deq >= NP)

inline enq_adv(x)
{
	atomic { if :: enq < x -> enq = x :: else -> skip fi }
}

inline deq_adv(x)
{
	atomic { if :: deq < x -> deq = x :: else -> skip fi }
}

/* Write-off to g: settled only rises (the CAS loop of write_off()). */
inline write_off(g)
{
	atomic { if :: settled < g -> settled = g :: else -> skip fi }
}

/* Today's drop of TOMB(p): CAS, enq_pos, deq_pos, done++. */
inline old_drop(p, ok)
{
	atomic { if :: slot[p] == TOMB -> slot[p] = FREED; ok = 1
		    :: else -> ok = 0 fi };
	if
	:: ok ->
		enq_adv(p + 1);
		atomic { if :: deq == p -> deq = p + 1 :: else -> skip fi };
		atomic { done++; cntd[p]++ }
	:: else -> skip
	fi
}

/* Token t (1 or 2: the shared entry) drops the hole TOMB(p). */
inline drop(t, RDT, p, c, ok)
{
	if
	:: MODE == 1 -> old_drop(p, ok)
	:: else ->
		atomic { if :: wst == IDLE -> wst = HOLE; wn = 1; c = wcnt;
				ok = 1
			    :: else -> ok = 0 fi };
		if
		:: !ok -> old_drop(p, ok) /* held: today's way */
		:: else ->
			atomic { P = p; PT = t };
			atomic { if :: slot[p] == TOMB -> slot[p] = RDT; ok = 1
				    :: else -> ok = 0 fi };
			if
			:: ok ->
				enq_adv(p + 1);
				atomic { wcnt = c + 1; wst = COUNTED; wn = 1;
					 cntd[p]++ };
				slot[p] = FREED;
				atomic { if :: deq == p -> deq = p + 1
					    :: else -> skip fi };
				settled++;
				atomic { wst = IDLE; wn = 0 }
			:: else ->
				if
				:: NORESET -> skip
				:: else -> atomic { wst = IDLE; wn = 0 }
				fi
			fi
		fi
	fi
}

/* Token t takes the message of position p (FULL at the head, or ORPHAN)
 * and counts it through the record (or today's way when it is held). */
inline take(t, RDT, p, c, ok, td)
{
	atomic { if :: (slot[p] == FULL || slot[p] == ORPH) -> slot[p] = RDT;
			ok = 1; assert(!ISHOLE(p)) /* P1: no hole delivered */
		    :: else -> ok = 0 fi };
	if
	:: ok ->
		atomic { if :: deq == p -> deq = p + 1 :: else -> skip fi };
		atomic { if :: wst == IDLE -> wst = CLAIMED; wn = 1; c = wcnt;
				ok = 1
			    :: else -> ok = 0 fi };
		if
		:: ok ->
			atomic { P = p; PT = t };
			atomic { wcnt = c + 1; wst = COUNTED; cntd[p]++ };
			slot[p] = FREED;
			atomic { wst = IDLE; wn = 0 }
		:: else ->
			slot[p] = FREED;
			atomic { got++; cntd[p]++ }
		fi;
		if
		:: td -> settled++
		:: t == 1 -> skip /* no task_done */
		fi
	:: else -> skip
	fi
}

/* One step of token t's work: at the head p = deq_pos drop a hole, take
 * a message or help deq_pos past a claimed or free head; or rescue an
 * orphan. */
inline work(t, RDT, p, c, ok, td)
{
	p = deq;
	if
	:: p < NP && slot[p] == TOMB -> drop(t, RDT, p, c, ok)
	:: p < NP && slot[p] == FULL -> take(t, RDT, p, c, ok, td)
	:: p < NP && slot[p] != TOMB && slot[p] != FULL && slot[p] != ORPH ->
		atomic { if :: deq == p -> deq = p + 1 :: else -> skip fi }
	:: slot[0] == ORPH -> p = 0; take(t, RDT, p, c, ok, td)
	:: slot[1] == ORPH -> p = 1; take(t, RDT, p, c, ok, td)
	:: DONE -> skip
	fi
}

proctype tok1()
{
	byte p, c;
	bool ok, td = 1;

	{
		owner = 1;
		do
		:: DONE -> break
		:: !DONE -> if :: td = 1 :: td = 0 fi;
			work(1, RD1, p, c, ok, td)
		od
	} unless { !alive1 };
	atomic { alive1 = 0; c1end = 1 }
}

proctype killer()
{
	if :: alive1 = 0 :: true -> skip fi
}

/* Token 3: another process, never killed; its record is its own and
 * nobody resolves it, so its steps are those of the record without it:
 * p counted (got3) after enq_pos moves, settled at once. */
proctype tok3()
{
	byte p;
	bool ok;

	do
	:: DONE -> break
	:: !DONE ->
		p = deq;
		if
		:: p < NP && slot[p] == TOMB ->
			atomic { if :: slot[p] == TOMB -> slot[p] = RD3; ok = 1
				    :: else -> ok = 0 fi };
			if
			:: ok ->
				enq_adv(p + 1);
				atomic { got3++; cntd[p]++ };
				slot[p] = FREED;
				atomic { if :: deq == p -> deq = p + 1
					    :: else -> skip fi };
				settled3++
			:: else -> skip
			fi
		:: p < NP && (slot[p] == FULL || slot[p] == ORPH) ->
			atomic { if :: slot[p] == FULL || slot[p] == ORPH ->
					slot[p] = RD3; ok = 1;
					assert(!ISHOLE(p))
				    :: else -> ok = 0 fi };
			if
			:: ok ->
				atomic { if :: deq == p -> deq = p + 1
					    :: else -> skip fi };
				atomic { got3++; cntd[p]++ };
				slot[p] = FREED;
				settled3++
			:: else -> skip
			fi
		:: p < NP && slot[p] != TOMB && slot[p] != FULL &&
		   slot[p] != ORPH ->
			atomic { if :: deq == p -> deq = p + 1
				    :: else -> skip fi }
		:: slot[0] == ORPH ->
			atomic { if :: slot[0] == ORPH -> slot[0] = RD3; ok = 1;
					assert(!ISHOLE(0))
				    :: else -> ok = 0 fi };
			if
			:: ok -> atomic { got3++; cntd[0]++ }; slot[0] = FREED;
				settled3++
			:: else -> skip
			fi
		:: slot[1] == ORPH ->
			atomic { if :: slot[1] == ORPH -> slot[1] = RD3; ok = 1;
					assert(!ISHOLE(1))
				    :: else -> ok = 0 fi };
			if
			:: ok -> atomic { got3++; cntd[1]++ }; slot[1] = FREED;
				settled3++
			:: else -> skip
			fi
		:: DONE -> skip
		fi
	od;
	c3done = 1
}

/* Resolve token 1's HOLE record (value st, n, c; rec_pos p) naming slot
 * p, READING by 1, as REC says. */
inline hole_resolve(p, n, c, ok)
{
	if
	:: REC == 0 ->
		enq_adv(p + 1);
		atomic { if :: wst == HOLE && wcnt == c && wn == n ->
				wst = COUNTED; wcnt = c + 1; wn = 1; cntd[p]++;
				ok = 1
			    :: else -> ok = 0 fi };
		/* then as a COUNTED(c + 1, 1) record, whoever won the CAS:
		 * it failed only for a record another resolver rolled
		 * forward (p counted) or moved to IDLE when p was no longer
		 * READING by 1 (ROLLCAS 1: only after a CAS that won) */
		if
		:: ROLLCAS && !ok -> skip
		:: else ->
			if
			:: slot[p] == RD1 ->
				deq_adv(p + 1); /* orphan_behind() */
				atomic { if :: slot[p] == RD1 -> slot[p] = FREED
					    :: else -> skip fi }
			:: else -> skip
			fi;
			atomic { if :: wst == COUNTED && wcnt == c + 1 &&
					wn == 1 -> wst = IDLE; wn = 0
				    :: else -> skip fi }
		fi
	:: REC == 1 ->
		atomic { if :: slot[p] == RD1 -> slot[p] = TOMB
			    :: else -> skip fi };
		atomic { if :: wst == HOLE && wcnt == c && wn == n ->
				wst = IDLE; wn = 0
			    :: else -> skip fi }
	fi
}

/* The repairer's resolution of slot s, READING by the dead token 1. */
inline resolve_slot(s, o1, o2, st, n, c, p, pt, ok)
{
	o1 = owner;
	atomic { st = wst; n = wn; c = wcnt };
	atomic { p = P; pt = PT };
	o2 = owner;
	if
	:: o1 == 1 && o2 == 1 && st == COUNTED && pt == 1 && s >= p &&
	   s < p + n ->
		deq_adv(s + 1);
		atomic { if :: slot[s] == RD1 -> slot[s] = FREED
			    :: else -> skip fi };
		atomic { if :: wst == COUNTED && wcnt == c && wn == n ->
				wst = IDLE; wn = 0
			    :: else -> skip fi }
	:: REC != 2 && o1 == 1 && o2 == 1 && st == HOLE && pt == 1 &&
	   p == s ->
		hole_resolve(p, n, c, ok)
	:: else ->
		atomic { if :: slot[s] == RD1 -> slot[s] = ORPH
			    :: else -> skip fi };
		deq_adv(s + 1) /* orphan_behind() */
	fi
}

inline reap(g)
{
	g = got; g = g + wcnt;
	if :: owner == 1 -> write_off(g) :: else -> skip fi
}

proctype repairer(byte id)
{
	byte s = 0, o1, o2, st, n, c, p, pt, g;
	bool ok;

	c1end;
	{
		reap(g);
		do
		:: s < NP ->
			do
			:: slot[s] == RD1 ->
				resolve_slot(s, o1, o2, st, n, c, p, pt, ok)
			:: else -> break
			od;
			s++
		:: else -> break
		od;
		reap(g)
	} unless { id == 1 && rep1dead };
	repdone++
}

/* NREP 2: the first repairer may be killed before any step. */
proctype killer2()
{
	if :: rep1dead = 1 :: true -> skip fi
}

/* Adoption of the entry by token 2 (lfipc__q_tasks_adopt, rec_adopt). */
inline adopt(o1, o2, st, n, c, p, pt, g, ok, j)
{
	o1 = owner;
	if
	:: o1 != 2 ->
		atomic { st = wst; n = wn; c = wcnt };
		atomic { p = P; pt = PT };
		o2 = owner;
		if
		:: o2 != 2 && st == COUNTED && pt == 1 ->
			j = p;
			do
			:: j < p + n && j < NP ->
				if
				:: slot[j] == RD1 ->
					deq_adv(j + 1); /* orphan_behind() */
					atomic { if :: slot[j] == RD1 ->
							slot[j] = FREED
						    :: else -> skip fi }
				:: else -> skip
				fi;
				j++
			:: else -> break
			od;
			atomic { if :: wst == st && wcnt == c && wn == n ->
					wst = IDLE; wn = 0
				    :: else -> skip fi }
		:: REC != 2 && o2 != 2 && st == HOLE && pt == 1 &&
		   slot[p] == RD1 ->
			hole_resolve(p, n, c, ok)
		:: else ->
			atomic { if :: o2 != 2 && wst == st && wcnt == c &&
					wn == n && st != IDLE ->
					wst = IDLE; wn = 0
				    :: else -> skip fi }
		fi;
		g = got; g = g + wcnt;
		if :: owner != 2 -> write_off(g); owner = 2
		   :: else -> skip fi
	:: else -> skip
	fi
}

proctype tok2()
{
	byte p, c, o1, o2, st, n, pt, g, j;
	bool ok, td = 1;

	c1end;
	adopt(o1, o2, st, n, c, p, pt, g, ok, j);
	do
	:: DONE -> break
	:: !DONE -> work(2, RD2, p, c, ok, td)
	od;
	c2done = 1
}

#define BAD(i) ((slot[i] == ORPH && ISHOLE(i)) || cntd[i] > 1)
active proctype monitor()
{
end:	atomic { (BAD(0) || BAD(1) ||
		  enq < done + settled + settled3 ||
		  settled > got + wcnt) -> assert(false) }
}

init
{
	byte i;

	atomic {
		i = 0;
		do
		:: i < NP -> if :: ISHOLE(i) -> slot[i] = TOMB
				:: else -> slot[i] = FULL fi; i++
		:: else -> break
		od;
		run tok1(); run killer(); run tok3(); run repairer(1);
		if :: NREP == 2 -> run repairer(2); run killer2()
		   :: else -> skip fi;
		run tok2()
	};
	(c2done && c3done && repdone == NREP);
	i = 0;
	do
	:: i < NP -> assert(cntd[i] == 1); assert(slot[i] == FREED); i++
	:: else -> break
	od;
	assert(wst == IDLE);
	assert(enq == NP && deq == NP);
	assert(enq == done + settled + settled3)
}
