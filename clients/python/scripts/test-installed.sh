#!/usr/bin/env bash
# Proves the package as a user gets it, outside the checkout: in a temp dir, a fresh venv
# builds the wheel (`pip wheel` with the hatchling pyproject.toml names), installs it with
# requirements-dev.txt, checks that the committed stubs match proto/ and that
# `sessiond_client` imports from the venv, then runs a copy of tests/ (sync and asyncio)
# from there against $SESSIOND_ADDR. Extra arguments go to pytest (e.g. -k aio).
# $PYTHON picks the interpreter (python3). The temp dir is removed unless KEEP_VENV=1.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
: "${SESSIOND_ADDR:?set SESSIOND_ADDR to the server under test (host:port)}"
unset PYTHONPATH PYTHONHOME
python="${PYTHON:-python3}"

work="$(mktemp -d "${TMPDIR:-/tmp}/sessiond-python.XXXXXX")"
[[ "${KEEP_VENV:-}" == 1 ]] || trap 'rm -rf "$work"' EXIT
if ! "$python" -m venv "$work/venv"; then
  echo "test-installed.sh: '$python -m venv' failed; on Debian/Ubuntu: apt-get install python3-venv" >&2
  exit 1
fi
venv_python="$work/venv/bin/python"
pip=("$venv_python" -m pip --disable-pip-version-check --quiet)

# Every wheel from PyPI goes through a wheelhouse kept across runs (a CI run is a fresh
# clone, so not under target/): installs are offline from it, and only what it lacks
# (first run, a changed requirement) is downloaded, since each index lookup here costs
# seconds. $SESSIOND_WHEELHOUSE moves it.
wheels="${SESSIOND_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/sessiond/python-wheels}"
mkdir -p "$wheels"
install() {
  "${pip[@]}" install --no-compile --no-index --find-links "$wheels" "$@" 2>/dev/null || {
    "${pip[@]}" download --dest "$wheels" "$@"
    rm -f "$wheels"/sessiond_client-*
    "${pip[@]}" install --no-compile --no-index --find-links "$wheels" "$@"
  }
}

# The build backend pyproject.toml names, then the wheel built with it (no isolation:
# the venv is fresh anyway, and isolation would ask the index again).
"$venv_python" -c 'import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["build-system"]["requires"]))' \
  "$here/pyproject.toml" >"$work/build-requirements.txt"
install -r "$work/build-requirements.txt"
"${pip[@]}" wheel --no-build-isolation --no-deps --wheel-dir "$work/dist" "$here"
wheel="$(echo "$work"/dist/sessiond_client-*.whl)"
echo "built $(basename "$wheel")"
install "$wheel" -r "$here/requirements-dev.txt"

cd "$work"
"$venv_python" "$here/tools/generate.py" --check
"$venv_python" - "$work/venv" <<'PY'
import sys
from pathlib import Path

import sessiond_client
import sessiond_client.aio

where = Path(sessiond_client.__file__).resolve()
assert where.is_relative_to(Path(sys.argv[1]).resolve()), f"imported from {where}"
print(f"sessiond_client {sessiond_client.__version__} from {where.parent}")
PY
cp -r "$here/tests" "$work/tests"
"$venv_python" -m pytest -q -p no:cacheprovider --rootdir "$work/tests" "$@" "$work/tests"
