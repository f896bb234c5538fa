#!/usr/bin/env bash
# bench/compare.sh: otree against OSTree on the same real trees, in one run.
#
# For each tree it measures, N runs per tool, the median wall time (and peak
# RSS) of:
#   cold       commit into a fresh bare-user repository
#   unchanged  re-commit of the same tree into that repository
#   modified   re-commit after appending bytes to 1% of the regular files of a
#              writable copy (cp -a, made once; distinct files each round)
#   afterprune commit of the tree into a bare-user repository right after
#              deleting the branch that held it and pruning (untimed): every
#              object is written again next to the ones just deleted
#   archive    commit into a fresh archive repository, plus the size of its
#              objects/ (disk usage and apparent size)
#   floor      beside cold and archive: bench/floor, the least such a commit
#              must do (read each file, write each distinct content, or its
#              zstd compression, to a file of its own, syncfs), as a ratio
#              to OSTree's commit; and bench/floor -objects, which adds the
#              per-object work of otree's format (BLAKE3 ids, headers,
#              staging and renames); beside unchanged, bench/floor -stat,
#              the least a re-commit of an unchanged tree must do (list every
#              directory, stat every entry)
#   checkout   checkout -U (hardlinks) of the commit from the bare-user
#              repository into a fresh directory; cp -al of the tree beside it
#   copy       checkout -U -C (copies) against cp -a of the tree; OSTree's
#              checkout -U -C beside it
#   archcheckout  checkout -U of the archive commit into a fresh directory,
#              twice per run: first with the repository's uncompressed-object
#              cache emptied (untimed) before it, which that checkout fills,
#              then again, linking from the cache; both tools keep the cache
#              by default. The archive repositories are archive's, or are
#              committed now, untimed
#   mirror     pull-local of the archive commit into a fresh archive
#              repository (OSTree with --untrusted, so both verify; both
#              hardlink the objects)
#   pulllocal  pull-local of the bare-user commit into a fresh bare-user
#              repository (OSTree with --untrusted, so both verify; both
#              hardlink the objects)
#   relink     commit of a hardlink checkout back into the repository it came
#              from, as of a deployment: bare (OSTree's system repository)
#              when root, else bare-user; OSTree with --link-checkout-speedup
# and prints a table of medians with the ratio otree/OSTree (otree/cp for copy)
# beside the target.
#
# Environment:
#   BENCH_TREES        trees to commit (default "/usr/local/go /usr")
#   BENCH_RUNS         runs per operation and tool (default 5, or 3 for trees
#                      over 1 GiB)
#   BENCH_OPS          subset of "cold unchanged modified afterprune archive mirror
#                      checkout copy archcheckout pulllocal relink"
#   BENCH_MODIFY_PCT   percent of regular files changed per round (default 1)
#   BENCH_DROP_CACHES  1 = sync and drop the page cache before every timed
#                      command (needs root); default: warm cache for both tools
#   BENCH_SCRATCH      parent of the scratch directory (default /tmp; keep it on
#                      the trees' filesystem so cp -a and the repos share a disk)
#   OSTREE             the ostree binary (default /usr/bin/ostree)
#   BENCH_KEEP         1 = keep the scratch directory
#   BENCH_OTREE        use this otree binary instead of building one
#   BENCH_SPREAD       0 = do not mark the scratch directory +T (see below)
#   BENCH_FLOOR        0 = do not run bench/floor beside cold, unchanged and
#                      archive
#
# Both tools run with their default durability: OSTree's --fsync=true and
# otree's --fsync=true (neither fsyncs a checkout). A `sync` (untimed)
# precedes every timed command so that neither tool pays for the other's
# write-back.
#
# Every run writes into a directory of its own name, and on ext4 the scratch
# directory gets the "top of hierarchy" attribute (chattr +T), so each run's
# directory starts in a block group of its own. Without it, a run lands
# where the previous run's output was just deleted, and on an ext4 without a
# journal every inode allocation then scans the recently deleted inodes
# (recently_deleted() in the kernel, for 60 s or more after a delete), which
# swamps both tools' times.
set -euo pipefail

die() { echo "compare.sh: $*" >&2; exit 1; }
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

TREES=${BENCH_TREES:-"/usr/local/go /usr"}
OPS=${BENCH_OPS:-"cold unchanged modified afterprune archive mirror checkout copy archcheckout pulllocal relink"}
PCT=${BENCH_MODIFY_PCT:-1}
DROP=${BENCH_DROP_CACHES:-0}
OSTREE=${OSTREE:-/usr/bin/ostree}
TIME=/usr/bin/time

