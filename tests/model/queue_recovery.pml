/*
 * queue_recovery.pml -- shared/model/recovery.pml (SPIN model of the queue
 * protocol, with the death of any producer, consumer or clearer at any
 * step and the repair / rescue paths that survivors run), extended for the
 * protocol changes of issue 9 (see README.md in this directory):
 *   FIXPUB=1    publish_slot retries while the word is WRITING or DISCARD
 *               of its own token (lib/queue.c as fixed).
 *   ORPHLOCK=1  the set of ORPHAN slots and the orphans count change only
 *               under the queue lock (the clearer word): repair of a dead
 *               reader and rescue take it (try-lock, taking it over from a
 *               dead holder with clear_undo + a recount of the orphans),
 *               a rescue that finds none sets the count to 0, and
 *               property P7 checks that whenever the lock is free the
 *               count equals the number of ORPHAN slots.
 *   CLRREC=2    (session 22) the clear's count as built: a clear record
 *               (rd, re, rcb) and `cleared` (clrd), written only by the
 *               lock holder; the taker of a dead holder's lock finishes
 *               or undoes the count (clear_recover). P4/P6 count
 *               done + clrd. CLRREC=1: the old deq_pos CAS and done +=
 *               as two steps (negative control); CLRMUT: mutants.
 * Line numbers below refer to lib/queue.c before issue 9; the slice-end
 * scan_dead of the model looks at every slot, which for N = 2 is what the
 * bounded slice_check (head, enq slot, 1024-slot sweep) looks at too.
 *
 * Run (defaults: N=2 slots, capacity 2, 2 producers x NV=2 messages,
 * 2 consumers x NG=2 gets, 1 clearer, at most MAXD=1 death):
 *   spin -a recovery.pml && gcc -O2 -DSAFETY -DCOLLAPSE -DMEMLIM=16000 \
 *        -o pan pan.c && ./pan -m100000
 * Macros (spin -DNAME=value): NPR, NCO (producers, consumers run: 1 or 2),
 * N (slots, power of two), CAP (capacity <= N;
 * CAP < N switches on the positional fullness test), NV, NG, NCLR (0/1),
 * MAXD (deaths), KILLMASK (bit t = token t may be killed: 1,2 producers,
 * 3,4 consumers, 5 clearer), RETRY (retries after full/empty, each
 * preceded by scan_dead), STRICT_EPROTO (1: assert at once when a call
 * returns -EPROTO), FIXPUB (1: publish_slot retries while the word is
 * still WRITING/DISCARD of its own token -- a hypothetical fix of the
 * defect found, used to look past it), NODIE_DOC (1: no death inside the windows doc/queue.md
 * already lists as JoinableQueue-count-only).
 *
 * WHAT IS MODELLED (line numbers: lib/queue.c at the commit checked)
 *  - Slot word (seq, claim) per slot: ws[] = seq, wc[] = claim with
 *    CW = CL_W, CR = CL_R, low bits = token (lines 28-47, 80-86).  Every
 *    load / CAS / store of a slot word, of enq_pos / deq_pos, of clearer,
 *    orphans, done, got is ONE Promela step (seq_cst = interleaving);
 *    purely local computation is merged into the adjacent step.
 *  - try_claim_put (462-518) incl. put_cas's enq_pos CAS (448-458), the
 *    "previous lap behind deq_pos" reclaim (489-500), helping (502-517),
 *    the positional fullness test when CAP < N (471-478), seq_sane (508).
 *  - publish_slot (526-541): CAS WRITING->FULL, else DISCARD->CLR, else
 *    -EPROTO.  The put is acknowledged (ghost ackd[]) when publish_slot
 *    returns 0 or 1 (lfipc_queue_put returns 0 in both cases, 559-572).
 *  - try_claim_get (925-1010): orphan rescue scan (932-948), head claim +
 *    deq_pos CAS (953-966), TOMB drop with pos_advance(enq_pos), deq_pos
 *    CAS and done++ (967-991), helping (992-1009); release_slot (1017-1031)
 *    with got++ (and task_done: tdone == got).
 *  - lfipc_queue_clear: clear_lock (1291-1314) with clear_lock_repair,
 *    clear_locked (1320-1388) all branches incl. "already ours", help,
 *    -EPROTO checks (asserted never to fire), head release.
 *  - Recovery: scan_dead (414-430) = clear_lock_repair (399-411) +
 *    clear_undo (373-395) + repair (335-367) of every slot, incl. the
 *    orphans counter before/after the CAS and orphan_behind (322-330) with
 *    pos_advance (714-723).  Survivors run scan_dead before each retry of a
 *    full put / empty get (the slice-end scan of claim_put 660-665 and
 *    claim_get 1081-1085) and a waiting clear runs clear_lock_repair.
 *  - Death: a killer process may, at any moment (between any two steps of
 *    the victim), kill one process: its token's liveness flag alive[] drops
 *    to 0 at once (the OFD lock of lfipc__token_alive) and the victim never
 *    runs again (escape via `unless`).  The process that takes over the
 *    clear lock in clear_lock_repair can itself be killed.
 *  - At the end a fresh live participant (drain) waits until every worker
 *    has finished or died, then loops scan_dead + get until the queue is
 *    stably empty, and checks the end-state properties.
 *
 * ABSTRACTED / LEFT OUT
 *  - Futex event counts, ev_wake/ev_announce, spinning, deadlines: a
 *    blocked put/get is modelled as RETRY bounded retries, each after a
 *    scan_dead (as at a slice end); then it gives up (-ETIMEDOUT).  So
 *    "hang" (P5) is checked as: after every worker has finished or died
 *    and a survivor ran the repair paths, no claim of a LIVE participant
 *    is left, the queue drains to empty, and every acked message came out.
 *  - Bulk runs (put_many/get_many), peek/release, reserve/commit, shutdown
 *    and put_closed/give_up_slot, qsize/full helpers: not modelled (the
 *    single-message paths above are).  Payload bytes and len: not modelled
 *    (message identity lives in the ghost msg_at[position]).
 *  - Tokens never recycled (generation bits); one process = one token.
 *  - Relaxed loads Q1/Q4/Q6 are modelled as ordinary loads (in the
 *    interleaving semantics they may return only current values).
 *  - NODIE_DOC=1 (default) makes the windows doc/queue.md "Crash recovery"
 *    already lists as JoinableQueue-only atomic: TOMB drop .. done++,
 *    release store + got++ (+ task_done), clear's deq_pos CAS + done +=.
 *  - Positions are small integers (no 32-bit wrap); seq compared exactly.
 *
 * PROPERTIES (assertions)
 *  P1 acked message never lost: at the end every acked message was got or
 *     discarded by a clear (the clear's deq_pos range, or a head that
 *     clear_undo of a dead clearer turned into a TOMB); a TOMB drop of an
 *     acked message is allowed only for such a clear_undo TOMB.
 *  P2 no message handed out twice (got twice), none both got and
 *     discarded (double accounting).
 *  P3 per-producer FIFO of head claims (rescued orphans excepted, as
 *     documented).
 *  P4 U = enq - done - got >= 0 always; join's condition U <= 0 never true
 *     while an acked, not-got, not-discarded message exists (monitor).
 *  P5 end: no slot claimed by a token, no ORPHAN, clear lock free, queue
 *     drained; also no -EPROTO from put (counted in eproto; STRICT_EPROTO).
 *  P6 end: enq == deq and enq == done + got (qsize and join count exact).
 *  P8 (SCFAST) nobody moves deq_pos between the single consumer's head
 *     claim and its store of deq_pos (SC_ADVANCE).
 */

