/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libupager internals: the process-wide connection to upagerd, the control thread. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/codec.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

void upager__lock(void);
void upager__unlock(void);
void upager__maps_lock(void);
void upager__maps_unlock(void);
int upager__connect(void);
bool upager__connected(void);
bool upager__user_mode_only(void);
int upager__uffd(void);
double upager__daemon_timeout(void);
int upager__reconnect_if_mapped(void);
int upager__written_file(int fd, off_t offset, size_t length);
int upager__call(struct upager_msg *req, const int *fds, size_t n_fds, struct upager_msg *rep,
		 int *rep_fds, size_t n_rep_fds);
int upager__control_start(void);
int upager__fd_dup(int fd);
int upager__fd_park(int fd);
int upager__fd_keep(int fd);
void upager__fd_unkeep(int kfd);
void upager__fd_file_closed(dev_t dev, ino_t ino);
void upager__fd_forked(void);

/* The library's threads are named so (15 bytes at most), by which ending.c knows them. */
#define UPAGER_THREAD_PREFIX "upager-"
void upager__ending_prepare(void);
int upager__ending_look(void);
int upager__grow_act(const struct upager_msg *m);
int upager__thread_start(const char *name, void *(*fn)(void *), void *arg, void *stack,
			 size_t size);
int upager__watch_fd(unsigned *gen);
void upager__disconnect(unsigned gen);

int upager__resume_record(void *addr, size_t length, int prot, int flags, off_t offset, int fd,
			  int memfd);
void upager__resume_forget(uintptr_t addr, size_t length);
bool upager__resume_lost(uintptr_t addr, size_t length);
void upager__conn_hooks(int (*resumed)(void), void (*forked)(void));

void upager__nonlinear_forget(uintptr_t addr, size_t length);
int upager__munmap_reserve(void *addr, size_t length);
