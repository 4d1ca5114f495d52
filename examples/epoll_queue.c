/* SPDX-License-Identifier: MIT */
/*
 * epoll_queue.c - lfipc in an event loop: one epoll loop serves a Queue,
 * a Pipe and a timer, as the README's "In an event loop" describes.
 *
 * A producer process puts N numbered messages into a Queue and sends N
 * numbered messages through a Pipe, then closes its end and exits. The
 * parent never blocks in lfipc: it sleeps in epoll_wait on the Queue's get
 * fd, the Pipe's receive fd and a timerfd (a heartbeat every 100 ms), and
 * on readiness calls get / recv with LFIPC_NOWAIT until -EAGAIN (which
 * re-arms the fd: the level-triggered contract of lfipc/common.h). The
 * producer's close (or death) makes the Pipe fd readable: recv then says
 * end-of-file (-EPIPE).
 *
 *   epoll_queue [messages]
 *
 * Exit status 0 when every message arrived once, in order, and the loop
 * saw end-of-file; 1 otherwise.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lfipc/pipe.h>
#include <lfipc/queue.h>
#include <lfipc/region.h>

#define SEC ((int64_t)1000 * 1000 * 1000)

static int producer(lfipc_region *r, lfipc_queue *q, lfipc_conn *tx,
		    uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		if (lfipc_queue_put(q, &i, sizeof(i), 10 * SEC) ||
		    lfipc_conn_send(tx, &i, sizeof(i), 10 * SEC))
			return 1;
		if (i % 64 == 0)
			usleep(1000); /* let the loop go to sleep now and then */
	}
	lfipc_conn_close(tx); /* end-of-file for the reader */
	lfipc_queue_close(q);
	lfipc_region_close(r);
	return 0;
}

static int add(int ep, int fd, int tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)tag};

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

int main(int argc, char **argv)
{
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000;
	uint64_t next_q = 0, next_p = 0, ticks = 0, v;
	struct itimerspec its = {{0, 100000000}, {0, 100000000}};
	lfipc_region *r;
	lfipc_queue *q;
	lfipc_conn *rx, *tx;
	bool eof = false;
	int ep, tfd, status, rc;
	size_t len;
	pid_t pid;

	if (lfipc_region_create(NULL, 4 << 20, 0, &r) ||
	    lfipc_queue_create(r, "q", 256, sizeof(uint64_t), 0, &q) ||
	    lfipc_pipe_create(r, "p", 4096, false, &rx, &tx)) {
		fprintf(stderr, "epoll_queue: cannot make the objects\n");
		return 1;
	}
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		lfipc_conn_close(rx);
		_exit(producer(r, q, tx, n));
	}
	lfipc_conn_close(tx); /* the child holds the write end */
	ep = epoll_create1(EPOLL_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (ep < 0 || tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) ||
	    add(ep, lfipc_queue_fd(q, LFIPC_FD_GET), 0) ||
	    add(ep, lfipc_conn_fd(rx, LFIPC_FD_GET), 1) || add(ep, tfd, 2)) {
		fprintf(stderr, "epoll_queue: cannot set up the loop\n");
		return 1;
	}
	while (next_q < n || !eof) {
		struct epoll_event ev[3];
		int k = epoll_wait(ep, ev, 3, 10000);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			fprintf(stderr, "epoll_queue: nothing for 10 s\n");
			return 1;
		}
		for (int i = 0; i < k; i++) {
			switch (ev[i].data.u32) {
			case 0: /* the Queue: get until -EAGAIN */
				while ((rc = lfipc_queue_get(q, &v, sizeof(v),
							     &len,
							     LFIPC_NOWAIT)) ==
				       0)
					if (v != next_q++)
						return 1;
				if (rc != -EAGAIN)
					return 1;
				break;
			case 1: /* the Pipe: recv until -EAGAIN or EOF */
				while ((rc = lfipc_conn_recv(rx, &v, sizeof(v),
							     &len,
							     LFIPC_NOWAIT)) ==
				       0)
					if (v != next_p++)
						return 1;
				if (rc == -EPIPE)
					eof = true;
				else if (rc != -EAGAIN)
					return 1;
				break;
			default: /* the heartbeat */
				if (read(tfd, &v, sizeof(v)) == sizeof(v))
					ticks += v;
			}
		}
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0 || next_p != n) {
		fprintf(stderr, "epoll_queue: the producer failed\n");
		return 1;
	}
	printf("epoll_queue: %" PRIu64 " queue and %" PRIu64
	       " pipe messages in order, end-of-file seen, %" PRIu64
	       " heartbeats\n",
	       next_q, next_p, ticks);
	close(tfd);
	close(ep);
	lfipc_conn_close(rx);
	lfipc_queue_close(q);
	lfipc_region_close(r);
	return 0;
}
