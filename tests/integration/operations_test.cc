// Operations: the daemons' /metrics (checked by Prometheus' promtool), the
// scheduler's job events in its log (text and JSON), --version and --help.
// Real daemons on port 0; HTTP with cpp-httplib's client.
#include <httplib.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fakes/file_util.h"
#include "tests/integration/cluster.h"

namespace deja::testing {
namespace {

namespace fs = std::filesystem;
using deja::v1::JobSpec;
using ::testing::HasSubstr;
using ::testing::Not;

JobSpec Shell(const std::string& script) {
  JobSpec spec;
  spec.set_project("ops");
  spec.mutable_app()->set_name("sh");
  for (const char* w : {"sh", "-c"}) spec.mutable_app()->add_command(w);
  spec.mutable_app()->add_command(script);
  return spec;
}

// Runs `script` once, then again (a reuse); returns both job ids.
std::pair<std::string, std::string> RunTwice(Cluster& c, const std::string& script) {
  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i) {
    auto submitted = c.client().Submit(Shell(script));
    EXPECT_TRUE(submitted.ok()) << submitted.status();
    if (!submitted.ok()) return {};
    auto job = c.client().WaitForJob(submitted->job().job_id(), absl::Seconds(30));
    EXPECT_TRUE(job.ok()) << job.status();
    if (job.ok()) {
      EXPECT_EQ(job->state(), deja::v1::SUCCEEDED) << job->message();
    }
    ids.push_back(submitted->job().job_id());
  }
  return {ids[0], ids[1]};
}

int PortIn(const std::string& file) {
  std::string text;
  EXPECT_TRUE(PollUntil([&] {
    text = ReadFile(file);
    return !text.empty();
  })) << file;
  return text.empty() ? 0 : std::stoi(text);
}

// GET http://127.0.0.1:port/path, with `token` as a bearer token if given.
httplib::Result Get(int port, const std::string& path, const std::string& token = "") {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(10, 0);
  httplib::Headers headers;
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  return client.Get(path.c_str(), headers);
}

// The value of the sample `series` (name and labels exactly as exposed).
std::optional<double> Sample(const std::string& exposition, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(exposition, '\n')) {
    if (absl::ConsumePrefix(&line, series) && absl::ConsumePrefix(&line, " ")) {
      return std::stod(std::string(line));
    }
  }
  return std::nullopt;
}

// `promtool check metrics` of `exposition`: its exit code and output.
CommandResult Promtool(const std::string& root, const std::string& exposition) {
  const std::string file = root + "/metrics.txt";
  WriteFile(file, exposition);
  return RunCommand("/bin/sh", {"-c", "promtool check metrics < '" + file + "' 2>&1"});
}

