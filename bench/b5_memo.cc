// B5: memo lookup latency with a small and a large index, measured as the
// latency of SchedulerCore::Submit of memo hits (the scheduler's logic with
// no gRPC and no RocksDB), and the deja-scheduler RSS after loading a store
// of the large size.
#include <malloc.h>

#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/harness.h"
#include "common/hash.h"
#include "common/job_identity.h"
#include "common/job_spec.h"
#include "scheduler/core/scheduler_core.h"
#include "scheduler/store/rocks_store.h"

namespace deja::bench {
namespace {

namespace fs = std::filesystem;
using deja::v1::Job;
using deja::v1::MemoEntry;

// The spec of synthetic job `i`: 100 apps, a param that makes each distinct.
deja::v1::JobSpec SynthSpec(uint64_t i) {
  deja::v1::JobSpec spec;
  spec.set_project("bench");
  spec.mutable_app()->set_name(absl::StrCat("app-", i % 100));
  spec.mutable_app()->set_version("1");
  for (const char* w : {"/usr/local/bin/step", "--input", "${params.i}"}) {
    spec.mutable_app()->add_command(w);
  }
  (*spec.mutable_params())["i"] = absl::StrCat(i);
  NormalizeJobSpec(&spec);
  return spec;
}

// A finished job as the scheduler stores it, with a 1-file manifest.
Job SynthJob(uint64_t i, int64_t now_ms) {
  Job job;
  job.set_job_id(JobIdFromSeq(i + 1));
  *job.mutable_spec() = SynthSpec(i);
  job.mutable_spec()->set_request_id(HashBytes(absl::StrCat("request-", i)).substr(0, 16));
  job.set_job_hash(JobHash(job.spec()));
  job.set_state(deja::v1::SUCCEEDED);
  job.set_attempt(1);
  job.set_worker_id("w1");
  job.set_created_at_ms(now_ms - 60'000);
  job.set_started_at_ms(now_ms - 59'000);
  job.set_finished_at_ms(now_ms - 1'000);
  job.set_exit_code(0);
  job.set_run_time_ms(58'000);
  // A one-file workspace: its manifest is a blob of about 60 bytes.
  job.mutable_manifest()->set_digest(HashBytes(absl::StrCat("manifest-", i)));
  job.mutable_manifest()->set_size(60);
  job.mutable_manifest()->set_files(1);
  job.mutable_manifest()->set_bytes(1000 + i % 1000);
  job.set_expires_at_ms(now_ms + 24 * 3600 * 1000);
  return job;
}

MemoEntry SynthEntry(const Job& job) {
  MemoEntry entry;
  entry.set_project(job.spec().project());
  entry.set_job_hash(job.job_hash());
  entry.set_app_name(job.spec().app().name());
  entry.set_source_job_id(job.job_id());
  entry.set_worker_id(job.worker_id());
  *entry.mutable_manifest() = job.manifest();
  entry.set_run_time_ms(job.run_time_ms());
  entry.set_created_at_ms(job.finished_at_ms());
  entry.set_expires_at_ms(job.expires_at_ms());
  return entry;
}

size_t HeapBytes() {
  struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

void WriteStore(const std::string& dir, uint64_t entries) {
  std::unique_ptr<RocksStore> store = Must(RocksStore::Open(dir), "open " + dir);
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  const uint64_t batch = 10'000;
  for (uint64_t start = 0; start < entries; start += batch) {
    Effects fx;
    for (uint64_t i = start; i < std::min(entries, start + batch); ++i) {
      Job job = SynthJob(i, now_ms);
      fx.memo_puts[MemoId(job.spec().project(), job.job_hash())] = SynthEntry(job);
      fx.requests[RequestKey(job.spec().project(), job.spec().request_id())] = job.job_id();
      fx.jobs[job.job_id()] = std::move(job);
    }
    Must(store->Commit(fx), "commit synthetic records");
  }
  // Written in bulk, the store would be read mid-compaction (hundreds of
  // level-0 files); a scheduler's store grows over days and is compacted.
  Must(store->CompactAll(), "compact " + dir);
}

struct Loaded {
  std::unique_ptr<RocksStore> store;  // destroyed after the core
  std::unique_ptr<SchedulerCore> core;
  double heap_bytes_each = 0, load_s = 0;
};

// A core over the store in `dir` (written by WriteStore), as deja-scheduler
// builds it: memo hits read their entries from RocksDB.
Loaded LoadCore(const std::string& dir, uint64_t entries) {
  Loaded out;
  const absl::Time now = absl::Now();
  const size_t h0 = HeapBytes();
  const double t0 = Now();
  out.store = Must(RocksStore::Open(dir), "open " + dir);
  out.core = std::make_unique<SchedulerCore>(CoreOptions{}, nullptr, out.store.get());
  Must(out.core->LoadFromStore(now), "load " + dir);
  out.load_s = Now() - t0;
  const size_t h1 = HeapBytes();
  out.heap_bytes_each =
      (static_cast<double>(h1) - static_cast<double>(h0)) / static_cast<double>(entries);
  // The holder of every entry, connected, with slots for every hit.
  deja::v1::Register reg;
  reg.set_worker_id("w1");
  reg.set_slots(1u << 30);
  reg.set_advertise("127.0.0.1:1");
  Effects fx;
  Must(out.core->WorkerConnected(reg, 1, now, &fx), "connect w1");
  return out;
}

// Latencies (µs) of `n` Submits of random memo hits.
std::vector<double> TimeHits(SchedulerCore& core, uint64_t entries, int n, std::mt19937_64& rng,
                             const std::string& tag) {
  std::vector<deja::v1::JobSpec> specs;
  specs.reserve(n);
  for (int k = 0; k < n; ++k) {
    specs.push_back(SynthSpec(rng() % entries));
    specs.back().set_request_id(absl::StrCat(tag, "-", k));
  }
  std::vector<double> lat;
  lat.reserve(n);
  for (int k = 0; k < n; ++k) {
    Effects fx;
    const absl::Time now = absl::Now();
    const double t0 = Now();
    absl::StatusOr<deja::v1::SubmitResponse> r = core.Submit(std::move(specs[k]), now, &fx);
    const double t = Now() - t0;
    Check(r.ok() && r->reused(), "a B5 submit was not a memo hit: " +
                                     (r.ok() ? r->job().message() : r.status().ToString()));
    lat.push_back(t * 1e6);
  }
  return lat;
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) total += e.file_size();
  }
  return total;
}

struct SchedulerMemory {
  double rss_mb = 0, peak_mb = 0, start_s = 0, store_mb = 0;
};

// Starts deja-scheduler on the store in `data` (WriteStore; no other
// process has it open) and reads its memory once it serves.
SchedulerMemory MeasureScheduler(const Options& options, const std::string& data,
                                 uint64_t entries) {
  SchedulerMemory m;
  m.store_mb = static_cast<double>(DirBytes(data)) / 1e6;
  BenchCluster cluster(options.tmp_root, "b5-sched", {}, data, absl::Seconds(600));
  m.start_s = cluster.start_seconds();
  absl::SleepFor(absl::Milliseconds(500));  // settle
  m.rss_mb = static_cast<double>(deja::testing::RssKb(cluster.scheduler_pid())) / 1024;
  m.peak_mb = static_cast<double>(deja::testing::PeakRssKb(cluster.scheduler_pid())) / 1024;
  auto stats = cluster.client().Stats("bench", 0);
  Must(stats.status(), "stats of the loaded scheduler");
  Check(stats->total().jobs() == entries, "the scheduler did not load every job");
  return m;
}

}  // namespace

void RunB5(const Options& options, Report* report) {
  const uint64_t small = 1'000;
  const uint64_t large = options.quick ? 10'000 : 1'000'000;
  const int n = options.quick ? 2'000 : 20'000;
  const int reps = options.Reps(5, 1);
  std::mt19937_64 rng(5);

  TempDir small_dir(options.tmp_root, "b5-small"), large_dir(options.tmp_root, "b5-large");
  const std::string small_data = small_dir.path() + "/data";
  const std::string large_data = large_dir.path() + "/data";
  WriteStore(small_data, small);
  const double tw = Now();
  WriteStore(large_data, large);
  Log(absl::StrCat("B5 wrote ", large, " jobs + memo entries to RocksDB in ", FmtNum(Now() - tw, 1),
                   " s"));
  Log(absl::StrCat("B5 loading ", large, " jobs + memo entries into a SchedulerCore"));
  Loaded big = LoadCore(large_data, large);
  Log(absl::StrCat("B5 loaded in ", FmtNum(big.load_s, 1), " s"));
  std::vector<double> s50, s99, l50, l99, ratio99, ratio50;
  // Every hit adds a job: the small case gets a fresh core every
  // kSmallChunk hits, so that it stays small.
  constexpr int kSmallChunk = 2'000;
  auto time_small = [&](int rep) {
    std::vector<double> all;
    for (int done = 0; done < n; done += kSmallChunk) {
      Loaded fresh = LoadCore(small_data, small);
      std::vector<double> part = TimeHits(*fresh.core, small, std::min(kSmallChunk, n - done), rng,
                                          absl::StrCat("s", rep, "-", done));
      all.insert(all.end(), part.begin(), part.end());
    }
    return all;
  };
  for (int rep = 0; rep < reps; ++rep) {
    std::vector<double> ls, ll;
    if (rep % 2 == 0) {
      ls = time_small(rep);
      ll = TimeHits(*big.core, large, n, rng, absl::StrCat("l", rep));
    } else {
      ll = TimeHits(*big.core, large, n, rng, absl::StrCat("l", rep));
      ls = time_small(rep);
    }
    s50.push_back(Percentile(ls, 50));
    s99.push_back(Percentile(ls, 99));
    l50.push_back(Percentile(ll, 50));
    l99.push_back(Percentile(ll, 99));
    ratio99.push_back(l99.back() / s99.back());
    ratio50.push_back(l50.back() / s50.back());
    Log(absl::StrCat("B5 rep ", rep, ": p50/p99 ", FmtNum(s50.back(), 1), "/",
                     FmtNum(s99.back(), 1), " µs at ", small, ", ", FmtNum(l50.back(), 1), "/",
                     FmtNum(l99.back(), 1), " µs at ", large));
  }
  const double heap_each = big.heap_bytes_each, load_s = big.load_s;
  big = Loaded();  // closes the store: deja-scheduler opens it next

  const std::string large_name =
      large >= 1'000'000 ? absl::StrCat(large / 1'000'000, "M") : absl::StrCat(large / 1'000, "k");
  const Summary r99 = Summarize(ratio99);
  report->Add({absl::StrCat("B5 memo hit in SchedulerCore::Submit, p99 at ", large_name),
               Fmt(Summarize(l99), 1, "µs"), Fmt(Summarize(s99), 1, "µs") + " at 1k",
               Fmt(r99, 2, "×"), "≤ 2×", r99.median <= 2});
  report->Add({absl::StrCat("B5 same, p50 at ", large_name), Fmt(Summarize(l50), 1, "µs"),
               Fmt(Summarize(s50), 1, "µs") + " at 1k", Fmt(Summarize(ratio50), 2, "×"), "—",
               std::nullopt});

  const SchedulerMemory at_small = MeasureScheduler(options, small_data, small);
  const SchedulerMemory at_large = MeasureScheduler(options, large_data, large);
  report->Add({absl::StrCat("B5 deja-scheduler RSS with ", large_name, " jobs + memo entries"),
               FmtNum(at_large.rss_mb, 0) + " MB", FmtNum(at_small.rss_mb, 0) + " MB at 1k", "—",
               "≤ 256 MB", at_large.rss_mb <= 256});
  report->Note(absl::StrCat(
      "**B5.** Lookup: ", Reps(reps), " of ", n,
      " `SchedulerCore::Submit` calls (timed one by one, steady clock; `now` from absl::Now) "
      "of specs drawn at random among the loaded ones, each a memo hit dispatched at once "
      "(one connected worker with free slots); synthetic SUCCEEDED jobs with request ids and "
      "their memo entries (1-file manifests, 100 apps) are written with `RocksStore::Commit` "
      "and compacted (`RocksStore::CompactAll`), "
      "and the core is loaded from that store as deja-scheduler does (`LoadFromStore`; a hit "
      "reads its full entry from RocksDB) — ",
      large_name, " once, 1k afresh every 2000 hits (each hit adds a job), interleaved. Loading ",
      large_name, " took ", FmtNum(load_s, 1),
      " s in process; heap (core + RocksDB) per record after it ", FmtNum(heap_each, 0),
      " B (mallinfo2). RSS: `deja-scheduler` started on the same store (",
      FmtNum(at_large.store_mb, 0),
      " MB on disk): VmRSS "
      "once it serves (",
      FmtNum(at_large.start_s, 1), " s to load and listen), peak VmHWM ",
      FmtNum(at_large.peak_mb, 0), " MB; at 1k VmRSS ", FmtNum(at_small.rss_mb, 0),
      " MB. One measurement each."));
}

}  // namespace deja::bench
