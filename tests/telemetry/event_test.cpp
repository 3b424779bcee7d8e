// Events: define_event / make_event rules, built-in types, ids and times (reference §1).
#include <gtest/gtest.h>

#include <asyncflow/common/error.hpp>
#include <asyncflow/telemetry/event.hpp>
#include <cmath>
#include <limits>
#include <regex>
#include <set>
#include <thread>

#include "support/error_text.hpp"

namespace af = asyncflow;
using af::FieldType;

namespace {
using asyncflow::testing::error_of;
}  // namespace

TEST(Events, DefineEventRequiresANamespacedName) {
  EXPECT_EQ(error_of([] { af::define_event("Flat"); }),
            "define_event: name 'Flat' must be namespaced (e.g. 'asyncflow.X'). Flat names risk "
            "collisions across systems.");
  EXPECT_NE(error_of([] { af::define_event(".Lead"); }), "(no error)");
  EXPECT_EQ(af::define_event("my.Ok")->name(), "my.Ok");
}

TEST(Events, DefineEventRejectsBaseFieldsAndJsonlColumns) {
  auto msg = error_of([] {
    af::define_event("my.Bad", {{"task_id", FieldType::kString},
                                {"score", FieldType::kDouble},
                                {"event_id", FieldType::kString}});
  });
  EXPECT_NE(msg.find("fields ['event_id', 'task_id'] shadow core event fields"), std::string::npos)
      << msg;
  for (const char* column : {"trace_id", "span_id", "name", "section"}) {
    EXPECT_NE(error_of([&] {
                af::define_event("my.Col", {{column, FieldType::kString}});
              }),
              "(no error)")
        << column;
  }
  EXPECT_NE(error_of([] {
              af::define_event("my.Dup", {{"a", FieldType::kInt}, {"a", FieldType::kInt}});
            }).find("declared twice"),
            std::string::npos);
}

TEST(Events, DefaultsFollowTheReference) {
  auto t = af::define_event("myframework.ModelCheckpoint",
                            {{"step", {FieldType::kInt, std::int64_t{-1}}},
                             {"loss", {FieldType::kDouble, 1e300}},
                             {"metric", FieldType::kString},
                             {"ok", FieldType::kBool},
                             {"count", FieldType::kInt},
                             {"note", af::FieldSpec::optional(FieldType::kString)}});
  auto e = af::make_event(t, {.session_id = "s", .backend = "myframework"});
  EXPECT_EQ(e.type(), "myframework.ModelCheckpoint");
  EXPECT_EQ(std::get<std::int64_t>(e.field("step")), -1);
  EXPECT_EQ(e.number("loss"), 1e300);
  EXPECT_EQ(e.text("metric"), "");
  EXPECT_EQ(std::get<bool>(e.field("ok")), false);
  EXPECT_EQ(std::get<std::int64_t>(e.field("count")), 0);
  EXPECT_TRUE(std::holds_alternative<std::monostate>(e.field("note")));
  EXPECT_THROW(af::FieldSpec(FieldType::kInt, std::string("x")), af::Error);
}

TEST(Events, MakeEventChecksNamesAndTypes) {
  auto t = af::define_event("experiment.Result", {{"accuracy", FieldType::kDouble},
                                                  {"model", {FieldType::kString, "baseline"}},
                                                  {"epochs", FieldType::kInt}});
  auto e = af::make_event(t, {.session_id = "s", .backend = "experiment"},
                          {{"accuracy", 0.93}, {"epochs", std::int64_t{3}}});
  EXPECT_DOUBLE_EQ(e.number("accuracy"), 0.93);
  EXPECT_EQ(e.text("model"), "baseline");
  // An int is accepted for a double field.
  EXPECT_DOUBLE_EQ(af::make_event(t, {}, {{"accuracy", std::int64_t{1}}}).number("accuracy"), 1.0);
  EXPECT_EQ(error_of([&] {
              af::make_event(t, {}, {{"acuracy", 0.5}});
            }),
            "event 'experiment.Result': unknown field 'acuracy' (fields: accuracy, model, epochs)");
  EXPECT_EQ(error_of([&] {
              af::make_event(t, {}, {{"accuracy", std::string("high")}});
            }),
            "event 'experiment.Result': field 'accuracy' expects double, got string");
  EXPECT_EQ(error_of([&] {
              af::make_event(t, {}, {{"epochs", 2.5}});
            }),
            "event 'experiment.Result': field 'epochs' expects int, got double");
  EXPECT_EQ(error_of([&] {
              af::make_event(t, {}, {{"model", std::monostate{}}});
            }),
            "event 'experiment.Result': field 'model' is not nullable");
  EXPECT_THROW(e.field("nope"), af::Error);
  EXPECT_THROW(e.text("accuracy"), af::Error);
}

