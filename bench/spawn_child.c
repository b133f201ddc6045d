/*
 * spawn_child.c - mproc-spawn-child, the lean child image of the spawn harness.
 *
 * bench_spawn passes it to mproc_set_executable(), so that spawn/vfork/posix_spawn/forkserver
 * exec this small C program (libmproc and libc only) instead of the harness itself, a C++
 * program that links Google Benchmark, hwloc and libstdc++: Python's spawn execs the
 * interpreter, not the user's application, and the figure should be the start method's cost,
 * not the dynamic linking of a large image. The harness still measures its own image too
 * (spawn/<method>_self). It registers the same entry names as bench_spawn.c, with the same exit
 * code. Run by hand it says what it is and exits 2.
 */
#include <stdio.h>

#include "mproc.h"

#define CHILD_CODE 42   /* bench_spawn.c checks it */

static int child_noop(void *arg)
{
	return CHILD_CODE;
}

MPROC_ENTRY("bench-spawn-noop", child_noop)

int main(int argc, char **argv)
{
	mproc_main_hook(argc, argv);
	fprintf(stderr, "%s: the child image of bench_spawn (mproc_set_executable); it is not "
		"run by hand\n", argc > 0 ? argv[0] : "mproc-spawn-child");
	return 2;
}