#ifndef N
#define N 2
#endif
#ifndef CAP
#define CAP N
#endif
#ifndef NV
#define NV 2
#endif
#define NP 2
#define NM (NP*NV)
#ifndef NPR
#define NPR 2      /* producers actually run (1 or 2) */
#endif
#ifndef NCO
#define NCO 2      /* consumers actually run (1 or 2) */
#endif
#ifndef NG
#define NG 2
#endif
#ifndef NCLR
#define NCLR 1
#endif
#ifndef MAXD
#define MAXD 1
#endif
#ifndef KILLMASK
#define KILLMASK 62
#endif
#ifndef RETRY
#define RETRY 1
#endif
#ifndef UNDO_TRIES
#define UNDO_TRIES 2
#endif
#ifndef STRICT_EPROTO
#define STRICT_EPROTO 0
#endif
#ifndef FIXPUB
#define FIXPUB 0
#endif
#ifndef NODIE_DOC
#define NODIE_DOC 1
#endif
#ifndef ORPHLOCK
#define ORPHLOCK 0
#endif
#ifndef SPFAST
#define SPFAST 0	/* 1: single-producer mode (issue 13): see sp_claim */
#endif
#ifndef NOROLE
#define NOROLE 0	/* 1: SPFAST without the role (negative control) */
#endif
#ifndef SCFAST
#define SCFAST 0	/* 1: single-consumer mode (issue 13): see SC_ADVANCE */
#endif
#ifndef SCHELP
#define SCHELP 0	/* 1: SCFAST, but the clear helps deq_pos past a live
			 * reader's head as in MPMC mode (negative control) */
#endif
#ifndef NORECOUNT
#define NORECOUNT 0	/* 1: a take-over does not recount (negative control) */
#endif
#ifndef CLRREC
#define CLRREC 0	/* the clear's count (session 22, see clear_recover()):
			 * 0 its deq_pos CAS and done += as one step (the
			 * documented window left out); 1 the two as two steps
			 * (the library before session 22: negative control);
			 * 2 the record and `cleared` as built */
