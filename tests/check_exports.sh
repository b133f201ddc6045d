#!/bin/sh
# check_exports.sh NM LIBRARY HEADER... - libmproc exports its public API and nothing else:
# the functions defined in LIBRARY's dynamic symbol table (nm -D --defined-only) must be
# exactly the mproc_* functions declared in the public headers (a declaration at column 0,
# the house style). An extra name is an internal that leaked into the ABI (a missing
# MPROC_EXPORT would be the other way round: a declared function users cannot link).
# TAP output; exit 2 on bad usage.
set -u
if [ $# -lt 3 ]; then
	echo "usage: check_exports.sh NM LIBRARY HEADER..." >&2
	exit 2
fi
nm=$1
lib=$2
shift 2
tmp=$(mktemp -d /tmp/mproc-exports.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT

# Declared: lines at column 0 that are not comments, preprocessor lines or typedefs; the first mproc_
# name followed by '(' on each.
awk '/^[A-Za-z]/ && !/^typedef/ && match($0, /mproc_[a-z0-9_]+\(/) {
	print substr($0, RSTART, RLENGTH - 1)
}' "$@" | sort -u >"$tmp/declared"
# Exported: every defined dynamic symbol, with a version suffix (name@@V) cut off.
if ! "$nm" -D --defined-only "$lib" >"$tmp/nm"; then
	echo "Bail out! $nm -D --defined-only $lib failed"
	exit 1
fi
awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' "$tmp/nm" | sort -u >"$tmp/exported"

echo "1..3"
n=$(wc -l <"$tmp/declared")
if [ "$n" -gt 0 ]; then
	echo "ok 1 - the headers declare $n mproc_ functions"
else
	echo "not ok 1 - no mproc_ function found in the headers: $*"
fi
# report N NAMES OK_TEXT NOT_OK_TEXT: one TAP line, the names under a not ok.
report() {
	if [ -z "$2" ]; then
		echo "ok $1 - $3"
	else
		echo "not ok $1 - $4:"
		echo "$2" | sed 's/^/#   /'
	fi
}
report 2 "$(comm -13 "$tmp/declared" "$tmp/exported")" "nothing exported beyond the public headers" \
	"exported but not declared in a public header"
report 3 "$(comm -23 "$tmp/declared" "$tmp/exported")" "every declared function is exported" \
	"declared in a public header but not exported (MPROC_EXPORT missing?)"
