#!/usr/bin/env python3
"""Fails when an #include crosses a layer the wrong way (DESIGN.md "Layers"; the picture is in
docs/architecture.md).

    common  <-  backend  <-  core (engine)  ->  telemetry  <-  exporters/<name>
                  ^ vocabulary only: core/task_kind.hpp, core/task_state.hpp

Every file under include/ and src/ belongs to one layer; each of its #includes must name a file
of a layer it may see (the allowed list below), and nothing else. Public headers (include/)
never include private ones (src/). The engine's public headers see telemetry's options only,
not the manager. Third-party headers are allowed only where listed.

Usage: check_layering.py ROOT        check the tree at ROOT (exit 1 on a violation)
       check_layering.py --self-test build a small tree with one bad arrow of each kind and
                                     check that every one of them is found
"""
import os
import re
import sys
import tempfile

# Layer -> the path prefixes (relative to the root) of its files.
LAYERS = {
    "common": ["include/asyncflow/common/", "src/common/"],
    "backend": ["include/asyncflow/backend/", "src/backend/"],
    "core": ["include/asyncflow/core/", "include/asyncflow/detail/", "src/core/"],
    "telemetry": ["include/asyncflow/telemetry/", "src/telemetry/"],
    "exporter_jsonl": ["include/asyncflow/exporters/jsonl/", "src/exporters/jsonl/"],
    "exporter_memory": ["include/asyncflow/exporters/memory/", "src/exporters/memory/"],
    "exporter_otlp": ["include/asyncflow/exporters/otlp/", "src/exporters/otlp/"],
    "exporter_prometheus": ["include/asyncflow/exporters/prometheus/",
                            "src/exporters/prometheus/"],
    "exporter_ostream": ["include/asyncflow/exporters/ostream/", "src/exporters/ostream/"],
    "exporter_env": ["include/asyncflow/exporters/env/", "src/exporters/env/"],
    "umbrella": ["include/asyncflow/asyncflow.hpp", "include/asyncflow/version.hpp"],
}

# What each layer may include, as (layer, which files): "all" of it, "public" (its include/
# headers), or a list of paths.
VOCABULARY = ["include/asyncflow/core/task_kind.hpp", "include/asyncflow/core/task_state.hpp"]
ALLOWED = {
    "common": [("common", "all")],
    "backend": [("common", "all"), ("backend", "all"), ("core", VOCABULARY)],
    "core": [("common", "all"), ("core", "all"), ("backend", "public"), ("telemetry", "public"),
             ("umbrella", ["include/asyncflow/version.hpp"])],
    "telemetry": [("common", "all"), ("telemetry", "all"),
                  ("umbrella", ["include/asyncflow/version.hpp"])],
    "exporter_jsonl": [("common", "all"), ("telemetry", "public"), ("exporter_jsonl", "all")],
    "exporter_memory": [("common", "all"), ("telemetry", "public"), ("exporter_memory", "all")],
    "exporter_otlp": [("common", "all"), ("telemetry", "public"), ("exporter_otlp", "all"),
                      ("umbrella", ["include/asyncflow/version.hpp"])],
    "exporter_prometheus": [("common", "all"), ("telemetry", "public"),
                            ("exporter_prometheus", "all")],
    "exporter_ostream": [("common", "all"), ("telemetry", "public"), ("exporter_ostream", "all")],
    # Builds the exporters the OTel variables name: it sees their public headers.
    "exporter_env": [("common", "all"), ("telemetry", "public"), ("exporter_env", "all"),
                     ("exporter_otlp", "public"), ("exporter_prometheus", "public"),
                     ("exporter_ostream", "public")],
    "umbrella": [(layer, "public") for layer in LAYERS],
}

# The engine's public headers see telemetry's options (and the event model they use), not the
# manager: a program that never starts telemetry does not compile it.
CORE_PUBLIC_TELEMETRY = ["include/asyncflow/telemetry/options.hpp",
                         "include/asyncflow/telemetry/event.hpp"]

# Third-party headers, and the files that may include them.
THIRD_PARTY = {
    "nlohmann/": ["include/asyncflow/core/registered_function.hpp",
                  "src/backend/function_workers.cpp", "src/exporters/jsonl/",
                  "src/exporters/otlp/otlp_encoder.cpp"],
    # The OTLP exporter's transport and encoding stay in the files made for them.
    "httplib.h": ["src/exporters/otlp/otlp_http_sender.cpp",
                  "src/exporters/prometheus/prometheus_exporter.cpp"],
    "google/protobuf/": ["src/exporters/otlp/otlp_encoder.cpp"],
}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def layer_of(path):
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if path == prefix or path.startswith(prefix):
                return layer
    return None


def is_public(path):
    return path.startswith("include/")


