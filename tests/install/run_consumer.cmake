# cmake -P script behind the install.find_package_consumer test (see CMakeLists.txt here).
# Inputs (-D): ASYNCFLOW_BUILD_DIR, ASYNCFLOW_SOURCE_DIR, CONFIG, CONSUMER_SOURCE_DIR, WORK_DIR,
# GENERATOR, CXX_COMPILER, CXX_FLAGS, EXE_LINKER_FLAGS.
cmake_minimum_required(VERSION 3.25)

foreach(var ASYNCFLOW_BUILD_DIR ASYNCFLOW_SOURCE_DIR CONSUMER_SOURCE_DIR WORK_DIR GENERATOR
            CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()

set(prefix "${WORK_DIR}/prefix")
set(consumer_build "${WORK_DIR}/build")
file(REMOVE_RECURSE "${WORK_DIR}")  # never let a stale install hide a broken one
file(MAKE_DIRECTORY "${WORK_DIR}")

# Runs one step; on failure prints its output and stops the test.
function(run_step name)
  message(STATUS "[${name}] ${ARGN}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "[${name}] failed (${rc}):\n${out}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

set(config_args)
if(NOT "${CONFIG}" STREQUAL "")
  set(config_args --config "${CONFIG}")
endif()

# (a) Install the current build into the temporary prefix.
run_step(install "${CMAKE_COMMAND}" --install "${ASYNCFLOW_BUILD_DIR}" --prefix "${prefix}"
         ${config_args})

# The installed package must not point back into the source or build tree.
file(GLOB_RECURSE cmake_files "${prefix}/*.cmake")
if(NOT cmake_files)
  message(FATAL_ERROR "no CMake package files were installed under ${prefix}")
endif()
foreach(f IN LISTS cmake_files)
  file(READ "${f}" text)
  foreach(tree "${ASYNCFLOW_SOURCE_DIR}/include" "${ASYNCFLOW_BUILD_DIR}/include")
    string(FIND "${text}" "${tree}" at)
    if(NOT at EQUAL -1)
      message(FATAL_ERROR "installed ${f} refers to ${tree}")
    endif()
  endforeach()
endforeach()

# (b) Configure the consumer against the prefix, with the same compiler and flags.
set(build_type_arg)
if(NOT "${CONFIG}" STREQUAL "")
  set(build_type_arg "-DCMAKE_BUILD_TYPE=${CONFIG}")
endif()
run_step(configure "${CMAKE_COMMAND}"
  -S "${CONSUMER_SOURCE_DIR}" -B "${consumer_build}" -G "${GENERATOR}"
  "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
  "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}"
  "-DCMAKE_EXE_LINKER_FLAGS=${EXE_LINKER_FLAGS}"
  "-DCMAKE_PREFIX_PATH=${prefix}"
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
  ${build_type_arg})

# (c) Build it.
run_step(build "${CMAKE_COMMAND}" --build "${consumer_build}" ${config_args})

# (d) Run it (from the work dir: the engine makes its session dir in the cwd).
set(exe "${consumer_build}/asyncflow_consumer")
if(NOT EXISTS "${exe}" AND NOT "${CONFIG}" STREQUAL "")
  set(exe "${consumer_build}/${CONFIG}/asyncflow_consumer")  # multi-config generators
endif()
execute_process(COMMAND "${exe}" WORKING_DIRECTORY "${WORK_DIR}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
message(STATUS "[run] ${exe}\n${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "[run] consumer failed (${rc})")
endif()
