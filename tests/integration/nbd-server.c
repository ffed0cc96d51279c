// SPDX-License-Identifier: LGPL-2.1-or-later
/* An nbdkit or a qemu-nbd for a test's swap store (nbd-server.h). */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "nbd-server.h"

static enum nbd_server_kind server_kind;
static char socket_path[128], pid_path[128], port[16], psk_path[128], qcow2_path[128];
static char uri_shown[256], uri_plain[256];
static const char *backing; /* the file plugin's file, or NULL for the memory plugin */
static const char *const *filters; /* the memory plugin's filters and their parameters, or NULL */
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

/* A pre-shared key for TLS in nbdkit's format, USER:HEXKEY, readable by its owner only. */
static void make_psk(void)
{
	FILE *f;

	f = fopen(psk_path, "w");
	cr_assert(f, "%s: %m", psk_path);
	cr_assert_eq(fchmod(fileno(f), 0600), 0);
	fprintf(f, "upager:");
	srandom((unsigned)getpid() ^ (unsigned)harness_now_ms());
	for (int i = 0; i < 32; i++)
		fprintf(f, "%02x", (unsigned)random() & 0xff);
	fprintf(f, "\n");
	cr_assert_eq(fclose(f), 0);
}

/* A new qcow2 file of 1 GiB, empty. */
static void make_qcow2(void)
{
	char cmd[256];

	unlink(qcow2_path);
	snprintf(cmd, sizeof(cmd), "qemu-img create -q -f qcow2 %s 1G", qcow2_path);
	cr_assert_eq(system(cmd), 0, "qemu-img create failed");
}

static bool pid_file_written(void *arg)
{
	struct stat st;

	(void)arg;
	return stat(pid_path, &st) == 0 && st.st_size > 0;
}

static bool socket_made(void *arg)
{
	struct stat st;

	(void)arg;
	return stat(socket_path, &st) == 0;
}

/* nbdkit's memory plugin on the Unix socket, with the filters. */
static void exec_filtered(void)
{
	const char *argv[64] = { "nbdkit", "-f", "--exit-with-parent", "-P",
				 pid_path, "-U", socket_path };
	size_t n = 7;

	for (size_t i = 0; filters[i] && n < 60; i++)
		if (strncmp(filters[i], "--", 2) == 0)
			argv[n++] = filters[i];
	argv[n++] = "memory";
	argv[n++] = "1G";
	for (size_t i = 0; filters[i] && n < 63; i++)
		if (strncmp(filters[i], "--", 2) != 0)
			argv[n++] = filters[i];
	argv[n] = NULL;
	execvp("nbdkit", (char *const *)argv);
	_exit(127);
}

/* nbdkit with @plugin and its @arg, on TCP loopback for a TCP server, else on the Unix socket. */
static void exec_nbdkit(const char *plugin, const char *arg)
{
	if (server_kind == NBD_SERVER_TCP)
		execlp("nbdkit", "nbdkit", "-f", "--exit-with-parent", "-P", pid_path, "-i",
		       "127.0.0.1", "-p", port, plugin, arg, (char *)NULL);
	else
		execlp("nbdkit", "nbdkit", "-f", "--exit-with-parent", "-P", pid_path, "-U",
		       socket_path, plugin, arg, (char *)NULL);
}

