/*
 * topology.c - hwloc + affinity + cgroup cpuset/quota + MPROC_CPUS -> the usable CPU budget,
 * with provenance; PU orders, pair selection, pinning, capability probe, JSON/text/XML output.
 *
 * The live machine is loaded with IS_THISSYSTEM | RESTRICT_TO_CPUBINDING, so hwloc's objects
 * are the ones this process may run on. hwloc then no longer knows how many PUs the machine
 * has, so a second, unrestricted load (INCLUDE_DISALLOWED) counts the hardware for the
 * "hardware" limit: that is what hwloc alone would say, and why `taskset -c 0` reads
 * "bound by affinity" rather than "hardware".
 *
 * cgroups are read by hand (hwloc reads the cpuset but never the quota): this process's path
 * from /proc/self/cgroup, the mounts from /proc/self/mountinfo (or the standard layouts), then
 * every level from that path up to the mount root; the tightest level wins.
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

/* ---------------------------------------------------------------------------------------- */
/* small helpers                                                                            */

/* Copy src into dst, keeping its tail if it is too long (a path's end says the most). */
static void copy_str(char *dst, size_t size, const char *src)
{
	size_t len = strlen(src);

	if (len >= size)
		src += len - (size - 1);
	len = strlen(src);
	memcpy(dst, src, len + 1);
}

static void limit_none(struct mproc_topo_limit *l, const char *source, const char *detail)
{
	l->value = -1;
	copy_str(l->source, sizeof(l->source), source);
	copy_str(l->detail, sizeof(l->detail), detail);
}

/* Read a small file into buf (NUL-terminated, trailing whitespace stripped). 0 or -errno. */
static int read_small(const char *path, char *buf, size_t size)
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

static int read_long(const char *path, long long *out)
{
	char buf[64];
	char *end;
	int r = read_small(path, buf, sizeof(buf));

	if (r < 0)
		return r;
	errno = 0;
	*out = strtoll(buf, &end, 10);
	if (errno || end == buf || *end)
		return -EINVAL;
	return 0;
}

/*
 * Parse a kernel CPU list ("0-3,8", "" = empty) into set. Returns 0 or -EINVAL for anything
 * else (the caller then ignores the file rather than trusting half of it).
 */
static int parse_cpu_list(const char *s, hwloc_bitmap_t set)
{
	hwloc_bitmap_zero(set);
	while (*s) {
		char *end;
		unsigned long a, b;

		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		a = strtoul(s, &end, 10);
		b = a;
		s = end;
		if (*s == '-') {
			s++;
			if (!isdigit((unsigned char)*s))
				return -EINVAL;
			b = strtoul(s, &end, 10);
			s = end;
		}
		if (a > b || b >= TOPO_MAX_CPUS)
			return -EINVAL;
		hwloc_bitmap_set_range(set, (unsigned)a, (int)b);
		if (*s == ',')
			s++;
		else if (*s)
			return -EINVAL;
	}
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* cgroups                                                                                  */

struct cg_paths {
	char v2[PATH_MAX];      /* this process's path in the unified hierarchy, "" if none */
	char cpu[PATH_MAX];     /* v1 cpu controller path */
	char cpuset[PATH_MAX];  /* v1 cpuset controller path */
	bool has_v2, has_cpu, has_cpuset;
};

struct cg_mounts {
	/* mount point (with sys_root) and the cgroup path at the mount's root ("/" usually) */
	char v2[PATH_MAX], v2_root[PATH_MAX];
	char cpu[PATH_MAX], cpu_root[PATH_MAX];
	char cpuset[PATH_MAX], cpuset_root[PATH_MAX];
};

static bool list_has(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; p && *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (len == n && strncmp(p, word, n) == 0)
			return true;
		p = comma ? comma + 1 : NULL;
	}
	return false;
}

