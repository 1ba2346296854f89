#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the tests and prints its URL
# (for PADDOCK_TEST_POSTGRES). Needs Debian's `postgresql` package.
# PostgreSQL refuses to run as root, so as root the cluster runs as the
# `postgres` user. Trust authentication, loopback only: for tests alone.
set -euo pipefail
# A free port unless one is given.
port="${1:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
dir="$(mktemp -d /tmp/paddock-pg.XXXXXX)"
as=()
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$dir"
  as=(runuser -u postgres --)
fi
"${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync >/dev/null
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w start \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=400" >/dev/null
echo "postgres://postgres@127.0.0.1:$port/postgres"
