/*
 * process_arena.c - where process objects live: chunks wiped on fork (the comment below says
 * why), with malloc as the fallback. process.c allocates and releases through
 * mproc__process_alloc and mproc__process_release, and calls mproc__process_arena_init once.
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"
#include "process_internal.h"

#if MPROC__ASAN
#include <sanitizer/lsan_interface.h>
#endif

/*
 * Process objects live in chunks of their own that are wiped on fork (MADV_WIPEONFORK), not on
 * the heap. fork(2) write-protects every private page of the parent, and the parent writes the
 * object (pid, pidfd, state) right after fork while the child still maps the page: a
 * copy-on-write fault and a page copy on the start path of every fork (tools/fork_steps.c,
 * "heap_write", measures it on the machine at hand). The kernel copies nothing of a wiped range
 * to the child, so the parent's pages stay writable. In a fork child every inherited
 * object reads as zeros, which is P_FOREIGN: the object of a process that is not the caller's
 * child (Python: "can only join a child process"); calls on it return -ECHILD, free does
 * nothing, and the child never hands the inherited memory out again: the arena's header, in the
 * first chunk, is wiped too, so the child starts with no chunks and maps its own.
 * Without MADV_WIPEONFORK (Linux < 4.14) or memory for a chunk, objects come from malloc, and a
 * child sees the parent's objects as they were at fork.
 */
#define ARENA_CHUNK ((size_t)64 << 10)
struct proc_arena {
	_Atomic int lock;       /* a spin lock: held for a few stores; zero (free) in a child */
	struct mproc_process *free;
};
#define ARENA_SLOT (((sizeof(struct mproc_process) + 63) / 64) * 64)
static struct proc_arena *arena;        /* set once by init(); NULL: objects come from malloc */
_Static_assert(sizeof(struct proc_arena) <= ARENA_SLOT, "the header fits in slot 0");

static void *arena_chunk(void)
{
	void *c = mmap(NULL, ARENA_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	if (c == MAP_FAILED)
		return NULL;
	if (madvise(c, ARENA_CHUNK, MADV_WIPEONFORK) < 0) {
		munmap(c, ARENA_CHUNK);
		return NULL;
	}
#if MPROC__ASAN
	/* LeakSanitizer scans globals, stacks and the heap, not mmap'd memory: what only a
	 * process object points to (an exec method's strings) would read as leaked. */
	__lsan_register_root_region(c, ARENA_CHUNK);
#endif
	return c;
}

/* Put the slots of chunk [from, ARENA_CHUNK) on the free list (lock held). */
static void arena_add(char *c, size_t from)
{
	for (size_t off = ARENA_CHUNK - ARENA_SLOT; off >= from && off < ARENA_CHUNK;
	     off -= ARENA_SLOT) {
		struct mproc_process *p = (struct mproc_process *)(c + off);

		p->next_free = arena->free;
		arena->free = p;
	}
}

void mproc__process_arena_init(void)
{
	char *c = arena_chunk();

	if (!c)
		return;
	arena = (struct proc_arena *)c;
	arena_add(c, ARENA_SLOT);       /* slot 0 holds the header */
}

static void arena_lock(void)
{
	while (atomic_exchange_explicit(&arena->lock, 1, memory_order_acquire))
		sched_yield();
}

static void arena_unlock(void)
{
	atomic_store_explicit(&arena->lock, 0, memory_order_release);
}

struct mproc_process *mproc__process_alloc(void)
{
	struct mproc_process *p = NULL;
	char *c;

	if (arena) {
		arena_lock();
		if (!arena->free && (c = arena_chunk()) != NULL)
			arena_add(c, 0);
		p = arena->free;
		if (p)
			arena->free = p->next_free;
		arena_unlock();
	}
	if (p) {
		memset(p, 0, sizeof(*p));
		p->in_arena = true;
		return p;
	}
	/* malloc + memset, not calloc: glibc's calloc skips the thread cache and writes the
	 * arena, one more page for a forking parent to fault in again after every fork. */
	p = malloc(sizeof(*p));
	if (p)
		memset(p, 0, sizeof(*p));
	return p;
}

void mproc__process_release(struct mproc_process *p)
{
	if (!p->in_arena) {
		free(p);
		return;
	}
	p->state = P_FOREIGN;   /* a stale pointer gets -ECHILD, not a live object's state */
	arena_lock();
	p->next_free = arena->free;
	arena->free = p;
	arena_unlock();
}
