#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The swap store survives a restart under the fd store. This harness plays systemd's part
(manager.py) for upagerd --memory-max 8M --swap PATH; a client (swap-restart-client.c) writes
anonymous memory six times the budget, shared and then private, so that most of it is in the swap
store. The daemon is killed with SIGKILL twice while it pages out: once stalled (stall-shim.c)
while the client reads every page back, between the write of pages to the store and their punch
out of memory ("pageout", shared) or right after it sent the DROP that has the client move them
out ("drop", private); once a third into a round of writes, with page-outs and page-ins in flight.
Each time a new daemon takes the store over from the fd store: every page must read back as last
written, and the new daemon must page out and in itself.

With a fifth argument "nbd" the store is the export of an nbdkit that the test starts (its file
plugin on a Unix socket), which outlives each daemon: the fd store keeps the tables (the checksums
of the slots) in its stead."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from checks import PAGE, check, failures
from manager import Lines, Manager, listening_socket

if os.environ.get("UPAGER_SANITIZE"):
    print(f"SKIP: a -Db_sanitize={os.environ['UPAGER_SANITIZE']} build: the stall shim cannot be "
          "preloaded before the sanitizer's runtime")
    sys.exit(77)

upagerd, client_bin, ctl, shim = sys.argv[1:5]
NBD = sys.argv[5:6] == ["nbd"]
PAGES = 12288  # 48 MiB: six times the budget
# What the fd store holds of the swap store: the file and its tables, or the NBD store's tables.
STORE_NAMES = ["upager.nx.0"] if NBD else ["upager.sw.0", "upager.sx.0"]


class Client(Lines):
    def __init__(self, argv, env):
        super().__init__(subprocess.Popen(argv, env=env, stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, text=True))

    def send(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def answer(self, prefix, timeout=120):
        """The first line that begins with prefix, or None."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    if line.startswith(prefix):
                        return line
                left = end - time.monotonic()
                if left <= 0 or "EOF" in self.lines:
                    return None
                self.cond.wait(left)


with tempfile.TemporaryDirectory() as tmp:
    sock, swap = os.path.join(tmp, "upager.sock"), os.path.join(tmp, "swap")
    stall = os.path.join(tmp, "stall")
    nbdkit = None
    if NBD:
        with open(swap, "wb") as f:
            f.truncate(256 << 20)
        nbd_sock, pidfile = os.path.join(tmp, "nbd.sock"), os.path.join(tmp, "nbd.pid")
        nbdkit = subprocess.Popen(["nbdkit", "-f", "--exit-with-parent", "-P", pidfile, "-U", nbd_sock, "file", swap])
        end = time.monotonic() + 10
        while not os.path.exists(pidfile) and time.monotonic() < end:
            time.sleep(0.05)
        check(os.path.exists(pidfile), "nbdkit serves %s" % swap)
        swap = "nbd+unix:///?socket=" + nbd_sock
    lsock = listening_socket(sock)
    mgr = Manager(os.path.join(tmp, "notify"))

    def start(stall_call=None):
        env = dict(os.environ)
        if stall_call:
            env.update(LD_PRELOAD=shim, UPAGER_STALL=stall, UPAGER_STALL_CALL=stall_call)
        since = len(mgr.messages)
        pid = mgr.start([upagerd, "--socket", sock, "--memory-max", "8M", "--swap", swap],
                        listen_fd=lsock.fileno(), env=env)
        check(mgr.wait_for("READY=1", 30, since) is not None, "upagerd %d says READY=1" % pid)
        return pid

    def stats():
        out = subprocess.run([ctl, "--socket", sock, "stats", "--json"], capture_output=True,
                             text=True, timeout=30).stdout
        try:
            return json.loads(out)
        except ValueError:
            return {}

    def round_ok(r):
        line = client.answer("checked %d " % r)
        bad = [x for x in client.lines if x.startswith("FAIL")]
        check(line == "checked %d bad=0" % r,
              "every page reads back as written in round %d: %s" % (r, line or "no answer")
              + "".join("; " + x for x in bad[:5]))

    def kill(d):
        os.kill(d, signal.SIGKILL)
        os.waitpid(d, 0)

    def scenario(kind, stall_call):
        d = start(stall_call)
        global client
        client = Client([client_bin, str(PAGES), kind], dict(os.environ, UPAGER_SOCKET=sock))
        if not check(client.answer("mapped", 30) == "mapped", "the client maps %s anonymous memory" % kind):
            kill(d)
            sys.exit(1)
        client.send("write 1")
        check(client.answer("written 1") is not None, "the client writes round 1")
        s = stats()
        check(s.get("swap_used_bytes", 0) >= PAGES * PAGE // 2,
              "most of it is in the swap store: %d MiB" % (s.get("swap_used_bytes", 0) >> 20))
        names = mgr.names()
        check(all(n in names for n in STORE_NAMES)
              and (kind == "private" or any(n.startswith("upager.sl.") for n in names)),
              "the fd store holds the swap store, its tables and the slot table: " + " ".join(names))

        # Killed at the stall, while the client reads every page back.
        open(stall, "w").close()
        client.send("check 1")
        end = time.monotonic() + 60
        while not os.path.exists(stall + ".stalled") and time.monotonic() < end:
            time.sleep(0.01)
        check(os.path.exists(stall + ".stalled"), "upagerd hangs paging out (%s)" % stall_call)
        kill(d)
        os.unlink(stall)
        os.unlink(stall + ".stalled")
        d = start()
        round_ok(1)

        # Killed at some point of a round of writes, with page-outs and page-ins under way.
        client.send("write 2")
        check(client.answer("at 2 4096") is not None, "the client is a third through round 2")
        check("written 2" not in client.lines, "the daemon is killed in the middle of round 2")
        kill(d)
        d = start()
        check(client.answer("written 2") is not None, "the client goes on writing round 2")
        client.send("check 2")
        round_ok(2)
        s = stats()
        check(s.get("pages_out", 0) > 0 and s.get("pages_in", 0) > 0
              and s.get("swap_used_bytes", 0) > 0,
              "the new daemon pages out and in: %d out, %d in, %d MiB in the store"
              % (s.get("pages_out", 0), s.get("pages_in", 0), s.get("swap_used_bytes", 0) >> 20))

        client.proc.stdin.close()
        check(client.proc.wait(timeout=60) == 0, "the client exits with 0")
        end = time.monotonic() + 10
        while any(n.startswith("upager.sl.") for n in mgr.names()) and time.monotonic() < end:
            time.sleep(0.1)
        names = mgr.names()
        check(not any(n.startswith("upager.sl.") for n in names) and STORE_NAMES[0] in names,
              "the slot table leaves the store with its object, the store stays: " + " ".join(names))
        end = time.monotonic() + 10
        while stats().get("swap_used_bytes", -1) != 0 and time.monotonic() < end:
            time.sleep(0.1)
        check(stats().get("swap_used_bytes", -1) == 0, "the client's slots are free")
        os.kill(d, signal.SIGTERM)
        os.waitpid(d, 0)

    scenario("shared", "pageout")
    scenario("private", "drop")
    mgr.close()
    lsock.close()
    if nbdkit:
        nbdkit.terminate()
        nbdkit.wait(timeout=30)

sys.exit(1 if failures else 0)
