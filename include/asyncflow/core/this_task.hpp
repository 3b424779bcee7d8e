// Queries a running function task can make about itself.
#pragma once

#include <string>

namespace asyncflow::this_task {

/// True when the task running on this thread was asked to stop by cancel() (on it, or on a
/// block or dependency it belongs to). Long-running function bodies should poll it and return
/// early; the task then ends canceled. Engine shutdown waits for running tasks and does not
/// set it. False outside a task.
bool stop_requested() noexcept;

/// uid of the task running on this thread ("task.000042"), or "" outside a task.
std::string uid();

}  // namespace asyncflow::this_task