static void read_proc_cgroup(const char *root, struct cg_paths *cp)
{
	char path[PATH_MAX];
	char line[PATH_MAX + 128];
	FILE *f;

	memset(cp, 0, sizeof(*cp));
	snprintf(path, sizeof(path), "%s/proc/self/cgroup", root);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		char *p;

		if (!c2)
			continue;
		*c1 = *c2 = '\0';
		p = c2 + 1;
		p[strcspn(p, "\n")] = '\0';
		if (strcmp(line, "0") == 0 && c1[1] == '\0') {
			copy_str(cp->v2, sizeof(cp->v2), p);
			cp->has_v2 = true;
			continue;
		}
		if (list_has(c1 + 1, "cpu")) {
			copy_str(cp->cpu, sizeof(cp->cpu), p);
			cp->has_cpu = true;
		}
		if (list_has(c1 + 1, "cpuset")) {
			copy_str(cp->cpuset, sizeof(cp->cpuset), p);
			cp->has_cpuset = true;
		}
	}
	fclose(f);
}

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void find_mounts(const char *root, struct cg_mounts *m)
{
	char path[PATH_MAX];
	char line[4 * PATH_MAX];
	FILE *f;

	memset(m, 0, sizeof(*m));
	snprintf(path, sizeof(path), "%s/proc/self/mountinfo", root);
	f = fopen(path, "re");
	if (f) {
		/* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
		while (fgets(line, sizeof(line), f)) {
			char *save = NULL, *tok, *mroot = NULL, *mpoint = NULL, *fstype = NULL;
			char *super = NULL;
			int i = 0;
			bool after_dash = false;
			int j = 0;

			line[strcspn(line, "\n")] = '\0';
			for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save), i++) {
				if (i == 3)
					mroot = tok;
				else if (i == 4)
					mpoint = tok;
				else if (i > 5 && !after_dash && strcmp(tok, "-") == 0)
					after_dash = true;
				else if (after_dash) {
					if (j == 0)
						fstype = tok;
					else if (j == 2)
						super = tok;
					j++;
				}
			}
			if (!mroot || !mpoint || !fstype)
				continue;
			if (strcmp(fstype, "cgroup2") == 0 && !m->v2[0]) {
				snprintf(m->v2, sizeof(m->v2), "%s%s", root, mpoint);
				copy_str(m->v2_root, sizeof(m->v2_root), mroot);
			} else if (strcmp(fstype, "cgroup") == 0 && super) {
				if (list_has(super, "cpu") && !m->cpu[0]) {
					snprintf(m->cpu, sizeof(m->cpu), "%s%s", root, mpoint);
					copy_str(m->cpu_root, sizeof(m->cpu_root), mroot);
				}
				if (list_has(super, "cpuset") && !m->cpuset[0]) {
					snprintf(m->cpuset, sizeof(m->cpuset), "%s%s", root, mpoint);
					copy_str(m->cpuset_root, sizeof(m->cpuset_root), mroot);
				}
			}
		}
		fclose(f);
		return;
	}
	/* No mountinfo (fixtures, odd /proc): the standard layouts. */
	snprintf(path, sizeof(path), "%s/sys/fs/cgroup/cgroup.controllers", root);
	if (access(path, F_OK) == 0)
		snprintf(m->v2, sizeof(m->v2), "%s/sys/fs/cgroup", root);
	else {
		snprintf(path, sizeof(path), "%s/sys/fs/cgroup/unified", root);
		if (is_dir(path))
			copy_str(m->v2, sizeof(m->v2), path);
	}
	snprintf(path, sizeof(path), "%s/sys/fs/cgroup/cpu", root);
	if (is_dir(path))
		copy_str(m->cpu, sizeof(m->cpu), path);
	else {
		snprintf(path, sizeof(path), "%s/sys/fs/cgroup/cpu,cpuacct", root);
		if (is_dir(path))
			copy_str(m->cpu, sizeof(m->cpu), path);
	}
	snprintf(path, sizeof(path), "%s/sys/fs/cgroup/cpuset", root);
	if (is_dir(path))
		copy_str(m->cpuset, sizeof(m->cpuset), path);
	strcpy(m->v2_root, "/");
	strcpy(m->cpu_root, "/");
	strcpy(m->cpuset_root, "/");
}

/*
 * The directory of the process's cgroup below a mount: strip the mount's own root from the
 * cgroup path (in a container both are often "/docker/<id>"). Writes mount + rel into dir.
 */
static void cg_dir(char *dir, size_t size, const char *mount, const char *mroot, const char *cg)
{
	size_t rl = strlen(mroot);

	if (rl > 1 && strncmp(cg, mroot, rl) == 0 && (cg[rl] == '/' || cg[rl] == '\0'))
		cg += rl;
	if (strcmp(cg, "/") == 0)
		cg = "";
	snprintf(dir, size, "%s%s", mount, cg);
}

/* Strip the last component of dir, not going above mount. false when at the mount. */
static bool cg_up(char *dir, const char *mount)
{
	size_t ml = strlen(mount);
	char *slash;

	if (strlen(dir) <= ml)
		return false;
	slash = strrchr(dir, '/');
	if (!slash || (size_t)(slash - dir) < ml)
		return false;
	*slash = '\0';
	return true;
}

/* One quota candidate: keep it if tighter than the current one. */
static void quota_take(struct mproc_topo_limit *l, long long quota, long long period,
		       const char *source)
{
	long long cpus;

	if (quota <= 0 || period <= 0)
		return;
	cpus = (quota + period - 1) / period;
	if (cpus < 1)
		cpus = 1;
	if (cpus > INT_MAX)
		cpus = INT_MAX;
	if (l->value >= 0 && l->value <= cpus)
		return;
	l->value = (int)cpus;
	copy_str(l->source, sizeof(l->source), source);
	snprintf(l->detail, sizeof(l->detail), "%lld/%lld -> %lld", quota, period, cpus);
}

static void quota_v2(struct mproc_topo_limit *l, const char *mount, const char *mroot,
		     const char *cg)
{
	char dir[PATH_MAX], file[PATH_MAX + 16], buf[128];

	cg_dir(dir, sizeof(dir), mount, mroot, cg);
	do {
		char qs[32] = "";
		long long period = 0;

		snprintf(file, sizeof(file), "%s/cpu.max", dir);
		if (read_small(file, buf, sizeof(buf)) < 0)
			continue;
		if (sscanf(buf, "%31s %lld", qs, &period) != 2)
			continue;
		if (strcmp(qs, "max") == 0) {
			if (l->value < 0 && !strstr(l->detail, "/"))
				limit_none(l, file, "max");
			continue;
		}
		quota_take(l, strtoll(qs, NULL, 10), period, file);
	} while (cg_up(dir, mount));
}

static void quota_v1(struct mproc_topo_limit *l, const char *mount, const char *mroot,
		     const char *cg)
{
	char dir[PATH_MAX], file[PATH_MAX + 32], pfile[PATH_MAX + 32];

	cg_dir(dir, sizeof(dir), mount, mroot, cg);
	do {
		long long quota, period;

		snprintf(file, sizeof(file), "%s/cpu.cfs_quota_us", dir);
		snprintf(pfile, sizeof(pfile), "%s/cpu.cfs_period_us", dir);
		if (read_long(file, &quota) < 0)
			continue;
		if (quota < 0) {
			if (l->value < 0 && !strstr(l->detail, "/"))
				limit_none(l, file, "-1");
			continue;
		}
		if (read_long(pfile, &period) < 0)
			continue;
		quota_take(l, quota, period, file);
	} while (cg_up(dir, mount));
}

/*
 * cpuset: intersect every level's list into set; the limit names the level with the fewest
 * CPUs (the deepest such level). set stays full when no file was found.
 */
static void cpuset_walk(struct mproc_topo_limit *l, hwloc_bitmap_t set, const char *mount,
			const char *mroot, const char *cg, const char *fname)
{
	char dir[PATH_MAX], file[PATH_MAX + 32], buf[4096];
	hwloc_bitmap_t lvl = hwloc_bitmap_alloc();

	if (!lvl)
		return;
	cg_dir(dir, sizeof(dir), mount, mroot, cg);
	do {
		int w;

		snprintf(file, sizeof(file), "%s/%s", dir, fname);
		if (read_small(file, buf, sizeof(buf)) < 0 || !buf[0])
			continue;
		if (parse_cpu_list(buf, lvl) < 0)
			continue;
		hwloc_bitmap_and(set, set, lvl);
		w = hwloc_bitmap_weight(lvl);
		if (l->value < 0 || w < l->value) {
			l->value = w;
			copy_str(l->source, sizeof(l->source), file);
			copy_str(l->detail, sizeof(l->detail), buf);
		}
	} while (cg_up(dir, mount));
	hwloc_bitmap_free(lvl);
}

static void read_cgroups(const char *root, struct mproc_topo_limit *quota,
			 struct mproc_topo_limit *cpuset, hwloc_bitmap_t cpuset_set)
{
	struct cg_paths cp;
	struct cg_mounts m;

	limit_none(quota, "", "no cgroup CPU quota found");
	limit_none(cpuset, "", "no cgroup cpuset found");
	hwloc_bitmap_fill(cpuset_set);
	read_proc_cgroup(root, &cp);
	if (!cp.has_v2 && !cp.has_cpu && !cp.has_cpuset) {
		char path[PATH_MAX];

		snprintf(path, sizeof(path), "%s/proc/self/cgroup", root);
		limit_none(quota, path, "not readable");
		limit_none(cpuset, path, "not readable");
		return;
	}
	find_mounts(root, &m);
	if (cp.has_v2 && m.v2[0]) {
		quota_v2(quota, m.v2, m.v2_root, cp.v2);
		cpuset_walk(cpuset, cpuset_set, m.v2, m.v2_root, cp.v2, "cpuset.cpus.effective");
	}
	if (cp.has_cpu && m.cpu[0])
		quota_v1(quota, m.cpu, m.cpu_root, cp.cpu);
	if (cp.has_cpuset && m.cpuset[0])
		cpuset_walk(cpuset, cpuset_set, m.cpuset, m.cpuset_root, cp.cpuset, "cpuset.cpus");
}

/* ---------------------------------------------------------------------------------------- */
/* load                                                                                     */

static int parse_override(const char *s, struct mproc_topo_limit *l)
{
	uint64_t v;

	if (!s) {
		limit_none(l, "MPROC_CPUS", "unset");
		return 0;
	}
	if (mproc__parse_u64(s, TOPO_MAX_OVERRIDE, &v) < 0 || v == 0)
		return -EINVAL;
	l->value = (int)v;
	snprintf(l->source, sizeof(l->source), "MPROC_CPUS");
	copy_str(l->detail, sizeof(l->detail), s);
	return 0;
}

static void list_detail(char *buf, size_t size, hwloc_const_bitmap_t set)
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
	copy_str(t->budget.hardware.source, sizeof(t->budget.hardware.source),
		 live ? "hwloc: whole machine, INCLUDE_DISALLOWED" : t->origin);

	/* usable = the PUs of the topology (allowed set) ... */
	hwloc_bitmap_copy(t->usable, hwloc_topology_get_allowed_cpuset(t->topo));
	hwloc_bitmap_and(t->usable, t->usable, hwloc_topology_get_topology_cpuset(t->topo));

	/* ... ∩ affinity ... */
	if (o->ignore_affinity) {
		limit_none(&t->budget.affinity, "sched_getaffinity(0)", "ignored (fixture)");
	} else {
		hwloc_bitmap_zero(tmp);
		for (int i = 0; i < TOPO_MAX_CPUS; i++)
			if (CPU_ISSET_S(i, sizeof(t->orig_mask), (cpu_set_t *)t->orig_mask))
				hwloc_bitmap_set(tmp, (unsigned)i);
		hwloc_bitmap_and(t->usable, t->usable, tmp);
		t->budget.affinity.value = hwloc_bitmap_weight(tmp);
		snprintf(t->budget.affinity.source, sizeof(t->budget.affinity.source),
			 "sched_getaffinity(0)");
		list_detail(buf, sizeof(buf), tmp);
		copy_str(t->budget.affinity.detail, sizeof(t->budget.affinity.detail), buf);
	}

	/* ... ∩ cgroup cpuset; the quota is a number, applied in compute_budget */
	read_cgroups(root, &t->budget.quota, &t->budget.cpuset, tmp);
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

	return read_long(path, &v) == 0 ? (long)v : -1;
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
	if (is_dir("/dev/shm") && access("/dev/shm", W_OK) == 0)
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

/* ---------------------------------------------------------------------------------------- */
/* JSON writer: just enough to emit objects, arrays, strings and numbers, indented.          */

struct jw {
	FILE *f;
	int depth;
	bool first[16];         /* no element written yet at this depth */
};

static void jw_str(struct jw *w, const char *s)
{
	fputc('"', w->f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", w->f);
			break;
		case '\\':
			fputs("\\\\", w->f);
			break;
		case '\n':
			fputs("\\n", w->f);
			break;
		case '\t':
			fputs("\\t", w->f);
			break;
		case '\r':
			fputs("\\r", w->f);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(w->f, "\\u%04x", *p);
			else
				fputc(*p, w->f);
		}
	}
	fputc('"', w->f);
}

