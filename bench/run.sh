#!/usr/bin/env bash
# Reproduces every row of the "Load tool (cmd/holocron-bench)" table in
# bench/RESULTS.md: builds holocron and holocron-bench, then runs each
# scenario against servers the tool spawns itself (one node, or a 3-node
# loopback cluster), writing per row into bench/out/:
#   NAME.json  the result (holocron-bench -json)
#   NAME.txt   the printed summary
#   NAME.log   the tool's log
# and, where perf(1) is installed, the server's CPU profile during the
# durable and fanout load (rows profile-*: NAME.perf, top functions in
# NAME.perf.txt and NAME.perf-cumulative.txt; perf record from outside
# needs no admin token and sees the runtime and the kernel too). The
# baseline-c-* rows need a C compiler (cc) and are skipped without one.
#
# The load generator and the servers share this machine's cores; nothing
# else should run meanwhile: each summary prints the CPU that other
# processes used during its window. About 6 minutes on 2 cores.
#
# Usage: bench/run.sh [ROW...]   (no argument: every row)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=bench/out
mkdir -p "$OUT"
began=$(date +%s)

echo "building holocron and holocron-bench"
go build -o "$OUT/holocron" ./cmd/holocron || exit 1
go build -o "$OUT/holocron-bench" ./cmd/holocron-bench || exit 1

ONE=(-spawn -bin "$OUT/holocron")
THREE=(-spawn-cluster 3 -bin "$OUT/holocron")
# A row is run again (twice at most) when other processes used more than
# this many cores during its measurement window.
QUIET=${QUIET:-0.15}
PERF=0
command -v perf >/dev/null 2>&1 && PERF=1
failed=()

