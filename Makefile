# One-command set-up: `make demo` runs the main job, `make test` runs the tests.
# Both create .venv, install everything pinned and build the ROS messages first;
# re-running is fast because each step is a stamp file that only rebuilds when its inputs change.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
BUILT := install/.built
# Sourced before anything that needs ROS: the colcon install (messages) and the venv.
ROSENV := source $(VENV)/bin/activate && source install/setup.bash && export LD_LIBRARY_PATH=$$PWD/install/bisenet_ros/lib:$$VIRTUAL_ENV/lib:$${LD_LIBRARY_PATH:-}

.PHONY: all setup test demo lint clean sysdeps
all: setup
setup: $(BUILT)

# System packages a bare Debian 12 lacks: a C++ toolchain and CMake (the message build), venv support.
sysdeps:
	@if ! command -v g++ >/dev/null || ! command -v cmake >/dev/null || ! $(PYTHON) -c 'import venv, ensurepip' 2>/dev/null; then \
		echo "installing system packages (g++ cmake python3-venv python3-dev)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends g++ cmake make python3-venv python3-dev; \
	fi

$(INSTALLED): requirements.txt setup.py | sysdeps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

$(BUILT): $(INSTALLED) CMakeLists.txt package.xml $(wildcard msg/*.msg) $(shell find bisenet_ros launch config -type f -not -name '*.pyc' 2>/dev/null)
	source $(VENV)/bin/activate && AMENT_PREFIX_PATH=$$VIRTUAL_ENV CMAKE_PREFIX_PATH=$$VIRTUAL_ENV \
		colcon --log-base log build --symlink-install --event-handlers console_cohesion- \
		--cmake-args -DPython3_EXECUTABLE=$$VIRTUAL_ENV/bin/python -DBUILD_TESTING=OFF > log/colcon.txt 2>&1 \
		|| { cat log/colcon.txt; exit 1; }
	touch $@

test: $(BUILT)
	$(ROSENV) && python -m pytest test

demo: $(BUILT)
	$(ROSENV) && bisenet demo

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .

clean:
	rm -rf build install log
