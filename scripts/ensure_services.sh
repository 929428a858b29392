#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432, trust auth for user postgres) and Redis (127.0.0.1:6379) answer,
# and that Debian's Chromium is installed for the browser tests. Starts or installs what is missing.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
APT_UPDATED=0
apt_install() {
    if [ "$APT_UPDATED" = 0 ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) 2>/dev/null; }

if ! pg_up; then
    if ! command -v pg_ctlcluster >/dev/null; then
        echo "ensure_services: installing PostgreSQL"
        apt_install postgresql
        conf=$(ls -d /etc/postgresql/*/main | head -1)
        # Throwaway test server: trust on loopback only.
        sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$conf/pg_hba.conf"
    fi
    version=$(ls /etc/postgresql | sort -V | tail -1)
    echo "ensure_services: starting PostgreSQL $version"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 60); do pg_up && break; sleep 0.5; done
    pg_up || { echo "ensure_services: PostgreSQL did not start on 127.0.0.1:5432" >&2; exit 1; }
fi

if ! redis_up; then
    if ! command -v redis-server >/dev/null; then
        echo "ensure_services: installing Redis"
        apt_install redis-server
    fi
    echo "ensure_services: starting Redis"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /tmp --logfile /tmp/advisor-redis.log
    for _ in $(seq 1 40); do redis_up && break; sleep 0.25; done
    redis_up || { echo "ensure_services: Redis did not start on 127.0.0.1:6379" >&2; exit 1; }
fi

if ! command -v chromium >/dev/null; then
    echo "ensure_services: installing Debian's chromium for the browser tests"
    apt_install chromium || echo "ensure_services: chromium could not be installed; the e2e tests will fail saying so" >&2
fi
echo "ensure_services: PostgreSQL, Redis and Chromium ready"
