// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * upagerctl as its users run it: the built binary ($UPAGERCTL) against the test's own upagerd,
 * its output checked against what the test mapped and touched, its exit codes and messages.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/mman.h"
#include "harness.h"
#include "upager.h"

TestSuite(ctl, .init = harness_start, .fini = harness_stop, .timeout = 60);

struct run {
	int status; /* exit code, or -1 if it did not exit */
	char out[16384], err[2048];
};

static void read_all(FILE *f, char *buf, size_t size)
{
	size_t n = fread(buf, 1, size - 1, f);

	buf[n] = 0;
}

/* Run "upagerctl --socket SOCKET <args>": its exit code, stdout and stderr. */
__attribute__((format(printf, 2, 3))) static void run_ctl(struct run *r, const char *fmt, ...)
{
	const char *ctl = getenv("UPAGERCTL");
	char args[512], cmd[1400], err_path[400];
	va_list ap;
	FILE *f;
	int status;

	cr_assert(ctl, "UPAGERCTL is not set; run the tests through meson test");
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(err_path, sizeof(err_path), "%s/ctl.err", harness_tmpdir());
	snprintf(cmd, sizeof(cmd), "%s --socket %s %s 2>%s", ctl, harness_socket(), args, err_path);
	f = popen(cmd, "r");
	cr_assert(f);
	read_all(f, r->out, sizeof(r->out));
	status = pclose(f);
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	f = fopen(err_path, "r");
	cr_assert(f);
	read_all(f, r->err, sizeof(r->err));
	fclose(f);
}

/* The value after "key:" on a line of the show block that starts at block, or NULL. */
static const char *field(const char *block, const char *key)
{
	size_t n = strlen(key);
	const char *line = block;

	while (*line && *line != '\n') { /* a blank line ends the block */
		const char *end = strchr(line, '\n');

		if (!strncmp(line, key, n) && line[n] == ':')
			return line + n + 1 + strspn(line + n + 1, " ");
		if (!end)
			break;
		line = end + 1;
	}
	return NULL;
}

static unsigned long long field_num(const char *block, const char *key)
{
	const char *v = field(block, key);
	unsigned long long x;

	cr_assert(v, "no '%s' in\n%s", key, block);
	cr_assert_eq(sscanf(v, "%llu", &x), 1, "'%s' is not a number in\n%s", key, block);
	return x;
}

static void assert_field(const char *block, const char *key, const char *value)
{
	const char *v = field(block, key);

	cr_assert(v, "no '%s' in\n%s", key, block);
	cr_assert(!strncmp(v, value, strlen(value)) && v[strlen(value)] == '\n',
		  "%s: expected '%s' in\n%s", key, value, block);
}

/* The number after "key": in a line of JSON; the key must be there. */
static unsigned long long json_num(const char *json, const char *key)
{
	char quoted[64];
	const char *at;
	unsigned long long x;

	snprintf(quoted, sizeof(quoted), "\"%s\": ", key);
	at = strstr(json, quoted);
	cr_assert(at, "no %s in %s", quoted, json);
	cr_assert_eq(sscanf(at + strlen(quoted), "%llu", &x), 1, "%s", at);
	return x;
}

/* The show block whose range starts at addr, or NULL. */
static const char *block_of(const char *out, const void *addr)
{
	char range[64];
	const char *at;

	snprintf(range, sizeof(range), "0x%" PRIxPTR "-", (uintptr_t)addr);
	at = strstr(out, range);
	if (!at)
		return NULL;
	while (at > out && !(at - out >= 2 && at[-1] == '\n' && at[-2] == '\n'))
		at--;
	return at;
}

static int count_of(const char *s, const char *what)
{
	int n = 0;

	for (const char *at = strstr(s, what); at; at = strstr(at + 1, what))
		n++;
	return n;
}

/* 8 anonymous pages with 0, 2 and 5 read; 16 file pages with 9, 3 and 14 read, no read-ahead. */
struct two_maps {
	char *anon, *file;
	char path[400];
};

