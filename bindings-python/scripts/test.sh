#!/usr/bin/env bash
# `make python-test`: build the wheel from this tree, install it into a fresh venv together with
# pytest, mypy and the web extra's pinned dependencies (requirements-web.txt: uvicorn, uvloop,
# aiohttp, ...), then run stubtest on the native module, mypy --strict on the package,
# and the pytest suite (whose closing summary line is the last thing printed).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
venv="$(mktemp -d "${TMPDIR:-/tmp}/zcopy-python-test.XXXXXX")"
trap 'rm -rf "$venv"' EXIT

echo "== python-test: fresh venv in $venv ($("$python" --version))"
"$python" -m venv "$venv"
py="$venv/bin/python"
"$py" -m pip install --quiet --disable-pip-version-check "pytest>=7" "mypy>=1.8" -r "$here/requirements-web.txt"
echo "== python-test: building and installing the wheel (pip install ./bindings-python[web])"
"$py" -m pip install --quiet --disable-pip-version-check "$here[web]"

# Run from outside the source tree so `import zcopy` is the installed wheel.
cd "$venv"
echo "== python-test: stubtest zcopy._zcopy"
"$py" -m mypy.stubtest zcopy._zcopy
echo "== python-test: mypy --strict on the package"
"$py" -m mypy --strict --no-incremental --cache-dir=/dev/null -p zcopy
echo "== python-test: pytest"
# Every test bounds its own waits; this bounds the whole run should one still hang.
timeout --signal=INT --kill-after=30 1200 "$py" -m pytest -p no:cacheprovider -q -rs "$here/tests"
