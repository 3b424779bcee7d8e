// Internal: compile-time detection of dependencies among task arguments, and substitution of
// upstream values when the task runs.
//
// An argument is a dependency carrier when it is a TaskHandle<U>, or a standard container /
// tuple / optional of carriers (recursively):
//   TaskHandle<U>                      -> const U&            (TaskHandle<void> -> Unit)
//   std::vector<C>, std::array<C,N>    -> std::vector<V>, std::array<V,N>   (fan-in)
//   std::map<K,C>, std::unordered_map  -> the same map of V   (named dependencies)
//   std::pair / std::tuple of C...     -> pair / tuple of V...
//   std::optional<C>                   -> std::optional<V>
// where V is the substituted value type of C. Every other argument is passed through (moved).
#pragma once

#include <array>
#include <map>
#include <optional>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "asyncflow/core/task_handle.hpp"

namespace asyncflow {

/// What a TaskHandle<void> dependency passes to the function: nothing but its completion.
struct Unit {
  friend constexpr bool operator==(Unit, Unit) noexcept { return true; }
};

namespace detail {

template <class T>
struct ArgTraits {
  static constexpr bool kHasDeps = false;
  using value_type = T;
  template <class Visit>
  static void visit(const T&, Visit&&) {}
  static T&& pass(T& v) noexcept { return std::move(v); }
};

template <class U>
struct ArgTraits<TaskHandle<U>> {
  static constexpr bool kHasDeps = true;
  using value_type = std::conditional_t<std::is_void_v<U>, Unit, U>;
  template <class Visit>
  static void visit(const TaskHandle<U>& h, Visit&& f) {
    f(HandleAccess::node(h));
  }
  static decltype(auto) pass(const TaskHandle<U>& h) noexcept {
    if constexpr (std::is_void_v<U>) {
      return Unit{};
    } else {
      // The dependency finished before this task started, so this never blocks.
      return static_cast<const ValueNode<U>*>(HandleAccess::node(h))->value();
    }
  }
  static value_type value(const TaskHandle<U>& h) { return pass(h); }
};

template <class T>
inline constexpr bool kHasDeps = ArgTraits<std::remove_cvref_t<T>>::kHasDeps;

template <class T>
using arg_value_t = typename ArgTraits<std::remove_cvref_t<T>>::value_type;

/// The value of a carrier (copy), used when rebuilding containers.
template <class T>
arg_value_t<T> arg_value(const T& v) {
  using Tr = ArgTraits<std::remove_cvref_t<T>>;
  if constexpr (requires { Tr::value(v); }) {
    return Tr::value(v);
  } else {
    return v;
  }
}

template <class C>
requires kHasDeps<C>
struct ArgTraits<std::vector<C>> {
  static constexpr bool kHasDeps = true;
  using value_type = std::vector<arg_value_t<C>>;
  template <class Visit>
  static void visit(const std::vector<C>& v, Visit&& f) {
    for (const auto& e : v) ArgTraits<C>::visit(e, f);
  }
  static value_type value(const std::vector<C>& v) {
    value_type out;
    out.reserve(v.size());
    for (const auto& e : v) out.push_back(arg_value(e));
    return out;
  }
  static value_type pass(const std::vector<C>& v) { return value(v); }
};

template <class C, std::size_t N>
requires kHasDeps<C>
struct ArgTraits<std::array<C, N>> {
  static constexpr bool kHasDeps = true;
  using value_type = std::array<arg_value_t<C>, N>;
  template <class Visit>
  static void visit(const std::array<C, N>& v, Visit&& f) {
    for (const auto& e : v) ArgTraits<C>::visit(e, f);
  }
  static value_type value(const std::array<C, N>& v) {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return value_type{arg_value(v[I])...};
    }
    (std::make_index_sequence<N>{});
  }
  static value_type pass(const std::array<C, N>& v) { return value(v); }
};

template <template <class...> class Map, class K, class C, class... Rest>
struct MapArgTraits {
  static constexpr bool kHasDeps = true;
  using value_type = Map<K, arg_value_t<C>>;
  template <class Visit>
  static void visit(const Map<K, C, Rest...>& m, Visit&& f) {
    for (const auto& [k, e] : m) ArgTraits<C>::visit(e, f);
  }
  static value_type value(const Map<K, C, Rest...>& m) {
    value_type out;
    for (const auto& [k, e] : m) out.emplace(k, arg_value(e));
    return out;
  }
  static value_type pass(const Map<K, C, Rest...>& m) { return value(m); }
};

template <class K, class C, class Cmp, class A>
requires kHasDeps<C>
struct ArgTraits<std::map<K, C, Cmp, A>> : MapArgTraits<std::map, K, C, Cmp, A> {
};

template <class K, class C, class H, class E, class A>
requires kHasDeps<C>
struct ArgTraits<std::unordered_map<K, C, H, E, A>>
    : MapArgTraits<std::unordered_map, K, C, H, E, A> {
};

template <class C>
requires kHasDeps<C>
struct ArgTraits<std::optional<C>> {
  static constexpr bool kHasDeps = true;
  using value_type = std::optional<arg_value_t<C>>;
  template <class Visit>
  static void visit(const std::optional<C>& o, Visit&& f) {
    if (o) ArgTraits<C>::visit(*o, f);
  }
  static value_type value(const std::optional<C>& o) {
    return o ? value_type(arg_value(*o)) : value_type();
  }
  static value_type pass(const std::optional<C>& o) { return value(o); }
};

template <class... C>
requires(kHasDeps<C> || ...) struct ArgTraits<std::tuple<C...>> {
  static constexpr bool kHasDeps = true;
  using value_type = std::tuple<arg_value_t<C>...>;
  template <class Visit>
  static void visit(const std::tuple<C...>& t, Visit&& f) {
    std::apply(
        [&](const auto&... e) { (ArgTraits<std::remove_cvref_t<decltype(e)>>::visit(e, f), ...); },
        t);
  }
  static value_type value(const std::tuple<C...>& t) {
    return std::apply([](const auto&... e) { return value_type(arg_value(e)...); }, t);
  }
  static value_type pass(const std::tuple<C...>& t) { return value(t); }
};

template <class A, class B>
requires(kHasDeps<A> || kHasDeps<B>) struct ArgTraits<std::pair<A, B>> {
  static constexpr bool kHasDeps = true;
  using value_type = std::pair<arg_value_t<A>, arg_value_t<B>>;
  template <class Visit>
  static void visit(const std::pair<A, B>& p, Visit&& f) {
    ArgTraits<A>::visit(p.first, f);
    ArgTraits<B>::visit(p.second, f);
  }
  static value_type value(const std::pair<A, B>& p) {
    return value_type(arg_value(p.first), arg_value(p.second));
  }
  static value_type pass(const std::pair<A, B>& p) { return value(p); }
};

/// The argument expression a stored argument of type T becomes when the body is called.
template <class T>
using passed_t = decltype(ArgTraits<T>::pass(std::declval<T&>()));

/// Calls `f(node)` for every dependency node inside `args...`, in argument order.
template <class Visit, class... Args>
void visit_dependencies(Visit&& f, const Args&... args) {
  (ArgTraits<Args>::visit(args, f), ...);
}

}  // namespace detail
}  // namespace asyncflow
