#!/usr/bin/env bash
# Real-network figures: N swim-agent processes on loopback (LAN preset unless CONFIG is set),
# a steady-state window with CPU% and RSS per agent read from /proc, then `kill -9` of one agent
# and the time until the first and the last survivor print member_failed for it.
#
#   swim-tokio/scripts/loopback50.sh [N=50] [STEADY_SECONDS=60]
#   CONFIG=my.toml swim-tokio/scripts/loopback50.sh 50 60     # other timers
#
# Uses ports BASE_PORT..BASE_PORT+N-1 on 127.0.0.1 (BASE_PORT defaults to 27946). Stops by
# itself; every agent is killed on exit.
set -euo pipefail
N=${1:-50}
STEADY=${2:-60}
BASE_PORT=${BASE_PORT:-27946}
cd "$(dirname "$0")/../.."
cargo build --release -q -p swim-tokio --bin swim-agent
AGENT=${CARGO_TARGET_DIR:-target}/release/swim-agent
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
CONF_ARGS=()
if [[ -n "${CONFIG:-}" ]]; then CONF_ARGS=(--config "$CONFIG"); fi

echo "starting $N agents on 127.0.0.1:$BASE_PORT.. ($(nproc) cores)"
launched=$(date +%s%3N)
for ((i = 0; i < N; i++)); do
    args=(--bind "127.0.0.1:$((BASE_PORT + i))" --name "agent-$i" "${CONF_ARGS[@]}")
    if ((i > 0)); then args+=(--join "127.0.0.1:$BASE_PORT"); fi
    "$AGENT" "${args[@]}" >"$WORK/$i.out" 2>"$WORK/$i.err" &
    PIDS+=($!)
done

# Converged: every agent has printed member_joined for the N-1 others.
deadline=$((SECONDS + 60))
while :; do
    done_count=0
    for ((i = 0; i < N; i++)); do
        c=$(grep -c '"event":"member_joined"' "$WORK/$i.out" || true)
        if ((c >= N - 1)); then done_count=$((done_count + 1)); fi
    done
    if ((done_count == N)); then break; fi
    if ((SECONDS > deadline)); then echo "not converged after 60 s ($done_count/$N)"; exit 1; fi
    sleep 0.5
done
echo "converged $(( $(date +%s%3N) - launched )) ms after launch; steady state for ${STEADY} s"

# CPU time in nanoseconds: the sum over the process's threads of /proc/PID/task/*/schedstat
# (exact) where the kernel has it, else utime + stime from /proc/PID/stat (10 ms ticks).
ticks=$(getconf CLK_TCK)
cpu_ns() {
    if [[ -r /proc/$1/schedstat ]]; then
        cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%d\n", s}'
    else
        awk -v hz="$ticks" '{printf "%d\n", ($14 + $15) * 1e9 / hz}' "/proc/$1/stat"
    fi
}
declare -a before
for ((i = 0; i < N; i++)); do before[i]=$(cpu_ns "${PIDS[i]}"); done
t0=$(date +%s.%N)
sleep "$STEADY"
t1=$(date +%s.%N)
stats=$(for ((i = 0; i < N; i++)); do
    after=$(cpu_ns "${PIDS[i]}")
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/${PIDS[i]}/status")
    echo "$((after - before[i])) $rss"
done | awk -v t0="$t0" -v t1="$t1" '
    { cpu = 100 * $1 / 1e9 / (t1 - t0); s += cpu; if (cpu > mx) mx = cpu; r += $2; if ($2 > rmx) rmx = $2; n++ }
    END { printf "CPU per agent: mean %.3f%%, max %.3f%% of one core; RSS per agent: mean %.1f MiB, max %.1f MiB\n", s / n, mx, r / n / 1024, rmx / 1024 }')
echo "$stats"
failed_before=$(cat "$WORK"/*.out | grep -c '"event":"member_failed"' || true)
echo "false member_failed events during steady state: $failed_before"

# kill -9 the last agent; wait for every survivor to print member_failed for it.
victim=$((N - 1))
kill_ms=$(date +%s%3N)
kill -9 "${PIDS[victim]}"
{ wait "${PIDS[victim]}"; } 2>/dev/null || true
deadline=$((SECONDS + 120))
while :; do
    c=0
    for ((i = 0; i < victim; i++)); do
        if grep -q "\"event\":\"member_failed\".*\"node\":\"agent-$victim\"" "$WORK/$i.out"; then c=$((c + 1)); fi
    done
    if ((c == victim)); then break; fi
    if ((SECONDS > deadline)); then echo "only $c/$victim survivors saw agent-$victim fail within 120 s"; break; fi
    sleep 0.2
done
for ((i = 0; i < victim; i++)); do
    grep "\"event\":\"member_failed\".*\"node\":\"agent-$victim\"" "$WORK/$i.out" | head -1 |
        sed -E 's/.*"ts_ms":([0-9]+).*/\1/'
done | awk -v k="$kill_ms" '{ d = $1 - k; if (n == 0 || d < mn) mn = d; if (d > mx) mx = d; s += d; n++ }
    END { printf "kill -9 agent-%d: member_failed on %d survivors, first %.2f s, mean %.2f s, last %.2f s after the kill\n", '"$victim"', n, mn / 1000, s / n / 1000, mx / 1000 }'
