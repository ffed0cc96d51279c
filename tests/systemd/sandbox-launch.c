// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * sandbox-launch: the sandbox of a unit's hardening directives, applied without systemd, the way
 * systemd applies it (namespaces and mounts, the capability bounding set, no_new_privs, seccomp
 * filters), then exec of a program (sandbox-test.py runs upagerd and clients under it).
 *
 * Usage: sandbox-launch --runtime-root DIR [DIRECTIVE=VALUE...] -- PROGRAM [ARG...]
 *        sandbox-launch --self-check RUNTIME_DIR [HIDDEN_FILE...]
 *
 * The directives are the unit's own lines, SystemCallFilter= with its groups already expanded
 * (systemd-analyze syscall-filter). A directive this launcher does not know is an error, so that a
 * directive added to the unit is not silently left out of the test. RuntimeDirectory=NAME is
 * DIR/NAME instead of /run/NAME, StateDirectory=NAME DIR/state-NAME (in $STATE_DIRECTORY)
 * instead of /var/lib/NAME. The program is opened before the mounts and run by descriptor:
 * it may live where the sandbox hides (a build directory under /tmp or /home).
 *
 * --self-check tries what the directives forbid and what the daemon needs, one line each:
 * "NAME allowed" or "NAME denied ERRNO", and a few facts ("caps", "dev", "net"), for the test to
 * compare with the unit and with a run outside the sandbox.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SHM_EXEC
#define SHM_EXEC 0100000
#endif

static const char *const cap_names[] = {
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_DAC_READ_SEARCH",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",
	"CAP_NET_RAW",
	"CAP_IPC_LOCK",
	"CAP_IPC_OWNER",
	"CAP_SYS_MODULE",
	"CAP_SYS_RAWIO",
	"CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",
	"CAP_SYS_ADMIN",
	"CAP_SYS_BOOT",
	"CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",
	"CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG",
	"CAP_MKNOD",
	"CAP_LEASE",
	"CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL",
	"CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN",
	"CAP_SYSLOG",
	"CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",
	"CAP_AUDIT_READ",
	"CAP_PERFMON",
	"CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
};
#define N_CAPS (sizeof(cap_names) / sizeof(cap_names[0]))

enum protect_system {
	PS_NO,
	PS_YES,
	PS_FULL,
	PS_STRICT
};
enum protect_home {
	PH_NO,
	PH_YES,
	PH_READ_ONLY
};

struct sandbox {
	bool no_new_privs;
	bool caps_set;
	uint64_t caps;
	enum protect_system protect_system;
	enum protect_home protect_home;
	bool private_tmp, private_devices, private_network, private_mounts;
	int umask; /* UMask=, or -1 */
	bool protect_tunables, protect_modules, protect_logs, protect_cgroups, protect_clock;
	bool protect_hostname;
	bool families_set;
	int families[8];
	int n_families;
	bool restrict_namespaces, restrict_realtime, restrict_suid_sgid;
	bool lock_personality, mdwe, native_only;
	char *syscalls; /* space-separated allow list, groups expanded; NULL for none */
	int syscall_errno;
	const char *runtime_root;
	char *runtime_dirs[8];
	int n_runtime_dirs;
	char *state_dirs[8]; /* StateDirectory=: DIR/state-NAME, named in $STATE_DIRECTORY */
	int n_state_dirs;
};

static void die(const char *what, int err)
{
	fprintf(stderr, "sandbox-launch: %s: %s\n", what, strerror(err));
	exit(2);
}

static bool parse_bool(const char *key, const char *v)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "on"))
		return true;
	if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "off"))
		return false;
	fprintf(stderr, "sandbox-launch: %s=%s: not a boolean\n", key, v);
	exit(2);
}

static int cap_by_name(const char *name)
{
	for (size_t i = 0; i < N_CAPS; i++)
		if (!strcasecmp(name, cap_names[i]))
			return (int)i;
	return -1;
}

static int family_by_name(const char *name)
{
	static const struct {
		const char *name;
		int af;
	} t[] = { { "AF_UNIX", AF_UNIX },
		  { "AF_INET", AF_INET },
		  { "AF_INET6", AF_INET6 },
		  { "AF_NETLINK", AF_NETLINK },
		  { "AF_PACKET", AF_PACKET } };

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (!strcmp(name, t[i].name))
			return t[i].af;
	return -1;
}

