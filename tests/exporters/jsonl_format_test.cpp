// JSONL line formatting: every expected string below was produced by Python's json.dumps
// (/usr/bin/python3, 3.11) on the equivalent dict, so our lines are byte-identical to the
// reference's (rhapsody-telemetry.md §3.2).
#include <gtest/gtest.h>

#include <asyncflow/exporters/jsonl/jsonl_format.hpp>
#include <asyncflow/telemetry/event.hpp>
#include <charconv>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace af = asyncflow;
namespace jsonl = asyncflow::jsonl;

namespace {

std::string dbl(double v) {
  std::string out;
  jsonl::append_double(out, v);
  return out;
}

std::string str(std::string_view v) {
  std::string out;
  jsonl::append_string(out, v);
  return out;
}

const af::TraceId kTrace{0x0af1b2c3d4e5f607ull, 0x0011223344556677ull};

af::MetricData metric(std::string name, af::InstrumentKind kind,
                      std::vector<af::MetricPoint> points = {}) {
  af::MetricData m;
  m.name = std::move(name);
  m.kind = kind;
  m.points = std::move(points);
  return m;
}

}  // namespace

TEST(Jsonl, DoublesMatchPythonRepr) {
  // python3 -c 'import json; print(json.dumps(v))' for each v.
  const std::vector<std::pair<double, std::string>> table = {
      {0.0, "0.0"},
      {-0.0, "-0.0"},
      {1e-05, "1e-05"},
      {0.0001, "0.0001"},
      {0.00012345, "0.00012345"},
      {-1e-07, "-1e-07"},
      {123456789012345678.0, "1.2345678901234568e+17"},
      {12345678901234567.0, "1.2345678901234568e+16"},
      {1e16, "1e+16"},
      {1e15, "1000000000000000.0"},
      {9999999999999998.0, "9999999999999998.0"},
      {1e22, "1e+22"},
      {0.1 + 0.2, "0.30000000000000004"},
      {1.0 / 3.0, "0.3333333333333333"},
      {5e-324, "5e-324"},
      {2.2250738585072014e-308, "2.2250738585072014e-308"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {1.5e300, "1.5e+300"},
      {1775068460.123456, "1775068460.123456"},
      {-2.5, "-2.5"},
      {0.5, "0.5"},
      {100.0, "100.0"},
      {123.0, "123.0"},
      {std::numeric_limits<double>::quiet_NaN(), "NaN"},
      {std::numeric_limits<double>::infinity(), "Infinity"},
      {-std::numeric_limits<double>::infinity(), "-Infinity"},
  };
  for (const auto& [value, expected] : table) EXPECT_EQ(dbl(value), expected) << expected;
}

namespace {

/// The significant digits of a decimal number's text ("-0.00120" -> "12", "1.5e+17" -> "15").
std::string significant_digits(std::string_view text) {
  std::string d;
  for (char c : text.substr(0, text.find('e'))) {
    if (c >= '0' && c <= '9') d.push_back(c);
  }
  const auto first = d.find_first_not_of('0');
  if (first == std::string::npos) return "0";
  d.erase(0, first);
  d.erase(d.find_last_not_of('0') + 1);
  return d;
}

}  // namespace

// Fixed-notation doubles (1e-4 <= |x| < 1e16: every time and duration in a checkpoint) have
// their own shortest-digits path. Against std::to_chars' shortest round-trip digits, on
// values shaped like ours and on random bit patterns across the whole range: same digits,
// fixed notation, and the text reads back as the same double.
TEST(Jsonl, FixedNotationDoublesAreShortestAndRoundTrip) {
  std::mt19937_64 rng(20261125);
  std::vector<double> values;
  std::uniform_real_distribution<double> epoch(1.6e9, 2.2e9);
  std::uniform_real_distribution<double> exponent(-4.0, 16.0);
  for (int i = 0; i < 200000; ++i) {
    values.push_back(epoch(rng));                                       // event times
    values.push_back(std::pow(10.0, exponent(rng)));                    // durations, sizes
    values.push_back(std::round(epoch(rng) * 1e6) / 1e6);               // microsecond clocks
    values.push_back(static_cast<double>(rng() % 100000000) / 1000.0);  // short decimals
    const double lo = std::log2(1e-4);
    const double hi = std::log2(1e16);
    const double x =
        std::ldexp(1.0 + static_cast<double>(rng() >> 12) * 0x1p-52,
                   static_cast<int>(lo + (hi - lo) * static_cast<double>(rng() % 1000) / 1000.0));
    values.push_back((rng() & 1) != 0 ? -x : x);  // any bit pattern
  }
  for (int p = -4; p <= 15; ++p) {  // around powers of ten, where the digit count changes
    double x = std::pow(10.0, p);
    for (int i = 0; i < 50; ++i) {
      values.push_back(x);
      x = std::nextafter(x, 0.0);
    }
    x = std::pow(10.0, p);
    for (int i = 0; i < 50; ++i) values.push_back(x = std::nextafter(x, 1e300));
  }
  // Just below and above whole numbers, where the digits' whole part must still be the
  // value's ("2.9999999999999996", not "3.0" or "2.10…").
  for (double whole : {1.0, 3.0, 1000.0, 123456789.0, 1796181139.0, 4503599627370495.0}) {
    double below = whole;
    double above = whole;
    for (int i = 0; i < 50; ++i) {
      values.push_back(below = std::nextafter(below, 0.0));
      values.push_back(above = std::nextafter(above, 1e300));
    }
  }
  int checked = 0;
  for (double v : values) {
    const double magnitude = std::fabs(v);
    if (!(magnitude >= 1e-4 && magnitude < 1e16)) continue;
    const std::string ours = dbl(v);
    char ref[64];
    const auto [end, ec] = std::to_chars(ref, ref + sizeof ref, v);
    ASSERT_EQ(significant_digits(ours), significant_digits(std::string_view(ref, end - ref)))
        << ours << " vs " << std::string_view(ref, end - ref);
    ASSERT_EQ(ours.find('e'), std::string::npos) << ours;
    ASSERT_NE(ours.find('.'), std::string::npos) << ours;
    ASSERT_NE(ours.back(), '.') << ours;
    double back = 0;
    std::from_chars(ours.data(), ours.data() + ours.size(), back);
    ASSERT_EQ(back, v) << ours;
    ++checked;
  }
  EXPECT_GT(checked, 1000000);
}

TEST(Jsonl, SmallDoublesAreScientificLikeRepr) {
  // Below 1e-4 repr switches to scientific notation ("9.1552734375e-05"), as std::to_chars'
  // shortest form does there: the whole strings must agree. Durations of very short tasks
  // (differences of epoch times) land here.
  std::mt19937_64 rng(20261126);
  std::uniform_real_distribution<double> exponent(-13.0, -4.0);
  std::uniform_real_distribution<double> epoch(1.6e9, 2.2e9);
  std::vector<double> values;
  for (int i = 0; i < 300000; ++i) {
    values.push_back(std::pow(10.0, exponent(rng)));
    const double t = epoch(rng);
    values.push_back(std::nextafter(t, 3e9) - t);  // one ulp of an epoch time
    values.push_back((t + static_cast<double>(rng() % 100000) * 1e-9) - t);
    values.push_back(static_cast<double>(rng() % 100000 + 1) * 1e-9);  // whole nanoseconds
  }
  for (int p = -12; p <= -4; ++p) {  // around powers of ten, where the exponent changes
    double x = std::pow(10.0, p);
    for (int i = 0; i < 50; ++i) values.push_back(x = std::nextafter(x, 0.0));
    x = std::pow(10.0, p);
    for (int i = 0; i < 50; ++i) values.push_back(x = std::nextafter(x, 1.0));
  }
  int checked = 0;
  for (double v : values) {
    if (!(v > 0 && v < 1e-4)) continue;
    for (double x : {v, -v}) {
      char ref[64];
      const auto [end, ec] = std::to_chars(ref, ref + sizeof ref, x);
      ASSERT_EQ(dbl(x), std::string_view(ref, end - ref));
      ++checked;
    }
  }
  EXPECT_GT(checked, 2000000);
}

TEST(Jsonl, IdsArePythonHexUnpaddedOrNull) {
  std::string out;
  jsonl::append_id(out, std::uint64_t{0});
  EXPECT_EQ(out, "null");
  out.clear();
  jsonl::append_id(out, std::uint64_t{0xabc});
  EXPECT_EQ(out, "\"0xabc\"");
  out.clear();
  jsonl::append_id(out, std::uint64_t{0xffffffffffffffffull});
  EXPECT_EQ(out, "\"0xffffffffffffffff\"");
  out.clear();
  jsonl::append_id(out, af::TraceId{});
  EXPECT_EQ(out, "null");
  out.clear();
  jsonl::append_id(out, af::TraceId{0, 0x7});
  EXPECT_EQ(out, "\"0x7\"");
  out.clear();
  // hex((0x0af1b2c3d4e5f607 << 64) | 0x0011223344556677): high unpadded, low padded to 16.
  jsonl::append_id(out, kTrace);
  EXPECT_EQ(out, "\"0xaf1b2c3d4e5f6070011223344556677\"");
}

TEST(Jsonl, StringsEscapeLikeJsonDumps) {
  EXPECT_EQ(str(""), R"("")");
  EXPECT_EQ(str("plain /slash"), R"("plain /slash")");
  EXPECT_EQ(str("q\"uote"), R"("q\"uote")");
  EXPECT_EQ(str("back\\slash"), R"("back\\slash")");
  EXPECT_EQ(str("nl\ncr\rtab\tbs\bff\f"), R"("nl\ncr\rtab\tbs\bff\f")");
  EXPECT_EQ(str(std::string_view("\x00\x01\x1f\x7f", 4)), R"("\u0000\u0001\u001f\u007f")");
  // UTF-8 passes through (json.dumps(..., ensure_ascii=False)); both forms parse the same.
  EXPECT_EQ(str("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80"),
            "\"caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80\"");
  // Bytes that are not UTF-8 would make the line unreadable; each becomes U+FFFD.
  EXPECT_EQ(str("a\xff"
                "b\xc3"),
            R"("a\ufffdb\ufffd")");
  EXPECT_EQ(str("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");  // a UTF-16 surrogate
  EXPECT_EQ(str("\xc0\xaf"), R"("\ufffd\ufffd")");            // overlong '/'
}

TEST(Jsonl, EventLineMatchesJsonDumps) {
  af::Event e = af::restore_event(af::events::TaskCompleted(), "5f3a9c0e2b7d4e1a8c6f0b3d2e9a7c41",
                                  1775068460.123456, 1775068460.1234572,
                                  {.session_id = "asyncflow.session.0001",
                                   .backend = "thread_pool",
                                   .task_id = "task.000007",
                                   .attributes = {{"executable", std::string("train")},
                                                  {"task_type", std::string("function")},
                                                  {"asyncflow.workflow_id", std::string("exp-3")}}},
                                  {0.25});
  std::string out = "keep:";
  jsonl::append_event_line(out, e, kTrace, 0xdeadbeef);
  EXPECT_EQ(
      out,
      R"(keep:{"event_id": "5f3a9c0e2b7d4e1a8c6f0b3d2e9a7c41", "event_type": "TaskCompleted", )"
      R"("event_time": 1775068460.123456, "emit_time": 1775068460.1234572, )"
      R"("session_id": "asyncflow.session.0001", "backend": "thread_pool", )"
      R"("task_id": "task.000007", "node_id": null, "attributes": {"executable": "train", )"
      R"("task_type": "function", "asyncflow.workflow_id": "exp-3"}, "duration_seconds": 0.25, )"
      R"("trace_id": "0xaf1b2c3d4e5f6070011223344556677", "span_id": "0xdeadbeef", )"
      R"("name": "TaskCompleted", "section": "event"})"
      "\n");
}

TEST(Jsonl, CustomEventLineKeepsFieldOrderAndTypes) {
  auto type = af::define_event("experiment.Result",
                               {{"accuracy", af::FieldType::kDouble},
                                {"model", af::FieldType::kString},
                                {"epochs", af::FieldType::kInt},
                                {"converged", af::FieldType::kBool},
                                {"note", af::FieldSpec::optional(af::FieldType::kString)}});
  af::Event e = af::restore_event(
      type, "0123456789abcdef0123456789abcdef", 1e-05, 1e16,
      {.session_id = "s",
       .attributes = {{"ok", true},
                      {"n", std::int64_t{-3}},
                      {"x", std::monostate{}},
                      {"f", 0.1 + 0.2},
                      {"s", std::string("tab\there \"q\" back\\slash \x01\x1f")}}},
      {0.93, std::string("r\xc3\xa9snet \xe2\x9c\x93 \xf0\x9f\x98\x80"), std::int64_t{12}, false,
       std::monostate{}});
  std::string out;
  jsonl::append_event_line(out, e, af::TraceId{0, 0x0011223344556677ull}, 0);
  // json.dumps(..., ensure_ascii=False): the only difference from the default is that the
  // non-ASCII characters of "model" are not \u-escaped.
  EXPECT_EQ(
      out, R"({"event_id": "0123456789abcdef0123456789abcdef", "event_type": "experiment.Result", )"
           R"("event_time": 1e-05, "emit_time": 1e+16, "session_id": "s", "backend": "", )"
           R"("task_id": null, "node_id": null, "attributes": {"ok": true, "n": -3, "x": null, )"
           R"("f": 0.30000000000000004, "s": "tab\there \"q\" back\\slash \u0001\u001f"}, )"
           R"("accuracy": 0.93, "model": "r)"
           "\xc3\xa9snet \xe2\x9c\x93 \xf0\x9f\x98\x80"
           R"(", "epochs": 12, "converged": false, "note": null, )"
           R"("trace_id": "0x11223344556677", "span_id": null, "name": "experiment.Result", )"
           R"("section": "event"})"
           "\n");
}

