#!/usr/bin/env bash
# Make sure PostgreSQL, MariaDB and Redis are up on 127.0.0.1, and Chromium (for the browser
# tests) is installed: Debian packages, installed only when missing.
set -euo pipefail

need_pkgs=()
command -v pg_ctlcluster >/dev/null || need_pkgs+=(postgresql)
command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] || need_pkgs+=(mariadb-server)
command -v redis-server >/dev/null || need_pkgs+=(redis-server)
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}"
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
fi
if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi
if ! mysqladmin -h 127.0.0.1 -uroot status >/dev/null 2>&1; then
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
fi
for _ in $(seq 1 60); do
  if pg_isready -q -h 127.0.0.1 -p 5432 && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 \
     && mysqladmin -h 127.0.0.1 -uroot status >/dev/null 2>&1; then
    echo "services: postgresql, mariadb, redis up"
    exit 0
  fi
  sleep 1
done
echo "services: not all of postgresql, mariadb, redis came up" >&2
exit 1