TEST(MetricsTest, BothDaemonsServePrometheusMetricsBehindTheToken) {
  if (!Installed("promtool")) GTEST_SKIP() << "promtool not found (Debian's prometheus package)";
  TempDir files("deja-ops");
  const std::string port_file = files.path() + "/scheduler-http.port";
  Cluster c({"--http_listen=127.0.0.1:0", "--http_port_file=" + port_file});
  const std::string worker_port_file = c.root() + "/worker-http.port";
  c.StartWorker("w1", 1, {"--http_listen=127.0.0.1:0", "--http_port_file=" + worker_port_file});
  ASSERT_TRUE(c.WaitForWorkers(1));
  auto [first, second] = RunTwice(c, "echo metrics > out.txt; sleep 0.2");
  const int port = PortIn(port_file);
  ASSERT_GT(port, 0);

  // No token, or a token that is not one: refused.
  auto anonymous = Get(port, "/metrics");
  ASSERT_TRUE(anonymous) << httplib::to_string(anonymous.error());
  EXPECT_EQ(anonymous->status, 401);
  auto forged = Get(port, "/metrics", "t99.not-a-secret");
  ASSERT_TRUE(forged);
  EXPECT_EQ(forged->status, 401);

  const std::string admin(absl::StripAsciiWhitespace(ReadFile(c.access().AdminTokenFile())));
  auto scraped = Get(port, "/metrics", admin);
  ASSERT_TRUE(scraped);
  ASSERT_EQ(scraped->status, 200) << scraped->body;
  EXPECT_THAT(scraped->get_header_value("Content-Type"), HasSubstr("text/plain; version=0.0.4"));
  const std::string& text = scraped->body;
  CommandResult lint = Promtool(c.root(), text);
  EXPECT_EQ(lint.exit_code, 0) << lint.out << "\n" << text;

  EXPECT_EQ(Sample(text, "deja_jobs_submitted_total{project=\"ops\"}"), 2) << text;
  EXPECT_EQ(Sample(text, "deja_jobs_finished_total{project=\"ops\",outcome=\"succeeded\"}"), 1);
  EXPECT_EQ(Sample(text, "deja_jobs_finished_total{project=\"ops\",outcome=\"reused\"}"), 1);
  EXPECT_EQ(Sample(text, "deja_memo_hits_total{project=\"ops\",app=\"sh\"}"), 1);
  EXPECT_EQ(Sample(text, "deja_memo_misses_total{project=\"ops\",app=\"sh\"}"), 1);
  EXPECT_GT(Sample(text, "deja_time_saved_seconds_total{project=\"ops\"}").value_or(0), 0.1);
  EXPECT_EQ(Sample(text, "deja_workers_connected"), 1);
  EXPECT_EQ(Sample(text, "deja_worker_slots{kind=\"total\"}"), 1);
  EXPECT_EQ(Sample(text, "deja_queue_depth"), 0);
  EXPECT_EQ(Sample(text, "deja_submit_to_start_seconds_count"), 1);
  EXPECT_GE(Sample(text, "deja_dispatch_latency_seconds_count").value_or(0), 1);
  EXPECT_GT(Sample(text, "deja_store_commit_seconds_count{synced=\"true\"}").value_or(0), 0);
  EXPECT_GT(Sample(text, "deja_store_bytes").value_or(0), 0);
  EXPECT_GT(Sample(text, "deja_worker_disk_free_bytes{worker=\"w1\"}").value_or(0), 0);
  EXPECT_THAT(text, HasSubstr("deja_build_info{version=\""));

  // The worker's: how the reuse copied the workspace, and its disk.
  const int worker_port = PortIn(worker_port_file);
  auto worker = Get(worker_port, "/metrics");
  ASSERT_TRUE(worker);
  ASSERT_EQ(worker->status, 200);
  CommandResult worker_lint = Promtool(c.root(), worker->body);
  EXPECT_EQ(worker_lint.exit_code, 0) << worker_lint.out << "\n" << worker->body;
  double copied = 0;
  for (const char* method : {"reflink", "hardlink", "copy"}) {
    copied += Sample(worker->body,
                     absl::StrCat("deja_worker_copied_bytes_total{method=\"", method, "\"}"))
                  .value_or(0);
  }
  EXPECT_GT(copied, 0) << worker->body;
  EXPECT_GT(Sample(worker->body, "deja_worker_disk_free_bytes").value_or(0), 0);
  if (HasFailure()) c.DumpLogs();
}

