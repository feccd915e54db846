# The two set-up commands of the README: `make demo` and `make test`. Both create .venv and
# install rnnx with the pinned CPU stack (constraints.txt) when needed. `make docs` builds the
# guide (docs/, mkdocs.yml) into site/; the tests build it too (tests/docs/test_site.py).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The web and node runtimes' tools: Debian's Chromium (apt, as root) and the npm packages in
# js/node_modules (onnxruntime-web, onnxruntime-node; ONNXRUNTIME_NODE_INSTALL=skip: its CPU
# binaries ship in the package, its install script would download others). What cannot be
# installed is said in one line, and the tests that need it skip.
JS_STAMP := js/node_modules/.installed
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends

.PHONY: demo test docs bench lint clean js

$(STAMP): setup.cfg setup.py pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	@# qemu-user runs onnxruntime on an emulated AVX2-only CPU (tests/runtimes/test_emulated.py)
	@command -v qemu-x86_64 >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user \
		>/dev/null; } || echo "rnnx: qemu-user not installed (apt-get install qemu-user): the AVX2 emulation tests skip"
	touch $(STAMP)

$(JS_STAMP): js/package.json js/package-lock.json
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -q >/dev/null && $(APT_INSTALL) chromium >/dev/null; } \
		|| echo "rnnx: Chromium not installed (apt-get install chromium): the web runtime's tests skip"
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -q >/dev/null && $(APT_INSTALL) nodejs npm >/dev/null; } \
		|| echo "rnnx: npm not installed (apt-get install nodejs npm): the web and node runtimes' tests skip"
	@if command -v npm >/dev/null && ONNXRUNTIME_NODE_INSTALL=skip npm ci --prefix js \
		--no-audit --no-fund --loglevel=error >/dev/null; then touch $(JS_STAMP); \
	else echo "rnnx: npm packages not installed (npm ci --prefix js): the web and node runtimes' tests skip"; fi

js: $(JS_STAMP)

demo: $(STAMP) $(JS_STAMP)
	$(BIN)/python -m rnnx.demo

test: $(STAMP) $(JS_STAMP)
	$(BIN)/python -m pytest -q

# NO_MKDOCS_2_WARNING: Material's notice about its successor, printed on every build, is about
# the tool, not the guide.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

clean:
	rm -rf $(VENV) build site *.egg-info js/node_modules
