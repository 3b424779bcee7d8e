#!/usr/bin/python3
"""An OTLP/HTTP receiver in Python (Debian's python3-protobuf), for the tests: a decoder that
shares no code with ours. It answers the first N posts with 503 (to make the client retry),
then 200, and writes one JSON line per request it accepted to --out: the path, the headers that
matter, and the request decoded into plain data (ids as lowercase hex).

Protobuf bodies are parsed with the message classes protoc --python_out generated from our
.proto files (--proto-py); OTLP/JSON bodies are parsed strictly by json_format into the same
classes after the hex ids are turned into base64 (the OTLP JSON mapping writes ids as hex,
protobuf's JSON mapping reads bytes as base64), so a field name that is not the
specification's fails the parse.

Usage: otlp_python_receiver.py --proto-py DIR --out FILE --port-file FILE [--fail-first N]
"""

import argparse
import base64
import gzip
import http.server
import json
import sys
import threading


def hexid(b):
    return b.hex()


def value_of(any_value):
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value_of(v) for v in any_value.array_value.values]
    return getattr(any_value, kind)


def attributes(kvs):
    return {kv.key: value_of(kv.value) for kv in kvs}


def decode_traces(req):
    out = []
    for rs in req.resource_spans:
        resource = attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append({
                    "resource": resource,
                    "scope": ss.scope.name,
                    "name": s.name,
                    "trace_id": hexid(s.trace_id),
                    "span_id": hexid(s.span_id),
                    "parent_span_id": hexid(s.parent_span_id),
                    "kind": s.kind,
                    "start": s.start_time_unix_nano,
                    "end": s.end_time_unix_nano,
                    "attributes": attributes(s.attributes),
                    "events": [{"name": e.name, "time": e.time_unix_nano,
                                "attributes": attributes(e.attributes)} for e in s.events],
                    "status": {"code": s.status.code, "message": s.status.message},
                })
    return {"spans": out}


def number(p):
    return p.as_double if p.WhichOneof("value") == "as_double" else p.as_int


def decode_metrics(req):
    out = []
    for rm in req.resource_metrics:
        resource = attributes(rm.resource.attributes)
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                entry = {"resource": resource, "name": m.name, "kind": kind, "points": []}
                if kind == "sum":
                    entry["monotonic"] = m.sum.is_monotonic
                    entry["temporality"] = m.sum.aggregation_temporality
                    points = m.sum.data_points
                elif kind == "gauge":
                    points = m.gauge.data_points
                else:
                    entry["temporality"] = m.histogram.aggregation_temporality
                    points = m.histogram.data_points
                for p in points:
                    point = {"attributes": attributes(p.attributes),
                             "start": p.start_time_unix_nano, "time": p.time_unix_nano}
                    if kind == "histogram":
                        point.update(count=p.count, sum=p.sum,
                                     bounds=list(p.explicit_bounds),
                                     bucket_counts=list(p.bucket_counts))
                    else:
                        point["value"] = number(p)
                    entry["points"].append(point)
                out.append(entry)
    return {"metrics": out}


def hex_ids_to_base64(node):
    """OTLP/JSON ids are hex; protobuf's JSON mapping wants base64 for bytes."""
    if isinstance(node, dict):
        for key, v in node.items():
            if key in ("traceId", "spanId", "parentSpanId") and isinstance(v, str):
                node[key] = base64.b64encode(bytes.fromhex(v)).decode() if v else ""
            else:
                hex_ids_to_base64(v)
    elif isinstance(node, list):
        for v in node:
            hex_ids_to_base64(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proto-py", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--fail-first", type=int, default=0)
    args = ap.parse_args()
    sys.path.insert(0, args.proto_py)
    import otlp_metrics_pb2  # noqa: E402 (generated at build time)
    import otlp_trace_pb2  # noqa: E402
    from google.protobuf import json_format  # noqa: E402

    lock = threading.Lock()
    state = {"failures_left": args.fail_first, "refused": 0}
    out = open(args.out, "a", encoding="utf-8")

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):  # quiet
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                if state["failures_left"] > 0:
                    state["failures_left"] -= 1
                    state["refused"] += 1
                    self.send_response(503)
                    self.send_header("Retry-After", "0")
                    self.end_headers()
                    return
            encoding = self.headers.get("Content-Encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            content_type = self.headers.get("Content-Type", "")
            if self.path == "/v1/traces":
                req = otlp_trace_pb2.ExportTraceServiceRequest()
            elif self.path == "/v1/metrics":
                req = otlp_metrics_pb2.ExportMetricsServiceRequest()
            else:
                self.send_response(404)
                self.end_headers()
                return
            try:
                if content_type == "application/json":
                    doc = json.loads(body)
                    hex_ids_to_base64(doc)
                    json_format.ParseDict(doc, req)  # strict: unknown fields fail
                else:
                    req.ParseFromString(body)
            except Exception as e:  # a body we cannot read: the test sees it
                record = {"path": self.path, "error": repr(e)}
                self.send_response(400)
                self.end_headers()
            else:
                decoded = decode_traces(req) if self.path == "/v1/traces" else decode_metrics(req)
                record = {"path": self.path, "content_type": content_type,
                          "content_encoding": encoding,
                          "authorization": self.headers.get("authorization", ""),
                          "refused_before": state["refused"], **decoded}
                self.send_response(200)
                self.send_header("Content-Type", content_type or "application/x-protobuf")
                self.end_headers()
            with lock:
                out.write(json.dumps(record) + "\n")
                out.flush()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
