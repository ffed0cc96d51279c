/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * upager wire protocol, version 1.
 *
 * Messages travel over a SOCK_SEQPACKET Unix socket, one message per datagram. Every field is
 * fixed-width little-endian; structs are naturally aligned and have no implicit padding. File
 * descriptors travel as SCM_RIGHTS with the message that names them. See proto/PROTOCOL.md.
 */
#ifndef UPAGER_PROTO_H
#define UPAGER_PROTO_H

#include <linux/types.h>

#define UPAGER_PROTO_MAGIC 0x52475055u /* "UPGR" */
#define UPAGER_PROTO_VERSION 1
#define UPAGER_PROTO_VERSION_MIN 1
#define UPAGER_MSG_MAX 65536u /* largest datagram either side sends or accepts */
#define UPAGER_PATH_MAX 4096u

enum upager_op {
	UPAGER_OP_HELLO = 1,
	UPAGER_OP_OBJECT_OPEN = 2,
	UPAGER_OP_REGION_ADD = 3,
	UPAGER_OP_MUNMAP = 4,
	UPAGER_OP_MSYNC = 5,
	UPAGER_OP_LIST = 6,
	UPAGER_OP_STATS = 7,
	UPAGER_OP_REMAP = 8,
	UPAGER_OP_CONTROL = 9,
	UPAGER_OP_GROW = 10,
	UPAGER_OP_GROWTH_LIMIT = 11,
	UPAGER_OP_RESUME = 12,
	UPAGER_OP_DROP = 13,
	_UPAGER_OP_MAX,
	UPAGER_OP_REPLY = 0x8000, /* or'ed into the opcode of a reply */
};

struct upager_wire_hdr {
	__le32 magic;
	__le16 version;
	__le16 op;
	__le32 len; /* whole message, header included */
	__le32 seq; /* chosen by the requester, echoed by the reply */
};

/* Every reply starts with this after the header. */
struct upager_wire_reply {
	__le32 status; /* 0 or a negative errno, as s32 */
	__le32 reserved;
};

/* HELLO: client -> daemon, first message of a connection. */
enum {
	UPAGER_HELLO_UFFD = 1u << 0, /* a userfaultfd is attached */
	UPAGER_HELLO_FORKED = 1u << 1, /* a forked child: adopt the space the kernel made for us */
	UPAGER_HELLO_CTL = 1u << 2, /* an inspection client: no address space */
	UPAGER_HELLO_RESUME = 1u << 3, /* a client of a daemon that died: its userfaultfd is
					* attached, RESUME requests follow */
	UPAGER_HELLO_SOFT = 1u << 4, /* with UFFD, FORKED or RESUME: the client bounds its wait
				      * for a daemon (UPAGER_DAEMON_TIMEOUT); no keeper keeps it */
	_UPAGER_HELLO_ALL = (1u << 5) - 1,
};

struct upager_wire_hello {
	__le16 version_min;
	__le16 version_max;
	__le32 flags;
	__le64 token_addr; /* page-aligned token page, with UPAGER_HELLO_UFFD */
};

struct upager_wire_hello_reply {
	__le16 version;
	__le16 reserved;
	__le32 page_size;
	__le64 features; /* UFFD_FEATURE_* in force for this space */
};

/* OBJECT_OPEN: the object behind a new mapping; a file fd is attached for a file object. */
enum {
	UPAGER_OBJECT_FILE = 1,
	UPAGER_OBJECT_ANON_SHARED = 2,
};

struct upager_wire_object_open {
	__le32 kind;
	__le32 prot;
	__le32 flags; /* mmap flags as given */
	__le32 reserved;
	__le64 offset;
	__le64 length;
};

/* Reply carries the memfd as SCM_RIGHTS. */
struct upager_wire_object_open_reply {
	__le64 object_id;
	__le32 map_type; /* MAP_SHARED or MAP_PRIVATE: how the client maps the memfd */
	__le32 reserved;
	__le64 object_size;
};

