/* SPDX-License-Identifier: MIT */
/*
 * tsan_zmq.c - ThreadSanitizer and libzmq, for the programs that run
 * ZeroMQ (lfipc-bridge, bridge_bench, and the bridge's test binary, which
 * plays a receiver in test_bridge_spin.c). Compiled into each of them;
 * empty unless the program is built with -fsanitize=thread.
 *
 * libzmq (Debian's) is not instrumented. It hands a message from the
 * application thread to its I/O thread through its own lock-free pipe
 * (atomics in uninstrumented code), which ThreadSanitizer cannot see; but
 * the malloc() and memcpy() that libzmq calls on both sides of that pipe
 * are intercepted, so every message sent looks like a race: "data race ...
 * memcpy ... libzmq.so.5 ... previous write ... malloc ... libzmq.so.5".
 * Under halt_on_error=1 (make check) the first one killed the process
 * before its first message was through.
 *
 * With CURVE the same goes for libsodium, which libzmq's I/O thread calls
 * to decrypt a frame into the buffer that the application thread then
 * reads ("previous write ... memmove ... crypto_secretbox_open_detached").
 *
 * Two suppressions, of libzmq's internals only: called_from_lib makes
 * ThreadSanitizer treat the interceptors called from libzmq, and from
 * libsodium (which only libzmq uses here), as uninstrumented code, as the
 * rest of both libraries already is. The bridge's own
 * code, liblfipc, and everything they call directly stay checked; memory
 * that our code and libzmq both touch (a buffer given to zmq_send, a
 * received zmq_msg_t) is touched by our code on one thread only.
 */
#if defined(__SANITIZE_THREAD__)
#define LFIPC_TSAN_ZMQ 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LFIPC_TSAN_ZMQ 1
#endif
#endif

#ifdef LFIPC_TSAN_ZMQ
/* Read by the ThreadSanitizer runtime at start-up, besides any
 * suppressions= file in TSAN_OPTIONS. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
	return "called_from_lib:libzmq.so\n"
	       "called_from_lib:libsodium.so\n";
}
#else
/* ISO C wants a translation unit to declare something. */
typedef int lfipc_tsan_zmq_unused;
#endif
