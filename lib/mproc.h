/*
 * mproc.h - libmproc: every start method and IPC primitive of Python's multiprocessing,
 * natively in C. Include this one header; each module has its own in mproc/.
 *
 * Conventions (see each module's header for the details):
 *  - functions return 0 or a negative errno; data calls return a size >= 0 or -errno;
 *  - objects are opaque, made by mproc_<obj>_new/_open and destroyed by _free/_close,
 *    which accept NULL and half-built objects;
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
