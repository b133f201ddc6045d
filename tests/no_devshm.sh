#!/bin/sh
# no_devshm.sh MODE TEST [ARGS...] - run a test executable as if on a machine without a usable
# /dev/shm (AWS Lambda has none; Docker gives 64 MiB): in a private mount namespace where
# /dev/shm is an empty read-only directory (MODE=none) or a 1 MiB tmpfs (MODE=tiny). Every
# primitive must then either work (memfd, anonymous shared mappings) or fail at creation with
# a clear -errno; the tests skip, with the reason, the cases that need a writable /dev/shm.
# Needs root (unshare -m); otherwise the whole test is skipped (exit 77) saying why.
set -u
mode=$1
shift
if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null 2>&1; then
	echo "1..0 # SKIP needs root and unshare(1) for a private mount namespace"
	exit 77
fi
if ! unshare -m true 2>/dev/null; then
	echo "1..0 # SKIP unshare -m is not permitted here (container without CAP_SYS_ADMIN?)"
	exit 77
fi
empty=$(mktemp -d /tmp/mproc-noshm.XXXXXX) || exit 1
trap 'rmdir "$empty" 2>/dev/null' EXIT
case $mode in
none) setup="mount --bind '$empty' /dev/shm && mount -o remount,bind,ro /dev/shm" ;;
tiny) setup="mount -t tmpfs -o size=1m,mode=1777 tmpfs /dev/shm" ;;
*) echo "no_devshm.sh: unknown mode '$mode' (valid: none, tiny)" >&2; exit 2 ;;
esac
# MPROC_TEST_NO_DEVSHM tells the tests which world they are in (for skip reasons only).
MPROC_TEST_NO_DEVSHM=$mode unshare -m sh -c "$setup && exec \"\$@\"" sh "$@"
