// deja-bench: Deja's benchmarks (issue 7), each a ratio against a baseline
// measured in the same run, interleaved with Deja's repetitions. Prints the
// markdown table and notes (to stdout and --out); scripts/bench adds the
// header with the date, machine and commit.
//
//   deja-bench [--quick] [--reps=N] [--only=B1,B3] [--out=FILE] [--tmp_root=DIR]
//
// Exit codes: 0 every benchmark ran (targets met or not: the table says);
// 1 a benchmark failed to run.
//
// The same binary runs the helper processes of the baselines and jobs:
// --mode=echo_server (B1), --mode=tcp_recv (B3), --mode=gen_tree (B3's job).
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/harness.h"

ABSL_FLAG(std::string, mode, "run", "run | echo_server | tcp_recv | gen_tree");
ABSL_FLAG(bool, quick, false, "Tiny sizes, 1 repetition: a smoke test");
ABSL_FLAG(int, reps, 0, "Repetitions of each benchmark (0: its default)");
ABSL_FLAG(std::string, only, "", "Comma-separated benchmarks to run (B1..B7); empty: all");
ABSL_FLAG(std::string, out, "", "Also write the markdown report here");
ABSL_FLAG(std::string, tmp_root, "", "Parent of every temp dir (default: $TMPDIR or /tmp)");
ABSL_FLAG(std::string, port_file, "", "Helper modes: where to write the bound port");
ABSL_FLAG(std::string, dir, "", "tcp_recv: destination dir; gen_tree: dir to fill");
ABSL_FLAG(int, files, 0, "gen_tree: number of files");
ABSL_FLAG(uint64_t, bytes, 0, "gen_tree: total bytes");

namespace {

namespace fs = std::filesystem;
using deja::bench::Log;
using deja::bench::Options;
using deja::bench::Report;
using deja::bench::TempDir;

int RunAll() {
  Options options;
  options.quick = absl::GetFlag(FLAGS_quick);
  options.reps = absl::GetFlag(FLAGS_reps);
  options.self = fs::read_symlink("/proc/self/exe").string();
  std::string parent = absl::GetFlag(FLAGS_tmp_root);
  if (parent.empty()) parent = getenv("TMPDIR") != nullptr ? getenv("TMPDIR") : "/tmp";
  TempDir root(parent, "deja-bench", /*remove=*/true);
  options.tmp_root = root.path();

  std::set<std::string> only;
  for (absl::string_view b : absl::StrSplit(absl::GetFlag(FLAGS_only), ',', absl::SkipEmpty())) {
    only.insert(std::string(b));
  }
  struct Bench {
    const char* name;
    void (*run)(const Options&, Report*);
  };
  const std::vector<Bench> benches = {{"B1", deja::bench::RunB1}, {"B2", deja::bench::RunB2},
                                      {"B3", deja::bench::RunB3}, {"B4", deja::bench::RunB4},
                                      {"B5", deja::bench::RunB5}, {"B6", deja::bench::RunB6},
                                      {"B7", deja::bench::RunB7}};
  Report report;
  int errors = 0;
  for (const Bench& b : benches) {
    if (!only.empty() && !only.contains(b.name)) continue;
    Log(absl::StrCat("== ", b.name));
    try {
      b.run(options, &report);
    } catch (const std::exception& e) {
      ++errors;
      Log(absl::StrCat(b.name, " FAILED: ", e.what()));
      report.Add({absl::StrCat(b.name, ": error"), e.what(), "", "", "", std::nullopt});
    }
  }
  std::string md = report.Markdown();
  std::cout << md << std::flush;
  if (std::string out = absl::GetFlag(FLAGS_out); !out.empty()) std::ofstream(out) << md;
  Log(absl::StrCat(report.Missed(), " target(s) missed, ", errors, " error(s)"));
  return errors > 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // The daemons and CLIs started here get their addresses from flags only.
  unsetenv("DEJA_SCHEDULER");
  unsetenv("DEJA_HASH_CACHE");
  const std::string mode = absl::GetFlag(FLAGS_mode);
  try {
    if (mode == "run") return RunAll();
    if (mode == "echo_server") {
      return deja::bench::EchoServerMain(absl::GetFlag(FLAGS_port_file), absl::GetFlag(FLAGS_dir));
    }
    if (mode == "tcp_recv") {
      return deja::bench::TcpReceiverMain(absl::GetFlag(FLAGS_dir), absl::GetFlag(FLAGS_port_file));
    }
    if (mode == "gen_tree") {
      return deja::bench::GenTreeMain(absl::GetFlag(FLAGS_dir), absl::GetFlag(FLAGS_files),
                                      absl::GetFlag(FLAGS_bytes));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deja-bench --mode=%s: %s\n", mode.c_str(), e.what());
    return 1;
  }
  std::fprintf(stderr, "deja-bench: unknown --mode=%s\n", mode.c_str());
  return 2;
}
