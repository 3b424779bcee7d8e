#!/usr/bin/python3
"""Checks that an asyncflow JSONL checkpoint reads in pandas the way the reference's users and
plotting scripts read RHAPSODY checkpoints (docs/checkpoint-format.md; reference
rhapsody-telemetry.md section 3.4, asyncflow-engine.md section 5.5).

Usage: check_checkpoint_pandas.py FILE.jsonl|DIR [--expect-workflows N] [--expect-resources]

Loads the file with pandas.read_json(path, lines=True), splits it on `section`, and checks the
columns and relations the plotting scripts rely on. Prints a short summary; exits 1 with the
list of failures, 2 on bad usage, 77 when pandas is not installed (ctest SKIP_RETURN_CODE).
Run it with Debian's /usr/bin/python3, which has python3-pandas.
"""

import argparse
import glob
import os
import json
import math
import re
import sys

try:
    import pandas as pd
except ImportError:
    print("check_checkpoint_pandas: pandas is not installed (apt-get install python3-pandas); "
          "skipped")
    sys.exit(77)

EVENT_COLUMNS = ["event_id", "event_type", "event_time", "emit_time", "session_id", "backend",
                 "task_id", "node_id", "attributes", "trace_id", "span_id", "name", "section"]
BASE_KEYS = EVENT_COLUMNS[:9]
TAIL_KEYS = EVENT_COLUMNS[9:]
SPAN_COLUMNS = ["name", "span_id", "trace_id", "parent_span_id", "start_ns", "end_ns",
                "start_time_s", "end_time_s", "duration_ms", "status_code", "status_description",
                "attributes"]
LIFECYCLE = ["TaskCreated", "asyncflow.TaskResolved", "TaskQueued", "TaskSubmitted",
             "TaskStarted", "TaskCompleted", "TaskFailed", "TaskCanceled"]
TERMINAL = {"Completed", "Failed", "Canceled"}
HEX_ID = re.compile(r"^0x[0-9a-f]+$")
WORKFLOW_KEY = "asyncflow.workflow_id"


class Checks:
    def __init__(self):
        self.failures = []

    def require(self, ok, message):
        if not ok:
            self.failures.append(message)
        return ok


def seconds(column):
    """Epoch seconds as floats. read_json turns columns named *_time into datetime64 (its
    convert_dates default); the plotting scripts' json.loads keeps floats."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return column.astype("int64") / 1e9
    return column.astype(float)


def is_null(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


def phase(event_type):
    """The dashboards' phase name: the event type without its "Task" prefix."""
    name = event_type.split(".")[-1]
    return name[len("Task"):] if name.startswith("Task") else name


def check_key_order(path, checks):
    """Key order per line, as json.loads (the plotting scripts' reader) sees it."""
    with open(path, encoding="utf-8") as f:
        for number, text in enumerate(f, 1):
            if not text.strip():
                continue
            line = json.loads(text)
            keys = list(line)
            if line.get("section", "event") == "event":
                checks.require(keys[:9] == BASE_KEYS and keys[-4:] == TAIL_KEYS,
                               f"line {number}: event keys out of order: {keys}")
            elif line["section"] == "span":
                checks.require(keys == SPAN_COLUMNS + ["section"],
                               f"line {number}: span keys out of order: {keys}")
            elif line["section"] == "metric":
                checks.require(keys[0] == "checkpoint_time" and keys[-1] == "section",
                               f"line {number}: metric keys out of order: {keys}")


