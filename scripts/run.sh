#!/usr/bin/env bash
# Start both services for local development: engine on 127.0.0.1:$ENGINE_PORT (8000), MAST proxy on
# 127.0.0.1:$PROXY_PORT (8002), local storage under ./data. Ctrl-C stops both and exits 0.
# RUN_PYTHON names the interpreter (default: the project's .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINE_PORT="${ENGINE_PORT:-8000}"
PROXY_PORT="${PROXY_PORT:-8002}"
PY="${RUN_PYTHON:-.venv/bin/python}"
export STORAGE_PROVIDER="${STORAGE_PROVIDER:-local}"
export STORAGE_BASE_PATH="${STORAGE_BASE_PATH:-$PWD/data}"
export MAST_DOWNLOAD_DIR="${MAST_DOWNLOAD_DIR:-$PWD/data/mast}"
export SEMANTIC_DATA_DIR="${SEMANTIC_DATA_DIR:-$PWD/data/semantic}"
export LOG_FORMAT="${LOG_FORMAT:-text}"
# (the services create these directories at startup, and say so clearly when they cannot)
# deadlines on slow request heads and bodies (REQUEST_HEAD_TIMEOUT_SECONDS, REQUEST_BODY_TIMEOUT_SECONDS)
HTTP=app.core.http_protocol:GuardedHttpToolsProtocol
# uvicorn's own lines (startup, errors) in the services' LOG_FORMAT; on stop, requests still running after 8 s
# are cancelled (their jobs and worker processes with them) instead of holding the shutdown
LOG_CONFIG=app/core/uvicorn_logging.json

# Fail before starting anything when a port is taken, naming it (bound as uvicorn binds: SO_REUSEADDR).
port_free() {
  "$PY" - "$1" <<'EOF'
import socket, sys
with socket.socket() as s:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        sys.exit(1)
EOF
}
for pair in "ENGINE_PORT=$ENGINE_PORT" "PROXY_PORT=$PROXY_PORT"; do
  name="${pair%%=*}" port="${pair#*=}"
  if ! port_free "$port"; then
    echo "make run: port $port ($name) on 127.0.0.1 is already in use." >&2
    echo "  Stop what listens there (see: ss -ltnp 'sport = :$port'), or pick another: $name=<port> make run" >&2
    exit 1
  fi
done
if [ "$ENGINE_PORT" = "$PROXY_PORT" ]; then
  echo "make run: ENGINE_PORT and PROXY_PORT are both $ENGINE_PORT; give them different ports." >&2
  exit 1
fi

ENGINE="" PROXY=""
stop() {
  trap - INT TERM
  [ -n "$ENGINE$PROXY" ] && kill $ENGINE $PROXY 2>/dev/null || true
  wait $ENGINE $PROXY 2>/dev/null || true
}
# Ctrl-C (the terminal sends INT to the whole group) or TERM: stop both, wait for them, exit 0.
on_signal() {
  stop
  echo "stopped engine and proxy"
  exit 0
}
trap on_signal INT TERM

"$PY" -m uvicorn main:app --host 127.0.0.1 --port "$ENGINE_PORT" --timeout-keep-alive 600 --http "$HTTP" \
  --log-config $LOG_CONFIG --timeout-graceful-shutdown 8 &
ENGINE=$!
"$PY" -m uvicorn main_mast:app --host 127.0.0.1 --port "$PROXY_PORT" --workers 2 --http "$HTTP" \
  --log-config $LOG_CONFIG --timeout-graceful-shutdown 8 &
PROXY=$!
echo "engine: http://127.0.0.1:$ENGINE_PORT/docs   proxy: http://127.0.0.1:$PROXY_PORT/docs   (Ctrl-C stops both)"

# One service ended by itself (failed to start, or crashed): stop the other and report it.
status=0
wait -n $ENGINE $PROXY || status=$?
stop
echo "make run: a service stopped (exit status $status); stopped the other one too" >&2
exit $(( status == 0 ? 1 : status ))
