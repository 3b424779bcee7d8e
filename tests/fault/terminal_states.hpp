// The check every fault test ends with: each task reached exactly one terminal state, and
// every witness agrees on which — its handle, the engine's observer (one on_task_finished) and
// the telemetry stream (one TaskCompleted, TaskFailed or TaskCanceled event).
#pragma once

#include <gtest/gtest.h>

#include <asyncflow/asyncflow.hpp>
#include <map>
#include <string>
#include <vector>

#include "support/recording_observer.hpp"

namespace asyncflow::testing {

/// The terminal event type telemetry emits for `state`.
inline std::string terminal_event(TaskState state) {
  switch (state) {
    case TaskState::kDone: return "TaskCompleted";
    case TaskState::kFailed: return "TaskFailed";
    case TaskState::kCanceled: return "TaskCanceled";
    default: return "(not terminal)";
  }
}

/// Terminal events per task id in `events`: every type seen, in order.
inline std::map<std::string, std::vector<std::string>> terminal_events_by_task(
    const std::vector<Event>& events) {
  std::map<std::string, std::vector<std::string>> out;
  for (const Event& e : events) {
    const std::string& type = e.type();
    if (type != "TaskCompleted" && type != "TaskFailed" && type != "TaskCanceled") continue;
    out[e.task_id().value_or("(none)")].push_back(type);
  }
  return out;
}

/// Each of `tasks` is finished, the observer saw it finish once in that state, and (when
/// `events` is given) telemetry exported exactly one terminal event for it, of that state.
inline void expect_one_terminal_state_each(const std::vector<AnyTask>& tasks,
                                           const RecordingObserver& observer,
                                           const std::vector<Event>* events = nullptr) {
  std::map<std::string, std::vector<TaskState>> finished;
  for (const Recorded& r : observer.events()) {
    if (r.event == "finished") finished[r.uid].push_back(r.state);
  }
  std::map<std::string, std::vector<std::string>> terminal;
  if (events != nullptr) terminal = terminal_events_by_task(*events);
  for (const AnyTask& t : tasks) {
    const std::string uid = t.uid();
    ASSERT_TRUE(t.done()) << uid << " has no terminal state: " << static_cast<int>(t.state());
    const TaskState state = t.state();
    const auto& seen = finished[uid];
    ASSERT_EQ(seen.size(), 1u) << uid << " finished " << seen.size() << " times";
    EXPECT_EQ(seen.front(), state) << uid;
    if (events != nullptr) {
      const auto& types = terminal[uid];
      ASSERT_EQ(types.size(), 1u) << uid << " has " << types.size() << " terminal events";
      EXPECT_EQ(types.front(), terminal_event(state)) << uid;
    }
  }
}

}  // namespace asyncflow::testing
