/*
 * mproc-topo - print the machine as mproc sees it: the usable CPU budget with the source of
 * every limit, cores, caches, PU orders and capabilities.
 *
 *	mproc-topo            human summary
 *	mproc-topo --json     JSON on stdout
 *	mproc-topo --xml F    hwloc XML into F
 *	mproc-topo --version  the version of mproc it belongs to
 *
 * Exit 0 on success, 2 on bad usage or a bad MPROC_CPUS, 1 on any other failure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mproc/error.h"
#include "mproc/version.h"
#include "topology.h"

static const char usage[] =
	"usage: mproc-topo [--json | --xml FILE | --help | --version]\n"
	"  (no option)  human summary of the usable CPU budget, cores, caches, capabilities\n"
	"  --json       the same as JSON on stdout\n"
	"  --xml FILE   write the hwloc topology as XML to FILE\n"
	"  --help       this text\n"
	"  --version    print \"mproc-topo X.Y.Z\" and exit\n"
	"environment: MPROC_CPUS=N (a positive integer) caps the budget\n";

int main(int argc, char **argv)
{
	enum { TEXT, JSON, XML } mode = TEXT;
	const char *xml = NULL;
	struct mproc_topo *t = NULL;
	int r;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		} else if (strcmp(a, "--version") == 0) {
			printf("mproc-topo %d.%d.%d\n", MPROC_VERSION_MAJOR, MPROC_VERSION_MINOR,
			       MPROC_VERSION_PATCH);
			return 0;
		} else if (strcmp(a, "--json") == 0 && mode == TEXT) {
			mode = JSON;
		} else if (strcmp(a, "--xml") == 0 && mode == TEXT) {
			if (i + 1 >= argc || !argv[i + 1][0]) {
				fprintf(stderr, "mproc-topo: --xml needs a FILE (valid: --json, "
					"--xml FILE, --help, --version)\n");
				return 2;
			}
			mode = XML;
			xml = argv[++i];
		} else if (strncmp(a, "--xml=", 6) == 0 && a[6] && mode == TEXT) {
			mode = XML;
			xml = a + 6;
		} else if (strcmp(a, "--json") == 0 || strncmp(a, "--xml", 5) == 0) {
			fprintf(stderr, "mproc-topo: '%s': choose one of --json, --xml FILE (see "
				"mproc-topo --help)\n", a);
			return 2;
		} else {
			fprintf(stderr, "mproc-topo: unknown option '%s' (valid: --json, --xml FILE, "
				"--help, --version)\n", a);
			return 2;
		}
	}

	r = mproc_topo_new(&t, NULL);
	if (r == -EINVAL) {
		const char *v = getenv("MPROC_CPUS");

		fprintf(stderr, "mproc-topo: MPROC_CPUS='%s' is not valid (valid: a positive "
			"integer, or unset)\n", v ? v : "");
		return 2;
	}
	if (r < 0) {
		fprintf(stderr, "mproc-topo: cannot read the topology: %s\n", mproc_strerror(r));
		return 1;
	}
	switch (mode) {
	case TEXT:
		r = mproc_topo_write_text(t, stdout);
		break;
	case JSON:
		r = mproc_topo_write_json(t, stdout);
		break;
	case XML:
		r = mproc_topo_export_xml(t, xml);
		break;
	}
	if (r == 0 && fflush(stdout) != 0)
		r = -errno;
	mproc_topo_free(t);
	if (r < 0) {
		fprintf(stderr, "mproc-topo: %s%s%s\n", mode == XML ? xml : "",
			mode == XML ? ": " : "", mproc_strerror(r));
		return 1;
	}
	return 0;
}
