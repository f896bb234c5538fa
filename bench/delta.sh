#!/bin/sh
# Bytes an update costs over HTTP with static deltas: otree against OSTree.
# Usage: bench/delta.sh [TREE]   (default /usr/local/go; see bench/README.md)
set -eu
TREE=${1:-/usr/local/go}
HERE=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/otree-delta.XXXXXX")
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT INT TERM

( cd "$HERE" && go build -o "$W/otree" ./cmd/otree )
OT="$W/otree"

echo "tree: $TREE"
cp -a "$TREE" "$W/v1"
cp -a "$W/v1" "$W/v2"
# Version 2: 1% of the regular files changed (every 100th in sorted order):
# half get a line appended, half a line inserted in the middle; and the two
# largest files get a few bytes changed at a few places, as a rebuild would.
( cd "$W/v2" && find . -type f -size +0 | LC_ALL=C sort | awk 'NR % 100 == 0' ) > "$W/changed"
i=0
while read -r f; do
	i=$((i + 1))
	if [ $((i % 2)) = 0 ]; then
		printf '// changed by bench/delta.sh\n' >> "$W/v2/$f"
	else
		n=$(wc -l < "$W/v2/$f")
		awk -v m=$((n / 2)) '{ print } NR == m { print "changed by bench/delta.sh" }' "$W/v2/$f" > "$W/tmpf"
		cat "$W/tmpf" > "$W/v2/$f"
	fi
done < "$W/changed"
( cd "$W/v2" && find . -type f -printf '%s %p\n' | sort -rn | head -2 | cut -d' ' -f2- ) > "$W/large"
while read -r f; do
	size=$(stat -c %s "$W/v2/$f")
	for k in 1 2 3 4 5 6 7 8; do
		printf 'OTREEBENCH' | dd of="$W/v2/$f" bs=1 seek=$((size * k / 9)) conv=notrunc status=none
	done
done < "$W/large"
echo "changed: $(wc -l < "$W/changed") of $(find "$W/v1" -type f -size +0 | wc -l) regular files, plus 2 large files edited in place: $(tr '\n' ' ' < "$W/large")"

serve() { # DIR NAME -> sets PORT_NAME
	python3 "$HERE/bench/countserve.py" "$1" "$W/port.$2" &
	PIDS="$PIDS $!"
	while [ ! -s "$W/port.$2" ]; do sleep 0.1; done
}
bytes() { curl -s "http://127.0.0.1:$(cat "$W/port.$1")/__bytes"; }
reset() { curl -s "http://127.0.0.1:$(cat "$W/port.$1")/__reset" > /dev/null; }

# Servers: archive repositories holding version 1.
"$OT" --repo="$W/os" init --mode=archive > /dev/null
"$OT" --repo="$W/os" commit --branch=main -s v1 "$W/v1" > /dev/null
"$OT" --repo="$W/os" summary -u > /dev/null
ostree --repo="$W/ts" init --mode=archive
ostree --repo="$W/ts" commit -b main -s v1 --tree=dir="$W/v1" > /dev/null
ostree --repo="$W/ts" summary -u
serve "$W/os" o
serve "$W/ts" t

# Clients pull version 1 (without deltas), then the servers get version 2.
"$OT" --repo="$W/oc" init --mode=bare-user > /dev/null
"$OT" --repo="$W/oc" remote add origin "http://127.0.0.1:$(cat "$W/port.o")" main
"$OT" --repo="$W/oc" pull origin main > /dev/null
ostree --repo="$W/tc" init --mode="${OSTREE_CLIENT_MODE:-bare-user}"
ostree --repo="$W/tc" remote add --no-gpg-verify origin "http://127.0.0.1:$(cat "$W/port.t")" main
ostree --repo="$W/tc" pull origin main > /dev/null
echo "full pull of v1 (objects): otree $(bytes o) B, OSTree $(bytes t) B"

"$OT" --repo="$W/os" commit --branch=main -s v2 "$W/v2" > /dev/null
ostree --repo="$W/ts" commit -b main -s v2 --tree=dir="$W/v2" > /dev/null
s=$(date +%s.%N)
"$OT" --repo="$W/os" static-delta generate --to=main
m=$(date +%s.%N)
ostree --repo="$W/ts" static-delta generate --from=main^ --to=main
e=$(date +%s.%N)
echo "generate: otree $(echo "$m - $s" | bc) s, OSTree $(echo "$e - $m" | bc) s"
"$OT" --repo="$W/os" summary -u > /dev/null
ostree --repo="$W/ts" summary -u

reset o
reset t
"$OT" --repo="$W/oc" pull origin main
ob=$(bytes o)
ostree --repo="$W/tc" pull origin main
tb=$(bytes t)

# Without deltas, for reference.
"$OT" --repo="$W/oc2" init --mode=bare-user > /dev/null
"$OT" --repo="$W/oc2" remote add origin "http://127.0.0.1:$(cat "$W/port.o")" main
v1=$("$OT" --repo="$W/os" rev-parse main^)
"$OT" --repo="$W/oc2" pull origin "$v1" > /dev/null
"$OT" --repo="$W/oc2" refs --create=origin:main "$v1"
reset o
"$OT" --repo="$W/oc2" pull --disable-static-deltas origin main > /dev/null
onod=$(bytes o)

"$OT" --repo="$W/oc" fsck -q
ostree --repo="$W/tc" fsck -q > /dev/null

echo
echo "update v1 -> v2 over HTTP (response body bytes):"
printf '  %-32s %12s\n' "otree, static delta" "$ob" "OSTree 2022.7, static delta" "$tb" "otree, objects (no delta)" "$onod"
echo "  ratio otree/OSTree: $(echo "scale=3; $ob / $tb" | bc)"
ods=$(du -sb "$W/os/deltas" | cut -f1)
tds=$(du -sb "$W/ts/deltas" | cut -f1)
echo "  delta size on the server: otree $ods B, OSTree $tds B"

if [ "${BENCH_SCRATCH:-1}" = 1 ]; then
	"$OT" --repo="$W/os" static-delta generate --empty --to=main > /dev/null
	ostree --repo="$W/ts" static-delta generate --empty --to=main
	echo "from-scratch delta of v2: otree $(du -sb "$W/os/deltas/$("$OT" --repo="$W/os" rev-parse main)" | cut -f1) B," \
		"OSTree $(($(du -sb "$W/ts/deltas" | cut -f1) - tds)) B"
fi