#endif
#define NOREC 255	/* rcb: no clear record open */
#ifndef CLRMUT
#define CLRMUT 0	/* CLRREC=2 mutants (negative controls): 1 the taker
			 * does not store the count of a moved, uncounted
			 * clear; 2 it undoes the head before it closes */
#endif
#define MAXPOS (NM+2)

#define CW 16
#define CR 32
#define CWR 48
#define TOKM 15
#define NONE 255

#define TK 5
#define TD 6
#define NTOK 7
#define NPROC (NPR+NCO+NCLR)

/* shared words */
byte ws[N]; byte wc[N];          /* slot word: seq, claim */
byte enq; byte deq;
byte clearer; byte orphans;
byte done; byte got;             /* got == tdone (task_done right after get) */
byte clrd;                       /* CLRREC=2: cleared (positions discarded) */
byte rd; byte re; byte rcb = NOREC; /* CLRREC=2: the clear record */
#define DONE (done + clrd)       /* everything dropped */
/* liveness and killing */
bool alive[NTOK]; bool killreq[NTOK]; bool running[NTOK]; bool nodie[NTOK];
byte deaths; byte nfin;
/* ghosts */
byte msg_at[MAXPOS];             /* message claimed at each position */
bool undone[MAXPOS];             /* head turned into TOMB by clear_undo */
bool ackd[NM]; bool gotm[NM]; bool discm[NM];
byte lastk[NP];
byte eproto;

#define PEND(x) (ackd[x] && !gotm[x] && !discm[x])
#if NM == 2
#define PENDING (PEND(0)||PEND(1))
#elif NM == 4
#define PENDING (PEND(0)||PEND(1)||PEND(2)||PEND(3))
#else
#define PENDING (PEND(0)||PEND(1)||PEND(2)||PEND(3)||PEND(4)||PEND(5))
#endif

#define LOCALS byte p, p2, s, es, ec, ns, nc, i, tmp, tgt, rs, rcl, rtok, \
	holder, ut, us, uc, s2, tmp2, m, rc, tries, j2, cnt, xcb, xd, xe, xc, xq; bool xu, ok, crep, lk; \
	short dd

/* ---- helpers --------------------------------------------------------- */

/* pos_advance (714-723): move V forward to tgt, never backwards */
inline pos_advance(V) {
	tmp = V;
	do
	:: tgt > tmp ->
		d_step { if :: V == tmp -> V = tgt; ok = 1
			    :: else -> tmp = V; ok = 0 fi };
		if :: ok -> break :: else fi
	:: else -> break
	od; skip
}

/* orphan_behind (322-330), ns = seq of the new ORPHAN */
inline orphan_behind() {
	tmp = deq;
	if
	:: (ns - 1 >= tmp) && (ns - 1 - tmp < N) -> tgt = ns; pos_advance(deq)
	:: else
	fi
}

/* ORPHLOCK (lib/queue.c after issue 9): the set of ORPHAN slots changes
 * only under the queue lock (the clearer word); a take-over of a dead
 * holder undoes its clear and recounts the orphans. */
inline recount() {
	d_step { if :: NORECOUNT -> skip :: else ->
		cnt = 0; j2 = 0;
		do
		:: j2 < N -> if :: wc[j2] == CR -> cnt++ :: else fi; j2++
		:: else -> break
		od;
		orphans = cnt; cnt = 0; j2 = 0
	fi }
}

/* lock_try: take the lock if free, or take it over from a dead holder
 * (then clear_undo + recount); lk says whether we hold it. */
inline olock() {
	d_step { if :: clearer == 0 -> clearer = tok; lk = 1
		    :: else -> holder = clearer; lk = 0 fi };
	if
	:: !lk && holder != tok && !alive[holder] ->
		d_step { if :: clearer == holder -> clearer = tok; lk = 1
			    :: else fi };
		if :: lk -> clear_recover(); recount() :: else fi
	:: else
	fi
}

/* repair (335-367) of slot ix whose word (rs, rcl) was loaded */
inline repair(ix) {
	if
	:: ok ->   /* dead claimant (token_alive checked with the load) */
		d_step {
			if
			:: (rcl & CWR) == CWR -> ns = rs + 1; nc = CWR
			:: (rcl & CWR) == CW -> ns = rs + 1; nc = CW
			:: else -> ns = rs; nc = CR
			fi
		};
		if
		:: ORPHLOCK && nc == CR ->
			olock();
			if
			:: lk ->
				orphans++;                    /* before the CAS */
				d_step { if :: ws[ix] == rs && wc[ix] == rcl -> ws[ix] = ns; wc[ix] = nc; ok = 1
					    :: else -> ok = 0 fi };
				if
				:: !ok -> orphans--
				:: ok -> orphan_behind()
				fi;
				clearer = 0; lk = 0
			:: else -> ok = 0                     /* busy: next slice */
			fi
		:: else ->
			if :: nc == CR -> orphans++ :: else fi;       /* before the CAS */
			d_step { if :: ws[ix] == rs && wc[ix] == rcl -> ws[ix] = ns; wc[ix] = nc; ok = 1
				    :: else -> ok = 0 fi };
			if
			:: !ok && nc == CR -> orphans--
			:: ok && nc == CR -> orphan_behind()
			:: else
			fi
		fi
	:: else
	fi
}

