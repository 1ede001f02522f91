#!/usr/bin/env bash
# Builds runjobs as a Python wheel (maturin, `bindings = "bin"`), installs it into a fresh
# virtual environment and runs the shipped square jobs from there, as a `pip install` user
# would: the builtin one must give [1, 4, 9, 16], and the Python one must run on the venv's
# own interpreter without the venv being activated.
#
#   scripts/wheel-check.sh [PYTHON]   PYTHON has maturin (default: .ci/venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-.ci/venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" -m maturin build --release --locked -b bin --out "$work/wheels" >"$work/build.log" 2>&1 ||
  { tail -n 30 "$work/build.log" >&2; exit 1; }
wheel=$(ls "$work"/wheels/runjobs-*.whl)
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check --no-index "$wheel"

# As cron runs it: by its path, nothing activated, a PATH without the venv.
run() { env -u VIRTUAL_ENV PATH=/usr/local/bin:/usr/bin:/bin "$work/venv/bin/runjobs" "$@"; }
run -q jobs/square.toml -o "$work/square.json"
run -q jobs/square_py.toml -o "$work/square_py.json"
python3 - "$work" <<'PY'
import json, os, sys
work = sys.argv[1]
for name in ("square.json", "square_py.json"):
    doc = json.load(open(os.path.join(work, name)))
    outputs = [r["output"] for r in doc["tasks"][0]["results"]]
    assert outputs == [1, 4, 9, 16], (name, outputs)
print("wheel-check: the wheel installs and `runjobs jobs/square.toml` gives [1, 4, 9, 16]")
PY