[[ -x $TIME ]] && $TIME -v true 2>/dev/null ||
	die "GNU time is needed at $TIME for peak memory; install it with: apt-get install time"
[[ -x $OSTREE ]] || die "ostree not found at $OSTREE (set OSTREE=, or apt-get install ostree)"
GO=$(command -v go || echo /usr/local/go/bin/go)
[[ -x $GO ]] || die "go not found (needed to build otree)"
if [[ $DROP == 1 ]]; then
	[[ -w /proc/sys/vm/drop_caches ]] || die "BENCH_DROP_CACHES=1 needs root (write access to /proc/sys/vm/drop_caches)"
fi
command -v hyperfine >/dev/null && log "hyperfine is installed but not used: this script also records peak RSS per run"

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRATCH=$(mktemp -d "${BENCH_SCRATCH:-/tmp}/otree-bench.XXXXXX")
if [[ ${BENCH_SPREAD:-1} == 1 ]] && chattr +T "$SCRATCH" 2>/dev/null; then
	SPREAD="run directories spread over block groups (chattr +T)"
else
	SPREAD="run directories not spread"
fi
# fresh NAME: a new path in the scratch directory for one run's output.
fresh() { echo "$SCRATCH/$1.$RANDOM$RANDOM"; }
declare -A BU # each tool's bare-user repository (cold/unchanged/checkout)
cleanup() {
	if [[ ${BENCH_KEEP:-0} == 1 ]]; then
		log "scratch kept in $SCRATCH"
	else
		rm -rf "$SCRATCH"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -n ${BENCH_OTREE:-} ]]; then
	OTREE=$(realpath "$BENCH_OTREE")
	log "using $OTREE (not built)"
else
	log "building otree from $SRC"
	# Static, as a host installs it (docs/DEPLOY.md).
	(cd "$SRC" && CGO_ENABLED=0 "$GO" build -o "$SCRATCH/bin/otree" ./cmd/otree) || die "go build failed"
	OTREE=$SCRATCH/bin/otree
fi
FLOOR=""
if [[ ${BENCH_FLOOR:-1} == 1 ]]; then
	(cd "$SRC" && "$GO" build -o "$SCRATCH/bin/floor" ./bench/floor) || die "go build of bench/floor failed"
	FLOOR=$SCRATCH/bin/floor
fi
RES=$SCRATCH/results
mkdir -p "$RES"

# timed KEY CMD...: run CMD once and append "nanoseconds maxrss_kib" to
# $RES/KEY. The page cache is dropped first if asked, and dirty pages are
# always written back first, untimed.
timed() {
	local key=$1
	shift
	if [[ $DROP == 1 ]]; then
		sync
		echo 3 >/proc/sys/vm/drop_caches
	else
		sync
	fi
	local t0 t1
	t0=$(date +%s%N)
	if ! "$TIME" -v -o "$SCRATCH/time.out" "$@" >"$SCRATCH/cmd.out" 2>"$SCRATCH/cmd.err"; then
		cat "$SCRATCH/cmd.err" >&2
		die "failed: $*"
	fi
	t1=$(date +%s%N)
	local rss
	rss=$(awk -F': *' '/Maximum resident set size/ {print $2}' "$SCRATCH/time.out")
	echo "$((t1 - t0)) $rss" >>"$RES/$key"
}

# median FILE COLUMN: median of a column (mean of the middle two if even).
median() {
	[[ -s $1 ]] || { echo "-"; return; }
	awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{v[NR]=$1} END {
		if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2] + v[NR/2+1]) / 2 }'
}
mincol() { [[ -s $1 ]] && awk -v c="$2" 'NR==1 || $c<m {m=$c} END{print m}' "$1" || echo "-"; }
runs() { [[ -s $1 ]] && awk '{printf "%s%.3f", (NR>1 ? " " : ""), $1/1e9}' "$1" || echo "-"; }
maxcol() { [[ -s $1 ]] && awk -v c="$2" 'BEGIN{m=0} $c>m {m=$c} END{print m}' "$1" || echo "-"; }

init_otree() { "$OTREE" --repo="$1" init --mode="$2" >/dev/null; }
init_ostree() { "$OSTREE" --repo="$1" init --mode="$2"; }
commit_otree() {
	timed "$1" "$OTREE" --repo="$2" commit -b main --stats "$3"
	# Keep how many files this run read and hashed (the rest came from caches).
	awk '/hashed:/ {print $NF}' "$SCRATCH/cmd.err" >>"$RES/$1.hashed"
}
commit_ostree() { timed "$1" "$OSTREE" --repo="$2" commit --branch=main "$3"; }

