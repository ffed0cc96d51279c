#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The swap store survives a restart under the fd store. This harness plays systemd's part
(manager.py) for upagerd --memory-max 8M --swap PATH; a client (swap-restart-client.c) writes
anonymous memory six times the budget, shared, then private, then the copies a private mapping of
a file makes, so that most of it is in the swap store. The daemon is killed with SIGKILL twice while it pages out: once stalled (stall-shim.c)
while the client reads every page back, between the write of pages to the store and their punch
out of memory ("pageout", shared) or right after it sent the DROP that has the client move them
out ("drop", private and copies); once a third into a round of writes, with page-outs and page-ins in flight.
Each time a new daemon takes the store over from the fd store: every page must read back as last
written, and the new daemon must page out and in itself.

With a fifth argument "nbd" the store is the export of an nbdkit that the test starts (its file
plugin on a Unix socket), which outlives each daemon: the fd store keeps the tables (the checksums
of the slots) in its stead. Once, the server is away while the new daemon starts, and back 1.5 s
later: the daemon waits for it and takes its tables over. nbdkit 1.32 may die of an assertion
(connections.c raw_send_socket: sock >= 0) when the daemon it serves is killed in the middle of a
request: the test waits for the server to be done with the killed daemon's connection and, if it
died, starts it again on the same socket and file, which keeps the data.

Every process the test starts writes to a log file, shown at the end, and is killed at the end
whatever happens: none holds meson's pipes."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from checks import PAGE, check, failures
from manager import Lines, Manager, kill_all, listening_socket

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
    def __init__(self, argv, env, log):
        super().__init__(subprocess.Popen(argv, env=env, stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=log, text=True))

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


class Nbdkit:
    """nbdkit's file plugin serving path on a Unix socket in tmp, its output in log."""

    def __init__(self, tmp, path, log):
        self.sock, self.pidfile = os.path.join(tmp, "nbd.sock"), os.path.join(tmp, "nbd.pid")
        self.path, self.log, self.proc, self.restarts = path, log, None, 0
        self.uri = "nbd+unix:///?socket=" + self.sock

    def start(self):
        """Start it on the socket (a dead one's left there is removed); wait until it serves."""
        for f in (self.sock, self.pidfile):
            if os.path.exists(f):
                os.unlink(f)
        self.proc = subprocess.Popen(["nbdkit", "-f", "--exit-with-parent", "-P", self.pidfile,
                                      "-U", self.sock, "file", self.path],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        end = time.monotonic() + 10
        while not os.path.exists(self.pidfile) and time.monotonic() < end:
            time.sleep(0.02)
        return check(os.path.exists(self.pidfile), "nbdkit serves %s" % self.path)

    def threads(self):
        try:
            return len(os.listdir("/proc/%d/task" % self.proc.pid))
        except OSError:
            return 0

    def settle(self):
        """Once the daemon it served is killed: wait until the server is done with that
        connection (back to one thread), or dead, then start it again if it died."""
        end = time.monotonic() + 10
        while self.proc.poll() is None and self.threads() > 1 and time.monotonic() < end:
            time.sleep(0.02)
        if self.proc.poll() is not None:
            print("note: nbdkit exited with %d when its client was killed; started again"
                  % self.proc.returncode, flush=True)
            self.restarts += 1
            self.start()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# meson's SIGTERM at a timeout still kills what the test started.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
daemons, clients = [], []  # every upagerd and client started, to kill at the end

with tempfile.TemporaryDirectory() as tmp:
    sock, swap = os.path.join(tmp, "upager.sock"), os.path.join(tmp, "swap")
    stall = os.path.join(tmp, "stall")
    logpath = os.path.join(tmp, "log")
    log = open(logpath, "a")
    nbd = None
    lsock = listening_socket(sock)
    mgr = Manager(os.path.join(tmp, "notify"))

    def log_text():
        with open(logpath) as f:
            return f.read()

    def start(stall_call=None, meanwhile=None):
        """Start a daemon, call meanwhile() if given, and wait for the daemon's READY=1."""
        env = dict(os.environ)
        if stall_call:
            env.update(LD_PRELOAD=shim, UPAGER_STALL=stall, UPAGER_STALL_CALL=stall_call)
        since = len(mgr.messages)
        pid = mgr.start([upagerd, "--socket", sock, "--memory-max", "8M", "--swap", swap],
                        listen_fd=lsock.fileno(), env=env, stderr=log.fileno())
        daemons.append(pid)
        if meanwhile:
            meanwhile()
        check(mgr.wait_for("READY=1", 40, since) is not None, "upagerd %d says READY=1" % pid)
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
        daemons.remove(d)
        if nbd:
            nbd.settle()

    def scenario(kind, stall_call):
        d = start(stall_call)
        global client
        client = Client([client_bin, str(PAGES), kind], dict(os.environ, UPAGER_SOCKET=sock), log)
        clients.append(client.proc)
        if not check(client.answer("mapped", 30) == "mapped", "the client maps %s memory" % kind):
            sys.exit(1)
        client.send("write 1")
        check(client.answer("written 1") is not None, "the client writes round 1")
        s = stats()
        check(s.get("swap_used_bytes", 0) >= PAGES * PAGE // 2,
              "most of it is in the swap store: %d MiB" % (s.get("swap_used_bytes", 0) >> 20))
        names = mgr.names()
        check(all(n in names for n in STORE_NAMES)
              and (kind != "shared" or any(n.startswith("upager.sl.") for n in names)),
              "the fd store holds the swap store, its tables and the slot table: " + " ".join(names))

        # Killed at the stall, while the client reads every page back.
        open(stall, "w").close()
        client.send("check 1")
        end = time.monotonic() + 60
        while not os.path.exists(stall + ".stalled") and time.monotonic() < end:
            time.sleep(0.01)
        if not check(os.path.exists(stall + ".stalled"), "upagerd hangs paging out (%s)" % stall_call):
            sys.exit(1)
        kill(d)
        os.unlink(stall)
        os.unlink(stall + ".stalled")
        d = start()
        round_ok(1)

        # Killed at some point of a round of writes, with page-outs and page-ins under way: as
        # soon as the client says it is a sixth through (a loaded machine may still be late).
        client.trigger = ("at 2 ", lambda: os.kill(d, signal.SIGKILL))
        client.send("write 2")
        check(client.answer("at 2 ") is not None, "the client is a sixth through round 2")
        if "written 2" in client.lines:
            print("note: the client ended round 2 before the daemon was killed", flush=True)
        kill(d)
        if nbd and kind == "shared":
            # The server away while the new daemon starts, back 1.5 s later.
            nbd.stop()
            since = len(log_text())
            d = start(meanwhile=lambda: time.sleep(1.5) or nbd.start())
            said = log_text()[since:]
            check("waiting up to" in said and "took over its tables" in said,
                  "the new daemon waits for the server away at its start and takes its tables over")
        else:
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
        daemons.remove(d)

    try:
        if NBD:
            with open(swap, "wb") as f:
                f.truncate(256 << 20)
            nbd = Nbdkit(tmp, swap, log)
            if not nbd.start():
                sys.exit(1)
            swap = nbd.uri
        scenario("shared", "pageout")
        scenario("private", "drop")
        # The copies a private mapping of a file makes of the pages it writes.
        scenario("private-file", "drop")
    finally:
        kill_all(clients, daemons)
        if nbd:
            nbd.stop()
            print("note: nbdkit started again %d times" % nbd.restarts, flush=True)
        mgr.close()
        lsock.close()
        log.close()
        sys.stderr.write(log_text())

sys.exit(1 if failures else 0)
