/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * upager-bench: shared declarations of the benchmark's parts. The program measures upager next to a
 * reference measured in the same run: the kernel's own mmap, or "the floor", a minimal userfaultfd
 * handler in another process (floor.c). Functions return 0 or a negative errno unless said
 * otherwise.
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PAGE 4096UL
#define KIB 1024UL
#define MIB (1024UL * 1024)
#define MAX_REPEAT 15

/* upager-bench.c: what this run measures, fixed by the options. */
struct bench_config {
	bool quick;
	size_t big; /* figures 2 to 7 */
	size_t pair; /* figure 8, each of the two files */
	size_t rnd; /* figure 1 */
	unsigned samples, repeat, alarm_s;
	unsigned figures; /* bit n: run figure n */
	const char *upagerd;
	char dir[64];
	char big_path[128], rnd_path[128], pair_path[2][128], log_path[128];
};

extern struct bench_config cfg;
extern volatile sig_atomic_t current_figure;

/* The figures, one function each. */
void fig_random(void);
void fig_seq_cold(void);
void fig_seq_page_cache(void);
void fig_seq_second(void);
void fig_populate_warm(void);
void fig_populate_cold(void);
void fig_populate_nonblock(void);
void fig_two_clients(void);
int reader_main(int sock, const char *path, bool kernel);

/* report.c: the table, its rows and the notes under it. */
void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *fmt_time(char *buf, size_t size, double ns);
const char *fmt_rate(char *buf, size_t size, size_t bytes, double ns);
void add_row(const char *name, const char *ours, const char *ref, double ratio, char op, double x,
	     bool ok, bool cold, bool extra);
void add_error_row(const char *name, const char *what, int err);
void add_rate_row(const char *name, const double *ours, size_t ours_bytes, const double *ref,
		  size_t ref_bytes, const char *ref_name, char op, double x, bool ok, bool cold);
bool report_failed(void);
void report_fail(void);
void print_table(void);

/* runs.c: single timed runs, cold caches, pinning, and what the daemon did meanwhile. */
struct daemon_use {
	uint64_t runs, faults, cpu_ns, wall_ns;
};

int open_ro(const char *path);
bool make_cold(const int *fds, const size_t *sizes, int n);
void pin_with(int cpu, pid_t other);
void unpin_with(int cpu, pid_t other);
void daemon_use_begin(struct daemon_use *u, struct daemon_use *snap);
void daemon_use_end(struct daemon_use *u, const struct daemon_use *snap, uint64_t wall_ns);
void daemon_use_note(const char *what, const struct daemon_use *u, size_t bytes_per_run);
int64_t upager_seq(int fd, size_t len, int cpu, bool *ok, struct daemon_use *use);
int64_t kernel_seq(int fd, size_t len, bool *ok);
int64_t floor_seq(int fd, size_t len, size_t block, int src, int cpu, bool *ok);
char *upager_warm(int fd, size_t len, bool *ok);

/* sys.c: clocks, test files, caches, page tables, CPUs, helper processes. */
uint64_t now_ns(void);
void sleep_ms(int ms);
double median(const double *v, unsigned n);

uint8_t page_byte(uint64_t page);
uint64_t expected_sum(uint64_t first_page, uint64_t pages);
int file_create(const char *path, size_t size);
int file_read_all(int fd, size_t length);
uint64_t touch_pages(const void *p, size_t length);

bool drop_caches(void);
long file_resident_pages(int fd, size_t offset, size_t length);
long mapped_pages(const void *p, size_t length);

int cpu_pick(void);
int pin_process(pid_t pid, int cpu);
void unpin_process(pid_t pid);
int pin_self(int cpu);
void pin_pair(int cpu, pid_t other);
void unpin_self(void);

const char *self_exe(void);
pid_t spawn_helper(const char *mode, int fd, const char *arg);
int wait_helper(pid_t pid, int timeout_ms);

/* wake.c: what waking a sleeping thread costs here, on one CPU and across two. */
int wake_us(int cpu_a, int cpu_b, double *us);
void wake_note(int cpu);

/* daemon.c: our own upagerd on a temporary socket, and its STATS. */
struct daemon_stats {
	uint32_t objects;
	uint64_t cached_pages, faults, pages_read, bytes_read;
	uint64_t pages_out, store_bytes_out; /* paged out; written to the swap store */
};

int daemon_start(const char *bin, const char *dir);
int daemon_start_private(const char *bin, char *dir_template);
const char *daemon_args(int argc, char **argv, bool *quick);
void daemon_stop(void);
pid_t daemon_pid(void);
bool daemon_alive(void);
int daemon_stats(struct daemon_stats *st);
int daemon_wait_empty(int timeout_ms);
uint64_t process_cpu_ns(pid_t pid);

/* floor.c: the reference handler. */
enum floor_source {
	FLOOR_MEMORY, /* the handler holds the file's data in its own memory */
	FLOOR_PREAD, /* the handler pread()s each block from the file (page cache) */
};

struct floor {
	pid_t pid;
	int sock;
	int uffd;
	void *area;
	size_t length;
};

int floor_start(struct floor *f, int file_fd, size_t length, size_t block, enum floor_source src);
void floor_stop(struct floor *f);
int floor_handler_main(int sock);
