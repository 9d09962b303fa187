#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer for `make test` / `make bench`, then print the
# database URL to use (the only thing written to stdout).
#
# PostgreSQL: the server of the given URL when it answers; else a local system server that is
# installed but stopped, started; else the embedded server (scripts/local_postgres.py, the one
# `make run` uses) in var/postgres-test on port 54330, so a machine
# without PostgreSQL installed passes too. Redis: started when installed and stopped.
set -u
url="${1:?usage: ensure-services.sh DATABASE_URL [PYTHON]}"
python="${2:-.venv/bin/python}"

hostport=$(printf '%s' "$url" | sed -E 's#^[a-z]+://([^@/]*@)?([^/?]*).*#\2#')
database=${url##*/}; database=${database%%\?*}
host=${hostport%%:*}; port=${hostport##*:}; [ "$port" = "$hostport" ] && port=5432
answers() { "$python" - "$host" "$port" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

if ! answers && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  [ -n "$version" ] && pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
  for _ in $(seq 1 30); do answers && break; sleep 1; done
fi
if ! answers; then
  echo "No PostgreSQL on $host:$port: using the embedded server (var/postgres-test)." >&2
  url=$("$python" scripts/local_postgres.py start --data var/postgres-test --port 54330 --database "$database") || exit 1
fi

if command -v redis-cli >/dev/null 2>&1 && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  if command -v redis-server >/dev/null 2>&1; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /tmp --logfile /tmp/redis-outreach.log >&2 || true
  fi
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { echo "Redis is not reachable on 127.0.0.1:6379" >&2; exit 1; }

printf '%s\n' "$url"
