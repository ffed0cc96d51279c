/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* upagerctl: one file per subcommand, sharing a connection helper. */
#pragma once

#include <stdbool.h>

#include "proto/codec.h"

struct ctl {
	int fd;
	uint32_t seq;
	bool json;
	uint8_t buf[UPAGER_MSG_MAX];
};

int ctl_connect(struct ctl *c, const char *path);
int ctl_call(struct ctl *c, struct upager_msg *req, struct upager_msg *rep);
const char *ctl_prot_str(uint32_t prot, char *buf);
const char *ctl_flags_str(uint32_t flags, char *buf, size_t size);
const char *ctl_size_str(uint64_t bytes, char *buf, size_t size);
void ctl_json_string(const char *s, size_t len);

int ctl_list(struct ctl *c, int argc, char **argv);
int ctl_stats(struct ctl *c, int argc, char **argv);