static void parse_directive(struct sandbox *s, char *arg)
{
	char *v = strchr(arg, '='), *tok, *save;
	const char *k = arg;

	if (!v) {
		fprintf(stderr, "sandbox-launch: %s: not DIRECTIVE=VALUE\n", arg);
		exit(2);
	}
	*v++ = '\0';
	if (!strcmp(k, "NoNewPrivileges")) {
		s->no_new_privs = parse_bool(k, v);
	} else if (!strcmp(k, "CapabilityBoundingSet")) {
		s->caps_set = true;
		for (tok = strtok_r(v, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
			int c = cap_by_name(tok);

			if (c < 0) {
				fprintf(stderr, "sandbox-launch: unknown capability %s\n", tok);
				exit(2);
			}
			s->caps |= 1ULL << c;
		}
	} else if (!strcmp(k, "ProtectSystem")) {
		s->protect_system = !strcmp(v, "strict") ? PS_STRICT
				    : !strcmp(v, "full") ? PS_FULL
				    : parse_bool(k, v)	 ? PS_YES
							 : PS_NO;
	} else if (!strcmp(k, "ProtectHome")) {
		s->protect_home = !strcmp(v, "read-only") ? PH_READ_ONLY
				  : parse_bool(k, v)	  ? PH_YES
							  : PH_NO;
	} else if (!strcmp(k, "PrivateTmp")) {
		s->private_tmp = parse_bool(k, v);
	} else if (!strcmp(k, "PrivateDevices")) {
		s->private_devices = parse_bool(k, v);
	} else if (!strcmp(k, "PrivateNetwork")) {
		s->private_network = parse_bool(k, v);
	} else if (!strcmp(k, "PrivateMounts")) {
		/* The launcher always makes a mount namespace, a slave of the host's: as systemd
		 * does for this directive. */
		s->private_mounts = parse_bool(k, v);
	} else if (!strcmp(k, "IPAddressDeny")) {
		/* systemd's filter on the unit's cgroup (BPF), which this launcher does not install:
		 * under RestrictAddressFamilies=AF_UNIX and PrivateNetwork= there is no IP traffic
		 * for it to refuse anyway. Only "any" is known here. */
		if (strcmp(v, "any")) {
			fprintf(stderr, "sandbox-launch: IPAddressDeny=%s not handled\n", v);
			exit(2);
		}
	} else if (!strcmp(k, "UMask")) {
		char *end;
		long m = strtol(v, &end, 8);

		if (*end || end == v || m < 0 || m > 0777) {
			fprintf(stderr, "sandbox-launch: UMask=%s: not an octal mode\n", v);
			exit(2);
		}
		s->umask = (int)m;
	} else if (!strcmp(k, "ProtectKernelTunables")) {
		s->protect_tunables = parse_bool(k, v);
	} else if (!strcmp(k, "ProtectKernelModules")) {
		s->protect_modules = parse_bool(k, v);
	} else if (!strcmp(k, "ProtectKernelLogs")) {
		s->protect_logs = parse_bool(k, v);
	} else if (!strcmp(k, "ProtectControlGroups")) {
		s->protect_cgroups = parse_bool(k, v);
	} else if (!strcmp(k, "ProtectClock")) {
		s->protect_clock = parse_bool(k, v);
	} else if (!strcmp(k, "ProtectHostname")) {
		s->protect_hostname = parse_bool(k, v);
	} else if (!strcmp(k, "RestrictAddressFamilies")) {
		s->families_set = true;
		for (tok = strtok_r(v, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
			int af = family_by_name(tok);

			if (af < 0 || s->n_families == 8) {
				fprintf(stderr, "sandbox-launch: address family %s not handled\n",
					tok);
				exit(2);
			}
			s->families[s->n_families++] = af;
		}
	} else if (!strcmp(k, "RestrictNamespaces")) {
		s->restrict_namespaces = parse_bool(k, v);
	} else if (!strcmp(k, "RestrictRealtime")) {
		s->restrict_realtime = parse_bool(k, v);
	} else if (!strcmp(k, "RestrictSUIDSGID")) {
		s->restrict_suid_sgid = parse_bool(k, v);
	} else if (!strcmp(k, "LockPersonality")) {
		s->lock_personality = parse_bool(k, v);
	} else if (!strcmp(k, "MemoryDenyWriteExecute")) {
		s->mdwe = parse_bool(k, v);
	} else if (!strcmp(k, "SystemCallArchitectures")) {
		if (strcmp(v, "native")) {
			fprintf(stderr, "sandbox-launch: SystemCallArchitectures=%s not handled\n",
				v);
			exit(2);
		}
		s->native_only = true;
	} else if (!strcmp(k, "SystemCallFilter")) {
		if (v[0] == '~' || strchr(v, '@')) {
			fprintf(stderr,
				"sandbox-launch: SystemCallFilter= wants an expanded allow list\n");
			exit(2);
		}
		s->syscalls = v;
	} else if (!strcmp(k, "SystemCallErrorNumber")) {
		s->syscall_errno = !strcmp(v, "EPERM") ? EPERM : !strcmp(v, "ENOSYS") ? ENOSYS : -1;
		if (s->syscall_errno < 0) {
			fprintf(stderr, "sandbox-launch: SystemCallErrorNumber=%s not handled\n",
				v);
			exit(2);
		}
	} else if (!strcmp(k, "RuntimeDirectory")) {
		for (tok = strtok_r(v, " ", &save); tok && s->n_runtime_dirs < 8;
		     tok = strtok_r(NULL, " ", &save))
			s->runtime_dirs[s->n_runtime_dirs++] = tok;
	} else if (!strcmp(k, "StateDirectory")) {
		for (tok = strtok_r(v, " ", &save); tok && s->n_state_dirs < 8;
		     tok = strtok_r(NULL, " ", &save))
			s->state_dirs[s->n_state_dirs++] = tok;
	} else {
		fprintf(stderr, "sandbox-launch: directive %s not known\n", k);
		exit(2);
	}
}

/* ---- mounts ---- */

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static void do_mount(const char *src, const char *dst, const char *type, unsigned long flags,
		     const char *data)
{
	if (mount(src, dst, type, flags, data) < 0) {
		char what[8300];

		snprintf(what, sizeof(what), "mount %s on %s", src ? src : "(none)", dst);
		die(what, errno);
	}
}

static void set_readonly(const char *path, bool ro, bool recursive)
{
	struct mount_attr a = { 0 };

	if (ro)
		a.attr_set = MOUNT_ATTR_RDONLY;
	else
		a.attr_clr = MOUNT_ATTR_RDONLY;
	if (mount_setattr(AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &a, sizeof(a)) < 0)
		die(path, errno);
}

/* An empty directory nobody may write to, as systemd's /run/systemd/inaccessible/dir. */
static void make_inaccessible(const char *path)
{
	if (!exists(path))
		return;
	do_mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=000");
	set_readonly(path, true, false);
}

/* The minimal /dev of PrivateDevices=: host nodes reached by descriptor, a new tmpfs over /dev. */
static void private_dev(void)
{
	static const char *const nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };
	int fds[6], shm;
	char src[64], dst[64];

	for (int i = 0; i < 6; i++) {
		snprintf(src, sizeof(src), "/dev/%s", nodes[i]);
		fds[i] = open(src, O_PATH | O_CLOEXEC);
	}
	shm = open("/dev/shm", O_PATH | O_DIRECTORY | O_CLOEXEC);
	do_mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC | MS_STRICTATIME, "mode=0755");
	for (int i = 0; i < 6; i++) {
		if (fds[i] < 0)
			continue;
		snprintf(dst, sizeof(dst), "/dev/%s", nodes[i]);
		snprintf(src, sizeof(src), "/proc/self/fd/%d", fds[i]);
		close(open(dst, O_CREAT | O_WRONLY | O_CLOEXEC, 0666));
		do_mount(src, dst, NULL, MS_BIND, NULL);
		close(fds[i]);
	}
	if (shm >= 0) {
		snprintf(src, sizeof(src), "/proc/self/fd/%d", shm);
		mkdir("/dev/shm", 01777);
		do_mount(src, "/dev/shm", NULL, MS_BIND | MS_REC, NULL);
		close(shm);
	}
	if (symlink("/proc/self/fd", "/dev/fd") < 0 ||
	    symlink("/proc/self/fd/0", "/dev/stdin") < 0 ||
	    symlink("/proc/self/fd/1", "/dev/stdout") < 0 ||
	    symlink("/proc/self/fd/2", "/dev/stderr") < 0)
		die("/dev symlinks", errno);
}