/* Separator, newline and indentation before an element, then its key if any. */
static void jw_elem(struct jw *w, const char *key)
{
	if (w->depth > 0) {
		if (!w->first[w->depth])
			fputc(',', w->f);
		fputc('\n', w->f);
		for (int i = 0; i < w->depth; i++)
			fputs("  ", w->f);
	}
	w->first[w->depth] = false;
	if (key) {
		jw_str(w, key);
		fputs(": ", w->f);
	}
}

static void jw_open(struct jw *w, const char *key, char c)
{
	jw_elem(w, key);
	fputc(c, w->f);
	if (w->depth + 1 < (int)MPROC__ARRAY_SIZE(w->first))
		w->depth++;
	w->first[w->depth] = true;
}

static void jw_close(struct jw *w, char c)
{
	bool empty = w->first[w->depth];

	w->depth--;
	if (!empty) {
		fputc('\n', w->f);
		for (int i = 0; i < w->depth; i++)
			fputs("  ", w->f);
	}
	fputc(c, w->f);
}

static void jw_kstr(struct jw *w, const char *key, const char *v)
{
	jw_elem(w, key);
	jw_str(w, v);
}

static void jw_kint(struct jw *w, const char *key, long long v)
{
	jw_elem(w, key);
	fprintf(w->f, "%lld", v);
}

