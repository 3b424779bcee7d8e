// DepCollector: de-duplicates dependencies (reference flaw §8.3: the same handle passed twice
// hung forever). Linear scan for the usual handful; a hash set once a fan-in grows large.
#include <algorithm>
#include <unordered_set>

#include "asyncflow/common/error.hpp"
#include "asyncflow/detail/engine_hooks.hpp"

namespace asyncflow::detail {

struct DepCollector::Seen {
  std::unordered_set<Node*> set;
};

namespace {
constexpr std::size_t kLinearLimit = 32;
}

DepCollector::~DepCollector() {
  delete[] heap_;
  delete seen_;
}

void DepCollector::operator()(Node* n) {
  if (n == nullptr) {
    throw Error(
        "an empty TaskHandle (default-constructed or moved-from) was passed as a task argument: "
        "it names no task to depend on");
  }
  Node** d = data();
  if (seen_ != nullptr) {
    if (!seen_->set.insert(n).second) return;
  } else {
    if (std::find(d, d + size_, n) != d + size_) return;
    if (size_ == kLinearLimit) {
      seen_ = new Seen;
      seen_->set.reserve(kLinearLimit * 4);
      seen_->set.insert(d, d + size_);
      seen_->set.insert(n);
    }
  }
  if (size_ == cap_) {
    std::size_t cap = cap_ * 2;
    auto* grown = new Node*[cap];
    std::copy(d, d + size_, grown);
    delete[] heap_;
    heap_ = grown;
    cap_ = cap;
    d = heap_;
  }
  d[size_++] = n;
}

}  // namespace asyncflow::detail