/*
 * REGION_ADD: the client has mapped [addr, addr+length); register it and serve its faults. A
 * MAP_GROWSDOWN mapping comes with the guard page the client mapped right below it (or 0 if there
 * was no room), the sentinel page below that (PROT_NONE and MAP_GROWSDOWN, so that the kernel
 * keeps its stack_guard_gap free of other mappings; 0 if none), and the most it may grow to (0:
 * no limit).
 */
struct upager_wire_region_add {
	__le64 object_id; /* 0: private anonymous */
	__le64 addr;
	__le64 length;
	__le64 offset;
	__le32 prot;
	__le32 flags;
	__le64 guard_addr;
	__le64 sentinel_addr;
	__le64 max_length;
};

/* MUNMAP: write back and forget [addr, addr+length) before the client unmaps it. */
struct upager_wire_range {
	__le64 addr;
	__le64 length;
};

/*
 * MUNMAP reply: the range the client unmaps, which is [addr, addr+length) widened to take in the
 * grown pages and the guard page of a MAP_GROWSDOWN mapping whose original range it covers.
 */
struct upager_wire_munmap_reply {
	__le64 addr;
	__le64 length;
};

/*
 * CONTROL: client -> daemon, once per process before its first MAP_GROWSDOWN or private anonymous
 * mapping, with one end of a SOCK_SEQPACKET pair attached. On it the daemon sends GROW and DROP
 * requests, which a thread of the client serves; nothing else travels on it. The request's body is
 * a struct upager_wire_range: the client's spare area (private anonymous, read-write, never touched
 * by the client itself), into which the daemon moves pages that leave memory before it asks for a
 * DROP of them; or zeroes for none. The reply has no body.
 */

/*
 * GROW: daemon -> client on the control socket: act on the guard page of a growing mapping. The
 * reply's status is 0, or a negative errno if the growth was refused.
 */
enum {
	UPAGER_GROW_EXTEND = 1, /* the guard page joins the mapping: once the gap bytes below it
				 * hold nothing but the sentinel, map a new guard page below it
				 * and a new sentinel below that; else as REFUSE */
	UPAGER_GROW_REFUSE = 2, /* unmap the guard and sentinel pages: the faulting access gets
				 * SIGSEGV */
	UPAGER_GROW_GUARD = 3, /* a touch below the guard page, down to guard_addr + a page (the
				* sentinel, or further, where the kernel grew the sentinel): map a
				* guard page at guard_addr and a sentinel below it if the gap
				* allows; else unmap [guard_addr + a page, sentinel_addr), which is
				* then the mapping's start, and the access gets SIGSEGV */
};

struct upager_wire_grow {
	__le64 guard_addr;
	__le64 sentinel_addr; /* 0 if none */
	__le64 gap; /* EXTEND: free bytes needed below the mapping once grown; >= one page */
	__le32 action;
	__le32 prot; /* of the new guard page */
};

struct upager_wire_grow_reply {
	__le32 sentinel; /* EXTEND: 1 if a new sentinel is mapped below the new guard page */
	__le32 reserved;
};

/*
 * DROP: daemon -> client on the control socket: of the pages in map (bit k: the page at addr + k
 * pages), those still write-protected by the daemon (userfaultfd-wp, /proc/self/pagemap bit 57)
 * and present are in the daemon's swap store now: move them (UFFDIO_MOVE) to spare, a part of the
 * spare area, packed in address order (the k-th page of map to spare + k pages), then
 * MADV_DONTNEED that part. The reply says which moved, a bit per page in the same order.
 */
#define UPAGER_DROP_MAX_PAGES 256
#define UPAGER_DROP_WINDOW_PAGES 1024
/* The pages are ones UFFDIO_MOVE refuses (copies in a private mapping of a file or of shared
 * memory, or private anonymous pages of a mapping made read-only): each that is anonymous and
 * mapped once is dropped where it is (MADV_DONTNEED). */
