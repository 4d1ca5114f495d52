/* SPDX-License-Identifier: MIT */
/* Edge: lfipc_conn_send -> lfipc_conn_recv, both ways of a duplex pipe
 * with the smallest ring (256 bytes), so most messages stream through it
 * in pieces. The sender writes data[i], then sends a message of 1..1200
 * bytes; the receiver takes each into a buffer of exactly its length and
 * reads data[i]; at the end the receiver writes reply and sends a message
 * back, after which the sender reads reply. */
#include "users.h"

#define N 500

static uint32_t data[N], reply;
static lfipc_conn *end0, *end1;

static size_t msg_len(uint32_t i)
{
	return 1 + (i * 37) % 1200;
}

static void *sender(void *arg)
{
	char ack;
	size_t len;

	for (uint32_t i = 0; i < N; i++) {
		size_t n = msg_len(i);
		unsigned char *m = malloc(n);

		CHECK(m != NULL);
		data[i] = user_mix(i);
		for (size_t k = 0; k < n; k++)
			m[k] = (unsigned char)(i + k * 7);
		CHECK_RC(lfipc_conn_send(end1, m, n, LFIPC_FOREVER), 0);
		free(m);
	}
	CHECK_RC(lfipc_conn_recv(end1, &ack, 1, &len, LFIPC_FOREVER), 0);
	CHECK(len == 1 && ack == 'k' && reply == user_mix(N));
	return arg;
}

int main(void)
{
	lfipc_region *r = user_region();
	pthread_t t;

	CHECK_RC(lfipc_pipe_create(r, "p", 256, true, &end0, &end1), 0);
	t = user_spawn(sender, NULL);
	for (uint32_t i = 0; i < N; i++) {
		unsigned char *m;
		size_t len = 0;

		/* ask the size first, then receive into exactly that much */
		CHECK_RC(lfipc_conn_recv(end0, NULL, 0, &len, LFIPC_FOREVER),
			 -EMSGSIZE);
		CHECK(len == msg_len(i));
		m = malloc(len);
		CHECK(m != NULL);
		CHECK_RC(lfipc_conn_recv(end0, m, len, &len, LFIPC_FOREVER), 0);
		CHECK(len == msg_len(i));
		for (size_t k = 0; k < len; k++)
			CHECK(m[k] == (unsigned char)(i + k * 7));
		CHECK(data[i] == user_mix(i));
		free(m);
	}
	reply = user_mix(N);
	CHECK_RC(lfipc_conn_send(end0, "k", 1, LFIPC_FOREVER), 0);
	user_join(t);
	lfipc_conn_close(end0);
	lfipc_conn_close(end1);
	lfipc_region_close(r);
	puts("ok");
	return 0;
}
