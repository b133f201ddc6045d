/*
 * floor.h - what bench_baseline and mproc-floor (floor.c) agree on: the operations per timed
 * batch of the probes that are too short to time one by one (a clock read costs about as
 * much as one of them). A request's operation count is a multiple of the probe's batch.
 */
#ifndef MPROC_BENCH_FLOOR_H
#define MPROC_BENCH_FLOOR_H

#define FLOOR_BATCH_CACHELINE 32        /* cache-line round trips per sample */
#define FLOOR_BATCH_SYSCALL 64          /* getppid calls per sample */

#endif /* MPROC_BENCH_FLOOR_H */
