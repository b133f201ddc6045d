/*
 * pool_internal.h - test hooks of the pool (lib/pool.c). Not installed.
 *
 * mproc__pool_test_hook, when set before mproc_pool_new (workers inherit it through fork), is
 * called in a worker at fixed points of a task's life so that fault tests can kill the worker
 * at exactly that moment: after the claim and before the task is read (CLAIMED), and after
 * the result bytes are written and before the slot is published as done (WRITTEN).
 */
#ifndef MPROC_POOL_INTERNAL_H
#define MPROC_POOL_INTERNAL_H

#include <stddef.h>

enum mproc__pool_hook_point {
	MPROC__POOL_HOOK_CLAIMED = 1,
	MPROC__POOL_HOOK_WRITTEN = 2,
};

extern void (*mproc__pool_test_hook)(int point, const void *task, size_t len);

#endif /* MPROC_POOL_INTERNAL_H */
