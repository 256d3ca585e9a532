#include "common/metrics.h"

#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace deja {
namespace {

absl::string_view TypeName(Metrics::Type type) {
  switch (type) {
    case Metrics::Type::kCounter:
      return "counter";
    case Metrics::Type::kGauge:
      return "gauge";
    case Metrics::Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// A sample value: Go's float formatting as Prometheus reads it.
std::string Number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[32];
  // The shortest text that reads back as the same double ("0.1", "1e+20").
  auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, error == std::errc() ? end : buffer);
}

// Label values escape backslash, double quote and newline; help text
// backslash and newline.
std::string Escape(absl::string_view text, bool quotes) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quotes) {
      out += "\\\"";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// {a="x",b="y"} with `extra` (le="0.5") last; "" without labels.
std::string Labels(const std::vector<std::string>& names, const std::vector<std::string>& values,
                   const std::string& extra = "") {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    absl::StrAppend(&out, out.empty() ? "" : ",", names[i], "=\"", Escape(values[i], true), "\"");
  }
  if (!extra.empty()) absl::StrAppend(&out, out.empty() ? "" : ",", extra);
  return out.empty() ? "" : absl::StrCat("{", out, "}");
}

}  // namespace

std::vector<double> LatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
}

void Metrics::Declare(absl::string_view name, Type type, absl::string_view help,
                      std::vector<std::string> labels, std::vector<double> buckets) {
  absl::MutexLock lock(&mu_);
  if (families_.contains(name)) return;
  Family family{type, std::string(help), std::move(labels), std::move(buckets), {}};
  families_.emplace(std::string(name), std::move(family));
}

Metrics::Series& Metrics::SeriesOf(absl::string_view name, Type type,
                                   const std::vector<std::string>& label_values) {
  auto it = families_.find(name);
  DEJA_CHECK(it != families_.end(), absl::StrCat("metric ", name, " was not declared"));
  Family& family = it->second;
  DEJA_CHECK(family.type == type, absl::StrCat("metric ", name, " is a ", TypeName(family.type)));
  DEJA_CHECK(label_values.size() == family.labels.size(),
             absl::StrCat("metric ", name, " takes ", family.labels.size(), " labels"));
  Series& series = family.series[label_values];
  if (type == Type::kHistogram && series.per_bucket.empty()) {
    series.per_bucket.resize(family.buckets.size() + 1);
  }
  return series;
}

void Metrics::Add(absl::string_view name, const std::vector<std::string>& label_values,
                  double value) {
  absl::MutexLock lock(&mu_);
  SeriesOf(name, Type::kCounter, label_values).value += value;
}

void Metrics::Set(absl::string_view name, const std::vector<std::string>& label_values,
                  double value) {
  absl::MutexLock lock(&mu_);
  SeriesOf(name, Type::kGauge, label_values).value = value;
}

void Metrics::Observe(absl::string_view name, const std::vector<std::string>& label_values,
                      double value) {
  absl::MutexLock lock(&mu_);
  Series& series = SeriesOf(name, Type::kHistogram, label_values);
  const std::vector<double>& buckets = families_.find(name)->second.buckets;
  size_t i = 0;
  while (i < buckets.size() && value > buckets[i]) ++i;
  ++series.per_bucket[i];
  ++series.count;
  series.value += value;
}

void Metrics::Clear(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  auto it = families_.find(name);
  if (it != families_.end()) it->second.series.clear();
}

void Metrics::AddCollector(std::function<void(Metrics&)> collector) {
  absl::MutexLock lock(&collectors_mu_);
  collectors_.push_back(std::move(collector));
}

std::string Metrics::Render() {
  {
    absl::MutexLock lock(&collectors_mu_);
    for (auto& collector : collectors_) collector(*this);
  }
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const auto& [name, family] : families_) {
    absl::StrAppend(&out, "# HELP ", name, " ", Escape(family.help, false), "\n");
    absl::StrAppend(&out, "# TYPE ", name, " ", TypeName(family.type), "\n");
    for (const auto& [values, series] : family.series) {
      if (family.type != Type::kHistogram) {
        absl::StrAppend(&out, name, Labels(family.labels, values), " ", Number(series.value), "\n");
        continue;
      }
      uint64_t cumulative = 0;
      for (size_t i = 0; i <= family.buckets.size(); ++i) {
        cumulative += series.per_bucket[i];
        const std::string le = i < family.buckets.size() ? Number(family.buckets[i]) : "+Inf";
        absl::StrAppend(&out, name, "_bucket",
                        Labels(family.labels, values, absl::StrCat("le=\"", le, "\"")), " ",
                        cumulative, "\n");
      }
      absl::StrAppend(&out, name, "_sum", Labels(family.labels, values), " ", Number(series.value),
                      "\n");
      absl::StrAppend(&out, name, "_count", Labels(family.labels, values), " ", series.count, "\n");
    }
  }
  return out;
}

}  // namespace deja