/* A count where negative means unknown/none: null. */
static void jw_kint_or_null(struct jw *w, const char *key, long long v)
{
	jw_elem(w, key);
	if (v < 0)
		fputs("null", w->f);
	else
		fprintf(w->f, "%lld", v);
}

static void jw_kbool(struct jw *w, const char *key, bool v)
{
	jw_elem(w, key);
	fputs(v ? "true" : "false", w->f);
}

/* An int array on one line. */
static void jw_kints(struct jw *w, const char *key, const int *v, int n)
{
	jw_elem(w, key);
	fputc('[', w->f);
	for (int i = 0; i < n; i++)
		fprintf(w->f, i ? ", %d" : "%d", v[i]);
	fputc(']', w->f);
}

static void jw_limit(struct jw *w, const char *key, const struct mproc_topo_limit *l)
{
	jw_open(w, key, '{');
	jw_kint_or_null(w, "value", l->value);
	jw_kstr(w, "source", l->source);
	jw_kstr(w, "detail", l->detail);
	jw_close(w, '}');
}

int mproc_topo_write_json(const struct mproc_topo *t, FILE *f)
{
	static const struct {
		enum mproc_topo_order o;
		const char *name;
	} orders[] = {
		{ MPROC_TOPO_PHYSICAL_FIRST, "physical_first" },
		{ MPROC_TOPO_SCATTER, "scatter" },
		{ MPROC_TOPO_COMPACT, "compact" },
	};
	struct jw w = { .f = f };
	const struct mproc_topo_budget *b;
	const struct mproc_topo_counts *c;
	struct mproc_topo_caps caps;
	int n, *pus, a, bb;
	char api[16], list[256];
	int r = 0;

	if (!t || !f)
		return -EINVAL;
	b = &t->budget;
	c = &t->counts;
	n = hwloc_bitmap_weight(t->usable);
	pus = calloc((size_t)n, sizeof(int));
	if (!pus)
		return -ENOMEM;

	jw_open(&w, NULL, '{');
	jw_kstr(&w, "hwloc_version", mproc_topo_hwloc_version());
	snprintf(api, sizeof(api), "0x%x", hwloc_get_api_version());
	jw_kstr(&w, "hwloc_api", api);
	jw_kstr(&w, "origin", t->origin);
	jw_open(&w, "budget", '{');
	jw_kint(&w, "usable", b->usable);
	jw_kint(&w, "usable_cores", b->usable_cores);
	jw_kstr(&w, "bound_by", b->bound_by);
	list_detail(list, sizeof(list), t->usable);
	jw_kstr(&w, "allowed_pus", list);   /* before the quota and MPROC_CPUS caps */
	jw_open(&w, "limits", '{');
	jw_limit(&w, "hardware", &b->hardware);
	jw_limit(&w, "affinity", &b->affinity);
	jw_limit(&w, "cpuset", &b->cpuset);
	jw_limit(&w, "quota", &b->quota);
	jw_limit(&w, "MPROC_CPUS", &b->override);
	jw_close(&w, '}');
	jw_close(&w, '}');

	jw_open(&w, "counts", '{');
	jw_kint(&w, "packages", c->packages);
	jw_kint(&w, "cores", c->cores);
	jw_kint(&w, "pus", c->pus);
	jw_kint(&w, "numa_nodes", c->numa_nodes);
	jw_kint(&w, "smt_per_core", c->smt_per_core);
	jw_close(&w, '}');
	jw_open(&w, "caches", '{');
	jw_kint(&w, "l1d_bytes", (long long)c->l1d_bytes);
	jw_kint(&w, "l2_bytes", (long long)c->l2_bytes);
	jw_kint(&w, "l3_bytes", (long long)c->l3_bytes);
	jw_kint(&w, "l3_count", c->l3_count);
	jw_close(&w, '}');

	jw_open(&w, "pu_orders", '{');
	for (size_t i = 0; i < MPROC__ARRAY_SIZE(orders); i++) {
		int got = mproc_topo_pu_order(t, orders[i].o, pus, n);

		if (got < 0) {
			r = got;
			got = 0;
		}
		jw_kints(&w, orders[i].name, pus, got);
	}
	jw_close(&w, '}');
	jw_open(&w, "pairs", '{');
	for (int p = MPROC_TOPO_SAME_CORE; p <= MPROC_TOPO_CROSS_CORE; p++) {
		if (mproc_topo_pair(t, (enum mproc_topo_placement)p, &a, &bb) == 0) {
			int ab[2] = { a, bb };

			jw_kints(&w, mproc_topo_placement_name((enum mproc_topo_placement)p), ab, 2);
		} else {
			jw_elem(&w, mproc_topo_placement_name((enum mproc_topo_placement)p));
			fputs("null", f);
		}
	}
	jw_close(&w, '}');

	mproc_topo_caps(&caps);
	jw_open(&w, "capabilities", '{');
	jw_kbool(&w, "dev_shm", caps.dev_shm);
	jw_kint_or_null(&w, "dev_shm_free_bytes", caps.dev_shm_free_bytes);
	jw_kbool(&w, "memfd", caps.memfd);
	jw_kbool(&w, "mqueue", caps.mqueue);
	jw_kint_or_null(&w, "mq_msg_max", caps.mq_msg_max);
	jw_kint_or_null(&w, "mq_msgsize_max", caps.mq_msgsize_max);
	jw_kint_or_null(&w, "mq_queues_max", caps.mq_queues_max);
	jw_kint_or_null(&w, "pipe_max_size", caps.pipe_max_size);
	jw_kint_or_null(&w, "rlimit_nproc", caps.rlimit_nproc);
	jw_kint_or_null(&w, "rlimit_nofile", caps.rlimit_nofile);
	jw_kbool(&w, "sysv_msg", caps.sysv_msg);
	jw_close(&w, '}');
	jw_close(&w, '}');
	fputc('\n', f);
	free(pus);
	if (ferror(f))
		return -EIO;
	return r;
}

