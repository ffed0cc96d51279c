/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Random page numbers for the benchmarks, the same in every run: a seeded generator, uniform
 * draws, and a Zipf sampler whose ranks land on pages through a fixed random permutation.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct rng {
	uint64_t s;
};

struct zipf {
	size_t n;
	double *cdf; /* cdf[k]: probability of a rank <= k (0-based), cdf[n - 1] = 1 */
	uint32_t *page; /* page[k]: the page of rank k */
};

uint64_t rng_next(struct rng *r);
uint64_t rng_below(struct rng *r, uint64_t n);
uint32_t *rng_permutation(size_t n, uint64_t seed);
int zipf_init(struct zipf *z, size_t n, double s, uint64_t seed);
void zipf_deinit(struct zipf *z);
uint32_t zipf_page(const struct zipf *z, struct rng *r);