#define UPAGER_DROP_IN_PLACE 1u

struct upager_wire_drop {
	__le64 addr; /* the first page of the window map covers */
	__le64 spare;
	__le32 pages; /* the bits set in map: 1 to UPAGER_DROP_MAX_PAGES */
	__le32 flags; /* 0 or UPAGER_DROP_IN_PLACE */
	__le64 map[UPAGER_DROP_WINDOW_PAGES / 64];
};

struct upager_wire_drop_reply {
	__le64 moved[UPAGER_DROP_MAX_PAGES / 64];
};

/* GROWTH_LIMIT: upager_set_growth_limit(). */
struct upager_wire_growth_limit {
	__le64 addr; /* inside the mapping */
	__le64 max_length; /* 0: no limit */
};

/*
 * RESUME: after HELLO with UPAGER_HELLO_RESUME, one per live mapping of the client, then one of
 * kind UPAGER_RESUME_END (every other field 0), after which the daemon serves the client's faults.
 * A file mapping attaches the client's descriptor of the file and then the memfd it maps; a shared
 * anonymous one the memfd; a private anonymous one nothing. No reply body.
 */
enum {
	UPAGER_RESUME_ANON_PRIVATE = 0,
	/* UPAGER_OBJECT_FILE (1) and UPAGER_OBJECT_ANON_SHARED (2) */
	UPAGER_RESUME_END = 3,
};

struct upager_wire_resume {
	__le32 kind;
	__le32 prot;
	__le32 flags; /* mmap flags as given */
	__le32 reserved;
	__le64 addr;
	__le64 length;
	__le64 offset;
};

/*
 * MSYNC. With UPAGER_MSYNC_WRITTEN in flags (and no MS_ flag) the client says it has written the
 * file's bytes that [addr, addr+length) shows with write(2) or the like (length 0: changed its size,
 * addr inside a mapping of it), and the call returned: the reply comes once the cache shows them.
 * With UPAGER_MSYNC_WRITTEN_FILE the same by file offset: [addr, addr+length) of the file of the
 * descriptor attached (open for writing; length 0: changed its size), wherever it is mapped.
 */
#define UPAGER_MSYNC_WRITTEN 0x10000u
#define UPAGER_MSYNC_WRITTEN_FILE 0x20000u
struct upager_wire_msync {
	__le64 addr;
	__le64 length;
	__le32 flags;
	__le32 reserved;
};

/*
 * REMAP: upager_remap_file_pages(). The first time a mapping goes nonlinear the reply says
 * convert: the client maps the attached view memfd over the whole mapping (map_type, prot;
 * elsewhere first, registered with its userfaultfd, then moved over it with mremap(2), so that
 * no thread meets it unregistered) and sends the same request again with phase 2. Faults in the
 * mapping wait in between. The second descriptor attached is the
 * view's table (struct upager_view_table, proto/view-table.h); the third, read-only, the object's page states (one
 * byte per object page, 0 while no one holds the page: the file has the only data); the fourth,
 * read-only, the file.
 */
struct upager_wire_remap {
	__le64 addr;
	__le64 size;
	__le64 pgoff;
	__le32 flags; /* MAP_NONBLOCK, or 0 */
	__le32 phase; /* 1, or 2 after converting */
};

/* The view table itself is shared memory, not a message: proto/view-table.h. */
struct upager_wire_remap_reply {
	__le64 start; /* with convert: the mapping to replace */
	__le64 length;
	__le32 convert;
	__le32 map_type;
	__le32 prot;
	__le32 reserved;
};

/* LIST: one page of the region table, starting at cursor. */
struct upager_wire_list {
	__le32 cursor;
	__le32 pid; /* 0: every pid the requester may see */
};

struct upager_wire_list_reply {
	__le32 count;
	__le32 next_cursor; /* 0: no more */
	/* count entries follow, each 8-byte aligned */
};