# row NAME [-profile] SCENARIO FLAGS...: one row of the table.
row() {
	local name=$1
	shift
	if [ ${#ONLY[@]} -gt 0 ] && [[ ! " ${ONLY[*]} " == *" $name "* ]]; then
		return
	fi
	local prof=()
	if [ "$1" = -profile ]; then
		shift
		if [ $PERF = 1 ]; then
			prof=(-server-profile "$OUT/$name.perf")
		fi
	fi
	echo
	echo "### $name: holocron-bench $*"
	local try
	for try in 1 2 3; do
		if ! "$OUT/holocron-bench" "$@" "${prof[@]}" -json "$OUT/$name.json" >"$OUT/$name.txt" 2>"$OUT/$name.log"; then
			failed+=("$name")
			tail -5 "$OUT/$name.log"
			break
		fi
		# Other processes busy during the window (someone's tests) make
		# the row meaningless: run it again, twice at most, while the
		# whole run stays within its time budget.
		local others
		others=$(sed -n 's/.*"otherCores": \([0-9.]*\).*/\1/p' "$OUT/$name.json")
		if awk "BEGIN{exit !(${others:-0} <= $QUIET)}" || [ $(($(date +%s) - began)) -gt 420 ]; then
			break
		fi
		echo "   (other processes used $others cores during the window: running the row again)"
		sleep 5
	done
	cat "$OUT/$name.txt"
	if [ ${#prof[@]} -gt 0 ] && [ -s "$OUT/$name.perf" ]; then
		perf report -i "$OUT/$name.perf" --stdio --no-children --sort symbol -g none --percent-limit 0.8 2>/dev/null |
			grep -v '^#' | grep -v '^$' | sed 's/ \{2,\}/ /g' | head -40 >"$OUT/$name.perf.txt"
		perf report -i "$OUT/$name.perf" --stdio --children --sort symbol -g none --percent-limit 4 2>/dev/null |
			grep -v '^#' | grep -v '^$' | sed 's/ \{2,\}/ /g' | head -80 >"$OUT/$name.perf-cumulative.txt"
		echo "   server profile: $OUT/$name.perf.txt (flat), $OUT/$name.perf-cumulative.txt (cumulative)"
	fi
}

ONLY=("$@")

# crow NAME RATE: the C fan-out baseline (bench/baseline/fanout.c) at RATE
# messages/s over 10 connections for 10 s, where a C compiler is installed.
crow() {
	local name=$1 rate=$2
	if [ ${#ONLY[@]} -gt 0 ] && [[ ! " ${ONLY[*]} " == *" $name "* ]]; then
		return
	fi
	echo
	echo "### $name: fanout-c $rate 10 10"
	if ! command -v cc >/dev/null 2>&1; then
		echo "   (no C compiler: skipped)"
		return
	fi
	if ! cc -O2 -o "$OUT/fanout-c" bench/baseline/fanout.c || ! "$OUT/fanout-c" "$rate" 10 10 >"$OUT/$name.txt"; then
		failed+=("$name")
		return
	fi
	cat "$OUT/$name.txt"
}

# Durable chat into one room, one node: closed loop (each sender's next
# message when its echo came back), pipelined (32 in flight per sender),
# and a fixed 5,000 msgs/s for p99.
row durable-1node durable "${ONE[@]}" -senders 10
row durable-1node-w32 durable "${ONE[@]}" -senders 10 -window 32
row durable-1node-rate5000 durable "${ONE[@]}" -senders 10 -rate 5000
row durable-1node-rate2000 durable "${ONE[@]}" -senders 10 -rate 2000
# The machine's floor for the fixed-rate rows: the same load (10 sockets,
# every message written to all of them) against a bare Go WebSocket
# fan-out server in its own process (no storage, no actor, no protocol),
# and against a C epoll server without Go or WebSocket.
row baseline-rate5000 baseline -senders 10 -rate 5000
row baseline-rate2000 baseline -senders 10 -rate 2000
crow baseline-c-rate5000 5000
crow baseline-c-rate2000 2000
# The same on a 3-node cluster (replication 3, majority acks), senders
# spread over the nodes; a fixed 2,000 msgs/s for p99.
row durable-3node durable "${THREE[@]}" -senders 10
row durable-3node-w32 durable "${THREE[@]}" -senders 10 -window 32
row durable-3node-rate2000 durable "${THREE[@]}" -senders 10 -rate 2000
# Fan-out: 100 clients in one room, each sending its next message when its
# previous one came back.
row fanout-1node fanout "${ONE[@]}" -rooms 1 -clients 100
row fanout-3node fanout "${THREE[@]}" -rooms 1 -clients 100
# Idle sockets on one node. 19,500 is the most this sandbox allows: the
# hard RLIMIT_NOFILE is 20,000 per process and cannot be raised here.
row idle-1node idle "${ONE[@]}" -conns 19500 -room-size 100 -settle 5s
# The same on 3 nodes: two thirds of the sockets reach the lobby's leader
# through a follower's relay, so the leader holds every socket and each
# follower a relay pair per forwarded socket; 9,000 keeps every process
# under the open-file limit.
row idle-3node idle "${THREE[@]}" -conns 9000 -room-size 100 -settle 5s
# Resume 1,000 missed messages, 10 rounds.
row resume-1node resume "${ONE[@]}" -missed 1000 -repeat 10
row resume-3node resume "${THREE[@]}" -missed 1000 -repeat 10
# Game: 50 rooms × 4 players × 10 game_actions/s (2,000 actions/s), all
# rooms in RoomManager main; then each room its own object.
row game-1node game "${ONE[@]}" -games 50 -players 4 -tick-rate 10
row game-1node-shard game "${ONE[@]}" -games 50 -players 4 -tick-rate 10 -shard
row game-3node game "${THREE[@]}" -games 50 -players 4 -tick-rate 10
# Failover: kill -9 of the room's owner during closed-loop load on a 3-node
# cluster (default -raft-tick 100ms); every acknowledged message is then
# looked up in the room's history.
row failover-3node durable "${THREE[@]}" -senders 10 -duration 15s -kill-after 5s -kill-owner

# The servers' CPU profiles of the two saturated one-node rows, taken in
# runs of their own (perf costs the server a few percent).
row profile-durable-1node-w32 -profile durable "${ONE[@]}" -senders 10 -window 32
row profile-fanout-1node -profile fanout "${ONE[@]}" -rooms 1 -clients 100

echo
echo "done in $(($(date +%s) - began))s; results in $OUT/"
if [ ${#failed[@]} -gt 0 ]; then
	echo "failed rows: ${failed[*]}"
	exit 1
fi
