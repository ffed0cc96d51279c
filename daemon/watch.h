/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Following the files behind the cache: changes made by other processes (watch.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct cache;
struct object;
struct watch;

int watch_new(uv_loop_t *loop, struct cache *c, struct watch **out);
void watch_free(struct watch *w);
void watch_object(struct watch *w, struct object *o, bool pre_content);
void watch_forget(struct watch *w, struct object *o);
void watch_listen(struct watch *w, struct object *o);
uint64_t watch_epoch(const struct watch *w);
void watch_sync(struct watch *w);
