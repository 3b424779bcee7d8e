// Console exporters (ostream_exporter.hpp).
#include "asyncflow/exporters/ostream/ostream_exporter.hpp"

#include <array>
#include <charconv>
#include <ctime>
#include <iostream>
#include <variant>

#include "common/hex.hpp"

namespace asyncflow {

namespace {

std::string hex16(std::uint64_t v) {
  std::string s(16, '0');
  detail::write_hex16(s.data(), v);
  return s;
}

std::string number(double v) {
  std::array<char, 32> buf{};
  const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return std::string(buf.data(), r.ptr);
}

std::string seconds(std::int64_t ns) {
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%+.6fs", static_cast<double>(ns) / 1e9);
  return buf.data();
}

/// 2026-12-07T15:04:05.123456Z
std::string utc(std::int64_t epoch_ns) {
  const std::time_t secs = static_cast<std::time_t>(epoch_ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::array<char, 48> buf{};
  const std::size_t n = std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf.data() + n, buf.size() - n, ".%06lldZ",
                static_cast<long long>((epoch_ns % 1'000'000'000) / 1000));
  return buf.data();
}

void append_value(std::string& out, const FieldValue& v) {
  struct Text {
    std::string& out;
    void operator()(std::monostate) const { out += "null"; }
    void operator()(bool b) const { out += b ? "true" : "false"; }
    void operator()(std::int64_t i) const { out += std::to_string(i); }
    void operator()(double d) const { out += number(d); }
    void operator()(const std::string& s) const {
      out += '"';
      for (const char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (c == '\n') {
          out += "\\n";
          continue;
        }
        out += c;
      }
      out += '"';
    }
  };
  std::visit(Text{out}, v);
}

void append_attributes(std::string& out, const Attributes& attributes) {
  out += '{';
  bool first = true;
  for (const auto& [k, v] : attributes) {
    if (!first) out += ", ";
    first = false;
    out += k;
    out += '=';
    append_value(out, v);
  }
  out += '}';
}

}  // namespace

std::string console_text(const SpanData& span) {
  std::string out = "span " + span.name + ' ';
  out += hex16(span.trace_id.high) + hex16(span.trace_id.low) + '/' + hex16(span.span_id);
  out += span.parent_span_id != 0 ? " parent " + hex16(span.parent_span_id) : " root";
  out += ' ' + utc(span.start_ns) + ' ' + seconds(span.end_ns - span.start_ns) + ' ';
  out += to_string(span.status);
  if (span.status_description) out += " (" + *span.status_description + ')';
  out += ' ';
  append_attributes(out, span.attributes);
  if (!span.events.empty()) {
    out += "\n  events [";
    bool first = true;
    for (const SpanEvent& e : span.events) {
      if (!first) out += ", ";
      first = false;
      out += e.name + ' ' + seconds(e.time_ns - span.start_ns);
      if (!e.attributes.empty()) {
        out += ' ';
        append_attributes(out, e.attributes);
      }
    }
    out += ']';
  }
  return out;
}

std::string console_text(const MetricsSnapshot& snapshot) {
  std::string out;
  for (const MetricData& m : snapshot.metrics) {
    for (const MetricPoint& p : m.points) {
      out += "metric " + m.name + ' ' + std::string(to_string(m.kind)) + ' ';
      append_attributes(out, p.attributes);
      if (m.kind == InstrumentKind::kHistogram) {
        out += " count " + std::to_string(p.count) + " sum " + number(p.sum);
        if (p.count != 0) out += " min " + number(p.min) + " max " + number(p.max);
      } else {
        out += ' ' + number(p.value);
      }
      out += '\n';
    }
  }
  return out;
}

namespace detail {

ExportResult ConsoleStream::write(const std::string& text) noexcept {
  MutexLock lock(mu_);
  if (closed_) return ExportResult::kFailure;
  try {
    *out_ << text;
  } catch (...) {
    return ExportResult::kFailure;
  }
  return *out_ ? ExportResult::kSuccess : ExportResult::kFailure;
}

bool ConsoleStream::flush() noexcept {
  MutexLock lock(mu_);
  try {
    out_->flush();
  } catch (...) {
    return false;
  }
  return static_cast<bool>(*out_);
}

bool ConsoleStream::close() noexcept {
  const bool ok = flush();
  MutexLock lock(mu_);
  closed_ = true;
  return ok;
}

}  // namespace detail

OstreamSpanExporter::OstreamSpanExporter(std::ostream& out) : stream_(out) {}
OstreamSpanExporter::OstreamSpanExporter() : stream_(std::cout) {}

ExportResult OstreamSpanExporter::export_spans(std::span<const SpanRecord> batch) noexcept {
  std::string text;
  try {
    for (const SpanRecord& r : batch) {
      if (const auto* full = std::get_if<SpanData>(&r)) {
        text += console_text(*full);
      } else {
        text += console_text(to_span_data(r));
      }
      text += '\n';
    }
  } catch (...) {  // out of memory
    return ExportResult::kFailure;
  }
  return stream_.write(text);
}

bool OstreamSpanExporter::force_flush(std::chrono::microseconds /*timeout*/) noexcept {
  return stream_.flush();
}

bool OstreamSpanExporter::shutdown(std::chrono::microseconds /*timeout*/) noexcept {
  return stream_.close();
}

OstreamMetricExporter::OstreamMetricExporter(std::ostream& out) : stream_(out) {}
OstreamMetricExporter::OstreamMetricExporter() : stream_(std::cout) {}

ExportResult OstreamMetricExporter::export_metrics(const MetricsSnapshot& snapshot) noexcept {
  std::string text;
  try {
    text = console_text(snapshot);
  } catch (...) {  // out of memory
    return ExportResult::kFailure;
  }
  return stream_.write(text);
}

bool OstreamMetricExporter::force_flush(std::chrono::microseconds /*timeout*/) noexcept {
  return stream_.flush();
}

bool OstreamMetricExporter::shutdown(std::chrono::microseconds /*timeout*/) noexcept {
  return stream_.close();
}

}  // namespace asyncflow
