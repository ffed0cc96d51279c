// SPDX-License-Identifier: LGPL-2.1-or-later
/* Datagrams with descriptors and the sender's credentials (common/fdmsg.c), on a socketpair. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/fdmsg.h"

TestSuite(fdmsg);

/*
 * A datagram sent before the receiver asked for credentials (a client's first request, queued
 * before the daemon accepted its connection) carries none: the kernel reports pid 0 and the
 * overflow uid, 65534, which was taken for the sender's; its uid is unknown (-1). One sent after
 * carries the sender's.
 */
Test(fdmsg, a_datagram_sent_before_credentials_were_asked_for_names_no_user)
{
	int sv[2], fd = open("/dev/null", O_RDONLY), fds[FDMSG_MAX_FDS];
	char buf[16];
	size_t n_fds;
	uid_t uid;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	cr_assert_eq(fdmsg_send(sv[0], "early", 5, &fd, 1), 0);
	cr_assert_eq(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &(int){ 1 }, sizeof(int)), 0);
	cr_assert_eq(fdmsg_send(sv[0], "late", 4, NULL, 0), 0);
	cr_assert_eq(fdmsg_recv_uid(sv[1], buf, sizeof(buf), fds, &n_fds, false, &uid), 5);
	cr_assert_eq(n_fds, 1, "the descriptor came");
	close(fds[0]);
	cr_assert_eq(uid, (uid_t)-1, "no user named, not %u", (unsigned)uid);
	cr_assert_eq(fdmsg_recv_uid(sv[1], buf, sizeof(buf), fds, &n_fds, false, &uid), 4);
	cr_assert_eq(uid, getuid());
	close(sv[0]);
	close(sv[1]);
	close(fd);
}