static void text_size(char *buf, size_t size, size_t bytes)
{
	if (bytes == 0)
		snprintf(buf, size, "unknown");
	else if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) == 0)
		snprintf(buf, size, "%zu MiB", bytes / (1024 * 1024));
	else if (bytes >= 1024 && bytes % 1024 == 0)
		snprintf(buf, size, "%zu KiB", bytes / 1024);
	else
		snprintf(buf, size, "%zu B", bytes);
}

static void text_limit(FILE *f, const char *name, const struct mproc_topo_limit *l)
{
	if (l->value >= 0)
		fprintf(f, "  %-11s %5d  %s  (%s)\n", name, l->value, l->detail, l->source);
	else
		fprintf(f, "  %-11s     -  %s%s%s%s\n", name, l->detail, l->source[0] ? "  (" : "",
			l->source, l->source[0] ? ")" : "");
}

int mproc_topo_write_text(const struct mproc_topo *t, FILE *f)
{
	const struct mproc_topo_budget *b;
	const struct mproc_topo_counts *c;
	struct mproc_topo_caps caps;
	char s1[32], s2[32], s3[32];
	int n, *pus, got;

	if (!t || !f)
		return -EINVAL;
	b = &t->budget;
	c = &t->counts;
	fprintf(f, "usable CPUs: %d (%d physical cores), bound by %s\n", b->usable,
		b->usable_cores, b->bound_by);
	text_limit(f, "hardware", &b->hardware);
	text_limit(f, "affinity", &b->affinity);
	text_limit(f, "cpuset", &b->cpuset);
	text_limit(f, "quota", &b->quota);
	text_limit(f, "MPROC_CPUS", &b->override);
	fprintf(f, "topology (%s, usable part): %d package(s), %d core(s), %d PU(s), "
		"%d NUMA node(s), SMT %d\n", t->origin, c->packages, c->cores, c->pus,
		c->numa_nodes, c->smt_per_core);
	text_size(s1, sizeof(s1), c->l1d_bytes);
	text_size(s2, sizeof(s2), c->l2_bytes);
	text_size(s3, sizeof(s3), c->l3_bytes);
	fprintf(f, "caches: L1d %s, L2 %s, L3 %s x %d\n", s1, s2, s3, c->l3_count);
	n = hwloc_bitmap_weight(t->usable);
	pus = calloc((size_t)n, sizeof(int));
	if (!pus)
		return -ENOMEM;
	got = mproc_topo_pu_order(t, MPROC_TOPO_PHYSICAL_FIRST, pus, n);
	fprintf(f, "PU order (physical first):");
	for (int i = 0; i < got; i++)
		fprintf(f, " %d", pus[i]);
	fputc('\n', f);
	free(pus);
	mproc_topo_caps(&caps);
	text_size(s1, sizeof(s1), caps.dev_shm_free_bytes > 0 ? (size_t)caps.dev_shm_free_bytes : 0);
	fprintf(f, "capabilities: /dev/shm %s (%s free), memfd %s, mqueue %s (msg_max %ld, "
		"msgsize_max %ld, queues_max %ld), SysV msg %s\n",
		caps.dev_shm ? "yes" : "no", s1, caps.memfd ? "yes" : "no",
		caps.mqueue ? "yes" : "no", caps.mq_msg_max, caps.mq_msgsize_max,
		caps.mq_queues_max, caps.sysv_msg ? "yes" : "no");
	fprintf(f, "limits: pipe-max-size %ld, RLIMIT_NPROC %lld, RLIMIT_NOFILE %lld "
		"(-1 = unlimited)\n", caps.pipe_max_size, caps.rlimit_nproc, caps.rlimit_nofile);
	fprintf(f, "hwloc %s\n", mproc_topo_hwloc_version());
	return ferror(f) ? -EIO : 0;
}

int mproc_topo_export_xml(const struct mproc_topo *t, const char *path)
{
	if (!t || !path || !*path)
		return -EINVAL;
	if (hwloc_topology_export_xml(t->topo, path, 0) < 0)
		return errno ? -errno : -EIO;
	return 0;
}