static void apply_mounts(struct sandbox *s)
{
	char path[4096];
	int devnull = open("/dev/null", O_PATH | O_CLOEXEC);

	/* Nothing done here reaches the host's mount namespace. */
	do_mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL);

	for (int i = 0; i < s->n_runtime_dirs; i++) {
		snprintf(path, sizeof(path), "%s/%s", s->runtime_root, s->runtime_dirs[i]);
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			die(path, errno);
		do_mount(path, path, NULL, MS_BIND, NULL);
	}
	for (int i = 0; i < s->n_state_dirs; i++) {
		snprintf(path, sizeof(path), "%s/state-%s", s->runtime_root, s->state_dirs[i]);
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			die(path, errno);
		do_mount(path, path, NULL, MS_BIND, NULL);
		if (i == 0)
			setenv("STATE_DIRECTORY", path, 1);
	}
	if (s->private_tmp) {
		do_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
		if (exists("/var/tmp"))
			do_mount("tmpfs", "/var/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	}
	if (s->private_devices)
		private_dev();
	if (s->protect_home == PH_YES) {
		make_inaccessible("/home");
		make_inaccessible("/root");
		make_inaccessible("/run/user");
	}
	if (s->protect_modules) {
		make_inaccessible("/usr/lib/modules");
		if (realpath("/lib/modules", path) && strcmp(path, "/usr/lib/modules"))
			make_inaccessible("/lib/modules");
	}
	if (s->protect_logs && devnull >= 0) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", devnull);
		do_mount(path, "/proc/kmsg", NULL, MS_BIND, NULL);
	}

	/* Read-only parts; the API file systems and the writable directories after. */
	if (s->protect_system == PS_STRICT) {
		set_readonly("/", true, true);
		set_readonly("/dev", false, true);
		set_readonly("/proc", false, true);
		if (!s->protect_tunables)
			set_readonly("/sys", false, true);
	} else if (s->protect_system != PS_NO) {
		static const char *const dirs[] = { "/usr", "/boot", "/efi", "/etc" };

		for (int i = 0; i < (s->protect_system == PS_FULL ? 4 : 3); i++) {
			if (!exists(dirs[i]))
				continue;
			do_mount(dirs[i], dirs[i], NULL, MS_BIND | MS_REC, NULL);
			set_readonly(dirs[i], true, true);
		}
	}
	if (s->protect_home == PH_READ_ONLY) {
		static const char *const dirs[] = { "/home", "/root", "/run/user" };

		for (int i = 0; i < 3; i++) {
			if (!exists(dirs[i]))
				continue;
			do_mount(dirs[i], dirs[i], NULL, MS_BIND | MS_REC, NULL);
			set_readonly(dirs[i], true, true);
		}
	}
	if (s->private_tmp) {
		set_readonly("/tmp", false, false);
		if (exists("/var/tmp"))
			set_readonly("/var/tmp", false, false);
	}
	for (int i = 0; i < s->n_runtime_dirs; i++) {
		snprintf(path, sizeof(path), "%s/%s", s->runtime_root, s->runtime_dirs[i]);
		set_readonly(path, false, false);
	}
	for (int i = 0; i < s->n_state_dirs; i++) {
		snprintf(path, sizeof(path), "%s/state-%s", s->runtime_root, s->state_dirs[i]);
		set_readonly(path, false, false);
	}
	if (s->protect_tunables) {
		static const char *const files[] = { "/proc/sys", "/proc/sysrq-trigger", "/sys" };

		for (int i = 0; i < 3; i++) {
			if (!exists(files[i]))
				continue;
			do_mount(files[i], files[i], NULL, MS_BIND | MS_REC, NULL);
			set_readonly(files[i], true, true);
		}
	}
	if (s->protect_cgroups && exists("/sys/fs/cgroup")) {
		do_mount("/sys/fs/cgroup", "/sys/fs/cgroup", NULL, MS_BIND | MS_REC, NULL);
		set_readonly("/sys/fs/cgroup", true, true);
	}
	if (devnull >= 0)
		close(devnull);
}

