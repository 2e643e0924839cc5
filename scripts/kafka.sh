#!/usr/bin/env bash
# The Kafka-compatible test broker `tansu` on loopback.
#
#   scripts/kafka.sh install   build tansu from the crate registry unless a binary is installed
#   scripts/kafka.sh start     install if needed, start on 127.0.0.1:$PORT, wait until it answers
#   scripts/kafka.sh stop      stop the broker this script started (by its pid file)
#   scripts/kafka.sh status    exit 0 when the broker answers
#
# Storage: tansu's dynostore engine on `memory://` (the `--features dynostore` build offers
# memory:// and s3:// only): topics live as long as the process. Every start is a fresh,
# empty broker, which is what the tests want.
# Environment: LIVERANK_TEST_KAFKA_PORT (default 9093), TANSU_BIN (a tansu binary to use),
# TANSU_STATE (pid and log directory, default /tmp/liverank-tansu-$PORT).
set -euo pipefail

PORT="${LIVERANK_TEST_KAFKA_PORT:-9093}"
STATE="${TANSU_STATE:-/tmp/liverank-tansu-$PORT}"
CARGO_HOME_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"

tansu_bin() {
    if [ -n "${TANSU_BIN:-}" ]; then echo "$TANSU_BIN"; return; fi
    if command -v tansu >/dev/null 2>&1; then command -v tansu; return; fi
    if [ -x "$CARGO_HOME_BIN/tansu" ]; then echo "$CARGO_HOME_BIN/tansu"; return; fi
    echo ""
}

answers() {
    # A Kafka broker accepts TCP on its port; tansu binds only once storage is ready.
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

install() {
    if [ -n "$(tansu_bin)" ]; then return; fi
    echo "== installing tansu (cargo install tansu --locked --features dynostore; ~20 min on 2 cores)"
    # Its own target directory, removed afterwards: the build is large and only the binary is kept.
    local target
    target="$(mktemp -d /tmp/tansu-target.XXXXXX)"
    CARGO_TARGET_DIR="$target" cargo install tansu --locked --features dynostore
    rm -rf "$target"
}

start() {
    install
    if answers; then
        echo "== a broker already answers on 127.0.0.1:$PORT"
        return
    fi
    mkdir -p "$STATE"
    local bin
    bin="$(tansu_bin)"
    echo "== starting tansu on 127.0.0.1:$PORT ($bin, memory storage)"
    # setsid: the broker outlives this script; it is stopped by pid (`stop`).
    setsid "$bin" broker \
        --listener-url "tcp://127.0.0.1:$PORT" \
        --advertised-listener-url "tcp://127.0.0.1:$PORT" \
        --storage-engine "memory://tansu/" \
        >"$STATE/tansu.log" 2>&1 < /dev/null &
    echo $! > "$STATE/tansu.pid"
    for _ in $(seq 1 100); do
        if answers; then return; fi
        if ! kill -0 "$(cat "$STATE/tansu.pid")" 2>/dev/null; then
            echo "tansu exited; its log:" >&2
            cat "$STATE/tansu.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "tansu does not answer on 127.0.0.1:$PORT after 10 s; its log:" >&2
    cat "$STATE/tansu.log" >&2
    exit 1
}

stop() {
    if [ -f "$STATE/tansu.pid" ]; then
        local pid
        pid="$(cat "$STATE/tansu.pid")"
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -f "$STATE/tansu.pid"
    fi
}

case "${1:-start}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    status) answers ;;
    *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
