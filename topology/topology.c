/*
 * topology.c - hwloc + affinity + cgroup cpuset/quota + MPROC_CPUS -> the usable CPU budget,
 * with provenance; PU orders, pair selection, pinning, capability probe. The cgroup limits are
 * read in cgroup.c, the outputs (JSON, text, XML) written in topo_output.c.
 *
 * The live machine is loaded with IS_THISSYSTEM | RESTRICT_TO_CPUBINDING, so hwloc's objects
 * are the ones this process may run on. hwloc then no longer knows how many PUs the machine
 * has, so a second, unrestricted load (INCLUDE_DISALLOWED) counts the hardware for the
 * "hardware" limit: that is what hwloc alone would say, and why `taskset -c 0` reads
 * "bound by affinity" rather than "hardware".
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <hwloc.h>
#include <hwloc/export.h>

#include "internal.h"
#include "topology.h"

#include "topology_internal.h"

/* ---------------------------------------------------------------------------------------- */
/* small helpers                                                                            */

/* Copy src into dst, keeping its tail if it is too long (a path's end says the most). */
void mproc__topo_copy_str(char *dst, size_t size, const char *src)
{
	size_t len = strlen(src);

	if (len >= size)
		src += len - (size - 1);
	len = strlen(src);
	memcpy(dst, src, len + 1);
}

void mproc__topo_limit_none(struct mproc_topo_limit *l, const char *source, const char *detail)
{
	l->value = -1;
	mproc__topo_copy_str(l->source, sizeof(l->source), source);
	mproc__topo_copy_str(l->detail, sizeof(l->detail), detail);
}

/* Read a small file into buf (NUL-terminated, trailing whitespace stripped). 0 or -errno. */
int mproc__topo_read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	size_t len;

	if (fd < 0)
		return -errno;
	n = mproc__read_all(fd, buf, size - 1, MPROC__NO_DEADLINE);
	mproc__close(fd);
	if (n < 0)
		return (int)n;
	len = (size_t)n;
	buf[len] = '\0';
	while (len > 0 && isspace((unsigned char)buf[len - 1]))
		buf[--len] = '\0';
	return 0;
}

