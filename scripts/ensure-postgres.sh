#!/usr/bin/env bash
# PostgreSQL server binaries for the test suite, which starts its own throwaway server from
# them (tests/postgres_server.py). Installs Debian's package when run as root; idempotent and
# quiet. Skipped when SIGMALAB_TEST_POSTGRES names a server to use instead.
set -euo pipefail
[ -n "${SIGMALAB_TEST_POSTGRES:-}" ] && exit 0
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && exit 0
command -v initdb >/dev/null && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "note: no PostgreSQL server binaries and no root/apt to install them;" \
        "the PostgreSQL tests will be skipped (CI fails them)" >&2
    exit 0
fi
echo "installing PostgreSQL (apt) for the database tests"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
