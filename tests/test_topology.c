/*
 * test_topology.c - the usable CPU budget and its provenance, on hwloc synthetic topologies,
 * XML fixtures (tests/data/topo/) and fake cgroup trees (v1, v2, nested, container mounts) in a
 * temp dir; MPROC_CPUS; the live affinity; PU orders, pairs, pinning, capabilities, JSON; and
 * the mproc-topo command (taskset -c 0 -> budget 1, --bogus -> exit 2).
 *
 * TOPO_DATA_DIR and MPROC_TOPO_EXE come from tests/meson.build; the environment variable
 * MPROC_TOPO_EXE overrides the latter.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mproc.h"
#include "tap.h"
#include "topology.h"

#ifndef TOPO_DATA_DIR
#define TOPO_DATA_DIR "tests/data/topo"
#endif
#ifndef MPROC_TOPO_EXE
#define MPROC_TOPO_EXE "topology/mproc-topo"
#endif

#define SYN_2x4x2 "pack:2 core:4 pu:2"

/* ---------------------------------------------------------------------------------------- */
/* fixtures                                                                                 */

struct fake {
	char root[256];
};

static void fake_init(struct fake *f)
{
	/* A quote in the name: every path in the JSON must come out escaped. */
	snprintf(f->root, sizeof(f->root), "/tmp/mproc-topo-\"q-XXXXXX");
	ASSERT(mkdtemp(f->root) != NULL);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void fake_free(struct fake *f)
{
	nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void mkdirs(const char *path)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0700);
			*p = '/';
		}
	mkdir(buf, 0700);
}

