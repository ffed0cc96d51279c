# SPDX-License-Identifier: LGPL-2.1-or-later
"""The part of systemd a test needs: $NOTIFY_SOCKET (READY=1, STATUS=, STOPPING=1, FDSTORE=1 with
FDNAME=, FDSTOREREMOVE=1) and starting a service with $LISTEN_FDS, $LISTEN_PID and
$LISTEN_FDNAMES, the listening socket first and the fd store after it, as systemd does."""
import array
import os
import signal
import socket
import threading
import time


class Manager:
    def __init__(self, notify_path):
        self.notify_path = notify_path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(notify_path)
        self.sock.settimeout(0.2)
        self.lock = threading.Condition()
        self.messages = []  # every line, in order
        self.store = {}  # name -> [fd, ...]
        self.max_fds = 0
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        fds_size = socket.CMSG_SPACE(253 * array.array("i").itemsize)
        while not self.stopped:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, fds_size)
            except socket.timeout:
                continue
            except OSError:
                return
            fds = array.array("i")
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
            lines = data.decode(errors="replace").split("\n")
            fields = dict(line.split("=", 1) for line in lines if "=" in line)
            with self.lock:
                self.messages += [line for line in lines if line]
                if fields.get("FDSTORE") == "1":
                    name = fields.get("FDNAME", "stored")
                    self.store.setdefault(name, []).extend(fds)
                    fds = []
                elif fields.get("FDSTOREREMOVE") == "1" and "FDNAME" in fields:
                    for fd in self.store.pop(fields["FDNAME"], []):
                        os.close(fd)
                self.max_fds = max(self.max_fds, sum(len(v) for v in self.store.values()))
                self.lock.notify_all()
            for fd in fds:
                os.close(fd)

    def wait_for(self, line, timeout, since=0):
        """Wait until a message line equal to line (or starting with it, if it ends with '=')
        came after the first since lines. Return its index or None."""
        end = time.monotonic() + timeout
        with self.lock:
            while True:
                for i in range(since, len(self.messages)):
                    m = self.messages[i]
                    if m == line or (line.endswith("=") and m.startswith(line)):
                        return i
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.lock.wait(left)

    def names(self):
        with self.lock:
            return sorted(self.store)

    def start(self, argv, listen_fd=None, listen_name="upagerd.socket", env=None, stderr=None):
        """Fork and exec argv with the listening socket and the fd store, as systemd does;
        stderr, a descriptor, in place of the caller's."""
        with self.lock:
            passed = [] if listen_fd is None else [(listen_fd, listen_name)]
            for name in sorted(self.store):
                passed += [(fd, name) for fd in self.store[name]]
        child_env = dict(os.environ if env is None else env)
        child_env["NOTIFY_SOCKET"] = self.notify_path
        for k in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
            child_env.pop(k, None)
        if passed:
            child_env["LISTEN_FDS"] = str(len(passed))
            child_env["LISTEN_FDNAMES"] = ":".join(name for _, name in passed)
        pid = os.fork()
        if pid == 0:
            try:
                if stderr is not None:
                    os.dup2(stderr, 2)
                # Out of the way of 3..n first, then into place.
                high = [os.dup(fd) for fd, _ in passed]
                high = [os.dup2(fd, 1000 + i) or 1000 + i for i, fd in enumerate(high)]
                for i, fd in enumerate(high):
                    os.dup2(fd, 3 + i, inheritable=True)
                os.closerange(3 + len(passed), 65536)
                if passed:
                    child_env["LISTEN_PID"] = str(os.getpid())
                os.execve(argv[0], argv, child_env)
            finally:
                os._exit(127)
        return pid

    def close(self):
        self.stopped = True
        self.thread.join()
        self.sock.close()
        with self.lock:
            for fds in self.store.values():
                for fd in fds:
                    os.close(fd)
            self.store = {}


def listening_socket(path):
    """The listening socket that systemd's upagerd.socket would hold, at path."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.bind(path)
    os.chmod(path, 0o666)
    sock.listen(128)
    return sock


class Lines:
    """The lines a client process prints on its stdout, collected by a thread, "EOF" at the end."""

    def __init__(self, proc):
        self.proc, self.lines, self.cond = proc, [], threading.Condition()
        self.trigger = None  # (prefix, fn): fn() called by the reader at the next such line
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            trigger = self.trigger
            if trigger and line.startswith(trigger[0]):
                self.trigger = None
                trigger[1]()
            with self.cond:
                self.lines.append(line.strip())
                self.cond.notify_all()
        with self.cond:
            self.lines.append("EOF")
            self.cond.notify_all()

    def wait_line(self, line, timeout):
        end = time.monotonic() + timeout
        with self.cond:
            while line not in self.lines and "EOF" not in self.lines:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return line in self.lines


def kill_all(procs, pids):
    """At a test's end, whatever happened: SIGKILL the processes of procs (Popen) still running
    and the children of pids (not waited for yet), and wait for them, so that none is left
    holding the test's pipes."""
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
