// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * What a wake costs on this machine: two threads hand a token back and forth through two eventfds,
 * each sleeping in read(2) until the other writes. Half a round trip is one wake: the writer's
 * write, the scheduler's wake of a thread asleep, its return from read. A fault served by another
 * process takes two wakes more than the kernel's own swap-in (the handler's, then the faulting
 * thread's), so this figure, on one CPU and across two, is the price of that design here.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bench.h"

#define WAKE_TRIPS 4000

struct wake_pair {
	int to_b, to_a;
	int cpu_b;
};

static int pass(int from, int to)
{
	uint64_t v;

	if (read(from, &v, sizeof(v)) != sizeof(v))
		return -errno;
	v = 1;
	if (write(to, &v, sizeof(v)) != sizeof(v))
		return -errno;
	return 0;
}

static void *side_b(void *arg)
{
	struct wake_pair *w = arg;

	if (pin_self(w->cpu_b) < 0)
		return NULL;
	for (int i = 0; i < WAKE_TRIPS; i++)
		if (pass(w->to_b, w->to_a) < 0)
			break;
	return NULL;
}

/**
 * wake_us() - the cost of one wake of a sleeping thread by a thread on @cpu_a, the sleeper on @cpu_b
 * @cpu_a: the waker's CPU (the calling thread runs there for the measure, then as before)
 * @cpu_b: the sleeper's CPU
 * @us: the mean of half a round trip, in microseconds
 *
 * Return: 0 or a negative errno.
 */
int wake_us(int cpu_a, int cpu_b, double *us)
{
	struct wake_pair w = { .cpu_b = cpu_b };
	cpu_set_t before;
	pthread_t t;
	uint64_t v = 1, t0;
	int ret = 0;

	if (sched_getaffinity(0, sizeof(before), &before) < 0)
		return -errno;
	w.to_b = eventfd(0, EFD_CLOEXEC);
	w.to_a = eventfd(0, EFD_CLOEXEC);
	if (w.to_b < 0 || w.to_a < 0) {
		ret = -errno;
		goto out;
	}
	ret = pin_self(cpu_a); /* this thread only, as for side_b() */
	if (ret < 0)
		goto out;
	ret = -pthread_create(&t, NULL, side_b, &w);
	if (ret < 0)
		goto out;
	sleep_ms(10);
	t0 = now_ns();
	for (int i = 0; i < WAKE_TRIPS && ret == 0; i++) {
		if (write(w.to_b, &v, sizeof(v)) != sizeof(v))
			ret = -errno;
		else if (read(w.to_a, &v, sizeof(v)) != sizeof(v))
			ret = -errno;
	}
	*us = (double)(now_ns() - t0) / WAKE_TRIPS / 2 / 1e3;
	if (ret < 0)
		pthread_cancel(t);
	pthread_join(t, NULL);
out:
	sched_setaffinity(0, sizeof(before), &before);
	if (w.to_b >= 0)
		close(w.to_b);
	if (w.to_a >= 0)
		close(w.to_a);
	return ret;
}

/**
 * wake_note() - print, for the notes under a table, what a wake costs on @cpu and from another CPU
 * @cpu: the CPU of the pinned figures
 */
void wake_note(int cpu)
{
	cpu_set_t all;
	double same, across;
	int other = -1;

	if (sched_getaffinity(0, sizeof(all), &all) == 0)
		for (int c = 0; c < CPU_SETSIZE && other < 0; c++)
			if (c != cpu && CPU_ISSET(c, &all))
				other = c;
	if (wake_us(cpu, cpu, &same) < 0)
		return;
	if (other < 0 || wake_us(other, cpu, &across) < 0) {
		printf("  a sleeping thread woken by another on its CPU: %.1f us\n", same);
		return;
	}
	printf("  a sleeping thread woken by another: %.1f us on its own CPU (%d), %.1f us from "
	       "CPU "
	       "%d; a fault served by another process takes two wakes more than the kernel's "
	       "swap-in\n",
	       same, cpu, across, other);
}