// One line per job event, each starting with an RFC 3339 UTC timestamp.
TEST(EventLogTest, TheSchedulerLogsEachJobEventWithItsTime) {
  Cluster c;
  c.StartWorker("w1");
  ASSERT_TRUE(c.WaitForWorkers(1));
  auto [first, second] = RunTwice(c, "echo events");
  const std::string stamp = R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z deja-scheduler: )";
  std::vector<std::string> expected = {
      absl::StrCat("job ", first, " submitted project=ops app=sh"),
      absl::StrCat("job ", first, " assigned worker=w1 attempt=1"),
      absl::StrCat("job ", first, " started worker=w1 attempt=1"),
      absl::StrCat("job ", first, " finished state=SUCCEEDED exit=\"exit 0\""),
      absl::StrCat("job ", second, " submitted project=ops app=sh"),
      absl::StrCat("job ", second, " reused state=SUCCEEDED reused_from=", first),
  };
  std::string log;
  // The last lines are written after the commit the client heard of.
  ASSERT_TRUE(PollUntil([&] {
    log = ReadFile(c.root() + "/scheduler.log");
    return absl::StrContains(log, absl::StrCat("job ", second, " reused"));
  })) << log;
  for (const std::string& event : expected) {
    EXPECT_TRUE(std::regex_search(log, std::regex("(^|\n)" + stamp + event)))
        << "no line \"" << event << "\" in\n"
        << log;
  }
}

TEST(EventLogTest, JsonLogsAreOneObjectPerLine) {
  Cluster c({"--log_format=json"});
  c.StartWorker("w1", 1, {"--log_format=json"});
  ASSERT_TRUE(c.WaitForWorkers(1));
  auto [first, second] = RunTwice(c, "echo json");
  std::string log;
  ASSERT_TRUE(PollUntil([&] {
    log = ReadFile(c.root() + "/scheduler.log");
    return absl::StrContains(log, "\"event\":\"reused\"");
  })) << log;
  int job_events = 0;
  for (const std::string& file : {c.root() + "/scheduler.log", c.root() + "/worker-w1.log"}) {
    for (absl::string_view line : absl::StrSplit(ReadFile(file), '\n', absl::SkipEmpty())) {
      nlohmann::json object = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      ASSERT_TRUE(object.is_object()) << file << ": not JSON: " << line;
      EXPECT_TRUE(object.contains("time") && object.contains("daemon") && object.contains("msg"))
          << line;
      if (object.value("job", "") == second && object.value("event", "") == "reused") {
        EXPECT_EQ(object.value("reused_from", ""), first);
        ++job_events;
      }
    }
  }
  EXPECT_EQ(job_events, 1);
}

