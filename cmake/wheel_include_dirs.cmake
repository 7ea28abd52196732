# ROS 2 from PyPI wheels: rosidl_generator_py exports the Python and NumPy include dirs of
# the interpreter that built a message package as plain paths. Two consequences:
# 1. The wheels' *__rosidl_generator_py targets name dirs of the machine that built them
#    (/opt/python/cp311-cp311/...), and CMake refuses to generate ("Imported target ...
#    includes non-existent path"): point each such missing dir at this interpreter's.
# 2. The package's own <name>__rosidl_generator_py would export this interpreter's dirs, which CMake
#    refuses outright when the venv lies inside the source tree (.venv/: "prefixed in the
#    source directory"), and which would break the next machine like 1. Keep them build-only.
# Both are no-ops on a regular ROS install.
function(fix_wheel_python_include_dirs)
  find_package(Python3 REQUIRED COMPONENTS Interpreter Development.Module NumPy)
  set(_python_dirs ${Python3_INCLUDE_DIRS} ${Python3_NumPy_INCLUDE_DIRS})

  get_directory_property(_targets IMPORTED_TARGETS)
  foreach(_target IN LISTS _targets)
    get_target_property(_dirs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT _dirs)
      continue()
    endif()
    set(_fixed "")
    set(_changed FALSE)
    foreach(_dir IN LISTS _dirs)
      if(_dir MATCHES "^\\$<" OR EXISTS "${_dir}")
        list(APPEND _fixed "${_dir}")
      elseif(_dir MATCHES "/include/python[0-9.]+$")
        list(APPEND _fixed ${Python3_INCLUDE_DIRS})
        set(_changed TRUE)
      elseif(_dir MATCHES "/numpy/(_core|core)/include$")
        list(APPEND _fixed ${Python3_NumPy_INCLUDE_DIRS})
        set(_changed TRUE)
      else()
        list(APPEND _fixed "${_dir}")
      endif()
    endforeach()
    if(_changed)
      list(REMOVE_DUPLICATES _fixed)
      set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_fixed}")
      message(STATUS "${PROJECT_NAME}: include dirs of ${_target} -> ${_fixed}")
    endif()
  endforeach()

  set(_own "${PROJECT_NAME}__rosidl_generator_py")
  get_target_property(_dirs ${_own} INTERFACE_INCLUDE_DIRECTORIES)
  set(_fixed "")
  foreach(_dir IN LISTS _dirs)
    if(_dir IN_LIST _python_dirs)
      list(APPEND _fixed "$<BUILD_INTERFACE:${_dir}>")
    else()
      list(APPEND _fixed "${_dir}")
    endif()
  endforeach()
  set_target_properties(${_own} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_fixed}")
endfunction()
