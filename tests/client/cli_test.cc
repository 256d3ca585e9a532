// Unit tests of the `deja` CLI pieces that need no scheduler: flag parsing
// into a JobSpec, human formatting, tables, and the error paths of RunCli.
#include "client/cli.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "client/cli_format.h"
#include "client/command_context.h"
#include "client/job_format.h"
#include "client/spec_flags.h"
#include "tests/client/cli_test_util.h"

namespace deja::cli {
namespace {

using deja::v1::Job;

using ::deja::cli::testing::CliResult;
using ::deja::cli::testing::DryRun;
using ::deja::cli::testing::RunDeja;

// ---------------------------------------------------------------------------
// Flag parsing into a JobSpec.

TEST(ParseKeyValueTest, SplitsAtFirstEquals) {
  auto kv = ParseKeyValue("--env", "A=b=c");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->first, "A");
  EXPECT_EQ(kv->second, "b=c");
  auto empty_value = ParseKeyValue("--env", "A=");
  ASSERT_TRUE(empty_value.ok());
  EXPECT_EQ(empty_value->second, "");
}

TEST(ParseKeyValueTest, NamesFlagAndArgument) {
  auto missing = ParseKeyValue("--param", "seed");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(missing.status().message(), "--param \"seed\": expected KEY=VALUE");
  auto empty_key = ParseKeyValue("--env", "=1");
  EXPECT_EQ(empty_key.status().message(),
            "--env \"=1\": the key before '=' is empty; expected KEY=VALUE");
}

TEST(SubmitFlagsTest, EverythingAfterDashDashIsTheCommand) {
  deja::v1::JobSpec spec =
      DryRun({"--project", "ml",        "--name",   "train",     "--version",    "2",
              "--env",     "A=1",       "--env",    "B=x=y",     "--param",      "n=3",
              "--output",  "out/*.csv", "--output", "model.bin", "--request-id", "req-1",
              "--",        "python",    "-u",       "train.py",  "--json",       "${params.n}"});
  EXPECT_EQ(spec.project(), "ml");
  EXPECT_EQ(spec.app().name(), "train");
  EXPECT_EQ(spec.app().version(), "2");
  ASSERT_EQ(spec.app().command_size(), 5);
  EXPECT_EQ(spec.app().command(1), "-u");
  EXPECT_EQ(spec.app().command(3), "--json");
  EXPECT_EQ(spec.app().command(4), "${params.n}");
  EXPECT_EQ(spec.app().env().at("A"), "1");
  EXPECT_EQ(spec.app().env().at("B"), "x=y");
  EXPECT_EQ(spec.params().at("n"), "3");
  ASSERT_EQ(spec.outputs_size(), 2);
  EXPECT_EQ(spec.outputs(0), "out/*.csv");
  EXPECT_EQ(spec.outputs(1), "model.bin");
  EXPECT_EQ(spec.request_id(), "req-1");
}

TEST(SubmitFlagsTest, RepeatedFlagTakesOneValueEach) {
  // "--env A=1 echo hi": echo and hi are the command, not more env values.
  deja::v1::JobSpec spec = DryRun({"--env", "A=1", "echo", "hi"});
  EXPECT_EQ(spec.app().env_size(), 1);
  ASSERT_EQ(spec.app().command_size(), 2);
  EXPECT_EQ(spec.app().command(0), "echo");
}

TEST(SubmitFlagsTest, DefaultsAndRandomRequestId) {
  deja::v1::JobSpec first = DryRun({"--", "/usr/bin/Echo", "hi"});
  EXPECT_EQ(first.project(), "");  // the scheduler's: the token's project, else "default"
  EXPECT_EQ(first.app().name(), "echo");
  EXPECT_EQ(first.memoization(), deja::v1::MEMOIZATION_INHERIT);
  EXPECT_FALSE(first.app().has_reuse());
  ASSERT_EQ(first.request_id().size(), 16u);
  EXPECT_EQ(first.request_id().find_first_not_of("0123456789abcdef"), std::string::npos);
  deja::v1::JobSpec second = DryRun({"--", "echo", "hi"});
  EXPECT_NE(first.request_id(), second.request_id());
}

TEST(SubmitFlagsTest, MemoPolicyFlags) {
  deja::v1::JobSpec spec = DryRun({"--memo", "OFF", "--force", "--no-reuse", "--side-effects",
                                   "--reuse-job", "j7", "--label", "team=a", "--platform",
                                   "os=linux", "--cache-key", "n", "--param", "n=1", "--", "x"});
  EXPECT_EQ(spec.memoization(), deja::v1::MEMOIZATION_OFF);
  EXPECT_TRUE(spec.force());
  ASSERT_TRUE(spec.app().has_reuse());
  EXPECT_FALSE(spec.app().reuse());
  EXPECT_TRUE(spec.app().side_effects());
  EXPECT_EQ(spec.reuse_job_id(), "j7");
  EXPECT_EQ(spec.labels().at("team"), "a");
  EXPECT_EQ(spec.app().platform().at("os"), "linux");
  ASSERT_EQ(spec.app().cache_key_size(), 1);
}

TEST(SubmitFlagsTest, ResourceFlags) {
  deja::v1::JobSpec none = DryRun({"--", "x"});
  EXPECT_FALSE(none.has_resources());
  EXPECT_FALSE(none.fail_unplaceable());
  deja::v1::JobSpec spec =
      DryRun({"--cpus", "1.5", "--memory", "4GiB", "--gpus", "2", "--time-limit", "2h",
              "--unplaceable", "FAIL", "--network", "--image", "deja-test-job:1", "--", "x"});
  EXPECT_EQ(spec.resources().milli_cpus(), 1500u);
  EXPECT_EQ(spec.resources().memory_bytes(), uint64_t{4} << 30);
  EXPECT_EQ(spec.resources().gpus(), 2u);
  EXPECT_EQ(spec.resources().time_limit_ms(), 7'200'000u);
  EXPECT_TRUE(spec.fail_unplaceable());
  EXPECT_TRUE(spec.network());
  EXPECT_EQ(spec.app().image(), "deja-test-job:1");

  CliResult memory = RunDeja({"submit", "--memory", "4XB", "--", "echo"});
  EXPECT_EQ(memory.code, kExitUsage);
  EXPECT_EQ(memory.err,
            "deja: --memory 4XB: unknown unit; use B, KiB, MiB, GiB or TiB (K, M, G, T)\n");
  CliResult limit = RunDeja({"submit", "--time-limit", "soon", "--", "echo"});
  EXPECT_EQ(limit.code, kExitUsage);
  EXPECT_EQ(limit.err, "deja: --time-limit soon: expected a duration (2h, 90m, 1h30m, 45s)\n");
  CliResult cpus = RunDeja({"submit", "--cpus", "0", "--", "echo"});
  EXPECT_EQ(cpus.err, "deja: --cpus 0: must be more than 0\n");
  CliResult unplaceable = RunDeja({"submit", "--unplaceable", "later", "--", "echo"});
  EXPECT_EQ(unplaceable.code, kExitUsage);
  EXPECT_TRUE(absl::StrContains(unplaceable.err, "--unplaceable")) << unplaceable.err;
}

TEST(SubmitFlagsTest, BadKeyValueIsAUsageErrorNamingTheFlag) {
  CliResult result = RunDeja({"submit", "--env", "NOEQUALS", "--", "echo"});
  EXPECT_EQ(result.code, kExitUsage);
  EXPECT_EQ(result.err, "deja: --env \"NOEQUALS\": expected KEY=VALUE\n");
  EXPECT_EQ(result.out, "");
}

TEST(SubmitFlagsTest, RepeatedKeyIsAnError) {
  CliResult result = RunDeja({"submit", "--param", "a=1", "--param", "a=2", "--", "echo"});
  EXPECT_EQ(result.code, kExitUsage);
  EXPECT_EQ(result.err, "deja: --param \"a=2\": key \"a\" given twice\n");
}

TEST(SubmitFlagsTest, SpecValidationNamesTheField) {
  CliResult unknown_param = RunDeja({"submit", "--", "echo", "${params.missing}"});
  EXPECT_EQ(unknown_param.code, kExitUsage);
  EXPECT_TRUE(absl::StrContains(unknown_param.err, "app.command[1]")) << unknown_param.err;
  CliResult escaping_output = RunDeja({"submit", "--output", "../x", "--", "echo"});
  EXPECT_EQ(escaping_output.code, kExitUsage);
  EXPECT_TRUE(absl::StartsWith(escaping_output.err, "deja: outputs[0]: ")) << escaping_output.err;
}

TEST(SubmitFlagsTest, MissingCommandIsACli11UsageError) {
  CliResult result = RunDeja({"submit", "--project", "p"});
  EXPECT_EQ(result.code, kExitUsage);
  EXPECT_TRUE(absl::StrContains(result.err, "CMD is required")) << result.err;
}

TEST(SubmitFlagsTest, BadMemoValue) {
  CliResult result = RunDeja({"run", "--memo", "sometimes", "--", "echo"});
  EXPECT_EQ(result.code, kExitUsage);
  EXPECT_TRUE(absl::StrContains(result.err, "--memo")) << result.err;
}

// ---------------------------------------------------------------------------
// RunCli paths that need no scheduler.

TEST(RunCliTest, HelpDescribesEverything) {
  CliResult top = RunDeja({"--help"});
  EXPECT_EQ(top.code, 0);
  for (const char* command :
       {"submit", "run", "status", "logs", "ls", "cancel", "workers", "--scheduler", "--json",
        "--timeout", "DEJA_SCHEDULER", "Exit codes"}) {
    EXPECT_TRUE(absl::StrContains(top.out, command)) << command << " missing from\n" << top.out;
  }
  CliResult run = RunDeja({"run", "--help"});
  EXPECT_EQ(run.code, 0);
  for (const char* flag : {"--project", "--name", "--version", "--env", "--param", "--output",
                           "--request-id", "--scheduler", "--json", "--timeout"}) {
    EXPECT_TRUE(absl::StrContains(run.out, flag)) << flag << " missing from\n" << run.out;
  }
}

TEST(RunCliTest, NoCommandIsAUsageError) {
  EXPECT_EQ(RunDeja({}).code, kExitUsage);
  EXPECT_EQ(RunDeja({"frobnicate"}).code, kExitUsage);
  EXPECT_EQ(RunDeja({"status"}).code, kExitUsage);  // JOB is required
  EXPECT_EQ(RunDeja({"ls", "--timeout", "0"}).code, kExitUsage);
}

TEST(RunCliTest, BadStateNamesTheAllowedStates) {
  CliResult result = RunDeja({"ls", "--state", "sleeping"});
  EXPECT_EQ(result.code, kExitUsage);
  EXPECT_EQ(result.err,
            "deja: --state \"sleeping\": not a job state; use one of QUEUED, ASSIGNED, RUNNING, "
            "MATERIALIZING, WAITING, SUCCEEDED, FAILED, CANCELLED\n");
}

TEST(RunCliTest, UnreachableSchedulerSaysWhere) {
  // Port 1 on loopback: nobody listens, the connection is refused at once.
  CliResult result = RunDeja({"status", "j1", "--scheduler", "127.0.0.1:1", "--timeout", "5"});
  EXPECT_EQ(result.code, kExitError);
  EXPECT_TRUE(absl::StartsWith(result.err, "deja: cannot reach scheduler at 127.0.0.1:1: "))
      << result.err;
  EXPECT_EQ(result.out, "");
}

TEST(RunCliTest, SchedulerFromEnvironment) {
  setenv("DEJA_SCHEDULER", "127.0.0.1:1", 1);
  EXPECT_EQ(ResolveScheduler(""), "127.0.0.1:1");
  EXPECT_EQ(ResolveScheduler("h:9"), "h:9");
  CliResult result = RunDeja({"--timeout", "5", "workers"});
  EXPECT_TRUE(absl::StartsWith(result.err, "deja: cannot reach scheduler at 127.0.0.1:1: "))
      << result.err;
  unsetenv("DEJA_SCHEDULER");
  EXPECT_EQ(ResolveScheduler(""), "127.0.0.1:7070");
}

// ---------------------------------------------------------------------------
// Durations, times, sizes.

TEST(FormatTest, Durations) {
  EXPECT_EQ(FormatDuration(0), "0ms");
  EXPECT_EQ(FormatDuration(850), "850ms");
  EXPECT_EQ(FormatDuration(999), "999ms");
  EXPECT_EQ(FormatDuration(1000), "1.0s");
  EXPECT_EQ(FormatDuration(1250), "1.2s");
  EXPECT_EQ(FormatDuration(59'999), "59.9s");
  EXPECT_EQ(FormatDuration(60'000), "1m00s");
  EXPECT_EQ(FormatDuration(192'000), "3m12s");
  EXPECT_EQ(FormatDuration(3'599'999), "59m59s");
  EXPECT_EQ(FormatDuration(3'600'000), "1h00m");
  EXPECT_EQ(FormatDuration((2 * 3600 + 5 * 60 + 30) * 1000), "2h05m");
  EXPECT_EQ(FormatDuration(int64_t{130} * 3600 * 1000), "130h00m");
  EXPECT_EQ(FormatDuration(-5), "0ms");
}

TEST(FormatTest, Timestamps) {
  EXPECT_EQ(FormatTimestamp(1'700'000'000'123, absl::UTCTimeZone()), "2023-11-14 22:13:20");
  EXPECT_EQ(FormatTimestamp(1'700'000'000'123, absl::FixedTimeZone(3600)), "2023-11-14 23:13:20");
}

TEST(FormatTest, Bytes) {
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(1023), "1023 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(3 * 1024 * 1024), "3.0 MiB");
}

TEST(FormatTest, AppAndCommand) {
  deja::v1::AppSpec app;
  app.set_name("train");
  EXPECT_EQ(FormatApp(app), "train");
  app.set_version("1.2");
  EXPECT_EQ(FormatApp(app), "train@1.2");
  app.add_command("sh");
  app.add_command("-c");
  app.add_command("echo 'hi'");
  EXPECT_EQ(FormatCommand(app), R"(sh -c 'echo '\''hi'\''')");
}

// ---------------------------------------------------------------------------
// One-line outputs.

Job MakeJob(const std::string& id, deja::v1::JobState state) {
  Job job;
  job.set_job_id(id);
  job.set_state(state);
  job.set_attempt(1);
  return job;
}

TEST(LinesTest, SubmitLine) {
  deja::v1::SubmitResponse queued;
  *queued.mutable_job() = MakeJob("j12", deja::v1::QUEUED);
  EXPECT_EQ(FormatSubmitLine(queued), "j12 queued");

  deja::v1::SubmitResponse reused;
  *reused.mutable_job() = MakeJob("j13", deja::v1::MATERIALIZING);
  reused.mutable_job()->set_reused_from("j12");
  reused.mutable_job()->set_time_saved_ms(1200);
  reused.set_reused(true);
  EXPECT_EQ(FormatSubmitLine(reused), "j13 reusing j12 (saves 1.2s)");
}

TEST(LinesTest, StateLines) {
  EXPECT_EQ(FormatStateLine(MakeJob("j12", deja::v1::QUEUED)), "j12 QUEUED");

  Job running = MakeJob("j12", deja::v1::RUNNING);
  running.set_worker_id("w-a");
  EXPECT_EQ(FormatStateLine(running), "j12 RUNNING on w-a");

  Job done = running;
  done.set_state(deja::v1::SUCCEEDED);
  done.set_exit_code(0);
  done.set_run_time_ms(1200);
  EXPECT_EQ(FormatStateLine(done), "j12 SUCCEEDED exit 0 in 1.2s");

  Job reused = MakeJob("j13", deja::v1::SUCCEEDED);
  reused.set_reused_from("j12");
  reused.set_time_saved_ms(1200);
  EXPECT_EQ(FormatStateLine(reused), "j13 SUCCEEDED reused from j12, saved 1.2s");

  Job failed = MakeJob("j12", deja::v1::FAILED);
  failed.set_exit_code(3);
  failed.set_message("command exited with 3");
  EXPECT_EQ(FormatStateLine(failed), "j12 FAILED exit 3: command exited with 3");

  Job requeued = MakeJob("j12", deja::v1::QUEUED);
  requeued.set_attempt(2);
  requeued.set_message("worker w-a lost");
  EXPECT_EQ(FormatStateLine(requeued), "j12 QUEUED (attempt 2): worker w-a lost");

  EXPECT_EQ(FormatStateLine(MakeJob("j12", deja::v1::CANCELLED)), "j12 CANCELLED");
}

TEST(LinesTest, StateLineKeyIgnoresUnprintedChanges) {
  Job a = MakeJob("j12", deja::v1::RUNNING);
  Job b = a;
  b.set_message("progress");
  EXPECT_EQ(StateLineKey(a), StateLineKey(b));
  b.set_worker_id("w-b");
  EXPECT_NE(StateLineKey(a), StateLineKey(b));
}

TEST(LinesTest, ExitCodes) {
  Job ok = MakeJob("j1", deja::v1::SUCCEEDED);
  ok.set_exit_code(0);
  EXPECT_EQ(ExitCodeForJob(ok), 0);
  Job reused = MakeJob("j2", deja::v1::SUCCEEDED);
  reused.set_reused_from("j1");
  EXPECT_EQ(ExitCodeForJob(reused), 0);
  Job failed = MakeJob("j3", deja::v1::FAILED);
  failed.set_exit_code(3);
  EXPECT_EQ(ExitCodeForJob(failed), 3);
  failed.set_exit_code(-9);
  EXPECT_EQ(ExitCodeForJob(failed), 137);
  EXPECT_EQ(ExitCodeForJob(MakeJob("j4", deja::v1::FAILED)), 1);
  EXPECT_EQ(ExitCodeForJob(MakeJob("j5", deja::v1::CANCELLED)), 130);
}

// ---------------------------------------------------------------------------
// Tables.

TEST(TableTest, AlignsColumnsWithoutTrailingSpaces) {
  EXPECT_EQ(RenderTable({"ID", "SLOTS", "NOTE"}, {{"w-long", "4", ""}, {"w", "16", "x"}}),
            "ID      SLOTS  NOTE\n"
            "w-long  4      -\n"
            "w       16     x\n");
  EXPECT_EQ(RenderTable({"A", "B"}, {}), "A  B\n");
}

TEST(TableTest, StatusShowsOnlyPresentFields) {
  Job job = MakeJob("j13", deja::v1::SUCCEEDED);
  job.mutable_spec()->set_project("ml");
  job.mutable_spec()->mutable_app()->set_name("train");
  job.mutable_spec()->mutable_app()->set_version("2");
  job.mutable_spec()->mutable_app()->add_command("train.sh");
  job.set_worker_id("w-a");
  job.set_created_at_ms(1'700'000'000'000);
  job.set_finished_at_ms(1'700'000'003'000);
  job.set_reused_from("j12");
  job.set_reused_source_finished_at_ms(1'699'999'000'000);
  job.set_time_saved_ms(192'000);
  job.mutable_manifest()->set_files(2);
  job.mutable_manifest()->set_bytes(1536);
  EXPECT_EQ(RenderKeyValues(StatusRows(job, absl::UTCTimeZone())),
            "job          j13\n"
            "project      ml\n"
            "app          train@2\n"
            "command      train.sh\n"
            "state        SUCCEEDED\n"
            "attempt      1\n"
            "worker       w-a\n"
            "created      2023-11-14 22:13:20\n"
            "finished     2023-11-14 22:13:23\n"
            "reused from  j12 (finished 2023-11-14 21:56:40)\n"
            "time saved   3m12s\n"
            "files        2 files, 1.5 KiB\n");
}

TEST(TableTest, FailedStatusHasExitCodeAndMessage) {
  Job job = MakeJob("j12", deja::v1::FAILED);
  job.set_exit_code(3);
  job.set_run_time_ms(850);
  job.set_message("exit 3");
  auto rows = StatusRows(job, absl::UTCTimeZone());
  std::string text = RenderKeyValues(rows);
  EXPECT_TRUE(absl::StrContains(text, "run time   850ms\n")) << text;
  EXPECT_TRUE(absl::StrContains(text, "exit code  3\n")) << text;
  EXPECT_TRUE(absl::StrContains(text, "message    exit 3\n")) << text;
  EXPECT_FALSE(absl::StrContains(text, "reused")) << text;
}

TEST(TableTest, ReuseBanner) {
  Job job = MakeJob("j13", deja::v1::SUCCEEDED);
  EXPECT_EQ(ReuseBanner(job, absl::UTCTimeZone()), "");
  job.set_reused_from("j12");
  EXPECT_EQ(ReuseBanner(job, absl::UTCTimeZone()), "reused from j12");
  job.set_reused_source_finished_at_ms(1'700'000'000'000);
  EXPECT_EQ(ReuseBanner(job, absl::UTCTimeZone()),
            "reused from j12 (finished 2023-11-14 22:13:20)");
}

TEST(TableTest, JobsTable) {
  absl::Time now = absl::FromUnixMillis(1'700'000'100'000);
  Job done = MakeJob("j12", deja::v1::SUCCEEDED);
  done.mutable_spec()->set_project("ml");
  done.mutable_spec()->mutable_app()->set_name("train");
  done.set_worker_id("w-a");
  done.set_created_at_ms(1'700'000'000'000);
  done.set_run_time_ms(1200);
  Job running = MakeJob("j14", deja::v1::RUNNING);
  running.mutable_spec()->set_project("ml");
  running.mutable_spec()->mutable_app()->set_name("eval");
  running.mutable_spec()->mutable_app()->set_version("3");
  running.set_worker_id("w-b");
  running.set_created_at_ms(1'700'000'000'000);
  running.set_started_at_ms(1'700'000'090'000);
  Job reused = MakeJob("j13", deja::v1::SUCCEEDED);
  reused.mutable_spec()->set_project("ml");
  reused.mutable_spec()->mutable_app()->set_name("train");
  reused.set_reused_from("j12");
  EXPECT_EQ(JobsTable({done, running, reused}, absl::UTCTimeZone(), now),
            "JOB  PROJECT  APP     STATE      WORKER  CREATED              DURATION  REUSED-FROM\n"
            "j12  ml       train   SUCCEEDED  w-a     2023-11-14 22:13:20  1.2s      -\n"
            "j14  ml       eval@3  RUNNING    w-b     2023-11-14 22:13:20  10.0s     -\n"
            "j13  ml       train   SUCCEEDED  -       -                    -         j12\n");
}

TEST(TableTest, WorkersTable) {
  deja::v1::WorkerInfo a;
  a.set_worker_id("w-a");
  a.set_slots(4);
  a.set_busy_slots(1);
  a.set_connected(true);
  a.set_advertise("10.0.0.1:7071");
  (*a.mutable_platform())["os"] = "linux";
  (*a.mutable_platform())["arch"] = "x86_64";
  a.mutable_disk()->set_free_bytes(uint64_t{13} << 30);
  a.mutable_disk()->set_total_bytes(uint64_t{100} << 30);
  deja::v1::WorkerInfo b;
  b.set_worker_id("w-b");
  b.set_slots(2);
  deja::v1::WorkerInfo c = b;
  c.set_worker_id("w-c");
  c.mutable_disk()->set_free_bytes(uint64_t{812} << 20);
  c.mutable_disk()->set_total_bytes(uint64_t{100} << 30);
  c.mutable_disk()->set_refusing("disk full: 812.0 MiB free under /w, below ...");
  a.mutable_capacity()->mutable_total()->set_milli_cpus(8000);
  a.mutable_capacity()->mutable_total()->set_memory_bytes(uint64_t{32} << 30);
  a.mutable_capacity()->mutable_total()->set_gpus(1);
  a.mutable_capacity()->set_limits("rlimits");
  a.mutable_capacity()->set_engine("docker 20.10.24 at /var/run/docker.sock");
  a.mutable_used()->set_milli_cpus(1500);
  a.mutable_used()->set_memory_bytes(uint64_t{4} << 30);
  b.mutable_capacity()->set_no_engine("container engine at /var/run/docker.sock: no such file");
  EXPECT_EQ(
      WorkersTable({a, b, c}),
      "ID   SLOTS  CPUS   MEMORY        GPUS  LIMITS   ENGINE                                   "
      "CONNECTED  DISK                       ADVERTISE      PLATFORM\n"
      "w-a  1/4    1.5/8  4 GiB/32 GiB  0/1   rlimits  docker 20.10.24 at /var/run/docker.sock  "
      "yes        13.0 GiB free              10.0.0.1:7071  arch=x86_64,os=linux\n"
      "w-b  0/2    0/0    0/0 B         0/0   -        none                                     "
      "no         -                          -              -\n"
      "w-c  0/2    0/0    0/0 B         0/0   -        none                                     "
      "no         disk full: 812.0 MiB free  -              -\n"
      "w-b takes no --image job: container engine at /var/run/docker.sock: no such file\n");
}

TEST(JsonTest, OneLineWithProtoFieldNames) {
  Job job = MakeJob("j12", deja::v1::FAILED);
  job.set_exit_code(0);
  std::string json = ToJson(job);
  EXPECT_EQ(json.find('\n'), std::string::npos);
  EXPECT_TRUE(absl::StrContains(json, "\"job_id\":\"j12\"")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"state\":\"FAILED\"")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"exit_code\":0")) << json;
  EXPECT_TRUE(absl::StrContains(json, "\"reused_from\":\"\"")) << json;
}

}  // namespace
}  // namespace deja::cli