static void map_two(struct two_maps *m)
{
	int fd = make_pattern_file("f", 16 * PAGE, m->path);

	m->anon = upager_mmap(NULL, 8 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(m->anon, MAP_FAILED);
	m->file = upager_mmap(NULL, 16 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert_neq(m->file, MAP_FAILED);
	close(fd);
	for (int i = 0; i < 8; i++)
		if (i == 0 || i == 2 || i == 5)
			cr_assert_eq(m->anon[i * PAGE], 0);
	/* Far apart and out of order: each is a random fault, one page read and mapped. */
	for (int i = 9; i != 0; i = i == 9 ? 3 : i == 3 ? 14 : 0)
		cr_assert_eq(*(uint64_t *)(m->file + i * PAGE), pattern_at((uint64_t)i * PAGE));
}

/* A MAP_DROPPABLE mapping shows as such. */
Test(ctl, show_names_a_droppable_mapping)
{
	static struct run r;
	void *p = upager_mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS, -1,
			      0);
	const char *b;

	cr_assert_neq(p, MAP_FAILED, "%m");
	run_ctl(&r, "show %d", (int)getpid());
	cr_assert_eq(r.status, 0, "exit %d, stderr %s", r.status, r.err);
	b = block_of(r.out, p);
	cr_assert(b, "no mapping at %p in\n%s", p, r.out);
	assert_field(b, "flags", "DROPPABLE|ANONYMOUS");
}

Test(ctl, show_pid_details_every_mapping_of_the_process)
{
	struct two_maps m;
	static struct run r;
	const char *a, *f;
	char range[80];

	map_two(&m);
	run_ctl(&r, "show %d", (int)getpid());
	cr_assert_eq(r.status, 0, "exit %d, stderr %s", r.status, r.err);
	cr_assert_eq(count_of(r.out, "\npid:") + !strncmp(r.out, "pid:", 4), 2,
		     "two mappings expected:\n%s", r.out);
	cr_assert_eq(count_of(r.out, "\n\n"), 1, "one blank line between two mappings:\n%s", r.out);

	a = block_of(r.out, m.anon);
	cr_assert(a, "no mapping at %p in\n%s", m.anon, r.out);
	cr_assert_eq(field_num(a, "pid"), (unsigned long long)getpid());
	cr_assert_eq(field_num(a, "uid"), (unsigned long long)getuid());
	snprintf(range, sizeof(range), "0x%" PRIxPTR "-0x%" PRIxPTR, (uintptr_t)m.anon,
		 (uintptr_t)m.anon + 8 * PAGE);
	assert_field(a, "range", range);
	assert_field(a, "length", "32KiB (32768 bytes)");
	assert_field(a, "prot", "r--");
	assert_field(a, "flags", "PRIVATE|ANONYMOUS");
	assert_field(a, "backing", "anon");
	cr_assert_eq(field_num(a, "faults"), 3);
	cr_assert_eq(field_num(a, "resident pages"), 3);
	cr_assert_eq(field_num(a, "pages read"), 0);
	assert_field(a, "nonlinear", "no");
	/* Private anonymous memory has no object, so no object figures. */
	assert_field(a, "object paged out", "-");
	assert_field(a, "object refaults", "-");

	f = block_of(r.out, m.file);
	cr_assert(f, "no mapping at %p in\n%s", m.file, r.out);
	assert_field(f, "length", "64KiB (65536 bytes)");
	assert_field(f, "flags", "SHARED");
	assert_field(f, "backing", m.path);
	cr_assert_eq(field_num(f, "offset"), 0);
	cr_assert_eq(field_num(f, "faults"), 3);
	cr_assert_eq(field_num(f, "resident pages"), 3);
	cr_assert_eq(field_num(f, "pages read"), 3);
	cr_assert_eq(field_num(f, "bytes read"), 3 * PAGE);
	cr_assert_eq(field_num(f, "pages populated"), 0);
	cr_assert_eq(field_num(f, "remapped ranges"), 0);
	cr_assert(strstr(f, "fault latency:"), "no latency in\n%s", f);
	/* Nothing was paged out: no budget is near. */
	cr_assert_eq(field_num(f, "object paged out"), 0);
	cr_assert_eq(field_num(f, "object refaults"), 0);
}

Test(ctl, show_address_details_the_mapping_that_contains_it)
{
	struct two_maps m;
	static struct run r;
	const char *f;

	map_two(&m);
	/* Inside the file mapping, not at its start; then its last byte. */
	run_ctl(&r, "show 0x%" PRIxPTR, (uintptr_t)m.file + 5 * PAGE + 123);
	cr_assert_eq(r.status, 0, "exit %d, stderr %s", r.status, r.err);
	cr_assert_eq(count_of(r.out, "pid:"), 1, "one mapping expected:\n%s", r.out);
	f = block_of(r.out, m.file);
	cr_assert(f, "not the mapping at %p:\n%s", m.file, r.out);
	cr_assert_eq(field_num(f, "faults"), 3);
	cr_assert_eq(field_num(f, "resident pages"), 3);
	assert_field(f, "length", "64KiB (65536 bytes)");

	run_ctl(&r, "show 0x%" PRIxPTR, (uintptr_t)m.anon + 8 * PAGE - 1);
	cr_assert_eq(r.status, 0, "exit %d, stderr %s", r.status, r.err);
	cr_assert_eq(count_of(r.out, "pid:"), 1, "one mapping expected:\n%s", r.out);
	cr_assert(block_of(r.out, m.anon), "not the mapping at %p:\n%s", m.anon, r.out);
}

Test(ctl, show_json_is_an_array_of_list_objects)
{
	struct two_maps m;
	static struct run r;
	char key[80];
	const char *at;
	unsigned long long faults, resident;

	map_two(&m);
	run_ctl(&r, "show --json 0x%" PRIxPTR, (uintptr_t)m.anon + PAGE);
	cr_assert_eq(r.status, 0, "exit %d, stderr %s", r.status, r.err);
	cr_assert(!strncmp(r.out, "[\n  {\"pid\": ", 12) && strstr(r.out, "}\n]\n"),
		  "not an array of objects:\n%s", r.out);
	cr_assert_eq(count_of(r.out, "\"pid\""), 1, "%s", r.out);
	snprintf(key, sizeof(key), "\"start\": %" PRIuPTR ", \"length\": %lu", (uintptr_t)m.anon,
		 8 * PAGE);
	cr_assert(strstr(r.out, key), "no %s in\n%s", key, r.out);
	at = strstr(r.out, "\"resident_pages\": ");
	cr_assert(at);
	cr_assert_eq(sscanf(at, "\"resident_pages\": %llu, \"faults\": %llu", &resident, &faults),
		     2, "%s", r.out);
	cr_assert_eq(resident, 3);
	cr_assert_eq(faults, 3);
	cr_assert(strstr(r.out, "\"fault_latency_max_ns\": "));
	cr_assert(strstr(r.out,
			 "\"remapped_ranges\": 0, \"grown_pages\": 0, \"max_length\": 0, "
			 "\"object_pages_out\": 0, \"object_refaults\": 0, "
			 "\"object_writeback_errors\": 0, \"pages_out\": 0, \"pages_in\": 0, "
			 "\"object_writeback_error\": null}"),
		  "%s", r.out);
}

Test(ctl, show_of_an_address_no_mapping_contains_exits_1)
{
	char *p = upager_mmap(NULL, 4 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	static struct run r;
	char msg[80];

	cr_assert_neq(p, MAP_FAILED);
	cr_assert_eq(upager_munmap(p + 2 * PAGE, 2 * PAGE), 0);
	run_ctl(&r, "show 0x%" PRIxPTR, (uintptr_t)p + 2 * PAGE);
	cr_assert_eq(r.status, 1, "exit %d, stdout\n%s", r.status, r.out);
	cr_assert_str_empty(r.out);
	snprintf(msg, sizeof(msg), "upagerctl: no mapping contains 0x%" PRIxPTR "\n",
		 (uintptr_t)p + 2 * PAGE);
	cr_assert_str_eq(r.err, msg);
	/* The page below is still mapped. */
	run_ctl(&r, "show 0x%" PRIxPTR, (uintptr_t)p + PAGE);
	cr_assert_eq(r.status, 0, "exit %d, stderr %s", r.status, r.err);
	cr_assert(strstr(r.out, "8KiB (8192 bytes)"), "%s", r.out);
}

Test(ctl, show_of_a_pid_without_mappings_exits_1)
{
	char *p = upager_mmap(NULL, 4 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	static struct run r;
	char msg[80];

	cr_assert_neq(p, MAP_FAILED);
	/* The daemon maps nothing through itself. */
	run_ctl(&r, "show %d", (int)harness_daemon_pid());
	cr_assert_eq(r.status, 1, "exit %d, stdout\n%s", r.status, r.out);
	cr_assert_str_empty(r.out);
	snprintf(msg, sizeof(msg), "upagerctl: pid %d has no mapping\n", (int)harness_daemon_pid());
	cr_assert_str_eq(r.err, msg);
}

Test(ctl, watch_count_2_prints_two_refreshes_and_the_fault_rate)
{
	const char *ctl = getenv("UPAGERCTL");
	char *p = upager_mmap(NULL, 64 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char cmd[600], row[64], line[1024];
	static char out[16384];
	unsigned long long faults[2];
	double rate[2];
	size_t len = 0;
	int heads = 0, status;
	FILE *f;

	cr_assert(ctl);
	cr_assert_neq(p, MAP_FAILED);
	for (int i = 0; i < 10; i++)
		(void)*(volatile char *)(p + i * PAGE);
	snprintf(cmd, sizeof(cmd), "%s --socket %s watch --count 2 --interval 1", ctl,
		 harness_socket());
	snprintf(row, sizeof(row), " %" PRIxPTR " ", (uintptr_t)p);
	f = popen(cmd, "r");
	cr_assert(f);
	/* The first refresh is out once our row is; 40 more faults then fall in the interval. */
	while (fgets(line, sizeof(line), f)) {
		cr_assert_lt(len + strlen(line), sizeof(out));
		strcpy(out + len, line);
		len += strlen(line);
		if (strstr(line, row))
			break;
	}
	cr_assert(strstr(out, row), "no row for %p in the first refresh:\n%s", p, out);
	for (int i = 10; i < 50; i++)
		(void)*(volatile char *)(p + i * PAGE);
	len += fread(out + len, 1, sizeof(out) - 1 - len, f);
	out[len] = 0;
	status = pclose(f);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);

	cr_assert_null(strchr(out, '\033'), "the screen was cleared though stdout is a pipe");
	cr_assert_eq(count_of(out, "PID     START"), 2, "two tables expected:\n%s", out);
	for (const char *at = strstr(out, "faults: "); at; at = strstr(at + 1, "\nfaults: ")) {
		cr_assert_lt(heads, 2, "more than two refreshes:\n%s", out);
		cr_assert_eq(sscanf(at + (*at == '\n'), "faults: %llu, faults/s: %lf",
				    &faults[heads], &rate[heads]),
			     2, "no fault rate in\n%s", at);
		heads++;
	}
	cr_assert_eq(heads, 2, "two refreshes expected:\n%s", out);
	cr_assert_eq(faults[0], 10);
	cr_assert_eq(faults[1], 50);
	/* 40 faults in the second's interval of about 1 s; the first counts from the start. */
	/* A slow machine may stretch the interval; 40 faults over up to 4 s is still > 10/s. */
	cr_assert(rate[1] > 10 && rate[1] <= 45, "faults/s %.1f for 40 faults in 1 s", rate[1]);
	cr_assert_gt(rate[0], 0);
	cr_assert(strstr(strstr(out, row) + 1, row), "no row for %p in the second refresh", p);
}

Test(ctl, watch_json_prints_one_object_per_refresh)
{
	char *p = upager_mmap(NULL, 4 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	static struct run r;
	char key[64];
	const char *second;

	cr_assert_neq(p, MAP_FAILED);
	(void)*(volatile char *)p;
	run_ctl(&r, "watch --json --count 2 --interval 0.2");
	cr_assert_eq(r.status, 0, "exit %d, stderr %s", r.status, r.err);
	cr_assert_eq(count_of(r.out, "\n"), 2, "two lines expected:\n%s", r.out);
	second = strchr(r.out, '\n') + 1;
	snprintf(key, sizeof(key), "\"start\": %" PRIuPTR ",", (uintptr_t)p);
	for (const char *l = r.out; l; l = l == r.out ? second : NULL) {
		cr_assert(!strncmp(l, "{\"stats\": {\"sessions\": ", 23), "%s", l);
		cr_assert(strstr(l, "\"faults\": 1, \"pages_read\": "), "%s", l);
		cr_assert(strstr(l, "}, \"faults_per_second\": "), "%s", l);
		cr_assert(strstr(l, ", \"mappings\": [{\"pid\": "), "%s", l);
		cr_assert(strstr(l, key), "%s", l);
		cr_assert(!strncmp(strchr(l, '\n') - 3, "}]}", 3), "%s", l);
	}
	cr_assert(strstr(second, "\"faults_per_second\": 0.0,"), "no fault in the interval: %s",
		  second);
}

Test(ctl, stats_json_has_every_key)
{
	static const char *const keys[] = {
		"sessions",
		"spaces",
		"regions",
		"objects",
		"cached_pages",
		"faults",
		"pages_read",
		"bytes_read",
		"bytes_written",
		"uptime_ms",
		"pages_populated",
		"bytes_from_page_cache",
		"fault_latency_p50_ns",
		"fault_latency_p99_ns",
		"fault_latency_max_ns",
		"budget_bytes",
		"memory_pages",
		"pages_out",
		"pages_written_out",
		"pages_in",
		"refaults",
		"over_budget",
		"swap_bytes",
		"swap_used_bytes",
	};
	char *p = upager_mmap(NULL, 8 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	static struct run r;
	char key[64];

	cr_assert_neq(p, MAP_FAILED);
	for (int i = 0; i < 4; i++)
		(void)*(volatile char *)(p + i * PAGE);
	run_ctl(&r, "stats --json");
	cr_assert_eq(r.status, 0, "exit %d, stderr %s", r.status, r.err);
	cr_assert(r.out[0] == '{' && !strcmp(r.out + strlen(r.out) - 2, "}\n"), "%s", r.out);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(key, sizeof(key), "\"%s\": ", keys[i]);
		cr_assert_eq(count_of(r.out, key), 1, "no %s in %s", key, r.out);
	}
	cr_assert(strstr(r.out, "\"regions\": 1, "), "%s", r.out);
	cr_assert(strstr(r.out, "\"faults\": 4, "), "%s", r.out);
	/* Parts are never more than their whole, whatever the budget. */
	cr_assert_leq(json_num(r.out, "pages_written_out"), json_num(r.out, "pages_out"), "%s",
		      r.out);
	cr_assert_leq(json_num(r.out, "swap_used_bytes"), json_num(r.out, "swap_bytes"), "%s",
		      r.out);
	cr_assert_eq(json_num(r.out, "budget_bytes") % PAGE, 0, "%s", r.out);
	cr_assert_eq(json_num(r.out, "swap_bytes") % PAGE, 0, "%s", r.out);
}

Test(ctl, stats_text_has_the_paging_figures)
{
	static const char *const lines[] = {
		"\nmemory budget:         ", "\npages in memory:       ",
		"\npages paged out:       ", "\npages written out:     ",
		"\npages paged in:        ", "\nrefaults:              ",
		"\nover budget:           ", "\nswap store size:       ",
		"\nswap store used:       ",
	};
	static struct run r;

	run_ctl(&r, "stats");
	cr_assert_eq(r.status, 0, "exit %d, stderr %s", r.status, r.err);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		cr_assert_eq(count_of(r.out, lines[i]), 1, "no '%s' line in\n%s", lines[i] + 1,
			     r.out);
	cr_assert(strstr(r.out, " times\nswap store size:"), "%s", r.out);
}

Test(ctl, list_table_shows_the_paging_figures)
{
	struct two_maps m;
	static struct run r;
	char out[2][24], refaults[2][24], backing[2][400], row[64];

	map_two(&m);
	run_ctl(&r, "list --pid %d", (int)getpid());
	cr_assert_eq(r.status, 0, "exit %d, stderr %s", r.status, r.err);
	cr_assert(strstr(r.out, " FAULTS       OUT   REFLT  BACKING\n"), "%s", r.out);
	for (int i = 0; i < 2; i++) {
		const char *at;

		snprintf(row, sizeof(row), "%-7d %-14" PRIxPTR " ", (int)getpid(),
			 (uintptr_t)(i ? m.file : m.anon));
		at = strstr(r.out, row);
		cr_assert(at, "no row for %s in\n%s", row, r.out);
		cr_assert_eq(sscanf(at, "%*u %*x %*s %*s %*s %*u %*u %*u %23s %23s %399s", out[i],
				    refaults[i], backing[i]),
			     3, "%s", at);
	}
	/* Private anonymous memory shows its own pages, none out yet; the file's object paged
	 * nothing out. */
	cr_assert_str_eq(out[0], "0");
	cr_assert_str_eq(refaults[0], "0");
	cr_assert_str_eq(backing[0], "anon");
	cr_assert_str_eq(out[1], "0");
	cr_assert_str_eq(refaults[1], "0");
	cr_assert_str_eq(backing[1], m.path);
}

Test(ctl, list_table_shows_sizes_and_flag_names)
{
	char *p = upager_mmap(NULL, 3 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			      -1, 0);
	static const char want[] = "   3.0MiB rw-  PRIVATE|ANONYMOUS ";
	static struct run r;
	char row[64];
	const char *at;

	cr_assert_neq(p, MAP_FAILED);
	p[0] = 1;
	run_ctl(&r, "list --pid %d", (int)getpid());
	cr_assert_eq(r.status, 0, "exit %d, stderr %s", r.status, r.err);
	cr_assert(!strncmp(r.out, "PID     START", 13), "%s", r.out);
	snprintf(row, sizeof(row), "%-7d %-14" PRIxPTR " ", (int)getpid(), (uintptr_t)p);
	at = strstr(r.out, row);
	cr_assert(at, "no row for %p in\n%s", p, r.out);
	cr_assert(!strncmp(at + strlen(row), want, strlen(want)), "%s", at);
}

Test(ctl, usage_errors_exit_2)
{
	static const char *const bad[] = {
		"frobnicate",
		"",
		"--bogus list",
		"list --bogus",
		"list --pid",
		"list --pid 12x",
		"show",
		"show 12 13",
		"show 0xq1",
		"show abc",
		"stats extra",
		"watch --count",
		"watch --count 0",
		"watch --interval 0",
	};
	static struct run r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		run_ctl(&r, "%s", bad[i]);
		cr_assert_eq(r.status, 2, "'upagerctl %s' exited %d", bad[i], r.status);
		cr_assert_str_empty(r.out, "'upagerctl %s' printed %s", bad[i], r.out);
		cr_assert(!strncmp(r.err, "upagerctl: ", 11), "'upagerctl %s' said %s", bad[i],
			  r.err);
	}
	run_ctl(&r, "frobnicate");
	cr_assert(strstr(r.err, "upagerctl: unknown command 'frobnicate'\n"), "%s", r.err);
}

Test(ctl, help_exits_0_without_the_daemon)
{
	static const char *const cmds[] = { "list", "show", "stats", "watch" };
	static struct run r;
	char want[64];

	/* A later --socket wins over the harness's: no daemon listens there. */
	run_ctl(&r, "--socket %s/none --help", harness_tmpdir());
	cr_assert_eq(r.status, 0, "exit %d, stderr %s", r.status, r.err);
	cr_assert(!strncmp(r.out, "Usage: upagerctl", 16), "%s", r.out);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		snprintf(want, sizeof(want), "\n  %s ", cmds[i]);
		cr_assert(strstr(r.out, want), "%s not in\n%s", cmds[i], r.out);
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		run_ctl(&r, "--socket %s/none %s --help", harness_tmpdir(), cmds[i]);
		cr_assert_eq(r.status, 0, "%s --help: exit %d, stderr %s", cmds[i], r.status,
			     r.err);
		snprintf(want, sizeof(want), "Usage: upagerctl [--socket PATH] %s ", cmds[i]);
		cr_assert(!strncmp(r.out, want, strlen(want)), "%s", r.out);
		cr_assert(strstr(r.out, "  -h, --help "), "%s", r.out);
	}
	/* Without --help, the missing daemon is a failure: 1. */
	run_ctl(&r, "--socket %s/none stats", harness_tmpdir());
	cr_assert_eq(r.status, 1);
	cr_assert(!strncmp(r.err, "upagerctl: cannot reach upagerd at ", 35), "%s", r.err);
}