# tools RUN: both tools, the order alternating between runs.
tools() { if (($1 % 2)); then echo "ostree otree"; else echo "otree ostree"; fi; }
# with_floor RUN: both tools and the two bench/floor kinds (if they run),
# taking turns.
with_floor() { if [[ -n $FLOOR ]]; then rotate "$1" otree ostree floor objfloor; else tools "$1"; fi; }
# floor KIND KEY TREE [FLAG...]: one timed run of bench/floor (KIND floor)
# or bench/floor -objects (KIND objfloor) into a fresh directory, deleted
# (untimed) before the next; KIND statfloor runs bench/floor -stat TREE.
FLOOR_DST=""
floor() {
	local kind=$1 key=$2 tree=$3
	shift 3
	if [[ $kind == statfloor ]]; then
		timed "$key" "$FLOOR" -stat "$tree"
		return
	fi
	[[ $kind == objfloor ]] && set -- "$@" -objects
	[[ -n $FLOOR_DST ]] && rm -rf "$FLOOR_DST"
	FLOOR_DST=$(fresh floor)
	timed "$key" "$FLOOR" "$@" "$tree" "$FLOOR_DST"
}
floor_done() {
	[[ -n $FLOOR_DST ]] && rm -rf "$FLOOR_DST"
	FLOOR_DST=""
}
# rotate RUN A...: all of them, the order rotating between runs.
rotate() {
	local k=$(($1 % ($# - 1)))
	shift
	local a=("$@")
	echo "${a[@]:k}" "${a[@]:0:k}"
}

has_op() { [[ " $OPS " == *" $1 "* ]]; }

# cold_and_unchanged TAG TREE N
cold_and_unchanged() {
	local tag=$1 tree=$2 n=$3 i t
	if has_op cold; then
		for ((i = 0; i < n; i++)); do
			for t in $(with_floor "$i"); do
				if [[ $t == *floor ]]; then
					log "$tag $t: bare-user, run $((i + 1))/$n"
					floor "$t" "$tag.cold.$t" "$tree"
					continue
				fi
				[[ -n ${BU[$t]:-} ]] && rm -rf "${BU[$t]}"
				BU[$t]=$(fresh "$t-bu")
				"init_$t" "${BU[$t]}" bare-user
				log "$tag cold bare-user commit, $t, run $((i + 1))/$n"
				"commit_$t" "$tag.cold.$t" "${BU[$t]}" "$tree"
			done
		done
		floor_done
	fi
	if has_op unchanged; then
		setup_bu "$tag" "$tree"
		for ((i = 0; i < n; i++)); do
			for t in $(if [[ -n $FLOOR ]]; then rotate "$i" otree ostree statfloor; else tools "$i"; fi); do
				if [[ $t == statfloor ]]; then
					log "$tag $t: run $((i + 1))/$n"
					floor "$t" "$tag.unchanged.$t" "$tree"
					continue
				fi
				log "$tag unchanged re-commit, $t, run $((i + 1))/$n"
				"commit_$t" "$tag.unchanged.$t" "${BU[$t]}" "$tree"
			done
		done
	fi
}

# setup_bu TAG TREE: each tool's bare-user repository holding TREE on main,
# committed now (untimed) unless the cold runs left one.
setup_bu() {
	local t
	for t in otree ostree; do
		if [[ -z ${BU[$t]:-} ]]; then
			BU[$t]=$(fresh "$t-bu")
			"init_$t" "${BU[$t]}" bare-user
			log "$1 setup: commit, $t"
			"commit_$t" "$1.setup.$t" "${BU[$t]}" "$2"
		fi
	done
}

# checkout_TOOL KEY DEST [FLAG...]: check out main of the tool's bare-user
# repository in user mode.
checkout_otree() {
	local key=$1 dest=$2
	shift 2
	timed "$key" "$OTREE" --repo="${BU[otree]}" checkout -U "$@" main "$dest"
}
checkout_ostree() {
	local key=$1 dest=$2
	shift 2
	timed "$key" "$OSTREE" --repo="${BU[ostree]}" checkout -U "$@" main "$dest"
}

# checkouts TAG TREE N: each run checks out into a fresh directory of the
# scratch dir, deleted (untimed) before the next; the bare-user repositories
# are those cold/unchanged left, or are committed now, untimed.
checkouts() {
	local tag=$1 tree=$2 n=$3 i t op
	local dest=""
	setup_bu "$tag" "$tree"
	local same=1
	if [[ $(stat -c %d "$tree") != $(stat -c %d "$SCRATCH") ]]; then
		log "note: $SCRATCH is not on the filesystem of $tree: no cp -al column"
		same=0
	fi
	for op in checkout copy; do
		has_op "$op" || continue
		for ((i = 0; i < n; i++)); do
			for t in $(rotate "$i" otree ostree cp); do
				[[ -n $dest ]] && rm -rf "$dest"
				dest=$(fresh dest)
				if [[ $op.$t == checkout.cp && $same == 0 ]]; then continue; fi
				log "$tag $op into a fresh directory, $t, run $((i + 1))/$n"
				case $op.$t in
				checkout.cp) timed "$tag.$op.$t" cp -al "$tree" "$dest" ;;
				copy.cp) timed "$tag.$op.$t" cp -a "$tree" "$dest" ;;
				checkout.*) "checkout_$t" "$tag.$op.$t" "$dest" ;;
				copy.*) "checkout_$t" "$tag.$op.$t" "$dest" -C ;;
				esac
			done
		done
	done
	[[ -n $dest ]] && rm -rf "$dest"
}