/* PrivateNetwork=: a new network namespace with only lo, and lo up, as systemd leaves it. */
static void loopback_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		die("lo", errno);
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		die("lo up", errno);
	close(fd);
}

/* ---- seccomp ---- */

static scmp_filter_ctx filter_new(const struct sandbox *s, uint32_t def)
{
	scmp_filter_ctx ctx = seccomp_init(def);

	if (!ctx)
		die("seccomp_init", ENOMEM);
	/* NoNewPrivileges= decides, not libseccomp's default. */
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	/* Without SystemCallArchitectures=native the other x86 ABIs pass too, as under systemd. */
	if (!s->native_only && seccomp_arch_native() == SCMP_ARCH_X86_64) {
		seccomp_arch_add(ctx, SCMP_ARCH_X86);
		seccomp_arch_add(ctx, SCMP_ARCH_X32);
	}
	return ctx;
}

static void rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
		 struct scmp_arg_cmp cmp)
{
	int nr = seccomp_syscall_resolve_name(name);
	int r;

	if (nr == __NR_SCMP_ERROR)
		return;
	r = n ? seccomp_rule_add(ctx, action, nr, 1, cmp) : seccomp_rule_add(ctx, action, nr, 0);
	if (r < 0 && r != -EDOM) {
		char what[128];

		snprintf(what, sizeof(what), "seccomp rule for %s", name);
		die(what, -r);
	}
}

