/* error.c - names of return codes (mproc/error.h). */
#include <errno.h>
#include <string.h>

#include "mproc/error.h"
#include "mproc/version.h"

#define VERSION_STR_(x) #x
#define VERSION_STR(x) VERSION_STR_(x)

const char *mproc_version(void)
{
	return VERSION_STR(MPROC_VERSION_MAJOR) "." VERSION_STR(MPROC_VERSION_MINOR) "."
	       VERSION_STR(MPROC_VERSION_PATCH);
}

/* The errnos the library can return, with the text mproc_strerror gives: one line each. The
 * rest fall back to glibc's own static tables (strerrorname_np/strerrordesc_np), which are
 * thread- and async-signal-safe because they only index constant arrays. */
#define MPROC__ERRNO_TABLE(X) \
	X(EPERM, "operation not permitted") \
	X(ENOENT, "no such file or directory") \
	X(ESRCH, "no such process") \
	X(EINTR, "interrupted system call") \
	X(EIO, "input/output error") \
	X(ENXIO, "no such device or address") \
	X(E2BIG, "argument list too long") \
	X(ENOEXEC, "exec format error") \
	X(EBADF, "bad file descriptor") \
	X(ECHILD, "a worker or child died while it held the task (or: no such child)") \
	X(EAGAIN, "would block: the queue is full or empty, or a resource limit was hit") \
	X(ENOMEM, "out of memory") \
	X(EACCES, "permission denied or authentication failed") \
	X(EFAULT, "bad address") \
	X(EBUSY, "resource busy") \
	X(EEXIST, "already exists") \
	X(ENODEV, "no such device") \
	X(ENOTDIR, "not a directory") \
	X(EISDIR, "is a directory") \
	X(EINVAL, "invalid argument") \
	X(ENFILE, "too many open files in the system") \
	X(EMFILE, "too many open files in this process") \
	X(ENOTTY, "inappropriate ioctl") \
	X(EFBIG, "file too large") \
	X(ENOSPC, "no space left on device") \
	X(ESPIPE, "illegal seek") \
	X(EROFS, "read-only file system") \
	X(EPIPE, "the peer is gone or the object is closed") \
	X(EDOM, "argument out of domain") \
	X(ERANGE, "result out of range") \
	X(EDEADLK, "deadlock avoided") \
	X(ENAMETOOLONG, "name too long") \
	X(ENOSYS, "function not implemented") \
	X(ENOTEMPTY, "directory not empty") \
	X(ELOOP, "too many symbolic links") \
	X(ENOMSG, "no message of the desired type") \
	X(EIDRM, "identifier removed") \
	X(ENODATA, "no data available") \
	X(ETIME, "timer expired") \
	X(EPROTO, "protocol error") \
	X(EBADMSG, "malformed message or frame") \
	X(EOVERFLOW, "value too large for the type") \
	X(EILSEQ, "illegal byte sequence") \
	X(ENOTSOCK, "not a socket") \
	X(EDESTADDRREQ, "destination address required") \
	X(EMSGSIZE, "message too long for the limit") \
	X(EPROTOTYPE, "wrong protocol type for socket") \
	X(ENOPROTOOPT, "protocol option not available") \
	X(EPROTONOSUPPORT, "protocol not supported") \
	X(EOPNOTSUPP, "operation not supported") \
	X(EAFNOSUPPORT, "address family not supported") \
	X(EADDRINUSE, "address already in use") \
	X(EADDRNOTAVAIL, "address not available") \
	X(ENETDOWN, "network is down") \
	X(ENETUNREACH, "network unreachable") \
	X(ECONNABORTED, "connection aborted") \
	X(ECONNRESET, "connection reset by peer") \
	X(ENOBUFS, "no buffer space available") \
	X(EISCONN, "already connected") \
	X(ENOTCONN, "not connected") \
	X(ESHUTDOWN, "endpoint shut down") \
	X(ETIMEDOUT, "timed out") \
	X(ECONNREFUSED, "connection refused") \
	X(EHOSTUNREACH, "host unreachable") \
	X(EALREADY, "operation already in progress") \
	X(EINPROGRESS, "operation in progress") \
	X(ESTALE, "stale handle") \
	X(EDQUOT, "disk quota exceeded") \
	X(ECANCELED, "operation cancelled") \
	X(EOWNERDEAD, "the previous holder died while holding the lock (lock now held; state suspect)") \
	X(ENOTRECOVERABLE, "state not recoverable")

struct code_name {
	int code;
	const char *name, *text;
};

static const struct code_name codes[] = {
	{ 0, "OK", "OK: success" },
	{ MPROC_EOF, "MPROC_EOF", "MPROC_EOF: end of stream (the peer closed its end)" },
#define X(e, text) { -(e), #e, #e ": " text },
	MPROC__ERRNO_TABLE(X)
#undef X
};

static const char *lookup(int code, int want_name)
{
	if (code > 0)
		code = -code;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		if (codes[i].code == code)
			return want_name ? codes[i].name : codes[i].text;
	}
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
	{
		const char *s = want_name ? strerrorname_np(-code) : strerrordesc_np(-code);
		if (s)
			return s;
	}
#endif
	return want_name ? "E?" : "E?: unknown error code";
}

const char *mproc_strerror(int code)
{
	return lookup(code, 0);
}

const char *mproc_errname(int code)
{
	return lookup(code, 1);
}
