#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""upagerd under a real systemd: systemd-nspawn boots a minimal Debian root (nspawnroot.py) into
which this build is installed with `meson install --destdir`, over an overlay so that the cached
root stays as made. In the container: upagerd.socket is enabled and listens at boot, the first
client starts upagerd.service (socket activation), which is active only once it said READY=1
(Type=notify); `systemd-analyze security` rates the installed unit; the daemon keeps its clients'
descriptors in systemd's fd store, and a client (restart-client.c) that checks every byte of its
mappings goes on through `systemctl kill --signal=KILL` (Restart=on-failure) and
`systemctl restart`, the new daemon taking over from the store each time.

Needs root, systemd-nspawn (systemd-container), debootstrap, and the mirror apt uses for the
first run. If the container cannot boot, the test fails and says why."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from checks import PAGE, check, failures, file_pattern
from manager import Lines
from nspawnroot import cached_root

build, upagerd, upagerctl, libupager, client_bin = sys.argv[1:6]
MAX_EXPOSURE = 2.0
STEPS, STEP_USEC, NL_PAGES = 2048, 2000, 32
# The crash comes while the client's MAP_GROWSDOWN mapping grows by leaps below its guard page
# (from 16 pages grown to 47), at step 128 or so.
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def give_up(why):
    print("FAIL " + why, flush=True)
    sys.exit(1)


if os.environ.get("UPAGER_SANITIZE"):
    print("SKIP: a -Db_sanitize=%s build: its binaries need the sanitizer's runtime, which the "
          "container's root does not hold" % os.environ["UPAGER_SANITIZE"])
    sys.exit(77)
if os.geteuid() != 0:
    print("SKIP: systemd-nspawn needs root")
    sys.exit(77)
missing = [t for t in ("systemd-nspawn", "debootstrap", "nsenter") if not shutil.which(t)]
if missing:
    give_up("not found: %s (packages systemd-container, debootstrap, util-linux; "
            "scripts/run test installs them)" % " ".join(missing))


