/*
 * topology.h - the machine as the suite sees it: hwloc's packages, physical cores, PUs
 * (hardware threads), SMT siblings, NUMA nodes and caches, intersected with what this
 * process may actually use: its affinity mask (sched_getaffinity), the cgroup cpuset and the
 * cgroup CPU quota (v1 and v2, read from this process's own cgroup path, walking up to the
 * tightest limit), and the MPROC_CPUS override. Each limit carries its provenance (the file
 * or call it came from) so a report can say why the budget is what it is.
 *
 * Lifecycle: mproc_topo_new() loads once; all queries are read-only afterwards and may be
 * called from any thread; mproc_topo_free() releases. Not for use in a forked child that
 * did not create it (hwloc allocates). The pinning helpers (mproc_topo_pin, mproc_topo_unpin)
 * are plain syscalls on stack data: async-signal-safe, usable in a forked child.
 *
 * The live machine is loaded with HWLOC_TOPOLOGY_FLAG_IS_THISSYSTEM |
 * HWLOC_TOPOLOGY_FLAG_RESTRICT_TO_CPUBINDING; the "hardware" limit comes from a second,
 * unrestricted load (what hwloc alone would say), so `taskset -c 0` reads "bound by affinity".
 *
 * Every function returns 0 (or a count) or a negative errno, as libmproc does.
 */
#ifndef MPROC_TOPOLOGY_H
#define MPROC_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mproc_topo;

/* Options; zero/NULL fields mean "the real machine". Tests point them at fixtures. */
struct mproc_topo_opts {
	const char *xml_path;           /* load hwloc XML instead of the live machine */
	const char *synthetic;          /* hwloc synthetic description, e.g. "pack:2 core:4 pu:2" */
	const char *sys_root;           /* prefix for /sys/fs/cgroup and /proc/self/cgroup,
	                                   /proc/self/mountinfo (fake cgroup trees); NULL = "" */
	const char *cpus_override;      /* MPROC_CPUS value; NULL = read the environment */
	bool ignore_affinity;           /* do not intersect with sched_getaffinity (fixtures) */
};

/*
 * mproc_topo_new - load the topology and compute the budget. opts may be NULL (the live
 * machine). MPROC_CPUS (or opts->cpus_override) must be a decimal integer 1..1048576 with
 * nothing around it; an empty value counts as set. cgroup files that do not parse are
 * ignored (no limit from them), never half-trusted.
 * Returns 0 and *out, or -EINVAL (out NULL, xml_path and synthetic both set, bad MPROC_CPUS),
 * -ENODEV (the cgroup cpuset and affinity leave no PU of the topology), -ENOMEM, or the
 * -errno of a failed hwloc load (bad XML path or synthetic string). *out is NULL on error.
 */
int mproc_topo_new(struct mproc_topo **out, const struct mproc_topo_opts *opts);
/* Free; NULL is a no-op. */
void mproc_topo_free(struct mproc_topo *t);

/* Hardware counts inside the allowed (cgroup cpuset ∩ affinity) set; never 0 for PUs. */
struct mproc_topo_counts {
	int packages;
	int cores;          /* physical cores (hwloc CORE; falls back to PUs where absent) */
	int pus;            /* hardware threads */
	int numa_nodes;
	int smt_per_core;   /* max PUs per core (1 = no SMT) */
	/* per-instance size of the first cache of each level; 0 = unknown */
	size_t l1d_bytes, l2_bytes, l3_bytes;
	int l3_count;
};
/* Copy the counts; -EINVAL for NULL arguments. Objects are counted when they hold at least
 * one allowed PU. */
int mproc_topo_counts(const struct mproc_topo *t, struct mproc_topo_counts *out);

/* One limit on the CPU budget. value < 0 means "no limit from this source". */
struct mproc_topo_limit {
	int value;              /* CPUs this source allows */
	char source[256];       /* where it came from, e.g. "/sys/fs/cgroup/cpu/foo/cpu.cfs_quota_us" */
	char detail[128];       /* e.g. "150000/100000 -> 2", "0-3,8", "max" */
};

/*
 * The usable CPU budget: min over hardware PUs, affinity, cgroup cpuset, ceil(quota/period)
 * and MPROC_CPUS. `bound_by` names the source that set it ("hardware", "affinity", "cpuset",
 * "quota", "MPROC_CPUS"). `usable_cores` = physical cores among the usable PUs, also capped by
 * the quota and override.
 */
struct mproc_topo_budget {
	int usable;             /* CPUs a pool may keep busy at once */
	int usable_cores;       /* of those, distinct physical cores */
	const char *bound_by;
	struct mproc_topo_limit hardware, affinity, cpuset, quota, override;
};
/* Copy the budget; -EINVAL for NULL arguments. Ties between limits name the earlier source
 * in the order hardware, affinity, cpuset, quota, MPROC_CPUS; "affinity+cpuset" when the
 * masks intersect to fewer PUs than either alone. */
