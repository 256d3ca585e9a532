// Unit tests of the memoization controls of the `deja` CLI: the job flags
// (--memoization, --force, --reuse, --no-reuse, --side-effects, --cache-key),
// `deja project get|set`, `deja cache ls|show|evict`, `deja explain`, `deja
// stats`, and the retention / single-flight lines of `deja status` and `deja
// run`. Pure pieces are tested alone; commands run against a fake Scheduler
// service on 127.0.0.1:0 that records the requests it gets.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/cache_commands.h"
#include "client/cache_format.h"
#include "client/cli.h"
#include "client/cli_format.h"
#include "client/job_format.h"
#include "tests/client/cli_test_util.h"
#include "tests/fakes/fake_scheduler.h"

namespace deja::cli {
namespace {

using deja::v1::Job;
using deja::v1::MemoEntry;

constexpr char kHashA[] = "07d6c4085d36a384dc40eacbcf65a211";
constexpr char kHashB[] = "07d6c4ffffffffffffffffffffffffff";
constexpr char kHashC[] = "9d443a64d3e95b47206af44dcf88b034";

const absl::TimeZone kUtc = absl::UTCTimeZone();
// 2023-11-14 22:13:20 UTC.
constexpr int64_t kT0 = 1'700'000'000'000;

using ::deja::cli::testing::CliResult;
using ::deja::cli::testing::DryRun;
using ::deja::cli::testing::RunDeja;

MemoEntry Entry(const std::string& project, const std::string& hash, const std::string& app,
                const std::string& source) {
  MemoEntry entry;
  entry.set_project(project);
  entry.set_job_hash(hash);
  entry.set_app_name(app);
  entry.set_source_job_id(source);
  entry.set_worker_id("w-a");
  entry.set_run_time_ms(192'000);
  entry.set_created_at_ms(kT0);
  entry.set_expires_at_ms(kT0 + 24 * 3600 * 1000);
  entry.mutable_manifest()->set_files(2);
  entry.mutable_manifest()->set_bytes(1536);
  auto* output = entry.add_outputs();
  output->set_path("model.bin");
  output->set_size(1024);
  output->set_digest(kHashC);
  return entry;
}

// ---------------------------------------------------------------------------
// Job flags.

TEST(MemoFlagsTest, MemoizationFlagAndItsAlias) {
  EXPECT_EQ(DryRun({"--memoization", "on", "--", "x"}).memoization(), deja::v1::MEMOIZATION_ON);
  EXPECT_EQ(DryRun({"--memoization", "OFF", "--", "x"}).memoization(), deja::v1::MEMOIZATION_OFF);
  EXPECT_EQ(DryRun({"--memoization", "inherit", "--", "x"}).memoization(),
            deja::v1::MEMOIZATION_INHERIT);
  EXPECT_EQ(DryRun({"--memo", "off", "--", "x"}).memoization(), deja::v1::MEMOIZATION_OFF);
  EXPECT_EQ(DryRun({"--", "x"}).memoization(), deja::v1::MEMOIZATION_INHERIT);
}

TEST(MemoFlagsTest, BadOrDoubleMemoizationIsAUsageError) {
  CliResult bad = RunDeja({"submit", "--memoization", "sometimes", "--", "x"});
  EXPECT_EQ(bad.code, kExitUsage);
  EXPECT_TRUE(absl::StrContains(bad.err, "--memoization")) << bad.err;
  CliResult bad_alias = RunDeja({"submit", "--memo", "sometimes", "--", "x"});
  EXPECT_EQ(bad_alias.code, kExitUsage);
  EXPECT_EQ(bad_alias.err, "deja: --memo \"sometimes\": expected on, off or inherit\n");
  CliResult both = RunDeja({"submit", "--memo", "on", "--memoization", "off", "--", "x"});
  EXPECT_EQ(both.code, kExitUsage);
  EXPECT_EQ(both.err, "deja: --memo \"on\": is an alias of --memoization; give only one\n");
}

TEST(MemoFlagsTest, ReuseAndItsAlias) {
  EXPECT_EQ(DryRun({"--reuse", "j7", "--", "x"}).reuse_job_id(), "j7");
  EXPECT_EQ(DryRun({"--reuse-job", "j8", "--", "x"}).reuse_job_id(), "j8");
  CliResult both = RunDeja({"submit", "--reuse", "j7", "--reuse-job", "j8", "--", "x"});
  EXPECT_EQ(both.code, kExitUsage);
  EXPECT_TRUE(absl::StrContains(both.err, "alias of --reuse")) << both.err;
}

TEST(MemoFlagsTest, AppFlagsForceAndCacheKeys) {
  deja::v1::JobSpec spec = DryRun({"--force", "--no-reuse", "--side-effects", "--cache-key", "lr",
                                   "--cache-key", "epochs", "--param", "lr=0.1", "--param",
                                   "epochs=3", "--param", "seed=7", "--", "train"});
  EXPECT_TRUE(spec.force());
  ASSERT_TRUE(spec.app().has_reuse());
  EXPECT_FALSE(spec.app().reuse());
  EXPECT_TRUE(spec.app().side_effects());
  ASSERT_EQ(spec.app().cache_key_size(), 2);
  deja::v1::JobSpec plain = DryRun({"--", "train"});
  EXPECT_FALSE(plain.force());
  EXPECT_FALSE(plain.app().has_reuse());
  EXPECT_FALSE(plain.app().side_effects());
}

TEST(MemoFlagsTest, HelpListsTheControls) {
  CliResult top = RunDeja({"--help"});
  for (const char* command : {"project", "cache", "explain", "stats"}) {
    EXPECT_TRUE(absl::StrContains(top.out, command)) << command << " missing from\n" << top.out;
  }
  CliResult run = RunDeja({"run", "--help"});
  for (const char* flag :
       {"--memoization", "--force", "--reuse", "--no-reuse", "--side-effects", "--cache-key"}) {
    EXPECT_TRUE(absl::StrContains(run.out, flag)) << flag << " missing from\n" << run.out;
  }
  // The former names work but are not advertised.
  EXPECT_FALSE(absl::StrContains(run.out, "--memo ")) << run.out;
  EXPECT_FALSE(absl::StrContains(run.out, "--reuse-job")) << run.out;
  for (std::vector<std::string> args : {std::vector<std::string>{"project", "set", "--help"},
                                        {"cache", "evict", "--help"},
                                        {"cache", "ls", "--help"},
                                        {"cache", "show", "--help"},
                                        {"stats", "--help"},
                                        {"explain", "--help"}}) {
    CliResult help = RunDeja(args);
    EXPECT_EQ(help.code, 0) << args[0];
    EXPECT_TRUE(absl::StrContains(help.out, "--json")) << help.out;
  }
}

// ---------------------------------------------------------------------------
// Time flags.

TEST(ParseTimeFlagTest, Rfc3339DatesLocalTimesAndAges) {
  const absl::Time now = absl::FromUnixMillis(kT0);
  auto parse = [&](const std::string& arg, absl::TimeZone tz = kUtc) {
    absl::StatusOr<absl::Time> t = ParseTimeFlag("--before", arg, now, tz);
    EXPECT_TRUE(t.ok()) << arg << ": " << t.status();
    return t.ok() ? absl::ToUnixMillis(*t) : int64_t{-1};
  };
  // 2026-11-22T10:00:00Z.
  const int64_t ten = 1'795'341'600'000;
  EXPECT_EQ(parse("2026-11-22T10:00:00Z"), ten);
  EXPECT_EQ(parse("2026-11-22t10:00:00z"), ten);
  EXPECT_EQ(parse("2026-11-22T11:00:00+01:00"), ten);
  EXPECT_EQ(parse("2026-11-22T10:00:00.250Z"), ten + 250);
  EXPECT_EQ(parse("2026-11-22"), ten - 10 * 3600 * 1000);
  EXPECT_EQ(parse("2026-11-22", absl::FixedTimeZone(3600)), ten - 11 * 3600 * 1000);
  EXPECT_EQ(parse("2026-11-22 10:00:00"), ten);
  EXPECT_EQ(parse("90s"), kT0 - 90'000);
  EXPECT_EQ(parse("30m"), kT0 - 30 * 60'000);
  EXPECT_EQ(parse("2h"), kT0 - 2 * 3'600'000);
  EXPECT_EQ(parse("3d"), kT0 - 3 * 86'400'000);
  EXPECT_EQ(parse("1w"), kT0 - 7 * 86'400'000);
  EXPECT_EQ(parse("1d12h"), kT0 - 36 * 3'600'000);
  EXPECT_EQ(parse("0h"), kT0);
}

TEST(ParseTimeFlagTest, BadTimesNameTheFlag) {
  const absl::Time now = absl::FromUnixMillis(kT0);
  for (const char* bad : {"", "yesterday", "2h3", "3x", "h", "-2h", "2 h", "2026-13-01",
                          "2026-11-22T10:00:00", "1234567890h", "2026/11/22", "12"}) {
    absl::StatusOr<absl::Time> t = ParseTimeFlag("--since", bad, now, kUtc);
    ASSERT_FALSE(t.ok()) << bad;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(t.status().message(), absl::StrCat("--since \"", bad, "\": ")))
        << t.status();
  }
}

// ---------------------------------------------------------------------------
// Request builders.

TEST(RequestTest, JobIdOrHash) {
  EXPECT_TRUE(LooksLikeJobId("j1"));
  EXPECT_TRUE(LooksLikeJobId("j1234"));
  EXPECT_FALSE(LooksLikeJobId("j"));
  EXPECT_FALSE(LooksLikeJobId("J12"));
  EXPECT_FALSE(LooksLikeJobId("j12a"));
  EXPECT_FALSE(LooksLikeJobId(kHashA));

  deja::v1::GetMemoRequest by_job = BuildGetMemoRequest("j12", "ml");
  EXPECT_EQ(by_job.job_id(), "j12");
  EXPECT_EQ(by_job.job_hash(), "");
  deja::v1::GetMemoRequest by_hash = BuildGetMemoRequest("07D6C4", "ml");
  EXPECT_EQ(by_hash.job_hash(), "07d6c4");
  EXPECT_EQ(by_hash.project(), "ml");
  EXPECT_EQ(by_hash.job_id(), "");
}

TEST(RequestTest, SetProject) {
  auto neither = BuildSetProjectRequest("ml", "", std::nullopt);
  EXPECT_EQ(neither.status().code(), absl::StatusCode::kInvalidArgument);
  auto memo = BuildSetProjectRequest("ml", "Off", std::nullopt);
  ASSERT_TRUE(memo.ok());
  EXPECT_EQ(memo->project(), "ml");
  ASSERT_TRUE(memo->has_use_memoization());
  EXPECT_FALSE(memo->use_memoization());
  EXPECT_FALSE(memo->has_intermediate_files_hours());
  auto retention = BuildSetProjectRequest("ml", "", 72);
  ASSERT_TRUE(retention.ok());
  EXPECT_FALSE(retention->has_use_memoization());
  ASSERT_TRUE(retention->has_intermediate_files_hours());
  EXPECT_EQ(retention->intermediate_files_hours(), 72);
  // The range is the scheduler's to check.
  auto out_of_range = BuildSetProjectRequest("ml", "on", 0);
  ASSERT_TRUE(out_of_range.ok());
  EXPECT_TRUE(out_of_range->use_memoization());
  EXPECT_EQ(out_of_range->intermediate_files_hours(), 0);
  EXPECT_FALSE(BuildSetProjectRequest("ml", "maybe", std::nullopt).ok());
}

EvictFlags Evict(std::string project, std::string hash, std::string app, std::string before) {
  EvictFlags flags;
  flags.project = std::move(project);
  flags.hash = std::move(hash);
  flags.app = std::move(app);
  flags.before = std::move(before);
  return flags;
}

TEST(RequestTest, EvictNeedsExactlyOneSelector) {
  const absl::Time now = absl::FromUnixMillis(kT0);
  EXPECT_EQ(BuildEvictRequest(Evict("", "", "", ""), now, kUtc).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BuildEvictRequest(Evict("", "abc", "train", ""), now, kUtc).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BuildEvictRequest(Evict("", "", "train", "2h"), now, kUtc).status().code(),
            absl::StatusCode::kInvalidArgument);

  auto by_hash = BuildEvictRequest(Evict("ml", "07D6", "", ""), now, kUtc);
  ASSERT_TRUE(by_hash.ok());
  EXPECT_EQ(by_hash->project(), "ml");
  EXPECT_EQ(by_hash->job_hash(), "07d6");
  EXPECT_FALSE(BuildEvictRequest(Evict("", "xyz", "", ""), now, kUtc).ok());

  auto by_app = BuildEvictRequest(Evict("", "", "train", ""), now, kUtc);
  ASSERT_TRUE(by_app.ok());
  EXPECT_EQ(by_app->app_name(), "train");
  EXPECT_EQ(by_app->project(), "");
  EXPECT_EQ(by_app->before_ms(), 0);

  auto by_age = BuildEvictRequest(Evict("", "", "", "3d"), now, kUtc);
  ASSERT_TRUE(by_age.ok());
  EXPECT_EQ(by_age->before_ms(), kT0 - 3 * 86'400'000);
  auto by_date = BuildEvictRequest(Evict("", "", "", "2026-11-22T10:00:00Z"), now, kUtc);
  ASSERT_TRUE(by_date.ok());
  EXPECT_EQ(by_date->before_ms(), 1'795'341'600'000);

  auto bad = BuildEvictRequest(Evict("", "", "", "soon"), now, kUtc);
  EXPECT_TRUE(absl::StartsWith(bad.status().message(), "--before \"soon\": ")) << bad.status();
  EXPECT_FALSE(BuildEvictRequest(Evict("", "", "", "1969-12-31"), now, kUtc).ok());
}

// ---------------------------------------------------------------------------
// Rendering.

TEST(RenderTest, ProjectRows) {
  deja::v1::ProjectSettings settings;
  settings.set_project("ml");
  settings.set_use_memoization(true);
  settings.set_intermediate_files_hours(24);
  EXPECT_EQ(RenderKeyValues(ProjectRows(settings, kUtc)),
            "project      ml\n"
            "memoization  on\n"
            "retention    24h\n");
  settings.set_use_memoization(false);
  settings.set_updated_at_ms(kT0);
  EXPECT_EQ(RenderKeyValues(ProjectRows(settings, kUtc)),
            "project      ml\n"
            "memoization  off\n"
            "retention    24h\n"
            "updated      2023-11-14 22:13:20\n");
}

TEST(RenderTest, MemoTable) {
  MemoEntry never = Entry("default", kHashC, "eval", "j3");
  never.set_expires_at_ms(0);
  never.clear_manifest();
  EXPECT_EQ(MemoTable({Entry("ml", kHashA, "train", "j12"), never}, kUtc),
            "HASH          PROJECT  APP    SOURCE-JOB  SIZE     CREATED              EXPIRES\n"
            "07d6c4085d36  ml       train  j12         1.5 KiB  2023-11-14 22:13:20  "
            "2023-11-15 22:13:20\n"
            "9d443a64d3e9  default  eval   j3          0 B      2023-11-14 22:13:20  never\n");
  EXPECT_EQ(MemoTable({}, kUtc), "HASH  PROJECT  APP  SOURCE-JOB  SIZE  CREATED  EXPIRES\n");
}

TEST(RenderTest, MemoEntryInDetail) {
  MemoEntry entry = Entry("ml", kHashA, "train", "j12");
  EXPECT_EQ(RenderKeyValues(MemoRows(entry, kUtc)),
            "hash        07d6c4085d36a384dc40eacbcf65a211\n"
            "project     ml\n"
            "app         train\n"
            "source job  j12\n"
            "worker      w-a\n"
            "run time    3m12s\n"
            "created     2023-11-14 22:13:20\n"
            "expires     2023-11-15 22:13:20\n"
            "files       2 files, 1.5 KiB\n"
            "outputs     1 file, 1.0 KiB\n");
  EXPECT_EQ(MemoOutputsTable(entry),
            "OUTPUT     SIZE     DIGEST\n"
            "model.bin  1.0 KiB  9d443a64d3e95b47206af44dcf88b034\n");
  entry.clear_outputs();
  EXPECT_EQ(MemoOutputsTable(entry), "");
  EXPECT_EQ(FormatEvictLine(0, 0), "evicted 0 entries");
  EXPECT_EQ(FormatEvictLine(1, 1), "evicted 1 entry");
  EXPECT_EQ(FormatEvictLine(3, 3), "evicted 3 entries");
  EXPECT_EQ(FormatEvictLine(5000, 900), "evicted 5000 entries (the newest 900 shown)");
}

deja::v1::ExplainResponse NoMatch() {
  deja::v1::ExplainResponse response;
  response.set_job_id("j14");
  response.set_verdict(deja::v1::ExplainResponse::NO_MATCHING_ENTRY);
  response.set_summary("no memo entry of train in project ml has this job's hash");
  *response.mutable_nearest() = Entry("ml", kHashA, "train", "j12");
  auto* diff = response.add_differences();
  diff->set_field("params[lr]");
  diff->set_job_value("0.2");
  diff->set_entry_value("0.1");
  diff = response.add_differences();
  diff->set_field("inputs[extra].digest");
  diff->set_job_value(kHashC);
  diff = response.add_differences();
  diff->set_field("app.command");
  diff->set_job_value(std::string(100, 'x'));
  diff->set_entry_value("train.sh");
  return response;
}

TEST(RenderTest, ExplainNoMatchingEntry) {
  EXPECT_EQ(ExplainText(NoMatch()),
            "job      j14\n"
            "verdict  NO_MATCHING_ENTRY\n"
            "summary  no memo entry of train in project ml has this job's hash\n"
            "nearest  j12 (hash 07d6c4085d36a384dc40eacbcf65a211)\n"
            "\n"
            "FIELD                 THIS-JOB                                                      "
            "NEAREST-ENTRY\n"
            "params[lr]            0.2                                                           "
            "0.1\n"
            "inputs[extra].digest  9d443a64d3e95b47206af44dcf88b034                              "
            "-\n"
            "app.command           " +
                std::string(57, 'x') + "...  train.sh\n");
}

TEST(RenderTest, ExplainOtherVerdicts) {
  deja::v1::ExplainResponse reused;
  reused.set_job_id("j13");
  reused.set_verdict(deja::v1::ExplainResponse::REUSED);
  reused.set_summary("reused from j12");
  EXPECT_EQ(ExplainText(reused),
            "job      j13\n"
            "verdict  REUSED\n"
            "summary  reused from j12\n");
  deja::v1::ExplainResponse none;
  none.set_job_id("j15");
  none.set_verdict(deja::v1::ExplainResponse::NO_MATCHING_ENTRY);
  none.set_summary("no memo entry of app x in project p");
  EXPECT_EQ(ExplainText(none),
            "job      j15\n"
            "verdict  NO_MATCHING_ENTRY\n"
            "summary  no memo entry of app x in project p\n");
}

deja::v1::StatsResponse SomeStats() {
  deja::v1::StatsResponse stats;
  auto* train = stats.add_apps();
  train->set_app_name("train");
  train->set_jobs(10);
  train->set_succeeded(8);
  train->set_failed(2);
  train->set_reused(6);
  train->set_reuse_rate(0.75);
  train->set_run_time_ms(2 * 3'600'000);
  train->set_time_saved_ms(6 * 3'600'000 + 5 * 60'000);
  auto* eval = stats.add_apps();
  eval->set_app_name("eval");
  eval->set_jobs(1);
  eval->set_failed(1);
  eval->set_run_time_ms(850);
  auto* total = stats.mutable_total();
  total->set_jobs(11);
  total->set_succeeded(8);
  total->set_failed(3);
  total->set_reused(6);
  total->set_reuse_rate(0.75);
  total->set_run_time_ms(2 * 3'600'000 + 850);
  total->set_time_saved_ms(6 * 3'600'000 + 5 * 60'000);
  stats.mutable_content_store();  // as a token of every project gets it
  return stats;
}

TEST(RenderTest, StatsTable) {
  EXPECT_EQ(StatsTable(SomeStats()),
            "APP    JOBS  SUCCEEDED  FAILED  REUSED  REUSE-RATE  RUN-TIME  TIME-SAVED\n"
            "train  10    8          2       6       75.0%       2h00m     6h05m\n"
            "eval   1     0          1       0       -           850ms     0ms\n"
            "total  11    8          3       6       75.0%       2h00m     6h05m\n");
  EXPECT_EQ(StatsTable({}),
            "APP    JOBS  SUCCEEDED  FAILED  REUSED  REUSE-RATE  RUN-TIME  TIME-SAVED\n"
            "total  0     0          0       0       -           0ms       0ms\n");
}

TEST(RenderTest, ContentStoreLine) {
  deja::v1::ContentStoreStats stats;
  EXPECT_EQ(ContentStoreLine(stats, kUtc), "content store: not collected yet");
  stats.set_blobs(1204);
  stats.set_bytes(uint64_t{3} << 30);
  stats.set_collected_blobs(1);
  stats.set_collected_bytes(120 << 20);
  stats.set_collected_at_ms(kT0);
  EXPECT_EQ(ContentStoreLine(stats, kUtc),
            "content store: 1204 blobs, 3.0 GiB (collected 1 blob, 120.0 MiB at "
            "2023-11-14 22:13:20)");
}

Job MakeJob(const std::string& id, deja::v1::JobState state) {
  Job job;
  job.set_job_id(id);
  job.set_state(state);
  job.set_attempt(1);
  return job;
}

TEST(RenderTest, StatusWaitingAndMemoizationOff) {
  Job job = MakeJob("j5", deja::v1::WAITING);
  job.set_waiting_for("j4");
  job.set_memoization_off_reason("project ml has memoization off");
  std::string text = RenderKeyValues(StatusRows(job, kUtc, absl::FromUnixMillis(kT0)));
  EXPECT_TRUE(absl::StrContains(text,
                                "state        WAITING\n"
                                "waiting for  j4 (identical job in flight)\n"))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "memoization  off: project ml has memoization off\n"))
      << text;
  // Once it stopped waiting, waiting_for is history, not status.
  job.set_state(deja::v1::RUNNING);
  EXPECT_FALSE(absl::StrContains(RenderKeyValues(StatusRows(job, kUtc)), "waiting for"));
}

TEST(RenderTest, StatusExpiry) {
  Job job = MakeJob("j12", deja::v1::SUCCEEDED);
  job.set_finished_at_ms(kT0);
  job.set_expires_at_ms(kT0 + 3'600'000);
  const absl::Time before = absl::FromUnixMillis(kT0 + 1000);
  const absl::Time after = absl::FromUnixMillis(kT0 + 3'600'000);
  EXPECT_TRUE(absl::StrContains(RenderKeyValues(StatusRows(job, kUtc, before)),
                                "\nexpires   2023-11-14 23:13:20\n"))
      << RenderKeyValues(StatusRows(job, kUtc, before));
  std::string expired = RenderKeyValues(StatusRows(job, kUtc, after));
  EXPECT_TRUE(absl::StrContains(expired, "\nworkspace  expired at 2023-11-14 23:13:20\n"))
      << expired;
  EXPECT_FALSE(absl::StrContains(expired, "expires")) << expired;
  // The worker said so, whatever the clock says.
  job.set_workspace_expired(true);
  EXPECT_TRUE(absl::StrContains(RenderKeyValues(StatusRows(job, kUtc, before)),
                                "workspace  expired at 2023-11-14 23:13:20\n"));
  job.set_expires_at_ms(0);
  EXPECT_TRUE(
      absl::StrContains(RenderKeyValues(StatusRows(job, kUtc, before)), "workspace  expired\n"));
  // A job still running has no expiry yet.
  Job running = MakeJob("j13", deja::v1::RUNNING);
  std::string text = RenderKeyValues(StatusRows(running, kUtc, after));
  EXPECT_FALSE(absl::StrContains(text, "expire")) << text;
}

TEST(RenderTest, WaitingLines) {
  Job job = MakeJob("j5", deja::v1::WAITING);
  EXPECT_EQ(FormatStateLine(job), "j5 WAITING");
  job.set_waiting_for("j4");
  EXPECT_EQ(FormatStateLine(job), "j5 WAITING for j4 (identical job in flight)");
  deja::v1::SubmitResponse response;
  *response.mutable_job() = job;
  EXPECT_EQ(FormatSubmitLine(response), "j5 waiting for j4 (identical job in flight)");
  Job other = job;
  other.set_waiting_for("j3");
  EXPECT_NE(StateLineKey(job), StateLineKey(other));
  // The leader failed: the follower runs itself and says why.
  Job on_its_own = MakeJob("j5", deja::v1::QUEUED);
  on_its_own.set_message("the identical job j4 it waited for ended FAILED; running itself");
  EXPECT_EQ(FormatStateLine(on_its_own),
            "j5 QUEUED: the identical job j4 it waited for ended FAILED; running itself");
}

// ---------------------------------------------------------------------------
// Commands against a fake scheduler.

class MemoCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("TZ", "UTC", 1);
    deja::v1::ProjectSettings settings;
    settings.set_use_memoization(true);
    settings.set_intermediate_files_hours(24);
    fake_.SetProjectSettings(settings, /*set_at_ms=*/kT0);
    fake_.SetMemoEntries({Entry("ml", kHashA, "train", "j12"), Entry("ml", kHashB, "train", "j13"),
                          Entry("default", kHashC, "eval", "j3")});
    fake_.SetExplanation("j14", NoMatch());
    fake_.SetStatsReply(SomeStats());
    // Every submit joins j4, the identical job in flight, which is then
    // reused.
    deja::v1::SubmitResponse waiting;
    Job* job = waiting.mutable_job();
    job->set_job_id("j5");
    job->set_state(deja::v1::WAITING);
    job->set_waiting_for("j4");
    fake_.SetSubmitReply(waiting);
    Job waiting_job = MakeJob("j5", deja::v1::WAITING);
    waiting_job.set_waiting_for("j4");
    Job materializing = MakeJob("j5", deja::v1::MATERIALIZING);
    materializing.set_reused_from("j4");
    materializing.set_worker_id("w-a");
    Job done = materializing;
    done.set_state(deja::v1::SUCCEEDED);
    done.set_time_saved_ms(1200);
    fake_.SetJobWatch({waiting_job, materializing, done});
  }

  CliResult Deja(std::vector<std::string> args) {
    // Global flags go before the command so that `--` stays last.
    args.insert(args.begin(), {"--scheduler", server_.address(), "--insecure"});
    return RunDeja(std::move(args));
  }

  deja::testing::FakeSchedulerServer server_;
  deja::testing::FakeScheduler& fake_ = server_.scheduler();
};

TEST_F(MemoCliTest, ProjectGet) {
  CliResult result = Deja({"project", "get", "ml"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out,
            "project      ml\n"
            "memoization  on\n"
            "retention    24h\n");
  CliResult json = Deja({"project", "get", "ml", "--json"});
  ASSERT_EQ(json.code, 0) << json.err;
  EXPECT_EQ(json.out,
            "{\"project\":\"ml\",\"use_memoization\":true,\"intermediate_files_hours\":24,"
            "\"updated_at_ms\":\"0\"}\n");
}

TEST_F(MemoCliTest, ProjectSetSendsOnlyWhatIsGivenAndPrintsTheResult) {
  CliResult both = Deja({"project", "set", "ml", "--memoization", "off", "--retention", "72"});
  ASSERT_EQ(both.code, 0) << both.err;
  EXPECT_EQ(both.out,
            "project      ml\n"
            "memoization  off\n"
            "retention    72h\n"
            "updated      2023-11-14 22:13:20\n");
  CliResult memo_only = Deja({"project", "set", "ml", "--memoization", "ON"});
  ASSERT_EQ(memo_only.code, 0) << memo_only.err;
  std::vector<deja::v1::SetProjectRequest> requests = fake_.set_project_requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].project(), "ml");
  EXPECT_FALSE(requests[0].use_memoization());
  EXPECT_EQ(requests[0].intermediate_files_hours(), 72);
  EXPECT_TRUE(requests[1].has_use_memoization());
  EXPECT_TRUE(requests[1].use_memoization());
  EXPECT_FALSE(requests[1].has_intermediate_files_hours());
}

TEST_F(MemoCliTest, ProjectSetErrors) {
  CliResult out_of_range = Deja({"project", "set", "ml", "--retention", "500"});
  EXPECT_EQ(out_of_range.code, kExitError);
  EXPECT_EQ(out_of_range.err,
            "deja: intermediate_files_hours: 500 is out of range; allowed 1 to 120\n");
  EXPECT_EQ(out_of_range.out, "");
  CliResult zero = Deja({"project", "set", "ml", "--retention", "0"});
  EXPECT_EQ(zero.code, kExitError);
  CliResult neither = Deja({"project", "set", "ml"});
  EXPECT_EQ(neither.code, kExitUsage);
  EXPECT_TRUE(absl::StrContains(neither.err, "--memoization")) << neither.err;
  EXPECT_EQ(Deja({"project", "set", "ml", "--memoization", "maybe"}).code, kExitUsage);
  EXPECT_EQ(Deja({"project", "set", "ml", "--retention", "many"}).code, kExitUsage);
  EXPECT_EQ(Deja({"project", "set", "--retention", "3"}).code, kExitUsage);
  EXPECT_EQ(Deja({"project"}).code, kExitUsage);
  EXPECT_EQ(fake_.set_project_requests().size(), 2u);  // usage errors send nothing
}

TEST_F(MemoCliTest, CacheList) {
  CliResult result = Deja({"cache", "ls", "--project", "ml", "--app", "train", "--limit", "5"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out,
            "HASH          PROJECT  APP    SOURCE-JOB  SIZE     CREATED              EXPIRES\n"
            "07d6c4085d36  ml       train  j12         1.5 KiB  2023-11-14 22:13:20  "
            "2023-11-15 22:13:20\n"
            "07d6c4ffffff  ml       train  j13         1.5 KiB  2023-11-14 22:13:20  "
            "2023-11-15 22:13:20\n");
  CliResult json = Deja({"cache", "ls", "--json"});
  ASSERT_EQ(json.code, 0) << json.err;
  std::vector<std::string> lines = absl::StrSplit(json.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_TRUE(absl::StrContains(lines[0], std::string("\"job_hash\":\"") + kHashA)) << lines[0];
  std::vector<deja::v1::ListMemoRequest> requests = fake_.list_memo_requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].project(), "ml");
  EXPECT_EQ(requests[0].app_name(), "train");
  EXPECT_EQ(requests[0].limit(), 5u);
  EXPECT_EQ(requests[1].project(), "");
}

TEST_F(MemoCliTest, CacheShowByJobByHashAndByPrefix) {
  CliResult by_job = Deja({"cache", "show", "j12"});
  ASSERT_EQ(by_job.code, 0) << by_job.err;
  EXPECT_EQ(by_job.out,
            "hash        07d6c4085d36a384dc40eacbcf65a211\n"
            "project     ml\n"
            "app         train\n"
            "source job  j12\n"
            "worker      w-a\n"
            "run time    3m12s\n"
            "created     2023-11-14 22:13:20\n"
            "expires     2023-11-15 22:13:20\n"
            "files       2 files, 1.5 KiB\n"
            "outputs     1 file, 1.0 KiB\n"
            "\n"
            "OUTPUT     SIZE     DIGEST\n"
            "model.bin  1.0 KiB  9d443a64d3e95b47206af44dcf88b034\n");
  CliResult by_hash = Deja({"cache", "show", kHashC, "--project", "default"});
  ASSERT_EQ(by_hash.code, 0) << by_hash.err;
  EXPECT_TRUE(absl::StartsWith(by_hash.out, std::string("hash        ") + kHashC));
  CliResult by_prefix = Deja({"cache", "show", "9D443A64D3E9"});
  ASSERT_EQ(by_prefix.code, 0) << by_prefix.err;
  EXPECT_EQ(by_prefix.out, by_hash.out);
  CliResult json = Deja({"cache", "show", "j3", "--json"});
  ASSERT_EQ(json.code, 0) << json.err;
  CliResult whole_any_project = Deja({"cache", "show", kHashA});
  ASSERT_EQ(whole_any_project.code, 0) << whole_any_project.err;
  EXPECT_TRUE(absl::StrContains(json.out, std::string("\"job_hash\":\"") + kHashC)) << json.out;

  std::vector<deja::v1::GetMemoRequest> requests = fake_.get_memo_requests();
  ASSERT_EQ(requests.size(), 5u);
  EXPECT_EQ(requests[0].job_id(), "j12");
  EXPECT_EQ(requests[0].job_hash(), "");
  EXPECT_EQ(requests[1].job_hash(), kHashC);
  EXPECT_EQ(requests[1].project(), "default");
  // The prefix was resolved to the full hash and its project.
  EXPECT_EQ(requests[2].job_hash(), kHashC);
  EXPECT_EQ(requests[2].project(), "default");
  EXPECT_EQ(requests[4].job_hash(), kHashA);
  EXPECT_EQ(requests[4].project(), "ml");
  // The prefix and the hash without a project needed a list.
  EXPECT_EQ(fake_.list_memo_requests().size(), 2u);
}

TEST_F(MemoCliTest, CacheShowErrors) {
  CliResult ambiguous = Deja({"cache", "show", "07d6c4"});
  EXPECT_EQ(ambiguous.code, kExitError);
  EXPECT_EQ(ambiguous.err,
            "deja: hash prefix 07d6c4 matches 2 memo entries; give more characters (or "
            "--project)\n");
  CliResult none = Deja({"cache", "show", "abc", "--project", "ml"});
  EXPECT_EQ(none.code, kExitError);
  EXPECT_EQ(none.err, "deja: no memo entry in project ml has a hash starting with abc\n");
  CliResult missing = Deja({"cache", "show", "j99"});
  EXPECT_EQ(missing.code, kExitError);
  EXPECT_EQ(missing.err, "deja: no memo entry\n");
  CliResult garbage = Deja({"cache", "show", "not-a-hash"});
  EXPECT_EQ(garbage.code, kExitUsage);
  EXPECT_EQ(Deja({"cache", "show"}).code, kExitUsage);
}

TEST_F(MemoCliTest, CacheEvict) {
  CliResult by_app = Deja({"cache", "evict", "--app", "train", "--project", "ml"});
  ASSERT_EQ(by_app.code, 0) << by_app.err;
  EXPECT_EQ(by_app.out,
            "evicted 2 entries\n"
            "HASH          PROJECT  APP    SOURCE-JOB  SIZE     CREATED              EXPIRES\n"
            "07d6c4085d36  ml       train  j12         1.5 KiB  2023-11-14 22:13:20  "
            "2023-11-15 22:13:20\n"
            "07d6c4ffffff  ml       train  j13         1.5 KiB  2023-11-14 22:13:20  "
            "2023-11-15 22:13:20\n");
  CliResult json = Deja({"cache", "evict", "--app", "eval", "--json"});
  ASSERT_EQ(json.code, 0) << json.err;
  EXPECT_EQ(std::count(json.out.begin(), json.out.end(), '\n'), 1) << json.out;
  EXPECT_FALSE(absl::StrContains(json.out, "evicted")) << json.out;

  const int64_t before_call = absl::ToUnixMillis(absl::Now());
  CliResult by_age = Deja({"cache", "evict", "--before", "2h"});
  const int64_t after_call = absl::ToUnixMillis(absl::Now());
  ASSERT_EQ(by_age.code, 0) << by_age.err;
  EXPECT_EQ(by_age.out, "evicted 0 entries\n");
  CliResult by_prefix = Deja({"cache", "evict", "07d6c4085"});
  ASSERT_EQ(by_prefix.code, 0) << by_prefix.err;

  std::vector<deja::v1::EvictMemoRequest> requests = fake_.evict_memo_requests();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[0].app_name(), "train");
  EXPECT_EQ(requests[0].project(), "ml");
  EXPECT_EQ(requests[0].job_hash(), "");
  EXPECT_EQ(requests[0].before_ms(), 0);
  EXPECT_GE(requests[2].before_ms(), before_call - 2 * 3'600'000);
  EXPECT_LE(requests[2].before_ms(), after_call - 2 * 3'600'000);
  EXPECT_EQ(requests[2].app_name(), "");
  EXPECT_EQ(requests[3].job_hash(), kHashA);
  EXPECT_EQ(requests[3].project(), "ml");
}

