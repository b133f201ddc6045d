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

/* One switch, generated from a table of the errnos the library can return; the rest fall back
 * to glibc's own static tables (strerrorname_np/strerrordesc_np), which are thread- and
 * async-signal-safe because they only index constant arrays. */
static const char *lookup(int code, int want_name)
{
	if (code > 0)
		code = -code;
	switch (code) {
	case 0:
		return want_name ? "OK" : "OK: success";
	case MPROC_EOF:
		return want_name ? "MPROC_EOF" : "MPROC_EOF: end of stream (the peer closed its end)";
#ifdef EPERM
	case -EPERM:
		return want_name ? "EPERM" : "EPERM: operation not permitted";
#endif
#ifdef ENOENT
	case -ENOENT:
		return want_name ? "ENOENT" : "ENOENT: no such file or directory";
#endif
#ifdef ESRCH
	case -ESRCH:
		return want_name ? "ESRCH" : "ESRCH: no such process";
#endif
#ifdef EINTR
	case -EINTR:
		return want_name ? "EINTR" : "EINTR: interrupted system call";
#endif
#ifdef EIO
	case -EIO:
		return want_name ? "EIO" : "EIO: input/output error";
#endif
#ifdef ENXIO
	case -ENXIO:
		return want_name ? "ENXIO" : "ENXIO: no such device or address";
#endif
#ifdef E2BIG
	case -E2BIG:
		return want_name ? "E2BIG" : "E2BIG: argument list too long";
#endif
#ifdef ENOEXEC
	case -ENOEXEC:
		return want_name ? "ENOEXEC" : "ENOEXEC: exec format error";
#endif
#ifdef EBADF
	case -EBADF:
		return want_name ? "EBADF" : "EBADF: bad file descriptor";
#endif
#ifdef ECHILD
	case -ECHILD:
		return want_name ? "ECHILD" : "ECHILD: a worker or child died while it held the task (or: no such child)";
#endif
#ifdef EAGAIN
	case -EAGAIN:
		return want_name ? "EAGAIN" : "EAGAIN: would block: the queue is full or empty, or a resource limit was hit";
#endif
#ifdef ENOMEM
	case -ENOMEM:
		return want_name ? "ENOMEM" : "ENOMEM: out of memory";
#endif
#ifdef EACCES
	case -EACCES:
		return want_name ? "EACCES" : "EACCES: permission denied or authentication failed";
#endif
#ifdef EFAULT
	case -EFAULT:
		return want_name ? "EFAULT" : "EFAULT: bad address";
#endif
#ifdef EBUSY
	case -EBUSY:
		return want_name ? "EBUSY" : "EBUSY: resource busy";
#endif
#ifdef EEXIST
	case -EEXIST:
		return want_name ? "EEXIST" : "EEXIST: already exists";
#endif
#ifdef ENODEV
	case -ENODEV:
		return want_name ? "ENODEV" : "ENODEV: no such device";
#endif
#ifdef ENOTDIR
	case -ENOTDIR:
		return want_name ? "ENOTDIR" : "ENOTDIR: not a directory";
#endif
#ifdef EISDIR
	case -EISDIR:
		return want_name ? "EISDIR" : "EISDIR: is a directory";
#endif
#ifdef EINVAL
	case -EINVAL:
		return want_name ? "EINVAL" : "EINVAL: invalid argument";
#endif
#ifdef ENFILE
	case -ENFILE:
		return want_name ? "ENFILE" : "ENFILE: too many open files in the system";
#endif
#ifdef EMFILE
	case -EMFILE:
		return want_name ? "EMFILE" : "EMFILE: too many open files in this process";
#endif
#ifdef ENOTTY
	case -ENOTTY:
		return want_name ? "ENOTTY" : "ENOTTY: inappropriate ioctl";
#endif
#ifdef EFBIG
	case -EFBIG:
		return want_name ? "EFBIG" : "EFBIG: file too large";
#endif
#ifdef ENOSPC
	case -ENOSPC:
		return want_name ? "ENOSPC" : "ENOSPC: no space left on device";
#endif
#ifdef ESPIPE
	case -ESPIPE:
		return want_name ? "ESPIPE" : "ESPIPE: illegal seek";
#endif
#ifdef EROFS
	case -EROFS:
		return want_name ? "EROFS" : "EROFS: read-only file system";
#endif
#ifdef EPIPE
	case -EPIPE:
		return want_name ? "EPIPE" : "EPIPE: the peer is gone or the object is closed";
#endif
#ifdef EDOM
	case -EDOM:
		return want_name ? "EDOM" : "EDOM: argument out of domain";
#endif
#ifdef ERANGE
	case -ERANGE:
		return want_name ? "ERANGE" : "ERANGE: result out of range";
#endif
#ifdef EDEADLK
	case -EDEADLK:
		return want_name ? "EDEADLK" : "EDEADLK: deadlock avoided";
#endif
#ifdef ENAMETOOLONG
	case -ENAMETOOLONG:
		return want_name ? "ENAMETOOLONG" : "ENAMETOOLONG: name too long";
#endif
#ifdef ENOSYS
	case -ENOSYS:
		return want_name ? "ENOSYS" : "ENOSYS: function not implemented";
#endif
#ifdef ENOTEMPTY
	case -ENOTEMPTY:
		return want_name ? "ENOTEMPTY" : "ENOTEMPTY: directory not empty";
#endif
#ifdef ELOOP
	case -ELOOP:
		return want_name ? "ELOOP" : "ELOOP: too many symbolic links";
#endif
#ifdef ENOMSG
	case -ENOMSG:
		return want_name ? "ENOMSG" : "ENOMSG: no message of the desired type";
#endif
#ifdef EIDRM
	case -EIDRM:
		return want_name ? "EIDRM" : "EIDRM: identifier removed";
#endif
#ifdef ENODATA
	case -ENODATA:
		return want_name ? "ENODATA" : "ENODATA: no data available";
#endif
#ifdef ETIME
	case -ETIME:
		return want_name ? "ETIME" : "ETIME: timer expired";
#endif
#ifdef EPROTO
	case -EPROTO:
		return want_name ? "EPROTO" : "EPROTO: protocol error";
#endif
#ifdef EBADMSG
	case -EBADMSG:
		return want_name ? "EBADMSG" : "EBADMSG: malformed message or frame";
#endif
#ifdef EOVERFLOW
	case -EOVERFLOW:
		return want_name ? "EOVERFLOW" : "EOVERFLOW: value too large for the type";
#endif
#ifdef EILSEQ
	case -EILSEQ:
		return want_name ? "EILSEQ" : "EILSEQ: illegal byte sequence";
#endif
#ifdef ENOTSOCK
	case -ENOTSOCK:
		return want_name ? "ENOTSOCK" : "ENOTSOCK: not a socket";
#endif
#ifdef EDESTADDRREQ
	case -EDESTADDRREQ:
		return want_name ? "EDESTADDRREQ" : "EDESTADDRREQ: destination address required";
#endif
#ifdef EMSGSIZE
	case -EMSGSIZE:
		return want_name ? "EMSGSIZE" : "EMSGSIZE: message too long for the limit";
#endif
#ifdef EPROTOTYPE
	case -EPROTOTYPE:
		return want_name ? "EPROTOTYPE" : "EPROTOTYPE: wrong protocol type for socket";
#endif
#ifdef ENOPROTOOPT
	case -ENOPROTOOPT:
		return want_name ? "ENOPROTOOPT" : "ENOPROTOOPT: protocol option not available";
#endif
#ifdef EPROTONOSUPPORT
	case -EPROTONOSUPPORT:
		return want_name ? "EPROTONOSUPPORT" : "EPROTONOSUPPORT: protocol not supported";
#endif
#ifdef EOPNOTSUPP
	case -EOPNOTSUPP:
		return want_name ? "EOPNOTSUPP" : "EOPNOTSUPP: operation not supported";
#endif
#ifdef EAFNOSUPPORT
	case -EAFNOSUPPORT:
		return want_name ? "EAFNOSUPPORT" : "EAFNOSUPPORT: address family not supported";
#endif
#ifdef EADDRINUSE
	case -EADDRINUSE:
		return want_name ? "EADDRINUSE" : "EADDRINUSE: address already in use";
#endif
#ifdef EADDRNOTAVAIL
	case -EADDRNOTAVAIL:
		return want_name ? "EADDRNOTAVAIL" : "EADDRNOTAVAIL: address not available";
#endif
#ifdef ENETDOWN
	case -ENETDOWN:
		return want_name ? "ENETDOWN" : "ENETDOWN: network is down";
#endif
#ifdef ENETUNREACH
	case -ENETUNREACH:
		return want_name ? "ENETUNREACH" : "ENETUNREACH: network unreachable";
#endif
#ifdef ECONNABORTED
	case -ECONNABORTED:
		return want_name ? "ECONNABORTED" : "ECONNABORTED: connection aborted";
#endif
#ifdef ECONNRESET
	case -ECONNRESET:
		return want_name ? "ECONNRESET" : "ECONNRESET: connection reset by peer";
#endif
#ifdef ENOBUFS
	case -ENOBUFS:
		return want_name ? "ENOBUFS" : "ENOBUFS: no buffer space available";
#endif
#ifdef EISCONN
	case -EISCONN:
		return want_name ? "EISCONN" : "EISCONN: already connected";
#endif
#ifdef ENOTCONN
	case -ENOTCONN:
		return want_name ? "ENOTCONN" : "ENOTCONN: not connected";
#endif
#ifdef ESHUTDOWN
	case -ESHUTDOWN:
		return want_name ? "ESHUTDOWN" : "ESHUTDOWN: endpoint shut down";
#endif
#ifdef ETIMEDOUT
	case -ETIMEDOUT:
		return want_name ? "ETIMEDOUT" : "ETIMEDOUT: timed out";
#endif
#ifdef ECONNREFUSED
	case -ECONNREFUSED:
		return want_name ? "ECONNREFUSED" : "ECONNREFUSED: connection refused";
#endif
#ifdef EHOSTUNREACH
	case -EHOSTUNREACH:
		return want_name ? "EHOSTUNREACH" : "EHOSTUNREACH: host unreachable";
#endif
#ifdef EALREADY
	case -EALREADY:
		return want_name ? "EALREADY" : "EALREADY: operation already in progress";
#endif
#ifdef EINPROGRESS
	case -EINPROGRESS:
		return want_name ? "EINPROGRESS" : "EINPROGRESS: operation in progress";
#endif
#ifdef ESTALE
	case -ESTALE:
		return want_name ? "ESTALE" : "ESTALE: stale handle";
#endif
#ifdef EDQUOT
	case -EDQUOT:
		return want_name ? "EDQUOT" : "EDQUOT: disk quota exceeded";
#endif
#ifdef ECANCELED
	case -ECANCELED:
		return want_name ? "ECANCELED" : "ECANCELED: operation cancelled";
#endif
#ifdef EOWNERDEAD
	case -EOWNERDEAD:
		return want_name ? "EOWNERDEAD" : "EOWNERDEAD: the previous holder died while holding the lock (lock now held; state suspect)";
#endif
#ifdef ENOTRECOVERABLE
	case -ENOTRECOVERABLE:
		return want_name ? "ENOTRECOVERABLE" : "ENOTRECOVERABLE: state not recoverable";
#endif
	default:
		break;
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
