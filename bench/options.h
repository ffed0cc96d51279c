/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The options of the paging benchmarks: "--name VALUE" pairs, --quick and --help, and sizes such as
 * "64M" or "1G" (K, M, G are powers of 1024).
 */
#pragma once

#include <stdint.h>
#include <stdio.h>

/* An option that takes a value: *value points at the argument given, else stays as it was. */
struct option_value {
	const char *name;
	const char **value;
};

void options_parse(int argc, char **argv, const struct option_value *opts, void (*usage)(FILE *f));

uint64_t size_parse(const char *s);
uint64_t size_option(const char *prog, const char *arg, const char *env, uint64_t none);
