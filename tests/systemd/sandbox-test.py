#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""upagerd works under the hardening of its unit, and each directive holds.

PID 1 need not be systemd: the [Service] directives are read from upagerd.service.in, the groups of
SystemCallFilter= expanded with `systemd-analyze syscall-filter`, and sandbox-launch applies them
as systemd does (namespaces, mounts, bounding set, no_new_privs, seccomp) before it execs.

1. systemd-analyze security --offline=true rates the unit below 2.0.
2. Each directive alone, then all together, make forbidden things fail inside the sandbox (the
   launcher's --self-check) that succeed outside it; what the daemon needs still works.
3. upagerd runs under all of them, socket-activated with the fd store as under systemd (manager.py),
   serves clients whose files are in a directory the sandbox hides (PrivateTmp=), restarts from its
   fd store, and logs no error or warning."""
import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

if os.environ.get("UPAGER_SANITIZE"):
    # The unit's seccomp filter and sandbox are for upagerd, not for the sanitizer's runtime in it.
    print(f"SKIP: a -Db_sanitize={os.environ['UPAGER_SANITIZE']} build: the sanitizer's runtime "
          "makes calls that the unit's sandbox refuses")
    sys.exit(77)
import time

from checks import PAGE, check, failures, file_pattern
from manager import Lines, Manager, kill_all

unit_in, upagerd, launcher, client_bin, restart_bin = sys.argv[1:6]
STEPS, NL_PAGES = 256, 32
SKIP = 77

# Lines of [Service] that are not hardening: the launcher is given every other one.
NOT_SANDBOX = {"Type", "NotifyAccess", "ExecStart", "Restart", "RestartSec",
               "FileDescriptorStoreMax", "TimeoutStopSec", "RuntimeDirectoryPreserve",
               "LimitNOFILE", "OOMScoreAdjust"}


def parse_unit(path):
    """The [Service] section as (key, value) in order; repeated keys add up as systemd does."""
    out, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line
                continue
            if section == "[Service]" and "=" in line:
                k, v = line.split("=", 1)
                out[k] = (out[k] + " " + v) if k in out and v else v
    return out


def expand_syscalls(names):
    """SystemCallFilter= names with every @group replaced by its members."""
    seen, result = set(), set()

    def group(g):
        if g in seen:
            return
        seen.add(g)
        r = subprocess.run(["systemd-analyze", "syscall-filter", g], capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            sys.exit("systemd-analyze syscall-filter %s: %s" % (g, r.stderr.strip()))
        for line in r.stdout.splitlines()[1:]:
            t = line.strip()
            if t and not t.startswith("#"):
                group(t) if t.startswith("@") else result.add(t)

    for n in names.split():
        if n.startswith("~"):
            sys.exit("SystemCallFilter= deny lists are not handled")
        group(n) if n.startswith("@") else result.add(n)
    return " ".join(sorted(result))


service = parse_unit(unit_in)
directives = {k: v for k, v in service.items() if k not in NOT_SANDBOX}
if "SystemCallFilter" in directives:
    directives["SystemCallFilter"] = expand_syscalls(directives["SystemCallFilter"])
print("directives: " + " ".join(k for k in directives))


# 1. systemd's own rating of the unit.
with tempfile.TemporaryDirectory() as d:
    with open(unit_in) as f, open(os.path.join(d, "upagerd.service"), "w") as g:
        g.write(f.read().replace("@sbindir@", "/usr/sbin"))
    r = subprocess.run(["systemd-analyze", "security", "--offline=true",
                        os.path.join(d, "upagerd.service")], capture_output=True, text=True,
                       timeout=120)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\S+)", r.stdout)
    check(m is not None and float(m.group(1)) < 2.0,
          "systemd-analyze security: exposure %s (below 2.0)"
          % (m.group(1) + " " + m.group(2) if m else "not found: " + r.stderr.strip()[-200:]))

rt = tempfile.mkdtemp(dir="/run", prefix="upager-sandbox.")
runtime = os.path.join(rt, service.get("RuntimeDirectory", "upager").split()[0])
os.mkdir(runtime)
# Client files where PrivateTmp= and ProtectHome= hide them from the daemon.
clientdir = tempfile.mkdtemp(dir="/tmp", prefix="upager-sandbox.")
home = os.path.expanduser("~")
homedir = None
if re.match(r"^/(home|root)(/|$)", home) and os.access(home, os.W_OK):
    homedir = tempfile.mkdtemp(dir=home, prefix=".upager-sandbox.")


def cleanup():
    shutil.rmtree(rt, ignore_errors=True)
    shutil.rmtree(clientdir, ignore_errors=True)
    if homedir:
        shutil.rmtree(homedir, ignore_errors=True)


atexit.register(cleanup)


def sandboxed(argv, only=None):
    """argv under the unit's directives (or only those named)."""
    pick = directives if only is None else {k: directives[k] for k in only if k in directives}
    for keep in ("RuntimeDirectory", "StateDirectory"):
        if keep in directives:
            pick[keep] = directives[keep]
    return ([launcher, "--runtime-root", rt] + ["%s=%s" % kv for kv in pick.items()] + ["--"]
            + argv)


# Is there what the sandbox is made of? A missing kernel facility skips, anything else fails.
status = open("/proc/self/status").read()
if "Seccomp:" not in status:
    print("SKIP: no seccomp in this kernel")
    sys.exit(SKIP)
r = subprocess.run([launcher, "--runtime-root", rt, "--", "/bin/true"], capture_output=True,
                   text=True, timeout=30)
if r.returncode != 0 and ("unshare" in r.stderr or "mount" in r.stderr):
    print("SKIP: no mount namespace here: " + r.stderr.strip())
    sys.exit(SKIP)

hidden = [os.path.join(clientdir, "hidden")]
if homedir:
    hidden.append(os.path.join(homedir, "hidden"))
for h in hidden:
    with open(h, "w") as f:
        f.write("secret\n")
CHECK = [launcher, "--self-check", runtime] + hidden
MINIMAL_DEV = {"null", "zero", "full", "random", "urandom", "tty", "shm", "fd", "stdin", "stdout",
               "stderr"}


def self_check(argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        print(r.stderr)
    res, facts = {}, {}
    for line in r.stdout.splitlines():
        words = line.split()
        if len(words) >= 2 and words[1] in ("allowed", "denied"):
            res[words[0]] = words[1] + (" " + words[2] if len(words) > 2 else "")
        elif words:
            facts[words[0]] = set(words[1].split(",")) if len(words) > 1 else set()
    res["dev_other"] = "allowed" if facts.get("dev", set()) - MINIMAL_DEV else "denied"
    res["net_other"] = "allowed" if facts.get("net", set()) - {"lo"} else "denied"
    res["hidden_tmp"] = res.get("hidden_0", "missing")
    res["hidden_home"] = res.get("hidden_1", "missing")
    return r.returncode, res, facts


def forbidden(key, value):
    """What the self-check must find refused under key=value."""
    on = value not in ("no", "false", "0", "off", "")
    if key == "NoNewPrivileges" and on:
        return ["no_new_privs"]
    if key == "CapabilityBoundingSet" and "CAP_SYS_ADMIN" not in value.split():
        return ["cap_sys_admin"]
    if key == "ProtectSystem":
        return {"strict": ["write_root", "write_usr", "write_etc", "write_var"],
                "full": ["write_usr", "write_etc"]}.get(value, ["write_usr"] if on else [])
    if key == "ProtectHome" and value in ("yes", "true", "1", "on"):
        return ["list_home", "list_root"] + (["hidden_home"] if homedir else [])
    if key == "RestrictAddressFamilies":
        return ["socket_" + af for af in ("inet", "inet6", "netlink")
                if "AF_" + af.upper() not in value.split()]
    table = {
        "PrivateTmp": ["hidden_tmp"], "PrivateDevices": ["dev_kmsg", "dev_other"],
        "PrivateNetwork": ["net_other"], "ProtectKernelTunables": ["proc_sys", "sys"],
        "ProtectKernelModules": ["module", "modules_dir"], "ProtectKernelLogs": ["syslog"],
        "ProtectControlGroups": ["cgroup"], "ProtectClock": ["clock"],
        "ProtectHostname": ["hostname"], "RestrictNamespaces": ["unshare"],
        "RestrictRealtime": ["realtime"], "RestrictSUIDSGID": ["suid"],
        "LockPersonality": ["personality"], "MemoryDenyWriteExecute": ["mmap_wx", "mprotect_x"],
        "SystemCallArchitectures": ["abi_i386"], "SystemCallFilter": ["ptrace"],
    }
    return table.get(key, []) if on else []


# What the daemon needs, allowed under the whole sandbox.
NEEDED = ["write_runtime", "dev_null", "socket_unix", "thread", "userfaultfd", "io_uring", "memfd"]

# 2. Outside the sandbox first: a check that is refused there already proves nothing.
rc, base, base_facts = self_check(CHECK)
check(rc == 0, "self-check outside the sandbox runs")
untestable = sorted(k for k, v in base.items() if v != "allowed" and not k.startswith("hidden_"))
if untestable:
    print("note: refused even outside the sandbox, not evidence here: " + " ".join(untestable))

for key, value in directives.items():
    want = [c for c in forbidden(key, value) if base.get(c) == "allowed"]
    if key in ("SystemCallErrorNumber", "RuntimeDirectory", "StateDirectory"):
        continue
    only = [key, "SystemCallErrorNumber"] if key == "SystemCallFilter" else [key]
    rc, res, _ = self_check(sandboxed(CHECK, only))
    bad = ["%s: %s" % (c, res.get(c, "missing")) for c in want
           if not res.get(c, "").startswith("denied")]
    check(rc == 0 and not bad and (want or not forbidden(key, value)),
          "%s alone refuses %s" % (key, ", ".join(want) or "(nothing testable here)")
          + ("" if not bad else " -- but: " + "; ".join(bad)))

rc, res, facts = self_check(sandboxed(CHECK))
check(rc == 0, "self-check under every directive runs")
for key, value in directives.items():
    for c in forbidden(key, value):
        if base.get(c) == "allowed":
            check(res.get(c, "").startswith("denied"),
                  "all together: %s -> %s %s" % (key, c, res.get(c)))
for c in NEEDED + (["write_tmp"] if directives.get("PrivateTmp") == "yes" else []):
    check(res.get(c) == "allowed", "all together: the daemon may still %s (%s)" % (c, res.get(c)))
if "SystemCallFilter" in directives:
    err = directives.get("SystemCallErrorNumber", "EPERM")
    check(res.get("ptrace") == "denied " + err,
          "a system call out of the filter fails with %s (%s)" % (err, res.get("ptrace")))
if "CapabilityBoundingSet" in directives:
    want = set(directives["CapabilityBoundingSet"].split())
    check(facts.get("caps") == want,
          "capabilities are the unit's: " + ",".join(sorted(facts.get("caps", []))))
if directives.get("PrivateDevices") == "yes":
    check(facts.get("dev", set()) <= MINIMAL_DEV,
          "/dev holds only " + ",".join(sorted(facts.get("dev", []))))
if directives.get("PrivateNetwork") == "yes":
    check(facts.get("net") == {"lo"},
          "network interfaces: " + ",".join(sorted(facts.get("net", []))))


# 3. The daemon under all of it, with real clients.
sock = os.path.join(runtime, "upager.sock")
lsock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
lsock.bind(sock)
os.chmod(sock, 0o666)
lsock.listen(128)
mgr = Manager(os.path.join(rt, "notify"))
log_path = os.path.join(rt, "upagerd.log")
log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
env = dict(os.environ, UPAGER_SOCKET=sock)


daemons, clients = [], []


def start():
    since = len(mgr.messages)
    pid = mgr.start(sandboxed([upagerd, "--verbose", "--socket", sock]), listen_fd=lsock.fileno(),
                    stderr=log)
    daemons.append(pid)
    check(mgr.wait_for("READY=1", 30, since) is not None, "sandboxed upagerd %d says READY=1" % pid)
    # The daemon itself, not only the launcher's self-check, is under the sandbox.
    with open("/proc/%d/status" % pid) as f:
        st = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
    me = {n: os.readlink("/proc/self/ns/" + n) for n in ("mnt", "net")}
    check(st.get("Seccomp", "").strip() == "2" and int(st.get("Seccomp_filters", "0")) >= 1
          and st.get("NoNewPrivs", "").strip() == ("1" if "NoNewPrivileges" in directives else "0")
          and all(os.readlink("/proc/%d/ns/%s" % (pid, n)) != me[n] for n in me),
          "upagerd %d runs filtered (%s filters), with no_new_privs, in its own mount and network "
          "namespaces" % (pid, st.get("Seccomp_filters", "?").strip()))
    # CAP_SYS_ADMIN made its fanotify group and is gone before the first client.
    admin = 1 << 21
    fds = []
    for n in os.listdir("/proc/%d/fd" % pid):
        try:
            fds.append(os.readlink("/proc/%d/fd/%s" % (pid, n)))
        except FileNotFoundError:
            pass  # closed meanwhile: the daemon reads files of /proc now and then
    check(not any(int(st.get(k, "0").strip(), 16) & admin for k in ("CapEff", "CapPrm", "CapInh"))
          and ("CAP_SYS_ADMIN" not in directives.get("CapabilityBoundingSet", "")
               or "anon_inode:[fanotify]" in fds),
          "upagerd %d has a fanotify group and no CAP_SYS_ADMIN left (CapEff %s, CapPrm %s)"
          % (pid, st.get("CapEff", "?").strip(), st.get("CapPrm", "?").strip()))
    if "UMask" in directives:
        check(int(st.get("Umask", "0"), 8) == int(directives["UMask"], 8),
              "upagerd %d runs with UMask=%s (%s)" % (pid, directives["UMask"],
                                                       st.get("Umask", "?").strip()))
    return pid


def stop(pid, what):
    os.kill(pid, signal.SIGTERM)
    _, st = os.waitpid(pid, 0)
    daemons.remove(pid)
    check(os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0, what)


try:
    d = start()
    try:
        cl = subprocess.run([client_bin, os.path.join(clientdir, "data")], env=env,
                            capture_output=True, text=True, timeout=60)
        out, rc = cl.stdout, cl.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.stdout or b"").decode() + "timed out\n", -1
    for line in out.splitlines():
        print("  client: " + line)
    check(rc == 0 and "done ok" in out,
          "a client whose file the daemon cannot see by name: shared, anonymous, MAP_POPULATE, "
          "nonlinear, MAP_GROWSDOWN, read(2) seeing a shared mapping's write")

    path, nlpath = os.path.join(clientdir, "steps"), os.path.join(clientdir, "nonlinear")
    with open(path, "wb") as f:
        f.write(b"".join(file_pattern(p, 0) for p in range(STEPS)))
    with open(nlpath, "wb") as f:
        f.write(b"".join(file_pattern(p, 1) for p in range(NL_PAGES)))
    rc_proc = subprocess.Popen([restart_bin, path, nlpath, str(STEPS), "3000"], env=env,
                               stdout=subprocess.PIPE, text=True)
    clients.append(rc_proc)
    client = Lines(rc_proc)
    check(client.wait_line("step 128", 60), "a busy client (threads, fork, msync) works")
    stop(d, "SIGTERM: the sandboxed daemon exits with 0")
    d = start()
    try:
        rc_proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        rc_proc.kill()
    client.wait_line("EOF", 10)
    bad = [line for line in client.lines if line.startswith("FAIL")]
    check(rc_proc.returncode == 0 and "done ok" in client.lines,
          "the busy client goes on through a restart from the fd store: "
          + "; ".join(bad[:5] or ["all good"]))
    stop(d, "SIGTERM: upagerd exits with 0 again")
finally:
    kill_all(clients, daemons)
    mgr.close()
    lsock.close()
    os.close(log)

with open(log_path) as f:
    text = f.read()
if failures:
    print("upagerd's log:\n" + text)
serious = [line for line in text.splitlines()
           if re.match(r"<[0-4]>", line) or "not permitted" in line or "EPERM" in line
           or "sandbox-launch" in line]
check(text.count("\n") > 10 and not serious,
      "the daemon's log (%d lines, --verbose) has no error, warning or EPERM: %s"
      % (text.count("\n"), " | ".join(serious[:5]) or "none"))

sys.exit(1 if failures else 0)
