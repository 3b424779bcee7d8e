// Registered functions: functions known by name, so that worker processes (ProcessBackend) can
// run them with JSON-serialized arguments and results. Needs nlohmann/json.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "asyncflow/backend/process_backend.hpp"  // kWorkerFlag, the worker's variables
#include "asyncflow/core/engine.hpp"

namespace asyncflow {

namespace detail {

/// Calls a registered function: JSON array of arguments in, JSON result out (null for void).
/// Throws what the function throws, or nlohmann::json errors for arguments of the wrong shape.
using JsonCall = std::function<nlohmann::json(const nlohmann::json& args)>;

/// The protocol's JSON text for `value` (arguments, results): as nlohmann's dump(), except that
/// non-finite floats, which JSON lacks (dump() would write null and the other side fail on
/// it), travel as {"$asyncflow.float": "nan" | "inf" | "-inf"}. Throws asyncflow::Error, naming
/// `what`, for a string that is not valid UTF-8 (JSON carries text; pass bytes as
/// std::vector<std::uint8_t>) or nesting deeper than kMaxWireDepth.
std::string to_wire(const nlohmann::json& value, const std::string& what);
/// Parses protocol text, restoring the non-finite floats. Throws nlohmann::json::parse_error for
/// text that is not JSON, asyncflow::Error for nesting deeper than kMaxWireDepth.
nlohmann::json from_wire(const std::string& text);
/// The deepest nesting of arrays and objects the protocol carries.
inline constexpr std::size_t kMaxWireDepth = 1000;

/// Adds `name` to the process-wide registry. Throws asyncflow::Error when it is taken.
void register_json_call(const std::string& name, JsonCall call);
/// The registered call named `name`, or null.
const JsonCall* find_json_call(const std::string& name) noexcept;

/// Parameter types of a callable with one non-template operator() (or a function pointer).
template <class F>
struct CallSignature : CallSignature<decltype(&F::operator())> {};
template <class R, class... A>
struct CallSignature<R (*)(A...)> {
  using Args = std::tuple<std::decay_t<A>...>;
};
template <class C, class R, class... A>
struct CallSignature<R (C::*)(A...) const> : CallSignature<R (*)(A...)> {};
template <class C, class R, class... A>
struct CallSignature<R (C::*)(A...)> : CallSignature<R (*)(A...)> {};

template <class T>
struct IsVector : std::false_type {};
template <class T, class A>
struct IsVector<std::vector<T, A>> : std::true_type {};
template <class T>
struct IsStringMap : std::false_type {};
template <class T, class C, class A>
struct IsStringMap<std::map<std::string, T, C, A>> : std::true_type {};
template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {};

[[noreturn]] void throw_wrong_argument(const nlohmann::json& value, const char* expected);

/// `value` as a T, checked where nlohmann's get<T>() converts silently or with undefined
/// behaviour: numbers into bool or integers (a double out of range was a cast of undefined
/// behaviour, 3000000000 became -1294967296, 2.9 became 2, true became 1). Checked through
/// vectors, maps with string keys and optionals; other types use their from_json.
template <class T>
T checked_from_json(const nlohmann::json& value) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!value.is_boolean()) throw_wrong_argument(value, "a boolean");
    return value.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    if (!value.is_number_integer()) throw_wrong_argument(value, "an integer");
    const bool fits = value.is_number_unsigned()
                          ? value.get<std::uint64_t>() <=
                                static_cast<std::uint64_t>(std::numeric_limits<T>::max())
                          : std::in_range<T>(value.get<std::int64_t>());
    if (!fits) throw_wrong_argument(value, "an integer in the parameter's range");
    return value.get<T>();
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!value.is_number()) throw_wrong_argument(value, "a number");
    return value.get<T>();
  } else if constexpr (IsVector<T>::value) {
    if (!value.is_array()) throw_wrong_argument(value, "an array");
    T out;
    out.reserve(value.size());
    for (const auto& item : value) out.push_back(checked_from_json<typename T::value_type>(item));
    return out;
  } else if constexpr (IsStringMap<T>::value) {
    if (!value.is_object()) throw_wrong_argument(value, "an object");
    T out;
    for (const auto& [key, item] : value.items()) {
      out.emplace(key, checked_from_json<typename T::mapped_type>(item));
    }
    return out;
  } else if constexpr (IsOptional<T>::value) {
    if (value.is_null()) return T{};
    return T{checked_from_json<typename T::value_type>(value)};
  } else {
    return value.get<T>();
  }
}

template <class F, class Tuple, std::size_t... I>
nlohmann::json call_from_json(const F& fn, const nlohmann::json& args, std::index_sequence<I...>) {
  if (!args.is_array() || args.size() != sizeof...(I)) {
    throw nlohmann::json::type_error::create(
        302, "expected " + std::to_string(sizeof...(I)) + " arguments, got " + args.dump(), &args);
  }
  using R = decltype(fn(checked_from_json<std::tuple_element_t<I, Tuple>>(args.at(I))...));
  if constexpr (std::is_void_v<R>) {
    fn(checked_from_json<std::tuple_element_t<I, Tuple>>(args.at(I))...);
    return nullptr;
  } else {
    return nlohmann::json(fn(checked_from_json<std::tuple_element_t<I, Tuple>>(args.at(I))...));
  }
}

}  // namespace detail