class Container:
    """A systemd-nspawn container booted from a directory, and commands run in it."""

    def __init__(self, root, log_path):
        self.name = "upager-test-%d" % os.getpid()
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.leader = None
        # nspawn's own seccomp filter leaves fanotify out of containers; the unit's daemon
        # wants it (its pre-content events), as a host would give it to such a container.
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "--keep-unit", "--register=no", "--console=read-only",
             "--system-call-filter=fanotify_init fanotify_mark",
             "--machine=" + self.name, "--boot", "--directory=" + root],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)

    def boot(self, timeout):
        """Wait for PID 1 to finish booting; return its state, or None if it never came."""
        end = time.monotonic() + timeout
        while self.leader is None and time.monotonic() < end and self.proc.poll() is None:
            self.leader = self._pid1()
            time.sleep(0.05)
        while self.leader is not None and time.monotonic() < end and self.proc.poll() is None:
            r = self.run(["systemctl", "is-system-running", "--wait"],
                         timeout=max(1, end - time.monotonic()), check=False)
            if r.stdout.strip() in ("running", "degraded"):
                return r.stdout.strip()
            time.sleep(0.2)
        return None

    def _pid1(self):
        """The child of systemd-nspawn that is PID 1 of its PID namespace: the container's init
        (not the short-lived child that sets the container up)."""
        try:
            for task in os.listdir("/proc/%d/task" % self.proc.pid):
                with open("/proc/%d/task/%s/children" % (self.proc.pid, task)) as f:
                    for kid in f.read().split():
                        with open("/proc/%s/status" % kid) as st:
                            nspid = [line.split()[1:] for line in st if line.startswith("NSpid:")]
                        if nspid and len(nspid[0]) > 1 and nspid[0][-1] == "1":
                            return int(kid)
        except FileNotFoundError:
            pass  # a process that just exited
        return None

    def argv(self, argv):
        return (["nsenter", "--target", str(self.leader), "--mount", "--uts", "--ipc", "--net",
                 "--pid", "--cgroup", "--root", "--wd", "env", "-i", "PATH=" + PATH,
                 "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=", "LANG=C.UTF-8"] + argv)

    def run(self, argv, timeout=30, check=True):
        r = subprocess.run(self.argv(argv), capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            print("FAIL %s: status %d: %s" % (" ".join(argv), r.returncode, r.stderr.strip()))
        return r

    def show(self, unit, *props):
        out = self.run(["systemctl", "show", "-p", ",".join(props), unit]).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def wait_show(self, unit, want, timeout):
        """Wait until unit's properties match want (name -> value or predicate); return them."""
        end = time.monotonic() + timeout
        while True:
            got = self.show(unit, *want)
            if all(v(got.get(k, "")) if callable(v) else got.get(k) == v
                   for k, v in want.items()) or time.monotonic() > end:
                return got
            time.sleep(0.05)

    def tell(self):
        """What the container said, for a failure."""
        if self.leader is not None and self.proc.poll() is None:
            r = self.run(["journalctl", "--no-pager", "-b", "-n", "60"], check=False)
            print("--- the container's journal\n" + r.stdout + r.stderr)
        self.log.flush()
        with open(self.log_path, errors="replace") as f:
            print("--- systemd-nspawn's output (end)\n" + f.read()[-3000:])

    def stop(self):
        """Power off; after 15 s kill every process in it at once, through its PID 1."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # nspawn asks PID 1 to power off
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                if self.leader is not None:
                    os.kill(self.leader, signal.SIGKILL)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self.log.close()


def took_over(c):
    """How many times a daemon took over from the fd store, by the journal."""
    out = c.run(["journalctl", "--no-pager", "-o", "cat", "-u", "upagerd.service"]).stdout
    return len(re.findall(r"took over [1-9]\d* clients", out))


def test(c, root):
    state = c.boot(90)
    if not check(state is not None, "systemd boots in the container (%s)" % state):
        code = c.proc.poll()
        print("systemd-nspawn %s; it cannot run here, or the root at %s is broken" %
              ("exited with status %s" % code if code is not None else "is still running", root))
        return
    if state == "degraded":
        print(c.run(["systemctl", "--failed", "--no-legend"]).stdout)

    sock = c.show("upagerd.socket", "ActiveState", "SubState", "UnitFileState")
    check(sock == {"ActiveState": "active", "SubState": "listening", "UnitFileState": "enabled"},
          "upagerd.socket is enabled and listens from boot: %s" % sock)
    svc = c.show("upagerd.service", "ActiveState")
    check(svc["ActiveState"] == "inactive", "upagerd.service waits for a client: %s" % svc)
    mode = c.run(["stat", "-c", "%G %a", "/run/upager/upager.sock"]).stdout.strip()
    check(mode == "upager 660", "the socket is 0660, group upager (sysusers): %s" % mode)

    r = c.run(["systemd-analyze", "security", "--no-pager", "upagerd.service"], timeout=60)
    m = re.search(r"Overall exposure level for upagerd\.service: ([0-9.]+)", r.stdout)
    check(m is not None and float(m.group(1)) <= MAX_EXPOSURE,
          "systemd-analyze security rates the installed unit %s (at most %.1f)" %
          (m.group(1) if m else "?: " + r.stdout[-300:] + r.stderr, MAX_EXPOSURE))

    client = Lines(subprocess.Popen(
        c.argv(["/opt/upager-test/restart-client", "/var/tmp/upager-test/data",
                "/var/tmp/upager-test/nonlinear", str(STEPS), str(STEP_USEC)]),
        stdout=subprocess.PIPE, text=True))
    try:
        check(client.wait_line("ready", 60), "the client maps its memory")
        svc = c.wait_show("upagerd.service", {"ActiveState": "active", "SubState": "running"}, 10)
        svc = c.show("upagerd.service", "Type", "ActiveState", "SubState", "MainPID",
                     "StatusText", "TriggeredBy")
        check(svc["ActiveState"] == "active" and svc["SubState"] == "running"
              and svc["Type"] == "notify" and svc["TriggeredBy"] == "upagerd.socket",
              "the first client started upagerd.service, which said READY=1: %s" % svc)
        check("client" in svc["StatusText"], "it says STATUS=: %s" % svc["StatusText"])

        check(client.wait_line("grown 32", 60), "the client works")
        store = c.show("upagerd.service", "FileDescriptorStoreMax", "NFileDescriptorStore")
        n = int(store.get("NFileDescriptorStore") or 0)
        check(store["FileDescriptorStoreMax"] == "16384" and n >= 10,
              "systemd holds the daemon's descriptors in the fd store: %s" % store)

        pid = svc["MainPID"]
        # The unit lets the daemon make a fanotify group, after which it has no CAP_SYS_ADMIN.
        caps = c.run(["sh", "-c", "grep ^Cap /proc/%s/status; ls -l /proc/%s/fd" % (pid, pid)])
        eff = re.search(r"CapEff:\s*([0-9a-f]+)", caps.stdout)
        check(eff is not None and not int(eff.group(1), 16) & (1 << 21)
              and "anon_inode:[fanotify]" in caps.stdout,
              "under systemd the daemon has a fanotify group and no CAP_SYS_ADMIN (CapEff %s)"
              % (eff.group(1) if eff else "?"))
        c.run(["systemctl", "kill", "--signal=KILL", "upagerd.service"])
        got = c.wait_show("upagerd.service",
                          {"ActiveState": "active", "SubState": "running", "NRestarts": "1",
                           "MainPID": lambda v: v not in ("0", pid)}, 15)
        check(got["MainPID"] not in ("0", pid) and got["NRestarts"] == "1"
              and got["ActiveState"] == "active",
              "after SIGKILL systemd started upagerd again: %s (was %s)" % (got, pid))
        check(took_over(c) == 1, "the new daemon took the clients over from the fd store")

        check(client.wait_line("step 640", 60), "the client goes on after the crash")
        pid = got["MainPID"]
        c.run(["systemctl", "restart", "upagerd.service"], timeout=90)
        got = c.show("upagerd.service", "ActiveState", "SubState", "MainPID")
        check(got["MainPID"] not in ("0", pid) and got["ActiveState"] == "active",
              "systemctl restart: SIGTERM and a new daemon: %s (was %s)" % (got, pid))
        check(took_over(c) == 2, "the new daemon took the clients over from the fd store again")
        check(not client.wait_line("EOF", 0), "the client was still running through both")

        check(client.wait_line("EOF", 120), "the client exits")
        client.proc.wait(timeout=10)
        bad = [line for line in client.lines if line.startswith("FAIL")]
        check(client.proc.returncode == 0 and "done ok" in client.lines and not bad,
              "the client read and wrote every byte right (status %s): %s" %
              (client.proc.returncode, "; ".join(bad[:5] or client.lines[-2:])))
        # The daemon's own: the two memfds of its saved tables, and its swap store (in the
        # unit's StateDirectory) with the memfd of its tables.
        got = c.wait_show("upagerd.service", {"NFileDescriptorStore": "4"}, 10)
        check(got["NFileDescriptorStore"] == "4",
              "the store keeps only the daemon's state once the client exited: %s" % got)
    finally:
        if client.proc.poll() is None:
            client.proc.kill()
            client.proc.wait()


def install(root):
    """This build, the test client and its files into root; upagerd.socket enabled."""
    subprocess.run(["meson", "install", "-C", build, "--destdir", root, "--no-rebuild",
                    "--quiet"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["chroot", root, "ldconfig"], check=True)
    subprocess.run(["chroot", root, "systemctl", "enable", "upagerd.socket"], check=True,
                   capture_output=True)
    os.makedirs(root + "/opt/upager-test")
    shutil.copy(client_bin, root + "/opt/upager-test/restart-client")
    os.makedirs(root + "/var/tmp/upager-test")
    with open(root + "/var/tmp/upager-test/data", "wb") as f:
        f.write(b"".join(file_pattern(p, 0) for p in range(STEPS)))
    with open(root + "/var/tmp/upager-test/nonlinear", "wb") as f:
        f.write(b"".join(file_pattern(p, 1) for p in range(NL_PAGES)))


start = time.monotonic()
lower = cached_root([upagerd, upagerctl, libupager, client_bin])
tmp = tempfile.mkdtemp(prefix="upager-nspawn.", dir="/var/tmp")
root = os.path.join(tmp, "root")
for d in ("upper", "work", "root"):
    os.mkdir(os.path.join(tmp, d))
c = None
try:
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    "lowerdir=%s,upperdir=%s/upper,workdir=%s/work" % (lower, tmp, tmp), root],
                   check=True)
    install(root)
    c = Container(root, os.path.join(tmp, "nspawn.log"))
    test(c, root)
    if failures:
        c.tell()
finally:
    if c is not None:
        c.stop()
    subprocess.run(["umount", root], check=False)
    if os.path.ismount(root):
        subprocess.run(["umount", "--lazy", root], check=False)
    shutil.rmtree(tmp, ignore_errors=True)
print("%.1f s in all" % (time.monotonic() - start))
sys.exit(1 if failures else 0)
