// Internal: one OTLP/HTTP endpoint — POSTs request bodies with the configured headers,
// content type and gzip, retries what the specification calls retryable (429, 502, 503, 504,
// no connection) with exponential backoff and jitter, honouring Retry-After, all within the
// export timeout; and stops at once (mid-wait or mid-request) at shutdown.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include "asyncflow/common/thread_annotations.hpp"
#include "asyncflow/exporters/otlp/otlp_config.hpp"

namespace httplib {
class Client;
}

namespace asyncflow::detail {

/// What one send() came to.
struct SendOutcome {
  bool ok = false;
  int attempts = 0;
  int status = 0;     ///< the last HTTP status, 0 when no response came
  std::string error;  ///< why it failed, without header values
  std::string body;   ///< the receiver's answer on success (ExportTrace/MetricsServiceResponse)
};

/// Thread-safety: send() from one thread at a time; shutdown() from any thread.
class OtlpHttpSender {
 public:
  /// Throws asyncflow::Error when the URL cannot be parsed.
  explicit OtlpHttpSender(OtlpConfig config);
  ~OtlpHttpSender();
  OtlpHttpSender(const OtlpHttpSender&) = delete;
  OtlpHttpSender& operator=(const OtlpHttpSender&) = delete;

  SendOutcome send(const std::string& body);
  /// Ends a send in progress (its wait or request) and refuses later ones.
  void shutdown() noexcept;
  const OtlpConfig& config() const noexcept { return config_; }
  /// "OTLP http/protobuf http://host:4318/v1/traces" (no header values).
  std::string describe() const;

 private:
  /// Waits up to `d` unless shutdown() comes; false when it came.
  bool wait(std::chrono::steady_clock::duration d);

  const OtlpConfig config_;
  std::string origin_;  // scheme://host:port
  std::string path_;
  std::unique_ptr<httplib::Client> client_;
  std::minstd_rand jitter_;
  Mutex mu_;
  CondVar cv_;
  bool shut_ ASYNCFLOW_GUARDED_BY(mu_) = false;
};

}  // namespace asyncflow::detail
