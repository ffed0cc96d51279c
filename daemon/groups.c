// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The caps of the clients' memory cgroups. The kernel charges the pages of a client's private
 * mappings to the client's own memory cgroup, and has no swap for them: a client limited lower
 * than the daemon would be killed by its limit long before the budget sent any page of it out.
 * So the processes of such a cgroup keep their private pages in memory within a cap, half of
 * its limit (budget_client_cap(), the rule of the default budget): above it, theirs go out first
 * (private_balance()), and their touches that bring pages in wait while pages of the cgroup are
 * on their way out, as touches wait above the budget. A client in the daemon's cgroup, or limited
 * as the daemon is, has none: the budget holds it.
 *
 * groups_follow() reads each space's cgroup once a second (a client can be moved, a limit
 * changed), a new space's at the next turn; groups_over() sums, once a turn, what each cgroup
 * holds, and says which are over their cap and by how much.
 */
#include <stdio.h>
#include <stdlib.h>

#include "budget.h"
#include "common/macro.h"
#include "context.h"
#include "evict.h"
#include "groups.h"
#include "private.h"
#include "space.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

static void follow(struct space *s)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)s->pid);
	s->priv.group_cap =
		budget_client_cap(path, CGROUP_ROOT, s->d->cgroup_limit, &s->priv.group) >>
		UPAGER_PAGE_SHIFT;
	s->priv.group_read = true;
}

/**
 * groups_follow() - read the daemon's own cgroup limit and the cgroup of every client again
 * @d: the daemon; once a second
 */
void groups_follow(struct daemon *d)
{
	struct space *s;

	d->cgroup_limit = budget_cgroup_limit("/proc/self/cgroup", CGROUP_ROOT);
	list_for_each_entry (s, &d->spaces, link)
		if (!s->dead && s->pid > 0)
			follow(s);
}

/**
 * groups_sum() - from the private pages in memory of each space, the cgroups over their cap
 * @u: (cgroup, cap, pages in memory, pages on their way out) entries, several per cgroup allowed
 * @n: how many
 * @out: each cgroup above its cap less half its slack (as the budget's mark to page out), with
 *	what it is above its low mark (the cap less its slack); at most GROUPS_OVER_MAX cgroups are
 *	counted, the first met; and in its wait table, those of them at or above their cap with
 *	pages on their way out: their touches wait
 */
void groups_sum(const struct group_use *u, size_t n, struct groups_over *out)
{
	struct group_use g[GROUPS_OVER_MAX];
	size_t m = 0, k;

	out->n = out->n_wait = 0;
	for (size_t i = 0; i < n; i++) {
		for (k = 0; k < m && g[k].id != u[i].id; k++)
			;
		if (k == m) {
			if (m == GROUPS_OVER_MAX)
				continue;
			g[m++] = (struct group_use){ u[i].id, u[i].cap, 0, false };
		}
		g[k].use += u[i].use;
		g[k].leaving |= u[i].leaving;
	}
	for (k = 0; k < m; k++) {
		uint64_t slack = slack_pages(g[k].cap);

		if (g[k].use > g[k].cap - slack / 2)
			out->g[out->n++] =
				(struct group_over){ g[k].id, g[k].use - (g[k].cap - slack) };
		if (g[k].use >= g[k].cap && g[k].leaving)
			out->wait[out->n_wait++] = g[k].id;
	}
}

/**
 * groups_over() - the clients' memory cgroups over their cap, and by how much (groups_sum())
 * @d: the daemon; once a turn of the loop, before the touches that waited are served
 * @out: the table
 *
 * Sets each space's priv.group_wait: its cgroup is over its cap with pages on their way out.
 */
void groups_over(struct daemon *d, struct groups_over *out)
{
	struct group_use *u;
	struct space *s;
	size_t n = 0;

	out->n = out->n_wait = 0;
	list_for_each_entry (s, &d->spaces, link) {
		s->priv.group_wait = false;
		if (!s->priv.group_read && !s->dead && s->pid > 0)
			follow(s);
		n += s->priv.group && !s->dead;
	}
	/* Most daemons have no client with a cap: nothing more to do, no allocation a turn. */
	if (!n || !(u = calloc(n, sizeof(*u))))
		return;
	n = 0;
	list_for_each_entry (s, &d->spaces, link)
		if (s->priv.group && !s->dead)
			u[n++] = (struct group_use){ s->priv.group, s->priv.group_cap,
						     private_use(s), s->priv.n_outs > 0 };
	groups_sum(u, n, out);
	free(u);
	list_for_each_entry (s, &d->spaces, link)
		for (size_t k = 0; s->priv.group && k < out->n_wait; k++)
			if (s->priv.group == out->wait[k])
				s->priv.group_wait = true;
}
