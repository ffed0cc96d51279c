#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""upagerd under systemd's tools: the units verify, and the daemon takes its socket from socket
activation, says READY=1, STATUS= and STOPPING=1 on $NOTIFY_SOCKET, and serves a client."""
import os
import signal
import subprocess
import sys
import tempfile
import time

from checks import check, failures
from manager import Manager

units, upagerd, demo = sys.argv[1], sys.argv[2], sys.argv[3]
# 1. The units pass systemd-analyze verify.
r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                    os.path.join(units, "upagerd.socket"), os.path.join(units, "upagerd.service")],
                   capture_output=True, text=True, timeout=60)
check(r.returncode == 0, "systemd-analyze verify: " + (r.stderr.strip() or "clean"))

# 2. Socket activation and notifications.
with tempfile.TemporaryDirectory() as tmp:
    sock = os.path.join(tmp, "upager.sock")
    notify_path = os.path.join(tmp, "notify")
    # Read by a thread at once, as systemd does: the daemon's messages never wait.
    notify = Manager(notify_path)
    act = subprocess.Popen(["systemd-socket-activate", "--seqpacket", "-l", sock,
                            "-E", "NOTIFY_SOCKET=" + notify_path, upagerd],
                           stderr=subprocess.DEVNULL)
    for _ in range(200):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    check(os.path.exists(sock), "systemd-socket-activate listens")
    # The first connection starts the daemon with the listening socket.
    env = dict(os.environ, UPAGER_SOCKET=sock)
    client = subprocess.Popen([demo, tmp], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    check(notify.wait_for("READY=1", 10) is not None, "READY=1 from the activated daemon")
    for _ in range(100):
        if os.path.exists(os.path.join(tmp, "ready")):
            break
        time.sleep(0.05)
    out, _ = client.communicate("done\n", timeout=30)
    check(client.returncode == 0 and "begins with \"UPAGER\"" in out,
          "a client maps, writes and syncs through the activated daemon")
    notify.wait_for("STATUS=", 5)
    check(any(m.startswith("STATUS=") and "clients" in m for m in notify.messages),
          "STATUS= with a summary")
    act.send_signal(signal.SIGTERM)
    check(notify.wait_for("STOPPING=1", 10) is not None, "STOPPING=1 on SIGTERM")
    act.wait(timeout=30)
    check(os.path.exists(sock), "the daemon leaves the activated socket to its owner")
    notify.close()

sys.exit(1 if failures else 0)