# pulllocal TAG TREE N: pull-local of main from each tool's bare-user
# repository (those cold/unchanged left, or committed now, untimed) into a
# fresh bare-user repository (pull_local_runs).
pulllocal() {
	setup_bu "$1" "$2"
	pull_local_runs "$1" "$3" pulllocal bare-user BU
}

# modified TAG TREE N: rounds of changing PCT% of the files of a copy.
modified() {
	local tag=$1 tree=$2 n=$3 i t
	local copy
	copy=$(fresh copy)
	local -A MOD
	MOD[otree]=$(fresh otree-mod) MOD[ostree]=$(fresh ostree-mod)
	log "$tag copying the tree (cp -a) to $copy"
	cp -a "$tree" "$copy"
	if [[ $(stat -c %d "$tree") != $(stat -c %d "$SCRATCH") ]]; then
		log "note: $SCRATCH is not on the filesystem of $tree"
	fi
	# Regular, writable files in a fixed pseudo-random order; round i takes
	# the i-th slice, so every round changes distinct files.
	find "$copy" -xdev -type f -writable -print0 |
		tr '\0' '\n' | awk 'BEGIN{srand(42)} {print rand() "\t" $0}' | sort -k1,1 | cut -f2- >"$SCRATCH/files"
	local total per
	total=$(wc -l <"$SCRATCH/files")
	per=$(((total * PCT + 99) / 100))
	((per * n <= total)) || die "$tree: $total files are too few for $n rounds of $PCT%"
	echo "$per of $total" >"$RES/$tag.modified.count"
	# Let the copy's ctimes age past the stat cache's 2 s racy window, as a
	# tree built a while before being committed would be.
	sleep 3
	for t in otree ostree; do
		"init_$t" "${MOD[$t]}" bare-user
		log "$tag setup: commit of the copy, $t"
		"commit_$t" "$tag.setup.$t" "${MOD[$t]}" "$copy"
		"commit_$t" "$tag.setup.$t" "${MOD[$t]}" "$copy"
	done
	for ((i = 0; i < n; i++)); do
		local f
		sed -n "$((i * per + 1)),$(((i + 1) * per))p" "$SCRATCH/files" | while IFS= read -r f; do
			printf 'otree bench round %d\n' "$i" >>"$f"
		done
		for t in $(tools "$i"); do
			log "$tag re-commit after changing $per files, $t, run $((i + 1))/$n"
			"commit_$t" "$tag.modified.$t" "${MOD[$t]}" "$copy"
		done
	done
	rm -rf "$copy" "${MOD[otree]}" "${MOD[ostree]}"
}

# afterprune TAG TREE N: each tool commits TREE into its own bare-user
# repository right after deleting the branch that held it and pruning
# (untimed), so that every object is written again where the last ones
# were just deleted, as a commit soon after a prune does. +T on the scratch
# directory does not help here: the repository stays where it is.
afterprune() {
	local tag=$1 tree=$2 n=$3 i t
	local -A AP
	AP[otree]=$(fresh otree-ap) AP[ostree]=$(fresh ostree-ap)
	for t in otree ostree; do
		"init_$t" "${AP[$t]}" bare-user
		log "$tag setup: commit, $t"
		"commit_$t" "$tag.setup.$t" "${AP[$t]}" "$tree"
	done
	for ((i = 0; i < n; i++)); do
		for t in $(tools "$i"); do
			log "$tag commit after deleting main and pruning, $t, run $((i + 1))/$n"
			case $t in
			otree) "$OTREE" --repo="${AP[$t]}" refs --delete main >/dev/null &&
				"$OTREE" --repo="${AP[$t]}" prune --refs-only >/dev/null ;;
			ostree) "$OSTREE" --repo="${AP[$t]}" refs --delete main &&
				"$OSTREE" --repo="${AP[$t]}" prune --refs-only >/dev/null ;;
			esac || die "$t: deleting main and pruning ${AP[$t]} failed"
			"commit_$t" "$tag.afterprune.$t" "${AP[$t]}" "$tree"
		done
	done
	rm -rf "${AP[otree]}" "${AP[ostree]}"
}

