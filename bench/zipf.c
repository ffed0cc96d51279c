// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Random page numbers: splitmix64 as the generator (fast, and a seed gives the same sequence on
 * every machine), and a Zipf sampler over n pages, P(rank k) proportional to 1 / (k + 1)^s, drawn
 * by a binary search of its precomputed CDF. Ranks map to pages through a Fisher-Yates
 * permutation of a seed of its own, so that the hot pages are scattered over the file instead of
 * sitting at its start, where read-ahead of either pager would find them together.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "zipf.h"

/** rng_next() - the next 64 random bits of @r */
uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/** rng_below() - a uniform draw from [0, @n), @n > 0 (the bias of the modulo is below 2^-32) */
uint64_t rng_below(struct rng *r, uint64_t n)
{
	return rng_next(r) % n;
}

/**
 * rng_permutation() - the numbers 0 to @n - 1 in a random order fixed by @seed (Fisher-Yates)
 *
 * Return: an array of @n the caller frees, or NULL if out of memory.
 */
uint32_t *rng_permutation(size_t n, uint64_t seed)
{
	uint32_t *v = malloc(n * sizeof(*v));
	struct rng r = { seed };

	if (!v)
		return NULL;
	for (size_t k = 0; k < n; k++)
		v[k] = (uint32_t)k;
	for (size_t k = n - 1; n && k > 0; k--) {
		size_t j = rng_below(&r, k + 1);
		uint32_t t = v[k];

		v[k] = v[j];
		v[j] = t;
	}
	return v;
}

/**
 * zipf_init() - a Zipf sampler of exponent @s over @n pages (1 <= n < 2^32)
 * @seed: of the permutation from ranks to pages
 *
 * Return: 0 or -ENOMEM; zipf_deinit() frees what it holds.
 */
int zipf_init(struct zipf *z, size_t n, double s, uint64_t seed)
{
	double sum = 0;

	z->n = n;
	z->cdf = malloc(n * sizeof(*z->cdf));
	z->page = rng_permutation(n, seed);
	if (!z->cdf || !z->page) {
		zipf_deinit(z);
		return -ENOMEM;
	}
	for (size_t k = 0; k < n; k++) {
		sum += pow((double)(k + 1), -s);
		z->cdf[k] = sum;
	}
	for (size_t k = 0; k < n; k++)
		z->cdf[k] /= sum;
	z->cdf[n - 1] = 1.0;
	return 0;
}

/** zipf_deinit() - free what zipf_init() allocated */
void zipf_deinit(struct zipf *z)
{
	free(z->cdf);
	free(z->page);
	z->cdf = NULL;
	z->page = NULL;
}

/** zipf_page() - the page of a rank drawn with @r */
uint32_t zipf_page(const struct zipf *z, struct rng *r)
{
	double u = (double)(rng_next(r) >> 11) * 0x1.0p-53;
	size_t lo = 0, hi = z->n - 1;

	/* The first rank whose CDF exceeds u. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (z->cdf[mid] > u)
			hi = mid;
		else
			lo = mid + 1;
	}
	return z->page[lo];
}
