#!/bin/sh
# Container start: apply the migrations, retrying while the database is not
# reachable yet, then replace this shell with gunicorn (so it gets the signals).
#   RUN_MIGRATIONS=0          skip the migrations (another instance or a job runs them)
#   MIGRATION_ATTEMPTS=30     give up (exit 1) after this many failed attempts
#   MIGRATION_RETRY_DELAY=2   seconds between attempts
set -eu
cd "$(dirname "$0")/.."
export FLASK_APP="${FLASK_APP:-wsgi}"

log() {
  printf '{"level": "%s", "logger": "entrypoint", "pid": %s, "message": "%s"}\n' "$1" "$$" "$2"
}

if [ "${RUN_MIGRATIONS:-1}" = "0" ]; then
  log INFO "RUN_MIGRATIONS=0: skipping migrations"
else
  attempts="${MIGRATION_ATTEMPTS:-30}"
  delay="${MIGRATION_RETRY_DELAY:-2}"
  attempt=1
  until flask db upgrade; do
    if [ "$attempt" -ge "$attempts" ]; then
      log ERROR "migrations failed $attempt times; giving up"
      exit 1
    fi
    log WARNING "migrations failed (attempt $attempt of $attempts); retrying in ${delay}s"
    attempt=$((attempt + 1))
    sleep "$delay"
  done
fi

exec gunicorn -c gunicorn.conf.py wsgi:app
