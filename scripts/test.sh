#!/usr/bin/env bash
# The test command of the README. It installs and starts whatever the tests need, then
# runs the whole workspace's tests. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."

# Services the tests need are added here as the project grows (Redis, the Kafka broker):
# each is installed from the package registries if missing and started on loopback.

cargo test --workspace --locked "$@"
