# Warnings live in an INTERFACE target linked PRIVATE, so consumers never inherit them (G19).
add_library(asyncflow_warnings INTERFACE)
target_compile_options(asyncflow_warnings INTERFACE
  $<$<CXX_COMPILER_ID:GNU,Clang>:-Wall -Wextra -Wshadow -Wnon-virtual-dtor -Wpedantic>
  $<$<AND:$<CXX_COMPILER_ID:Clang>,$<BOOL:${ASYNCFLOW_WERROR}>>:-Wthread-safety>
  $<$<BOOL:${ASYNCFLOW_WERROR}>:-Werror>)