static void filter_load(scmp_filter_ctx ctx, const char *what)
{
	int r = seccomp_load(ctx);

	if (r < 0)
		die(what, -r);
	seccomp_release(ctx);
}

static void apply_seccomp(const struct sandbox *s)
{
	static const unsigned long ns_flags[] = { CLONE_NEWNS,	   CLONE_NEWUTS, CLONE_NEWIPC,
						  CLONE_NEWUSER,   CLONE_NEWPID, CLONE_NEWNET,
						  CLONE_NEWCGROUP, 0x80 /* CLONE_NEWTIME */ };
	const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
	struct scmp_arg_cmp none = { 0 };
	scmp_filter_ctx ctx;

	if (s->mdwe) {
		ctx = filter_new(s, SCMP_ACT_ALLOW);
		rule(ctx, eperm, "mmap", 1,
		     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC | PROT_WRITE, PROT_EXEC | PROT_WRITE));
		rule(ctx, eperm, "mprotect", 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC));
		rule(ctx, eperm, "pkey_mprotect", 1,
		     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC));
		rule(ctx, eperm, "shmat", 1, SCMP_A2(SCMP_CMP_MASKED_EQ, SHM_EXEC, SHM_EXEC));
		filter_load(ctx, "MemoryDenyWriteExecute");
	}
	if (s->families_set) {
		/* Only one family allowed, as in the unit; more would need ranges, as systemd does. */
		if (s->n_families != 1)
			die("RestrictAddressFamilies= with more than one family", EINVAL);
		ctx = filter_new(s, SCMP_ACT_ALLOW);
		rule(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", 1,
		     SCMP_A0(SCMP_CMP_NE, (scmp_datum_t)s->families[0]));
		filter_load(ctx, "RestrictAddressFamilies");
	}
	if (s->restrict_namespaces) {
		ctx = filter_new(s, SCMP_ACT_ALLOW);
		rule(ctx, eperm, "setns", 0, none);
		for (size_t i = 0; i < sizeof(ns_flags) / sizeof(ns_flags[0]); i++) {
			rule(ctx, eperm, "unshare", 1,
			     SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
			rule(ctx, eperm, "clone", 1,
			     SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
		}
		/* clone3's flags are out of reach of seccomp: ENOSYS makes glibc fall back to clone. */
		rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, none);
		filter_load(ctx, "RestrictNamespaces");
	}
	if (s->lock_personality) {
		ctx = filter_new(s, SCMP_ACT_ALLOW);
		rule(ctx, eperm, "personality", 1, SCMP_A0(SCMP_CMP_NE, PER_LINUX));
		filter_load(ctx, "LockPersonality");
	}
	if (s->restrict_realtime) {
		ctx = filter_new(s, SCMP_ACT_ALLOW);
		rule(ctx, eperm, "sched_setscheduler", 1,
		     SCMP_A1(SCMP_CMP_MASKED_EQ, 0x7, SCHED_FIFO));
		rule(ctx, eperm, "sched_setscheduler", 1,
		     SCMP_A1(SCMP_CMP_MASKED_EQ, 0x7, SCHED_RR));
		rule(ctx, eperm, "sched_setscheduler", 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0x7, 6));
		/* sched_setattr carries its policy in memory: refused outright, as systemd does. */
		rule(ctx, eperm, "sched_setattr", 0, none);
		filter_load(ctx, "RestrictRealtime");
	}
	if (s->restrict_suid_sgid) {
		ctx = filter_new(s, SCMP_ACT_ALLOW);
		rule(ctx, eperm, "chmod", 1, SCMP_A1(SCMP_CMP_MASKED_EQ, S_ISUID, S_ISUID));
		rule(ctx, eperm, "chmod", 1, SCMP_A1(SCMP_CMP_MASKED_EQ, S_ISGID, S_ISGID));
		rule(ctx, eperm, "fchmod", 1, SCMP_A1(SCMP_CMP_MASKED_EQ, S_ISUID, S_ISUID));
		rule(ctx, eperm, "fchmod", 1, SCMP_A1(SCMP_CMP_MASKED_EQ, S_ISGID, S_ISGID));
		rule(ctx, eperm, "fchmodat", 1, SCMP_A2(SCMP_CMP_MASKED_EQ, S_ISUID, S_ISUID));
		rule(ctx, eperm, "fchmodat", 1, SCMP_A2(SCMP_CMP_MASKED_EQ, S_ISGID, S_ISGID));
		rule(ctx, eperm, "mkdir", 1, SCMP_A1(SCMP_CMP_MASKED_EQ, S_ISUID, S_ISUID));
		rule(ctx, eperm, "mkdirat", 1, SCMP_A2(SCMP_CMP_MASKED_EQ, S_ISUID, S_ISUID));
		filter_load(ctx, "RestrictSUIDSGID");
	}
	if (s->protect_clock || s->protect_hostname || s->protect_logs || s->protect_modules) {
		static const char *const clock[] = { "adjtimex",	"clock_adjtime",
						     "clock_adjtime64", "clock_settime",
						     "clock_settime64", "settimeofday" };
		static const char *const modules[] = { "init_module", "finit_module",
						       "delete_module" };

		ctx = filter_new(s, SCMP_ACT_ALLOW);
		for (size_t i = 0; s->protect_clock && i < sizeof(clock) / sizeof(clock[0]); i++)
			rule(ctx, eperm, clock[i], 0, none);
		for (size_t i = 0; s->protect_modules && i < 3; i++)
			rule(ctx, eperm, modules[i], 0, none);
		if (s->protect_hostname) {
			rule(ctx, eperm, "sethostname", 0, none);
			rule(ctx, eperm, "setdomainname", 0, none);
		}
		if (s->protect_logs)
			rule(ctx, eperm, "syslog", 0, none);
		filter_load(ctx, "ProtectClock/ProtectHostname/ProtectKernelLogs/Modules");
	}
	/* Last: seccomp() itself is not in the allow list. */
	if (s->syscalls) {
		char *list = strdup(s->syscalls), *save, *tok;

		/* Without SystemCallErrorNumber=, systemd kills the process. */
		ctx = filter_new(s, s->syscall_errno ? SCMP_ACT_ERRNO((uint32_t)s->syscall_errno)
						     : SCMP_ACT_KILL_PROCESS);
		for (tok = strtok_r(list, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
			rule(ctx, SCMP_ACT_ALLOW, tok, 0, none);
		free(list);
		filter_load(ctx, "SystemCallFilter");
	} else if (s->native_only) {
		filter_load(filter_new(s, SCMP_ACT_ALLOW), "SystemCallArchitectures");
	}
}

static void drop_capabilities(const struct sandbox *s)
{
	for (int c = 0; c < 64; c++) {
		if (s->caps & (1ULL << c))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
			if (errno == EINVAL)
				break; /* past the kernel's last capability */
			die("PR_CAPBSET_DROP", errno);
		}
	}
}