/* The server, in the child: nbdkit's memory plugin, or qemu-nbd on the qcow2 file. */
static void exec_server(void)
{
	char psk[160];

	/* qemu-nbd has no --exit-with-parent. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	snprintf(psk, sizeof(psk), "--tls-psk=%s", psk_path);
	if (filters)
		exec_filtered();
	if (backing)
		exec_nbdkit("file", backing);
	switch (server_kind) {
	case NBD_SERVER_UNIX:
	case NBD_SERVER_TCP:
		exec_nbdkit("memory", "1G");
		break;
	case NBD_SERVER_TLS:
		execlp("nbdkit", "nbdkit", "-f", "--exit-with-parent", "-P", pid_path, "-U",
		       socket_path, "--tls=require", psk, "memory", "1G", (char *)NULL);
		break;
	case NBD_SERVER_QCOW2:
		execlp("qemu-nbd", "qemu-nbd", "--persistent", "--discard=unmap", "-f", "qcow2",
		       "-k", socket_path, "-x", "swap", qcow2_path, (char *)NULL);
		break;
	}
	_exit(127);
}

/* nbdkit writes its pid file once it accepts connections; qemu-nbd listens once its socket is. */
static void spawn(void)
{
	unlink(pid_path);
	unlink(socket_path);
	if (server_kind == NBD_SERVER_TLS)
		make_psk();
	if (server_kind == NBD_SERVER_QCOW2)
		make_qcow2();
	server = fork();
	cr_assert(server >= 0);
	if (server == 0)
		exec_server();
	cr_assert(wait_until(server_kind == NBD_SERVER_QCOW2 ? socket_made : pid_file_written, NULL,
			     10000),
		  "the NBD server did not start");
}

/** nbd_server_kind_of() - the server kind named @name ("unix", "tcp", "tls", "qcow2") */
enum nbd_server_kind nbd_server_kind_of(const char *name)
{
	if (strcmp(name, "tcp") == 0)
		return NBD_SERVER_TCP;
	if (strcmp(name, "tls") == 0)
		return NBD_SERVER_TLS;
	if (strcmp(name, "qcow2") == 0)
		return NBD_SERVER_QCOW2;
	return NBD_SERVER_UNIX;
}

static void start(enum nbd_server_kind kind, const char *file, const char *const *extra, char *uri,
		  size_t size)
{
	int pid = (int)getpid();

	server_kind = kind;
	backing = file;
	filters = extra;
	snprintf(socket_path, sizeof(socket_path), "/tmp/upager-nbd-%d.sock", pid);
	snprintf(pid_path, sizeof(pid_path), "/tmp/upager-nbd-%d.pid", pid);
	snprintf(psk_path, sizeof(psk_path), "/tmp/upager-nbd-%d.psk", pid);
	snprintf(qcow2_path, sizeof(qcow2_path), "/var/tmp/upager-nbd-%d.qcow2", pid);
	snprintf(uri_plain, sizeof(uri_plain), "nbd+unix:///?socket=%s", socket_path);
	switch (kind) {
	case NBD_SERVER_UNIX:
		snprintf(uri, size, "%s", uri_plain);
		break;
	case NBD_SERVER_TCP:
		free_port();
		snprintf(uri, size, "nbd://127.0.0.1:%s/", port);
		break;
	case NBD_SERVER_TLS:
		/* libnbd takes the PSK identity from the URI's user name. */
		snprintf(uri, size, "nbds+unix://upager@/?socket=%s&tls-psk-file=%s", socket_path,
			 psk_path);
		break;
	case NBD_SERVER_QCOW2:
		snprintf(uri_plain, sizeof(uri_plain), "nbd+unix:///swap?socket=%s", socket_path);
		snprintf(uri, size, "%s", uri_plain);
		break;
	}
	snprintf(uri_shown, sizeof(uri_shown), "%s", uri);
	if (kind == NBD_SERVER_TLS)
		snprintf(uri_shown, sizeof(uri_shown), "nbds+unix:///?socket=%s", socket_path);
	spawn();
}

/**
 * nbd_server_start() - nbdkit's memory plugin (1 GiB) on a Unix socket, on TCP loopback or on a
 * Unix socket with TLS-PSK required, or qemu-nbd on a new qcow2 file of 1 GiB
 */
void nbd_server_start(enum nbd_server_kind kind, char *uri, size_t size)
{
	start(kind, NULL, NULL, uri, size);
}

/**
 * nbd_server_start_file() - nbdkit's file plugin on @file, on a Unix socket or (@kind
 * NBD_SERVER_TCP) on TCP loopback: what it holds outlives a restart, on the same socket or port
 */
void nbd_server_start_file(enum nbd_server_kind kind, const char *file, char *uri, size_t size)
{
	start(kind == NBD_SERVER_TCP ? NBD_SERVER_TCP : NBD_SERVER_UNIX, file, NULL, uri, size);
}

/**
 * nbd_server_start_filtered() - nbdkit's memory plugin (1 GiB) on a Unix socket with the filters
 * and parameters of @extra (which must outlive the server)
 */
void nbd_server_start_filtered(const char *const *extra, char *uri, size_t size)
{
	start(NBD_SERVER_UNIX, NULL, extra, uri, size);
}

/** nbd_server_uri_shown() - the server's URI as upagerctl stats shows it, without credentials */
const char *nbd_server_uri_shown(void)
{
	return uri_shown;
}

/** nbd_server_uri_plain() - the server's Unix socket URI without TLS */
const char *nbd_server_uri_plain(void)
{
	return uri_plain;
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
	unlink(psk_path);
	unlink(qcow2_path);
}

/**
 * nbd_server_restart() - start the server again where it was: empty (a new key, a new qcow2 file),
 * or on the same file of the file plugin
 */
void nbd_server_restart(void)
{
	spawn();
}

/** nbd_server_running() - whether the server was started and not stopped */
bool nbd_server_running(void)
{
	return server > 0;
}
