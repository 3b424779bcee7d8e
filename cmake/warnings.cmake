# Warnings live in an INTERFACE target linked PRIVATE, so consumers never inherit them (G19).
# -Wno-maybe-uninitialized (GCC): GCC 12 at -O2 reports false positives through std::optional
# of handle types (GCC bug 80635).
add_library(asyncflow_warnings INTERFACE)
target_compile_options(asyncflow_warnings INTERFACE
  $<$<CXX_COMPILER_ID:GNU,Clang>:-Wall -Wextra -Wshadow -Wnon-virtual-dtor -Wpedantic>
  $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized>
  $<$<AND:$<CXX_COMPILER_ID:Clang>,$<BOOL:${ASYNCFLOW_WERROR}>>:-Wthread-safety>
  $<$<BOOL:${ASYNCFLOW_WERROR}>:-Werror>)
