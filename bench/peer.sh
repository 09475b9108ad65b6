#!/usr/bin/env bash
# Compares torpor with Cloudflare's workerd on this machine, in one run.
#
# workerd comes from the miniflare@3 npm package (its workerd dependency ships the binary),
# installed into a temporary folder. The script runs the counter Durable Object in
# bench/workerd/ straight from the workerd binary with storage on disk, measures it with
# `torpor load`, stops it, then runs `torpor bench --json`, and prints the two side by side.
# Both runtimes fsync each counter write before they send the response. torpor's per-call mode
# sets SQLite synchronous=FULL. workerd 2025-07-18 fsyncs the object's WAL on every commit, on
# the same thread that serves the requests (seen with strace), so its commits run one at a
# time. The load generator shares the machine's cores with the server it measures.
#
# Needs cargo, Node.js and npm, and access to the npm registry.

set -euo pipefail

usage() {
  cat <<'EOF'
Usage: bench/peer.sh [--quick] [--out DIR] [--torpor PATH]

Measures a counter Durable Object in workerd with `torpor load`, runs `torpor bench --json`,
and prints throughput, warm latency and first-call latency of both with their ratios.

  --quick     short runs (about a minute in all), as `torpor bench --quick`
  --out DIR   folder for the raw JSON of both runs and the printed comparison
              [default: a new folder under ${TMPDIR:-/tmp}, kept after the run]
  --torpor PATH
              torpor binary to run [default: target/release/torpor, built first
              with `cargo build --release`]
  -h, --help  print this help
EOF
}