int mproc_topo_budget(const struct mproc_topo *t, struct mproc_topo_budget *out);

/* Orders for placing N workers on usable PUs (OS indexes written to pus[], up to n).
 *  PHYSICAL_FIRST: one PU of each core (cores spread over packages), then the SMT siblings;
 *  SCATTER: round robin over packages, then cores, then PUs (hwloc_distrib-like);
 *  COMPACT: fill each core's PUs, then the next core, package by package.
 * The lists hold the allowed PUs (cpuset ∩ affinity); a pool of `usable` workers takes the
 * first `usable` entries (the quota and MPROC_CPUS cap counts, not PUs).
 * Returns the number written (all allowed PUs when n is large enough), -EINVAL (NULL t or
 * pus, n < 0, unknown order) or -ENOMEM. */
enum mproc_topo_order {
	MPROC_TOPO_PHYSICAL_FIRST,
	MPROC_TOPO_SCATTER,
	MPROC_TOPO_COMPACT,
};
int mproc_topo_pu_order(const struct mproc_topo *t, enum mproc_topo_order order, int *pus, int n);

/* Two PUs for a two-process benchmark: SAME_CORE gives the same PU twice (the two processes
 * time-share one CPU); CROSS_CORE gives PUs of two different physical cores (same package
 * where possible). -ENODEV if the machine has no such pair (one usable core); -EINVAL for
 * NULL pointers or an unknown placement. */
enum mproc_topo_placement {
	MPROC_TOPO_SAME_CORE,
	MPROC_TOPO_CROSS_CORE,
};
int mproc_topo_pair(const struct mproc_topo *t, enum mproc_topo_placement p, int *a, int *b);
const char *mproc_topo_placement_name(enum mproc_topo_placement p);  /* "same_core" ... */

/* Pin a process (0 = caller) to one PU by OS index: sched_setaffinity, async-signal-safe.
 * -EINVAL (pid < 0, pu < 0 or >= 8192), -ESRCH (no such process), or sched_setaffinity's
 * -errno (-EINVAL also when the PU is outside the process's cgroup cpuset). */
int mproc_topo_pin(pid_t pid, int pu);
/* Undo pinning: allow every PU of the original affinity mask saved by mproc_topo_new(). */
int mproc_topo_unpin(const struct mproc_topo *t, pid_t pid);

/* Capabilities of the machine that decide which primitives work (probed, not assumed). */
struct mproc_topo_caps {
	bool dev_shm;                   /* /dev/shm exists and is writable */
	long long dev_shm_free_bytes;   /* -1 if unknown */
	bool memfd;                     /* memfd_create works */
	bool mqueue;                    /* mq_open works */
	long mq_msg_max, mq_msgsize_max, mq_queues_max;   /* /proc/sys/fs/mqueue/..., -1 unknown */
	long pipe_max_size;             /* /proc/sys/fs/pipe-max-size */
	long long rlimit_nproc, rlimit_nofile;            /* soft limits, -1 = unlimited */
	bool sysv_msg;                  /* msgget(IPC_PRIVATE) works */
};
/* Probe; the temporary mqueue and SysV queue are removed before it returns. -EINVAL if out is
 * NULL, otherwise 0 (a probe that fails just reports false / -1). */
int mproc_topo_caps(struct mproc_topo_caps *out);

/* Write JSON (budget with provenance, counts, caches, PU orders, capabilities) / a human
 * summary / hwloc XML. Return 0, -EINVAL (NULL arguments, empty path), -EIO (stream error)
 * or -errno of the XML export. The JSON keys: hwloc_version, hwloc_api, origin,
 * budget {usable, usable_cores, bound_by, allowed_pus, limits {hardware, affinity, cpuset,
 * quota, MPROC_CPUS: {value (null = none), source, detail}}}, counts, caches, pu_orders
 * {physical_first, scatter, compact}, pairs {same_core, cross_core (null = none)},
 * capabilities (null = unknown / unlimited for the numbers). */
int mproc_topo_write_json(const struct mproc_topo *t, FILE *f);
int mproc_topo_write_text(const struct mproc_topo *t, FILE *f);
int mproc_topo_export_xml(const struct mproc_topo *t, const char *path);

/* hwloc's release (HWLOC_VERSION, compile time; the JSON adds the loaded API version). */
const char *mproc_topo_hwloc_version(void);

#ifdef __cplusplus
}
#endif

#endif /* MPROC_TOPOLOGY_H */
