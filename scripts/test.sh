#!/usr/bin/env bash
# The test command of the README. It installs and starts whatever the tests need, then
# runs the whole workspace's tests. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

# Redis for the history store's conformance suite: Debian's redis-server on a fixed
# loopback port, no persistence. Installed if missing (root, or through sudo).
REDIS_PORT="${LIVERANK_TEST_REDIS_PORT:-6390}"
if ! command -v redis-server >/dev/null 2>&1; then
    echo "== installing redis-server (Debian package)"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    echo "== starting redis-server on 127.0.0.1:$REDIS_PORT"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes >/dev/null
    for _ in $(seq 1 50); do
        redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
fi
export LIVERANK_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/"

# Headless Chromium for the report check of the main-job test (scripts/report-check.sh):
# Debian's package, installed if missing.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    echo "== installing chromium (Debian package)"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

# The Kafka-compatible broker tansu for the distributed-mode tests (liverank-kafka): built
# from the crate registry the first time (~20 min on 2 cores), then reused; a fresh
# in-memory broker per run. The tests fail, not skip, without it.
KAFKA_PORT="${LIVERANK_TEST_KAFKA_PORT:-9093}"
if ! LIVERANK_TEST_KAFKA_PORT="$KAFKA_PORT" scripts/kafka.sh status; then
    LIVERANK_TEST_KAFKA_PORT="$KAFKA_PORT" scripts/kafka.sh start
    trap 'LIVERANK_TEST_KAFKA_PORT="$KAFKA_PORT" scripts/kafka.sh stop' EXIT
fi
export LIVERANK_TEST_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"

cargo test --workspace --locked "$@"
