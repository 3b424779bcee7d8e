// RecordingObserver: an EngineObserver that records every lifecycle point, for tests.
#pragma once

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include <asyncflow/core/observer.hpp>

namespace asyncflow::testing {

struct Recorded {
  std::string event;  // "created", "resolved", "submitted", "queued", "started", "finished"
  std::string uid;
  std::string name;
  std::string backend;
  std::string workflow_id;
  std::string parent_block;
  TaskState state = TaskState::kPending;  // for "finished"
  std::vector<std::string> depends_on;    // for "created"
  bool has_error = false;
};

class RecordingObserver final : public EngineObserver {
 public:
  void on_task_created(const TaskInfo& t, std::span<const std::string> deps) noexcept override {
    Recorded r = make("created", t);
    r.depends_on.assign(deps.begin(), deps.end());
    add(std::move(r));
  }
  void on_task_resolved(const TaskInfo& t) noexcept override { add(make("resolved", t)); }
  void on_task_submitted(const TaskInfo& t) noexcept override { add(make("submitted", t)); }
  void on_task_queued(const TaskInfo& t) noexcept override { add(make("queued", t)); }
  void on_task_started(const TaskInfo& t) noexcept override { add(make("started", t)); }
  void on_task_finished(const TaskInfo& t, TaskState s,
                        const std::exception_ptr& e) noexcept override {
    Recorded r = make("finished", t);
    r.state = s;
    r.has_error = static_cast<bool>(e);
    add(std::move(r));
  }
  void on_workflow_begin(std::string_view id, std::string_view) noexcept override {
    std::lock_guard lock(mu_);
    scopes_.push_back("begin:" + std::string(id));
  }
  void on_workflow_end(std::string_view id) noexcept override {
    std::lock_guard lock(mu_);
    scopes_.push_back("end:" + std::string(id));
  }

  std::vector<Recorded> events() const {
    std::lock_guard lock(mu_);
    return events_;
  }
  /// Event names recorded for one task, in order.
  std::vector<std::string> sequence(const std::string& uid) const {
    std::vector<std::string> out;
    for (const auto& r : events())
      if (r.uid == uid) out.push_back(r.event);
    return out;
  }
  /// The first record of `event` for `uid` (default-built if none).
  Recorded find(const std::string& uid, const std::string& event) const {
    for (const auto& r : events())
      if (r.uid == uid && r.event == event) return r;
    return {};
  }
  std::vector<std::string> scopes() const {
    std::lock_guard lock(mu_);
    return scopes_;
  }

 private:
  static Recorded make(const char* event, const TaskInfo& t) {
    Recorded r;
    r.event = event;
    r.uid = std::string(t.uid);
    r.name = std::string(t.name);
    r.backend = std::string(t.backend);
    r.workflow_id = std::string(t.workflow_id);
    r.parent_block = std::string(t.parent_block);
    return r;
  }
  void add(Recorded r) {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(r));
  }
  mutable std::mutex mu_;
  std::vector<Recorded> events_;
  std::vector<std::string> scopes_;
};

}  // namespace asyncflow::testing