# relink TAG TREE N: commits of a hardlink checkout of TREE back into the
# repository it was checked out from. Each run checks out into a fresh
# directory (untimed), so otree's stat cache knows none of its files: a file
# is taken unread only as a hardlink of an object whose inode still matches.
relink() {
	local tag=$1 tree=$2 n=$3 i t mode=bare-user
	((EUID == 0)) && mode=bare
	echo "$mode" >"$RES/$tag.relink.mode"
	local -A RL
	for t in otree ostree; do
		RL[$t]=$(fresh "$t-relink")
		"init_$t" "${RL[$t]}" "$mode"
		log "$tag setup: $mode commit, $t"
		"commit_$t" "$tag.relinksetup.$t" "${RL[$t]}" "$tree"
	done
	local user=()
	[[ $mode == bare-user ]] && user=(-U)
	local dest=""
	for ((i = 0; i < n; i++)); do
		for t in $(tools "$i"); do
			[[ -n $dest ]] && rm -rf "$dest"
			dest=$(fresh dest)
			log "$tag commit of a hardlink checkout, $t, run $((i + 1))/$n"
			case $t in
			otree)
				"$OTREE" --repo="${RL[$t]}" checkout "${user[@]}" main "$dest"
				commit_otree "$tag.relink.otree" "${RL[$t]}" "$dest"
				;;
			ostree)
				"$OSTREE" --repo="${RL[$t]}" checkout "${user[@]}" main "$dest"
				timed "$tag.relink.ostree" "$OSTREE" --repo="${RL[$t]}" commit --branch=main --link-checkout-speedup "$dest"
				;;
			esac
		done
	done
	rm -rf "$dest" "${RL[otree]}" "${RL[ostree]}"
}

# archive TAG TREE N: cold archive commits; sizes of the last run's objects/;
# then the ops that start from an archive repository (mirror, archcheckout),
# which commit one now, untimed, when archive does not run.
archive() {
	local tag=$1 tree=$2 n=$3 i t
	local -A AR
	local runs=$n
	has_op archive || runs=0
	for ((i = 0; i < runs; i++)); do
		for t in $(with_floor "$i"); do
			if [[ $t == *floor ]]; then
				log "$tag $t: archive (zstd at otree's level), run $((i + 1))/$n"
				floor "$t" "$tag.archive.$t" "$tree" -zstd=better
				continue
			fi
			[[ -n ${AR[$t]:-} ]] && rm -rf "${AR[$t]}"
			AR[$t]=$(fresh "$t-ar")
			"init_$t" "${AR[$t]}" archive
			log "$tag cold archive commit, $t, run $((i + 1))/$n"
			"commit_$t" "$tag.archive.$t" "${AR[$t]}" "$tree"
		done
	done
	floor_done
	for t in otree ostree; do
		if ((runs)); then
			echo "$(du -s -B1 "${AR[$t]}/objects" | cut -f1) $(du -sb "${AR[$t]}/objects" | cut -f1)" >"$RES/$tag.size.$t.bytes"
		else
			AR[$t]=$(fresh "$t-ar")
			"init_$t" "${AR[$t]}" archive
			log "$tag setup: archive commit, $t"
			"commit_$t" "$tag.setup.$t" "${AR[$t]}" "$tree"
		fi
	done
	has_op mirror && mirror "$tag" "$n"
	has_op archcheckout && archcheckouts "$tag" "$n" AR
	rm -rf "${AR[otree]}" "${AR[ostree]}"
}

