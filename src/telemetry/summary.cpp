// TelemetrySummary::to_json(): the reference's summary dict as JSON, in json.dumps' style
// (", " and ": " separators, floats as repr()), plus what the session lost.
#include <charconv>
#include <cmath>
#include <string>

#include "asyncflow/telemetry/manager.hpp"

namespace asyncflow {

namespace {

void append_string(std::string& o, std::string_view s) {
  o += '"';
  for (const char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\r': o += "\\r"; break;
      case '\t': o += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          o += "\\u00";
          o += kHex[(c >> 4) & 0xF];
          o += kHex[c & 0xF];
        } else {
          o += c;
        }
    }
  }
  o += '"';
}

void append_number(std::string& o, double v) {
  if (std::isnan(v)) {
    o += "NaN";
    return;
  }
  if (std::isinf(v)) {
    o += v > 0 ? "Infinity" : "-Infinity";
    return;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  const std::string_view text(buf, static_cast<std::size_t>(end - buf));
  o += text;
  if (text.find_first_of(".e") == std::string_view::npos) o += ".0";  // as Python's repr
}

void append_key(std::string& o, std::string_view key) {
  append_string(o, key);
  o += ": ";
}

}  // namespace

std::string TelemetrySummary::to_json() const {
  std::string o = "{";
  append_key(o, "session_id");
  append_string(o, session_id);
  o += ", ";
  append_key(o, "duration_seconds");
  append_number(o, duration_seconds);
  o += ", \"tasks\": {\"submitted\": " + std::to_string(tasks.submitted) +
       ", \"completed\": " + std::to_string(tasks.completed) +
       ", \"failed\": " + std::to_string(tasks.failed) +
       ", \"canceled\": " + std::to_string(tasks.canceled) +
       ", \"running\": " + std::to_string(tasks.running) + "}, \"duration\": {";
  if (duration) {
    const std::pair<const char*, double> stats[] = {
        {"total_seconds", duration->total_seconds}, {"mean_seconds", duration->mean_seconds},
        {"min_seconds", duration->min_seconds},     {"max_seconds", duration->max_seconds},
        {"p50_seconds", duration->p50_seconds},     {"p95_seconds", duration->p95_seconds}};
    o += "\"count\": " + std::to_string(duration->count);
    for (const auto& [k, v] : stats) {
      o += ", ";
      append_key(o, k);
      append_number(o, v);
    }
  }
  o += "}, \"resources\": {";
  bool first = true;
  for (const auto& [key, r] : resources) {
    if (!first) o += ", ";
    first = false;
    append_key(o, key);
    o += "{\"backend\": ";
    append_string(o, r.backend);
    o += ", \"node_id\": ";
    append_string(o, r.node_id);
    const std::pair<const char*, const std::optional<double>*> fields[] = {
        {"cpu_percent", &r.cpu_percent},           {"memory_percent", &r.memory_percent},
        {"gpu_percent", &r.gpu_percent},           {"disk_read_bytes", &r.disk_read_bytes},
        {"disk_write_bytes", &r.disk_write_bytes}, {"net_sent_bytes", &r.net_sent_bytes},
        {"net_recv_bytes", &r.net_recv_bytes}};
    for (const auto& [k, v] : fields) {
      o += ", ";
      append_key(o, k);
      if (*v) {
        append_number(o, **v);
      } else {
        o += "null";
      }
    }
    o += '}';
  }
  o += "}, \"usage\": {";
  if (usage) {
    o += "\"tasks\": " + std::to_string(usage->tasks) + ", ";
    append_key(o, "cpu_seconds");
    append_number(o, usage->cpu_seconds);
    o += ", \"read_bytes\": " + std::to_string(usage->read_bytes) +
         ", \"write_bytes\": " + std::to_string(usage->write_bytes) +
         ", \"max_peak_memory_bytes\": ";
    o += usage->max_peak_memory_bytes ? std::to_string(*usage->max_peak_memory_bytes) : "null";
  }
  o += "}, \"losses\": {\"events_dropped\": " + std::to_string(losses.events_dropped) +
       ", \"events_undelivered\": " + std::to_string(losses.events_undelivered) +
       ", \"records_not_exported\": " + std::to_string(losses.records_not_exported) +
       ", \"export_failures\": " + std::to_string(losses.export_failures) +
       ", \"subscriber_errors\": " + std::to_string(losses.subscriber_errors) + ", ";
  append_key(o, "last_error");
  if (losses.last_error.empty()) {
    o += "null";
  } else {
    append_string(o, losses.last_error);
  }
  o += "}}";
  return o;
}

}  // namespace asyncflow
