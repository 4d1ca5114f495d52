/* SPDX-License-Identifier: MIT */
/*
 * bridge_sock.c - the ZeroMQ side of liblfipc-bridge common to sender and
 * receiver: the context and socket with their options, CURVE keys, the ZAP
 * handler that admits a receiver's allowed clients, and key generation.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int set_key(void *sock, int opt, const char *z85)
{
	unsigned char bin[32];

	if (!z85 || strlen(z85) != LFIPC_BRIDGE_KEY_LEN ||
	    !zmq_z85_decode(bin, z85))
		return -EINVAL;
	return zmq_setsockopt(sock, opt, bin, sizeof(bin)) ? zerr() : 0;
}

int lfipc__bridge_set_int(void *sock, int opt, int v)
{
	return zmq_setsockopt(sock, opt, &v, sizeof(v)) ? zerr() : 0;
}

/* Context, socket and security common to both sides. */
int lfipc__bridge_sock_open(lfipc_bridge *b, int type,
			    const lfipc_bridge_opts *o)
{
	int rc;

	b->ctx = zmq_ctx_new();
	if (!b->ctx)
		return zerr();
	b->sock = zmq_socket(b->ctx, type);
	if (!b->sock)
		return zerr();
	/* Data frames: a high-water mark of 16, so ZeroMQ holds little.
	 * Acknowledgements (24 bytes) flow the other way: a high one, as a
	 * ROUTER drops what meets a full pipe, and a lost acknowledgement of
	 * the end of stream would leave the sender waiting. */
	if ((rc = lfipc__bridge_set_int(b->sock, ZMQ_LINGER, 1000)) ||
	    (rc = lfipc__bridge_set_int(b->sock, ZMQ_SNDHWM,
					b->tx ? 16 : 4096)) ||
	    (rc = lfipc__bridge_set_int(b->sock, ZMQ_RCVHWM,
					b->tx ? 4096 : 16)) ||
	    (rc = lfipc__bridge_set_int(b->sock, ZMQ_HEARTBEAT_IVL, 1000)) ||
	    (rc = lfipc__bridge_set_int(b->sock, ZMQ_HEARTBEAT_TIMEOUT, 5000)))
		return rc;
	if (!o->curve_secret)
		return 0;
	if (!zmq_has("curve"))
		return -ENOTSUP;
	if (b->tx) {
		char pub[LFIPC_BRIDGE_KEY_LEN + 1];

		if ((rc = lfipc_bridge_public_key(o->curve_secret, pub)) ||
		    (rc = set_key(b->sock, ZMQ_CURVE_SERVERKEY,
				  o->curve_server)) ||
		    (rc = set_key(b->sock, ZMQ_CURVE_PUBLICKEY, pub)) ||
		    (rc = set_key(b->sock, ZMQ_CURVE_SECRETKEY,
				  o->curve_secret)))
			return rc;
		return 0;
	}
	if (o->curve_allow) {
		size_t n = 0;

		while (o->curve_allow[n])
			n++;
		b->allow = calloc(n ? n : 1, sizeof(*b->allow));
		if (!b->allow)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++)
			if (strlen(o->curve_allow[i]) != LFIPC_BRIDGE_KEY_LEN ||
			    !zmq_z85_decode(b->allow[i], o->curve_allow[i]))
				return -EINVAL;
		b->nallow = n;
		/* The ZAP handler must be bound before the socket that uses
		 * it; run() answers its requests. */
		b->zap = zmq_socket(b->ctx, ZMQ_REP);
		if (!b->zap)
			return zerr();
		if (zmq_bind(b->zap, ZAP_EP))
			return zerr();
	}
	if ((rc = lfipc__bridge_set_int(b->sock, ZMQ_CURVE_SERVER, 1)) ||
	    (rc = set_key(b->sock, ZMQ_CURVE_SECRETKEY, o->curve_secret)))
		return rc;
	return 0;
}

/* The fd that signals a change of sock's state (ZMQ_FD). */
int lfipc__bridge_fd(void *sock)
{
	int fd;
	size_t len = sizeof(fd);

	return zmq_getsockopt(sock, ZMQ_FD, &fd, &len) ? zerr() : fd;
}