# archcheckouts TAG N SOURCES: N rounds, for each tool, of checkout -U of
# main from its archive repository (in the associative array named
# SOURCES) into a fresh directory with the uncompressed-object cache
# emptied first (untimed), then into another with the cache that filled.
# An emptied cache is moved aside, not deleted, until the rounds end: the
# next run would otherwise create its files where thousands were just
# deleted (see chattr +T above).
archcheckouts() {
	local tag=$1 n=$2 i t key dest="" trash
	local -n src=$3
	trash=$(fresh trash)
	mkdir "$trash"
	for ((i = 0; i < n; i++)); do
		for t in $(tools "$i"); do
			if [[ -d ${src[$t]}/uncompressed-objects-cache ]]; then
				mv "${src[$t]}/uncompressed-objects-cache" "$trash/$t.$i"
			fi
			for key in archco1 archco2; do
				[[ -n $dest ]] && rm -rf "$dest"
				dest=$(fresh dest)
				log "$tag checkout -U from archive ($key), $t, run $((i + 1))/$n"
				case $t in
				otree) timed "$tag.$key.otree" "$OTREE" --repo="${src[$t]}" checkout -U main "$dest" ;;
				ostree) timed "$tag.$key.ostree" "$OSTREE" --repo="${src[$t]}" checkout -U main "$dest" ;;
				esac
			done
		done
	done
	rm -rf "$trash"
	[[ -n $dest ]] && rm -rf "$dest"
}

# mirror TAG N: pull-local of main from the archive repositories archive()
# left into a fresh archive repository, every object verified: both
# hardlink the objects, otree verifying each link, OSTree with --untrusted
# (without it OSTree links objects unverified).
mirror() { pull_local_runs "$1" "$2" mirror archive AR; }

# pull_local_runs TAG N OP MODE SOURCES: N rounds of pull-local of main from
# each tool's repository in the associative array named SOURCES into a
# fresh MODE repository, deleted (untimed) before the next; OSTree runs
# with --untrusted, so both verify every object.
pull_local_runs() {
	local tag=$1 n=$2 op=$3 mode=$4 i t dest=""
	local -n src=$5
	for ((i = 0; i < n; i++)); do
		for t in $(tools "$i"); do
			[[ -n $dest ]] && rm -rf "$dest"
			dest=$(fresh "$t-$op")
			"init_$t" "$dest" "$mode"
			log "$tag pull-local into a fresh $mode repository, $t, run $((i + 1))/$n"
			case $t in
			otree) timed "$tag.$op.otree" "$OTREE" --repo="$dest" pull-local "${src[$t]}" main ;;
			ostree) timed "$tag.$op.ostree" "$OSTREE" --repo="$dest" pull-local --untrusted "${src[$t]}" main ;;
			esac
		done
	done
	[[ -n $dest ]] && rm -rf "$dest"
}

# --- report ------------------------------------------------------------------

fmt_s() { [[ $1 == - ]] && echo - || awk -v v="$1" 'BEGIN{printf "%.3f", v/1e9}'; }
fmt_mib() { [[ $1 == - ]] && echo - || awk -v v="$1" -v d="$2" 'BEGIN{printf "%.1f", v/d}'; }
ratio() { [[ $1 == - || $2 == - ]] && echo - || awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a/b}'; }
# verdict RATIO LIMIT
verdict() { [[ $1 == - || $2 == - ]] && echo "" || awk -v r="$1" -v l="$2" 'BEGIN{print (r <= l) ? "met" : "MISSED"}'; }

