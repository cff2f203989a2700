#!/usr/bin/env bash
# Makes sure the real services the tests talk to are up on loopback:
# PostgreSQL (5432), Redis (6379), Mosquitto (1883), and that headless
# Chromium is installed. Starts a stopped service, installs a missing one
# from Debian's packages, and fails loudly when one cannot be had.
set -uo pipefail

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] FATAL: %s\n' "$*" >&2; exit 1; }

apt_updated=
need_pkg() { # need_pkg command package...
	local cmd=$1; shift
	command -v "$cmd" >/dev/null 2>&1 && return 0
	[ "$(id -u)" = 0 ] || die "$cmd is missing and we are not root to install: $*"
	if [ -z "$apt_updated" ]; then
		log "apt-get update"
		apt-get update -qq >/dev/null || die "apt-get update failed"
		apt_updated=1
	fi
	log "installing $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || die "apt-get install $* failed"
	command -v "$cmd" >/dev/null 2>&1 || die "$cmd still missing after installing $*"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # wait_for name check-command...
	local name=$1; shift
	for _ in $(seq 1 60); do
		"$@" >/dev/null 2>&1 && { log "$name is up"; return 0; }
		sleep 0.5
	done
	die "$name did not come up on loopback (checked with: $*)"
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }
mqtt_up() { port_open 1883; }

# PostgreSQL
need_pkg pg_isready postgresql postgresql-client
if ! pg_up; then
	ls /etc/postgresql >/dev/null 2>&1 || need_pkg pg_ctlcluster postgresql
	log "starting PostgreSQL"
	for v in $(ls /etc/postgresql); do
		pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
	done
fi
wait_for PostgreSQL pg_up
# The tests connect as postgres/postgres over TCP (LIFELINE_TEST_POSTGRES_URL
# overrides). A fresh Debian install asks for a password on 127.0.0.1: set it.
PG_TEST_URL=${LIFELINE_TEST_POSTGRES_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable}
if ! psql "$PG_TEST_URL" -qtAc 'select 1' >/dev/null 2>&1; then
	log "setting the postgres user's password for TCP logins"
	su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null 2>&1 || true
fi
psql "$PG_TEST_URL" -qtAc 'select 1' >/dev/null 2>&1 || die "cannot log in to PostgreSQL as $PG_TEST_URL"

# Redis
need_pkg redis-server redis-server redis-tools
if ! redis_up; then
	log "starting Redis"
	mkdir -p /var/lib/redis /var/log/redis
	redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
		--dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
wait_for Redis redis_up

# Mosquitto
need_pkg mosquitto mosquitto mosquitto-clients
if ! mqtt_up; then
	log "starting Mosquitto"
	mosquitto -d -c /etc/mosquitto/mosquitto.conf || true
fi
wait_for Mosquitto mqtt_up

# Headless Chromium for the console tests.
need_pkg chromium chromium chromium-driver
chromium --version >/dev/null 2>&1 || die "chromium is installed but does not run"
log "chromium: $(chromium --version 2>/dev/null)"
