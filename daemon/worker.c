// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A pool of threads for blocking system calls on clients' files. A job runs in a thread and is
 * answered on the loop: when it is over, or at its deadline if it is not, and then the loop goes
 * on while the thread stays blocked (a stalled file system, a lease that is not given up). The
 * pool starts threads as jobs need them, up to a limit; each owner (a uid) may have only a few
 * jobs unfinished, so that one user's stalled file takes a few threads, not the pool.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "common/macro.h"
#include "log.h"
#include "worker.h"

/* How long a stopping pool waits for the jobs in threads to be over. */
#define STOP_WAIT_S 2

struct worker_pool {
	uv_loop_t *loop;
	uv_async_t async; /* a run is over */
	uv_timer_t timer; /* deadlines */
	unsigned closing; /* handles whose close callback has yet to run */
	unsigned max_threads, max_per_owner;

	/* Under lock, shared with the threads. */
	pthread_mutex_t lock;
	pthread_cond_t wake, gone;
	struct list_head queue; /* submitted, not started */
	struct list_head over; /* run is over, not yet seen by the loop */
	unsigned threads, idle, running; /* running: in a job's run */
	bool stopping;

	/* The loop's own. */
	struct list_head jobs; /* every job not yet freed, by worker_job.link_all */
	struct list_head held; /* jobs whose owner has as many as it may in threads, by link */
	unsigned n_jobs;
};

static void *worker_main(void *arg)
{
	struct worker_pool *p = arg;

	pthread_mutex_lock(&p->lock);
	while (!p->stopping) {
		struct worker_job *job;

		if (list_empty(&p->queue)) {
			p->idle++;
			pthread_cond_wait(&p->wake, &p->lock);
			p->idle--;
			continue;
		}
		job = list_first_entry(&p->queue, struct worker_job, link);
		list_del_init(&job->link);
		p->running++;
		pthread_mutex_unlock(&p->lock);
		job->run(job);
		pthread_mutex_lock(&p->lock);
		job->ran = true;
		p->running--;
		list_add_tail(&job->link, &p->over);
		uv_async_send(&p->async);
	}
	p->threads--;
	pthread_cond_broadcast(&p->gone);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void release_held(struct worker_pool *p, uint32_t owner);

static void job_answer(struct worker_job *job, int status)
{
	if (job->answered)
		return;
	job->answered = true;
	job->done(job, status);
}

static void on_over(uv_async_t *h)
{
	struct worker_pool *p = h->data;
	struct list_head over;

	list_init(&over);
	pthread_mutex_lock(&p->lock);
	list_splice_init(&p->over, &over);
	pthread_mutex_unlock(&p->lock);
	while (!list_empty(&over)) {
		struct worker_job *job = list_first_entry(&over, struct worker_job, link);

		uint32_t owner = job->owner;

		list_del_init(&job->link);
		list_del_init(&job->link_all);
		p->n_jobs--;
		job_answer(job, 0);
		job->free(job);
		release_held(p, owner);
	}
	if (p->n_jobs == 0)
		uv_timer_stop(&p->timer);
}

static void on_tick(uv_timer_t *h)
{
	struct worker_pool *p = h->data;
	uint64_t now = uv_now(p->loop);
	struct worker_job *job, *tmp;

	list_for_each_entry_safe (job, tmp, &p->jobs, link_all) {
		if (!job->timeout_ms || job->answered || now < job->deadline_ms)
			continue;
		log_limited(LOG_WARNING,
			    "a blocking call on a client's file took over %" PRIu64
			    " ms; its request fails",
			    job->timeout_ms);
		job_answer(job, -ETIMEDOUT);
		if (job->held) {
			/* It never ran: nothing keeps it. */
			list_del_init(&job->link);
			list_del_init(&job->link_all);
			p->n_jobs--;
			job->free(job);
		}
	}
	if (p->n_jobs == 0)
		uv_timer_stop(&p->timer);
}

/* Jobs of @owner in threads or queued for them (not held). */
static unsigned owner_jobs(struct worker_pool *p, uint32_t owner)
{
	struct worker_job *job;
	unsigned n = 0;

	list_for_each_entry (job, &p->jobs, link_all)
		n += job->owner == owner && !job->held;
	return n;
}

/* Queue @job for the threads, starting one if none is idle. */
static int hand_over(struct worker_pool *p, struct worker_job *job)
{
	pthread_t t;
	int ret = 0;

	pthread_mutex_lock(&p->lock);
	if (p->idle == 0 && p->threads < p->max_threads) {
		pthread_attr_t attr;

		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, 64 * 1024);
		ret = -pthread_create(&t, &attr, worker_main, p);
		pthread_attr_destroy(&attr);
		if (ret == 0)
			p->threads++;
		else if (p->threads > 0)
			ret = 0; /* the threads there are will get to it */
	}
	if (ret == 0) {
		job->held = false;
		list_add_tail(&job->link, &p->queue);
		pthread_cond_signal(&p->wake);
	}
	pthread_mutex_unlock(&p->lock);
	return ret;
}

