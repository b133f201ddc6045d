/*
 * cgroup.c - the CPU limits of this process's cgroups, read by hand (hwloc reads the cpuset but
 * never the quota): this process's path from /proc/self/cgroup, the mounts from
 * /proc/self/mountinfo (or the standard layouts), then every level from that path up to the
 * mount root; the tightest level wins. v2 (cpu.max, cpuset.cpus.effective) and v1 (cpu,
 * cpuset controllers). topology.c folds the result into the budget.
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
/* cgroups                                                                                  */

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
			mproc__topo_copy_str(cp->v2, sizeof(cp->v2), p);
			cp->has_v2 = true;
			continue;
		}
		if (list_has(c1 + 1, "cpu")) {
			mproc__topo_copy_str(cp->cpu, sizeof(cp->cpu), p);
			cp->has_cpu = true;
		}
		if (list_has(c1 + 1, "cpuset")) {
			mproc__topo_copy_str(cp->cpuset, sizeof(cp->cpuset), p);
			cp->has_cpuset = true;
		}
	}
	fclose(f);
}

bool mproc__topo_is_dir(const char *path)
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
				mproc__topo_copy_str(m->v2_root, sizeof(m->v2_root), mroot);
			} else if (strcmp(fstype, "cgroup") == 0 && super) {
				if (list_has(super, "cpu") && !m->cpu[0]) {
					snprintf(m->cpu, sizeof(m->cpu), "%s%s", root, mpoint);
					mproc__topo_copy_str(m->cpu_root, sizeof(m->cpu_root), mroot);
				}
				if (list_has(super, "cpuset") && !m->cpuset[0]) {
					snprintf(m->cpuset, sizeof(m->cpuset), "%s%s", root, mpoint);
					mproc__topo_copy_str(m->cpuset_root, sizeof(m->cpuset_root), mroot);
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
		if (mproc__topo_is_dir(path))
			mproc__topo_copy_str(m->v2, sizeof(m->v2), path);
	}
	snprintf(path, sizeof(path), "%s/sys/fs/cgroup/cpu", root);
	if (mproc__topo_is_dir(path))
		mproc__topo_copy_str(m->cpu, sizeof(m->cpu), path);
	else {
		snprintf(path, sizeof(path), "%s/sys/fs/cgroup/cpu,cpuacct", root);
		if (mproc__topo_is_dir(path))
			mproc__topo_copy_str(m->cpu, sizeof(m->cpu), path);
	}
	snprintf(path, sizeof(path), "%s/sys/fs/cgroup/cpuset", root);
	if (mproc__topo_is_dir(path))
		mproc__topo_copy_str(m->cpuset, sizeof(m->cpuset), path);
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
	mproc__topo_copy_str(l->source, sizeof(l->source), source);
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
		if (mproc__topo_read_small(file, buf, sizeof(buf)) < 0)
			continue;
		if (sscanf(buf, "%31s %lld", qs, &period) != 2)
			continue;
		if (strcmp(qs, "max") == 0) {
			if (l->value < 0 && !strstr(l->detail, "/"))
				mproc__topo_limit_none(l, file, "max");
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
		if (mproc__topo_read_long(file, &quota) < 0)
			continue;
		if (quota < 0) {
			if (l->value < 0 && !strstr(l->detail, "/"))
				mproc__topo_limit_none(l, file, "-1");
			continue;
		}
		if (mproc__topo_read_long(pfile, &period) < 0)
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
		if (mproc__topo_read_small(file, buf, sizeof(buf)) < 0 || !buf[0])
			continue;
		if (parse_cpu_list(buf, lvl) < 0)
			continue;
		hwloc_bitmap_and(set, set, lvl);
		w = hwloc_bitmap_weight(lvl);
		if (l->value < 0 || w < l->value) {
			l->value = w;
			mproc__topo_copy_str(l->source, sizeof(l->source), file);
			mproc__topo_copy_str(l->detail, sizeof(l->detail), buf);
		}
	} while (cg_up(dir, mount));
	hwloc_bitmap_free(lvl);
}

void mproc__topo_read_cgroups(const char *root, struct mproc_topo_limit *quota,
			 struct mproc_topo_limit *cpuset, hwloc_bitmap_t cpuset_set)
{
	struct cg_paths cp;
	struct cg_mounts m;

	mproc__topo_limit_none(quota, "", "no cgroup CPU quota found");
	mproc__topo_limit_none(cpuset, "", "no cgroup cpuset found");
	hwloc_bitmap_fill(cpuset_set);
	read_proc_cgroup(root, &cp);
	if (!cp.has_v2 && !cp.has_cpu && !cp.has_cpuset) {
		char path[PATH_MAX];

		snprintf(path, sizeof(path), "%s/proc/self/cgroup", root);
		mproc__topo_limit_none(quota, path, "not readable");
		mproc__topo_limit_none(cpuset, path, "not readable");
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
