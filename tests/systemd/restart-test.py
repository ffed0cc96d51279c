#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""upagerd restarts without losing clients. This harness plays systemd's part (manager.py): it
holds the listening socket and the fd store, starts upagerd with them, kills it with SIGKILL while
a client works, starts it again with the stored descriptors, six times, then stops it with
SIGTERM (as `systemctl restart` does) and starts it once more. Before each kill a shim
(stall-shim.c) makes the daemon hang in the middle of something: taking the answer of the
client's growth thread, which mapped the next guard page of a MAP_GROWSDOWN mapping (the new
daemon must grow the mapping on from there), twice, or saving the growth it made; resolving a
fault it has read (the new daemon must wake the thread that waits on it), doing an msync it has
read (the new daemon must do it), sending the reply to a mapping it has made (the new daemon must
send it). The client (restart-client.c) must see every byte right throughout, and the files on
disk must hold what it wrote."""
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

from checks import PAGE, check, failures, file_pattern
from manager import Lines, Manager

if os.environ.get("UPAGER_SANITIZE"):
    # ctypes loads libupager.so into python, which has no ASan runtime for its __asan_* symbols.
    print(f"SKIP: a -Db_sanitize={os.environ['UPAGER_SANITIZE']} build: libupager.so cannot be "
          "loaded into python, nor the stall shim preloaded before the sanitizer's runtime")
    sys.exit(77)

upagerd, client_bin, ctl, shim = sys.argv[1:5]
STEPS, STEP_USEC, NL_PAGES = 1024, 3000, 32
def own_pattern(p, k):
    head = 0xc0ffee0000000000 | (k << 32) | p
    return struct.pack("<Q", head) + bytes([(p * 7 + 3 + k * 31) & 0xff]) * (PAGE - 8)


class Client(Lines):
    def __init__(self, argv, env):
        super().__init__(subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True))

    def count(self):
        with self.cond:
            return len(self.lines)


# A client that writes a file through a shared mapping and exits, without msync, when told to.
LEAVER = r"""
import ctypes, mmap, os, sys
lib = ctypes.CDLL("libupager.so.1", use_errno=True)
lib.upager_mmap.restype = ctypes.c_void_p
lib.upager_mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                            ctypes.c_int, ctypes.c_long]
fd = os.open(sys.argv[1], os.O_RDWR)
n = int(sys.argv[2])
p = lib.upager_mmap(None, n * 4096, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, fd, 0)
if p is None or p == ctypes.c_void_p(-1).value:
    sys.exit("upager_mmap: " + os.strerror(ctypes.get_errno()))
for i in range(n):
    ctypes.memset(p + i * 4096, 0x41 + i % 26, 4096)
