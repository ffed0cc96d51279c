/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Integration test harness: each test runs in its own process (Criterion forks) with its own
 * upagerd on a temporary socket. The built daemon's path comes from $UPAGERD, set by meson.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/codec.h"

#define PAGE 4096UL

/* A -Db_sanitize build (meson defines UPAGER_SANITIZED): its allocator maps memory at any time. */
#ifdef UPAGER_SANITIZED
#define RUNNING_UNDER_SANITIZER 1
#else
#define RUNNING_UNDER_SANITIZER 0
#endif

struct region_info {
	uint64_t start, length, offset, resident_pages, faults, object_id;
	uint64_t pages_populated, pages_read, bytes_read, latency_avg_ns, latency_max_ns;
	uint64_t grown_pages, max_length; /* MAP_GROWSDOWN */
	uint64_t private_pages_out, private_pages_in; /* to and from the swap store */
	uint32_t pid, uid, prot, flags;
	char backing[256];
};

void harness_start(void);
void harness_start_args(const char *const *args);
void harness_stop(void);
pid_t harness_daemon_pid(void);
/* A crash of the daemon (SIGKILL, no fd store), and a new one on the same socket. */
void harness_daemon_kill(void);
void harness_daemon_restart(void);
void harness_bounded_wait(void);
const char *harness_socket(void);
const char *harness_tmpdir(void);
/* A daemon whose reads are 4 pages at most and whose second read fails to start. */
void harness_start_failing_read(void);
/* Whether the daemon's log holds what. */
bool harness_daemon_logged(const char *what);

/* The daemon's view of our (or another pid's) mappings; returns the count, fills up to max. */
int harness_list(pid_t pid, struct region_info *out, int max);
/* The region of pid that starts at addr; false if there is none. */
bool harness_region(pid_t pid, const void *addr, struct region_info *out);
int harness_stats(struct upager_msg *rep);
/* The daemon's bytes_written: what it wrote back to files since it started. */
uint64_t harness_bytes_written(void);
/* `upagerctl list --json` of this process into out; the command's wait status. */
int harness_ctl_list_json(char *out, size_t size);

/* Raw protocol access for the bad-input tests: a fresh connection. */
int harness_connect_raw(void);
/* The descriptor of this process that is the daemon's memfd called @name (a prefix up to a ':'). */
int harness_memfd_named(const char *name);
/* The library's token page in this process (one page, read-only, wiped on fork, registered), or 0. */
uintptr_t harness_token_page(void);

/* Our /proc/self/pagemap entry of the page at addr (bit 63 present, 56 a page of ours alone). */
uint64_t pagemap_entry(const void *addr);
/* Whether the page at addr is present in our page tables (/proc/self/pagemap bit 63). */
bool page_present(const void *addr);
/* Whether a read of @a raises SIGBUS; else its byte in *@out. */
bool harness_read_sigbus(const volatile char *a, char *out);
/* A file in the test's directory with size bytes, each 8-byte word holding its own offset. */
int make_pattern_file(const char *name, size_t size, char *path_out);
uint64_t pattern_at(uint64_t offset);
/* A monotonic clock in milliseconds. */
uint64_t harness_now_ms(void);
uint64_t harness_pattern_served_ms(int fd, uint64_t **out);
/* How many descriptors process pid has open. */
int harness_count_fds(pid_t pid);
/* A figure of /proc/PID/status ("RssAnon", "VmPTE"...), in KiB. */
uint64_t harness_status_kib(pid_t pid, const char *name);
/* Run fn in a child; return its wait status. */
int run_child(void (*fn)(void *), void *arg);
pid_t harness_fork(void);
/* Wait up to ms for cond(arg) to hold. */
bool wait_until(bool (*cond)(void *), void *arg, int ms);
/* Whether child pid ended within ms (its wait status in *status); if not, it is killed. */
bool harness_ended_within(pid_t pid, int ms, int *status);
