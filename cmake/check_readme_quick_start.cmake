# cmake -P script: fails unless README.md's first ```cpp block equals EXAMPLE (from its first
# #include on), so the README's quick start is always code that compiles and runs (G20).
# Inputs (-D): README, EXAMPLE.
foreach(var README EXAMPLE)
  if(NOT EXISTS "${${var}}")
    message(FATAL_ERROR "check_readme_quick_start: -D${var}=<existing file> is required")
  endif()
endforeach()

file(READ "${README}" readme)
string(FIND "${readme}" "\n```cpp\n" begin)
if(begin EQUAL -1)
  message(FATAL_ERROR "${README} has no ```cpp block")
endif()
math(EXPR begin "${begin} + 8")
string(SUBSTRING "${readme}" ${begin} -1 rest)
string(FIND "${rest}" "\n```" end)
math(EXPR end "${end} + 1")  # keep the last newline
string(SUBSTRING "${rest}" 0 ${end} sample)

file(READ "${EXAMPLE}" example)
foreach(text sample example)
  string(FIND "${${text}}" "#include" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "no #include in the ${text}")
  endif()
  string(SUBSTRING "${${text}}" ${at} -1 ${text})
endforeach()

if(NOT sample STREQUAL example)
  file(WRITE "${CMAKE_CURRENT_BINARY_DIR}/readme_quick_start.cpp" "${sample}")
  message(FATAL_ERROR "README.md's quick start differs from ${EXAMPLE} (from the first "
          "#include on); the README's copy is in ${CMAKE_CURRENT_BINARY_DIR}/"
          "readme_quick_start.cpp. Update one to match the other.")
endif()
message(STATUS "README.md quick start matches ${EXAMPLE}")
