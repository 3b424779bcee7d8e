// OTLP/HTTP requests with retries (otlp_http_sender.hpp), over cpp-httplib.
#include "otlp_http_sender.hpp"

#include <httplib.h>

#include <algorithm>
#include <cmath>

#include "asyncflow/common/error.hpp"

namespace asyncflow::detail {

namespace {

using Clock = std::chrono::steady_clock;

bool retryable(int status) {
  return status == 429 || status == 502 || status == 503 || status == 504;
}

/// Seconds of a Retry-After given in seconds (the HTTP-date form is not used by receivers of
/// OTLP in practice and is ignored).
std::optional<double> retry_after(const httplib::Response& r) {
  if (!r.has_header("Retry-After")) return std::nullopt;
  const std::string v = r.get_header_value("Retry-After");
  char* end = nullptr;
  const double s = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end != '\0' || !(s >= 0) || !std::isfinite(s)) return std::nullopt;
  return s;
}

std::chrono::microseconds micros(double seconds) {
  return std::chrono::microseconds(static_cast<std::int64_t>(std::max(0.0, seconds) * 1e6));
}

}  // namespace

OtlpHttpSender::OtlpHttpSender(OtlpConfig config)
    : config_(std::move(config)), jitter_(std::random_device{}()) {
  const std::string& url = config_.url;
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) throw Error("OTLP exporter: no scheme in URL '" + url + "'");
  const std::size_t path_start = url.find('/', scheme_end + 3);
  origin_ = url.substr(0, path_start);
  path_ = path_start == std::string::npos ? "/" : url.substr(path_start);
  if (origin_.size() <= scheme_end + 3) throw Error("OTLP exporter: no host in URL '" + url + "'");
  client_ = std::make_unique<httplib::Client>(origin_);
  if (!client_->is_valid()) {
    throw Error("OTLP exporter: cannot use URL '" + url +
                "' (an https URL needs the library's TLS support)");
  }
  if (!config_.certificate.empty()) client_->set_ca_cert_path(config_.certificate.c_str());
  client_->enable_server_certificate_verification(true);
  client_->set_compress(config_.gzip);
  client_->set_keep_alive(true);
}

OtlpHttpSender::~OtlpHttpSender() {
  shutdown();
}

std::string OtlpHttpSender::describe() const {
  return "OTLP " + std::string(to_string(config_.protocol)) + " " + config_.url;
}

bool OtlpHttpSender::wait(Clock::duration d) {
  MutexLock lock(mu_);
  cv_.wait_for(mu_, d, [this]() ASYNCFLOW_REQUIRES(mu_) { return shut_; });
  return !shut_;
}

void OtlpHttpSender::shutdown() noexcept {
  {
    MutexLock lock(mu_);
    if (shut_) return;
    shut_ = true;
  }
  cv_.notify_all();
  client_->stop();  // a request in progress ends with an error
}

SendOutcome OtlpHttpSender::send(const std::string& body) {
  SendOutcome out;
  const Clock::time_point deadline = Clock::now() + micros(config_.timeout);
  httplib::Headers headers;
  for (const auto& [k, v] : config_.headers) headers.emplace(k, v);
  const char* type =
      config_.protocol == OtlpProtocol::kHttpJson ? "application/json" : "application/x-protobuf";
  double backoff = config_.retry.initial_backoff;
  for (;;) {
    {
      MutexLock lock(mu_);
      if (shut_) {
        out.error = out.error.empty() ? "the exporter was shut down" : out.error;
        return out;
      }
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      if (out.error.empty()) out.error = "timed out";
      return out;
    }
    client_->set_connection_timeout(left);
    client_->set_read_timeout(left);
    client_->set_write_timeout(left);
    ++out.attempts;
    httplib::Result r = client_->Post(path_, headers, body, type);
    std::optional<double> server_wait;
    if (r) {
      out.status = r->status;
      if (r->status >= 200 && r->status < 300) {
        out.ok = true;
        out.error.clear();
        out.body = std::move(r->body);  // may hold a partial_success
        return out;
      }
      out.error = "HTTP " + std::to_string(r->status);
      if (!r->body.empty()) out.error += ": " + r->body.substr(0, 200);
      if (!retryable(r->status)) return out;
      server_wait = retry_after(*r);
    } else {
      out.status = 0;
      out.error = httplib::to_string(r.error());
    }
    if (out.attempts >= config_.retry.max_attempts) return out;
    // Full jitter over [backoff/2, backoff]; a Retry-After replaces it (capped).
    std::uniform_real_distribution<double> spread(0.5, 1.0);
    double pause =
        server_wait ? std::min(*server_wait, config_.retry.max_backoff) : backoff * spread(jitter_);
    backoff = std::min(backoff * config_.retry.multiplier, config_.retry.max_backoff);
    if (Clock::now() + micros(pause) >= deadline) {
      out.error += " (no time left for a retry within the export timeout)";
      return out;
    }
    if (!wait(micros(pause))) {
      out.error += " (shut down while waiting to retry)";
      return out;
    }
  }
}

}  // namespace asyncflow::detail