/* clear_undo (373-395) */
inline clear_undo() {
	ut = 0;
	do
	:: ut < UNDO_TRIES ->
		tmp2 = deq;
		d_step { s2 = tmp2 % N; us = ws[s2]; uc = wc[s2] };
		if
		:: us == tmp2 + 1 && uc == CWR -> nc = CW            /* CLR -> TOMB */
		:: us == tmp2 && (uc & CWR) == CWR && (uc & TOKM) != 0 ->
			nc = (uc & TOKM) | CW                        /* DISCARD -> WRITING */
		:: else -> break
		fi;
		d_step { if :: ws[s2] == us && wc[s2] == uc -> wc[s2] = nc; ok = 1;
				if :: nc == CW -> undone[tmp2] = 1 :: else fi
			    :: else -> ok = 0 fi };
		if :: ok -> break :: else -> ut++ fi
	:: else -> break
	od; skip
}

/* CLRREC=2: what the taker of a dead holder's lock does first
 * (lib/queue_recover.c clear_recover()): an open record says the dead
 * holder was between its record and its close. Count (cleared) and
 * deq_pos are brought to agree: moved and counted -> close; moved, not
 * counted -> store cleared = cb + n; not moved -> close, then undo the
 * head (clear_undo). Each step may be the taker's last (it may die too). */
inline clear_recover() {
	xcb = rcb;
	if
	:: CLRREC == 2 && xcb != NOREC ->
		xd = rd; xe = re; xc = clrd; xq = deq;
		assert(xe > xd && xe - xd <= N + 1);      /* valid record */
		xu = 0;
		if
		:: xc == xcb + xe - xd -> skip            /* counted */
		:: xc == xcb && xq >= xe ->               /* moved, not counted */
			if :: CLRMUT != 1 -> clrd = xcb + xe - xd :: else fi
		:: xc == xcb && xq == xd -> xu = 1        /* not moved */
		:: else -> assert(false)                  /* cannot happen */
		fi;
		if
		:: !xu ->
			d_step { if :: ws[xd % N] == xd + 1 && wc[xd % N] == CWR ->
					ws[xd % N] = xd + N; wc[xd % N] = 0
				    :: else fi };
			rcb = NOREC
		:: xu && CLRMUT != 2 -> rcb = NOREC; clear_undo()
		:: xu && CLRMUT == 2 -> clear_undo(); rcb = NOREC
		fi
	:: else -> clear_undo()
	fi;
	d_step { xcb = 0; xd = 0; xe = 0; xc = 0; xq = 0; xu = 0 }
}

/* clear_lock_repair (399-411), holder loaded */
inline clear_lock_repair() {
	crep = 0;
	if
	:: holder != 0 && !alive[holder] ->   /* token_alive */
		d_step { if :: clearer == holder -> clearer = tok; ok = 1
			    :: else -> ok = 0 fi };
		if :: ok -> clear_recover();
			   if :: ORPHLOCK -> recount() :: else fi;
			   clearer = 0; crep = 1
		   :: else fi
	:: else
	fi
}

/* scan_dead (414-430).  Reduction: when nobody has died the scan only
 * loads words and changes nothing, so it is skipped (deaths is a ghost);
 * each slot's load and the liveness check of its token are one step. */
inline scan_dead() {
	if
	:: deaths == 0
	:: else ->
		holder = clearer;
		clear_lock_repair();
		i = 0;
		do
		:: i < N ->
			d_step { rs = ws[i]; rcl = wc[i]; rtok = rcl & TOKM;   /* Q1 */
				 ok = (rtok != 0 && (rcl & CWR) != 0 && !alive[rtok]) };
			repair(i);
			i++
		:: else -> break
		od
	fi;
	skip;
	d_step { i = 0; rs = 0; rcl = 0; rtok = 0; ns = 0; nc = 0; holder = 0;
		 ut = 0; us = 0; uc = 0; s2 = 0; tmp2 = 0; tmp = 0; tgt = 0;
		 ok = 0; crep = 0 }
}

/* ---- producer side --------------------------------------------------- */

inline put_cas() {                                /* 448-458 */
	d_step { if :: ws[s] == es && wc[s] == ec -> ws[s] = p; wc[s] = tok | CW;
			msg_at[p] = m; ok = 1
		    :: else -> ok = 0 fi };
	if
	:: ok -> d_step { if :: enq == p -> enq = p + 1 :: else fi }; rc = 1; break
	:: else
	fi
}