TEST(HealthTest, TheSchedulerAndEachWorkerAnswerTheGrpcHealthCheck) {
  Cluster c;
  c.StartWorker("w1");
  ASSERT_TRUE(c.WaitForWorkers(1));
  CommandResult all = c.Cli({"health"});
  EXPECT_EQ(all.exit_code, 0) << all.err;
  EXPECT_THAT(all.out, HasSubstr("scheduler: SERVING\n"));
  EXPECT_THAT(all.out, HasSubstr("worker w1: connected, 0 of 1 slots busy"));

  // A worker's peer port takes only callers with a worker certificate: with
  // the worker's own (as Compose's health check does), it answers.
  auto workers = c.client().ListWorkers();
  ASSERT_TRUE(workers.ok() && workers->size() == 1) << workers.status();
  const std::string peer = workers->front().advertise();
  const std::string identity = c.WorkDir("w1") + "/meta/tls/worker.pem";
  CommandResult worker = c.Cli({"health", peer, "--identity", identity});
  EXPECT_EQ(worker.exit_code, 0) << worker.err;
  EXPECT_EQ(worker.out, peer + ": SERVING\n");
  CommandResult stranger = c.Cli({"health", peer, "--timeout", "3"});
  EXPECT_EQ(stranger.exit_code, 1) << stranger.out;
  CommandResult json = c.Cli({"health", peer, "--identity", identity, "--json"});
  EXPECT_EQ(json.out, "{\"target\":\"" + peer + "\",\"status\":\"SERVING\"}\n");

  // Nothing there: exit 1, saying so.
  c.StopScheduler();
  CommandResult down = c.Cli({"health", "--timeout", "2"});
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_THAT(down.err, HasSubstr("cannot reach scheduler"));
  CommandResult bad = c.Cli({"health", peer, "--identity", c.root() + "/none.pem"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--identity"));
}

TEST(LiveLogsTest, RunShowsTheStderrOfAFailureAndStreamsWithFollow) {
  Cluster c;
  c.StartWorker("w1");
  ASSERT_TRUE(c.WaitForWorkers(1));
  CommandResult failed =
      c.Cli({"run", "--", "sh", "-c", "echo starting; echo 'no such file: x.csv' >&2; exit 3"});
  EXPECT_EQ(failed.exit_code, 3);
  EXPECT_THAT(failed.out, HasSubstr("FAILED exit 3\n"));
  EXPECT_THAT(failed.err, HasSubstr("stderr (deja logs j1 --stderr):\n  no such file: x.csv\n"));

  CommandResult killed = c.Cli({"run", "--", "sh", "-c", "kill -9 $$"});
  EXPECT_EQ(killed.exit_code, 128 + 9);
  EXPECT_THAT(killed.out, HasSubstr("FAILED killed by signal 9 (SIGKILL)\n"));

  // --follow: the job's output is ours, the state lines go to stderr.
  CommandResult followed =
      c.Cli({"run", "--follow", "--", "sh", "-c", "echo out; echo err >&2; echo more"});
  EXPECT_EQ(followed.exit_code, 0) << followed.err;
  EXPECT_EQ(followed.out, "out\nmore\n");
  EXPECT_THAT(followed.err, HasSubstr("err\n"));
  EXPECT_THAT(followed.err, HasSubstr("SUCCEEDED exit 0"));
}

TEST(LiveLogsTest, LogsFollowPrintsWhatARunningJobWritesUntilItEnds) {
  Cluster c;
  c.StartWorker("w1");
  ASSERT_TRUE(c.WaitForWorkers(1));
  const std::string go = c.root() + "/go";
  auto submitted = c.client().Submit(Shell("echo first; while [ ! -e '" + go +
                                           "' ]; do sleep 0.05; done; echo second; echo err >&2"));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  const std::string id = submitted->job().job_id();
  std::vector<std::string> args = {"logs", "-f", id};
  const std::string log = c.root() + "/follow.out";
  std::vector<std::string> env = c.CliEnv();
  // The follower runs beside the test, which sees what it printed so far.
  std::vector<std::string> command = {"/usr/bin/env"};
  command.insert(command.end(), env.begin(), env.end());
  command.push_back(DEJA_CLI_BIN);
  command.insert(command.end(), args.begin(), args.end());
  Process follower(command[0], std::vector<std::string>(command.begin() + 1, command.end()), log);
  ASSERT_TRUE(PollUntil([&] { return ReadFile(log) == "first\n"; })) << ReadFile(log);
  WriteFile(go, "");
  EXPECT_EQ(follower.Wait(), 0);
  EXPECT_EQ(ReadFile(log), "first\nsecond\n");

  CommandResult json = c.Cli({"logs", id, "--stderr", "--json"});
  EXPECT_EQ(json.out,
            "{\"job_id\":\"" + id + "\",\"stream\":\"stderr\",\"offset\":0,\"data\":\"err\\n\"}\n");
}

// How many jobs a `deja ls` table lists (its rows start with the job id;
// footnotes follow, "j4 cannot be placed: ...").
size_t Rows(const std::string& out) {
  size_t rows = 0;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (absl::StartsWith(line, "j") && !absl::StrContains(line, "cannot be placed")) ++rows;
  }
  return rows;
}

std::string CursorIn(const std::string& err) {
  const std::string marker = "--cursor ";
  const size_t at = err.find(marker);
  if (at == std::string::npos) return "";
  return err.substr(at + marker.size(), err.find('\n', at) - at - marker.size());
}

TEST(ListTest, LsPagesFiltersAndCancelTakesAFilter) {
  Cluster c;  // no worker: every job stays QUEUED
  for (int i = 0; i < 5; ++i) {
    JobSpec spec = Shell(absl::StrCat("echo ", i));
    spec.mutable_app()->set_name(i < 3 ? "a" : "b");
    if (i % 2 == 0) (*spec.mutable_labels())["batch"] = "even";
    ASSERT_TRUE(c.client().Submit(spec).ok());
  }
  CommandResult first = c.Cli({"ls", "--limit", "2"});
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(Rows(first.out), 2u) << first.out;
  EXPECT_THAT(first.out, HasSubstr("j5"));
  const std::string cursor = CursorIn(first.err);
  ASSERT_FALSE(cursor.empty()) << first.err;
  CommandResult second = c.Cli({"ls", "--limit", "2", "--cursor", cursor});
  EXPECT_EQ(Rows(second.out), 2u) << second.out;
  EXPECT_THAT(second.out, HasSubstr("j3"));
  CommandResult last = c.Cli({"ls", "--limit", "2", "--cursor", CursorIn(second.err)});
  EXPECT_EQ(Rows(last.out), 1u) << last.out;
  EXPECT_EQ(last.err, "");  // nothing older: no cursor
  EXPECT_EQ(Rows(c.Cli({"ls", "--limit", "0"}).out), 5u);

  EXPECT_EQ(Rows(c.Cli({"ls", "--app", "a"}).out), 3u);
  EXPECT_EQ(Rows(c.Cli({"ls", "--app", "a", "--label", "batch=even"}).out), 2u);
  EXPECT_EQ(Rows(c.Cli({"ls", "--state", "queued,running", "--since", "1h"}).out), 5u);
  EXPECT_EQ(Rows(c.Cli({"ls", "--since", "2099-01-01"}).out), 0u);
  CommandResult bad = c.Cli({"ls", "--state", "sleeping"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--state"));

  // Cancel by filter: a count, and nothing without --yes off a terminal.
  CommandResult asked = c.Cli({"cancel", "--app", "a"});
  EXPECT_EQ(asked.exit_code, 2);
  EXPECT_THAT(asked.err, HasSubstr("3 jobs match; add --yes to cancel them"));
  EXPECT_EQ(Rows(c.Cli({"ls", "--state", "cancelled"}).out), 0u);
  CommandResult cancelled = c.Cli({"cancel", "--app", "a", "--yes"});
  EXPECT_EQ(cancelled.exit_code, 0) << cancelled.err;
  EXPECT_EQ(cancelled.out, "cancelled 3 jobs\n");
  EXPECT_EQ(Rows(c.Cli({"ls", "--state", "cancelled"}).out), 3u);
  CommandResult named = c.Cli({"cancel", "j4", "j5", "j9"});
  EXPECT_EQ(named.exit_code, 1);
  EXPECT_THAT(named.out, HasSubstr("j4 CANCELLED\nj5 CANCELLED\n"));
  EXPECT_THAT(named.err, HasSubstr("j9"));
  EXPECT_EQ(c.Cli({"cancel"}).exit_code, 2);
}

TEST(DaemonFlagsTest, VersionAndHelpNameTheProgramNotABuildPath) {
  for (const char* binary : {DEJA_SCHEDULER_BIN, DEJA_WORKER_BIN}) {
    const std::string program = fs::path(binary).filename().string();
    CommandResult version = RunCommand(binary, {"--version"});
    EXPECT_EQ(version.exit_code, 0);
    EXPECT_THAT(version.out + version.err, HasSubstr(program + " 0.")) << binary;
    EXPECT_THAT(version.out + version.err, HasSubstr("(commit ")) << binary;
    CommandResult help = RunCommand(binary, {"--help"});
    const std::string text = help.out + help.err;
    EXPECT_THAT(text, HasSubstr("Flags from " + program + ":")) << text;
    EXPECT_THAT(text, Not(HasSubstr(DEJA_SOURCE_DIR))) << text;
    EXPECT_THAT(text, Not(HasSubstr("main.cc"))) << text;
    EXPECT_THAT(text, HasSubstr("--http_listen"));
    EXPECT_THAT(text, HasSubstr("--log_format"));
  }
}

}  // namespace
}  // namespace deja::testing
