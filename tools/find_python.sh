# Sourced by tools/dist_train.sh and tools/dist_test.sh: sets PYTHON to the
# interpreter that has torch. Order: $PYTHON as given; the checkout's .venv
# (made by `make install`; it need not be activated); python3 on PATH.
# torchrun is not called directly: it is on PATH only in an activated venv.
if [ -z "${PYTHON:-}" ]; then
  _repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  if [ -x "$_repo/.venv/bin/python" ]; then
    PYTHON="$_repo/.venv/bin/python"
  else
    PYTHON="$(command -v python3 || command -v python || true)"
  fi
fi
if [ -z "$PYTHON" ] || ! "$PYTHON" -c \
    'import importlib.util as u, sys; sys.exit(u.find_spec("torch") is None)' \
    2>/dev/null; then
  echo "$(basename "$0"): no Python with torch found (tried ${PYTHON:-python3});" \
       "run 'make install' or set PYTHON=/path/to/python" >&2
  exit 1
fi
