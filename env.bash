# Source this to use bisenet_ros from a shell after `make setup`:  source env.bash
# It activates the venv, the colcon install (the package's messages) and the venv's ROS 2
# packages, and puts their libraries on LD_LIBRARY_PATH before Python starts.
_bisenet_root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$_bisenet_root/.venv/bin/activate"
source "$_bisenet_root/install/setup.bash"
export AMENT_PREFIX_PATH=${AMENT_PREFIX_PATH:+$AMENT_PREFIX_PATH:}$VIRTUAL_ENV
export LD_LIBRARY_PATH=$_bisenet_root/install/bisenet_ros/lib:$VIRTUAL_ENV/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
unset _bisenet_root
