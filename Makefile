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
PYTEST_ARGS ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The ROS 2 distribution of the pip environment: Kilted (the default) in .venv, install/ ...;
# `make test ROS_DISTRO=jazzy` builds and tests a second one in .venv-jazzy, install-jazzy/ ...
# from requirements-jazzy.txt; `ROS_DISTRO=jazzy-py310` a third, Jetson's Python without torch. Only a command-line ROS_DISTRO counts: a sourced ROS 2 install
# exports its own, which says nothing about the pip environment wanted here.
DISTRO := $(if $(filter command line,$(origin ROS_DISTRO)),$(ROS_DISTRO),kilted)
SUFFIX := $(if $(filter kilted,$(DISTRO)),,-$(DISTRO))
VENV := .venv$(SUFFIX)
REQUIREMENTS := requirements$(SUFFIX).txt
BUILD := build$(SUFFIX)
INSTALL := install$(SUFFIX)
LOG := log$(SUFFIX)
PY := $(VENV)/bin/python
# The jazzy-py310 leg is Jetson's Python (requirements-jazzy-py310.txt says what it is):
# python3.10 from PATH, else pyenv's.
PY310 = $(shell for p in python3.10 $$(pyenv root 2>/dev/null)/versions/3.10*/bin/python3.10; \
	do "$$p" -c '' 2>/dev/null && { echo "$$p"; break; }; done)
VENV_PYTHON = $(if $(filter jazzy-py310,$(DISTRO)),$(PY310),$(PYTHON))
INSTALLED := $(VENV)/.installed
BUILT := $(INSTALL)/.built
FILELIST := $(BUILD)/.package-files
COLCON_DIRS := --log-base $(LOG)
COLCON_BUILD_DIRS := --build-base $(BUILD) --install-base $(INSTALL)

# Sourced before anything that needs ROS (env.bash says what it sets).
ROSENV := source env.bash $(DISTRO)

# The ROS 2 command-line and launch tools (`ros2 launch`, `ros2 param`, ...) have no wheels;
# ../shared/ros2_tools holds their sources (a test fixture, never copied into the repository).
# A real ROS 2 install has them already and needs none of this.
ROS2_TOOLS ?= ../shared/ros2_tools
ROS2_TOOLS_DONE := $(VENV)/.ros2-tools
ROS2_TOOLS_PACKAGES := rosidl_runtime_py launch/launch launch/launch_xml launch/launch_yaml \
	ros2cli/ros2cli ros2cli/ros2pkg ros2cli/ros2run ros2cli/ros2node ros2cli/ros2service \
	ros2cli/ros2topic ros2cli/ros2param ros2cli/ros2lifecycle ros2cli/ros2interface \
	launch_ros/launch_ros launch_ros/ros2launch
# vision_msgs (LabelInfo for planning stacks) has no wheel either: built from its sources
# beside the others, whenever they are there (a ROS install gets ros-$ROS_DISTRO-vision-msgs).
VISION_MSGS := $(ROS2_TOOLS)/vision_msgs/vision_msgs
VISION_MSGS_DONE := $(INSTALL)/.vision_msgs
RUN_NEEDS := $(BUILT) $(if $(wildcard $(VISION_MSGS)),$(VISION_MSGS_DONE))
# Tests that need `ros2` run when the tools are there (or on a real ROS 2 install).
TEST_NEEDS := $(RUN_NEEDS) $(if $(wildcard $(ROS2_TOOLS)/ros2cli),$(ROS2_TOOLS_DONE))

.PHONY: all setup test test-under-load demo lint clean sysdeps ros2-tools FORCE
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