inline try_claim_put() {                          /* 462-518 */
	p = enq;
	do
	:: d_step { s = p % N; es = ws[s]; ec = wc[s]; dd = es - p };
		if
		:: CAP != N && p - deq >= CAP ->
			p2 = enq;
			if :: p2 == p -> rc = 0; break
			   :: else -> p = p2
			fi
		:: else ->
			if
			:: dd == 0 && ec == 0 -> put_cas()
			:: dd == 1 - N && (ec == 0 || ec == CW || ec == CWR) &&
			   deq + N > p -> put_cas()
			:: else ->
				p2 = enq;
				if
				:: p2 != p -> p = p2
				:: else ->
					assert(dd >= -(N + 2) && dd <= N + 2);
					if
					:: dd < 0 -> rc = 0; break
					:: else -> d_step { if :: enq == p2 -> enq = p + 1; p = p + 1
							   :: else -> p = enq fi }
					fi
				fi
			fi
		fi
	od; skip
}

/* review19b (branch cas19's publish_locked(), lib/queue_putget.c):
 * PUBLOCK=1 lets the producer end its publication at any step with a
 * store under the queue lock: lock_try (olock: free, or taken over from a
 * dead holder with clear_undo + recount), load deq_pos, STORE CLR(p) if
 * deq_pos > p (a clear discarded p) else FULL(p), let the lock go. A live
 * holder: the ordinary CAS path. The library takes this way only against
 * a peer that keeps rewriting the word (every 256th failed CAS); allowing
 * it at any step checks that the store is as good as the CAS whenever the
 * lock is held. PUBLOCK=2: the same store without the lock (negative
 * control: a consumer gets a message a clear counted). */
#ifndef PUBLOCK
#define PUBLOCK 0
#endif
inline publish_locked() {
	ok = 0;
#if PUBLOCK == 1
	olock();
	ok = lk;
#else
	ok = 1;
#endif
	if
	:: ok ->
		tmp2 = deq;
		d_step { ws[s] = p + 1;
			 if :: tmp2 > p -> wc[s] = CWR :: else -> wc[s] = 0 fi;
			 ackd[m] = 1 };
#if PUBLOCK == 1
		d_step { clearer = 0; lk = 0 }
#else
		skip
#endif
	:: else
	fi
}

inline publish() {                                /* publish_slot 526-541 */
#if PUBLOCK
	if :: publish_locked() :: ok = 0 fi;
	if :: ok -> skip :: else ->
#endif
#if FIXPUB
  do ::	/* hypothetical fix: retry while the word is still ours */
#endif
	d_step { if :: ws[s] == p && wc[s] == (tok | CW) -> ws[s] = p + 1; wc[s] = 0;
			ackd[m] = 1; ok = 1
		    :: else -> es = ws[s]; ec = wc[s]; ok = 0 fi };
	if
	:: !ok ->
		if
		:: es == p && ec == (tok | CWR) ->
			d_step { if :: ws[s] == es && wc[s] == ec -> ws[s] = p + 1; wc[s] = CWR;
					ackd[m] = 1; ok = 1
				    :: else -> ok = 0 fi }
		:: else
		fi;
#if FIXPUB
		if :: !ok && es == p && (ec == (tok | CW) || ec == (tok | CWR)) -> skip
		   :: else -> break
		fi
	:: else -> break
	fi
  od; skip;
  if :: !ok -> eproto++; assert(!STRICT_EPROTO) :: else fi
#else
		if :: !ok -> eproto++; assert(!STRICT_EPROTO) :: else fi
	:: else
	fi
#endif
#if PUBLOCK
	fi
#endif
}

/* Single-producer mode (SPFAST, lib/internal/queue_fast.h sp_claim()): the producer holds
 * the role, so nobody else claims a FREE slot or moves enq_pos forward
 * past a position it has not claimed: a FREE(enq) slot is claimed by a
 * plain store after the load (no CAS) and enq_pos moved by a plain store;
 * anything else goes the general way (try_claim_put). */
inline sp_claim() {
	p = enq;
	d_step { s = p % N; es = ws[s]; ec = wc[s] };
	if
	:: es == p && ec == 0 ->
		d_step { ws[s] = p; wc[s] = tok | CW; msg_at[p] = m };
		enq = p + 1; rc = 1
	:: else -> try_claim_put()
	fi
}