quick=""
out=""
torpor_given=""
while (($# > 0)); do
  case $1 in
    --quick) quick="--quick" ;;
    --out)
      if (($# < 2)); then
        echo "peer.sh: missing directory after --out" >&2
        exit 2
      fi
      out=$2
      shift
      ;;
    --out=*) out=${1#--out=} ;;
    --torpor)
      if (($# < 2)); then
        echo "peer.sh: missing torpor binary path after --torpor" >&2
        exit 2
      fi
      torpor_given=$2
      shift
      ;;
    --torpor=*) torpor_given=${1#--torpor=} ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      echo "peer.sh: unknown option '$1'" >&2
      usage >&2
      exit 2
      ;;
  esac
  shift
done

# The same counts as the QUICK and FULL sizes of `torpor bench` in src/bench/mod.rs, so both
# runtimes get the same number of calls in each measurement.
if [[ -n $quick ]]; then
  sequential_calls=400
  load_seconds=2
  first_calls=30
else
  sequential_calls=3000
  load_seconds=10
  first_calls=200
fi
objects=100
connections=64
# IDs of the first-call objects start here, far above the 0..99 of the load run.
first_id=1000000

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/torpor-peer.XXXXXX")
if [[ -z $out ]]; then
  out=$(mktemp -d "${TMPDIR:-/tmp}/torpor-peer-out.XXXXXX")
fi
mkdir -p -- "$out"
out=$(cd -- "$out" && pwd)

workerd_pid=""
# Process group of the running `torpor` child. Ending the group also ends the server that
# `torpor bench` starts, which then stops its sandboxes.
child_group=""

log() {
  echo "peer.sh: $*" >&2
}

# Sends SIGTERM to a process id (or a process group, as -ID), waits up to 10 s for it to
# end, then sends SIGKILL.
stop_process() {
  local target=$1
  kill -TERM -- "$target" 2>/dev/null || return 0
  local tries=0
  while kill -0 -- "$target" 2>/dev/null && ((tries < 100)); do
    sleep 0.1
    tries=$((tries + 1))
  done
  if kill -0 -- "$target" 2>/dev/null; then
    log "process $target did not stop within 10 s of SIGTERM, so sending SIGKILL"
    kill -KILL -- "$target" 2>/dev/null || true
  fi
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n $child_group ]]; then
    stop_process "-$child_group"
    wait "$child_group" 2>/dev/null || true
  fi
  if [[ -n $workerd_pid ]]; then
    stop_process "$workerd_pid"
    wait "$workerd_pid" 2>/dev/null || true
  fi
  rm -rf -- "$work"
  if ((status != 0)); then
    log "failed (exit status $status); raw output so far is in $out"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a command in a process group of its own with stdout to a file, and waits for it.
# Waiting in the background keeps this shell free to run its traps on a signal.
run_in_group() {
  local output=$1
  shift
  setsid "$@" >"$output" &
  child_group=$!
  wait "$child_group"
  child_group=""
}

# The load average before any work of this script, for the report.
load_before=$(cut -d' ' -f1 /proc/loadavg)

if [[ -n $torpor_given ]]; then
  if [[ ! -x $torpor_given ]]; then
    log "--torpor $torpor_given is not an executable file"
    exit 2
  fi
  built=$torpor_given
else
  log "building torpor (cargo waits here if another build holds the lock)"
  (cd -- "$repo" && cargo build --release)
  built="$repo/target/release/torpor"
fi
# A private copy keeps the run on one binary even if a build replaces target/release/torpor
# meanwhile, because `torpor bench` starts its servers from its own path.
torpor="$work/torpor"
cp -- "$built" "$torpor"
log "using $("$torpor" --version) copied from $built"

log "installing miniflare@3 into $work/npm"
mkdir -p -- "$work/npm"
# --ignore-scripts skips the workerd package's postinstall, which checks the binary that the
# platform package ships, links it into workerd/bin, and downloads it only if that package is
# missing. require("workerd") finds the binary without it. The other flags stop npm's update,
# audit and funding requests.
npm install --prefix "$work/npm" --no-save --no-package-lock --ignore-scripts \
  --no-audit --no-fund --no-update-notifier --loglevel=error miniflare@3 >&2
workerd=$(node -p 'require(process.argv[1]).default' "$work/npm/node_modules/workerd")
workerd_version=$("$workerd" --version)
miniflare_version=$(node -p 'require(process.argv[1]).version' \
  "$work/npm/node_modules/miniflare/package.json")
log "using $workerd_version ($workerd), from miniflare $miniflare_version"

log "starting workerd with storage in $work/storage"
mkdir -p -- "$work/storage"
"$workerd" serve "$repo/bench/workerd/config.capnp" \
  --directory-path "storage=$work/storage" \
  --control-fd=3 3>"$work/workerd-control" >"$work/workerd.log" 2>&1 &
workerd_pid=$!

# workerd writes {"event":"listen","socket":"http","port":N} to the control descriptor
# once the socket listens.
port=""
for _ in $(seq 150); do
  port=$(sed -n 's/.*"socket":"http","port":\([0-9]*\).*/\1/p' "$work/workerd-control")
  if [[ -n $port ]]; then
    break
  fi
  if ! kill -0 "$workerd_pid" 2>/dev/null; then
    log "workerd exited before listening; its output:"
    cat "$work/workerd.log" >&2
    workerd_pid=""
    exit 1
  fi
  sleep 0.1
done
if [[ -z $port ]]; then
  log "workerd did not report a listening socket within 15 s; its output:"
  cat "$work/workerd.log" >&2
  exit 1
fi
url="http://127.0.0.1:$port/{id}/increment"
log "workerd listens on 127.0.0.1:$port"

# Before measuring, check that two increments of one object return 1 and 2.
node - "http://127.0.0.1:$port/probe/increment" <<'EOF'
const url = process.argv[2];
(async () => {
  for (const expected of [1, 2]) {
    const response = await fetch(url, { method: "POST" });
    const text = await response.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (response.status !== 200 || body?.count !== expected) {
      console.error(
        `peer.sh: POST ${url} returned ${response.status} ${text}, expected {"count":${expected}}`,
      );
      process.exit(1);
    }
  }
})().catch((error) => {
  console.error(`peer.sh: POST ${url} failed: ${error}`);
  process.exit(1);
});
EOF

log "workerd: warm increments on one connection ($sequential_calls calls)"
# A short run first warms the object and the connection path, as `torpor bench` does.
run_in_group /dev/null "$torpor" load "$url" --sequential $((sequential_calls / 10 + 1))
run_in_group "$out/workerd-increment.json" "$torpor" load "$url" --sequential "$sequential_calls"

log "workerd: throughput over $objects objects, $connections connections, ${load_seconds} s"
run_in_group "$out/workerd-throughput.json" "$torpor" load "$url" \
  --objects "$objects" --connections "$connections" --seconds "$load_seconds"

log "workerd: first calls to $first_calls new objects"
run_in_group "$out/workerd-first-call.json" "$torpor" load "$url" \
  --first-calls "$first_calls" --first-id "$first_id"

sqlite_files=$(find "$work/storage" -name '*.sqlite' | wc -l)
log "workerd stored $sqlite_files object databases on disk"
stop_process "$workerd_pid"
wait "$workerd_pid" 2>/dev/null || true
workerd_pid=""

log "running torpor bench --json $quick"
# torpor bench keeps its data under TMPDIR and removes it only when it ends by itself, so
# TMPDIR points into the work folder that cleanup removes. This also puts both runtimes'
# storage on the same file system.
mkdir -p -- "$work/tmp"
run_in_group "$out/torpor-bench.json" \
  env TMPDIR="$work/tmp" "$torpor" bench --json ${quick:+"$quick"}

node - "$out" "$workerd_version" "$miniflare_version" "$quick" "$load_before" \
  <<'EOF' | tee "$out/comparison.txt"
const fs = require("fs");
const os = require("os");
const path = require("path");
const [out, workerdVersion, miniflareVersion, quick, loadBefore] = process.argv.slice(2);
const read = (name) => JSON.parse(fs.readFileSync(path.join(out, name), "utf8"));

const torpor = read("torpor-bench.json");
const throughput = read("workerd-throughput.json");
const increment = read("workerd-increment.json");
const firstCall = read("workerd-first-call.json");

const ms = (us) => `${(us / 1000).toFixed(3)} ms`;
const perSecond = (value) => value.toFixed(0);
const rows = [
  ["increments/s, 100 objects, 64 connections", torpor.per_call.throughput_through_per_s,
    throughput.per_second, perSecond],
  ["warm increment p50, one connection", torpor.per_call.increment_through.p50_us,
    increment.p50_us, ms],
  ["warm increment p99, one connection", torpor.per_call.increment_through.p99_us,
    increment.p99_us, ms],
  ["first call to a new object p50", torpor.first_call.p50_us, firstCall.p50_us, ms],
  ["first call to a new object p99", torpor.first_call.p99_us, firstCall.p99_us, ms],
];

console.log(`torpor (per-call durability) vs ${workerdVersion} from miniflare ${miniflareVersion}` +
  `${quick ? ", --quick" : ""}`);
console.log("Higher is better for increments/s, lower for latencies.");
console.log();
const header = ["measurement".padEnd(44), "torpor".padStart(12), "workerd".padStart(12),
  "torpor/workerd".padStart(16)];
console.log(header.join(" "));
for (const [name, torporValue, workerdValue, format] of rows) {
  const ratio = workerdValue > 0 ? `${(torporValue / workerdValue).toFixed(2)}×` : "n/a";
  console.log([name.padEnd(44), format(torporValue).padStart(12),
    format(workerdValue).padStart(12), ratio.padStart(16)].join(" "));
}
console.log();
const workerdErrors = throughput.errors + increment.errors + firstCall.errors;
console.log(`failed requests: torpor ${torpor.per_call.errors}, workerd ${workerdErrors}`);
// Other work on the machine skews both runtimes' figures, so the report shows how busy it was.
const loadAfter = os.loadavg()[0].toFixed(2);
console.log(`1-minute load average on ${os.cpus().length} cores: ${loadBefore} before the run, ` +
  `${loadAfter} after`);
console.log(`raw JSON: ${out}`);
EOF
