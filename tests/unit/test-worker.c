// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The worker pool: jobs run in threads and are answered on the loop; a job that blocks is answered
 * with -ETIMEDOUT at its deadline while other owners' jobs go on; an owner has only so many jobs
 * unfinished.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/macro.h"
#include "daemon/worker.h"

struct test_job {
	struct worker_job job;
	int block_fd; /* run reads a byte from it first, if >= 0 */
	pthread_t ran_on;
	int status;
	bool answered, freed;
	int *frees;
};

static void test_run(struct worker_job *job)
{
	struct test_job *t = container_of(job, struct test_job, job);
	char c;

	if (t->block_fd >= 0)
		(void)!read(t->block_fd, &c, 1);
	t->ran_on = pthread_self();
}

static void test_done(struct worker_job *job, int status)
{
	struct test_job *t = container_of(job, struct test_job, job);

	cr_assert_not(t->answered, "answered twice");
	t->answered = true;
	t->status = status;
}

static void test_free(struct worker_job *job)
{
	struct test_job *t = container_of(job, struct test_job, job);

	cr_assert_not(t->freed, "freed twice");
	t->freed = true;
}

static void job_init(struct test_job *t, uint32_t owner, uint64_t timeout_ms, int block_fd)
{
	*t = (struct test_job){
		.job = { .run = test_run,
			 .done = test_done,
			 .free = test_free,
			 .owner = owner,
			 .timeout_ms = timeout_ms },
		.block_fd = block_fd,
	};
}

static void run_until(uv_loop_t *loop, bool *flag)
{
	for (int i = 0; i < 500 && !*flag; i++)
		uv_run(loop, UV_RUN_ONCE);
	cr_assert(*flag);
}

Test(worker, a_job_runs_in_a_thread_and_is_answered_on_the_loop)
{
	uv_loop_t loop;
	struct worker_pool *p;
	struct test_job t;

	uv_loop_init(&loop);
	cr_assert_eq(worker_pool_new(&loop, 4, 2, &p), 0);
	job_init(&t, 1, 0, -1);
	cr_assert_eq(worker_submit(p, &t.job), 0);
	run_until(&loop, &t.freed);
	cr_assert(t.answered);
	cr_assert_eq(t.status, 0);
	cr_assert_not(pthread_equal(t.ran_on, pthread_self()));
	worker_pool_free(p);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(worker, a_blocked_job_times_out_and_others_go_on)
{
	uv_loop_t loop;
	struct worker_pool *p;
	struct test_job stuck, other;
	int pfd[2];

	cr_assert_eq(pipe(pfd), 0);
	uv_loop_init(&loop);
	cr_assert_eq(worker_pool_new(&loop, 4, 2, &p), 0);
	job_init(&stuck, 1, 200, pfd[0]);
	cr_assert_eq(worker_submit(p, &stuck.job), 0);
	job_init(&other, 2, 0, -1);
	cr_assert_eq(worker_submit(p, &other.job), 0);
	run_until(&loop, &other.freed);
	cr_assert_eq(other.status, 0);
	cr_assert_not(stuck.answered);
	run_until(&loop, &stuck.answered);
	cr_assert_eq(stuck.status, -ETIMEDOUT);
	cr_assert_not(stuck.freed, "freed while its run goes on");
	cr_assert_eq(write(pfd[1], "x", 1), 1);
	run_until(&loop, &stuck.freed);
	cr_assert_eq(stuck.status, -ETIMEDOUT, "answered again once over");
	worker_pool_free(p);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(worker, an_owners_jobs_past_its_share_wait_for_one_to_be_over)
{
	uv_loop_t loop;
	struct worker_pool *p;
	struct test_job a, b, c, d, e;
	int pfd[2];

	cr_assert_eq(pipe(pfd), 0);
	uv_loop_init(&loop);
	cr_assert_eq(worker_pool_new(&loop, 8, 2, &p), 0);
	job_init(&a, 7, 0, pfd[0]);
	job_init(&b, 7, 0, pfd[0]);
	job_init(&c, 7, 0, -1);
	job_init(&d, 8, 0, -1);
	job_init(&e, 7, 100, -1);
	cr_assert_eq(worker_submit(p, &a.job), 0);
	cr_assert_eq(worker_submit(p, &b.job), 0);
	cr_assert_eq(worker_submit(p, &c.job), 0); /* held: owner 7 has two in threads */
	cr_assert_eq(worker_submit(p, &e.job), 0); /* held, with a deadline */
	cr_assert_eq(worker_submit(p, &d.job), 0);
	run_until(&loop, &d.freed);
	cr_assert_not(c.answered, "ran past its owner's share");
	/* A held job's deadline passes: it is answered and freed, never run. */
	run_until(&loop, &e.freed);
	cr_assert_eq(e.status, -ETIMEDOUT);
	cr_assert_eq(e.ran_on, 0);
	cr_assert_eq(write(pfd[1], "x", 1), 1);
	run_until(&loop, &c.freed);
	cr_assert_eq(c.status, 0);
	cr_assert_eq(write(pfd[1], "y", 1), 1);
	run_until(&loop, &a.freed);
	run_until(&loop, &b.freed);
	worker_pool_free(p);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0);
}
