/*
 * topology_internal.h - what the topology's files share (topology.c: loading, budget, orders,
 * pairs, pinning; cgroup.c: the cgroup limits; topo_output.c: JSON, text, XML). Not installed.
 */
#ifndef MPROC_TOPOLOGY_INTERNAL_H
#define MPROC_TOPOLOGY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <hwloc.h>

#include "topology.h"

/* Largest CPU index handled by masks on the stack (pinning must not allocate). */
#define TOPO_MAX_CPUS 8192
#define TOPO_MASK_LONGS (TOPO_MAX_CPUS / (8 * sizeof(unsigned long)))
/* Largest accepted MPROC_CPUS. */
#define TOPO_MAX_OVERRIDE 1048576

struct mproc_topo {
	hwloc_topology_t topo;
	hwloc_bitmap_t usable;          /* PUs (OS indexes): hwloc ∩ affinity ∩ cgroup cpuset */
	struct mproc_topo_budget budget;
	struct mproc_topo_counts counts;
	char origin[300];               /* "live", "xml:<path>", "synthetic:<desc>" */
	unsigned long orig_mask[TOPO_MASK_LONGS];       /* affinity at _new, for _unpin */
	size_t orig_mask_bytes;
};

/* Helpers of more than one file (each is described where it is defined). */
void mproc__topo_copy_str(char *dst, size_t size, const char *src);
void mproc__topo_limit_none(struct mproc_topo_limit *l, const char *source, const char *detail);
int mproc__topo_read_small(const char *path, char *buf, size_t size);
int mproc__topo_read_long(const char *path, long long *out);
bool mproc__topo_is_dir(const char *path);
void mproc__topo_read_cgroups(const char *root, struct mproc_topo_limit *quota,
			 struct mproc_topo_limit *cpuset, hwloc_bitmap_t cpuset_set);
void mproc__topo_list_detail(char *buf, size_t size, hwloc_const_bitmap_t set);

#endif /* MPROC_TOPOLOGY_INTERNAL_H */
