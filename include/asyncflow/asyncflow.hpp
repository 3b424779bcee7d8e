// asyncflow: C++20 workflow engine. Umbrella header: the engine, handles, blocks, scopes and
// the built-in in-process backends.
#pragma once

#include "asyncflow/backend/backend.hpp"
#include "asyncflow/backend/noop_backend.hpp"
#include "asyncflow/backend/task_description.hpp"
#include "asyncflow/backend/thread_pool_backend.hpp"
#include "asyncflow/core/coro_task.hpp"
#include "asyncflow/core/engine.hpp"
#include "asyncflow/core/errors.hpp"
#include "asyncflow/core/observer.hpp"
#include "asyncflow/core/task_handle.hpp"
#include "asyncflow/core/task_state.hpp"
#include "asyncflow/core/this_task.hpp"
#include "asyncflow/telemetry/checkpoint.hpp"
#include "asyncflow/telemetry/event.hpp"
#include "asyncflow/telemetry/event_bus.hpp"
#include "asyncflow/telemetry/jsonl.hpp"
#include "asyncflow/telemetry/manager.hpp"
#include "asyncflow/telemetry/metrics.hpp"
#include "asyncflow/telemetry/span.hpp"
#include "asyncflow/version.hpp"
