/*
 * mproc/export.h - MPROC_EXPORT marks a declaration as part of libmproc's ABI.
 *
 * libmproc is built with hidden visibility (lib/meson.build): a function is in the shared
 * library's dynamic symbol table only when its public declaration carries MPROC_EXPORT, so the
 * mproc__ helpers the modules share stay internal (tests/check_exports.sh compares the two).
 * Every public header includes this one; it defines nothing else.
 */
#ifndef MPROC_EXPORT_H
#define MPROC_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define MPROC_EXPORT __attribute__((visibility("default")))
#else
#define MPROC_EXPORT
#endif

#endif /* MPROC_EXPORT_H */
