# Source this to use bisenet_ros from a shell after `make setup`:  source env.bash [jazzy]
# It activates the venv, the colcon install (the package's messages) and the venv's ROS 2
# packages, and puts their libraries on LD_LIBRARY_PATH before Python starts. The argument
# picks the pip ROS 2 distribution that `make ... ROS_DISTRO=<it>` built (default: kilted).
_bisenet_root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_bisenet_suffix=""
if [ -n "${1:-}" ] && [ "$1" != kilted ]; then _bisenet_suffix="-$1"; fi
if [ ! -f "$_bisenet_root/.venv$_bisenet_suffix/bin/activate" ]; then
  echo "error: no $_bisenet_root/.venv$_bisenet_suffix: run make setup${_bisenet_suffix:+ ROS_DISTRO=$1} first" >&2
  unset _bisenet_root _bisenet_suffix
  return 1
fi
source "$_bisenet_root/.venv$_bisenet_suffix/bin/activate"
source "$_bisenet_root/install$_bisenet_suffix/setup.bash"
export AMENT_PREFIX_PATH=${AMENT_PREFIX_PATH:+$AMENT_PREFIX_PATH:}$VIRTUAL_ENV
export LD_LIBRARY_PATH=$_bisenet_root/install$_bisenet_suffix/bisenet_ros/lib:$VIRTUAL_ENV/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
unset _bisenet_root _bisenet_suffix
