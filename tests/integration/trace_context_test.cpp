// W3C trace context: traceparent parsing and formatting; a program an executable task runs gets
// TRACEPARENT pointing at its task's span (so an OpenTelemetry-instrumented child joins the
// trace), the task's own env winning; and TRACEPARENT given to the engine (option or
// environment) makes the session a child of the caller's span.
#include <gtest/gtest.h>

#include <asyncflow/asyncflow.hpp>
#include <asyncflow/telemetry/trace_context.hpp>
#include <string>
#include <vector>

#include "support/error_text.hpp"
#include "support/log_capture.hpp"
#include "support/scoped_env.hpp"

namespace af = asyncflow;

namespace {

using Argv = std::vector<std::string>;

constexpr const char* kCaller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

std::unique_ptr<af::WorkflowEngine> process_engine() {
  return af::WorkflowEngine::create(
      {.backends = {af::ThreadPoolBackend::create({.threads = 2}), af::ProcessBackend::create()},
       .work_dir = ::testing::TempDir()});
}

af::TaskOptions with_description(af::TaskDescription d) {
  af::TaskOptions o;
  o.description = std::move(d);
  return o;
}

/// "00-<trace>-<span>-01" of a task span as task_spans() reports it: "0x…" ids, unpadded as
/// the reference's hex() writes them.
std::string traceparent_of(const af::TaskSpanInfo& s) {
  auto padded = [](const std::string& id, std::size_t width) {
    const std::string digits = id.substr(2);
    return std::string(width - digits.size(), '0') + digits;
  };
  return "00-" + padded(s.trace_id, 32) + "-" + padded(s.span_id, 16) + "-01";
}

const af::SpanData* session_span(const std::vector<af::SpanData>& spans) {
  for (const auto& s : spans)
    if (s.name == "session") return &s;
  return nullptr;
}

}  // namespace

TEST(TraceContext, ParsesWhatTheSpecificationAllowsAndNothingElse) {
  const auto p = af::parse_traceparent(kCaller);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->trace_id.high, 0x4bf92f3577b34da6u);
  EXPECT_EQ(p->trace_id.low, 0xa3ce929d0e0e4736u);
  EXPECT_EQ(p->span_id, 0x00f067aa0ba902b7u);
  EXPECT_EQ(p->flags, 1);
  EXPECT_EQ(af::to_traceparent(*p), kCaller);
  // A later version may carry more fields after a '-'.
  EXPECT_TRUE(
      af::parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra"));
  for (const char* bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",  // 00 is exactly 55
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // version ff
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // zero parent
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   // uppercase
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // separator
           "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01x",   // short trace id
       }) {
    EXPECT_FALSE(af::parse_traceparent(bad)) << bad;
  }
}

TEST(TraceContext, AProgramGetsTheTraceparentOfItsTaskSpan) {
  auto flow = process_engine();
  auto tm = flow->start_telemetry();
  auto print = flow->executable_task("print", [] {
    return Argv{"/bin/sh", "-c", "printf %s \"$TRACEPARENT\""};
  });
  auto own = flow->executable_task(
      "own",
      [] {
        return Argv{"/bin/sh", "-c", "printf %s \"$TRACEPARENT\""};
      },
      with_description({.env = {{"TRACEPARENT", "mine"}}}));
  auto replaced = flow->executable_task(
      "replaced",
      [] {
        return Argv{"/bin/sh", "-c", "printf %s \"$TRACEPARENT\""};
      },
      with_description({.env = {{"PATH", "/bin:/usr/bin"}}, .replace_env = true}));
  af::TaskHandle<std::string> a, b;
  {
    auto scope = flow->workflow_scope("traced");
    a = print();
    b = print();
  }
  const std::string seen_a = a.get();
  const std::string seen_b = b.get();
  EXPECT_EQ(own().get(), "mine") << "the task's own env wins";
  EXPECT_EQ(replaced().get(), "") << "a replaced environment stays as given";
  ASSERT_TRUE(flow->shutdown());
  EXPECT_EQ(seen_a, tm->traceparent(a.uid()));
  int matched = 0;
  for (const af::TaskSpanInfo& s : tm->task_spans()) {
    if (s.task_id == a.uid()) {
      EXPECT_EQ(seen_a, traceparent_of(s));
      ++matched;
    }
    if (s.task_id == b.uid()) {
      EXPECT_EQ(seen_b, traceparent_of(s));
      ++matched;
    }
  }
  EXPECT_EQ(matched, 2);
  EXPECT_NE(seen_a, seen_b);
  ASSERT_TRUE(af::parse_traceparent(seen_a)) << seen_a;
}

TEST(TraceContext, TheCallersTraceparentMakesTheSessionItsChild) {
  auto check = [](const std::shared_ptr<af::TelemetryManager>& tm) {
    const auto spans = tm->read_traces();
    const af::SpanData* session = session_span(spans);
    ASSERT_NE(session, nullptr);
    EXPECT_EQ(session->trace_id.high, 0x4bf92f3577b34da6u);
    EXPECT_EQ(session->trace_id.low, 0xa3ce929d0e0e4736u);
    EXPECT_EQ(session->parent_span_id, 0x00f067aa0ba902b7u);
    for (const auto& s : spans) EXPECT_EQ(s.trace_id, session->trace_id) << s.name;
  };
  {
    auto tm = af::TelemetryManager::start("by-option",
                                          {.traceparent = kCaller, .tracestate = "vendor=1"});
    EXPECT_EQ(tm->tracestate(), "vendor=1");
    tm->stop();
    check(tm);
  }
  {
    af::testing::ScopedEnv parent("TRACEPARENT", kCaller);
    af::testing::ScopedEnv state("TRACESTATE", "congo=t61rcWkgMzE");
    auto flow = process_engine();
    auto tm = flow->start_telemetry();
    auto state_of = flow->executable_task("state", [] {
      return Argv{"/bin/sh", "-c", "printf %s \"$TRACESTATE\""};
    });
    EXPECT_EQ(state_of().get(), "congo=t61rcWkgMzE") << "passed on to the programs";
    ASSERT_TRUE(flow->shutdown());
    check(tm);
  }
}

TEST(TraceContext, ABadTraceparentIsSaidAndTheSessionTracesOnItsOwn) {
  EXPECT_NE(af::testing::error_of([] {
              af::TelemetryManager::start("bad", {.traceparent = "00-nope"});
            }).find("traceparent '00-nope' is not a W3C traceparent"),
            std::string::npos);
  af::testing::ScopedEnv parent("TRACEPARENT", "garbage");
  af::testing::LogCapture log;
  auto tm = af::TelemetryManager::start("env-bad");
  tm->stop();
  EXPECT_EQ(log.count("TRACEPARENT is not a W3C traceparent"), 1u) << log.all();
  EXPECT_EQ(log.count("garbage"), 0u);
  const auto spans = tm->read_traces();
  const af::SpanData* session = session_span(spans);
  ASSERT_NE(session, nullptr);
  EXPECT_EQ(session->parent_span_id, 0u);
  EXPECT_TRUE(session->trace_id.valid());
}
