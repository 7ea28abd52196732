# For building another message package (composition_interfaces for `make ros2-tools`) against
# the PyPI wheels: passed as -DCMAKE_PROJECT_INCLUDE, it runs right after that package's
# project() and defers the include-dir fix to the end of its CMakeLists, when its targets exist.
include("${CMAKE_CURRENT_LIST_DIR}/wheel_include_dirs.cmake")
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL fix_wheel_python_include_dirs)