TEST_F(MemoCliTest, CacheEvictUsageErrors) {
  for (std::vector<std::string> args : {std::vector<std::string>{"cache", "evict"},
                                        {"cache", "evict", "--project", "ml"},
                                        {"cache", "evict", kHashA, "--app", "train"},
                                        {"cache", "evict", "--app", "train", "--before", "2h"},
                                        {"cache", "evict", "--before", "last tuesday"},
                                        {"cache", "evict", "zz"}}) {
    CliResult result = Deja(args);
    EXPECT_EQ(result.code, kExitUsage) << absl::StrJoin(args, " ") << ": " << result.err;
    EXPECT_TRUE(absl::StartsWith(result.err, "deja: ")) << result.err;
  }
  EXPECT_TRUE(fake_.evict_memo_requests().empty());
}

TEST_F(MemoCliTest, Explain) {
  CliResult result = Deja({"explain", "j14"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out, ExplainText(NoMatch()));
  CliResult json = Deja({"explain", "j14", "--json"});
  ASSERT_EQ(json.code, 0) << json.err;
  EXPECT_TRUE(absl::StrContains(json.out, "\"verdict\":\"NO_MATCHING_ENTRY\"")) << json.out;
  EXPECT_EQ(std::count(json.out.begin(), json.out.end(), '\n'), 1);
  CliResult missing = Deja({"explain", "j99"});
  EXPECT_EQ(missing.code, kExitError);
  EXPECT_EQ(missing.err, "deja: job j99 not found\n");
}

TEST_F(MemoCliTest, Stats) {
  CliResult result = Deja({"stats", "--project", "ml", "--since", "2026-11-22T10:00:00Z"});
  ASSERT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out, StatsTable(SomeStats()) + "\ncontent store: not collected yet\n");
  CliResult all = Deja({"stats"});
  ASSERT_EQ(all.code, 0) << all.err;
  CliResult json = Deja({"stats", "--json"});
  ASSERT_EQ(json.code, 0) << json.err;
  EXPECT_EQ(std::count(json.out.begin(), json.out.end(), '\n'), 1);
  EXPECT_TRUE(absl::StrContains(json.out, "\"reuse_rate\":0.75")) << json.out;
  EXPECT_EQ(Deja({"stats", "--since", "a while"}).code, kExitUsage);
  std::vector<deja::v1::StatsRequest> requests = fake_.stats_requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].project(), "ml");
  EXPECT_EQ(requests[0].since_ms(), 1'795'341'600'000);
  EXPECT_EQ(requests[1].project(), "");
  EXPECT_EQ(requests[1].since_ms(), 0);
}

