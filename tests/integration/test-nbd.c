// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The swap store on an NBD server that requires TLS with a pre-shared key (nbdkit --tls=require
 * --tls-psk): upagerd takes it with an nbds+unix:// URI naming the key's user and file, shows that
 * URI without them, and a plain nbd+unix:// URI to the same server is refused at the daemon's start
 * with a message that says why. (pageout-nbd-tls pages memory out over TLS.)
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"
#include "nbd-server.h"

static char uri[256], key[128];

static void start_server(void)
{
	const char *colon;
	FILE *f;

	nbd_server_start(NBD_SERVER_TLS, uri, sizeof(uri));
	/* The key itself, which must never show. */
	colon = strstr(uri, "tls-psk-file=");
	cr_assert(colon);
	f = fopen(colon + strlen("tls-psk-file="), "r");
	cr_assert(f);
	cr_assert(fgets(key, sizeof(key), f));
	fclose(f);
	key[strcspn(key, "\n")] = 0;
	cr_assert(strchr(key, ':'));
}

static void stop(void)
{
	harness_stop();
	nbd_server_stop();
}

TestSuite(nbd, .init = start_server, .fini = stop, .timeout = 60);

static bool logged_store(void *arg)
{
	return harness_daemon_logged(arg);
}

/* `upagerctl stats` of the test's daemon, into @out. */
static void ctl_stats(char *out, size_t size)
{
	const char *ctl = getenv("UPAGERCTL");
	char cmd[600];
	size_t n;
	FILE *f;

	cr_assert(ctl, "UPAGERCTL is not set; run the tests through meson test");
	snprintf(cmd, sizeof(cmd), "%s --socket %s stats", ctl, harness_socket());
	f = popen(cmd, "r");
	cr_assert(f);
	n = fread(out, 1, size - 1, f);
	out[n] = 0;
	cr_assert_eq(pclose(f), 0);
}

Test(nbd, over_tls_the_store_is_taken_and_shown_without_credentials)
{
	const char *args[] = { "--memory-max", "16M", "--swap", uri, NULL };
	const char *psk_file = strstr(uri, "tls-psk-file=") + strlen("tls-psk-file=");
	const char *hex = strchr(key, ':') + 1;
	char out[4096], shown[300];

	harness_start_args(args);
	cr_assert(wait_until(logged_store, "swap: on the NBD server", 10000),
		  "the daemon did not take %s", uri);
	snprintf(shown, sizeof(shown), "swap: on the NBD server of %s,", nbd_server_uri_shown());
	cr_assert(harness_daemon_logged(shown), "the log does not say %s", shown);
	cr_assert_not(harness_daemon_logged(psk_file), "the log names the key file");
	cr_assert_not(harness_daemon_logged(hex), "the log holds the key");
	cr_assert_not(harness_daemon_logged("upager@"), "the log names the key's user");
	ctl_stats(out, sizeof(out));
	cr_assert(strstr(out, nbd_server_uri_shown()), "stats: %s", out);
	cr_assert_not(strstr(out, psk_file), "stats name the key file: %s", out);
	cr_assert_not(strstr(out, hex), "stats show the key: %s", out);
	cr_assert_not(strstr(out, "upager@"), "stats name the key's user: %s", out);
}

Test(nbd, a_plain_connection_to_a_tls_server_is_refused_at_start)
{
	const char *args[] = { "--memory-max", "16M", "--swap", nbd_server_uri_plain(), NULL };
	struct upager_msg rep;

	harness_start_args(args);
	cr_assert(wait_until(logged_store, "swap: cannot use the NBD server", 10000),
		  "the daemon did not refuse %s", nbd_server_uri_plain());
	/* libnbd's own words name the cause. */
	cr_assert(harness_daemon_logged("requires TLS"), "the log does not say TLS is required");
	/* The daemon runs on, without a swap store. */
	cr_assert_eq(harness_stats(&rep), 0);
	cr_assert_eq(rep.u.stats_reply.store_kind, UPAGER_STORE_NONE);
}