static int launch(int argc, char **argv)
{
	struct sandbox s = { .umask = -1 };
	int i, exe, ns = CLONE_NEWNS;

	if (argc < 3 || strcmp(argv[1], "--runtime-root"))
		return 2;
	s.runtime_root = argv[2];
	for (i = 3; i < argc && strcmp(argv[i], "--"); i++)
		parse_directive(&s, argv[i]);
	if (i + 1 >= argc)
		return 2;
	exe = open(argv[i + 1], O_PATH | O_CLOEXEC);
	if (exe < 0)
		die(argv[i + 1], errno);

	if (s.private_network)
		ns |= CLONE_NEWNET;
	if (s.protect_hostname)
		ns |= CLONE_NEWUTS;
	if (unshare(ns) < 0)
		die("unshare", errno);
	if (s.private_network)
		loopback_up();
	apply_mounts(&s);
	if (s.caps_set)
		drop_capabilities(&s);
	if (s.no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die("PR_SET_NO_NEW_PRIVS", errno);
	if (s.umask >= 0)
		umask((mode_t)s.umask);
	apply_seccomp(&s);
	execveat(exe, "", argv + i + 1, environ, AT_EMPTY_PATH);
	die("execveat", errno);
	return 2;
}

/* ---- self-check ---- */

static void report(const char *name, int r)
{
	if (r >= 0)
		printf("%s allowed\n", name);
	else
		printf("%s denied %s\n", name, strerrorname_np(-r) ? strerrorname_np(-r) : "?");
}

static int sys_result(long r)
{
	return r < 0 ? -errno : 0;
}

static int try_open(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

/*
 * Run fn in a child, so that what it changes stays there; its exit status is -errno or 0, death by
 * SIGSYS (a seccomp kill, as of another ABI's system call) reads as -ENOSYS.
 */
static int in_child(int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(-fn());
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -ECHILD;
	if (WIFSIGNALED(status))
		return WTERMSIG(status) == SIGSYS ? -ENOSYS : -EINTR;
	return -WEXITSTATUS(status);
}

static int child_unshare(void)
{
	return sys_result(unshare(CLONE_NEWUTS));
}

static int child_ptrace(void)
{
	return sys_result(ptrace(PTRACE_TRACEME, 0, NULL, NULL));
}

static int child_realtime(void)
{
	struct sched_param p = { .sched_priority = 1 };

	return sys_result(sched_setscheduler(0, SCHED_FIFO, &p));
}

/* An i386 system call (getpid) through int 0x80: refused unless other ABIs are allowed. */
static int child_i386(void)
{
#if defined(__x86_64__)
	long r;

	__asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
	return r == getpid() ? 0 : r < 0 ? (int)r : -EINVAL;
#else
	return -EOPNOTSUPP;
#endif
}

static void *thread_fn(void *arg)
{
	return arg;
}

static int try_thread(void)
{
	pthread_t t;
	int r = pthread_create(&t, NULL, thread_fn, NULL);

	if (r)
		return -r;
	pthread_join(t, NULL);
	return 0;
}

static int try_socket(int af)
{
	int fd = socket(af, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

static int try_mmap_wx(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	munmap(p, 4096);
	return 0;
}

static int try_mprotect_x(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int r;

	if (p == MAP_FAILED)
		return -errno;
	r = sys_result(mprotect(p, 4096, PROT_READ | PROT_EXEC));
	munmap(p, 4096);
	return r;
}

static int try_personality(void)
{
	int old = personality(0xffffffff);

	if (personality(PER_LINUX32) < 0)
		return -errno;
	personality(old);
	return 0;
}

static int try_fd(long fd)
{
	if (fd < 0)
		return -errno;
	close((int)fd);
	return 0;
}

static int try_io_uring(void)
{
	struct io_uring_params p = { 0 };

	return try_fd(syscall(SYS_io_uring_setup, 4, &p));
}

static int try_hostname(void)
{
	char name[256] = "";

	if (gethostname(name, sizeof(name) - 1) < 0)
		return -errno;
	return sys_result(sethostname(name, strlen(name)));
}

static int try_suid(const char *dir)
{
	char path[4096];
	int fd, r;

	snprintf(path, sizeof(path), "%s/suid-probe", dir);
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	r = sys_result(fchmod(fd, 04755));
	close(fd);
	unlink(path);
	return r;
}

static int try_clock(void)
{
	struct timex t = { .modes = 0 };

	return sys_result(adjtimex(&t));
}

/* finit_module on no file: EBADF once the kernel looks, EPERM when refused before that. */
static int try_module(void)
{
	long r = syscall(SYS_finit_module, -1, "", 0);

	return r < 0 && errno == EPERM ? -EPERM : 0;
}

/* A directory that has entries: allowed; empty or unreadable: denied. */
static int try_listing(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int r = -ENOENT;

	if (!d)
		return -errno;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			r = 0;
	closedir(d);
	return r;
}

static void print_caps(void)
{
	uint64_t eff = 0;
	char line[256];
	FILE *f = fopen("/proc/self/status", "re");
	bool first = true;

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "CapEff:", 7))
			eff = strtoull(line + 7, NULL, 16);
	if (f)
		fclose(f);
	printf("caps ");
	for (size_t c = 0; c < N_CAPS; c++)
		if (eff & (1ULL << c)) {
			printf("%s%s", first ? "" : ",", cap_names[c]);
			first = false;
		}
	printf("\n");
}

static void print_dir(const char *label, const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	bool first = true;

	printf("%s ", label);
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.') {
			printf("%s%s", first ? "" : ",", e->d_name);
			first = false;
		}
	printf("\n");
	if (d)
		closedir(d);
}

static void print_net(void)
{
	char line[256];
	FILE *f = fopen("/proc/net/dev", "re");
	bool first = true;

	/* /proc/net/dev, not netlink: the address families are restricted. */
	printf("net ");
	while (f && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':'), *name = line;

		if (!colon)
			continue;
		*colon = '\0';
		while (*name == ' ')
			name++;
		printf("%s%s", first ? "" : ",", name);
		first = false;
	}
	printf("\n");
	if (f)
		fclose(f);
}