proctype producer(byte tok; byte pi)
{
	LOCALS; byte k = 0;
	{
#if SPFAST && !NOROLE
		/* the role passes to producer 2 only when producer 1 is
		 * dead or done (its handle closed) */
		if :: pi == 1 -> (!alive[1] || !running[1]) :: else fi;
#endif
		do
		:: k < NV ->
			m = pi * NV + k; tries = 0;
			do
			:: 
#if SPFAST
				sp_claim();
#else
				try_claim_put();
#endif
				if
				:: rc == 1 -> break
				:: else ->
					if :: tries < RETRY -> skip;
						d_step { tries++; p = 0; p2 = 0; s = 0; es = 0;
							 ec = 0; dd = 0; tmp = 0; tgt = 0; ok = 0; i = 0 };
						scan_dead()
					   :: else -> break
					fi
				fi
			od; skip;
			if :: rc == 1 -> publish() :: else fi;
			skip;
			d_step { k++; p = 0; p2 = 0; s = 0; es = 0; ec = 0; dd = 0;
				 tmp = 0; tgt = 0; ok = 0; rc = 0; tries = 0; m = 0 }
		:: else -> break
		od; skip;
		d_step { running[tok] = 0; nfin++ }
	} unless { killreq[tok] -> nfin++ }
}

/* ---- consumer side --------------------------------------------------- */

/* The move of deq_pos after a head claim. MPMC: a CAS p -> p + 1 (others
 * may have helped). SCFAST (lib/queue_putget.c sc_advance()): a plain store;
 * P8 asserts that nobody moved deq_pos between the claim and the store
 * (else the store would move it backwards). */
#if SCFAST
#define SC_ADVANCE() d_step { assert(deq == p); deq = p + 1 }
#else
#define SC_ADVANCE() d_step { if :: deq == p -> deq = p + 1 :: else fi }
#endif

inline try_claim_get() {                          /* 925-1010 */
	rc = 0;
	if
	:: orphans != 0 && ORPHLOCK ->            /* Q5 + rescue() */
		olock();
		if
		:: lk ->
			if
			:: orphans != 0 ->
				i = 0;
				do
				:: i < N ->
					d_step { es = ws[i]; ec = wc[i] };
					if
					:: ec == CR ->
						d_step { if :: ws[i] == es && wc[i] == CR -> wc[i] = tok | CR; ok = 1
							    :: else -> ok = 0 fi };
						if :: ok -> orphans--; s = i; rc = 1; break
						   :: else -> i++
						fi
					:: else -> i++
					fi
				:: else -> break
				od; skip;
				if :: rc == 0 -> orphans = 0
				   :: else ->
					/* SCFAST: a rescued orphan lies behind
					 * deq_pos (lfipc__q_rescue()), so a
					 * reader's head with deq_pos lagging is
					 * always a head claim whose consumer
					 * stores deq_pos next */
					if :: SCFAST -> ns = es; orphan_behind()
					   :: else fi
				fi
			:: else
			fi;
			clearer = 0; lk = 0
		:: else
		fi
	:: orphans != 0 && !ORPHLOCK ->           /* Q4 */
		i = 0;
		do
		:: i < N ->
			d_step { es = ws[i]; ec = wc[i] };
			if
			:: ec == CR ->
				d_step { if :: ws[i] == es && wc[i] == CR -> wc[i] = tok | CR; ok = 1
					    :: else -> ok = 0 fi };
				if :: ok -> orphans--; s = i; rc = 1; break
				   :: else -> i++
				fi
			:: else -> i++
			fi
		:: else -> break
		od; skip
	:: else
	fi;
	if
	:: rc == 0 ->
		p = deq;
		do
		:: d_step { s = p % N; es = ws[s]; ec = wc[s]; dd = es - (p + 1) };
			if
			:: dd == 0 && ec == 0 ->
				d_step { if :: ws[s] == es && wc[s] == 0 -> wc[s] = tok | CR; ok = 1;
						m = msg_at[p]; assert(m != NONE);
						/* P3: per-producer FIFO of head claims */
						assert(m % NV + 1 > lastk[m / NV]);
						lastk[m / NV] = m % NV + 1
					    :: else -> ok = 0 fi };
				if
				:: ok -> SC_ADVANCE(); rc = 1; break
				:: else
				fi
			:: dd == 0 && ec == CW ->                /* TOMB: drop */
				d_step { if :: ws[s] == es && wc[s] == CW -> ws[s] = p + N; wc[s] = 0;
						ok = 1; nodie[tok] = NODIE_DOC
					    :: else -> ok = 0 fi };
				if
				:: ok ->
					tgt = p + 1; pos_advance(enq);
					d_step { if :: deq == p -> deq = p + 1 :: else fi };
					d_step {
						done++;
						m = msg_at[p]; assert(m != NONE);
						/* P1: an acked message is dropped only as a
						 * dead clear's head (clear_undo) */
						assert(!ackd[m] || undone[p]);
						assert(!gotm[m] && !discm[m]);   /* P2 */
						discm[m] = 1;
						assert(enq >= DONE + got);       /* P4 */
						nodie[tok] = 0
					};
					p = p + 1
				:: else
				fi
			:: else ->
				p2 = deq;
				if
				:: p2 != p -> p = p2
				:: else ->
					assert(dd >= -(N + 2) && dd <= N + 2);
					if
					:: dd < 0 || ec == CWR -> rc = 0; break
					:: else -> d_step { if :: deq == p2 -> deq = p + 1; p = p + 1
							   :: else -> p = deq fi }
					fi
				fi
			fi
		od; skip;
		if :: rc == 1 -> es = p + 1 :: else fi
	:: else
	fi
}