def check_events(events, checks, expect_workflows, expect_resources=False):
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if not checks.require(not missing, f"event columns missing: {missing}"):
        return {}
    checks.require(len(events) > 0, "no events (the plotting scripts raise)")
    for column in ["event_id", "event_type", "event_time", "emit_time", "session_id", "name"]:
        checks.require(events[column].notna().all(), f"events with a null {column}")
    checks.require((events["name"] == events["event_type"]).all(), "name differs from event_type")
    checks.require(events["attributes"].map(lambda a: isinstance(a, dict)).all(),
                   "attributes that are not dicts")
    for column in ["trace_id", "span_id"]:
        bad = events[column].map(lambda v: not is_null(v) and not HEX_ID.match(str(v)))
        checks.require(not bad.any(), f"{column} values that are not 0x… hex: "
                       f"{events.loc[bad, column].head(3).tolist()}")

    event_time = seconds(events["event_time"])
    emit_time = seconds(events["emit_time"])
    started = events["event_type"] == "SessionStarted"
    t0 = event_time[started].min() if started.any() else event_time.min()
    checks.require((emit_time - event_time >= -1e-3).all(), "emit_time before event_time")

    # Per-task timelines {phase: event_time - t0}, as both dashboards build them.
    lifecycle = events[events["event_type"].isin(LIFECYCLE)]
    checks.require(lifecycle["task_id"].notna().all(), "lifecycle events without a task_id")
    timelines = {}
    for task_id, etype, t in zip(lifecycle["task_id"], lifecycle["event_type"],
                                 event_time[lifecycle.index]):
        timelines.setdefault(task_id, {})[phase(etype)] = t - t0
    for task_id, timeline in timelines.items():
        checks.require(min(timeline.values()) >= -1e-6, f"{task_id}: events before t0")
        ended = TERMINAL & timeline.keys()
        if "Started" in timeline and ended:
            end = timeline[ended.pop()]
            checks.require(timeline["Started"] <= end, f"{task_id}: terminal before Started")
        if "Created" in timeline and "Started" in timeline:
            checks.require(timeline["Created"] <= timeline["Started"],
                           f"{task_id}: Started before Created")

    workflows = {a.get(WORKFLOW_KEY) for a in lifecycle["attributes"]} - {None}
    if expect_workflows is not None:
        checks.require(len(workflows) >= expect_workflows,
                       f"{len(workflows)} distinct {WORKFLOW_KEY} values in task attributes, "
                       f"expected at least {expect_workflows}")

    resources = events[events["event_type"] == "ResourceUpdate"]
    if len(resources):
        for column in ["gpu_id", "resource_scope", "cpu_percent", "memory_percent",
                       "gpu_percent"]:
            checks.require(column in events.columns, f"ResourceUpdate column {column} missing")
        if "gpu_id" in events.columns and "resource_scope" in events.columns:
            # The scripts treat gpu_id None as per_node; resource_scope must agree.
            per_node = resources["gpu_id"].isna()
            checks.require((resources.loc[per_node, "resource_scope"] == "per_node").all() and
                           (resources.loc[~per_node, "resource_scope"] == "per_gpu").all(),
                           "resource_scope disagrees with gpu_id")
            checks.require(resources["node_id"].notna().all(), "ResourceUpdate without node_id")
    if expect_resources:
        check_node_resources(resources, checks)
    return {"tasks": len(timelines), "workflows": len(workflows), "resources": len(resources),
            "types": events["event_type"].value_counts().to_dict()}


def check_node_resources(resources, checks):
    """The node poller ran: per_node lines whose values are possible on a real node."""
    if not checks.require("resource_scope" in resources.columns, "no ResourceUpdate lines"):
        return
    nodes = resources[resources["resource_scope"] == "per_node"]
    if not checks.require(len(nodes) > 0, "no per_node ResourceUpdate lines"):
        return
    checks.require(nodes["cpu_percent"].between(0, 100).all(), "cpu_percent outside [0, 100]")
    checks.require((nodes["memory_percent"] > 0).all() and (nodes["memory_percent"] <= 100).all(),
                   "memory_percent outside (0, 100]")
    for column in ["disk_read_bytes", "disk_write_bytes", "net_sent_bytes", "net_recv_bytes"]:
        if checks.require(column in nodes.columns, f"ResourceUpdate column {column} missing"):
            checks.require((nodes[column] >= 0).all(), f"negative {column}")


def check_metrics(metrics, checks, expect_resources=False):
    if not checks.require(len(metrics) > 0, "no metric lines"):
        return {}
    checks.require("checkpoint_time" in metrics.columns and
                   metrics["checkpoint_time"].notna().all(), "metric lines without checkpoint_time")
    last = metrics.iloc[-1]  # the scripts use only the last metric line
    tasks = {k: last[k] for k in metrics.columns if k.startswith("tasks_") and not is_null(last[k])}
    checks.require(len(tasks) > 0, "the last metric line has no tasks_* keys")
    if expect_resources:
        for gauge in ["node_cpu_utilization", "node_memory_utilization"]:
            checks.require(gauge in metrics.columns and not is_null(last[gauge]),
                           f"the last metric line has no {gauge}")
    return {"lines": len(metrics), "last": tasks}