/* Write content to root/rel, creating directories. */
static void fake_write(struct fake *f, const char *rel, const char *content)
{
	char path[512], dir[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", f->root, rel);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	mkdirs(dir);
	fp = fopen(path, "we");
	ASSERT(fp != NULL);
	fputs(content, fp);
	fclose(fp);
}

/* A synthetic topology, no affinity, the given fake root (NULL: an empty one). */
static int syn_new(struct mproc_topo **t, const char *syn, struct fake *f, const char *cpus)
{
	struct mproc_topo_opts o = {
		.synthetic = syn,
		.sys_root = f ? f->root : "/nonexistent-mproc-root",
		.cpus_override = cpus,
		.ignore_affinity = true,
	};

	return mproc_topo_new(t, &o);
}

static const char *topo_exe(void)
{
	const char *e = getenv("MPROC_TOPO_EXE");

	return e && *e ? e : MPROC_TOPO_EXE;
}

/*
 * Run argv with env (NULL-terminated "K=V" list added after clearing MPROC_CPUS); capture
 * stdout and stderr into the buffers. Returns the exit status, or -1.
 */
static int run_cmd(char *const argv[], const char *env_kv, char *out, size_t outsz, char *err,
		   size_t errsz)
{
	int po[2], pe[2], st;
	pid_t pid;
	size_t no = 0, ne = 0;

	ASSERT(pipe2(po, O_CLOEXEC) == 0);
	ASSERT(pipe2(pe, O_CLOEXEC) == 0);
	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		unsetenv("MPROC_CPUS");
		/* Under valgrind hwloc turns its x86 backend off with a 3-line warning on
		 * stderr; turn it off quietly so the one-line checks still hold. */
		if (getenv("LD_PRELOAD") && strstr(getenv("LD_PRELOAD"), "vgpreload"))
			putenv((char *)"HWLOC_COMPONENTS=-x86");
		if (env_kv)
			putenv((char *)env_kv);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	for (;;) {
		ssize_t n = read(po[0], out + no, outsz - 1 - no);

		if (n <= 0)
			break;
		no += (size_t)n;
	}
	for (;;) {
		ssize_t n = read(pe[0], err + ne, errsz - 1 - ne);

		if (n <= 0)
			break;
		ne += (size_t)n;
	}
	out[no] = '\0';
	err[ne] = '\0';
	close(po[0]);
	close(pe[0]);
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* ---------------------------------------------------------------------------------------- */
/* synthetic and XML topologies                                                             */

static void t_syn_counts(void *arg)
{
	struct mproc_topo *t;
	struct mproc_topo_counts c;
	struct mproc_topo_budget b;

	ASSERT_OK(syn_new(&t, SYN_2x4x2, NULL, NULL));
	ASSERT_OK(mproc_topo_counts(t, &c));
	CHECK_EQ(c.packages, 2);
	CHECK_EQ(c.cores, 8);
	CHECK_EQ(c.pus, 16);
	CHECK_EQ(c.smt_per_core, 2);
	CHECK_EQ(c.numa_nodes, 1);
	ASSERT_OK(mproc_topo_budget(t, &b));
	CHECK_EQ(b.usable, 16);
	CHECK_EQ(b.usable_cores, 8);
	CHECK_STR_EQ(b.bound_by, "hardware");
	CHECK_EQ(b.hardware.value, 16);
	CHECK_EQ(b.affinity.value, -1);
	CHECK_EQ(b.cpuset.value, -1);
	CHECK_EQ(b.quota.value, -1);
	CHECK_EQ(b.override.value, -1);
	mproc_topo_free(t);
}

static void t_syn_caches(void *arg)
{
	struct mproc_topo *t;
	struct mproc_topo_counts c;

	ASSERT_OK(syn_new(&t, "pack:2 l3:1(size=32MiB) core:4 l2:1(size=1MiB) l1d:1(size=48KiB) "
			  "pu:2", NULL, NULL));
	ASSERT_OK(mproc_topo_counts(t, &c));
	CHECK_EQ(c.l3_bytes, 32 << 20);
	CHECK_EQ(c.l2_bytes, 1 << 20);
	CHECK_EQ(c.l1d_bytes, 48 << 10);
	CHECK_EQ(c.l3_count, 2);
	mproc_topo_free(t);
}

static void t_syn_no_smt(void *arg)
{
	struct mproc_topo *t;
	struct mproc_topo_counts c;
	int pus[4];

	ASSERT_OK(syn_new(&t, "core:4 pu:1", NULL, NULL));
	ASSERT_OK(mproc_topo_counts(t, &c));
	CHECK_EQ(c.packages, 1);
	CHECK_EQ(c.cores, 4);
	CHECK_EQ(c.pus, 4);
	CHECK_EQ(c.smt_per_core, 1);
	CHECK_EQ(mproc_topo_pu_order(t, MPROC_TOPO_PHYSICAL_FIRST, pus, 4), 4);
	CHECK_EQ(pus[0], 0);
	CHECK_EQ(pus[3], 3);
	mproc_topo_free(t);
}

static void check_order(const struct mproc_topo *t, enum mproc_topo_order o, const int *want,
			int n)
{
	int got[64];
	int r = mproc_topo_pu_order(t, o, got, 64);

	CHECK_EQ(r, n);
	for (int i = 0; i < n && i < r; i++)
		if (got[i] != want[i]) {
			tap_fail_at(__FILE__, __LINE__, "order %d: position %d is PU %d, want %d",
				    (int)o, i, got[i], want[i]);
			break;
		}
}

static void t_syn_orders(void *arg)
{
	static const int compact[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
	/* one PU per core, cores alternating between the packages, then the SMT siblings */
	static const int spread[] = { 0, 8, 2, 10, 4, 12, 6, 14, 1, 9, 3, 11, 5, 13, 7, 15 };
	struct mproc_topo *t;
	int few[3];

	ASSERT_OK(syn_new(&t, SYN_2x4x2, NULL, NULL));
	check_order(t, MPROC_TOPO_COMPACT, compact, 16);
	check_order(t, MPROC_TOPO_PHYSICAL_FIRST, spread, 16);
	check_order(t, MPROC_TOPO_SCATTER, spread, 16);
	/* n smaller than the PU count: the first n */
	CHECK_EQ(mproc_topo_pu_order(t, MPROC_TOPO_PHYSICAL_FIRST, few, 3), 3);
	CHECK_EQ(few[0], 0);
	CHECK_EQ(few[1], 8);
	CHECK_EQ(few[2], 2);
	CHECK_EQ(mproc_topo_pu_order(t, MPROC_TOPO_COMPACT, few, 0), 0);
	mproc_topo_free(t);
}

/* Scatter and physical-first differ when the tree is uneven: scatter alternates packages
 * first, physical-first exhausts first PUs of all cores before any sibling. */
static void t_syn_orders_numa_cache(void *arg)
{
	/* 1 package, 2 L3 groups of 2 cores with 2 PUs: scatter alternates the L3 groups */
	static const int scatter_want[] = { 0, 4, 2, 6, 1, 5, 3, 7 };
	static const int compact_want[] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	struct mproc_topo *t;

	ASSERT_OK(syn_new(&t, "pack:1 l3:2 core:2 pu:2", NULL, NULL));
	check_order(t, MPROC_TOPO_SCATTER, scatter_want, 8);
	check_order(t, MPROC_TOPO_PHYSICAL_FIRST, scatter_want, 8);
	check_order(t, MPROC_TOPO_COMPACT, compact_want, 8);
	mproc_topo_free(t);
}

static void t_syn_orders_restricted(void *arg)
{
	/* cpuset 0-3,8 on the 2x4x2 machine: cores {0,1} {2,3} {8,9}; 5 PUs */
	static const int phys[] = { 0, 8, 2, 1, 3 };
	static const int compact[] = { 0, 1, 2, 3, 8 };
	struct fake f;
	struct mproc_topo *t;
	struct mproc_topo_counts c;

	fake_init(&f);
	fake_write(&f, "proc/self/cgroup", "0::/\n");
	fake_write(&f, "sys/fs/cgroup/cgroup.controllers", "cpuset cpu\n");
	fake_write(&f, "sys/fs/cgroup/cpuset.cpus.effective", "0-3,8\n");
	ASSERT_OK(syn_new(&t, SYN_2x4x2, &f, NULL));
	ASSERT_OK(mproc_topo_counts(t, &c));
	CHECK_EQ(c.pus, 5);
	CHECK_EQ(c.cores, 3);
	CHECK_EQ(c.packages, 2);
	CHECK_EQ(c.smt_per_core, 2);
	check_order(t, MPROC_TOPO_PHYSICAL_FIRST, phys, 5);
	check_order(t, MPROC_TOPO_COMPACT, compact, 5);
	mproc_topo_free(t);
	fake_free(&f);
}

static void t_syn_pairs(void *arg)
{
	struct mproc_topo *t;
	int a = -1, b = -1;

	ASSERT_OK(syn_new(&t, SYN_2x4x2, NULL, NULL));
	CHECK_OK(mproc_topo_pair(t, MPROC_TOPO_SAME_CORE, &a, &b));
	CHECK_EQ(a, 0);
	CHECK_EQ(b, 0);
	CHECK_OK(mproc_topo_pair(t, MPROC_TOPO_CROSS_CORE, &a, &b));
	CHECK_EQ(a, 0);
	CHECK_EQ(b, 2);         /* another core of the same package, not the SMT sibling 1 */
	CHECK_ERR(mproc_topo_pair(t, (enum mproc_topo_placement)7, &a, &b), -EINVAL);
	CHECK_ERR(mproc_topo_pair(t, MPROC_TOPO_SAME_CORE, NULL, &b), -EINVAL);
	CHECK_STR_EQ(mproc_topo_placement_name(MPROC_TOPO_SAME_CORE), "same_core");
	CHECK_STR_EQ(mproc_topo_placement_name(MPROC_TOPO_CROSS_CORE), "cross_core");
	mproc_topo_free(t);

	/* one core with two SMT threads: no cross-core pair */
	ASSERT_OK(syn_new(&t, "core:1 pu:2", NULL, NULL));
	CHECK_ERR(mproc_topo_pair(t, MPROC_TOPO_CROSS_CORE, &a, &b), -ENODEV);
	CHECK_OK(mproc_topo_pair(t, MPROC_TOPO_SAME_CORE, &a, &b));
	CHECK_EQ(a, b);
	mproc_topo_free(t);
}

static void t_xml_fixture(void *arg)
{
	struct mproc_topo_opts o = {
		.xml_path = TOPO_DATA_DIR "/pack2-core4-smt2.xml",
		.sys_root = "/nonexistent-mproc-root",
		.cpus_override = NULL,
		.ignore_affinity = true,
	};
	struct mproc_topo *t;
	struct mproc_topo_counts c;
	struct mproc_topo_budget b;

	unsetenv("MPROC_CPUS");
	ASSERT_OK(mproc_topo_new(&t, &o));
	ASSERT_OK(mproc_topo_counts(t, &c));
	CHECK_EQ(c.packages, 2);
	CHECK_EQ(c.cores, 8);
	CHECK_EQ(c.pus, 16);
	CHECK_EQ(c.smt_per_core, 2);
	CHECK_EQ(c.l3_bytes, 32 << 20);
	CHECK_EQ(c.l3_count, 2);
	ASSERT_OK(mproc_topo_budget(t, &b));
	CHECK_EQ(b.usable, 16);
	CHECK(strstr(b.hardware.source, "pack2-core4-smt2.xml") != NULL);
	mproc_topo_free(t);

	/* the dev machine as lstopo saw it: 2 cores, no SMT */
	o.xml_path = TOPO_DATA_DIR "/dev-2core-kvm.xml";
	ASSERT_OK(mproc_topo_new(&t, &o));
	ASSERT_OK(mproc_topo_counts(t, &c));
	CHECK_EQ(c.cores, 2);
	CHECK_EQ(c.pus, 2);
	CHECK_EQ(c.smt_per_core, 1);
	CHECK_CMP(c.l1d_bytes, >, 0);
	mproc_topo_free(t);
}

static void t_xml_roundtrip(void *arg)
{
	struct fake f;
	char path[512];
	struct mproc_topo *t, *t2;
	struct mproc_topo_counts c;
	struct mproc_topo_opts o = { .sys_root = "/nonexistent", .ignore_affinity = true };

	fake_init(&f);
	snprintf(path, sizeof(path), "%s/topo.xml", f.root);
	ASSERT_OK(syn_new(&t, SYN_2x4x2, NULL, NULL));
	CHECK_OK(mproc_topo_export_xml(t, path));
	CHECK_ERR(mproc_topo_export_xml(t, ""), -EINVAL);
	CHECK_ERR(mproc_topo_export_xml(NULL, path), -EINVAL);
	mproc_topo_free(t);
	o.xml_path = path;
	unsetenv("MPROC_CPUS");
	ASSERT_OK(mproc_topo_new(&t2, &o));
	CHECK_OK(mproc_topo_counts(t2, &c));
	CHECK_EQ(c.cores, 8);
	CHECK_EQ(c.pus, 16);
	mproc_topo_free(t2);
	fake_free(&f);
}

/* ---------------------------------------------------------------------------------------- */
/* cgroups                                                                                  */

static void t_cg_v1_quota_cpuset(void *arg)
{
	struct fake f;
	struct mproc_topo *t;
	struct mproc_topo_budget b;
	struct mproc_topo_counts c;

	fake_init(&f);
	fake_write(&f, "proc/self/cgroup",
		   "5:memory:/x\n3:cpuset:/app/job\n2:cpu,cpuacct:/app/job\n1:name=systemd:/\n0::/\n");
	fake_write(&f, "sys/fs/cgroup/cpu,cpuacct/app/job/cpu.cfs_quota_us", "150000\n");
	fake_write(&f, "sys/fs/cgroup/cpu,cpuacct/app/job/cpu.cfs_period_us", "100000\n");
	fake_write(&f, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
	fake_write(&f, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
	fake_write(&f, "sys/fs/cgroup/cpuset/app/job/cpuset.cpus", "0-3,8\n");
	fake_write(&f, "sys/fs/cgroup/cpuset/cpuset.cpus", "0-15\n");
	ASSERT_OK(syn_new(&t, SYN_2x4x2, &f, NULL));
	ASSERT_OK(mproc_topo_budget(t, &b));
	CHECK_EQ(b.quota.value, 2);
	CHECK_STR_EQ(b.quota.detail, "150000/100000 -> 2");
	CHECK(strstr(b.quota.source, "cpu,cpuacct/app/job/cpu.cfs_quota_us") != NULL);
	CHECK_EQ(b.cpuset.value, 5);
	CHECK_STR_EQ(b.cpuset.detail, "0-3,8");
	CHECK(strstr(b.cpuset.source, "cpuset/app/job/cpuset.cpus") != NULL);
	CHECK_EQ(b.usable, 2);
	CHECK_EQ(b.usable_cores, 2);
	CHECK_STR_EQ(b.bound_by, "quota");
	ASSERT_OK(mproc_topo_counts(t, &c));
	CHECK_EQ(c.pus, 5);
	mproc_topo_free(t);
	fake_free(&f);
}

static void t_cg_v1_no_quota(void *arg)
{
	struct fake f;
	struct mproc_topo *t;
	struct mproc_topo_budget b;

	/* The dev machine: v1 hybrid, every controller at "/", quota -1. */
	fake_init(&f);
	fake_write(&f, "proc/self/cgroup", "3:cpuset:/\n1:cpu:/\n0::/\n");
	fake_write(&f, "sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n");
	fake_write(&f, "sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
	fake_write(&f, "sys/fs/cgroup/cpuset/cpuset.cpus", "0-15\n");
	fake_write(&f, "sys/fs/cgroup/unified/cgroup.procs", "");
	ASSERT_OK(syn_new(&t, SYN_2x4x2, &f, NULL));
	ASSERT_OK(mproc_topo_budget(t, &b));
	CHECK_EQ(b.quota.value, -1);
	CHECK_STR_EQ(b.quota.detail, "-1");
	CHECK_EQ(b.cpuset.value, 16);
	CHECK_EQ(b.usable, 16);
	CHECK_STR_EQ(b.bound_by, "hardware");
	mproc_topo_free(t);
	fake_free(&f);
}

static void t_cg_v1_nested_parent_tighter(void *arg)
{
	struct fake f;
	struct mproc_topo *t;
	struct mproc_topo_budget b;

	fake_init(&f);
	fake_write(&f, "proc/self/cgroup", "1:cpu:/a/b/c\n");
	fake_write(&f, "sys/fs/cgroup/cpu/a/b/c/cpu.cfs_quota_us", "400000\n");
	fake_write(&f, "sys/fs/cgroup/cpu/a/b/c/cpu.cfs_period_us", "100000\n");
	fake_write(&f, "sys/fs/cgroup/cpu/a/b/cpu.cfs_quota_us", "-1\n");
	fake_write(&f, "sys/fs/cgroup/cpu/a/b/cpu.cfs_period_us", "100000\n");
	fake_write(&f, "sys/fs/cgroup/cpu/a/cpu.cfs_quota_us", "50000\n");
	fake_write(&f, "sys/fs/cgroup/cpu/a/cpu.cfs_period_us", "100000\n");
	ASSERT_OK(syn_new(&t, SYN_2x4x2, &f, NULL));
	ASSERT_OK(mproc_topo_budget(t, &b));
	CHECK_EQ(b.quota.value, 1);     /* ceil(0.5) */
	CHECK_STR_EQ(b.quota.detail, "50000/100000 -> 1");
	CHECK(strstr(b.quota.source, "/cpu/a/cpu.cfs_quota_us") != NULL);
	CHECK_EQ(b.usable, 1);
	CHECK_EQ(b.usable_cores, 1);
	CHECK_STR_EQ(b.bound_by, "quota");
	mproc_topo_free(t);
	fake_free(&f);
}

static void t_cg_v2_nested(void *arg)
{
	struct fake f;
	struct mproc_topo *t;
	struct mproc_topo_budget b;

	fake_init(&f);
	fake_write(&f, "proc/self/cgroup", "0::/user.slice/app.scope\n");
	fake_write(&f, "sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n");
	fake_write(&f, "sys/fs/cgroup/cpuset.cpus.effective", "0-15\n");
	fake_write(&f, "sys/fs/cgroup/user.slice/cpu.max", "150000 100000\n");
	fake_write(&f, "sys/fs/cgroup/user.slice/cpuset.cpus.effective", "0-7\n");
	fake_write(&f, "sys/fs/cgroup/user.slice/app.scope/cpu.max", "max 100000\n");
	fake_write(&f, "sys/fs/cgroup/user.slice/app.scope/cpuset.cpus.effective", "0-3,8\n");
	ASSERT_OK(syn_new(&t, SYN_2x4x2, &f, NULL));
	ASSERT_OK(mproc_topo_budget(t, &b));
	CHECK_EQ(b.quota.value, 2);
	CHECK_STR_EQ(b.quota.detail, "150000/100000 -> 2");
	CHECK(strstr(b.quota.source, "sys/fs/cgroup/user.slice/cpu.max") != NULL);
	/* 0-3,8 ∩ 0-7 = 0-3: the intersection counts, the deepest level is named */
	CHECK_EQ(b.cpuset.value, 5);
	CHECK_STR_EQ(b.cpuset.detail, "0-3,8");
	CHECK_EQ(b.usable, 2);
	CHECK_STR_EQ(b.bound_by, "quota");
	mproc_topo_free(t);
	fake_free(&f);
}

static void t_cg_v2_max(void *arg)
{
	struct fake f;
	struct mproc_topo *t;
	struct mproc_topo_budget b;

	fake_init(&f);
	fake_write(&f, "proc/self/cgroup", "0::/svc\n");
	fake_write(&f, "sys/fs/cgroup/cgroup.controllers", "cpuset cpu\n");
	fake_write(&f, "sys/fs/cgroup/svc/cpu.max", "max 100000\n");
	fake_write(&f, "sys/fs/cgroup/svc/cpuset.cpus.effective", "0-11\n");
	ASSERT_OK(syn_new(&t, SYN_2x4x2, &f, NULL));
	ASSERT_OK(mproc_topo_budget(t, &b));
	CHECK_EQ(b.quota.value, -1);
	CHECK_STR_EQ(b.quota.detail, "max");
	CHECK_EQ(b.cpuset.value, 12);
	CHECK_EQ(b.usable, 12);
	CHECK_EQ(b.usable_cores, 6);
	CHECK_STR_EQ(b.bound_by, "cpuset");
	mproc_topo_free(t);
	fake_free(&f);
}

/* Hybrid layout found through mountinfo, with container mount roots (/docker/<id>). */
static void t_cg_mountinfo_container(void *arg)
{
	struct fake f;
	struct mproc_topo *t;
	struct mproc_topo_budget b;

	fake_init(&f);
	fake_write(&f, "proc/self/cgroup",
		   "4:cpuset:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/docker/abc\n");
	fake_write(&f, "proc/self/mountinfo",
		   "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
		   "31 30 0:28 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup "
		   "cgroup rw,cpu,cpuacct\n"
		   "33 30 0:30 /docker/abc /sys/fs/cgroup/cpuset rw,nosuid - cgroup cgroup "
		   "rw,cpuset\n"
		   "34 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
		   "40 30 0:37 /docker/abc /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
	/* inside the container the cgroup's files sit at the mount point itself */
	fake_write(&f, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "250000\n");
	fake_write(&f, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
	fake_write(&f, "sys/fs/cgroup/cpuset/cpuset.cpus", "2-9\n");
	/* a decoy where a naive reader would look: never used */
	fake_write(&f, "sys/fs/cgroup/cpu/cpu.cfs_quota_us", "100000\n");
	fake_write(&f, "sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
	ASSERT_OK(syn_new(&t, SYN_2x4x2, &f, NULL));
	ASSERT_OK(mproc_topo_budget(t, &b));
	CHECK_EQ(b.quota.value, 3);
	CHECK_STR_EQ(b.quota.detail, "250000/100000 -> 3");
	CHECK(strstr(b.quota.source, "cpu,cpuacct/cpu.cfs_quota_us") != NULL);
	CHECK_EQ(b.cpuset.value, 8);
	CHECK_EQ(b.usable, 3);
	CHECK_STR_EQ(b.bound_by, "quota");
	mproc_topo_free(t);
	fake_free(&f);
}

static void t_cg_garbage(void *arg)
{
	struct fake f;
	struct mproc_topo *t;
	struct mproc_topo_budget b;

	/* Unparsable files are ignored, not half-trusted; no crash on odd lines. */
	fake_init(&f);
	fake_write(&f, "proc/self/cgroup", "garbage\n::\n0::/g\n");
	fake_write(&f, "sys/fs/cgroup/cgroup.controllers", "cpu\n");
	fake_write(&f, "sys/fs/cgroup/g/cpu.max", "lots\n");
	fake_write(&f, "sys/fs/cgroup/g/cpuset.cpus.effective", "0-x\n");
	ASSERT_OK(syn_new(&t, SYN_2x4x2, &f, NULL));
	ASSERT_OK(mproc_topo_budget(t, &b));
	CHECK_EQ(b.quota.value, -1);
	CHECK_EQ(b.cpuset.value, -1);
	CHECK_EQ(b.usable, 16);
	mproc_topo_free(t);
	fake_free(&f);
}

static void t_cg_cpuset_outside_topology(void *arg)
{
	struct fake f;
	struct mproc_topo *t = (struct mproc_topo *)&f;

	fake_init(&f);
	fake_write(&f, "proc/self/cgroup", "0::/\n");
	fake_write(&f, "sys/fs/cgroup/cgroup.controllers", "cpuset\n");
	fake_write(&f, "sys/fs/cgroup/cpuset.cpus.effective", "100-101\n");
	CHECK_ERR(syn_new(&t, SYN_2x4x2, &f, NULL), -ENODEV);
	CHECK(t == NULL);
	fake_free(&f);
}

/* ---------------------------------------------------------------------------------------- */
/* MPROC_CPUS                                                                               */

static void t_override_good(void *arg)
{
	struct mproc_topo *t;
	struct mproc_topo_budget b;

	ASSERT_OK(syn_new(&t, SYN_2x4x2, NULL, "3"));
	ASSERT_OK(mproc_topo_budget(t, &b));
	CHECK_EQ(b.usable, 3);
	CHECK_EQ(b.usable_cores, 3);
	CHECK_EQ(b.override.value, 3);
	CHECK_STR_EQ(b.bound_by, "MPROC_CPUS");
	mproc_topo_free(t);

	/* larger than the machine: allowed, not binding */
	ASSERT_OK(syn_new(&t, SYN_2x4x2, NULL, "64"));
	ASSERT_OK(mproc_topo_budget(t, &b));
	CHECK_EQ(b.usable, 16);
	CHECK_STR_EQ(b.bound_by, "hardware");
	mproc_topo_free(t);

	/* from the environment when the option is NULL */
	setenv("MPROC_CPUS", "5", 1);
	ASSERT_OK(syn_new(&t, SYN_2x4x2, NULL, NULL));
	ASSERT_OK(mproc_topo_budget(t, &b));
	CHECK_EQ(b.usable, 5);
	CHECK_STR_EQ(b.bound_by, "MPROC_CPUS");
	mproc_topo_free(t);
	unsetenv("MPROC_CPUS");
}

static void t_override_bad(void *arg)
{
	static const char *const bad[] = {
		"0", "-3", "abc", "", "99999999999", " 2", "2 ", "2x", "+2", "0x10", "1.5",
	};
	struct mproc_topo *t;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = (struct mproc_topo *)bad;
		CHECK_ERR(syn_new(&t, SYN_2x4x2, NULL, bad[i]), -EINVAL);
		CHECK(t == NULL);
	}
	setenv("MPROC_CPUS", "0", 1);
	CHECK_ERR(syn_new(&t, SYN_2x4x2, NULL, NULL), -EINVAL);
	setenv("MPROC_CPUS", "", 1);
	CHECK_ERR(syn_new(&t, SYN_2x4x2, NULL, NULL), -EINVAL);
	unsetenv("MPROC_CPUS");
}

/* ---------------------------------------------------------------------------------------- */
/* live machine: affinity, pinning                                                          */

static void t_live_affinity_one(void *arg)
{
	cpu_set_t set;
	struct mproc_topo *t;
	struct mproc_topo_budget b;
	struct mproc_topo_counts c;
	int cpu = -1;

	/* This case runs in its own forked process: narrowing its mask touches nothing else. */
	ASSERT(sched_getaffinity(0, sizeof(set), &set) == 0);
	if (CPU_COUNT(&set) < 2)
		tap_skip("only one CPU in the affinity mask: nothing to narrow");
	for (int i = 0; i < CPU_SETSIZE && cpu < 0; i++)
		if (CPU_ISSET(i, &set))
			cpu = i;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	ASSERT(sched_setaffinity(0, sizeof(set), &set) == 0);
	unsetenv("MPROC_CPUS");
	ASSERT_OK(mproc_topo_new(&t, NULL));
	ASSERT_OK(mproc_topo_budget(t, &b));
	CHECK_EQ(b.usable, 1);
	CHECK_EQ(b.usable_cores, 1);
	CHECK_STR_EQ(b.bound_by, "affinity");
	CHECK_EQ(b.affinity.value, 1);
	CHECK_CMP(b.hardware.value, >=, 2);     /* hwloc alone says the whole machine */
	ASSERT_OK(mproc_topo_counts(t, &c));
	CHECK_EQ(c.pus, 1);
	mproc_topo_free(t);
}

static void t_live_default(void *arg)
{
	cpu_set_t set;
	struct mproc_topo *t;
	struct mproc_topo_budget b;
	int pus[CPU_SETSIZE];

	ASSERT(sched_getaffinity(0, sizeof(set), &set) == 0);
	unsetenv("MPROC_CPUS");
	ASSERT_OK(mproc_topo_new(&t, NULL));
	ASSERT_OK(mproc_topo_budget(t, &b));
	CHECK_CMP(b.usable, >=, 1);
	CHECK_CMP(b.usable, <=, CPU_COUNT(&set));
	CHECK_EQ(b.affinity.value, CPU_COUNT(&set));
	CHECK_CMP(b.usable_cores, <=, b.usable);
	CHECK_CMP(mproc_topo_pu_order(t, MPROC_TOPO_PHYSICAL_FIRST, pus, CPU_SETSIZE), >=,
		  b.usable);
	for (int i = 0; i < b.usable; i++)
		CHECK(CPU_ISSET(pus[i], &set));
	mproc_topo_free(t);
}

static void t_pin_unpin(void *arg)
{
	cpu_set_t orig, now;
	struct mproc_topo *t;
	int pus[CPU_SETSIZE], n;
	pid_t pid;

	unsetenv("MPROC_CPUS");
	ASSERT(sched_getaffinity(0, sizeof(orig), &orig) == 0);
	ASSERT_OK(mproc_topo_new(&t, NULL));
	n = mproc_topo_pu_order(t, MPROC_TOPO_COMPACT, pus, CPU_SETSIZE);
	ASSERT(n >= 1);
	/* self */
	CHECK_OK(mproc_topo_pin(0, pus[n - 1]));
	ASSERT(sched_getaffinity(0, sizeof(now), &now) == 0);
	CHECK_EQ(CPU_COUNT(&now), 1);
	CHECK(CPU_ISSET(pus[n - 1], &now));
	CHECK_OK(mproc_topo_unpin(t, 0));
	ASSERT(sched_getaffinity(0, sizeof(now), &now) == 0);
	CHECK(CPU_EQUAL(&now, &orig));

	/* another process */
	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		pause();
		_exit(0);
	}
	CHECK_OK(mproc_topo_pin(pid, pus[0]));
	CHECK(sched_getaffinity(pid, sizeof(now), &now) == 0);
	CHECK_EQ(CPU_COUNT(&now), 1);
	CHECK(CPU_ISSET(pus[0], &now));
	CHECK_OK(mproc_topo_unpin(t, pid));
	CHECK(sched_getaffinity(pid, sizeof(now), &now) == 0);
	CHECK(CPU_EQUAL(&now, &orig));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	/* the child is gone: ESRCH, not a crash */
	CHECK_ERR(mproc_topo_pin(pid, pus[0]), -ESRCH);

	CHECK_ERR(mproc_topo_pin(0, -1), -EINVAL);
	CHECK_ERR(mproc_topo_pin(-5, 0), -EINVAL);
	CHECK_ERR(mproc_topo_pin(0, 1 << 20), -EINVAL);
	CHECK_ERR(mproc_topo_unpin(NULL, 0), -EINVAL);
	mproc_topo_free(t);
}

/* ---------------------------------------------------------------------------------------- */
/* bad input, capabilities, output                                                          */

static void t_bad_input(void *arg)
{
	struct mproc_topo *t = NULL;
	struct mproc_topo_opts both = { .xml_path = "x.xml", .synthetic = "core:2" };
	struct mproc_topo_opts missing = {
		.xml_path = "/nonexistent/mproc-topo.xml", .sys_root = "/nonexistent",
	};
	struct mproc_topo_opts badsyn = { .synthetic = "bogus:3", .sys_root = "/nonexistent" };
	struct mproc_topo_counts c;
	struct mproc_topo_budget b;
	int pus[4];

	unsetenv("MPROC_CPUS");
	CHECK_ERR(mproc_topo_new(NULL, NULL), -EINVAL);
	CHECK_ERR(mproc_topo_new(&t, &both), -EINVAL);
	CHECK(mproc_topo_new(&t, &missing) < 0);
	CHECK(t == NULL);
	CHECK(mproc_topo_new(&t, &badsyn) < 0);
	CHECK(t == NULL);
	CHECK_ERR(mproc_topo_counts(NULL, &c), -EINVAL);
	CHECK_ERR(mproc_topo_budget(NULL, &b), -EINVAL);
	mproc_topo_free(NULL);

	ASSERT_OK(syn_new(&t, "core:2 pu:1", NULL, NULL));
	CHECK_ERR(mproc_topo_counts(t, NULL), -EINVAL);
	CHECK_ERR(mproc_topo_pu_order(t, (enum mproc_topo_order)9, pus, 4), -EINVAL);
	CHECK_ERR(mproc_topo_pu_order(t, MPROC_TOPO_COMPACT, NULL, 4), -EINVAL);
	CHECK_ERR(mproc_topo_pu_order(t, MPROC_TOPO_COMPACT, pus, -1), -EINVAL);
	CHECK_ERR(mproc_topo_write_json(t, NULL), -EINVAL);
	CHECK_ERR(mproc_topo_write_text(NULL, stdout), -EINVAL);
	mproc_topo_free(t);
}

static void t_caps(void *arg)
{
	struct mproc_topo_caps caps;

	CHECK_ERR(mproc_topo_caps(NULL), -EINVAL);
	/* The leak check around the case proves the probe's mqueue and SysV queue are gone. */
	ASSERT_OK(mproc_topo_caps(&caps));
	CHECK(caps.pipe_max_size > 0 || caps.pipe_max_size == -1);
	CHECK(caps.rlimit_nofile > 0 || caps.rlimit_nofile == -1);
	CHECK(caps.dev_shm_free_bytes >= 0 || !caps.dev_shm);
	if (access("/proc/sys/fs/mqueue/msg_max", R_OK) == 0)
		CHECK_CMP(caps.mq_msg_max, >, 0);
	tap_diag("dev_shm %d memfd %d mqueue %d sysv_msg %d", caps.dev_shm, caps.memfd,
		 caps.mqueue, caps.sysv_msg);
}

static void t_json(void *arg)
{
	struct fake f;
	struct mproc_topo *t;
	char *buf = NULL;
	size_t len = 0;
	FILE *mem;

	fake_init(&f);
	fake_write(&f, "proc/self/cgroup", "0::/\n");
	fake_write(&f, "sys/fs/cgroup/cgroup.controllers", "cpu\n");
	fake_write(&f, "sys/fs/cgroup/cpu.max", "150000 100000\n");
	ASSERT_OK(syn_new(&t, SYN_2x4x2, &f, NULL));
	mem = open_memstream(&buf, &len);
	ASSERT(mem != NULL);
	CHECK_OK(mproc_topo_write_json(t, mem));
	fclose(mem);
	CHECK(strstr(buf, "\"usable\": 2,") != NULL);
	CHECK(strstr(buf, "\"bound_by\": \"quota\"") != NULL);
	CHECK(strstr(buf, "\"detail\": \"150000/100000 -> 2\"") != NULL);
	CHECK(strstr(buf, "\"physical_first\": [0, 8, 2, 10,") != NULL);
	CHECK(strstr(buf, "\"cross_core\": [0, 2]") != NULL);
	CHECK(strstr(buf, "\"smt_per_core\": 2") != NULL);
	CHECK(strstr(buf, "\"capabilities\": {") != NULL);
	/* the quote in the temp dir name comes out escaped */
	CHECK(strstr(buf, "mproc-topo-\\\"q-") != NULL);
	CHECK(strstr(buf, "mproc-topo-\"q-") == NULL);

	/* A JSON reader accepts it (Python's json, where installed; C never parses JSON). */
	if (access("/usr/bin/python3", X_OK) == 0) {
		char path[512], out[256], err[1024];
		FILE *fp;

		snprintf(path, sizeof(path), "%s/topo.json", f.root);
		fp = fopen(path, "we");
		ASSERT(fp != NULL);
		fputs(buf, fp);
		fclose(fp);
		{
			char *argv[] = { "/usr/bin/python3", "-c",
				"import json,sys; d=json.load(open(sys.argv[1])); "
				"print(d['budget']['usable'], d['budget']['limits']['quota']['value'])",
				path, NULL };

			CHECK_EQ(run_cmd(argv, NULL, out, sizeof(out), err, sizeof(err)), 0);
			CHECK_STR_EQ(out, "2 2\n");
			if (err[0])
				tap_diag("python: %s", err);
		}
	}
	free(buf);

	buf = NULL;
	mem = open_memstream(&buf, &len);
	ASSERT(mem != NULL);
	CHECK_OK(mproc_topo_write_text(t, mem));
	fclose(mem);
	CHECK(strstr(buf, "usable CPUs: 2 (2 physical cores), bound by quota") != NULL);
	free(buf);
	mproc_topo_free(t);
	fake_free(&f);
}

/* ---------------------------------------------------------------------------------------- */
/* the command                                                                              */

static bool have_exe(const char *path)
{
	return access(path, X_OK) == 0;
}

static void t_cmd_taskset(void *arg)
{
	char out[16384], err[1024];
	cpu_set_t set;
	const char *taskset = NULL;
	static const char *const where[] = { "/usr/bin/taskset", "/bin/taskset" };

	for (size_t i = 0; i < 2 && !taskset; i++)
		if (have_exe(where[i]))
			taskset = where[i];
	if (!taskset)
		tap_skip("taskset is not installed");
	if (!have_exe(topo_exe()))
		tap_skip("%s not built", topo_exe());
	ASSERT(sched_getaffinity(0, sizeof(set), &set) == 0);
	if (!CPU_ISSET(0, &set))
		tap_skip("CPU 0 is not in our affinity mask");
	{
		char *argv[] = { (char *)taskset, "-c", "0", (char *)topo_exe(), "--json", NULL };

		CHECK_EQ(run_cmd(argv, NULL, out, sizeof(out), err, sizeof(err)), 0);
	}
	CHECK(strstr(out, "\"usable\": 1,") != NULL);
	CHECK(strstr(out, "\"bound_by\": \"affinity\"") != NULL);
	if (err[0])
		tap_diag("stderr: %s", err);
}

static void t_cmd_default_and_help(void *arg)
{
	char out[16384], err[1024];

	if (!have_exe(topo_exe()))
		tap_skip("%s not built", topo_exe());
	{
		char *argv[] = { (char *)topo_exe(), NULL };

		CHECK_EQ(run_cmd(argv, NULL, out, sizeof(out), err, sizeof(err)), 0);
		CHECK(strncmp(out, "usable CPUs: ", 13) == 0);
		CHECK_STR_EQ(err, "");
	}
	{
		char *argv[] = { (char *)topo_exe(), "--help", NULL };

		CHECK_EQ(run_cmd(argv, NULL, out, sizeof(out), err, sizeof(err)), 0);
		CHECK(strstr(out, "--json") != NULL);
	}
	{
		char *argv[] = { (char *)topo_exe(), NULL };

		CHECK_EQ(run_cmd(argv, "MPROC_CPUS=1", out, sizeof(out), err, sizeof(err)), 0);
		CHECK(strncmp(out, "usable CPUs: 1 ", 15) == 0);
	}
}

static void t_cmd_xml(void *arg)
{
	struct fake f;
	char out[1024], err[1024], path[512];
	struct mproc_topo *t;
	struct mproc_topo_opts o = { .sys_root = "/nonexistent", .ignore_affinity = true };

	if (!have_exe(topo_exe()))
		tap_skip("%s not built", topo_exe());
	fake_init(&f);
	snprintf(path, sizeof(path), "%s/machine.xml", f.root);
	{
		char *argv[] = { (char *)topo_exe(), "--xml", path, NULL };

		CHECK_EQ(run_cmd(argv, NULL, out, sizeof(out), err, sizeof(err)), 0);
	}
	o.xml_path = path;
	unsetenv("MPROC_CPUS");
	CHECK_OK(mproc_topo_new(&t, &o));
	mproc_topo_free(t);
	{
		/* an unwritable target is a failure (1), not a usage error */
		char *argv[] = { (char *)topo_exe(), "--xml", "/nonexistent/dir/x.xml", NULL };

		CHECK_EQ(run_cmd(argv, NULL, out, sizeof(out), err, sizeof(err)), 1);
		CHECK_EQ(count_lines(err), 1);
	}
	fake_free(&f);
}

static void t_cmd_bad_usage(void *arg)
{
	static const char *const bad_args[][3] = {
		{ "--bogus", NULL, NULL },
		{ "-x", NULL, NULL },
		{ "--xml", NULL, NULL },
		{ "--json", "--xml", "f" },
		{ "json", NULL, NULL },
	};
	static const char *const bad_env[] = {
		"MPROC_CPUS=0", "MPROC_CPUS=-3", "MPROC_CPUS=abc", "MPROC_CPUS=",
		"MPROC_CPUS=99999999999",
	};
	char out[4096], err[1024];

	if (!have_exe(topo_exe()))
		tap_skip("%s not built", topo_exe());
	for (size_t i = 0; i < sizeof(bad_args) / sizeof(bad_args[0]); i++) {
		char *argv[5] = { (char *)topo_exe() };

		for (int j = 0; j < 3 && bad_args[i][j]; j++)
			argv[j + 1] = (char *)bad_args[i][j];
		CHECK_EQ(run_cmd(argv, NULL, out, sizeof(out), err, sizeof(err)), 2);
		CHECK_EQ(count_lines(err), 1);
		CHECK(strstr(err, "--json") != NULL);  /* names the valid choices */
		CHECK_STR_EQ(out, "");
	}
	{
		char *argv[] = { (char *)topo_exe(), "--bogus", NULL };

		run_cmd(argv, NULL, out, sizeof(out), err, sizeof(err));
		CHECK(strstr(err, "'--bogus'") != NULL);
	}
	for (size_t i = 0; i < sizeof(bad_env) / sizeof(bad_env[0]); i++) {
		char *argv[] = { (char *)topo_exe(), "--json", NULL };

		CHECK_EQ(run_cmd(argv, bad_env[i], out, sizeof(out), err, sizeof(err)), 2);
		CHECK_EQ(count_lines(err), 1);
		CHECK(strstr(err, "MPROC_CPUS") != NULL);
		CHECK(strstr(err, "positive integer") != NULL);
		CHECK_STR_EQ(out, "");
	}
}

int main(int argc, char **argv)
{
	tap_add("topology/synthetic/counts", t_syn_counts, NULL);
	tap_add("topology/synthetic/caches", t_syn_caches, NULL);
	tap_add("topology/synthetic/no_smt", t_syn_no_smt, NULL);
	tap_add("topology/synthetic/orders", t_syn_orders, NULL);
	tap_add("topology/synthetic/orders_cache_groups", t_syn_orders_numa_cache, NULL);
	tap_add("topology/synthetic/orders_restricted", t_syn_orders_restricted, NULL);
	tap_add("topology/synthetic/pairs", t_syn_pairs, NULL);
	tap_add("topology/xml/fixture", t_xml_fixture, NULL);
	tap_add("topology/xml/roundtrip", t_xml_roundtrip, NULL);
	tap_add("topology/cgroup/v1_quota_cpuset", t_cg_v1_quota_cpuset, NULL);
	tap_add("topology/cgroup/v1_no_quota", t_cg_v1_no_quota, NULL);
	tap_add("topology/cgroup/v1_nested_parent_tighter", t_cg_v1_nested_parent_tighter, NULL);
	tap_add("topology/cgroup/v2_nested", t_cg_v2_nested, NULL);
	tap_add("topology/cgroup/v2_max", t_cg_v2_max, NULL);
	tap_add("topology/cgroup/mountinfo_container", t_cg_mountinfo_container, NULL);
	tap_add("topology/cgroup/garbage", t_cg_garbage, NULL);
	tap_add("topology/cgroup/cpuset_outside_topology", t_cg_cpuset_outside_topology, NULL);
	tap_add("topology/override/good", t_override_good, NULL);
	tap_add("topology/override/bad", t_override_bad, NULL);
	tap_add("topology/live/affinity_one", t_live_affinity_one, NULL);
	tap_add("topology/live/default", t_live_default, NULL);
	tap_add("topology/live/pin_unpin", t_pin_unpin, NULL);
	tap_add("topology/api/bad_input", t_bad_input, NULL);
	tap_add("topology/caps/probe", t_caps, NULL);
	tap_add("topology/output/json_text", t_json, NULL);
	tap_add("topology/cmd/taskset_json", t_cmd_taskset, NULL);
	tap_add("topology/cmd/default_help", t_cmd_default_and_help, NULL);
	tap_add("topology/cmd/xml", t_cmd_xml, NULL);
	tap_add("topology/cmd/bad_usage", t_cmd_bad_usage, NULL);
	return tap_run(argc, argv);
}
