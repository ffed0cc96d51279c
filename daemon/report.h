/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* LIST and STATS replies (report.c). */
#pragma once

struct session;
struct upager_msg;

int report_list(struct session *s, const struct upager_msg *req);
int report_stats(struct session *s, const struct upager_msg *req);