print("written", flush=True)
sys.stdin.readline()
os._exit(0)
"""


def start(mgr, lsock, sock, env=None):
    since = len(mgr.messages)
    pid = mgr.start([upagerd, "--socket", sock], listen_fd=lsock.fileno(), env=env)
    check(mgr.wait_for("READY=1", 30, since) is not None, "upagerd %d says READY=1" % pid)
    return pid


with tempfile.TemporaryDirectory() as tmp:
    sock = os.path.join(tmp, "upager.sock")
    path, nlpath = os.path.join(tmp, "data"), os.path.join(tmp, "nonlinear")
    with open(path, "wb") as f:
        for p in range(STEPS):
            f.write(file_pattern(p, 0))
    with open(nlpath, "wb") as f:
        for p in range(NL_PAGES):
            f.write(file_pattern(p, 1))
    # The socket systemd's upagerd.socket would hold.
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    lsock.bind(sock)
    os.chmod(sock, 0o666)
    lsock.listen(128)
    mgr = Manager(os.path.join(tmp, "notify"))
    env = dict(os.environ, UPAGER_SOCKET=sock)

    stall = os.path.join(tmp, "stall")

    def start_stalling(call):
        """A daemon that hangs in call once the stall file exists (stall-shim.c)."""
        for f in (stall, stall + ".stalled"):
            if os.path.exists(f):
                os.unlink(f)
        return start(mgr, lsock, sock,
                     dict(os.environ, LD_PRELOAD=shim, UPAGER_STALL=stall, UPAGER_STALL_CALL=call))

    def crash(d, call, what):
        """Make the daemon d hang in call (start_stalling()), then SIGKILL it."""
        open(stall, "w").close()
        end = time.monotonic() + 30
        while not os.path.exists(stall + ".stalled") and time.monotonic() < end:
            time.sleep(0.01)
        check(os.path.exists(stall + ".stalled"), "upagerd hangs with " + what)
        os.kill(d, signal.SIGKILL)
        os.waitpid(d, 0)

    def goes_on(d, line, what):
        ok = client.wait_line(line, 30)
        ended = None if ok or "EOF" not in client.lines else client.proc.wait(timeout=10)
        if not check(ok, "the client goes on after %s (it %s)" %
                     (what, "runs" if ended is None else "ended with status %d" % ended)):
            client.proc.kill()
            os.kill(d, signal.SIGKILL)
            sys.exit(1)

    d = start_stalling("grow")
    check(mgr.names() == ["upager.st.0", "upager.st.1"], "the state memfds are stored")
    client = Client([client_bin, path, nlpath, str(STEPS), str(STEP_USEC)], env)
    # Crashes while the client's MAP_GROWSDOWN mapping grows (by leaps below its guard page from
    # 16 pages grown to 47), between what its growth thread does and what the daemon knows of
    # it. Each new daemon stalls in the next crash's call.
    growth_rounds = [
        ("grow", "grow", 8, "a growth done by the client and not by the daemon"),
        ("grow", "grown", 24, "a leap done by the client and not by the daemon"),
        ("grown", "continue", 48, "a growth done and not saved"),
    ]
    check(client.wait_line("grown 8", 60), "the client works")
    for call, next_call, at, what in growth_rounds:
        check(client.wait_line("grown %d" % at, 60), "the client grew by %d pages" % at)
        crash(d, call, what)
        d = start_stalling(next_call)
        goes_on(d, "grown %d" % (at + 8), "a crash with " + what)
    leaver_path = os.path.join(tmp, "leaver")
    with open(leaver_path, "wb") as f:
        f.write(bytes(8 * PAGE))
    leaver = subprocess.Popen([sys.executable, "-c", LEAVER, leaver_path, "8"], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    check(leaver.stdout.readline().strip() == "written", "a second client writes a file")
    kinds = {n.split(".")[1] for n in mgr.names()}
    check({"st", "cl", "uf", "ob", "pg", "rd", "wr", "vw", "vm", "vt"} <= kinds,
          "the fd store holds sessions, userfaultfds, objects, files and views: "
          + " ".join(sorted(kinds)))

    # Crashes: SIGKILL while the daemon is in the middle of something, each time another thing.
    rounds = [
        ("continue", "fdatasync", 256, "a fault read and not resolved"),
        ("fdatasync", "sendmsg", 384, "an msync read and not done"),
        ("sendmsg", None, 512, "an mmap done and not answered"),
    ]
    for call, next_call, at, what in rounds:
        check(client.wait_line("step %d" % at, 60), "the client reaches step %d" % at)
        crash(d, call, what)
        if leaver:
            # It exits while no daemon runs; its writes are in the cache only.
            leaver.communicate("exit\n", timeout=30)
            leaver = None
        time.sleep(0.3)
        before = client.count()
        time.sleep(0.7)
        check(client.count() == before and client.proc.poll() is None,
              "the client waits while no daemon runs")
        d = start_stalling(next_call) if next_call else start(mgr, lsock, sock)
        if call == "continue":
            out = subprocess.run([ctl, "--socket", sock, "list", "--pid", str(client.proc.pid)],
                                 capture_output=True, text=True, timeout=30).stdout
            check(path in out and nlpath in out and "anon" in out,
                  "the new daemon lists the client's mappings")
            want = b"".join(bytes([0x41 + i % 26]) * PAGE for i in range(8))
            end = time.monotonic() + 10
            while time.monotonic() < end:
                with open(leaver_path, "rb") as f:
                    if f.read() == want:
                        break
                time.sleep(0.1)
            with open(leaver_path, "rb") as f:
                check(f.read() == want,
                      "the new daemon writes back what a client that exited meanwhile wrote")
        goes_on(d, "step %d" % (at + 64), "a crash with " + what)

    # A restart: SIGTERM, as systemctl restart sends.
    check(client.wait_line("step 640", 60), "the client reaches step 640")
    since = len(mgr.messages)
    os.kill(d, signal.SIGTERM)
    _, status = os.waitpid(d, 0)
    check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, "SIGTERM: upagerd exits with 0")
    check(mgr.wait_for("STOPPING=1", 10, since) is not None, "SIGTERM: STOPPING=1")
    time.sleep(0.3)
    before = client.count()
    time.sleep(0.5)
    check(client.count() == before, "the client waits again")
    d = start(mgr, lsock, sock)

    try:
        client.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        client.proc.kill()
    client.wait_line("EOF", 10)
    bad = [line for line in client.lines if line.startswith("FAIL")]
    check(client.proc.returncode == 0 and "done ok" in client.lines and not bad,
          "the client read and wrote every byte right: " + "; ".join(bad[:5] or ["all good"]))
    with open(path, "rb") as f:
        data = f.read()
    wrong = [p for p in range(STEPS)
             if data[p * PAGE:(p + 1) * PAGE] != (own_pattern(p, 0) if p % 2 == 0
                                                   else file_pattern(p, 0))]
    check(not wrong, "the file holds what the client wrote (wrong pages: %s)" % wrong[:10])
    with open(nlpath, "rb") as f:
        data = f.read()
    wrong = []
    for p in range(NL_PAGES):
        q = NL_PAGES - 1 - p  # the nonlinear page that showed file page p
        want = own_pattern(q, 3) if q < NL_PAGES // 2 and q % 4 == 0 else file_pattern(p, 1)
        if data[p * PAGE:(p + 1) * PAGE] != want:
            wrong.append(p)
    check(not wrong, "the nonlinear mapping's writes reached its file (wrong pages: %s)" % wrong)

    # The client is gone: its descriptors leave the store.
    end = time.monotonic() + 10
    while mgr.names() != ["upager.st.0", "upager.st.1"] and time.monotonic() < end:
        time.sleep(0.1)
    check(mgr.names() == ["upager.st.0", "upager.st.1"],
          "the store keeps only the state once the client exited: " + " ".join(mgr.names()))
    os.kill(d, signal.SIGTERM)
    os.waitpid(d, 0)
    mgr.close()
    lsock.close()

sys.exit(1 if failures else 0)
