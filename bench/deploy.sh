#!/usr/bin/env bash
# bench/deploy.sh: `otree admin deploy` against `ostree admin deploy` of the
# same bootable tree, in one run. Needs root (both sysroots are bare).
#
# Usage: bench/deploy.sh [TREE]   (default /usr/local/go)
#
# TREE is copied to /usr of a scratch tree that gets what a deploy needs:
# a kernel and an initramfs (random bytes, 8 and 20 MiB) in
# usr/lib/modules/6.1.0, os-release, and defaults in usr/etc. Each tool
# commits it into a sysroot of its own (init-fs, os-init testos; untimed),
# then deploys it BENCH_RUNS times (default 7), alternating which tool
# goes first. Every deploy after the first two drops the oldest deployment
# (both keep the booted-less default and one rollback), so a run measures
# the steady state of an updater: a hardlink checkout, the /etc merge, the
# kernel (already installed after the first), the boot entries, the switch,
# and deleting the dropped deployment. A `sync` (untimed) precedes each.
#
# Prints the median wall time of each tool (the first run of each, which
# also installs the kernel, is left out), the ratio otree/OSTree, and
# every run.
set -euo pipefail
die() { echo "deploy.sh: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "needs root: deployments live in bare repositories"
TREE=${1:-/usr/local/go}
RUNS=${BENCH_RUNS:-7}
OSTREE=${OSTREE:-/usr/bin/ostree}
[[ -x $OSTREE ]] || die "ostree not found at $OSTREE (apt-get install ostree)"
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
W=$(mktemp -d "${BENCH_SCRATCH:-/tmp}/otree-deploy.XXXXXX")
# Both tools make deployment directories immutable (chattr +i).
trap 'chattr -i "$W"/o[st]/o*tree/deploy/*/deploy/*/ 2>/dev/null; rm -rf "$W"' EXIT
GO=$(command -v go || echo /usr/local/go/bin/go)
(cd "$SRC" && "$GO" build -o "$W/otree" ./cmd/otree) || die "go build failed"
OT=$W/otree

mkdir -p "$W/tree/usr/lib/modules/6.1.0" "$W/tree/usr/etc"
cp -a "$TREE/." "$W/tree/usr/"
head -c $((8 << 20)) /dev/urandom >"$W/tree/usr/lib/modules/6.1.0/vmlinuz"
head -c $((20 << 20)) /dev/urandom >"$W/tree/usr/lib/modules/6.1.0/initramfs.img"
printf 'NAME=Bench\nPRETTY_NAME="Bench OS"\n' | tee "$W/tree/usr/lib/os-release" >"$W/tree/usr/etc/os-release"
echo bench-host >"$W/tree/usr/etc/hostname"
entries=$(find "$W/tree" | wc -l)

mkdir -p "$W/os" "$W/ot"
"$OSTREE" admin init-fs "$W/os" >/dev/null
"$OSTREE" admin --sysroot="$W/os" os-init testos >/dev/null
"$OSTREE" --repo="$W/os/ostree/repo" commit -b os "$W/tree" >/dev/null
"$OT" admin init-fs "$W/ot" >/dev/null
"$OT" admin --sysroot="$W/ot" os-init testos >/dev/null
"$OT" --repo="$W/ot/otree/repo" commit -b os "$W/tree" >/dev/null

deploy_ostree() { "$OSTREE" admin --sysroot="$W/os" deploy --os=testos os; }
deploy_otree() { "$OT" admin --sysroot="$W/ot" deploy --os=testos os; }
declare -A T
for ((i = 0; i < RUNS; i++)); do
	order="otree ostree"
	((i % 2)) && order="ostree otree"
	for tool in $order; do
		sync
		t0=$(date +%s%N)
		"deploy_$tool" >/dev/null 2>"$W/err" || { cat "$W/err" >&2; die "$tool deploy failed"; }
		t1=$(date +%s%N)
		T[$tool]+="$(((t1 - t0) / 1000000)) "
	done
done
median() { tr ' ' '\n' <<<"${*:2}" | grep . | sort -n | awk '{v[NR]=$1} END {if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2] + v[NR/2+1]) / 2}'; }
mo=$(median ${T[otree]})
ms=$(median ${T[ostree]})
echo "deploy of $TREE as a bootable tree ($entries entries), $RUNS deploys per tool, first left out of the median"
printf 'otree admin deploy   %6.3f s (median)\n' "$(echo "$mo / 1000" | bc -l)"
printf 'ostree admin deploy  %6.3f s (median)\n' "$(echo "$ms / 1000" | bc -l)"
printf 'ratio otree/OSTree   %6.3f\n' "$(echo "$mo / $ms" | bc -l)"
echo "ms per run, in order: otree ${T[otree]}; ostree ${T[ostree]}"
"$OT" admin --sysroot="$W/ot" status | grep -c testos | xargs echo "otree deployments kept:"
"$OSTREE" admin --sysroot="$W/os" status | grep -c testos | xargs echo "ostree deployments kept:"