/* release_slot (1017-1031) + got++ (+ task_done), one step (NODIE_DOC) */
inline release() {
	d_step {
		tmp = es - 1;
		m = msg_at[tmp]; assert(m != NONE);
		assert(!gotm[m]);        /* P2: never handed out twice */
		assert(!discm[m]);       /* P2: not both discarded and got */
		gotm[m] = 1;
		ws[s] = es - 1 + N; wc[s] = 0;
		got++;
		assert(enq >= DONE + got)  /* P4 */
	}
}

proctype consumer(byte tok)
{
	LOCALS; byte g = 0;
	{
#if SCFAST
		/* the role passes to consumer 4 only when consumer 3 is
		 * dead or done (its handle closed) */
		if :: tok == 4 -> (!alive[3] || !running[3]) :: else fi;
#endif
		do
		:: g < NG ->
			tries = 0;
			do
			:: try_claim_get();
				if
				:: rc == 1 -> break
				:: else ->
					if :: tries < RETRY -> skip;
						d_step { tries++; p = 0; p2 = 0; s = 0; es = 0;
							 ec = 0; dd = 0; tmp = 0; tgt = 0; ok = 0; i = 0 };
						scan_dead()
					   :: else -> break
					fi
				fi
			od; skip;
			if :: rc == 1 -> release() :: else fi;
			skip;
			d_step { g++; p = 0; p2 = 0; s = 0; es = 0; ec = 0; dd = 0;
				 tmp = 0; tgt = 0; ok = 0; rc = 0; tries = 0; m = 0; i = 0 }
		:: else -> break
		od; skip;
		d_step { running[tok] = 0; nfin++ }
	} unless { killreq[tok] -> nfin++ }
}

/* ---- clear ----------------------------------------------------------- */

inline clear_locked() {                           /* 1320-1388 */
	do
	:: d0 = deq;
		e0 = enq;
		d_step { s = d0 % N; es = ws[s]; ec = wc[s]; dd = es - (d0 + 1) };
		if
		:: e0 <= d0 -> break
		:: e0 - d0 > N + 1 ->
			d_step { assert(!(d0 == deq && e0 == enq)) }   /* -EPROTO */
		:: else ->
			if
			:: dd == 0 && (ec == 0 || ec == CW) -> hs = es; hc = CWR
			:: dd == -1 && (ec & CWR) == CW && (ec & TOKM) != 0 ->
				hs = es; hc = (ec & TOKM) | CWR
			:: (dd == 0 && ec == CWR) ||
			   (dd == -1 && (ec & CWR) == CWR && (ec & TOKM) != 0) ->
				hs = es; hc = ec
			:: SCFAST && !SCHELP && dd == 0 && ec != CR &&
			   (ec & CWR) == CR && alive[ec & TOKM] ->
				/* SCFAST: the live consumer claimed the head
				 * and stores deq_pos next: wait for it */
				hs = NONE
			:: SCFAST && !SCHELP && dd == 0 && ec != CR &&
			   (ec & CWR) == CR && !alive[ec & TOKM] ->
				/* dead: orphan it (we hold the lock) */
				hs = NONE;
				orphans++;
				d_step { if :: ws[s] == es && wc[s] == ec -> wc[s] = CR; ok = 1
					    :: else -> ok = 0 fi };
				if :: ok -> ns = es; orphan_behind()
				   :: else -> orphans--
				fi
			:: (dd == 0 && (ec & CWR) == CR &&
			    !(SCFAST && !SCHELP && ec != CR)) ||
			   (dd > 0 && dd <= N + 1) ->
				hs = NONE;
				d_step { if :: deq == d0 -> deq = d0 + 1 :: else fi }
			:: else ->
				hs = NONE;
				d_step { assert(!(d0 == deq && e0 == enq &&
						  ws[s] == es && wc[s] == ec)) }   /* -EPROTO */
			fi;
			if
			:: hs != NONE ->
				if
				:: hs != es || hc != ec ->
					d_step { if :: ws[s] == es && wc[s] == ec -> ws[s] = hs; wc[s] = hc; ok = 1
						    :: else -> ok = 0 fi }
				:: else -> ok = 1
				fi;
				if
				:: ok ->
					e0 = enq;
#if CLRREC == 2
					/* the record, cb last (rcb is NOREC
					 * while the lock is free) */
					cb = clrd;
					rd = d0;
					re = e0;
					rcb = cb;
#endif
					d_step {
						assert(e0 - d0 <= N + 1);   /* else -EPROTO */
						assert(deq == d0);          /* CAS cannot fail */
						deq = e0;
#if CLRREC == 0
						done = done + e0 - d0;
#endif
						tmp = d0;
						do
						:: tmp < e0 ->
							m = msg_at[tmp]; assert(m != NONE);
							assert(!gotm[m] && !discm[m]);  /* P2 */
							discm[m] = 1; tmp++
						:: else -> break
						od; skip;
						assert(enq >= DONE + got)   /* P4 */
					};
#if CLRREC == 1
					done = done + e0 - d0;
#elif CLRREC == 2
					clrd = cb + e0 - d0;
#endif
					d_step { if :: ws[s] == d0 + 1 && wc[s] == CWR -> ws[s] = d0 + N; wc[s] = 0
						    :: else fi };
#if CLRREC == 2
					rcb = NOREC;
#endif
					break
				:: else
				fi
			:: else
			fi
		fi
	od; skip
}

