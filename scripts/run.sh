#!/usr/bin/env bash
# Start both services for local development: engine on 127.0.0.1:8000, MAST proxy on
# 127.0.0.1:8002, local storage under ./data. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p data/mast data/semantic
export STORAGE_PROVIDER="${STORAGE_PROVIDER:-local}"
export STORAGE_BASE_PATH="${STORAGE_BASE_PATH:-$PWD/data}"
export MAST_DOWNLOAD_DIR="${MAST_DOWNLOAD_DIR:-$PWD/data/mast}"
export SEMANTIC_DATA_DIR="${SEMANTIC_DATA_DIR:-$PWD/data/semantic}"
export LOG_FORMAT="${LOG_FORMAT:-text}"
UVICORN=.venv/bin/uvicorn
# deadlines on slow request heads and bodies (REQUEST_HEAD_TIMEOUT_SECONDS, REQUEST_BODY_TIMEOUT_SECONDS)
HTTP=app.core.http_protocol:GuardedHttpToolsProtocol
# uvicorn's own lines (startup, errors) in the services' LOG_FORMAT
LOG_CONFIG=app/core/uvicorn_logging.json

$UVICORN main:app --host 127.0.0.1 --port 8000 --timeout-keep-alive 600 --http "$HTTP" --log-config $LOG_CONFIG &
ENGINE=$!
$UVICORN main_mast:app --host 127.0.0.1 --port 8002 --workers 2 --http "$HTTP" --log-config $LOG_CONFIG &
PROXY=$!

stop() {
  trap - INT TERM EXIT
  kill "$ENGINE" "$PROXY" 2>/dev/null || true
  wait "$ENGINE" "$PROXY" 2>/dev/null || true
}
trap stop INT TERM EXIT
echo "engine: http://127.0.0.1:8000/docs   proxy: http://127.0.0.1:8002/docs   (Ctrl-C stops both)"
wait -n "$ENGINE" "$PROXY"