$(INSTALLED): $(REQUIREMENTS) setup.py | sysdeps
	@test -f $(REQUIREMENTS) || { echo "error: no $(REQUIREMENTS): ROS_DISTRO=$(DISTRO) is not a pip leg (kilted, jazzy, jazzy-py310)"; exit 1; }
	@test -n "$(VENV_PYTHON)" || { echo "error: no Python 3.10 (python3.10 or pyenv's 3.10): the $(DISTRO) leg needs it"; exit 1; }
	test -x $(PY) || $(VENV_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r $(REQUIREMENTS)
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# The list of files colcon links into the install: rewritten only when a file is added,
# removed or renamed, so that only then the install is rebuilt.
$(FILELIST): FORCE
	@mkdir -p $(@D)
	@find bisenet_ros launch config -type f -not -path '*/__pycache__/*' -not -name '*.pyc' 2>/dev/null \
		| LC_ALL=C sort > $@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

$(BUILT): $(INSTALLED) $(FILELIST) CMakeLists.txt $(wildcard cmake/*.cmake) package.xml $(wildcard msg/*.msg)
	@mkdir -p $(LOG)
	@# links left behind by files that were removed or renamed
	@if [ -d $(INSTALL)/bisenet_ros ]; then find $(INSTALL)/bisenet_ros -xtype l -delete; fi
	@# unset: from a shell where another distribution's env.bash is sourced, colcon would chain
	@# that install into this one's setup.bash (and its Python path into the build)
	source $(VENV)/bin/activate && unset COLCON_PREFIX_PATH PYTHONPATH && AMENT_PREFIX_PATH=$$VIRTUAL_ENV CMAKE_PREFIX_PATH=$$VIRTUAL_ENV \
		colcon $(COLCON_DIRS) build $(COLCON_BUILD_DIRS) --base-paths . --symlink-install \
		--event-handlers console_cohesion- \
		--cmake-args -DPython3_EXECUTABLE=$$VIRTUAL_ENV/bin/python -DBUILD_TESTING=OFF > $(LOG)/colcon.txt 2>&1 \
		|| { cat $(LOG)/colcon.txt; exit 1; }
	touch $@

ros2-tools: $(ROS2_TOOLS_DONE)

# Copied first (the sources are read-only); built like composition_interfaces below.
$(VISION_MSGS_DONE): $(INSTALLED)
	rm -rf $(BUILD)/vision_msgs && mkdir -p $(BUILD)/vision_msgs $(LOG) && cp -r $(VISION_MSGS) $(BUILD)/vision_msgs/ && chmod -R u+w $(BUILD)/vision_msgs
	source $(VENV)/bin/activate && unset COLCON_PREFIX_PATH PYTHONPATH && AMENT_PREFIX_PATH=$$VIRTUAL_ENV CMAKE_PREFIX_PATH=$$VIRTUAL_ENV \
		colcon $(COLCON_DIRS) build $(COLCON_BUILD_DIRS) --base-paths $(BUILD)/vision_msgs \
		--event-handlers console_cohesion- --cmake-args -DPython3_EXECUTABLE=$$VIRTUAL_ENV/bin/python \
		-DBUILD_TESTING=OFF -DCMAKE_PROJECT_INCLUDE=$(CURDIR)/cmake/defer_wheel_include_fix.cmake \
		> $(LOG)/colcon-vision-msgs.txt 2>&1 || { cat $(LOG)/colcon-vision-msgs.txt; exit 1; }
	touch $@

# pip writes build/ and *.egg-info into a source folder, and the fixture is read-only: copy first.
# composition_interfaces (imported by launch_ros) is a message package: built with colcon into
# the same install/ as ours, with the wheels' include-dir fix (cmake/).
$(ROS2_TOOLS_DONE): $(BUILT) requirements-ros2-tools.txt
	@test -d $(ROS2_TOOLS)/ros2cli || { echo "error: no ROS 2 tool sources at $(ROS2_TOOLS) (set ROS2_TOOLS=...)"; exit 1; }
	rm -rf $(BUILD)/ros2_tools && mkdir -p $(BUILD)/ros2_tools && cp -r $(ROS2_TOOLS)/. $(BUILD)/ros2_tools/ && chmod -R u+w $(BUILD)/ros2_tools
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-ros2-tools.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
		$(addprefix $(BUILD)/ros2_tools/,$(ROS2_TOOLS_PACKAGES))
	source $(VENV)/bin/activate && unset COLCON_PREFIX_PATH PYTHONPATH && AMENT_PREFIX_PATH=$$VIRTUAL_ENV CMAKE_PREFIX_PATH=$$VIRTUAL_ENV \
		colcon $(COLCON_DIRS) build $(COLCON_BUILD_DIRS) --base-paths $(BUILD)/ros2_tools/rcl_interfaces \
		--event-handlers console_cohesion- --cmake-args -DPython3_EXECUTABLE=$$VIRTUAL_ENV/bin/python \
		-DBUILD_TESTING=OFF -DCMAKE_PROJECT_INCLUDE=$(CURDIR)/cmake/defer_wheel_include_fix.cmake \
		> $(LOG)/colcon-ros2-tools.txt 2>&1 || { cat $(LOG)/colcon-ros2-tools.txt; exit 1; }
	touch $@

# `pytest`, not `python -m pytest`: the latter puts the source tree (no msg/) first on sys.path.
test: $(TEST_NEEDS)
	$(ROSENV) && export BISENET_REQUIRE_ROS=1 && pytest $(PYTEST_ARGS)

# The suite on a busy machine: two processes keep both cores spinning beside it (a loaded CI
# machine), the whole suite runs once, then the timing-sensitive files three times in a row.
# Its tests wait on conditions, never on fixed sleeps or wall-clock bounds, so all must pass.
TIMING_TESTS := test/test_node.py test/test_node_multicam.py test/test_launch.py \
	test/test_node_failures.py test/test_node_signals.py
test-under-load: $(TEST_NEEDS)
	$(ROSENV) && export BISENET_REQUIRE_ROS=1 && load="" \
		&& for core in 1 2; do python3 -c 'while True: pass' & load="$$load $$!"; done \
		&& trap 'kill $$load' EXIT \
		&& pytest $(PYTEST_ARGS) \
		&& for run in 1 2 3; do echo "=== timing-sensitive files, run $$run of 3"; \
			pytest $(PYTEST_ARGS) $(TIMING_TESTS) || exit 1; done

demo: $(RUN_NEEDS)
	$(ROSENV) && bisenet demo

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(BUILD) $(INSTALL) $(LOG)
