#include "common/exception_text.hpp"

#include <cxxabi.h>

#include <cstdlib>
#include <typeinfo>

namespace asyncflow::detail {

namespace {

std::string demangle(const char* name) {
  int status = 0;
  char* out = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string s = status == 0 && out != nullptr ? out : name;
  std::free(out);
  return s;
}

}  // namespace

std::pair<std::string, std::string> describe_exception(const std::exception_ptr& error) {
  if (!error) return {"unknown", ""};
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return {demangle(typeid(e).name()), e.what()};
  } catch (...) {
    const std::type_info* t = abi::__cxa_current_exception_type();
    return {t != nullptr ? demangle(t->name()) : "unknown", ""};
  }
}

}  // namespace asyncflow::detail