TEST(Jsonl, IntegersAreWrittenLikeToChars) {
  // Every digit count and sign, the limits, and values either side of each power of ten:
  // the JSONL writer has its own integer digits (two per step), checked against to_chars.
  auto type = af::define_event("experiment.Count", {{"n", af::FieldType::kInt}});
  std::vector<std::int64_t> values = {0,
                                      1,
                                      -1,
                                      9,
                                      10,
                                      -10,
                                      99,
                                      100,
                                      std::numeric_limits<std::int64_t>::max(),
                                      std::numeric_limits<std::int64_t>::min(),
                                      std::numeric_limits<std::int64_t>::min() + 1};
  for (std::int64_t p = 1; p <= std::numeric_limits<std::int64_t>::max() / 10; p *= 10) {
    for (std::int64_t v : {p - 1, p, p + 1, 10 * p - 1}) {
      values.push_back(v);
      values.push_back(-v);
    }
  }
  std::mt19937_64 rng(7);
  for (int i = 0; i < 10000; ++i)
    values.push_back(static_cast<std::int64_t>(rng() >> (rng() % 64)));
  for (std::int64_t v : values) {
    af::Event e = af::restore_event(type, "id", 1.5, 1.5, {.session_id = "s"}, {v});
    std::string out;
    jsonl::append_event_line(out, e, kTrace, 0);
    char buf[24];
    const std::string expected(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
    EXPECT_NE(out.find("\"n\": " + expected + ", \"trace_id\""), std::string::npos) << out;
  }
}

TEST(Jsonl, ResourceUpdateLineEndsWithResourceScope) {
  auto values = std::vector<af::FieldValue>(9, std::monostate{});
  values[2] = 87.5;                     // gpu_percent
  values[3] = std::int64_t{1};          // gpu_id
  values[8] = std::string("per_node");  // derived again from gpu_id: per_gpu
  af::Event e = af::restore_event(
      af::events::ResourceUpdate(), "fedcba9876543210fedcba9876543210", 1775068461.0,
      1775068461.0000002,
      {.session_id = "asyncflow.session.0001", .backend = "thread_pool", .node_id = "node-a"},
      std::move(values));
  std::string out;
  jsonl::append_event_line(out, e, kTrace, 0x1122334455667788ull);
  EXPECT_EQ(
      out,
      R"({"event_id": "fedcba9876543210fedcba9876543210", "event_type": "ResourceUpdate", )"
      R"("event_time": 1775068461.0, "emit_time": 1775068461.0000002, )"
      R"("session_id": "asyncflow.session.0001", "backend": "thread_pool", "task_id": null, )"
      R"("node_id": "node-a", "attributes": {}, "cpu_percent": null, "memory_percent": null, )"
      R"("gpu_percent": 87.5, "gpu_id": 1, "disk_read_bytes": null, "disk_write_bytes": null, )"
      R"("net_sent_bytes": null, "net_recv_bytes": null, "resource_scope": "per_gpu", )"
      R"("trace_id": "0xaf1b2c3d4e5f6070011223344556677", "span_id": "0x1122334455667788", )"
      R"("name": "ResourceUpdate", "section": "event"})"
      "\n");
}

TEST(Jsonl, SpanLinesMatchJsonDumps) {
  af::SpanData task;
  task.name = "task";
  task.trace_id = kTrace;
  task.span_id = 0x1a2b3c4d5e6f7081ull;
  task.parent_span_id = 0xabc;
  task.start_ns = 1775068460123456789;
  task.end_ns = task.start_ns + 562500;  // 0.5625 ms: round(…, 3) ties to even, 0.562
  task.status = af::SpanStatus::kError;
  task.status_description = "ValueError";
  task.attributes = {{"task_id", std::string("task.000007")},
                     {"status", std::string("failed")},
                     {"retries", std::int64_t{2}}};
  af::SpanData session;
  session.name = "session";
  session.trace_id = {0, 7};
  session.span_id = 1;
  session.start_ns = 1775068460000000000;
  session.end_ns = 1775068472345678901;

  std::string out;
  jsonl::append_span_line(out, task);
  jsonl::append_span_line(out, session);
  EXPECT_EQ(out,
            R"({"name": "task", "span_id": "0x1a2b3c4d5e6f7081", )"
            R"("trace_id": "0xaf1b2c3d4e5f6070011223344556677", "parent_span_id": "0xabc", )"
            R"("start_ns": 1775068460123456789, "end_ns": 1775068460124019289, )"
            R"("start_time_s": 1775068460.1234567, "end_time_s": 1775068460.1240191, )"
            R"("duration_ms": 0.562, "status_code": "ERROR", "status_description": "ValueError", )"
            R"("attributes": {"task_id": "task.000007", "status": "failed", "retries": 2}, )"
            R"("section": "span"})"
            "\n"
            R"({"name": "session", "span_id": "0x1", "trace_id": "0x7", "parent_span_id": null, )"
            R"("start_ns": 1775068460000000000, "end_ns": 1775068472345678901, )"
            R"("start_time_s": 1775068460.0, "end_time_s": 1775068472.3456788, )"
            R"("duration_ms": 12345.679, "status_code": "UNSET", "status_description": null, )"
            R"("attributes": {}, "section": "span"})"
            "\n");
}

TEST(Jsonl, SpanDurationRoundsLikePython) {
  // python3 -c 'print(round(ns / 1e6, 3))'. Ties (a remainder of exactly 500 ns) follow the
  // binary value; the rest take the integer fast path, checked here up to and past 1e15 ns.
  const std::vector<std::pair<std::int64_t, std::string>> table = {
      {187500, "0.188"},
      {1062500, "1.062"},
      {1234567, "1.235"},
      {1, "0.0"},
      {0, "0.0"},
      {999999999999, "1000000.0"},
      {499, "0.0"},
      {500, "0.001"},
      {501, "0.001"},
      {1500, "0.002"},
      {2500, "0.003"},
      {123456500, "123.457"},
      {987654321499, "987654.321"},
      {987654321501, "987654.322"},
      {1499999, "1.5"},
      {4503599627370497, "4503599627.37"},
      {1000000000000000, "1000000000.0"},
      {1000000000000500, "1000000000.0"},
      {1234567890123456789, "1234567890123.457"},
      {114462464, "114.462"},
      {6945610009911, "6945610.01"},
      {848904299600, "848904.3"},
      {1655864004651, "1655864.005"},
      {3777455673077, "3777455.673"},
      {1511989530840, "1511989.531"},
      {7354846504794, "7354846.505"}};
  for (const auto& [ns, expected] : table) {
    af::SpanData span;
    span.name = "x";
    span.span_id = 1;
    span.end_ns = ns;
    std::string out;
    jsonl::append_span_line(out, span);
    EXPECT_NE(out.find("\"duration_ms\": " + expected + ","), std::string::npos) << out;
  }
}

TEST(Jsonl, MetricLineSumsPointsPerInstrument) {
  auto point = [](double v) {
    af::MetricPoint p;
    p.value = v;
    return p;
  };
  auto histogram_point = [](std::uint64_t count, double sum) {
    af::MetricPoint p;
    p.count = count;
    p.sum = sum;
    return p;
  };
  af::MetricsSnapshot snap;
  using K = af::InstrumentKind;
  snap.metrics = {
      metric("tasks_submitted", K::kCounter, {point(1), point(1), point(1)}),
      metric("tasks_failed", K::kCounter),  // no data: left out
      metric("tasks_running", K::kUpDownCounter, {point(1), point(-1), point(0)}),
      metric("task_duration_seconds", K::kHistogram,
             {histogram_point(2, 0.75), histogram_point(1, 0.1)}),
      metric("node_cpu_utilization", K::kGauge, {point(12.5), point(40.0)}),
      metric("work_units", K::kCounter, {point(1.25), point(1.25)}),
  };
  std::string out;
  jsonl::append_metric_line(out, 1775068470.5, snap);
  EXPECT_EQ(out, R"({"checkpoint_time": 1775068470.5, "tasks_submitted": 3, "tasks_running": 0, )"
                 R"("task_duration_seconds_count": 3, "task_duration_seconds_sum": 0.85, )"
                 R"("node_cpu_utilization": 52.5, "work_units": 2.5, "section": "metric"})"
                 "\n");

  out.clear();
  jsonl::append_metric_line(out, 1.0, af::MetricsSnapshot{});
  EXPECT_EQ(out, "{\"checkpoint_time\": 1.0, \"section\": \"metric\"}\n");
}
