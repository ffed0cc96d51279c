// SPDX-License-Identifier: LGPL-2.1-or-later
/* An intrusive AVL tree (avl.h). Insert and remove recurse: the depth is at most 1.44 log2(n). */
#include <stddef.h>

#include "avl.h"
#include "macro.h"

static int height(const struct avl_node *n)
{
	return n ? n->height : 0;
}

static void fix(struct avl_node *n)
{
	n->height = 1 + MAX(height(n->left), height(n->right));
}

static struct avl_node *rotate_right(struct avl_node *n)
{
	struct avl_node *l = n->left;

	n->left = l->right;
	l->right = n;
	fix(n);
	fix(l);
	return l;
}

static struct avl_node *rotate_left(struct avl_node *n)
{
	struct avl_node *r = n->right;

	n->right = r->left;
	r->left = n;
	fix(n);
	fix(r);
	return r;
}

/* Restore the balance at n after one of its subtrees changed height by one. */
static struct avl_node *balance(struct avl_node *n)
{
	int b;

	fix(n);
	b = height(n->left) - height(n->right);
	if (b > 1) {
		if (height(n->left->left) < height(n->left->right))
			n->left = rotate_left(n->left);
		return rotate_right(n);
	}
	if (b < -1) {
		if (height(n->right->right) < height(n->right->left))
			n->right = rotate_right(n->right);
		return rotate_left(n);
	}
	return n;
}

static struct avl_node *insert(struct avl_node *root, struct avl_node *x, avl_cmp_fn cmp)
{
	if (!root) {
		x->left = x->right = NULL;
		x->height = 1;
		return x;
	}
	if (cmp(x, root) < 0)
		root->left = insert(root->left, x, cmp);
	else
		root->right = insert(root->right, x, cmp);
	return balance(root);
}

static struct avl_node *remove_min(struct avl_node *n, struct avl_node **min)
{
	if (!n->left) {
		*min = n;
		return n->right;
	}
	n->left = remove_min(n->left, min);
	return balance(n);
}

static struct avl_node *remove_node(struct avl_node *root, struct avl_node *x, avl_cmp_fn cmp)
{
	struct avl_node *m, *rest;

	if (!root)
		return NULL; /* not in the tree */
	if (root == x) {
		if (!x->right)
			return x->left;
		rest = remove_min(x->right, &m);
		m->left = x->left;
		m->right = rest;
		return balance(m);
	}
	if (cmp(x, root) < 0)
		root->left = remove_node(root->left, x, cmp);
	else
		root->right = remove_node(root->right, x, cmp);
	return balance(root);
}

/** avl_insert() - link node @x into @t; equal nodes go after those already there */
void avl_insert(struct avl_tree *t, struct avl_node *x)
{
	t->root = insert(t->root, x, t->cmp);
}

/** avl_remove() - unlink node @x from @t; its place in the order must not have changed */
void avl_remove(struct avl_tree *t, struct avl_node *x)
{
	t->root = remove_node(t->root, x, t->cmp);
}

/**
 * avl_first_where() - the first node in order for which @past is true
 * @t: the tree
 * @past: false for a prefix of the order, true after it
 * @key: passed to @past
 *
 * Return: the node, or NULL if @past is false for every node.
 */
struct avl_node *avl_first_where(const struct avl_tree *t, avl_past_fn past, const void *key)
{
	struct avl_node *n = t->root, *found = NULL;

	while (n) {
		if (past(n, key)) {
			found = n;
			n = n->left;
		} else {
			n = n->right;
		}
	}
	return found;
}
