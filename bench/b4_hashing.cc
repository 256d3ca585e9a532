// B4: input hashing by the CLI (`deja submit --dry-run --input`), with a
// cold hash cache and then unchanged, against `xxhsum -H2` (XXH3-128, the
// same digest).
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/harness.h"

namespace deja::bench {

namespace fs = std::filesystem;
using deja::testing::RunCommand;

void RunB4(const Options& options, Report* report) {
  const uint64_t size = options.quick ? uint64_t{64} << 20 : uint64_t{1} << 30;
  const int reps = options.Reps(5, 1);
  const std::string xxhsum = "/usr/bin/xxhsum";
  Check(fs::exists(xxhsum), "no " + xxhsum + ": apt-get install xxhash (scripts/bench does)");
  TempDir dir(options.tmp_root, "b4");
  const std::string file = dir.path() + "/big.bin";
  WritePseudoRandomFile(file, 4, size);

  auto run_xxhsum = [&] {
    const double t0 = Now();
    auto r = RunCommand(xxhsum, {"-H2", file});
    const double t = Now() - t0;
    Check(r.exit_code == 0 && r.out.size() > 32, "xxhsum: " + r.err);
    return std::make_pair(t, r.out.substr(0, 32));
  };
  const std::string digest = run_xxhsum().second;  // and the page cache is warm
  // The CLI does not cache a digest of a file changed within the last 2 s.
  struct stat st;
  Check(stat(file.c_str(), &st) == 0, "stat " + file);
  const double changed = static_cast<double>(std::max(st.st_mtim.tv_sec, st.st_ctim.tv_sec));
  while (static_cast<double>(time(nullptr)) < changed + 3) absl::SleepFor(absl::Milliseconds(100));

  auto run_deja = [&](const std::string& cache, bool with_input) {
    std::vector<std::string> args = {"submit", "--dry-run", "--scheduler", "127.0.0.1:1"};
    if (with_input) args.insert(args.end(), {"--input", "big=" + file});
    args.insert(args.end(), {"--", "true"});
    const double t0 = Now();
    auto r = RunCommand(DEJA_CLI_BIN, args, {"DEJA_HASH_CACHE=" + cache});
    const double t = Now() - t0;
    Check(r.exit_code == 0, "deja submit --dry-run: " + r.out + r.err);
    Check(!with_input || r.out.find(digest) != std::string::npos,
          "deja's digest differs from xxhsum's " + digest + ": " + r.out);
    return t;
  };

  std::vector<double> xx_s, cold_s, warm_s, bare_s, cold_ratio, warm_ratio;
  for (int rep = 0; rep < reps; ++rep) {
    const std::string cache = absl::StrCat(dir.path(), "/hashes-", rep);
    double x = 0, c = 0;
    if (rep % 2 == 0) {
      x = run_xxhsum().first;
      c = run_deja(cache, true);
    } else {
      c = run_deja(cache, true);
      x = run_xxhsum().first;
    }
    Check(fs::exists(cache), "the cold run saved no hash cache at " + cache);
    const double w = run_deja(cache, true);
    const double b = run_deja(cache, false);
    xx_s.push_back(x);
    cold_s.push_back(c);
    warm_s.push_back(w);
    bare_s.push_back(b);
    cold_ratio.push_back(x / c);
    warm_ratio.push_back(c / w);
    Log(absl::StrCat("B4 rep ", rep, ": xxhsum ", FmtNum(x * 1e3, 1), " ms, deja cold ",
                     FmtNum(c * 1e3, 1), " ms, re-submit ", FmtNum(w * 1e3, 2),
                     " ms, no input ", FmtNum(b * 1e3, 2), " ms"));
  }
  const double gb = static_cast<double>(size) / 1e9;
  std::vector<double> cold_rate, xx_rate;
  for (double s : cold_s) cold_rate.push_back(gb / s);
  for (double s : xx_s) xx_rate.push_back(gb / s);
  const Summary rc = Summarize(cold_ratio), rw = Summarize(warm_ratio);
  const std::string what = size >= (uint64_t{1} << 30) ? absl::StrCat(size >> 30, " GiB")
                                                      : absl::StrCat(size >> 20, " MiB");
  report->Add({absl::StrCat("B4 hashing a ", what, " input, cold cache"),
               Fmt(Summarize(cold_rate), 2, "GB/s"),
               Fmt(Summarize(xx_rate), 2, "GB/s") + " `xxhsum -H2`", Fmt(rc, 2, "×"), "≥ 0.9×",
               rc.median >= 0.9});
  std::vector<double> warm_ms, cold_ms;
  for (double s : warm_s) warm_ms.push_back(s * 1e3);
  for (double s : cold_s) cold_ms.push_back(s * 1e3);
  report->Add({"B4 re-submitting it unchanged", Fmt(Summarize(warm_ms), 1, "ms"),
               Fmt(Summarize(cold_ms), 0, "ms") + " cold", Fmt(rw, 0, "× faster"), "≥ 100×",
               rw.median >= 100});
  std::vector<double> bare_ms;
  for (double s : bare_s) bare_ms.push_back(s * 1e3);
  report->Note(absl::StrCat(
      "**B4.** ", Reps(reps), ", each timing whole commands: `deja submit --dry-run "
      "--input big=FILE -- true` (hashes, uploads nothing, prints the spec) with "
      "`DEJA_HASH_CACHE` pointing to a fresh path (cold), then again with the cache it saved "
      "(re-submit), against `xxhsum -H2 FILE` (0.8.1, Debian's build), interleaved; the "
      "digests are checked equal. The file is in the page cache for every run (warm page "
      "cache, the same for both sides). The CLI with no input at all takes ",
      Fmt(Summarize(bare_ms), 1, "ms"), ": the floor of any re-submit."));
}

}  // namespace deja::bench
