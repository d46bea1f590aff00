#!/usr/bin/env bash
# Runs everything the tests need, from a fresh machine: toolchain components,
# formatting, lints, every test (unit, integration, UI, doc), the examples and
# benchmarks build, a short demo run, and the project's own spawn audit.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain components"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
cargo --version

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings (default features, all, then each feature alone)"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --workspace --all-targets --all-features -- -D warnings
# Each optional feature alone, as a user enables it: a cfg that only holds
# with all features on (http without journal, say) fails here.
for feature in prometheus http journal journal-postgres otel; do
    cargo clippy -p tracked-runtime --features "$feature" -- -D warnings
done

step "minimum supported Rust (rust-version in Cargo.toml): the library, every feature but the journal"
rustup toolchain install 1.88 --profile minimal >/dev/null 2>&1 || rustup toolchain install 1.88 --profile minimal
CARGO_TARGET_DIR=target/msrv cargo +1.88 check -p tracked --lib --features prometheus,http,otel

step "loom models of the record's hand-offs (exhaustive; see tracked-runtime/src/handoff/loom.rs)"
# Its own target dir: other flags would otherwise rebuild the release artifacts twice.
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p tracked-runtime --release --lib loom

step "Miri on the runtime's unit and doc tests (the unsafe current-task pointer; see ARCHITECTURE.md)"
if ! cargo +nightly miri --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal --component miri,rust-src --allow-downgrade
fi
# Isolation off: the tracker reads the wall clock once, at construction.
MIRIFLAGS=-Zmiri-disable-isolation cargo +nightly miri test -p tracked-runtime

step "external test programs (Prometheus, Chromium, chromedriver)"
if [ "${TRACKED_SKIP_EXTERNAL:-0}" = "1" ]; then
    echo "TRACKED_SKIP_EXTERNAL=1: not installing; tests/external.rs skips"
else
    ./scripts/install-external.sh
fi

step "cargo test --all-features (workspace: unit, integration, UI, doc, HTTP, external)"
cargo test --workspace --all-features

step "build examples and benchmarks"
cargo build --workspace --examples --all-features
cargo bench --workspace --all-features --no-run

step "demo smoke run (4 s, with the HTTP API queried while it runs)"
# Built first, so that the wait below is for the demo, not for the compiler.
cargo build --quiet --features http,journal --example demo
DEMO_SECONDS=4 cargo run --quiet --features http,journal --example demo > target/demo-smoke.txt &
demo=$!
url=""
for _ in $(seq 1 300); do
    url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' target/demo-smoke.txt 2>/dev/null | head -n 1 || true)
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || { echo "the demo printed no URL"; kill "$demo"; exit 1; }
# Each body is read whole before it is searched: `curl | grep -q` fails
# under pipefail when grep exits at its match while curl is still writing.
stats=$(curl -fsS "$url/stats")
grep -q '"spawned"' <<<"$stats"
metrics=$(curl -fsS "$url/metrics")
grep -q '^tracked_tasks_spawned_total' <<<"$metrics"
wait "$demo"
grep -q "tiered shutdown" target/demo-smoke.txt
grep -q "final report" target/demo-smoke.txt
grep -q "live tasks left: 0" target/demo-smoke.txt
grep -q "lost their waker (never polled again): #[0-9]* db::replica-fetch" target/demo-smoke.txt
grep -q "^journal: [1-9][0-9]* events" target/demo-smoke.txt
tail -n 12 target/demo-smoke.txt

step "cargo xtask audit (every spawn goes through the tracker)"
cargo xtask audit

echo
echo "all checks passed"
