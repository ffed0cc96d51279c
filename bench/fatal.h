/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * How the paging benchmarks end on an error or a signal: a message naming the program and the
 * folder that keeps the daemon's log, the benchmark's cleanup, then _exit().
 */
#pragma once

void fatal_init(const char *prog, const char *dir, void (*cleanup)(void));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatal_on_signal(int sig);
void fatal_start_daemon(const char *prog, const char *bin, char *dir_template);
