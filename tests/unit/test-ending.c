// SPDX-License-Identifier: LGPL-2.1-or-later
/* The end of a process whose own threads all ended while the library's live on (ending.c). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/syscall.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libclient/internal.h"

static int said[2];

/* As the library's threads: named so, looking whenever the time it was given has passed. */
static void *library_thread(void *arg)
{
	(void)arg;
	prctl(PR_SET_NAME, UPAGER_THREAD_PREFIX "test");
	for (;;)
		usleep((useconds_t)upager__ending_look() * 1000);
	return NULL;
}

/* A thread of the program that ends @arg ms after the main thread, saying so on the pipe. */
static void *program_thread(void *arg)
{
	char c = 'w';

	usleep((useconds_t)(intptr_t)arg * 1000);
	if (write(said[1], &c, 1) != 1)
		_exit(3);
	return NULL;
}

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* A child whose main thread starts the threads asked for and ends with pthread_exit(). Return:
 * its wait status, or -1 if it did not end within @ms (it is killed then). */
static int child_status(int library_threads, int program_ms, int ms)
{
	int status;
	pid_t c;

	cr_assert_eq(pipe(said), 0);
	c = fork();
	if (c == 0) {
		pthread_t t;

		upager__ending_prepare(); /* as upager__thread_start() does */
		for (int i = 0; i < library_threads; i++)
			if (pthread_create(&t, NULL, library_thread, NULL) != 0)
				_exit(1);
		if (program_ms >= 0 &&
		    pthread_create(&t, NULL, program_thread, (void *)(intptr_t)program_ms) != 0)
			_exit(2);
		pthread_exit(NULL);
	}
	close(said[1]);
	for (uint64_t end = now_ms() + (uint64_t)ms; now_ms() < end; usleep(5000))
		if (waitpid(c, &status, WNOHANG) == c)
			return status;
	kill(c, SIGKILL);
	waitpid(c, &status, 0);
	return -1;
}

Test(ending, a_process_left_with_the_librarys_threads_alone_exits_with_zero)
{
	int status = child_status(2, -1, 5000);

	cr_assert_neq(status, -1, "the child lived on");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	close(said[0]);
}

Test(ending, a_thread_of_the_program_still_running_keeps_the_process)
{
	uint64_t t0 = now_ms();
	int status = child_status(1, 1500, 5000);
	char c = 0;

	cr_assert_neq(status, -1, "the child lived on after its last thread");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	cr_assert_geq(now_ms() - t0, 1500, "the child ended before its own thread");
	cr_assert_eq(read(said[0], &c, 1), 1, "the program's thread did not finish");
	close(said[0]);
}

Test(ending, while_the_main_thread_lives_the_look_is_rare)
{
	/* Each second at most, in a process whose main thread runs. */
	cr_assert_geq(upager__ending_look(), 1000);
}

/* The program's open(2), counting what the library's threads open. */
static int opened_stat;

int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	if (strcmp(path, "/proc/self/stat") == 0)
		opened_stat++;
	return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

/*
 * A look opens nothing: the file it reads was opened when the threads started, at a high number.
 * (Opened at each look, it held a low number a moment, which a program started with its standard
 * input closed found taken at 0.)
 */
Test(ending, a_look_holds_no_descriptor_of_its_own)
{
	upager__ending_prepare();
	cr_assert_eq(opened_stat, 1);
	cr_assert_geq(fcntl(512, F_GETFD), 0, "the file is kept at a high number");
	for (int i = 0; i < 3; i++)
		cr_assert_geq(upager__ending_look(), 1000);
	cr_assert_eq(opened_stat, 1, "each look opened its file again");
	upager__ending_prepare();
	cr_assert_eq(opened_stat, 1, "opened once per process");
}