/* The one wait of either side: poll(2) on sfd, xfd and qfd (each < 0:
 * not watched) for up to timeout_ns (0: only look), rounded up to whole
 * milliseconds. revents[i] is what each had (after a signal, POLLIN
 * for each watched: look at everything). ZeroMQ's own zmq_poll() asks each socket for its
 * state before and after the system call (two more system calls per
 * socket, each time): the callers know when they must ask. 0, or a
 * negative errno of poll(2). */
int lfipc__bridge_poll(int sfd, int xfd, int qfd, int64_t timeout_ns,
		       short revents[3])
{
	struct pollfd pf[3] = {
	    {sfd, POLLIN, 0}, {xfd, POLLIN, 0}, {qfd, POLLIN, 0}};
	int ms = timeout_ns <= 0 ? 0 : (int)((timeout_ns + 999999) / 1000000);

	if (poll(pf, 3, ms) < 0) {
		if (errno != EINTR)
			return -errno;
		for (int i = 0; i < 3; i++)
			pf[i].revents = pf[i].fd >= 0 ? POLLIN : 0;
	}
	for (int i = 0; i < 3; i++)
		revents[i] = pf[i].revents;
	return 0;
}

/* Answer one ZAP request (RFC 27): accept a CURVE client whose key is in
 * the allow list. 1 answered, 0 none waiting, or a negative errno. */
int lfipc__bridge_zap(lfipc_bridge *b)
{
	zmq_msg_t f[8];
	int nf = 0, more = 1, rc = 0;
	bool ok = false;

	while (more && nf < 8) {
		zmq_msg_init(&f[nf]);
		if (zmq_msg_recv(&f[nf], b->zap, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&f[nf]);
			rc = zmq_errno() == EAGAIN ? 0 : zerr();
			goto out;
		}
		more = zmq_msg_more(&f[nf]);
		nf++;
	}
	rc = 1;
	while (more) { /* more frames than RFC 27 has: drain them */
		zmq_msg_t x;

		zmq_msg_init(&x);
		if (zmq_msg_recv(&x, b->zap, 0) < 0) {
			zmq_msg_close(&x);
			break;
		}
		more = zmq_msg_more(&x);
		zmq_msg_close(&x);
	}
	if (nf >= 7 && zmq_msg_size(&f[5]) == 5 &&
	    !memcmp(zmq_msg_data(&f[5]), "CURVE", 5) &&
	    zmq_msg_size(&f[6]) == 32)
		for (size_t i = 0; i < b->nallow && !ok; i++)
			ok = !memcmp(zmq_msg_data(&f[6]), b->allow[i], 32);
	if (!ok)
		count(b, RX_AUTH_DENIED, 1);
	if (nf >= 2) {
		const char *code = ok ? "200" : "400";
		const char *text = ok ? "OK" : "key not allowed";

		if (zmq_send(b->zap, "1.0", 3, ZMQ_SNDMORE) < 0 ||
		    zmq_send(b->zap, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]),
			     ZMQ_SNDMORE) < 0 ||
		    zmq_send(b->zap, code, 3, ZMQ_SNDMORE) < 0 ||
		    zmq_send(b->zap, text, strlen(text), ZMQ_SNDMORE) < 0 ||
		    zmq_send(b->zap, "", 0, ZMQ_SNDMORE) < 0 ||
		    zmq_send(b->zap, "", 0, 0) < 0)
			rc = zerr();
	}
out:
	for (int i = 0; i < nf; i++)
		zmq_msg_close(&f[i]);
	return rc;
}

int lfipc_bridge_keypair(char pub[LFIPC_BRIDGE_KEY_LEN + 1],
			 char sec[LFIPC_BRIDGE_KEY_LEN + 1])
{
	if (!pub || !sec)
		return -EINVAL;
	if (!zmq_has("curve"))
		return -ENOTSUP;
	return zmq_curve_keypair(pub, sec) ? zerr() : 0;
}

int lfipc_bridge_public_key(const char *sec, char pub[LFIPC_BRIDGE_KEY_LEN + 1])
{
	if (!sec || !pub || strlen(sec) != LFIPC_BRIDGE_KEY_LEN)
		return -EINVAL;
	if (!zmq_has("curve"))
		return -ENOTSUP;
	return zmq_curve_public(pub, sec) ? -EINVAL : 0;
}
