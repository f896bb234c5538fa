#!/usr/bin/env bash
# bench/usb.sh: `otree create-usb` against `ostree create-usb` of the same
# tree, in one run, and otree's find-remotes --pull from the stick.
#
# Usage: bench/usb.sh [TREE]   (default /usr/local/go)
#
# Each tool commits TREE to os/stable of a bare-user repository with the
# collection ID org.example.Os (untimed). Then, BENCH_RUNS times (default
# 5), alternating which tool goes first:
#   blank     create-usb onto an empty directory (the stick): every object
#             compressed into the stick's archive repository
#   again     create-usb of the same ref onto that stick: nothing to copy
# A `sync` (untimed) precedes each, and the stick's write-back is part of
# each tool's time (both sync what they write).
#
# Then otree alone (OSTree's mount finder sees only mounts its volume
# monitor lists): the last stick is mounted on a tmpfs copy and
# `find-remotes --finders=mount --pull` brings the ref into an empty
# bare-user repository whose remote of the collection verifies signatures.
#
# As in compare.sh, the scratch directory is marked chattr +T on ext4, so
# that each run's directories start in a block group of their own rather
# than where the last run's were just deleted (whose inodes every new
# allocation would then scan). Prints medians, ratios otree/OSTree, and
# every run.
set -euo pipefail
die() { echo "usb.sh: $*" >&2; exit 1; }
TREE=${1:-/usr/local/go}
RUNS=${BENCH_RUNS:-5}
OSTREE=${OSTREE:-/usr/bin/ostree}
[[ -x $OSTREE ]] || die "ostree not found at $OSTREE (apt-get install ostree)"
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
W=$(mktemp -d "${BENCH_SCRATCH:-/tmp}/otree-usb.XXXXXX")
trap 'umount "$W/mnt" 2>/dev/null; rm -rf "$W"' EXIT
chattr +T "$W" 2>/dev/null || true
GO=$(command -v go || echo /usr/local/go/bin/go)
(cd "$SRC" && "$GO" build -o "$W/otree" ./cmd/otree) || die "go build failed"
OT=$W/otree
C=org.example.Os

"$OSTREE" --repo="$W/os" init --mode=bare-user --collection-id=$C
"$OSTREE" --repo="$W/os" commit -b os/stable "$TREE" >/dev/null
"$OT" --repo="$W/ot" init --mode=bare-user --collection-id=$C >/dev/null
"$OT" --repo="$W/ot" commit -b os/stable "$TREE" >/dev/null
pub=$("$OT" --repo="$W/ot" sign --generate-key="$W/key")
"$OT" --repo="$W/ot" sign --keys-file="$W/key" os/stable >/dev/null

usb_ostree() { "$OSTREE" --repo="$W/os" create-usb "$1" $C os/stable; }
usb_otree() { "$OT" --repo="$W/ot" create-usb "$1" $C os/stable; }
ms() { echo $((($2 - $1) / 1000000)); }
declare -A T
for ((i = 0; i < RUNS; i++)); do
	order="otree ostree"
	((i % 2)) && order="ostree otree"
	for tool in $order; do
		stick=$W/stick.$tool.$i
		mkdir "$stick"
		for op in blank again; do
			sync
			t0=$(date +%s%N)
			"usb_$tool" "$stick" >/dev/null 2>"$W/err" || { cat "$W/err" >&2; die "$tool create-usb failed"; }
			t1=$(date +%s%N)
			T[$tool.$op]+="$(ms "$t0" "$t1") "
		done
		((i < RUNS - 1)) && rm -rf "$stick"
	done
done
median() { tr ' ' '\n' <<<"$*" | grep . | sort -n | awk '{v[NR]=$1} END {if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2] + v[NR/2+1]) / 2}'; }

# find-remotes --pull from the last otree stick, mounted.
mkdir "$W/mnt"
mount -t tmpfs usb "$W/mnt"
cp -a "$W/stick.otree.$((RUNS - 1))/." "$W/mnt/"
for ((i = 0; i < RUNS; i++)); do
	client=$W/client.$i
	"$OT" --repo="$client" init --mode=bare-user >/dev/null
	"$OT" --repo="$client" remote add --collection-id=$C --sign-verify=ed25519=inline:"$pub" origin http://127.0.0.1:9/
	sync
	t0=$(date +%s%N)
	"$OT" --repo="$client" find-remotes --finders=mount --pull $C os/stable >"$W/out" 2>&1 || { cat "$W/out" >&2; die "find-remotes --pull failed"; }
	t1=$(date +%s%N)
	grep -q "Pulled 1/1" "$W/out" || { cat "$W/out" >&2; die "find-remotes did not pull"; }
	T[find]+="$(ms "$t0" "$t1") "
done

echo "create-usb of $TREE ($(find "$TREE" | wc -l) entries), $RUNS runs per tool"
printf '%-34s %9s %9s %7s\n' operation "otree s" "ostree s" ratio
for op in blank again; do
	mo=$(median ${T[otree.$op]})
	mso=$(median ${T[ostree.$op]})
	printf '%-34s %9.3f %9.3f %7.3f\n' "create-usb, $op stick" "$(echo "$mo / 1000" | bc -l)" "$(echo "$mso / 1000" | bc -l)" "$(echo "$mo / $mso" | bc -l)"
done
printf '%-34s %9.3f %9s\n' "find-remotes --pull (otree only)" "$(echo "$(median ${T[find]}) / 1000" | bc -l)" -
printf 'stick size, MiB: otree %s, ostree %s\n' "$(du -sm "$W/stick.otree.$((RUNS - 1))" | cut -f1)" "$(du -sm "$W/stick.ostree.$((RUNS - 1))" | cut -f1)"
echo "ms per run, in order:"
for k in otree.blank ostree.blank otree.again ostree.again find; do echo "  $k: ${T[$k]}"; done
