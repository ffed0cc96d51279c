// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The end of a process whose own threads have all ended. The C library ends a process when its
 * last thread ends (pthread_exit(3) in the last one, or the return of its start routine) as if
 * by exit(0); but it counts the library's threads among them (the control thread, the watcher of
 * the connection). So a program whose main thread called pthread_exit() and whose other threads
 * ended later, or a child forked by a thread other than the main one when that thread ends, would
 * live on for ever with the library's threads alone, deaf to signals (they block them all), and
 * whoever waits for it would wait for ever.
 *
 * Each of the library's threads looks each LEADER_LOOK_MS whether the main thread (the
 * thread-group leader) has ended: /proc/self/stat shows the process as a zombie then. From then
 * on it looks each ALONE_LOOK_MS whether every thread left is one of the library's (by their
 * names, UPAGER_THREAD_PREFIX: a program linked with libupager and run under upager-run has two
 * copies of them), and if so ends the process as the C library would have: exit(0), from a thread
 * of its own, whose stack is large enough for the exit handlers (the library's are small).
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define LEADER_LOOK_MS 1000
#define ALONE_LOOK_MS 10

static atomic_bool ending;

/*
 * This process's /proc/self/stat, kept open at a high number and read again at each look: a
 * library thread that opened it at each look held a low descriptor a moment, which the program
 * could then find taken (one started with its standard input closed expects its next file at 0).
 * Opened by upager__ending_prepare() in the thread that starts the library's threads, once per
 * process (a forked child's would be its parent's file).
 */
static struct {
	int fd;
	pid_t pid;
} stat_file = { -1, 0 };

/** upager__ending_prepare() - open the file the library's threads look at, if this process has none yet */
void upager__ending_prepare(void)
{
	pid_t pid = getpid();

	if (stat_file.pid == pid)
		return;
	if (stat_file.fd >= 0)
		close(stat_file.fd);
	stat_file.fd = upager__fd_park(open("/proc/self/stat", O_RDONLY | O_CLOEXEC));
	stat_file.pid = pid;
}

/* Read the file of /proc at @path (at most @size - 1 bytes) into @buf. Return: its length, or -1. */
static ssize_t read_proc(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

/* Whether the main thread of this process has ended (the process shows as a zombie). */
static bool leader_ended(void)
{
	char buf[512], *end;
	ssize_t n;

	if (stat_file.pid != getpid() || stat_file.fd < 0)
		return false;
	n = pread(stat_file.fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* "pid (comm) state ...": comm may hold any byte, the last ')' ends it. */
	end = strrchr(buf, ')');
	return end && end[1] == ' ' && end[2] == 'Z';
}

/* Whether every thread of this process but its ended main thread is one of the library's. */
static bool only_library_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	pid_t pid = getpid();
	struct dirent *e;
	bool alone = d != NULL;

	while (alone && (e = readdir(d))) {
		char path[64], comm[32];
		long tid = strtol(e->d_name, NULL, 10);

		if (tid <= 0 || tid == pid)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%ld/comm", tid);
		/* A thread gone since the directory was read is no thread. */
		if (read_proc(path, comm, sizeof(comm)) < 0)
			continue;
		alone = strncmp(comm, UPAGER_THREAD_PREFIX, strlen(UPAGER_THREAD_PREFIX)) == 0;
	}
	if (d)
		closedir(d);
	return alone;
}

static void *end_process(void *arg)
{
	(void)arg;
	exit(0);
}

/**
 * upager__ending_look() - end the process if only the library's threads are left of it, as the C
 * library would have at the end of its last thread (from one of them, when it has waited the
 * time it was given)
 *
 * Return: how long the thread waits for its work before it calls this again, in ms.
 */
int upager__ending_look(void)
{
	pthread_t t;

	if (!leader_ended())
		return LEADER_LOOK_MS;
	if (!only_library_threads())
		return ALONE_LOOK_MS;
	/* Once: both of the library's threads may find it so. */
	if (!atomic_exchange(&ending, true) && pthread_create(&t, NULL, end_process, NULL) != 0)
		exit(0);
	for (;;)
		pause();
}
