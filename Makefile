# The two commands of the README's quick start: `make demo` and `make test`.
PYTHON := .venv/bin/python
SAMPLES := utils/neu/metrics/lpips/samples
export PYTHONPATH := $(CURDIR)/utils/neu

.PHONY: setup setup-test demo test

setup:
	@bash scripts/setup.sh

setup-test:
	@bash scripts/setup.sh --test

demo: setup
	$(PYTHON) -m metrics.lpips.compute $(SAMPLES)/ref/cat.png $(SAMPLES)/distorted/cat.png
	$(PYTHON) -m metrics.lpips.compute $(SAMPLES)/ref $(SAMPLES)/distorted --model alex
	$(PYTHON) -m metrics.lpips.compute $(SAMPLES)/ref $(SAMPLES)/distorted --model vgg

# Two workers: the suite's tests are mostly one core's work (NNabla's CPU kernels, starting
# commands); heavy tests run one at a time so that memory stays under 4 GB (docs/development.md).
test: setup-test
	$(PYTHON) -m pytest -n 2 tests $(PYTEST_ARGS)