proctype clearer_p(byte tok)
{
	LOCALS; byte ct = 0; byte d0, e0, hs, hc, cb;
	{
		do                                     /* clear_lock 1291-1314 */
		:: d_step { if :: clearer == 0 -> clearer = tok; ok = 1
			       :: else -> holder = clearer; ok = 0 fi };
			if
			:: ok -> break
			:: else ->
				if
				:: ct < RETRY -> ct++;
					if :: holder != tok -> clear_lock_repair() :: else fi
				:: else -> break                      /* -EBUSY */
				fi
			fi
		od; skip;
		if
		:: ok -> clear_locked(); clearer = 0
		:: else
		fi;
		d_step { running[tok] = 0; nfin++ }
	} unless { killreq[tok] -> nfin++ }
}

/* ---- killer, join monitor, final drain -------------------------------- */

#define KM(t) (((KILLMASK >> t) & 1) && running[t] && !nodie[t] && deaths < MAXD)
#define KILL(t) atomic { KM(t) -> killreq[t] = 1; alive[t] = 0; deaths++ }

active proctype killer()
{
	do
	:: KILL(1)
	:: KILL(2)
	:: KILL(3)
	:: KILL(4)
	:: KILL(5)
	:: break
	od; skip
}

/* P4: U >= 0, and join's all_done() (1477-1488) never true while an acked
 * message is neither got nor discarded. */
active proctype joinmon()
{
end:	do
	:: atomic { enq < DONE + got -> assert(enq >= DONE + got) }
	:: atomic { (enq == DONE + got) && PENDING -> assert(!(enq == DONE + got && PENDING)) }
	od; skip
}

#if N == 2
#define NORPH ((wc[0] == CR) + (wc[1] == CR))
#else
#define NORPH ((wc[0] == CR) + (wc[1] == CR) + (wc[2] == CR) + (wc[3] == CR))
#endif

/* P7 (ORPHLOCK): while the lock is free, the orphan count is exact. */
active proctype orphmon()
{
end:	do
	:: atomic { ORPHLOCK && clearer == 0 && orphans != NORPH ->
		assert(!(clearer == 0 && orphans != NORPH)) }
	od; skip
}

active proctype drain()
{
	LOCALS; byte tok = TD; byte idle = 0;
	nfin == NPROC;
	do
	:: idle < 2 ->
		scan_dead();
		try_claim_get();
		if :: rc == 1 -> release(); idle = 0 :: else -> idle++ fi
	:: else -> break
	od; skip;
	/* P5: no claim left behind by anybody, no orphan, lock free */
	i = 0;
	do
	:: i < N -> assert((wc[i] & TOKM) == 0); assert(wc[i] != CR); i++
	:: else -> break
	od; skip;
	assert(clearer == 0);
	assert(!ORPHLOCK || orphans == NORPH);   /* P7 at the end */
	/* P6: drained and exact */
	assert(enq == deq);
	assert(enq == DONE + got);
	assert(CLRREC != 2 || rcb == NOREC);      /* every record closed */
	/* P1: every acked message got or discarded by a clear */
	i = 0;
	do
	:: i < NM -> assert(!ackd[i] || gotm[i] || discm[i]); i++
	:: else -> break
	od; skip;
	/* P5': no put failed with -EPROTO */
	assert(eproto == 0)
}

init
{
	byte j;
	atomic {
		j = 0;
		do :: j < N -> ws[j] = j; j++ :: else -> break od;
		j = 0;
		do :: j < MAXPOS -> msg_at[j] = NONE; j++ :: else -> break od;
		j = 1;
		do :: j < NTOK -> alive[j] = 1; j++ :: else -> break od;
		running[1] = 1; running[2] = (NPR > 1); running[3] = 1;
		running[4] = (NCO > 1); running[5] = (NCLR > 0);
		run producer(1, 0);
		if :: NPR > 1 -> run producer(2, 1) :: else fi;
		run consumer(3);
		if :: NCO > 1 -> run consumer(4) :: else fi;
		if :: NCLR > 0 -> run clearer_p(TK) :: else fi
	}
}