report_tree() {
	local tag=$1 tree=$2 n=$3 info=$4
	local row="%-30s %9s %9s %7s %7s %-7s %9s %9s %9s\n"
	echo
	echo "== $tree ($info; $n runs per tool; $CACHE; $SPREAD) =="
	local op label target raw="" head=0 FLOORED=0
	for op in cold unchanged modified afterprune archive mirror pulllocal relink; do
		case $op in
		cold) label="cold commit, bare-user" target=0.25 ;;
		afterprune) label="commit right after a prune" target=- ;;
		unchanged) label="re-commit, nothing changed" target=0.02 ;;
		modified) label="re-commit, ${PCT}% files changed" target=- ;;
		archive) label="cold commit, archive" target=0.2 ;;
		mirror) label="pull-local, archive to archive" target=- ;;
		pulllocal) label="pull-local, bare-user" target=- ;;
		relink) label="commit of hardlink checkout" target=- ;;
		esac
		[[ -s $RES/$tag.$op.otree ]] || continue
		if ((!head)); then
			printf "$row" operation "otree s" "ostree s" ratio target "" "min ratio" "otree MiB" "ostree MiB"
			head=1
		fi
		local a b r
		a=$(median "$RES/$tag.$op.otree" 1)
		b=$(median "$RES/$tag.$op.ostree" 1)
		r=$(ratio "$a" "$b")
		printf "$row" "$label" "$(fmt_s "$a")" "$(fmt_s "$b")" "$r" "$( [[ $target == - ]] && echo - || echo "<=$target")" \
			"$(verdict "$r" "$target")" "$(ratio "$(mincol "$RES/$tag.$op.otree" 1)" "$(mincol "$RES/$tag.$op.ostree" 1)")" \
			"$(fmt_mib "$(median "$RES/$tag.$op.otree" 2)" 1024)" "$(fmt_mib "$(median "$RES/$tag.$op.ostree" 2)" 1024)"
		raw+="  $op: otree $(runs "$RES/$tag.$op.otree"); ostree $(runs "$RES/$tag.$op.ostree")"$'\n'
		local kind flabel
		for kind in floor objfloor statfloor; do
			[[ -s $RES/$tag.$op.$kind ]] || continue
			case $kind in
			floor) flabel="  floor (bench/floor)" ;;
			objfloor) flabel="  floor + object work" ;;
			statfloor) flabel="  floor (bench/floor -stat)" ;;
			esac
			a=$(median "$RES/$tag.$op.$kind" 1)
			printf "$row" "$flabel" "$(fmt_s "$a")" "$(fmt_s "$b")" "$(ratio "$a" "$b")" - "" \
				"$(ratio "$(mincol "$RES/$tag.$op.$kind" 1)" "$(mincol "$RES/$tag.$op.ostree" 1)")" \
				"$(fmt_mib "$(median "$RES/$tag.$op.$kind" 2)" 1024)" ""
			raw+="  $op $kind: $(runs "$RES/$tag.$op.$kind")"$'\n'
			FLOORED=1
		done
	done
	if ((FLOORED)); then
		echo "  (floor: bench/floor reads every regular file and writes each distinct content once, for archive"
		echo "   zstd-compressed at otree's level, to a file of its own, then syncfs: the work every durable commit"
		echo "   that stores files one by one does, and nothing else; no metadata, no renames, a cheap hash for dedupe."
		echo "   floor + object work (bench/floor -objects) adds what each file object costs in otree's format:"
		echo "   xattrs read, BLAKE3 id, existence check, header, staging and rename; no dirtrees, no commit."
		echo "   bench/floor -stat, beside unchanged, lists every directory and stats every entry, as a re-commit"
		echo "   must to see that nothing changed; it reads no file and writes nothing)"
	fi
	if [[ -s $RES/$tag.modified.count ]]; then
		echo "  (files changed per round: $(cat "$RES/$tag.modified.count"), just before each commit;" \
			"files otree hashed per round: $(tr '\n' ' ' <"$RES/$tag.modified.otree.hashed"))"
	fi
	if [[ -s $RES/$tag.relink.mode ]]; then
		echo "  (hardlink checkout: of main from a $(cat "$RES/$tag.relink.mode") repository, committed back into it; OSTree with" \
			"--link-checkout-speedup; files otree hashed per run: $(tr '\n' ' ' <"$RES/$tag.relink.otree.hashed"))"
	fi
	if [[ -s $RES/$tag.size.otree.bytes ]]; then
		local od oa sd sa
		read -r od oa <"$RES/$tag.size.otree.bytes"
		read -r sd sa <"$RES/$tag.size.ostree.bytes"
		local srow="%-30s %9s %9s %7s %7s %-7s\n"
		printf "$srow" "archive objects/, disk MiB" "$(fmt_mib "$od" 1048576)" "$(fmt_mib "$sd" 1048576)" "$(ratio "$od" "$sd")" "<=1.0" "$(verdict "$(ratio "$od" "$sd")" 1.0)"
		printf "$srow" "archive objects/, apparent MiB" "$(fmt_mib "$oa" 1048576)" "$(fmt_mib "$sa" 1048576)" "$(ratio "$oa" "$sa")" "<=1.0" "$(verdict "$(ratio "$oa" "$sa")" 1.0)"
	fi
	# Checkouts: ratio against a baseline (OSTree, or cp -a for copies), and a
	# reference tool's time beside it.
	local crow="%-30s %9s %9s %7s %7s %-7s %9s %9s %9s %9s\n" base ref
	head=0
	for op in checkout copy archco1 archco2; do
		case $op in
		checkout) label="checkout -U, hardlinks" target=0.5 base=ostree ref=cp ;;
		copy) label="checkout -U -C, copies" target=1 base=cp ref=ostree ;;
		archco1) label="-U from archive, cache empty" target=- base=ostree ref=- ;;
		archco2) label="-U from archive, cache full" target=- base=ostree ref=- ;;
		esac
		[[ -s $RES/$tag.$op.otree ]] || continue
		if ((!head)); then
			printf "$crow" "checkout into a fresh DEST" "otree s" "base s" ratio target "" "min ratio" "ref s" "otree MiB" "base MiB"
			head=1
		fi
		local a b r
		a=$(median "$RES/$tag.$op.otree" 1)
		b=$(median "$RES/$tag.$op.$base" 1)
		r=$(ratio "$a" "$b")
		printf "$crow" "$label" "$(fmt_s "$a")" "$(fmt_s "$b")" "$r" "$( [[ $target == - ]] && echo - || echo "<=$target")" \
			"$(verdict "$r" "$target")" "$(ratio "$(mincol "$RES/$tag.$op.otree" 1)" "$(mincol "$RES/$tag.$op.$base" 1)")" \
			"$(fmt_s "$(median "$RES/$tag.$op.$ref" 1)")" \
			"$(fmt_mib "$(median "$RES/$tag.$op.otree" 2)" 1024)" "$(fmt_mib "$(median "$RES/$tag.$op.$base" 2)" 1024)"
		raw+="  $op: otree $(runs "$RES/$tag.$op.otree"); ostree $(runs "$RES/$tag.$op.ostree"); cp $(runs "$RES/$tag.$op.cp")"$'\n'
	done
	if ((head)); then
		echo "  (base / ref: hardlinks: ostree checkout -U / cp -al; copies: cp -a / ostree checkout -U -C;"
		echo "   from archive: ostree checkout -U, the first of a run with its uncompressed-object cache emptied)"
	fi
	local peak=0 f m
	for f in "$RES/$tag".*.otree; do
		[[ -s $f ]] || continue
		m=$(maxcol "$f" 2)
		if ((m > peak)); then peak=$m; fi
	done
	printf "%-30s %10s MiB (max over all otree runs above; target <=256 MiB, set for /usr) %s\n" "otree peak RSS" \
		"$(fmt_mib "$peak" 1024)" "$(verdict "$(fmt_mib "$peak" 1024)" 256)"
	echo "seconds per run, in run order:"
	printf "%s" "$raw"
}

