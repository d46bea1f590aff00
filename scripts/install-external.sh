#!/usr/bin/env bash
# Installs the programs the external tests drive: a real Prometheus server
# (which scrapes the HTTP server's /metrics), headless Chromium with its
# driver (which loads the dashboard), PostgreSQL (the journal tests start
# private servers with initdb/pg_ctl), and curl for the demo smoke run.
# Debian packages; safe to run again.
set -euo pipefail

need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v curl >/dev/null 2>&1 || need+=(curl)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    need+=(postgresql)
fi
if [ ${#need[@]} -eq 0 ]; then
    echo "external test programs already installed"
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# --no-install-recommends: no Grafana-style extras, no desktop stack.
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The Debian package starts a system Prometheus on :9090; the tests run
# their own on a free port, so the service is not needed.
if command -v systemctl >/dev/null 2>&1; then
    $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
# Likewise the packaged PostgreSQL cluster: the tests start their own.
if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters -h 2>/dev/null | while read -r version cluster _; do
        $sudo pg_ctlcluster "$version" "$cluster" stop >/dev/null 2>&1 || true
    done
fi
echo "installed: ${need[*]}"