def resolve(root, including, kind, target):
    """The repo-relative path an include names, or None for a system/third-party header."""
    if target.startswith("asyncflow/"):
        return "include/" + target
    if kind == '"':
        local = os.path.normpath(os.path.join(os.path.dirname(including), target))
        if os.path.exists(os.path.join(root, local)):
            return local
        if os.path.exists(os.path.join(root, "src", target)):  # "common/hex.hpp" from src/
            return "src/" + target
        return local  # a missing file: reported as outside every layer
    return None


def allowed(from_layer, from_path, to_path):
    to_layer = layer_of(to_path)
    if to_layer is None:
        return False
    if is_public(from_path) and not is_public(to_path):
        return False  # a public header must not need a private one
    if (from_layer == "core" and is_public(from_path) and to_layer == "telemetry"
            and to_path not in CORE_PUBLIC_TELEMETRY):
        return False
    for layer, which in ALLOWED[from_layer]:
        if layer != to_layer:
            continue
        if which == "all":
            return True
        if which == "public" and is_public(to_path):
            return True
        if isinstance(which, list) and to_path in which:
            return True
    return False


def third_party_allowed(from_path, target):
    for prefix, places in THIRD_PARTY.items():
        if target.startswith(prefix):
            return any(from_path == p or from_path.startswith(p) for p in places)
    return True  # the standard library and the OS


def check(root):
    problems = []
    files = 0
    for top in ("include", "src"):
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            for name in sorted(names):
                if not name.endswith((".hpp", ".cpp", ".hpp.in")):
                    continue
                path = os.path.relpath(os.path.join(dirpath, name), root)
                files += 1
                from_layer = layer_of(path)
                if from_layer is None:
                    problems.append(f"{path}: in no layer (add its folder to LAYERS)")
                    continue
                with open(os.path.join(root, path), encoding="utf-8") as f:
                    for number, text in enumerate(f, 1):
                        m = INCLUDE.match(text)
                        if not m:
                            continue
                        kind, target = m.group(1), m.group(2)
                        to_path = resolve(root, path, kind, target)
                        if to_path is None:
                            if not third_party_allowed(path, target):
                                problems.append(f"{path}:{number}: <{target}> is not allowed here")
                            continue
                        if not allowed(from_layer, path, to_path):
                            problems.append(f"{path}:{number}: {from_layer} -> "
                                            f"{layer_of(to_path) or 'no layer'} ({target})")
    return files, problems


def self_test():
    bad = {
        "src/telemetry/a.cpp": '#include "asyncflow/core/engine.hpp"\n',         # up a layer
        "src/backend/b.cpp": '#include "asyncflow/core/errors.hpp"\n',           # not vocabulary
        "src/core/c.cpp": '#include "../telemetry/private.hpp"\n',               # private header
        "include/asyncflow/core/engine.hpp": '#include "asyncflow/telemetry/manager.hpp"\n',
        "include/asyncflow/telemetry/d.hpp": '#include "common/hex.hpp"\n',      # public->private
        "src/exporters/jsonl/e.cpp": '#include "asyncflow/exporters/memory/m.hpp"\n',
        "src/telemetry/f.cpp": "#include <nlohmann/json.hpp>\n",                 # third party
    }
    good = {
        "src/telemetry/private.hpp": "",
        "src/common/hex.hpp": "",
        "include/asyncflow/telemetry/manager.hpp": "",
        "include/asyncflow/core/errors.hpp": '#include "asyncflow/common/error.hpp"\n',
        "include/asyncflow/common/error.hpp": "#include <stdexcept>\n",
        "include/asyncflow/exporters/memory/m.hpp": '#include "asyncflow/telemetry/manager.hpp"\n',
        "src/backend/ok.cpp": '#include "asyncflow/core/task_kind.hpp"\n#include "common/hex.hpp"\n',
        "include/asyncflow/core/task_kind.hpp": "",
    }
    with tempfile.TemporaryDirectory() as root:
        for path, text in {**good, **bad}.items():
            os.makedirs(os.path.join(root, os.path.dirname(path)), exist_ok=True)
            with open(os.path.join(root, path), "w", encoding="utf-8") as f:
                f.write(text)
        _, problems = check(root)
    found = {p.split(":")[0] for p in problems}
    missed = sorted(set(bad) - found)
    wrong = sorted(found - set(bad))
    if missed or wrong:
        print(f"check_layering self-test: FAIL: missed {missed}, flagged good files {wrong}")
        for p in problems:
            print("  " + p)
        return 1
    print(f"check_layering self-test: OK ({len(problems)} bad arrows found, as planted)")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    files, problems = check(sys.argv[1])
    for p in problems:
        print("check_layering: " + p)
    if problems:
        print(f"check_layering: FAIL: {len(problems)} arrow(s) outside the allowed list")
        return 1
    print(f"check_layering: OK ({files} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
