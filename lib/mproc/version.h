/*
 * mproc/version.h - the library's version, at compile time and at run time.
 */
#ifndef MPROC_VERSION_H
#define MPROC_VERSION_H

#include <mproc/export.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MPROC_VERSION_MAJOR 0
#define MPROC_VERSION_MINOR 1
#define MPROC_VERSION_PATCH 0

/* "0.1.0": the version of the library actually loaded. */
MPROC_EXPORT const char *mproc_version(void);

#ifdef __cplusplus
}
#endif

#endif /* MPROC_VERSION_H */
