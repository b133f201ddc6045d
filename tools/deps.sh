#!/bin/sh
# deps.sh {test|bench} - make sure what mproc needs is here.
#  - everything found: print nothing, exit 0;
#  - something required missing, root with apt-get: install it (--no-install-recommends);
#  - otherwise: print the exact command to run, exit 2.
# Optional parts (gnuplot, matplotlib, compare.py) are installed when possible; when they
# cannot be, `make bench` goes on and the plot step says in one line what it skipped.
# `bench` also tries, best effort and one package at a time, the independent tools of the
# cross-checks (plots/mproc_results/crosscheck.py): linux-perf (perf), rt-tests (hackbench), stress-ng.
# Failing to install them never fails: the run says "not installed" for each.
set -u
what=${1:-test}
missing=""      # Debian packages for required parts
optional=""     # Debian packages for optional parts
have() { command -v "$1" >/dev/null 2>&1; }
pc() { have pkg-config && pkg-config --atleast-version="$2" "$1" 2>/dev/null; }
py=/usr/bin/python3; [ -x "$py" ] || py=$(command -v python3 || echo python3)

have cc || have gcc || missing="$missing gcc"
have c++ || have g++ || missing="$missing g++"
have pkg-config || missing="$missing pkg-config"
have meson || missing="$missing meson"
have ninja || have ninja-build || missing="$missing ninja-build"
pc hwloc 2.5 || missing="$missing libhwloc-dev"
pc benchmark 1.7.1 || [ -f /usr/include/benchmark/benchmark.h ] || missing="$missing libbenchmark-dev"
have python3 || [ -x /usr/bin/python3 ] || missing="$missing python3"
if [ "$what" = bench ]; then
	have gnuplot || optional="$optional gnuplot-nox"
	"$py" -c 'import matplotlib' >/dev/null 2>&1 || optional="$optional python3-matplotlib"
	have hwloc-calc || optional="$optional hwloc-nox"
	# `make compare` runs Google Benchmark's compare.py (U-test) when it is there; it needs scipy.
	[ -f /usr/share/benchmark/compare.py ] || optional="$optional libbenchmark-tools"
	"$py" -c 'import scipy.stats' >/dev/null 2>&1 || optional="$optional python3-scipy"
fi

apt_install() {
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/tmp/mproc-apt.log 2>&1 \
	|| { DEBIAN_FRONTEND=noninteractive apt-get update -q >>/tmp/mproc-apt.log 2>&1 \
	     && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >>/tmp/mproc-apt.log 2>&1; }
}

# The cross-check tools. Debian names perf's package linux-perf (before bookworm it installs
# /usr/bin/perf_<version> behind linux-base's wrapper); Ubuntu's is linux-tools-<kernel>, whose
# /usr/bin/perf wrapper fails when the package for the running kernel is missing.
xtools=""
if [ "$what" = bench ]; then
	perf --version >/dev/null 2>&1 || ls /usr/bin/perf_* >/dev/null 2>&1 || {
		if grep -qi '^ID=ubuntu' /etc/os-release 2>/dev/null; then
			xtools="$xtools linux-tools-$(uname -r)"
		else
			xtools="$xtools linux-perf"
		fi; }
	have hackbench || xtools="$xtools rt-tests"
	have stress-ng || xtools="$xtools stress-ng"
fi

# Best effort, after everything else, each apt-get bounded in time (a machine that cannot reach
# its package registry must not stall `make bench`); never fails.
install_xtools() {
	[ -n "$xtools" ] || return 0
	if [ "$(id -u)" != 0 ] || ! have apt-get || [ "${MPROC_NO_APT:-}" = 1 ]; then
		echo "deps: cross-check tools not installed (no root apt-get):$xtools; the run says so"
		return 0
	fi
	t=""
	have timeout && t="timeout 90"
	if DEBIAN_FRONTEND=noninteractive $t apt-get install -y -q --no-install-recommends \
		$xtools >>/tmp/mproc-apt.log 2>&1; then
		echo "deps: installed cross-check tools:$xtools"
		return 0
	fi
	if ! DEBIAN_FRONTEND=noninteractive $t apt-get update -q >>/tmp/mproc-apt.log 2>&1; then
		echo "deps: cross-check tools not installed (apt-get update failed):$xtools"
		return 0
	fi
	# One of them may not exist here (linux-tools-<kernel>): one by one.
	got="" failed=""
	for p in $xtools; do
		if DEBIAN_FRONTEND=noninteractive $t apt-get install -y -q --no-install-recommends \
			"$p" >>/tmp/mproc-apt.log 2>&1; then got="$got $p"; else failed="$failed $p"; fi
	done
	[ -n "$got" ] && echo "deps: installed cross-check tools:$got"
	[ -n "$failed" ] && echo "deps: could not install cross-check tools:$failed (optional)"
	return 0
}

[ -z "$missing" ] && [ -z "$optional" ] && [ -z "$xtools" ] && exit 0

can_apt=false
[ "$(id -u)" = 0 ] && have apt-get && can_apt=true

if [ -n "$missing" ]; then
	if $can_apt; then
		echo "deps: installing$missing$optional"
		if ! apt_install $missing $optional; then
			# The optional ones may be what failed (no registry): retry with the required alone.
			if ! apt_install $missing; then
				echo "deps: apt-get could not install:$missing (log: /tmp/mproc-apt.log)" >&2
				exit 2
			fi
		fi
		install_xtools
		exit 0
	fi
	echo "deps: missing:$missing" >&2
	echo "deps: run as root:  apt-get install --no-install-recommends$missing$optional" >&2
	exit 2
fi

# Only optional parts are missing.
if [ -n "$optional" ] && $can_apt && [ "${MPROC_NO_APT:-}" != 1 ]; then
	if apt_install $optional; then
		echo "deps: installed$optional"
	else
		echo "deps: could not install$optional (no package registry?); plots will be skipped"
	fi
fi
install_xtools
exit 0