TEST(Events, IdsTimesAndBaseFields) {
  const double before = af::epoch_seconds();
  auto e = af::make_event(af::events::TaskStarted(),
                          {.session_id = "sess",
                           .backend = "thread_pool",
                           .task_id = "task.000001",
                           .attributes = {{"executable", std::string("load")},
                                          {"task_type", std::string("function")}}});
  EXPECT_TRUE(std::regex_match(std::string(e.event_id()),
                               std::regex("[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}")))
      << e.event_id();
  EXPECT_GE(e.event_time(), before);
  EXPECT_GE(e.emit_time(), e.event_time());
  EXPECT_LT(e.emit_time() - before, 5.0);
  EXPECT_EQ(e.session_id(), "sess");
  EXPECT_EQ(e.backend(), "thread_pool");
  EXPECT_EQ(e.task_id(), "task.000001");
  EXPECT_FALSE(e.node_id().has_value());
  ASSERT_NE(e.attribute("task_type"), nullptr);
  EXPECT_EQ(std::get<std::string>(*e.attribute("task_type")), "function");
  EXPECT_EQ(e.attribute("missing"), nullptr);

  // event_time can be given (an event that happened earlier); emit_time is always now.
  auto past = af::make_event(af::events::TaskStarted(), {.event_time = 1000.0});
  EXPECT_EQ(past.event_time(), 1000.0);
  EXPECT_GT(past.emit_time(), 1000.0);
}

TEST(Events, IdsAreUniqueAcrossThreads) {
  std::vector<std::string> ids[4];
  std::vector<std::thread> threads;
  for (auto& out : ids) {
    threads.emplace_back([&out] {
      for (int i = 0; i < 2500; ++i) out.push_back(af::uuid4_hex());
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (auto& v : ids) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), 10000u);
  // uuid4 as Python's uuid.uuid4().hex: 32 lowercase hex digits, version 4, RFC 4122 variant.
  for (const std::string& id : all) {
    ASSERT_EQ(id.size(), 32u);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    EXPECT_EQ(id[12], '4') << id;
    EXPECT_NE(std::string_view("89ab").find(id[16]), std::string_view::npos) << id;
  }
}

TEST(Events, BuiltInTypesHaveTheReferenceFields) {
  using FieldNames = std::vector<std::string>;
  auto names = [](const af::EventTypePtr& t) {
    FieldNames out;
    for (const auto& [n, s] : t->fields()) out.push_back(n);
    return out;
  };
  EXPECT_EQ(af::events::SessionStarted()->name(), "SessionStarted");
  EXPECT_EQ(names(af::events::SessionEnded()), FieldNames{"duration_seconds"});
  EXPECT_TRUE(names(af::events::TaskCreated()).empty());
  EXPECT_TRUE(names(af::events::TaskSubmitted()).empty());
  EXPECT_TRUE(names(af::events::TaskQueued()).empty());
  EXPECT_EQ(names(af::events::TaskCompleted()), FieldNames{"duration_seconds"});
  EXPECT_EQ(names(af::events::TaskFailed()), (FieldNames{"duration_seconds", "error_type"}));
  EXPECT_EQ(names(af::events::TaskCanceled()), FieldNames{"duration_seconds"});
  EXPECT_EQ(names(af::events::ResourceUpdate()),
            (FieldNames{"cpu_percent", "memory_percent", "gpu_percent", "gpu_id", "disk_read_bytes",
                        "disk_write_bytes", "net_sent_bytes", "net_recv_bytes", "resource_scope"}));
  EXPECT_EQ(af::events::TaskResolved()->name(), "asyncflow.TaskResolved");
  auto failed = af::make_event(af::events::TaskFailed(), {});
  EXPECT_EQ(failed.text("error_type"), "unknown");
}

TEST(Events, ResourceScopeIsDerivedNeverSet) {
  auto node = af::make_event(af::events::ResourceUpdate(), {.node_id = "n1"},
                             {{"cpu_percent", 42.0}, {"memory_percent", 55.0}});
  EXPECT_EQ(node.text("resource_scope"), "per_node");
  EXPECT_TRUE(std::holds_alternative<std::monostate>(node.field("gpu_id")));
  EXPECT_TRUE(std::holds_alternative<std::monostate>(node.field("disk_read_bytes")));
  auto gpu = af::make_event(af::events::ResourceUpdate(), {.node_id = "n1"},
                            {{"gpu_id", std::int64_t{0}}, {"gpu_percent", 77.0}});
  EXPECT_EQ(gpu.text("resource_scope"), "per_gpu");
  EXPECT_NE(error_of([] {
              af::make_event(af::events::ResourceUpdate(), {},
                             {{"resource_scope", std::string("per_gpu")}});
            }).find("unknown field 'resource_scope'"),
            std::string::npos);
}

// A NaN or infinite event_time was accepted and broke the documented pandas recipe.
TEST(Events, ANonFiniteEventTimeIsAnError) {
  const auto type = af::define_event("test.Timed");
  for (double bad : {std::nan(""), std::numeric_limits<double>::infinity(),
                     -std::numeric_limits<double>::infinity()}) {
    try {
      af::make_event(type, {.event_time = bad});
      ADD_FAILURE() << "accepted " << bad;
    } catch (const af::Error& e) {
      EXPECT_NE(std::string(e.what()).find("event 'test.Timed': event_time must be a finite"),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_EQ(af::make_event(type, {.event_time = 12.5}).event_time(), 12.5);
}