if [[ $DROP == 1 ]]; then
	CACHE="page cache dropped before every timed command"
else
	CACHE="warm page cache, not dropped (BENCH_DROP_CACHES=1 to drop)"
fi

START=$(date +%s)
declare -a REPORTS=()
for tree in $TREES; do
	[[ -d $tree ]] || die "$tree is not a directory"
	tree=$(cd "$tree" && pwd -P)
	case $SCRATCH/ in "$tree"/*) die "scratch $SCRATCH is inside $tree; set BENCH_SCRATCH" ;; esac
	tag=$(echo "$tree" | tr -c 'A-Za-z0-9\n' '_')
	bytes=$(du -sb "$tree" 2>/dev/null | cut -f1)
	entries=$(find "$tree" -xdev | wc -l)
	n=${BENCH_RUNS:-$(((bytes > 1 << 30) ? 3 : 5))}
	info="$entries entries, $(fmt_mib "$bytes" 1048576) MiB"
	if [[ $DROP != 1 ]]; then
		log "$tree: warming the page cache"
		find "$tree" -xdev -type f -print0 | xargs -0 -r cat >/dev/null 2>&1 || true
	fi
	cold_and_unchanged "$tag" "$tree" "$n"
	if has_op checkout || has_op copy; then checkouts "$tag" "$tree" "$n"; fi
	has_op pulllocal && pulllocal "$tag" "$tree" "$n"
	rm -rf "${BU[otree]:-}" "${BU[ostree]:-}"
	BU=()
	has_op modified && modified "$tag" "$tree" "$n"
	has_op afterprune && afterprune "$tag" "$tree" "$n"
	if has_op archive || has_op mirror || has_op archcheckout; then archive "$tag" "$tree" "$n"; fi
	has_op relink && relink "$tag" "$tree" "$n"
	REPORTS+=("$tag|$tree|$n|$info")
done

echo
echo "otree $(cd "$SRC" && git rev-parse --short HEAD 2>/dev/null || echo '?') vs $("$OSTREE" --version | awk -F"'" '/Version/ {print "OSTree " $2}')," \
	"$(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ), total $(($(date +%s) - START)) s"
echo "fsync: default for both (ostree --fsync=true, otree --fsync=true; no fsync in checkouts); times are medians of wall time;"
echo "ratio = otree/OSTree of the medians; min ratio = of the fastest runs (less sensitive to a noisy machine)"
for r in "${REPORTS[@]}"; do
	IFS='|' read -r tag tree n info <<<"$r"
	report_tree "$tag" "$tree" "$n" "$info"
done
