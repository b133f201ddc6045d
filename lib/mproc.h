/*
 * mproc.h - libmproc: every start method and IPC primitive of Python's multiprocessing,
 * natively in C. Include this one header; each module has its own in mproc/.
 *
 * Conventions (see each module's header for the details):
 *  - functions return 0 or a negative errno; data calls return a size >= 0 or -errno;
 *  - objects are opaque, made by mproc_<obj>_new/_open/_pair and released by _free, which
 *    accepts NULL and half-built objects; _close, where a type has one, refuses new work and
 *    releases nothing (pool, queue: later calls get -EPIPE, _free still follows). Two old
 *    names release instead and are kept for their callers: mproc_conn_close and the manager
 *    proxies' _close (aliases of _free). mproc_process_close is Python's Process.close: it
 *    gives up an ended process's fds, and the object stays until mproc_process_free;
 *  - every fd the library opens is close-on-exec; every wait loop retries EINTR against a
 *    CLOCK_MONOTONIC deadline; the library never prints, never exits, never installs a
 *    process-wide signal handler behind the caller's back.
 *
 * Examples: examples/ (README.md, "Use the library"): the C twins of the Python snippets, from
 * examples/pipe.c, the smallest, to examples/futures.c.
 */
#ifndef MPROC_H
#define MPROC_H

#include <mproc/error.h>
#include <mproc/version.h>
#include <mproc/log.h>
#include <mproc/process.h>
#include <mproc/conn.h>
#include <mproc/queue.h>
#include <mproc/shm.h>
#include <mproc/sync.h>
#include <mproc/manager.h>
#include <mproc/pool.h>

#endif /* MPROC_H */
