# smctrace: `make run` (set up, decode a real capture) and `make test` (set up, run all tests).
# Both are idempotent and safe to re-run; run them as root on Debian 12 (apt is used).

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO := tests/data/real-kernel/C-smcd-loopback-ism-k612lo.pcap tests/data/real-kernel/D7-smcr-v2-mixed-srv61-cli612-srv_k61-cli_k612.pcap
# Debian packages: BCC (python3-bpfcc) and kernel headers for the live tracer, tshark as the
# test oracle, tcpdump and iperf3 for benchmarks, python3-dev to build the C engine,
# libpcap0.8 to compile filter expressions (tcpdump is the filters' test oracle), the
# compressors whose files the compressed-input tests make (gzip is always there), groff
# and mandoc, which check that the man page renders without a warning; for the --http
# tests a real Prometheus server (prometheus, with promtool), a real browser (chromium),
# systemd-analyze (systemd) and setpriv (util-linux) for contrib/.
APT_PACKAGES := python3-venv python3-dev python3-pip gcc libc6-dev python3-bpfcc \
	linux-headers-amd64 tshark tcpdump iproute2 procps iperf3 time libpcap0.8 \
	bzip2 xz-utils zstd groff-base mandoc prometheus chromium systemd util-linux

.PHONY: run test setup apt lint bench bench-live lab-test man clean

run: setup
	@for f in $(DEMO); do echo "== smctrace -f $$f"; $(VENV)/bin/smctrace -f $$f; echo; done

test: setup lint
	$(PY) -m pytest -q

# mypy --strict: the package, every script (the lab's package, the benchmarks and their
# launchers) and tests/support
lint: setup
	$(VENV)/bin/ruff check smctrace tests scripts
	$(VENV)/bin/mypy --strict smctrace scripts/smc-lab/smclab tests/support scripts/bench \
		scripts/*.py

setup: $(STAMP)

apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@bash scripts/setup-bcc-headers.sh

# The venv sees Debian's site-packages so that `import bcc` (python3-bpfcc) works.
$(STAMP): pyproject.toml setup.py smctrace/match/_engine.c smctrace/match/smc_match.h smctrace/match/rule.py | apt
	@test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# compat: the editable install is a path entry, not an import hook (faster start-up)
	$(PY) -m pip install -q -e '.[test]' --config-settings editable_mode=compat
	@touch $(STAMP)

bench: setup
	$(PY) scripts/bench_offline.py

bench-live: setup
	$(PY) scripts/bench_live.py

# The man page is generated from the CLI's options; a test fails when it is out of date.
man: setup
	$(PY) -m smctrace.manpage > man/smctrace.1

# The SMC lab: every scenario on the oldest and newest kernels (k510, k7), the smoke subset
# on the others, live tracing; SMCLAB_CACHE (default /var/cache/smctrace-lab) keeps the
# downloads and the self-built 7.x kernel between runs. LAB_TEST_ARGS="--full all" runs
# every scenario everywhere.
lab-test: setup
	scripts/smc-lab/smc-lab test $(LAB_TEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -prune -exec rm -rf {} +