int mproc__topo_read_long(const char *path, long long *out)
{
	char buf[64];
	char *end;
	int r = mproc__topo_read_small(path, buf, sizeof(buf));

	if (r < 0)
		return r;
	errno = 0;
	*out = strtoll(buf, &end, 10);
	if (errno || end == buf || *end)
		return -EINVAL;
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* load                                                                                     */

static int parse_override(const char *s, struct mproc_topo_limit *l)
{
	uint64_t v;

	if (!s) {
		mproc__topo_limit_none(l, "MPROC_CPUS", "unset");
		return 0;
	}
	if (mproc__parse_u64(s, TOPO_MAX_OVERRIDE, &v) < 0 || v == 0)
		return -EINVAL;
	l->value = (int)v;
	snprintf(l->source, sizeof(l->source), "MPROC_CPUS");
	mproc__topo_copy_str(l->detail, sizeof(l->detail), s);
	return 0;
}

void mproc__topo_list_detail(char *buf, size_t size, hwloc_const_bitmap_t set)
{
	if (hwloc_bitmap_list_snprintf(buf, size, set) < 0)
		buf[0] = '\0';
}

/*
 * A synthetic description without a NUMA level makes hwloc 2.9 insert "a NUMA level with a
 * single object at depth 1" with an overlapping memcpy (undefined behaviour; valgrind flags
 * it). Name that level ourselves: "numa:1 <desc>" is the topology hwloc would build.
 */
static int set_synthetic(hwloc_topology_t t, const char *desc)
{
	char *full;
	int r;

	if (strcasestr(desc, "numa") || desc[0] == '{' || desc[0] == '[' ||
	    isdigit((unsigned char)desc[0]))
		return hwloc_topology_set_synthetic(t, desc);
	if (asprintf(&full, "numa:1 %s", desc) < 0)
		return -1;
	r = hwloc_topology_set_synthetic(t, full);
	free(full);
	return r;
}

static int load_hwloc(hwloc_topology_t *out, const struct mproc_topo_opts *o, unsigned long flags)
{
	hwloc_topology_t t;
	int r;

	if (hwloc_topology_init(&t) < 0)
		return -errno;
	if (o->xml_path)
		r = hwloc_topology_set_xml(t, o->xml_path);
	else if (o->synthetic)
		r = set_synthetic(t, o->synthetic);
	else
		r = hwloc_topology_set_flags(t, flags);
	if (r < 0)
		goto fail;
	r = hwloc_topology_load(t);
	if (r < 0)
		goto fail;
	*out = t;
	return 0;
fail:
	r = errno ? -errno : -EINVAL;
	hwloc_topology_destroy(t);
	return r;
}

/* Objects of a type that hold at least one PU of set (hwloc's _inside_ wants all of them). */
static int count_touching(hwloc_topology_t h, hwloc_const_bitmap_t set, hwloc_obj_type_t type)
{
	int n = 0;

	for (hwloc_obj_t o = NULL; (o = hwloc_get_next_obj_by_type(h, type, o));)
		if (o->cpuset && hwloc_bitmap_intersects(o->cpuset, set))
			n++;
	return n;
}

/* Counts over the usable set. */
static void compute_counts(struct mproc_topo *t)
{
	hwloc_topology_t h = t->topo;
	struct mproc_topo_counts *c = &t->counts;
	hwloc_obj_t o;

	memset(c, 0, sizeof(*c));
	c->pus = hwloc_bitmap_weight(t->usable);
	c->packages = count_touching(h, t->usable, HWLOC_OBJ_PACKAGE);
	if (c->packages <= 0)
		c->packages = 1;
	c->cores = count_touching(h, t->usable, HWLOC_OBJ_CORE);
	c->smt_per_core = 1;
	if (c->cores <= 0) {
		c->cores = c->pus;
	} else {
		hwloc_bitmap_t tmp = hwloc_bitmap_alloc();

		for (o = NULL; tmp && (o = hwloc_get_next_obj_by_type(h, HWLOC_OBJ_CORE, o));) {
			int w;

			hwloc_bitmap_and(tmp, o->cpuset, t->usable);
			w = hwloc_bitmap_weight(tmp);
			if (w > c->smt_per_core)
				c->smt_per_core = w;
		}
		hwloc_bitmap_free(tmp);
	}
	c->numa_nodes = 0;
	for (o = NULL; (o = hwloc_get_next_obj_by_type(h, HWLOC_OBJ_NUMANODE, o));)
		if (o->cpuset && hwloc_bitmap_intersects(o->cpuset, t->usable))
			c->numa_nodes++;
	if (c->numa_nodes == 0)
		c->numa_nodes = 1;
	for (o = NULL; (o = hwloc_get_next_obj_by_type(h, HWLOC_OBJ_L1CACHE, o));)
		if (o->attr->cache.type != HWLOC_OBJ_CACHE_INSTRUCTION) {
			c->l1d_bytes = (size_t)o->attr->cache.size;
			break;
		}
	o = hwloc_get_next_obj_by_type(h, HWLOC_OBJ_L2CACHE, NULL);
	if (o)
		c->l2_bytes = (size_t)o->attr->cache.size;
	o = hwloc_get_next_obj_by_type(h, HWLOC_OBJ_L3CACHE, NULL);
	if (o)
		c->l3_bytes = (size_t)o->attr->cache.size;
	c->l3_count = count_touching(h, t->usable, HWLOC_OBJ_L3CACHE);
	if (c->l3_count < 0)
		c->l3_count = 0;
}

static int count_cores_in(hwloc_topology_t h, hwloc_const_bitmap_t set)
{
	int n = count_touching(h, set, HWLOC_OBJ_CORE);

	return n > 0 ? n : hwloc_bitmap_weight(set);
}

static void compute_budget(struct mproc_topo *t, int inter)
{
	struct mproc_topo_budget *b = &t->budget;
	const struct mproc_topo_limit *cand[] = { &b->affinity, &b->cpuset, &b->quota, &b->override };
	const char *names[] = { "affinity", "cpuset", "quota", "MPROC_CPUS" };
	int best = b->hardware.value;
	int cores;

	b->bound_by = "hardware";
	/* Ties keep the earlier source: hardware, then affinity, cpuset, quota, MPROC_CPUS. */
	for (size_t i = 0; i < MPROC__ARRAY_SIZE(cand); i++) {
		if (cand[i]->value >= 0 && cand[i]->value < best) {
			best = cand[i]->value;
			b->bound_by = names[i];
		}
	}
	/* The set intersection can be smaller than each of its parts (disjoint masks). */
	b->usable = inter;
	if (inter < best && inter < b->hardware.value)
		b->bound_by = "affinity+cpuset";
	if (b->quota.value >= 0 && b->quota.value < b->usable)
		b->usable = b->quota.value;
	if (b->override.value >= 0 && b->override.value < b->usable)
		b->usable = b->override.value;
	if (b->usable < 1)
		b->usable = 1;
	cores = count_cores_in(t->topo, t->usable);
	b->usable_cores = cores < b->usable ? cores : b->usable;
}

/* Long (about 115 lines) on purpose: options refused first, then one goto ladder that narrows
 * the usable set step by step (topology, affinity, cgroup cpuset); the steps are commented. */
int mproc_topo_new(struct mproc_topo **out, const struct mproc_topo_opts *opts)
{
	static const struct mproc_topo_opts zero_opts;
	const struct mproc_topo_opts *o = opts ? opts : &zero_opts;
	const char *root = o->sys_root ? o->sys_root : "";
	const char *env = o->cpus_override ? o->cpus_override : getenv("MPROC_CPUS");
	bool live = !o->xml_path && !o->synthetic;
	struct mproc_topo *t;
	hwloc_bitmap_t tmp = NULL;
	char buf[128];
	int r;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (o->xml_path && o->synthetic)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	/* Refuse a bad override before any other work. */
	r = parse_override(env, &t->budget.override);
	if (r < 0)
		goto out_free;

	if (sched_getaffinity(0, sizeof(t->orig_mask), (cpu_set_t *)t->orig_mask) < 0) {
		r = -errno;
		goto out_free;
	}
	t->orig_mask_bytes = sizeof(t->orig_mask);

	r = load_hwloc(&t->topo, o, HWLOC_TOPOLOGY_FLAG_IS_THISSYSTEM |
			HWLOC_TOPOLOGY_FLAG_RESTRICT_TO_CPUBINDING);
	/* Where hwloc cannot read the binding (odd sandboxes), load unrestricted: the affinity
	 * mask is intersected below anyway. */
	if (r < 0 && live)
		r = load_hwloc(&t->topo, o, HWLOC_TOPOLOGY_FLAG_IS_THISSYSTEM);
	if (r < 0)
		goto out_free;
	if (live)
		snprintf(t->origin, sizeof(t->origin), "live");
	else if (o->xml_path)
		snprintf(t->origin, sizeof(t->origin), "xml:%s", o->xml_path);
	else
		snprintf(t->origin, sizeof(t->origin), "synthetic:%s", o->synthetic);

	t->usable = hwloc_bitmap_alloc();
	tmp = hwloc_bitmap_alloc();
	if (!t->usable || !tmp) {
		r = -ENOMEM;
		goto out_free;
	}

	/* hardware: what hwloc alone says (the whole machine for the live case) */
	if (live) {
		hwloc_topology_t whole;

		r = load_hwloc(&whole, o, HWLOC_TOPOLOGY_FLAG_IS_THISSYSTEM |
				HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED);
		if (r < 0)
			goto out_free;
		t->budget.hardware.value = hwloc_get_nbobjs_by_type(whole, HWLOC_OBJ_PU);
		snprintf(t->budget.hardware.detail, sizeof(t->budget.hardware.detail),
			 "%d PUs, %d cores", t->budget.hardware.value,
			 count_cores_in(whole, hwloc_topology_get_complete_cpuset(whole)));
		hwloc_topology_destroy(whole);
	} else {
		t->budget.hardware.value = hwloc_get_nbobjs_by_type(t->topo, HWLOC_OBJ_PU);
		snprintf(t->budget.hardware.detail, sizeof(t->budget.hardware.detail),
			 "%d PUs, %d cores", t->budget.hardware.value,
			 count_cores_in(t->topo, hwloc_topology_get_complete_cpuset(t->topo)));
	}
	mproc__topo_copy_str(t->budget.hardware.source, sizeof(t->budget.hardware.source),
		 live ? "hwloc: whole machine, INCLUDE_DISALLOWED" : t->origin);

	/* usable = the PUs of the topology (allowed set) ... */
	hwloc_bitmap_copy(t->usable, hwloc_topology_get_allowed_cpuset(t->topo));
	hwloc_bitmap_and(t->usable, t->usable, hwloc_topology_get_topology_cpuset(t->topo));

	/* ... ∩ affinity ... */
	if (o->ignore_affinity) {
		mproc__topo_limit_none(&t->budget.affinity, "sched_getaffinity(0)", "ignored (fixture)");
	} else {
		hwloc_bitmap_zero(tmp);
		for (int i = 0; i < TOPO_MAX_CPUS; i++)
			if (CPU_ISSET_S(i, sizeof(t->orig_mask), (cpu_set_t *)t->orig_mask))
				hwloc_bitmap_set(tmp, (unsigned)i);
		hwloc_bitmap_and(t->usable, t->usable, tmp);
		t->budget.affinity.value = hwloc_bitmap_weight(tmp);
		snprintf(t->budget.affinity.source, sizeof(t->budget.affinity.source),
			 "sched_getaffinity(0)");
		mproc__topo_list_detail(buf, sizeof(buf), tmp);
		mproc__topo_copy_str(t->budget.affinity.detail, sizeof(t->budget.affinity.detail), buf);
	}

	/* ... ∩ cgroup cpuset; the quota is a number, applied in compute_budget */
	mproc__topo_read_cgroups(root, &t->budget.quota, &t->budget.cpuset, tmp);
	hwloc_bitmap_and(t->usable, t->usable, tmp);

	if (hwloc_bitmap_iszero(t->usable)) {
		r = -ENODEV;    /* nothing left to run on: the limits contradict the topology */
		goto out_free;
	}
	compute_counts(t);
	compute_budget(t, hwloc_bitmap_weight(t->usable));
	hwloc_bitmap_free(tmp);
	*out = t;
	return 0;

out_free:
	hwloc_bitmap_free(tmp);
	mproc_topo_free(t);
	return r;
}

void mproc_topo_free(struct mproc_topo *t)
{
	if (!t)
		return;
	if (t->usable)
		hwloc_bitmap_free(t->usable);
	if (t->topo)
		hwloc_topology_destroy(t->topo);
	free(t);
}

int mproc_topo_counts(const struct mproc_topo *t, struct mproc_topo_counts *out)
{
	if (!t || !out)
		return -EINVAL;
	*out = t->counts;
	return 0;
}

int mproc_topo_budget(const struct mproc_topo *t, struct mproc_topo_budget *out)
{
	if (!t || !out)
		return -EINVAL;
	*out = t->budget;
	return 0;
}

const char *mproc_topo_hwloc_version(void)
{
	/* hwloc has no run-time release string; hwloc_get_api_version() (in the JSON) tells the
	 * API of the library actually loaded. */
	return HWLOC_VERSION;
}

/* ---------------------------------------------------------------------------------------- */
/* orders and pairs                                                                         */

/* Scatter order of the usable PUs below obj: round robin over children, recursively. */
static int scatter(const struct mproc_topo *t, hwloc_obj_t obj, int *pus, int cap)
{
	int n = 0;

	if (!obj->cpuset || !hwloc_bitmap_intersects(obj->cpuset, t->usable))
		return 0;
	if (obj->type == HWLOC_OBJ_PU) {
		if (cap < 1)
			return -ENOBUFS;
		pus[0] = (int)obj->os_index;
		return 1;
	}
	if (obj->arity == 1)
		return scatter(t, obj->children[0], pus, cap);
	{
		unsigned m = obj->arity;
		int total = hwloc_bitmap_weight(obj->cpuset);
		int *lists = NULL, *lens = NULL;
		int r = 0;

		if (total < 1)
			return 0;
		lists = calloc((size_t)m * (size_t)total, sizeof(int));
		lens = calloc(m, sizeof(int));
		if (!lists || !lens) {
			r = -ENOMEM;
			goto out;
		}
		for (unsigned i = 0; i < m; i++) {
			r = scatter(t, obj->children[i], lists + (size_t)i * total, total);
			if (r < 0)
				goto out;
			lens[i] = r;
		}
		for (int k = 0; k < total; k++)
			for (unsigned i = 0; i < m; i++)
				if (k < lens[i]) {
					if (n >= cap) {
						r = -ENOBUFS;
						goto out;
					}
					pus[n++] = lists[(size_t)i * total + k];
				}
		r = n;
out:
		free(lists);
		free(lens);
		return r;
	}
}

/* Rank of a PU inside its core among usable PUs (0 = the first usable PU of its core). */
static int pu_rank(const struct mproc_topo *t, int os)
{
	hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(t->topo, (unsigned)os);
	hwloc_obj_t core = pu ? hwloc_get_ancestor_obj_by_type(t->topo, HWLOC_OBJ_CORE, pu) : NULL;
	int rank = 0;

	if (!core)
		return 0;
	for (int i = hwloc_bitmap_first(core->cpuset); i >= 0 && i < os;
	     i = hwloc_bitmap_next(core->cpuset, i))
		if (hwloc_bitmap_isset(t->usable, (unsigned)i))
			rank++;
	return rank;
}

int mproc_topo_pu_order(const struct mproc_topo *t, enum mproc_topo_order order, int *pus, int n)
{
	int total, got, w = 0;
	int *all;

	if (!t || !pus || n < 0)
		return -EINVAL;
	if (order != MPROC_TOPO_PHYSICAL_FIRST && order != MPROC_TOPO_SCATTER &&
	    order != MPROC_TOPO_COMPACT)
		return -EINVAL;
	total = hwloc_bitmap_weight(t->usable);
	all = calloc((size_t)total, sizeof(int));
	if (!all)
		return -ENOMEM;
	if (order == MPROC_TOPO_COMPACT) {
		hwloc_obj_t o = NULL;

		got = 0;
		while ((o = hwloc_get_next_obj_by_type(t->topo, HWLOC_OBJ_PU, o)) && got < total)
			if (hwloc_bitmap_isset(t->usable, o->os_index))
				all[got++] = (int)o->os_index;
	} else {
		got = scatter(t, hwloc_get_root_obj(t->topo), all, total);
		if (got < 0) {
			free(all);
			return got;
		}
		if (order == MPROC_TOPO_PHYSICAL_FIRST) {
			/* Stable partition of the scatter order by rank inside the core: first PUs
			 * of every core, then the second SMT siblings, and so on. */
			int *tmp = calloc((size_t)got, sizeof(int));
			int k = 0;

			if (!tmp) {
				free(all);
				return -ENOMEM;
			}
			for (int rank = 0; k < got; rank++)
				for (int i = 0; i < got; i++)
					if (pu_rank(t, all[i]) == rank)
						tmp[k++] = all[i];
			memcpy(all, tmp, (size_t)got * sizeof(int));
			free(tmp);
		}
	}
	for (w = 0; w < got && w < n; w++)
		pus[w] = all[w];
	free(all);
	return w;
}

static hwloc_obj_t core_of(const struct mproc_topo *t, int os)
{
	hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(t->topo, (unsigned)os);
	hwloc_obj_t core = pu ? hwloc_get_ancestor_obj_by_type(t->topo, HWLOC_OBJ_CORE, pu) : NULL;

	return core ? core : pu;
}

int mproc_topo_pair(const struct mproc_topo *t, enum mproc_topo_placement p, int *a, int *b)
{
	int n, first;
	int *order;
	int r = -ENODEV;

	if (!t || !a || !b || (p != MPROC_TOPO_SAME_CORE && p != MPROC_TOPO_CROSS_CORE))
		return -EINVAL;
	n = hwloc_bitmap_weight(t->usable);
	order = calloc((size_t)n, sizeof(int));
	if (!order)
		return -ENOMEM;
	n = mproc_topo_pu_order(t, MPROC_TOPO_COMPACT, order, n);
	if (n < 1)
		goto out;
	first = order[0];
	if (p == MPROC_TOPO_SAME_CORE) {
		*a = *b = first;
		r = 0;
		goto out;
	}
	{
		hwloc_obj_t c0 = core_of(t, first);
		hwloc_obj_t pk0 = hwloc_get_ancestor_obj_by_type(t->topo, HWLOC_OBJ_PACKAGE, c0);
		int other = -1;

		/* Another core, in the same package where possible. */
		for (int i = 1; i < n; i++) {
			hwloc_obj_t c = core_of(t, order[i]);

			if (c == c0)
				continue;
			if (hwloc_get_ancestor_obj_by_type(t->topo, HWLOC_OBJ_PACKAGE, c) == pk0) {
				other = order[i];
				break;
			}
			if (other < 0)
				other = order[i];
		}
		if (other >= 0) {
			*a = first;
			*b = other;
			r = 0;
		}
	}
out:
	free(order);
	return r;
}

const char *mproc_topo_placement_name(enum mproc_topo_placement p)
{
	switch (p) {
	case MPROC_TOPO_SAME_CORE:
		return "same_core";
	case MPROC_TOPO_CROSS_CORE:
		return "cross_core";
	}
	return "unknown";
}

/* ---------------------------------------------------------------------------------------- */
/* pinning (async-signal-safe: stack masks, raw syscalls)                                   */

int mproc_topo_pin(pid_t pid, int pu)
{
	unsigned long mask[TOPO_MASK_LONGS];

	if (pid < 0 || pu < 0 || pu >= TOPO_MAX_CPUS)
		return -EINVAL;
	memset(mask, 0, sizeof(mask));
	mask[(size_t)pu / (8 * sizeof(long))] = 1UL << ((size_t)pu % (8 * sizeof(long)));
	if (sched_setaffinity(pid, sizeof(mask), (cpu_set_t *)mask) < 0)
		return -errno;
	return 0;
}

int mproc_topo_unpin(const struct mproc_topo *t, pid_t pid)
{
	if (!t || pid < 0)
		return -EINVAL;
	if (sched_setaffinity(pid, t->orig_mask_bytes, (const cpu_set_t *)t->orig_mask) < 0)
		return -errno;
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* capabilities                                                                             */

static long read_proc_long(const char *path)
{
	long long v;

	return mproc__topo_read_long(path, &v) == 0 ? (long)v : -1;
}

static long long rlim_soft(int res)
{
	struct rlimit rl;

	if (getrlimit(res, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return -1;
	return (long long)rl.rlim_cur;
}

int mproc_topo_caps(struct mproc_topo_caps *out)
{
	struct statvfs sv;
	char name[MPROC__NAME_MAX];
	int fd;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->dev_shm_free_bytes = -1;
	if (mproc__topo_is_dir("/dev/shm") && access("/dev/shm", W_OK) == 0)
		out->dev_shm = true;
	if (out->dev_shm && statvfs("/dev/shm", &sv) == 0)
		out->dev_shm_free_bytes = (long long)sv.f_bavail * (long long)sv.f_frsize;

	fd = memfd_create("mproc-probe", MFD_CLOEXEC);
	if (fd >= 0) {
		out->memfd = true;
		mproc__close(fd);
	}

	if (mproc__unique_name(name, sizeof(name)) == 0) {
		struct mq_attr attr = { .mq_maxmsg = 1, .mq_msgsize = 8 };
		mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);

		if (q != (mqd_t)-1) {
			out->mqueue = true;
			mq_close(q);
			mq_unlink(name);
		}
	}
	out->mq_msg_max = read_proc_long("/proc/sys/fs/mqueue/msg_max");
	out->mq_msgsize_max = read_proc_long("/proc/sys/fs/mqueue/msgsize_max");
	out->mq_queues_max = read_proc_long("/proc/sys/fs/mqueue/queues_max");
	out->pipe_max_size = read_proc_long("/proc/sys/fs/pipe-max-size");
	out->rlimit_nproc = rlim_soft(RLIMIT_NPROC);
	out->rlimit_nofile = rlim_soft(RLIMIT_NOFILE);

	{
		int id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);

		if (id >= 0) {
			out->sysv_msg = true;
			msgctl(id, IPC_RMID, NULL);
		}
	}
	return 0;
}
