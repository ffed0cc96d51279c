/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* upagerctl: one file per subcommand, sharing a connection helper and the mapping printers. */
#pragma once

#include <getopt.h>
#include <stdbool.h>

#include "proto/codec.h"

/* Exit codes of the tool: success, failure or nothing found, wrong usage. */
enum {
	CTL_EXIT_OK = 0,
	CTL_EXIT_FAIL = 1,
	CTL_EXIT_USAGE = 2,
};

struct ctl {
	const char *path; /* the daemon's socket */
	int fd;
	uint32_t seq;
	bool json; /* --json, which every command takes */
	uint8_t buf[UPAGER_MSG_MAX];
};

/*
 * A subcommand. main() parses its options (its own, then --json and --help, which every command
 * takes), checks that n_args words follow them and runs it; the help texts are made of the strings.
 */
struct ctl_command {
	const char *name;
	const char *args; /* what follows the name in the synopsis */
	const char *summary; /* what it does */
	const char *options; /* the --help lines of its own options and --json */
	const struct option *opts; /* its own options; NULL for none */
	int (*option)(int ch, const char *arg); /* 0, or CTL_EXIT_USAGE once it said why */
	int n_args;
	int (*run)(struct ctl *c, char **args);
};

extern const struct ctl_command ctl_list_command, ctl_show_command, ctl_stats_command,
	ctl_watch_command;

int ctl_connect(struct ctl *c);
int ctl_call(struct ctl *c, struct upager_msg *req, struct upager_msg *rep);
const char *ctl_prot_str(uint32_t prot, char *buf);
const char *ctl_flags_str(uint32_t flags, char *buf, size_t size);
const char *ctl_size_str(uint64_t bytes, char *buf, size_t size);
void ctl_json_string(const char *s, size_t len);

int ctl_usage_error(const struct ctl_command *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int ctl_parse_uint(const char *s, uint32_t *out);

/* Called for each mapping; a negative errno stops the walk and is returned by it. */
typedef int (*ctl_mapping_fn)(const struct upager_list_entry *e, void *arg);
int ctl_mappings_each(struct ctl *c, uint32_t pid, ctl_mapping_fn fn, void *arg);
void ctl_mapping_table_header(void);
void ctl_mapping_table_row(const struct upager_list_entry *e);
void ctl_mapping_json(const struct upager_list_entry *e);
void ctl_mapping_json_item(const struct upager_list_entry *e, unsigned int index);
void ctl_mapping_json_end(unsigned int count);
void ctl_mapping_detail(const struct upager_list_entry *e);

void ctl_stats_json(const struct upager_msg *rep);
