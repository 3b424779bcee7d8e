#!/usr/bin/env bash
# Fails when a C++ file of the project differs from what clang-format makes of it with the
# checked-in .clang-format (STYLE.md G20): formatting is not for review. Fix with
#   clang-format -i $(git ls-files 'include/*.hpp' 'src/*.[ch]pp' 'tests/*.[ch]pp' ...)
# Usage: check_format.sh ROOT [CLANG_FORMAT]
set -euo pipefail
root=$1
tool=${2:-clang-format}
cd "$root"
mapfile -t files < <(find include src tests bench examples -type f \( -name '*.hpp' -o -name '*.cpp' -o -name '*.hpp.in' \) | sort)
bad=0
for f in "${files[@]}"; do
  if ! "$tool" --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "check_format: $f differs from .clang-format"
    bad=$((bad + 1))
  fi
done
if ((bad != 0)); then
  echo "check_format: FAIL: $bad of ${#files[@]} files"
  exit 1
fi
echo "check_format: OK (${#files[@]} files)"
