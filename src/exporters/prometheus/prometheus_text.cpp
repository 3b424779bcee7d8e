// The Prometheus text exposition format 0.0.4 of a metrics snapshot (prometheus_exporter.hpp).
#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "asyncflow/exporters/prometheus/prometheus_exporter.hpp"

namespace asyncflow {

namespace {

void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    std::array<char, 32> buf{};
    const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
    out.append(buf.data(), r.ptr);
  }
}

std::string value_text(const FieldValue& v) {
  struct Text {
    std::string operator()(std::monostate) const { return {}; }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(std::int64_t i) const { return std::to_string(i); }
    std::string operator()(double d) const {
      std::string s;
      append_number(s, d);
      return s;
    }
    std::string operator()(const std::string& s) const { return s; }
  };
  return std::visit(Text{}, v);
}

/// A label value or HELP text escaped: backslash, newline, and (label values) double quote.
void append_escaped(std::string& out, std::string_view s, bool quote) {
  for (const char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

/// Labels as (valid name, value), sorted by name; attributes whose names clash once made valid
/// are joined with ';' in the order of their original keys (OTel's compatibility rule).
using Labels = std::vector<std::pair<std::string, std::string>>;

Labels labels_of(const Attributes& attributes) {
  std::vector<std::pair<std::string, const FieldValue*>> by_key;
  by_key.reserve(attributes.size());
  for (const auto& [k, v] : attributes) by_key.emplace_back(k, &v);
  std::sort(by_key.begin(), by_key.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  Labels out;
  for (const auto& [k, v] : by_key) {
    std::string name = prometheus_name(k, false);
    std::string value = value_text(*v);
    auto same =
        std::find_if(out.begin(), out.end(), [&](const auto& l) { return l.first == name; });
    if (same != out.end()) {
      same->second.append(1, ';').append(value);
    } else {
      out.emplace_back(std::move(name), std::move(value));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// name{labels[,le="bound"]} value
void append_sample(std::string& out, std::string_view name, const Labels& labels,
                   const std::string* le, double value) {
  out += name;
  if (!labels.empty() || le != nullptr) {
    out += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) out += ',';
      first = false;
      out += k;
      out += "=\"";
      append_escaped(out, v, true);
      out += '"';
    }
    if (le != nullptr) {
      if (!first) out += ',';
      out += "le=\"";
      out += *le;
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  append_number(out, value);
  out += '\n';
}

void append_family_header(std::string& out, std::string_view name, std::string_view help,
                          std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  append_escaped(out, help, false);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void append_histogram(std::string& out, const std::string& name, const MetricData& m) {
  std::vector<std::string> bounds;
  bounds.reserve(m.bounds.size() + 1);
  for (const double b : m.bounds) {
    std::string s;
    append_number(s, b);
    bounds.push_back(std::move(s));
  }
  bounds.emplace_back("+Inf");
  const std::string bucket = name + "_bucket";
  for (const MetricPoint& p : m.points) {
    const Labels labels = labels_of(p.attributes);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < bounds.size(); ++i) {
      // The last bucket is the count itself, whatever the bucket counts say.
      cumulative = i + 1 == bounds.size()
                       ? p.count
                       : cumulative + (i < p.bucket_counts.size() ? p.bucket_counts[i] : 0);
      append_sample(out, bucket, labels, &bounds[i], static_cast<double>(cumulative));
    }
    append_sample(out, name + "_sum", labels, nullptr, p.sum);
    append_sample(out, name + "_count", labels, nullptr, static_cast<double>(p.count));
  }
}

}  // namespace

std::string prometheus_name(std::string_view name, bool metric_name) {
  std::string out;
  out.reserve(name.size() + 1);
  if (!name.empty() && name.front() >= '0' && name.front() <= '9') out += '_';
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || (metric_name && c == ':');
    out += ok ? c : '_';
  }
  if (out.empty()) out.push_back('_');
  return out;
}

std::string prometheus_text(const MetricsSnapshot& snapshot, const Attributes& resource) {
  std::string out;
  if (!resource.empty()) {
    append_family_header(out, "target_info", "Target metadata", "gauge");
    append_sample(out, "target_info", labels_of(resource), nullptr, 1);
  }
  for (const MetricData& m : snapshot.metrics) {
    if (m.points.empty()) continue;
    std::string name = prometheus_name(m.name, true);
    switch (m.kind) {
      case InstrumentKind::kCounter:
        if (!name.ends_with("_total")) name += "_total";
        append_family_header(out, name, m.description, "counter");
        for (const MetricPoint& p : m.points) {
          append_sample(out, name, labels_of(p.attributes), nullptr, p.value);
        }
        break;
      case InstrumentKind::kUpDownCounter:
      case InstrumentKind::kGauge:
        append_family_header(out, name, m.description, "gauge");
        for (const MetricPoint& p : m.points) {
          append_sample(out, name, labels_of(p.attributes), nullptr, p.value);
        }
        break;
      case InstrumentKind::kHistogram:
        append_family_header(out, name, m.description, "histogram");
        append_histogram(out, name, m);
        break;
    }
  }
  return out;
}

}  // namespace asyncflow
