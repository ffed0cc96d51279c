# SPDX-License-Identifier: LGPL-2.1-or-later
"""The root nspawn-test.py boots: a minimal Debian of the host's release made by debootstrap from
the mirror apt uses, with systemd and the libraries the project's binaries link against. It is
made once and kept in /var/cache/upager-test/ (or $UPAGER_TEST_CACHE) under a key of the release,
the mirror and the package list, so that a new library dependency makes a new root."""
import fcntl
import glob
import hashlib
import os
import shutil
import subprocess
import time

CACHE = os.environ.get("UPAGER_TEST_CACHE", "/var/cache/upager-test")
# PID 1 and systemctl, systemd-analyze, journalctl; they talk to PID 1 on its private socket as
# root, so the root needs no D-Bus.
BASE_PACKAGES = ["systemd"]
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def release():
    with open("/etc/os-release") as f:
        fields = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    return fields.get("VERSION_CODENAME", "bookworm").strip('"')


def mirror(codename):
    """The first URI apt fetches codename's main component from."""
    stanzas = []
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(path) as f:
            stanzas += f.read().split("\n\n")
    for stanza in stanzas:
        fields = {}
        for line in stanza.splitlines():
            if ":" in line and not line.startswith(("#", " ")):
                k, v = line.split(":", 1)
                fields[k.strip()] = v.split()
        if ("deb" in fields.get("Types", []) and codename in fields.get("Suites", [])
                and "main" in fields.get("Components", []) and fields.get("URIs")):
            return fields["URIs"][0]
    lists = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list"))
    for path in lists:
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for line in f:
                words = [w for w in line.split() if not w.startswith("[")]
                if len(words) >= 4 and words[0] == "deb" and words[2] == codename:
                    return words[1]
    return "http://deb.debian.org/debian"


def _package_of(lib):
    for path in {lib, os.path.realpath(lib), lib.removeprefix("/usr"), "/usr" + lib}:
        r = subprocess.run(["dpkg-query", "-S", path], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":", 1)[0]
    return None  # not from a package: a library of this build


def packages_for(binaries):
    """The packages that hold the shared libraries binaries link against, with BASE_PACKAGES."""
    pkgs = set(BASE_PACKAGES)
    for b in binaries:
        out = subprocess.run(["ldd", b], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if "=> /" in line:
                pkg = _package_of(line.split("=>")[1].split()[0])
                if pkg:
                    pkgs.add(pkg)
    return sorted(pkgs)


def cached_root(binaries):
    """The path of a root for binaries, made now if the cache has none (a minute or a few)."""
    codename = release()
    url = mirror(codename)
    pkgs = packages_for(binaries)
    key = hashlib.sha256(" ".join([codename, url] + pkgs).encode()).hexdigest()[:12]
    root = os.path.join(CACHE, "nspawn-root-" + key)
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, "nspawn-root.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.isdir(root):
            print("root: %s (cached: %s, %s)" % (root, codename, " ".join(pkgs)), flush=True)
            return root
        # A root of another key, or one left half made, is of no more use.
        for old in glob.glob(os.path.join(CACHE, "nspawn-root-*")):
            if os.path.isdir(old):
                shutil.rmtree(old)
        tmp = root + ".tmp"
        cmd = ["debootstrap", "--variant=minbase", "--include=" + ",".join(pkgs)]
        if os.path.exists(KEYRING):
            cmd.append("--keyring=" + KEYRING)
        cmd += [codename, tmp, url]
        print("root: making %s: %s" % (root, " ".join(cmd)), flush=True)
        start = time.monotonic()
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=1500)
        if r.returncode != 0:
            print(r.stdout[-4000:])
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError("debootstrap failed with status %d" % r.returncode)
        os.rename(tmp, root)
        print("root: made in %.0f s" % (time.monotonic() - start), flush=True)
        return root
