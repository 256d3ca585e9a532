// B4: input hashing by the CLI (`deja submit --dry-run --input`), with a
// cold hash cache and then unchanged, against `xxhsum -H2` (XXH3-128, the
// same digest).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <optional>
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

  // One `deja submit --dry-run --timing` command: its wall time, and the
  // input phase it reports on stderr (client/inputs.h, FormatInputTiming):
  // "deja: inputs: 152.301 ms; hashed 1 file, 1.0 GiB (...); 0 files, 0 B from
  // the hash cache".
  struct DejaRun {
    double seconds = 0;
    double input_ms = 0;
  };
  auto run_deja = [&](const std::string& cache, bool with_input, bool expect_cached) {
    std::vector<std::string> args = {"submit", "--dry-run", "--timing", "--scheduler",
                                     "127.0.0.1:1"};
    if (with_input) args.insert(args.end(), {"--input", "big=" + file});
    args.insert(args.end(), {"--", "true"});
    const double t0 = Now();
    auto r = RunCommand(DEJA_CLI_BIN, args, {"DEJA_HASH_CACHE=" + cache});
    DejaRun run;
    run.seconds = Now() - t0;
    Check(r.exit_code == 0, "deja submit --dry-run: " + r.out + r.err);
    Check(!with_input || r.out.find(digest) != std::string::npos,
          "deja's digest differs from xxhsum's " + digest + ": " + r.out);
    const std::string prefix = "deja: inputs: ";
    const size_t at = r.err.find(prefix);
    Check(at != std::string::npos, "no timing line from deja --timing: " + r.err);
    run.input_ms = std::strtod(r.err.c_str() + at + prefix.size(), nullptr);
    if (with_input) {
      const std::string expected = expect_cached ? "hashed 0 files" : "hashed 1 file,";
      Check(r.err.find(expected, at) != std::string::npos,
            "expected \"" + expected + "\" (hash cache " + (expect_cached ? "hit" : "miss") +
                "): " + r.err);
    }
    return run;
  };

  std::vector<double> xx_s, cold_s, warm_s, bare_s, cold_ratio, warm_ratio;
  std::vector<double> cold_in_ms, warm_in_ms, warm_in_ratio;
  for (int rep = 0; rep < reps; ++rep) {
    const std::string cache = absl::StrCat(dir.path(), "/hashes-", rep);
    double x = 0;
    DejaRun c;
    if (rep % 2 == 0) {
      x = run_xxhsum().first;
      c = run_deja(cache, true, false);
    } else {
      c = run_deja(cache, true, false);
      x = run_xxhsum().first;
    }
    Check(fs::exists(cache), "the cold run saved no hash cache at " + cache);
    const DejaRun w = run_deja(cache, true, true);
    const DejaRun b = run_deja(cache, false, false);
    xx_s.push_back(x);
    cold_s.push_back(c.seconds);
    warm_s.push_back(w.seconds);
    bare_s.push_back(b.seconds);
    cold_in_ms.push_back(c.input_ms);
    warm_in_ms.push_back(w.input_ms);
    cold_ratio.push_back(x / c.seconds);
    warm_ratio.push_back(c.seconds / w.seconds);
    // The line has µs resolution; a phase under 1 µs counts as 1 µs.
    warm_in_ratio.push_back(c.input_ms / std::max(w.input_ms, 0.001));
    Log(absl::StrCat("B4 rep ", rep, ": xxhsum ", FmtNum(x * 1e3, 1), " ms, deja cold ",
                     FmtNum(c.seconds * 1e3, 1), " ms (inputs ", FmtNum(c.input_ms, 1),
                     " ms), re-submit ", FmtNum(w.seconds * 1e3, 2), " ms (inputs ",
                     FmtNum(w.input_ms, 3), " ms), no input ", FmtNum(b.seconds * 1e3, 2), " ms"));
  }
  const double gb = static_cast<double>(size) / 1e9;
  std::vector<double> cold_rate, xx_rate, cold_in_rate;
  for (double s : cold_s) cold_rate.push_back(gb / s);
  for (double s : xx_s) xx_rate.push_back(gb / s);
  for (double ms : cold_in_ms) cold_in_rate.push_back(gb / (ms / 1e3));
  const Summary rc = Summarize(cold_ratio), rw = Summarize(warm_ratio),
                rwi = Summarize(warm_in_ratio);
  const std::string what = size >= (uint64_t{1} << 30) ? absl::StrCat(size >> 30, " GiB")
                                                       : absl::StrCat(size >> 20, " MiB");
  report->Add({absl::StrCat("B4 hashing a ", what, " input, cold cache (whole command)"),
               Fmt(Summarize(cold_rate), 2, "GB/s"),
               Fmt(Summarize(xx_rate), 2, "GB/s") + " `xxhsum -H2`", Fmt(rc, 2, "×"), "≥ 0.9×",
               rc.median >= 0.9});
  report->Add({"B4 re-submitting it unchanged: input phase", Fmt(Summarize(warm_in_ms), 3, "ms"),
               Fmt(Summarize(cold_in_ms), 0, "ms") + " cold input phase", Fmt(rwi, 0, "× faster"),
               "≥ 100×", rwi.median >= 100});
  std::vector<double> warm_ms, cold_ms;
  for (double s : warm_s) warm_ms.push_back(s * 1e3);
  for (double s : cold_s) cold_ms.push_back(s * 1e3);
  report->Add({"B4 re-submitting it unchanged: whole command", Fmt(Summarize(warm_ms), 1, "ms"),
               Fmt(Summarize(cold_ms), 0, "ms") + " cold whole command", Fmt(rw, 0, "× faster"),
               "—", std::nullopt});
  std::vector<double> bare_ms;
  for (double s : bare_s) bare_ms.push_back(s * 1e3);
  report->Note(absl::StrCat(
      "**B4.** ", Reps(reps),
      ". Each repetition runs `deja submit --dry-run --timing --input "
      "big=FILE -- true` (hashes, uploads nothing, prints the spec) with `DEJA_HASH_CACHE` "
      "pointing to a fresh path (cold), then again with the cache it saved (re-submit: the "
      "digest comes from the cache, checked on the `--timing` line), and `xxhsum -H2 FILE` "
      "(0.8.1, Debian's build), interleaved with the cold run; the digests are checked equal. "
      "The file is in the page cache for every run (warm page cache, the same for both sides). "
      "*Cold vs xxhsum* compares whole commands, process start-up included on both sides "
      "(xxhsum is a whole process too). *Input phase* is what `deja --timing` reports: the wall "
      "time from loading the hash cache to saving it, i.e. stat'ing and hashing the input or "
      "taking its digest from the cache (cold: ",
      Fmt(Summarize(cold_in_rate), 2, "GB/s"),
      "), without process start-up, argument parsing and printing the spec; that is the part "
      "of a submit that depends on the input, and the row the target applies to. *Whole "
      "command* is the wall time of each command, for context: a re-submit cannot go below the "
      "CLI's start-up, and the CLI with no input at all takes ",
      Fmt(Summarize(bare_ms), 1, "ms"), "."));
}

}  // namespace deja::bench