TEST_F(MemoCliTest, RunPrintsWhatAWaitingJobWaitsFor) {
  CliResult result = Deja({"run", "--memoization", "on", "--", "echo", "hi"});
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.out,
            "j5 WAITING for j4 (identical job in flight)\n"
            "j5 MATERIALIZING from j4 on w-a\n"
            "j5 SUCCEEDED reused from j4, saved 1.2s\n");
  CliResult submit = Deja({"submit", "--", "echo", "hi"});
  EXPECT_EQ(submit.out, "j5 waiting for j4 (identical job in flight)\n");
  std::vector<deja::v1::JobSpec> submitted = fake_.submitted();
  ASSERT_EQ(submitted.size(), 2u);
  EXPECT_EQ(submitted[0].memoization(), deja::v1::MEMOIZATION_ON);
}

TEST_F(MemoCliTest, StatusShowsRetentionAndMemoization) {
  {
    Job job = MakeJob("j12", deja::v1::SUCCEEDED);
    job.set_finished_at_ms(kT0);
    job.set_expires_at_ms(kT0 + 3'600'000);  // long past
    job.set_memoization_off_reason("app x has side_effects: true");
    fake_.AddJob(job);
    Job fresh = MakeJob("j13", deja::v1::SUCCEEDED);
    fresh.set_finished_at_ms(kT0);
    fresh.set_expires_at_ms(absl::ToUnixMillis(absl::Now() + absl::Hours(24)));
    fake_.AddJob(fresh);
  }
  CliResult expired = Deja({"status", "j12"});
  ASSERT_EQ(expired.code, 0) << expired.err;
  EXPECT_TRUE(absl::StrContains(expired.out, "workspace    expired at 2023-11-14 23:13:20\n"))
      << expired.out;
  EXPECT_TRUE(absl::StrContains(expired.out, "memoization  off: app x has side_effects: true\n"))
      << expired.out;
  CliResult fresh = Deja({"status", "j13"});
  ASSERT_EQ(fresh.code, 0) << fresh.err;
  EXPECT_TRUE(absl::StrContains(fresh.out, "\nexpires  ")) << fresh.out;
  EXPECT_FALSE(absl::StrContains(fresh.out, "expired")) << fresh.out;
}

}  // namespace
}  // namespace deja::cli