static int self_check(int argc, char **argv)
{
	const char *runtime = argv[2];
	int nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);

	report("no_new_privs", nnp == 1 ? -EPERM : 0);
	report("cap_sys_admin",
	       prctl(PR_CAPBSET_READ, cap_by_name("CAP_SYS_ADMIN")) == 1 ? 0 : -EPERM);
	report("write_root", sys_result(access("/", W_OK)));
	report("write_usr", sys_result(access("/usr", W_OK)));
	report("write_etc", sys_result(access("/etc", W_OK)));
	report("write_var", sys_result(access("/var", W_OK)));
	report("write_runtime", sys_result(access(runtime, W_OK)));
	report("write_tmp", sys_result(access("/tmp", W_OK)));
	for (int i = 3; i < argc; i++) {
		char name[64];

		snprintf(name, sizeof(name), "hidden_%d", i - 3);
		report(name, try_open(argv[i], O_RDONLY));
	}
	report("list_home", try_listing("/home"));
	report("list_root", try_listing("/root"));
	report("dev_null", try_open("/dev/null", O_RDWR));
	report("dev_kmsg", try_open("/dev/kmsg", O_RDONLY | O_NONBLOCK));
	report("socket_unix", try_socket(AF_UNIX));
	report("socket_inet", try_socket(AF_INET));
	report("socket_inet6", try_socket(AF_INET6));
	report("socket_netlink", try_socket(AF_NETLINK));
	report("unshare", in_child(child_unshare));
	report("thread", try_thread());
	report("mmap_wx", try_mmap_wx());
	report("mprotect_x", try_mprotect_x());
	report("personality", try_personality());
	report("abi_i386", in_child(child_i386));
	report("ptrace", in_child(child_ptrace));
	report("userfaultfd", try_fd(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK)));
	report("io_uring", try_io_uring());
	report("memfd", try_fd(memfd_create("probe", MFD_CLOEXEC)));
	report("proc_sys", sys_result(access("/proc/sys/vm/overcommit_memory", W_OK)));
	report("sys", sys_result(access("/sys/kernel", W_OK)));
	report("cgroup", sys_result(access("/sys/fs/cgroup", W_OK)));
	report("syslog", sys_result(klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0)));
	report("module", try_module());
	report("modules_dir", try_listing("/usr/lib/modules"));
	report("clock", try_clock());
	report("hostname", try_hostname());
	report("realtime", in_child(child_realtime));
	report("suid", try_suid(runtime));
	print_caps();
	print_dir("dev", "/dev");
	print_net();
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "--self-check"))
		return self_check(argc, argv);
	if (launch(argc, argv) == 2)
		fprintf(stderr,
			"usage: sandbox-launch --runtime-root DIR [DIRECTIVE=VALUE...] -- "
			"PROGRAM [ARG...]\n"
			"       sandbox-launch --self-check RUNTIME_DIR [HIDDEN_FILE...]\n");
	return 2;
}