/* An owner's job is over: its next held job, if any, goes to the threads. */
static void release_held(struct worker_pool *p, uint32_t owner)
{
	struct worker_job *job;

	list_for_each_entry (job, &p->held, link) {
		if (job->owner != owner)
			continue;
		list_del_init(&job->link);
		if (hand_over(p, job) < 0) {
			list_del_init(&job->link_all);
			p->n_jobs--;
			job_answer(job, -EAGAIN);
			job->free(job);
		}
		return;
	}
}

/**
 * worker_submit() - run @job in a thread of @p
 * @p: the pool
 * @job: run, done, free, owner and timeout_ms set; the pool's until free is called
 *
 * A job whose owner has as many jobs in threads as it may waits until one of them is over (its
 * deadline runs meanwhile): one owner's stalled calls never take more than a few threads.
 *
 * Return: 0, or a negative errno if no thread could be started or the pool stops. The job is
 * not the pool's on failure.
 */
int worker_submit(struct worker_pool *p, struct worker_job *job)
{
	int ret;

	if (p->stopping)
		return -ECANCELED;
	job->answered = false;
	job->deadline_ms = uv_now(p->loop) + job->timeout_ms;
	if (owner_jobs(p, job->owner) >= p->max_per_owner) {
		job->held = true;
		list_add_tail(&job->link, &p->held);
	} else {
		ret = hand_over(p, job);
		if (ret < 0)
			return ret;
	}
	list_add_tail(&job->link_all, &p->jobs);
	if (p->n_jobs++ == 0)
		uv_timer_start(&p->timer, on_tick, 100, 100);
	return 0;
}

/**
 * worker_pool_new() - a pool of at most @max_threads threads on @loop
 * @loop: where jobs are answered
 * @max_threads: threads it may start
 * @max_per_owner: jobs one owner may have unfinished
 * @out: the pool
 *
 * Return: 0 or a negative errno.
 */
int worker_pool_new(uv_loop_t *loop, unsigned max_threads, unsigned max_per_owner,
		    struct worker_pool **out)
{
	struct worker_pool *p = calloc(1, sizeof(*p));
	int ret;

	if (!p)
		return -ENOMEM;
	p->loop = loop;
	p->max_threads = MAX(max_threads, 1);
	p->max_per_owner = MAX(max_per_owner, 1);
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->gone, NULL);
	list_init(&p->queue);
	list_init(&p->over);
	list_init(&p->jobs);
	list_init(&p->held);
	ret = uv_async_init(loop, &p->async, on_over);
	if (ret < 0) {
		free(p);
		return ret;
	}
	p->async.data = p;
	uv_timer_init(loop, &p->timer);
	p->timer.data = p;
	*out = p;
	return 0;
}

static void on_closed(uv_handle_t *h)
{
	struct worker_pool *p = h->data;
	bool left;

	/* libuv runs close callbacks in no order it promises (it runs the last closed first): the
	 * pool goes with the last of its two. A thread still blocked in a run holds the pool: it is
	 * left to the process's exit. */
	if (--p->closing > 0)
		return;
	pthread_mutex_lock(&p->lock);
	left = p->threads > 0;
	pthread_mutex_unlock(&p->lock);
	if (!left)
		free(p);
}

/**
 * worker_pool_free() - stop the threads that are idle and close the pool's handles
 * @p: the pool, or NULL
 *
 * Jobs not yet started are answered with -ECANCELED and freed. A thread blocked in a job stays
 * so until the process exits: nothing can take it out of a system call that does not return.
 */
void worker_pool_free(struct worker_pool *p)
{
	struct worker_job *job, *tmp;

	if (!p)
		return;
	struct list_head queued;
	struct timespec until;

	list_init(&queued);
	list_splice_init(&p->held, &queued);
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	list_splice_init(&p->queue, &queued);
	pthread_cond_broadcast(&p->wake);
	/* The idle threads go at once; the ones in a run when it is over, for which the pool
	 * waits a little, so that what they did is answered and freed here. */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += STOP_WAIT_S;
	while (p->threads > 0) {
		if (p->threads > p->running)
			pthread_cond_wait(&p->gone, &p->lock);
		else if (pthread_cond_timedwait(&p->gone, &p->lock, &until) == ETIMEDOUT)
			break;
	}
	list_splice_init(&p->over, &queued);
	pthread_mutex_unlock(&p->lock);
	/* Jobs over are answered as they would have been; jobs never started are cancelled. */
	list_for_each_entry_safe (job, tmp, &queued, link) {
		list_del_init(&job->link);
		list_del_init(&job->link_all);
		job_answer(job, job->ran ? 0 : -ECANCELED);
		job->free(job);
	}
	p->closing = 2;
	uv_close((uv_handle_t *)&p->timer, on_closed);
	uv_close((uv_handle_t *)&p->async, on_closed);
}

/** worker_pool_threads() - the threads the pool has now, idle or not */
unsigned worker_pool_threads(struct worker_pool *p)
{
	unsigned n;

	pthread_mutex_lock(&p->lock);
	n = p->threads;
	pthread_mutex_unlock(&p->lock);
	return n;
}
