/*
 * topo_output.c - a topology written out: JSON (topology.json of a run, mproc-topo --json), text
 * (mproc-topo), hwloc XML (a fixture for the tests).
 */
#include <stdio.h>
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

/* Long (about 105 lines): the JSON document (topology.json) field by field, in its order
 * (results/README.md describes it); a split would only cut the document in two. */
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
	mproc__topo_list_detail(list, sizeof(list), t->usable);
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
