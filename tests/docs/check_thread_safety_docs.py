#!/usr/bin/env python3
"""Fails when a public class (include/asyncflow/, outside detail/) does not say how it may be
used from several threads (STYLE.md G13): its comment must contain "thread-safe",
"Thread-safety", or "Not thread-safe". Plain option and value structs are exempt when their
comment or the class says it is a value ("a value").

Usage: check_thread_safety_docs.py ROOT
"""
import os
import re
import sys

CLASS = re.compile(r'^(?:template <[^>]*>\s*)?class\s+(?:ASYNCFLOW_\w+(?:\("[^"]*"\))?\s+)?(\w+)\b[^;]*$')
SAYS = re.compile(r'thread-safe|Thread-safety|Thread safety|thread safety', re.I)


def comment_before(lines, index):
    """The comment lines (// or ///) right above line `index`, skipping template lines."""
    out = []
    i = index - 1
    while i >= 0 and lines[i].lstrip().startswith("template"):
        i -= 1
    while i >= 0 and lines[i].lstrip().startswith("//"):
        out.append(lines[i])
        i -= 1
    return "\n".join(reversed(out))


def main():
    root = sys.argv[1]
    missing = []
    count = 0
    for dirpath, _, names in os.walk(os.path.join(root, "include", "asyncflow")):
        if "/detail" in dirpath:
            continue
        for name in sorted(names):
            if not name.endswith(".hpp"):
                continue
            path = os.path.join(dirpath, name)
            lines = open(path, encoding="utf-8").read().split("\n")
            for i, line in enumerate(lines):
                m = CLASS.match(line)
                if not m or line.rstrip().endswith(";"):
                    continue
                count += 1
                if not SAYS.search(comment_before(lines, i)):
                    missing.append(f"{os.path.relpath(path, root)}:{i + 1}: class {m.group(1)}")
    for m in missing:
        print("check_thread_safety_docs: no thread-safety statement: " + m)
    if missing:
        print(f"check_thread_safety_docs: FAIL: {len(missing)} of {count} public classes")
        return 1
    print(f"check_thread_safety_docs: OK ({count} public classes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
