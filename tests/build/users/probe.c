/* SPDX-License-Identifier: MIT */
/* Can a sanitized program run here at all? (No lfipc in it.) */
#include <pthread.h>
#include <stdio.h>

static void *run(void *arg)
{
	return arg;
}

int main(void)
{
	pthread_t t;

	if (pthread_create(&t, NULL, run, NULL) != 0 ||
	    pthread_join(t, NULL) != 0)
		return 1;
	puts("ok");
	return 0;
}
