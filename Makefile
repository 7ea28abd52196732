# One-command set-up: `make demo` runs the main job, `make test` runs the tests.
# Both create .venv, install everything pinned and build the ROS messages first;
# re-running is fast because each step is a stamp file that only rebuilds when its inputs change.
#
# Layout: the repository root is one ament_cmake package. colcon builds the messages into
# install/bisenet_ros/lib/python3.X/site-packages/bisenet_ros/msg and links every source file
# of bisenet_ros/ next to them (--symlink-install), so that, with install/setup.bash sourced,
# `import bisenet_ros` finds our code AND the generated `bisenet_ros.msg`. Edits to source
# files show up there at once; adding, removing or renaming a file triggers a rebuild (below).
# The editable pip install only provides the `bisenet` command (and `import bisenet_ros`
# without ROS); with the ROS environment sourced, PYTHONPATH puts the install first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
BUILT := install/.built
FILELIST := build/.package-files
PYTEST_ARGS ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Sourced before anything that needs ROS (env.bash says what it sets).
ROSENV := source env.bash

.PHONY: all setup test demo lint clean sysdeps FORCE
all: setup
setup: $(BUILT)

# System packages a bare Debian 12 lacks: a C++ toolchain and CMake (the message build),
# venv support and the Python headers (the generated Python extension).
sysdeps:
	@if ! command -v g++ >/dev/null || ! command -v cmake >/dev/null \
		|| ! $(PYTHON) -c 'import venv, ensurepip' 2>/dev/null \
		|| ! $(PYTHON) -c 'import os, sysconfig, sys; sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then \
		echo "installing system packages (g++ cmake python3-venv python3-dev)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
			g++ cmake make python3-venv python3-dev; \
	fi

$(INSTALLED): requirements.txt setup.py | sysdeps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# The list of files colcon links into the install: rewritten only when a file is added,
# removed or renamed, so that only then the install is rebuilt.
$(FILELIST): FORCE
	@mkdir -p $(@D)
	@find bisenet_ros launch config -type f -not -path '*/__pycache__/*' -not -name '*.pyc' 2>/dev/null \
		| LC_ALL=C sort > $@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

$(BUILT): $(INSTALLED) $(FILELIST) CMakeLists.txt package.xml $(wildcard msg/*.msg)
	@mkdir -p log
	@# links left behind by files that were removed or renamed
	@if [ -d install/bisenet_ros ]; then find install/bisenet_ros -xtype l -delete; fi
	source $(VENV)/bin/activate && AMENT_PREFIX_PATH=$$VIRTUAL_ENV CMAKE_PREFIX_PATH=$$VIRTUAL_ENV \
		colcon --log-base log build --symlink-install --event-handlers console_cohesion- \
		--cmake-args -DPython3_EXECUTABLE=$$VIRTUAL_ENV/bin/python -DBUILD_TESTING=OFF > log/colcon.txt 2>&1 \
		|| { cat log/colcon.txt; exit 1; }
	touch $@

# `pytest`, not `python -m pytest`: the latter puts the source tree (no msg/) first on sys.path.
test: $(BUILT)
	$(ROSENV) && export BISENET_REQUIRE_ROS=1 && pytest $(PYTEST_ARGS)

demo: $(BUILT)
	$(ROSENV) && bisenet demo

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .

clean:
	rm -rf build install log
