#!/usr/bin/env bash
# Runs the peers harness (Squid, mitmproxy, ... and direct, same origin, clients and accounting)
# with sluis as one more row, in the same run as the peers it is compared with.
#
#   PEERS_HARNESS=/path/to/bench benches/peers/run.sh
#       squid squid-2w mitmproxy-stream sluis sluis-monitor, the harness's defaults (3 reps x 15 s, all workloads)
#   REPS=1 DURATION=10 WORKLOADS="W1 W2 W3 W5" PEERS_HARNESS=... benches/peers/run.sh squid sluis
#
# PEERS_HARNESS is the harness directory (the one with peers.sh). It is used read-only: this
# script builds an overlay in target/peers/harness/ (symlinks to the harness's files, plus its
# own peers.d/ with every benches/peers/*.env and its own results/), so the rows defined here
# are peers.d rows and the results land in target/peers/. REPS, DURATION, WORKLOADS, CONC,
# W5_BYTES and the harness's other knobs pass through. Needs root (the harness installs
# packages and adds the test names to /etc/hosts).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
harness="${PEERS_HARNESS:?set PEERS_HARNESS to the peers harness directory (the one with peers.sh)}"
harness="$(cd "$harness" && pwd)"
[ -x "$harness/peers.sh" ] || { echo "run.sh: no peers.sh in $harness" >&2; exit 1; }
peers=("$@")
[ ${#peers[@]} -gt 0 ] || peers=(squid squid-2w mitmproxy-stream sluis sluis-monitor)

echo "run.sh: building sluis (release)" >&2
(cd "$repo" && cargo build --release --locked --bin sluis)

overlay="$repo/target/peers/harness"
rm -rf "$overlay"
mkdir -p "$overlay/peers.d" "$repo/target/peers/results"
for entry in "$harness"/*; do
  case "$(basename "$entry")" in
    peers.d|results) ;;
    *) ln -s "$entry" "$overlay/$(basename "$entry")" ;;
  esac
done
ln -s "$repo/target/peers/results" "$overlay/results"
cp "$here"/*.env "$overlay/peers.d/"

export SLUIS_REPO="$repo" SLUIS_BIN="$repo/target/release/sluis"
export SKIP_PROXYFOR="${SKIP_PROXYFOR:-1}"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
stamp="$(date +%Y%m%d-%H%M%S)"
export OUT="${OUT:-$repo/target/peers/results/run-$stamp}"
{
  echo "# sluis commit: $(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet HEAD -- 2>/dev/null || echo '+changes')"
  echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$OUT.sluis"
echo "run.sh: peers ${peers[*]}; results $OUT.{jsonl,md}" >&2
exec "$overlay/peers.sh" "${peers[@]}"
