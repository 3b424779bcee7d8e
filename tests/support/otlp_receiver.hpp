// Receiver: an OTLP/HTTP receiver the tests start on 127.0.0.1 (cpp-httplib, an ephemeral
// port), answering from a script of statuses and keeping every request for the test to decode.
#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace asyncflow::testing {

/// An OTLP/HTTP receiver on 127.0.0.1: answers each POST with the next status of `script`
/// (then 200), keeping every request. Thread-safe.
class Receiver {
 public:
  explicit Receiver(std::vector<int> script = {}, std::string retry_after = "")
      : script_(std::move(script)), retry_after_(std::move(retry_after)) {
    auto handle = [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      requests_.push_back(req);
      arrived_.notify_all();
      const int status = next_ < script_.size() ? script_[next_++] : 200;
      res.status = status;
      if (status != 200 && !retry_after_.empty()) res.set_header("Retry-After", retry_after_);
      if (status == 400) res.set_content("bad request body", "text/plain");
      if (status == 200 && !answer_.empty()) res.set_content(answer_, answer_type_);
    };
    server_.Post("/v1/traces", handle);
    server_.Post("/v1/metrics", handle);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::yield();  // 0.11 has no wait_until_ready()
  }
  ~Receiver() {
    server_.stop();
    thread_.join();
  }
  std::string url(const char* path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  /// What a 200 answers with from now on (e.g. a response holding a partial_success).
  void answer_with(std::string body, std::string content_type) {
    std::lock_guard lock(mu_);
    answer_ = std::move(body);
    answer_type_ = std::move(content_type);
  }
  std::vector<httplib::Request> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  /// Waits until `n` requests came; false on timeout.
  bool wait_for_requests(std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return arrived_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
  }

 private:
  std::vector<int> script_;
  std::string retry_after_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable arrived_;
  std::size_t next_ = 0;
  std::string answer_;
  std::string answer_type_;
  std::vector<httplib::Request> requests_;
};

}  // namespace asyncflow::testing
