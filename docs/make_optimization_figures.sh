#!/bin/sh
# The optimisation pictures of docs/elpips.md: small, CPU-sized runs of `python -m metrics.lpips.optimize`
# on the bundled samples (64 x 64 px). Each prints its loss before and after and its time;
# the summaries are saved to docs/images/ in 256 colours. Run from the repository root after `make setup`:
#     sh docs/make_optimization_figures.sh [STEPS]
set -e
STEPS=${1:-300}
PY=${PYTHON:-.venv/bin/python}
SAMPLES=utils/neu/metrics/lpips/samples/ref
OUT=${TMPDIR:-/tmp}/lpips-optimization-figures
export PYTHONPATH=utils/neu
run() {
    name=$1; shift
    "$PY" -m metrics.lpips.optimize "$@" -o "$OUT/$name" --size 64 --steps "$STEPS" \
        --snapshots 6 --figure -q
    # 256 colours: a third of the bytes, no visible change at this size
    "$PY" -c "import sys; from PIL import Image; Image.open(sys.argv[1]).convert('RGB').quantize(
256, method=Image.Quantize.MEDIANCUT).save(sys.argv[2], optimize=True)" \
        "$OUT/$name/summary.png" "docs/images/optimize-$name.png"
}
run match-vgg match "$SAMPLES/cat.png" --metric lpips --model vgg
run average-elpips average "$SAMPLES/cat.png" "$SAMPLES/coffee.png" --metric elpips
run average-lpips average "$SAMPLES/cat.png" "$SAMPLES/coffee.png" --metric lpips --model vgg
run bary10-noise-elpips average "$SAMPLES/cat.png" --copies 10 --perturb noise --metric elpips