/// A function registered by name. Copyable; obtain it from register_function().
/// Thread-safety: immutable once registered; thread-safe to use from any thread.
template <class F>
class RegisteredFunction {
 public:
  const std::string& name() const noexcept { return name_; }
  const F& function() const noexcept { return *fn_; }
  const std::shared_ptr<const F>& shared_function() const noexcept { return fn_; }

 private:
  template <class G>
  friend RegisteredFunction<std::decay_t<G>> register_function(std::string name, G&& fn);
  RegisteredFunction(std::string name, std::shared_ptr<const F> fn)
      : name_(std::move(name)), fn_(std::move(fn)) {}
  std::string name_;
  std::shared_ptr<const F> fn_;
};

/// Registers `fn` (a function pointer or a lambda with fixed parameter types) under `name`.
/// Its arguments and result travel as JSON, so each type needs nlohmann's to_json/from_json
/// (the standard types have them). A worker process finds functions in its own registry, so
/// register them where every process of the program does it: at namespace scope,
///   static const auto square = asyncflow::register_function("square", [](int x) { return x * x;
///   });
/// Throws asyncflow::Error when `name` is already registered.
template <class F>
RegisteredFunction<std::decay_t<F>> register_function(std::string name, F&& fn) {
  using Fn = std::decay_t<F>;
  auto shared = std::make_shared<const Fn>(std::forward<F>(fn));
  using Args = typename detail::CallSignature<Fn>::Args;
  detail::register_json_call(name, [shared](const nlohmann::json& args) {
    return detail::call_from_json<Fn, Args>(*shared, args,
                                            std::make_index_sequence<std::tuple_size_v<Args>>{});
  });
  return RegisteredFunction<Fn>(std::move(name), std::move(shared));
}

namespace detail {

/// A registered function's task: called directly by in-process backends (run()), or turned
/// into a JSON call line for a worker process, whose JSON result store_output() parses.
/// Thread-safety: as every task node (detail/node.hpp).
template <class R, class F, class... A>
class RegisteredNode final : public CallNode<R, F, A...> {
 public:
  using CallNode<R, F, A...>::CallNode;

  std::string build_function_request() override {
    nlohmann::json args = nlohmann::json::array();
    std::apply([&](A&... a) { (args.push_back(nlohmann::json(ArgTraits<A>::pass(a))), ...); },
               *this->args_);
    return to_wire(nlohmann::json{{"function", this->def->name}, {"args", std::move(args)}},
                   "an argument of '" + this->def->name + "'");
  }
  void store_output(std::string output) override {
    if constexpr (!std::is_void_v<R>) this->value_.emplace(checked_from_json<R>(from_wire(output)));
  }
};

}  // namespace detail

/// A callable that creates one task of a registered function per call. Returned by
/// WorkflowEngine::function_task(registered). Arguments and dependencies work as for
/// FunctionTask; the handle is a TaskHandle<R> of the function's result.
/// Thread-safety: copyable; thread-safe to call, like FunctionTask.
template <class F>
class RegisteredTask : private FunctionTask<F> {
 public:
  template <class... Args>
  requires std::invocable<const F&, detail::passed_t<std::decay_t<Args>>...>
  auto operator()(Args&&... args) const {
    using R = std::remove_cvref_t<
        std::invoke_result_t<const F&, detail::passed_t<std::decay_t<Args>>...>>;
    using Node = detail::RegisteredNode<R, F, std::decay_t<Args>...>;
    return this->template launch<R, Node>(std::forward<Args>(args)...);
  }
  RegisteredTask with(const TaskOptions& options) const {
    return RegisteredTask(this->core_, this->def_->name, this->def_->fn, options);
  }
  using FunctionTask<F>::name;

 private:
  friend class WorkflowEngine;
  RegisteredTask(std::shared_ptr<detail::EngineCore> core, std::string task_name,
                 std::shared_ptr<const F> fn, const TaskOptions& options)
      : FunctionTask<F>(std::move(core), std::move(task_name), TaskKind::kFunction, std::move(fn),
                        options, /*registered=*/true) {}
};

template <class F>
RegisteredTask<F> WorkflowEngine::function_task(const RegisteredFunction<F>& fn,
                                                TaskOptions options) {
  return RegisteredTask<F>(core_, fn.name(), fn.shared_function(), options);
}

/// Call first in main(argc, argv). When this process was started as a ProcessBackend function
/// worker (argv[1] == "--asyncflow-worker"), it serves calls until its parent closes the
/// connection and then exits; otherwise it returns at once. The connection is the descriptor
/// named by the environment variable ASYNCFLOW_WORKER_FD (3 from ProcessBackend; stdin and
/// stdout when it is unset, to try a worker by hand); the functions' stdin is /dev/null and
/// what they print goes to stderr. A program whose main() forgets this call and creates a
/// ProcessBackend in a worker exits at once with a message (status kUnservedWorkerStatus)
/// instead of starting workers of its own, recursively.
void serve_if_worker(int argc, char** argv);

}  // namespace asyncflow