def check_spans(spans, checks):
    missing = [c for c in SPAN_COLUMNS if c not in spans.columns]
    if not checks.require(not missing, f"span columns missing: {missing}"):
        return {}
    lines = len(spans)
    spans = spans.drop_duplicates("span_id", keep="last")  # snapshots repeat finished spans
    checks.require(spans["span_id"].map(lambda v: bool(HEX_ID.match(str(v)))).all(),
                   "span_id values that are not 0x… hex")
    checks.require(spans["status_code"].isin(["UNSET", "OK", "ERROR"]).all(), "bad status_code")
    checks.require(spans["attributes"].map(lambda a: isinstance(a, dict)).all(),
                   "span attributes that are not dicts")
    # start_ns/end_ns share columns with event rows (NaN there), so pandas holds them as
    # float64 (~256 ns resolution at today's epoch): compare durations loosely.
    derived = (spans["end_ns"] - spans["start_ns"]) / 1e6
    checks.require(((derived - spans["duration_ms"]).abs() < 0.01).all(),
                   "duration_ms differs from end_ns - start_ns")
    checks.require((spans["end_ns"] >= spans["start_ns"]).all(), "spans ending before they start")
    session = spans[spans["name"] == "session"]
    if checks.require(len(session) == 1, f"{len(session)} session spans, expected 1"):
        trace = session["trace_id"].iloc[0]
        checks.require(session["parent_span_id"].isna().all(), "the session span has a parent")
        tasks = spans[spans["name"] == "task"]
        checks.require((tasks["trace_id"] == trace).all(),
                       "task spans outside the session's trace")
        checks.require(tasks["parent_span_id"].notna().all(), "task spans without a parent")
    return {"lines": lines, "unique": len(spans),
            "names": spans["name"].value_counts().to_dict()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="a .jsonl checkpoint, or a directory: its newest *.jsonl "
                        "(as the reference's plotting scripts pick one)")
    parser.add_argument("--expect-workflows", type=int, metavar="N",
                        help=f"require at least N distinct {WORKFLOW_KEY} values")
    parser.add_argument("--expect-resources", action="store_true",
                        help="require per_node ResourceUpdate lines with possible values and "
                        "the node_* gauges on the last metric line")
    args = parser.parse_args()
    if os.path.isdir(args.path):
        files = glob.glob(os.path.join(args.path, "**", "*.jsonl"), recursive=True)
        if not files:
            print(f"check_checkpoint_pandas: FAIL: no *.jsonl under {args.path}", file=sys.stderr)
            return 1
        args.path = max(files, key=os.path.getmtime)

    checks = Checks()
    try:
        check_key_order(args.path, checks)
        df = pd.read_json(args.path, lines=True)
    except (OSError, ValueError) as e:
        print(f"check_checkpoint_pandas: FAIL: cannot read {args.path}: {e}", file=sys.stderr)
        return 1
    if "section" not in df.columns:
        df["section"] = "event"
    section = df["section"].fillna("event")  # lines without a section are events
    events = df[section == "event"]
    summary = {
        "events": check_events(events, checks, args.expect_workflows, args.expect_resources),
        "metrics": check_metrics(df[section == "metric"], checks, args.expect_resources),
        "spans": check_spans(df[section == "span"], checks),
    }
    unknown = sorted(set(section) - {"event", "metric", "span"})
    checks.require(not unknown, f"unknown sections: {unknown}")

    ev, me, sp = summary["events"], summary["metrics"], summary["spans"]
    print(f"{args.path}: {len(df)} lines")
    print(f"  events:  {len(events)} ({ev.get('tasks', 0)} tasks, {ev.get('workflows', 0)} "
          f"workflows, {ev.get('resources', 0)} resource updates) {ev.get('types', {})}")
    print(f"  metrics: {me.get('lines', 0)} lines, last {me.get('last', {})}")
    print(f"  spans:   {sp.get('lines', 0)} lines, {sp.get('unique', 0)} unique "
          f"{sp.get('names', {})}")
    if checks.failures:
        for failure in checks.failures:
            print(f"check_checkpoint_pandas: FAIL: {failure}", file=sys.stderr)
        return 1
    print("check_checkpoint_pandas: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