struct upager_wire_list_entry {
	__le32 entry_len; /* this entry, path and padding included; a multiple of 8 */
	__le32 pid;
	__le64 start;
	__le64 length;
	__le64 offset;
	__le32 prot;
	__le32 flags;
	__le64 resident_pages;
	__le64 faults;
	__le64 object_id;
	__le32 uid;
	__le16 path_len; /* bytes of path that follow, no NUL; 0 for anonymous */
	__le16 reserved;
	__le64 pages_populated; /* by MAP_POPULATE */
	__le64 pages_read; /* from the backing store, by this mapping's faults and populate */
	__le64 bytes_read;
	__le64 latency_avg_ns; /* of this mapping's faults, from the daemon's read to resolution */
	__le64 latency_max_ns;
	__le32 nonlinear; /* 1 if remapped by upager_remap_file_pages() */
	__le32 remapped_ranges; /* ranges that are not where a linear mapping has them */
	__le64 grown_pages; /* MAP_GROWSDOWN: pages added below the original start */
	__le64 max_length; /* MAP_GROWSDOWN: the most it may grow to, 0 for no limit */
	__le64 object_pages_out; /* of the mapping's object: pages paged out; 0 for private anon */
	__le64 object_refaults; /* of the mapping's object: paged-out pages read back */
	__le64 object_writeback_errors; /* of the mapping's object: failed write-backs */
	__le32 object_writeback_error; /* of the mapping's object: the errno no msync reported yet */
	__le32 reserved2;
	__le64 private_pages_out; /* its private pages (anonymous, or copies it wrote): paged out */
	__le64 private_pages_in; /* its private pages read back from the swap store */
};

/* STATS reply */
struct upager_wire_stats_reply {
	__le32 sessions;
	__le32 spaces;
	__le32 regions;
	__le32 objects;
	__le64 cached_pages;
	__le64 faults;
	__le64 pages_read;
	__le64 bytes_read;
	__le64 bytes_written;
	__le64 uptime_ms;
	__le64 pages_populated;
	__le64 bytes_from_page_cache; /* copied by MAP_NONBLOCK populate, no disk read */
	__le64 latency_p50_ns; /* fault latency percentiles, within 12.5% */
	__le64 latency_p99_ns;
	__le64 latency_max_ns;
	/* Paging out: the memory budget and what holding to it did. */
	__le64 budget_bytes; /* 0: no budget */
	__le64 memory_pages; /* pages of the caches in memory or being read */
	__le64 pages_out; /* pages that left memory: dropped clean, or to the swap store */
	__le64 pages_written_out; /* of those, dirty file pages written back first */
	__le64 pages_in; /* pages read back from the swap store */
	__le64 refaults; /* fills of pages that had been paged out */
	__le64 over_budget; /* times fills went on above the budget: nothing could go */
	__le64 swap_bytes; /* the swap store's size, 0 without one */
	__le64 swap_used_bytes;
	__le64 writeback_errors; /* write-backs that failed */
	/* The swap store: its kind, requests under way, bytes written and read back verified,
	 * requests failed, connections made again, connections up. Where it is (a path, or a URI without
	 * credentials) is the rest of the datagram, at most UPAGER_PATH_MAX bytes, no NUL. */
	__le32 store_kind; /* enum upager_store_kind */
	__le32 store_inflight;
	__le64 store_bytes_out;
	__le64 store_bytes_in;
	__le64 store_errors;
	__le64 store_reconnects;
	__le32 store_connections; /* connections to the server up now */
	__le32 reserved;
};

enum upager_store_kind {
	UPAGER_STORE_NONE = 0,
	UPAGER_STORE_FILE = 1, /* a file or a block device */
	UPAGER_STORE_NBD = 2, /* an NBD server's export; where is its URI without credentials */
};

#endif /* UPAGER_PROTO_H */
