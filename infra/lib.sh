# Shared helpers for the local-stack scripts (sourced, not run).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
# checkov's own venv (infra/requirements-checkov.txt says why).
CHECKOV_VENV="$ROOT/.venv-checkov"
# The RustSec advisory snapshot (cargo audit, offline): PORTAL_ADVISORY_DB, else the nearest
# shared/advisory-db beside the clone or beside one of its parents (../shared/advisory-db for a
# clone next to the workplace's shared folder).
find_advisory_db() {
  local dir="$ROOT/.."
  while :; do
    [ -d "$dir/shared/advisory-db/crates" ] && { (cd "$dir/shared/advisory-db" && pwd); return; }
    [ "$(cd "$dir" && pwd)" = / ] && break
    dir="$dir/.."
  done
  echo "$ROOT/../shared/advisory-db"
}
ADVISORY_DB="${PORTAL_ADVISORY_DB:-$(find_advisory_db)}"

export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-local}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-local}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_REGION="$AWS_DEFAULT_REGION"
# Ports (override all three to run a second stack beside the first, e.g. 8100/5100/3100).
export PORTAL_DYNAMODB_PORT="${PORTAL_DYNAMODB_PORT:-8000}"
export PORTAL_MOTO_PORT="${PORTAL_MOTO_PORT:-5000}"
export PORTAL_GATEWAY_PORT="${PORTAL_GATEWAY_PORT:-3000}"
export PORTAL_DYNAMODB_ENDPOINT="http://127.0.0.1:$PORTAL_DYNAMODB_PORT"
export PORTAL_MOTO_ENDPOINT="http://127.0.0.1:$PORTAL_MOTO_PORT"
export PORTAL_GATEWAY_ADDR="127.0.0.1:$PORTAL_GATEWAY_PORT"
export PORTAL_LOCAL_JWT_SECRET="${PORTAL_LOCAL_JWT_SECRET:-local-dev-secret}"
export PORTAL_REPO_ROOT="$ROOT"
# Pids and logs: .local/ for the default ports, .local/stack-<dynamodb port>/ for a second stack.
if [ "$PORTAL_DYNAMODB_PORT" = 8000 ]; then STATE="$ROOT/.local"; else STATE="$ROOT/.local/stack-$PORTAL_DYNAMODB_PORT"; fi
mkdir -p "$STATE"
export PORTAL_STATE_DIR="$STATE"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# wait_http URL SECONDS: until URL answers at all (any HTTP status).
wait_http() {
  local url=$1 limit=$2 i=0
  until curl -s -o /dev/null --max-time 2 "$url"; do
    i=$((i + 1))
    [ "$i" -le "$((limit * 4))" ] || return 1
    sleep 0.25
  done
}

# start_bg NAME COMMAND...: run in the background, pid and log under .local/.
start_bg() {
  local name=$1; shift
  stop_bg "$name"
  nohup "$@" >"$STATE/$name.log" 2>&1 &
  echo $! >"$STATE/$name.pid"
}

stop_bg() {
  local pidfile="$STATE/$1.pid"
  [ -f "$pidfile" ] || return 0
  local pid; pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
