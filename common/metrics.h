// Metrics in the Prometheus text exposition format (version 0.0.4), what the
// daemons serve on /metrics (docs/operations.md lists them).
//
// A Metrics holds families of series: counters (only go up), gauges (set to
// a value) and histograms (observations counted into cumulative buckets).
// A family is declared once with its help text (and buckets); its series
// are told apart by label values, in the order of the label names declared.
// Collectors run at each Render, for gauges read off state when scraped
// (queue depth, disk free).
//
// Thread-safe: every method may be called from any thread. A collector
// runs on the thread calling Render, with no lock held.
#ifndef DEJA_COMMON_METRICS_H_
#define DEJA_COMMON_METRICS_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace deja {

class Metrics {
 public:
  enum class Type { kCounter, kGauge, kHistogram };

  // Declares a family; `labels` are its label names. Declaring a name
  // twice keeps the first declaration. A histogram's `buckets` are its
  // upper bounds, ascending (+Inf is added).
  void Declare(absl::string_view name, Type type, absl::string_view help,
               std::vector<std::string> labels = {}, std::vector<double> buckets = {});

  // On a declared family (a CHECK fails on an undeclared name, a wrong
  // type or a wrong number of label values).
  void Add(absl::string_view name, const std::vector<std::string>& label_values, double value = 1);
  void Set(absl::string_view name, const std::vector<std::string>& label_values, double value);
  void Observe(absl::string_view name, const std::vector<std::string>& label_values, double value);
  // Drops every series of a gauge family (before a collector sets the ones
  // that exist now: a worker that left must not linger).
  void Clear(absl::string_view name);

  // Runs before each Render, in the order added.
  void AddCollector(std::function<void(Metrics&)> collector);

  // The exposition text: families in name order, each with # HELP and
  // # TYPE, series in label order. Runs the collectors first.
  std::string Render();

 private:
  struct Series {
    double value = 0;                  // counter, gauge; a histogram's sum
    uint64_t count = 0;                // a histogram's observations
    std::vector<uint64_t> per_bucket;  // a histogram's, not cumulative
  };
  struct Family {
    Type type;
    std::string help;
    std::vector<std::string> labels;
    std::vector<double> buckets;
    std::map<std::vector<std::string>, Series> series;
  };

  Series& SeriesOf(absl::string_view name, Type type, const std::vector<std::string>& label_values)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::map<std::string, Family, std::less<>> families_ ABSL_GUARDED_BY(mu_);
  absl::Mutex collectors_mu_;
  std::vector<std::function<void(Metrics&)>> collectors_ ABSL_GUARDED_BY(collectors_mu_);
};

// Buckets for latencies in seconds: 1 ms to 5 min.
std::vector<double> LatencyBuckets();

}  // namespace deja

#endif  // DEJA_COMMON_METRICS_H_
