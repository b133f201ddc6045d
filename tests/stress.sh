#!/bin/sh
# stress.sh BUILD [MESON_TEST_ARGS...] - `make test-stress`: the unit, fault and leak suites of
# build dir BUILD with a CPU hog the size of the machine beside them, so that a test which
# assumes one process runs before another (an ordering the library does not promise) fails
# here, in CI, before it fails for a user on a busy machine.
#
# The hog is one busy CPU worker per usable CPU (the affinity mask, lowered by a cgroup v2
# cpu.max quota): stress-ng --cpu N where installed, else a shell busy loop per CPU. It runs in
# a process group of its own and is killed when this script ends in any way: normal end, test
# failure, Ctrl-C, SIGTERM, SIGHUP; and, should this script be SIGKILLed, by a small guard
# that sees it gone within a second (and stops the tests too). The exit status is meson test's.
# MPROC_STRESS_HOG=loop uses the busy loops even where stress-ng is installed.
# The watchdogs scale with the load (tests/tap.h), at most 4x: meson's per-test timeouts are
# multiplied by the same 4 (--timeout-multiplier).
set -u
build=${1:?usage: stress.sh BUILD [MESON_TEST_ARGS...]}
shift
if [ ! -f "$build/build.ninja" ]; then
	echo "stress.sh: '$build' is not a meson build directory (make build first)" >&2
	exit 2
fi

# Usable CPUs: nproc honours the affinity mask; a cgroup v2 quota on our cgroup or an
# ancestor may lower it (a container's share of a larger host).
cpus=$(nproc)
cg=$(sed -n 's/^0:://p' /proc/self/cgroup 2>/dev/null)
while [ -n "${cg+x}" ]; do
	# (braces: a redirection that fails reports before a 2>/dev/null after it applies)
	if { read -r quota period < "/sys/fs/cgroup${cg%/}/cpu.max"; } 2>/dev/null &&
	   [ "$quota" != max ] && [ "$period" -gt 0 ] 2>/dev/null; then
		q=$(( (quota + period - 1) / period ))
		[ "$q" -ge 1 ] && [ "$q" -lt "$cpus" ] && cpus=$q
	fi
	[ -z "$cg" ] || [ "$cg" = / ] && break
	cg=${cg%/*}
done

hog=
tests=
guard=
# Ends the hog's whole group (stress-ng and its workers, or the busy loops), then the guard.
stop_hog() {
	if [ -n "$hog" ]; then
		kill -TERM -"$hog" 2>/dev/null
		sleep 0.2
		kill -KILL -"$hog" 2>/dev/null
		kill -KILL "$hog" 2>/dev/null     # should the group never have been made
		wait "$hog" 2>/dev/null
	fi
	[ -n "$guard" ] && kill "$guard" 2>/dev/null && wait "$guard" 2>/dev/null
}
# A signal ends the tests first (meson cancels and kills its running tests on SIGTERM), then
# the hog (EXIT). meson runs in the background so that `wait` returns at once on a signal; a
# background job of a non-interactive shell ignores SIGINT, hence the forwarding.
stop_tests() {
	[ -n "$tests" ] && kill -TERM "$tests" 2>/dev/null && wait "$tests" 2>/dev/null
	exit "$1"
}
trap 'stop_hog' EXIT
trap 'stop_tests 130' INT
trap 'stop_tests 143' TERM
trap 'stop_tests 129' HUP

# The hog leads its own process group (setsid: a background job of a non-interactive shell
# is no group leader, so setsid execs in place and $! is the group's id).
if [ "${MPROC_STRESS_HOG:-}" != loop ] && command -v stress-ng >/dev/null 2>&1; then
	what="stress-ng --cpu $cpus"
	setsid stress-ng --cpu "$cpus" --quiet </dev/null &
else
	what="$cpus busy loop(s) (stress-ng not installed)"
	setsid sh -c 'i=1; while [ "$i" -lt "$1" ]; do
		(while :; do :; done) & i=$((i + 1)); done; while :; do :; done' sh "$cpus" </dev/null &
fi
hog=$!
# The group exists once the child has run setsid (it may not have yet).
i=0
while ! kill -0 -"$hog" 2>/dev/null && [ "$i" -lt 100 ]; do
	sleep 0.05
	i=$((i + 1))
done

echo "test-stress: $what beside the unit, fault and leak suites ($cpus usable CPU(s))"
meson test -C "$build" --suite unit --suite fault --suite leak --print-errorlogs \
	--timeout-multiplier 4 --logbase stresslog "$@" &
tests=$!
# Guard: should this script die without running its traps (SIGKILL), the tests and the hog go
# within a second.
self=$$
(
	trap '' INT
	while kill -0 "$self" 2>/dev/null; do
		sleep 1
	done
	kill -TERM "$tests" 2>/dev/null
	kill -KILL -"$hog" 2>/dev/null
) </dev/null >/dev/null 2>&1 &
guard=$!
wait "$tests"
status=$?
tests=
exit "$status"
