// SPDX-License-Identifier: LGPL-2.1-or-later
/* An nbdkit for a test's swap store (nbd-server.h). */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "nbd-server.h"

static enum nbd_server_kind server_kind;
static char socket_path[128], pid_path[128], port[16];
static const char *backing; /* the file plugin's file, or NULL for the memory plugin */
static pid_t server = -1;

/* A TCP port on loopback that no one listens on now. */
static void free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	snprintf(port, sizeof(port), "%u", ntohs(a.sin_port));
	close(fd);
}

static bool pid_file_written(void *arg)
{
	struct stat st;

	(void)arg;
	return stat(pid_path, &st) == 0 && st.st_size > 0;
}

/* nbdkit writes its pid file once it accepts connections. */
static void spawn(void)
{
	unlink(pid_path);
	unlink(socket_path);
	server = fork();
	cr_assert(server >= 0);
	if (server == 0) {
		if (backing)
			execlp("nbdkit", "nbdkit", "-f", "--exit-with-parent", "-P", pid_path, "-U",
			       socket_path, "file", backing, (char *)NULL);
		else if (server_kind == NBD_SERVER_UNIX)
			execlp("nbdkit", "nbdkit", "-f", "--exit-with-parent", "-P", pid_path, "-U",
			       socket_path, "memory", "1G", (char *)NULL);
		else
			execlp("nbdkit", "nbdkit", "-f", "--exit-with-parent", "-P", pid_path, "-i",
			       "127.0.0.1", "-p", port, "memory", "1G", (char *)NULL);
		_exit(127);
	}
	cr_assert(wait_until(pid_file_written, NULL, 10000), "nbdkit did not start");
}

static void start(enum nbd_server_kind kind, const char *file, char *uri, size_t size)
{
	server_kind = kind;
	backing = file;
	snprintf(socket_path, sizeof(socket_path), "/tmp/upager-nbd-%d.sock", (int)getpid());
	snprintf(pid_path, sizeof(pid_path), "/tmp/upager-nbd-%d.pid", (int)getpid());
	if (kind == NBD_SERVER_UNIX)
		snprintf(uri, size, "nbd+unix:///?socket=%s", socket_path);
	else {
		free_port();
		snprintf(uri, size, "nbd://127.0.0.1:%s/", port);
	}
	spawn();
}

/** nbd_server_start() - nbdkit's memory plugin (1 GiB) on a Unix socket or on TCP loopback */
void nbd_server_start(enum nbd_server_kind kind, char *uri, size_t size)
{
	start(kind, NULL, uri, size);
}

/**
 * nbd_server_start_file() - nbdkit's file plugin on @file, on a Unix socket: what it holds
 * outlives a restart
 */
void nbd_server_start_file(const char *file, char *uri, size_t size)
{
	start(NBD_SERVER_UNIX, file, uri, size);
}

/** nbd_server_stop() - end the server, if it runs */
void nbd_server_stop(void)
{
	if (server <= 0)
		return;
	kill(server, SIGTERM);
	/* nbdkit may wait for a client that does not hang up. */
	for (int i = 0; i < 500 && waitpid(server, NULL, WNOHANG) == 0; i++)
		usleep(10 * 1000);
	if (kill(server, SIGKILL) == 0)
		waitpid(server, NULL, 0);
	server = -1;
	unlink(pid_path);
	unlink(socket_path);
}

/** nbd_server_restart() - start the server again where it was: empty, or on the same file */
void nbd_server_restart(void)
{
	spawn();
}

/** nbd_server_running() - whether the server was started and not stopped */
bool nbd_server_running(void)
{
	return server > 0;
}
