/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An intrusive AVL tree: the node lives in the caller's struct (container_of() gets it back), the
 * caller orders the nodes with a comparison, and finds them with a predicate that is false for a
 * prefix of the order and true after it (avl_first_where()). Every operation is O(log n); nothing
 * here allocates.
 */
#pragma once

#include <stdbool.h>

struct avl_node {
	struct avl_node *left, *right;
	int height;
};

/* Negative, zero or positive as a sorts before, with or after b. */
typedef int (*avl_cmp_fn)(const struct avl_node *a, const struct avl_node *b);
/* Whether node n is at or past the key: false for a prefix of the order, true after it. */
typedef bool (*avl_past_fn)(const struct avl_node *n, const void *key);

struct avl_tree {
	struct avl_node *root;
	avl_cmp_fn cmp;
};

void avl_insert(struct avl_tree *t, struct avl_node *x);
void avl_remove(struct avl_tree *t, struct avl_node *x);
struct avl_node *avl_first_where(const struct avl_tree *t, avl_past_fn past, const void *key);
