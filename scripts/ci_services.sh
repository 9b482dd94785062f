#!/usr/bin/env bash
# Start PostgreSQL (127.0.0.1:5432, trust auth, database `test`) and Redis (127.0.0.1:6379)
# for the gateway and ledger tests, if they are not already running. Idempotent: running it
# twice starts nothing the second time. The tests FAIL (never skip) when either is missing.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up; then
    if ! command -v pg_ctlcluster >/dev/null; then
        echo "ci_services: PostgreSQL is not running and pg_ctlcluster is not installed" >&2
        exit 1
    fi
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    for _ in $(seq 1 50); do pg_up && break; sleep 0.2; done
    pg_up || { echo "ci_services: PostgreSQL did not come up" >&2; exit 1; }
fi
if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" \
    | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE test"
fi

if ! redis_up; then
    if ! command -v redis-server >/dev/null; then
        echo "ci_services: Redis is not running and redis-server is not installed" >&2
        exit 1
    fi
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
    for _ in $(seq 1 50); do redis_up && break; sleep 0.1; done
    redis_up || { echo "ci_services: Redis did not come up" >&2; exit 1; }
fi


# The plan report's test renders the HTML in Debian's headless Chromium.
if ! command -v chromium >/dev/null; then
    echo "ci_services: installing chromium (Debian package) for the HTML report test" >&2
    apt-get install -y -qq chromium >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null; }
fi
echo "ci_services: PostgreSQL, Redis and chromium are ready"
