#include "client/cli.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/deja_client.h"
#include "client/hash_cache.h"
#include "client/inputs.h"
#include "client/pipeline_cli.h"
#include "client/progress.h"
#include "common/errors.h"
#include "common/files.h"
#include "common/job_spec.h"
#include "common/job_state.h"

namespace deja {
namespace cli {
namespace {

using deja::v1::Job;

std::string StateName(deja::v1::JobState state) { return std::string(JobStateName(state)); }

absl::Status InvalidFlag(absl::string_view flag, absl::string_view arg, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(flag, " \"", arg, "\": ", problem));
}

// Adds every "K=V" of `args` to `map`.
absl::Status AddKeyValues(absl::string_view flag, const std::vector<std::string>& args,
                          google::protobuf::Map<std::string, std::string>* map) {
  for (const std::string& arg : args) {
    absl::StatusOr<std::pair<std::string, std::string>> kv = ParseKeyValue(flag, arg);
    if (!kv.ok()) return kv.status();
    if (!map->insert({kv->first, kv->second}).second) {
      return InvalidFlag(flag, arg, absl::StrCat("key \"", kv->first, "\" given twice"));
    }
  }
  return absl::OkStatus();
}

// Pads `cell` to `width` bytes.
std::string Pad(const std::string& cell, size_t width) {
  std::string padded = cell;
  if (padded.size() < width) padded.append(width - padded.size(), ' ');
  return padded;
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

// Run time of a job for tables: the recorded run time, else finished -
// started, else time since start for a job still going, else "".
std::string JobDuration(const Job& job, absl::Time now) {
  if (job.run_time_ms() > 0) return FormatDuration(job.run_time_ms());
  if (job.started_at_ms() > 0 && job.finished_at_ms() >= job.started_at_ms()) {
    return FormatDuration(job.finished_at_ms() - job.started_at_ms());
  }
  if (job.started_at_ms() > 0 && !IsTerminal(job.state())) {
    return FormatDuration(absl::ToUnixMillis(now) - job.started_at_ms());
  }
  return "";
}

// A job hash is XXH3-128 in hex.
constexpr size_t kFullHashLength = 32;
// Table cells of `deja explain` longer than this are shortened.
constexpr size_t kMaxDiffCell = 60;

bool IsHex(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

std::string Shorten(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  return s.substr(0, max - 3) + "...";
}

std::string AllStateNames() {
  std::vector<std::string> names;
  const auto* descriptor = deja::v1::JobState_descriptor();
  for (int i = 0; i < descriptor->value_count(); ++i) {
    auto state = static_cast<deja::v1::JobState>(descriptor->value(i)->number());
    if (state != deja::v1::JOB_STATE_UNSPECIFIED) names.push_back(StateName(state));
  }
  return absl::StrJoin(names, ", ");
}

// ---------------------------------------------------------------------------
// Command execution.

struct GlobalFlags {
  std::string scheduler;
  bool json = false;
  double timeout_seconds = 0;  // 0: the default
};

// What every command needs once arguments are parsed.
class Runner {
 public:
  Runner(const GlobalFlags& global, std::ostream& out, std::ostream& err)
      : json_(global.json),
        out_(out),
        err_(err),
        tz_(absl::LocalTimeZone()),
        progress_(StderrIsTerminal(err)),
        client_(ResolveScheduler(global.scheduler),
                DejaClientOptions{.rpc_timeout = global.timeout_seconds > 0
                                                     ? absl::Seconds(global.timeout_seconds)
                                                     : kDefaultRpcTimeout}) {}

  int Submit(const SpecFlags& flags, bool dry_run);
  int Run(const SpecFlags& flags);
  int Status(const std::string& job_id);
  int Get(const std::string& job_id, const std::string& out_dir);
  int Logs(const std::string& job_id, bool stderr_stream);
  int List(const std::string& project, const std::string& state, uint32_t limit);
  int Cancel(const std::string& job_id);
  int Workers();
  int ProjectGet(const std::string& project);
  int ProjectSet(const std::string& project, const std::string& memoization,
                 std::optional<int32_t> retention_hours);
  int CacheList(const std::string& project, const std::string& app, uint32_t limit);
  int CacheShow(const std::string& arg, const std::string& project);
  int CacheEvict(const EvictFlags& flags);
  int Explain(const std::string& job_id);
  int Stats(const std::string& project, const std::string& since);
  // `deja pipeline ...` (client/pipeline_cli.h).
  PipelineCommands Pipelines();

 private:
  // Prints "deja: <message>" and returns kExitError.
  int Fail(const absl::Status& status);
  int UsageError(const absl::Status& status);
  void PrintJson(const google::protobuf::Message& message) { out_ << ToJson(message) << "\n"; }
  // Builds the spec from `flags`: checks every flag first, then hashes the
  // inputs (through the hash cache) and, when `upload`, uploads the blobs
  // the store lacks, printing what it did on stderr. Sets *exit_code on
  // failure.
  std::optional<deja::v1::JobSpec> PrepareSpec(const SpecFlags& flags, bool upload,
                                               int* exit_code);
  // Submits the spec built from `flags` (PrepareSpec with upload); prints
  // nothing but the upload line. Sets *exit_code on failure.
  std::optional<deja::v1::SubmitResponse> DoSubmit(const SpecFlags& flags, int* exit_code);
  // The full hash of the one memo entry of `project` (empty: any) whose hash
  // starts with `prefix` (which may be a whole hash), found with ListMemo.
  // Sets *project to the entry's project. NOT_FOUND when none matches,
  // FAILED_PRECONDITION when several do.
  absl::StatusOr<std::string> ResolveHash(const std::string& prefix, std::string* project);

  const bool json_;
  std::ostream& out_;
  std::ostream& err_;
  const absl::TimeZone tz_;
  const bool progress_;  // draw progress bars on err_
  DejaClient client_;
};

int Runner::Fail(const absl::Status& status) { return ReportCallError(client_, err_, status); }

int Runner::UsageError(const absl::Status& status) {
  err_ << "deja: " << status.message() << "\n";
  return kExitUsage;
}

std::optional<deja::v1::JobSpec> Runner::PrepareSpec(const SpecFlags& flags, bool upload,
                                                     int* exit_code) {
  std::vector<InputFlag> input_flags;
  std::vector<deja::v1::InputRef> placeholders;
  for (const std::string& arg : flags.inputs) {
    absl::StatusOr<InputFlag> flag = ParseInputFlag(arg);
    if (!flag.ok()) {
      *exit_code = UsageError(flag.status());
      return std::nullopt;
    }
    deja::v1::InputRef ref;
    ref.set_name(flag->name);
    ref.set_kind("file");
    ref.set_digest(std::string(32, '0'));
    ref.set_path(flag->workspace_path);
    placeholders.push_back(std::move(ref));
    input_flags.push_back(*std::move(flag));
  }
  // Every check that needs no input content, before reading any input.
  absl::StatusOr<deja::v1::JobSpec> spec = BuildJobSpec(flags, placeholders);
  if (!spec.ok()) {
    *exit_code = UsageError(spec.status());
    return std::nullopt;
  }
  if (input_flags.empty()) {
    if (flags.timing) err_ << "deja: " << FormatInputTiming({}) << "\n";
    return *std::move(spec);
  }

  // The input phase, timed for --timing: the hash cache's load and save are
  // part of what a re-submit costs.
  const auto start = std::chrono::steady_clock::now();
  std::string warning;
  std::unique_ptr<HashCache> cache = HashCache::Load(HashCache::DefaultPath(), {}, &warning);
  if (!warning.empty()) err_ << "deja: warning: " << warning << "\n";
  absl::StatusOr<PreparedInputs> prepared = PrepareInputs(input_flags, cache->AsFileHasher());
  if (absl::Status saved = cache->Save(); !saved.ok()) {
    err_ << "deja: warning: cannot save the hash cache: " << saved.message() << "\n";
  }
  if (flags.timing) {
    InputTiming timing{
        .elapsed = absl::FromChrono(std::chrono::steady_clock::now() - start),
        .hashed_files = cache->misses(),
        .hashed_bytes = cache->miss_bytes(),
        .cached_files = cache->hits(),
        .cached_bytes = cache->hit_bytes(),
    };
    err_ << "deja: " << FormatInputTiming(timing) << "\n";
  }
  if (!prepared.ok()) {
    // A missing or unreadable PATH is the command line's fault.
    bool usage = absl::IsInvalidArgument(prepared.status()) ||
                 absl::IsNotFound(prepared.status()) ||
                 absl::IsPermissionDenied(prepared.status());
    *exit_code = usage ? UsageError(prepared.status()) : Fail(prepared.status());
    return std::nullopt;
  }
  if (upload) {
    absl::StatusOr<UploadReport> report;
    {
      ProgressBar bar(err_, progress_, "uploading");
      report = UploadMissing(client_.blobs(), prepared->blobs,
                             [&bar](uint64_t done, uint64_t total) { bar.Update(done, total); });
    }
    if (!report.ok()) {
      *exit_code = Fail(report.status());
      return std::nullopt;
    }
    err_ << FormatUploadReport(*report) << "\n";
  }
  spec->clear_inputs();
  for (deja::v1::InputRef& ref : prepared->refs) *spec->add_inputs() = std::move(ref);
  if (absl::Status valid = ValidateJobSpec(*spec); !valid.ok()) {
    *exit_code = UsageError(valid);
    return std::nullopt;
  }
  return *std::move(spec);
}

std::optional<deja::v1::SubmitResponse> Runner::DoSubmit(const SpecFlags& flags,
                                                         int* exit_code) {
  std::optional<deja::v1::JobSpec> spec = PrepareSpec(flags, /*upload=*/true, exit_code);
  if (!spec.has_value()) return std::nullopt;
  absl::StatusOr<deja::v1::SubmitResponse> response = client_.Submit(*spec);
  if (!response.ok()) {
    *exit_code = Fail(response.status());
    return std::nullopt;
  }
  return *std::move(response);
}

int Runner::Submit(const SpecFlags& flags, bool dry_run) {
  int exit_code = kExitOk;
  if (dry_run) {
    std::optional<deja::v1::JobSpec> spec = PrepareSpec(flags, /*upload=*/false, &exit_code);
    if (!spec.has_value()) return exit_code;
    PrintJson(*spec);
    return kExitOk;
  }
  std::optional<deja::v1::SubmitResponse> response = DoSubmit(flags, &exit_code);
  if (!response.has_value()) return exit_code;
  if (json_) {
    PrintJson(response->job());
  } else {
    out_ << FormatSubmitLine(*response) << "\n";
  }
  return kExitOk;
}

int Runner::Run(const SpecFlags& flags) {
  int exit_code = kExitOk;
  std::optional<deja::v1::SubmitResponse> response = DoSubmit(flags, &exit_code);
  if (!response.has_value()) return exit_code;
  const std::string job_id = response->job().job_id();

  // Every update goes through here, across re-watches; a re-watch starts
  // with the job as it is now, which must not print a second line.
  std::string last_key;
  std::optional<Job> last_job;
  bool interrupted = false;
  absl::Duration backoff = absl::Milliseconds(250);
  auto on_update = [&](const Job& job) {
    if (interrupted) {
      interrupted = false;
      backoff = absl::Milliseconds(250);
    }
    if (json_) {
      if (!last_job.has_value() ||
          !google::protobuf::util::MessageDifferencer::Equals(*last_job, job)) {
        PrintJson(job);
        out_.flush();
      }
    } else if (std::string key = StateLineKey(job); key != last_key) {
      out_ << FormatStateLine(job) << "\n";
      out_.flush();
      last_key = key;
    }
    last_job = job;
  };
  while (true) {
    absl::StatusOr<Job> job = client_.WatchJob(job_id, on_update);
    if (job.ok() && IsTerminal(job->state())) return ExitCodeForJob(*job);
    if (!job.ok() && !IsRetryableWatchError(job.status())) return Fail(job.status());
    if (!interrupted) {
      std::string why = job.ok() ? "stream ended" : std::string(job.status().message());
      err_ << "deja: lost the watch of " << job_id << " (" << why << "); watching again\n";
      interrupted = true;
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
}

int Runner::Status(const std::string& job_id) {
  absl::StatusOr<Job> job = client_.GetJob(job_id);
  if (!job.ok()) return Fail(job.status());
  if (json_) {
    PrintJson(*job);
  } else {
    out_ << RenderKeyValues(StatusRows(*job, tz_, absl::Now()));
    if (std::string inputs = InputsTable(*job); !inputs.empty()) out_ << "\n" << inputs;
    if (std::string outputs = OutputsTable(*job); !outputs.empty()) out_ << "\n" << outputs;
  }
  return kExitOk;
}

int Runner::Get(const std::string& job_id, const std::string& out_dir) {
  absl::StatusOr<Job> job = client_.GetJob(job_id);
  if (!job.ok()) return Fail(job.status());
  if (job->state() != deja::v1::SUCCEEDED) {
    return Fail(absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, " is ", StateName(job->state()),
                     "; only a SUCCEEDED job has outputs to get")));
  }
  if (job->outputs().empty()) {
    return Fail(absl::FailedPreconditionError(absl::StrCat(
        "job ", job_id, " has no outputs (declare them with --output when submitting)")));
  }
  const std::string dir = GetOutputDir(job_id, out_dir);
  uint64_t total = 0;
  for (int i = 0; i < job->outputs_size(); ++i) {
    const deja::v1::OutputFile& output = job->outputs(i);
    // The scheduler's record is trusted no further than a user's flag.
    if (absl::Status s = ValidateWorkspacePath(absl::StrCat("outputs[", i, "].path"),
                                               output.path());
        !s.ok()) {
      return Fail(s);
    }
    total += output.size();
  }
  uint64_t done = 0;
  {
    ProgressBar bar(err_, progress_, "downloading");
    for (const deja::v1::OutputFile& output : job->outputs()) {
      const std::string dest = absl::StrCat(dir, "/", output.path());
      absl::Status status = MakeParentDirs(dest);
      deja::v1::BlobRef blob;
      blob.set_digest(output.digest());
      blob.set_size(output.size());
      if (status.ok()) {
        status = client_.blobs().DownloadToFile(
            blob, dest, [&](uint64_t moved) { bar.Update(done + moved, total); });
      }
      mode_t mode = static_cast<mode_t>(output.mode() & 0777);
      if (status.ok() && chmod(dest.c_str(), mode == 0 ? 0644 : mode) != 0) {
        status = ErrnoStatus(errno, "chmod " + dest);
      }
      if (!status.ok()) {
        bar.Clear();
        return Fail(absl::Status(status.code(), absl::StrCat("get ", output.path(), " of ",
                                                             job_id, ": ", status.message())));
      }
      done += output.size();
      bar.Update(done, total);
    }
  }
  if (json_) {
    for (const deja::v1::OutputFile& output : job->outputs()) PrintJson(output);
  } else {
    out_ << FormatGetLine(job_id, static_cast<uint64_t>(job->outputs_size()), total, dir) << "\n";
  }
  return kExitOk;
}

int Runner::Logs(const std::string& job_id, bool stderr_stream) {
  absl::StatusOr<Job> job = client_.GetJob(job_id);
  if (!job.ok()) return Fail(job.status());
  if (!json_) {
    std::string banner = ReuseBanner(*job, tz_);
    if (!banner.empty()) out_ << banner << "\n";
  }
  absl::StatusOr<uint64_t> read =
      client_.StreamLogs(job_id, stderr_stream ? deja::v1::LOG_STDERR : deja::v1::LOG_STDOUT,
                         [this](absl::string_view chunk) {
                           out_.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
                         });
  out_.flush();
  if (!read.ok()) return Fail(read.status());
  return kExitOk;
}

int Runner::List(const std::string& project, const std::string& state_name, uint32_t limit) {
  deja::v1::JobState state = deja::v1::JOB_STATE_UNSPECIFIED;
  if (!state_name.empty()) {
    std::optional<deja::v1::JobState> parsed = ParseJobState(state_name);
    if (!parsed.has_value()) {
      return UsageError(InvalidFlag("--state", state_name,
                                    absl::StrCat("not a job state; use one of ", AllStateNames())));
    }
    state = *parsed;
  }
  absl::StatusOr<std::vector<Job>> jobs = client_.ListJobs(project, state, limit);
  if (!jobs.ok()) return Fail(jobs.status());
  if (json_) {
    for (const Job& job : *jobs) PrintJson(job);
  } else {
    out_ << JobsTable(*jobs, tz_, absl::Now());
  }
  return kExitOk;
}

int Runner::Cancel(const std::string& job_id) {
  absl::StatusOr<Job> job = client_.CancelJob(job_id);
  if (!job.ok()) return Fail(job.status());
  if (json_) {
    PrintJson(*job);
  } else {
    out_ << job->job_id() << " " << StateName(job->state()) << "\n";
  }
  return kExitOk;
}

int Runner::Workers() {
  absl::StatusOr<std::vector<deja::v1::WorkerInfo>> workers = client_.ListWorkers();
  if (!workers.ok()) return Fail(workers.status());
  if (json_) {
    for (const auto& worker : *workers) PrintJson(worker);
  } else {
    out_ << WorkersTable(*workers);
  }
  return kExitOk;
}

int Runner::ProjectGet(const std::string& project) {
  absl::StatusOr<deja::v1::ProjectSettings> settings = client_.GetProject(project);
  if (!settings.ok()) return Fail(settings.status());
  if (json_) {
    PrintJson(*settings);
  } else {
    out_ << RenderKeyValues(ProjectRows(*settings, tz_));
  }
  return kExitOk;
}

int Runner::ProjectSet(const std::string& project, const std::string& memoization,
                       std::optional<int32_t> retention_hours) {
  absl::StatusOr<deja::v1::SetProjectRequest> request =
      BuildSetProjectRequest(project, memoization, retention_hours);
  if (!request.ok()) return UsageError(request.status());
  absl::StatusOr<deja::v1::ProjectSettings> settings = client_.SetProject(*request);
  if (!settings.ok()) return Fail(settings.status());
  if (json_) {
    PrintJson(*settings);
  } else {
    out_ << RenderKeyValues(ProjectRows(*settings, tz_));
  }
  return kExitOk;
}

int Runner::CacheList(const std::string& project, const std::string& app, uint32_t limit) {
  absl::StatusOr<std::vector<deja::v1::MemoEntry>> entries =
      client_.ListMemo(project, app, limit);
  if (!entries.ok()) return Fail(entries.status());
  if (json_) {
    for (const auto& entry : *entries) PrintJson(entry);
  } else {
    out_ << MemoTable(*entries, tz_);
  }
  return kExitOk;
}

absl::StatusOr<std::string> Runner::ResolveHash(const std::string& prefix, std::string* project) {
  absl::StatusOr<std::vector<deja::v1::MemoEntry>> entries = client_.ListMemo(*project, "", 0);
  if (!entries.ok()) return entries.status();
  std::vector<const deja::v1::MemoEntry*> matches;
  for (const auto& entry : *entries) {
    if (absl::StartsWith(entry.job_hash(), prefix)) matches.push_back(&entry);
  }
  std::string where = project->empty() ? "" : absl::StrCat(" in project ", *project);
  if (matches.empty()) {
    return absl::NotFoundError(absl::StrCat("no memo entry", where, " has a hash starting with ",
                                            prefix));
  }
  if (matches.size() > 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("hash prefix ", prefix, " matches ", matches.size(), " memo entries", where,
                     "; give more characters (or --project)"));
  }
  *project = matches[0]->project();
  return matches[0]->job_hash();
}

int Runner::CacheShow(const std::string& arg, const std::string& project) {
  std::string lowered = absl::AsciiStrToLower(arg);
  if (!LooksLikeJobId(arg) && !IsHex(lowered)) {
    return UsageError(absl::InvalidArgumentError(
        absl::StrCat("\"", arg, "\" is neither a job id (j12) nor a job hash (hex)")));
  }
  deja::v1::GetMemoRequest request = BuildGetMemoRequest(arg, project);
  // A hash prefix, or a whole hash of an unnamed project, is looked up in
  // the index first (GetMemo wants a whole hash and its project).
  if (!LooksLikeJobId(arg) && (lowered.size() < kFullHashLength || project.empty())) {
    std::string resolved_project = project;
    absl::StatusOr<std::string> hash = ResolveHash(lowered, &resolved_project);
    if (!hash.ok()) return Fail(hash.status());
    request.set_job_hash(*hash);
    request.set_project(resolved_project);
  }
  absl::StatusOr<deja::v1::MemoEntry> entry = client_.GetMemo(request);
  if (!entry.ok()) return Fail(entry.status());
  if (json_) {
    PrintJson(*entry);
  } else {
    out_ << RenderKeyValues(MemoRows(*entry, tz_));
    if (std::string outputs = MemoOutputsTable(*entry); !outputs.empty()) {
      out_ << "\n" << outputs;
    }
  }
  return kExitOk;
}

int Runner::CacheEvict(const EvictFlags& flags) {
  absl::StatusOr<deja::v1::EvictMemoRequest> request =
      BuildEvictRequest(flags, absl::Now(), tz_);
  if (!request.ok()) return UsageError(request.status());
  if (!request->job_hash().empty() && request->job_hash().size() < kFullHashLength) {
    std::string project = request->project();
    absl::StatusOr<std::string> hash = ResolveHash(request->job_hash(), &project);
    if (!hash.ok()) return Fail(hash.status());
    request->set_job_hash(*hash);
    request->set_project(project);
  }
  absl::StatusOr<std::vector<deja::v1::MemoEntry>> evicted = client_.EvictMemo(*request);
  if (!evicted.ok()) return Fail(evicted.status());
  if (json_) {
    for (const auto& entry : *evicted) PrintJson(entry);
  } else {
    out_ << FormatEvictLine(evicted->size()) << "\n";
    if (!evicted->empty()) out_ << MemoTable(*evicted, tz_);
  }
  return kExitOk;
}

int Runner::Explain(const std::string& job_id) {
  absl::StatusOr<deja::v1::ExplainResponse> response = client_.Explain(job_id);
  if (!response.ok()) return Fail(response.status());
  if (json_) {
    PrintJson(*response);
  } else {
    out_ << ExplainText(*response);
  }
  return kExitOk;
}

int Runner::Stats(const std::string& project, const std::string& since) {
  int64_t since_ms = 0;
  if (!since.empty()) {
    absl::StatusOr<absl::Time> time = ParseTimeFlag("--since", since, absl::Now(), tz_);
    if (!time.ok()) return UsageError(time.status());
    since_ms = std::max<int64_t>(absl::ToUnixMillis(*time), 0);
  }
  absl::StatusOr<deja::v1::StatsResponse> stats = client_.Stats(project, since_ms);
  if (!stats.ok()) return Fail(stats.status());
  if (json_) {
    PrintJson(*stats);
  } else {
    out_ << StatsTable(*stats);
  }
  return kExitOk;
}

PipelineCommands Runner::Pipelines() {
  PipelineCommandOptions options;
  options.json = json_;
  options.live = StdoutIsTerminal(out_, &options.width);
  options.progress = progress_;
  options.tz = tz_;
  return PipelineCommands(client_, out_, err_, options);
}

// ---------------------------------------------------------------------------
// Argument definitions.

constexpr char kDescription[] =
    "deja: the client of Deja, a distributed job scheduler that never runs the same job "
    "twice.\nIdentical jobs (same app, command, env, params and inputs) are served from an "
    "earlier success instead of running again.";

constexpr char kFooter[] =
    "Every command also takes --scheduler, --json and --timeout.\n"
    "Environment: DEJA_SCHEDULER is the scheduler address when --scheduler is not given "
    "(default 127.0.0.1:7070).\n"
    "Exit codes: 0 success; 1 error from the scheduler or the connection; 2 usage error; "
    "`deja run` exits with the job's exit code (reused success 0, failure without an exit "
    "code 1, cancelled 130); `deja pipeline run|retry` with 0 when the pipeline succeeded, "
    "else 1.\n"
    "Examples:\n"
    "  deja run --param n=3 -- ./train.sh '${params.n}'\n"
    "  deja submit --project ml --output 'out/*.csv' -- python prep.py\n"
    "  deja ls --state RUNNING\n"
    "  deja logs j12 --stderr\n"
    "  deja run --input data=./dataset --output 'out/*' -- ./train.sh '${inputs.data}'\n"
    "  deja get j12 --out results\n"
    "  deja run --memoization off -- ./sample.sh\n"
    "  deja project set ml --memoization on --retention 72\n"
    "  deja cache ls --project ml\n"
    "  deja explain j14\n"
    "  deja pipeline run examples/pipeline/pipeline.yaml --param threshold=0.6\n"
    "  deja pipeline plan examples/pipeline/pipeline.yaml --force-node train\n"
    "See docs/cli.md, docs/memoization.md and docs/pipelines.md for the full reference.";

void AddGlobalFlags(CLI::App* app, GlobalFlags* global) {
  app->add_option("--scheduler", global->scheduler,
                  "Scheduler address HOST:PORT (else $DEJA_SCHEDULER, else 127.0.0.1:7070)")
      ->type_name("HOST:PORT");
  app->add_flag("--json", global->json,
                "Machine output: protobuf JSON (snake_case field names), one object per line");
  app->add_option("--timeout", global->timeout_seconds,
                  "Deadline of each request to the scheduler, in seconds (default 30)")
      ->type_name("SECONDS")
      ->check(CLI::PositiveNumber);
}

void AddPipelineFlags(CLI::App* app, PipelineFlags* flags) {
  app->add_option("FILE", flags->file, "Pipeline YAML file (docs/pipelines.md)")->required();
  app->add_option("--param", flags->params,
                  "Value of a pipeline parameter, overriding the file's default (repeatable)")
      ->type_name("K=V")
      ->allow_extra_args(false);
  app->add_option("--project", flags->project, "Project (default: the file's, else \"default\")")
      ->type_name("P");
  app->add_flag("--force", flags->force, "Every node runs fresh (no lookup); successes replace "
                                         "the memo entries");
  app->add_option("--force-node", flags->force_nodes,
                  "This node runs fresh (repeatable); what depends on it is looked up as usual")
      ->type_name("N")
      ->allow_extra_args(false);
  app->add_flag("--no-reuse", flags->no_reuse,
                "Pipeline-wide reuse off: every node runs and none is memoized");
}

void AddSpecFlags(CLI::App* app, SpecFlags* flags) {
  app->add_option("--project", flags->project, "Project of the job (default \"default\")")
      ->type_name("P");
  app->add_option("--name", flags->name, "App name (default: the command's basename)")
      ->type_name("APP");
  app->add_option("--version", flags->version, "App version; part of the job's identity")
      ->type_name("V");
  app->add_option("--env", flags->env, "Environment variable of the command (repeatable)")
      ->type_name("K=V")
      ->allow_extra_args(false);
  app->add_option("--param", flags->params,
                  "Parameter, usable in the command as ${params.K} (repeatable)")
      ->type_name("K=V")
      ->allow_extra_args(false);
  app->add_option("--output", flags->outputs,
                  "Declared output glob, relative to the workspace (repeatable)")
      ->type_name("GLOB")
      ->allow_extra_args(false);
  app->add_option("--input", flags->inputs,
                  "Input file or directory, uploaded to the content store if it lacks it and "
                  "placed at WORKSPACE_PATH (default inputs/NAME); use in the command as "
                  "${inputs.NAME} (repeatable)")
      ->type_name("NAME=PATH[:WORKSPACE_PATH]")
      ->allow_extra_args(false);
  app->add_option("--request-id", flags->request_id,
                  "Idempotency key: resubmitting with the same id returns the same job "
                  "(default: 16 random hex characters)")
      ->type_name("ID");
  app->add_option("--image", flags->image, "Container image of the app")->type_name("IMAGE");
  app->add_option("--platform", flags->platform,
                  "Platform property the worker must have (repeatable)")
      ->type_name("K=V")
      ->allow_extra_args(false);
  app->add_option("--label", flags->labels, "Label of the job; not part of its identity")
      ->type_name("K=V")
      ->allow_extra_args(false);
  app->add_option("--cache-key", flags->cache_key,
                  "Only these params enter the job's identity (repeatable)")
      ->type_name("PARAM")
      ->allow_extra_args(false);
  app->add_option("--memoization", flags->memo,
                      "Memoization of this job: on, off, or inherit the project's setting "
                      "(default). Ignored (off) for --no-reuse and --side-effects apps")
          ->type_name("MODE")
          ->check(CLI::IsMember({"on", "off", "inherit"}, CLI::ignore_case));
  // The former name, kept working but out of --help (CLI11 names hidden
  // options in no message, so BuildJobSpec checks it).
  app->add_option("--memo", flags->memo_alias, "Alias of --memoization")->group("");
  app->add_flag("--force", flags->force,
                "Run even if an identical job already succeeded (no lookup); a success "
                "replaces the memo entry");
  app->add_flag("--no-reuse", flags->no_reuse,
                "Mark the app non-deterministic (app.reuse=false): it always executes and is "
                "never memoized");
  app->add_flag("--side-effects", flags->side_effects,
                "Mark the app as having side effects (app.side_effects=true): it always "
                "executes and is never memoized");
  app->add_option("--reuse", flags->reuse_job,
                  "Reuse this earlier successful job of the same app and project instead of "
                  "looking one up")
      ->type_name("JOB");
  app->add_option("--reuse-job", flags->reuse_job_alias, "Alias of --reuse")->group("");
  app->add_flag("--timing", flags->timing,
                "Print on stderr how long hashing the inputs took (hash cache load and save "
                "included, upload not) and how many files and bytes were hashed or taken from "
                "the hash cache");
  app->add_option("CMD", flags->command,
                  "The command and its arguments, best after `--` (needed when they start "
                  "with '-')")
      ->type_name("ARGS")
      ->required();
}

}  // namespace

int ReportCallError(const DejaClient& client, std::ostream& err, const absl::Status& status) {
  if (status.code() == absl::StatusCode::kUnavailable && !client.Connected()) {
    err << "deja: cannot reach scheduler at " << client.target() << ": " << status.message()
        << "\n";
  } else {
    err << "deja: " << status.message() << "\n";
  }
  return kExitError;
}

// ---------------------------------------------------------------------------
// Pure pieces.

absl::StatusOr<std::pair<std::string, std::string>> ParseKeyValue(absl::string_view flag,
                                                                  absl::string_view arg) {
  size_t eq = arg.find('=');
  if (eq == absl::string_view::npos) return InvalidFlag(flag, arg, "expected KEY=VALUE");
  if (eq == 0) return InvalidFlag(flag, arg, "the key before '=' is empty; expected KEY=VALUE");
  return std::make_pair(std::string(arg.substr(0, eq)), std::string(arg.substr(eq + 1)));
}

absl::StatusOr<deja::v1::JobSpec> BuildJobSpec(const SpecFlags& flags,
                                               const std::vector<deja::v1::InputRef>& inputs) {
  deja::v1::JobSpec spec;
  spec.set_project(flags.project);
  deja::v1::AppSpec* app = spec.mutable_app();
  app->set_name(flags.name);
  app->set_version(flags.version);
  app->set_image(flags.image);
  for (const std::string& word : flags.command) app->add_command(word);
  if (auto s = AddKeyValues("--env", flags.env, app->mutable_env()); !s.ok()) return s;
  if (auto s = AddKeyValues("--platform", flags.platform, app->mutable_platform()); !s.ok()) {
    return s;
  }
  if (auto s = AddKeyValues("--param", flags.params, spec.mutable_params()); !s.ok()) return s;
  if (auto s = AddKeyValues("--label", flags.labels, spec.mutable_labels()); !s.ok()) return s;
  for (const std::string& key : flags.cache_key) app->add_cache_key(key);
  if (flags.no_reuse) app->set_reuse(false);
  app->set_side_effects(flags.side_effects);
  for (const std::string& glob : flags.outputs) spec.add_outputs(glob);
  for (const deja::v1::InputRef& input : inputs) *spec.add_inputs() = input;

  if (!flags.memo.empty() && !flags.memo_alias.empty()) {
    return InvalidFlag("--memo", flags.memo_alias, "is an alias of --memoization; give only one");
  }
  if (!flags.reuse_job.empty() && !flags.reuse_job_alias.empty()) {
    return InvalidFlag("--reuse-job", flags.reuse_job_alias,
                       "is an alias of --reuse; give only one");
  }
  const bool memo_alias = flags.memo.empty() && !flags.memo_alias.empty();
  const std::string& memo_arg = memo_alias ? flags.memo_alias : flags.memo;
  std::string memo = absl::AsciiStrToLower(memo_arg);
  if (memo.empty() || memo == "inherit") {
    spec.set_memoization(deja::v1::MEMOIZATION_INHERIT);
  } else if (memo == "on") {
    spec.set_memoization(deja::v1::MEMOIZATION_ON);
  } else if (memo == "off") {
    spec.set_memoization(deja::v1::MEMOIZATION_OFF);
  } else {
    return InvalidFlag(memo_alias ? "--memo" : "--memoization", memo_arg,
                       "expected on, off or inherit");
  }
  spec.set_force(flags.force);
  spec.set_reuse_job_id(flags.reuse_job.empty() ? flags.reuse_job_alias : flags.reuse_job);
  spec.set_request_id(flags.request_id.empty() ? RandomRequestId() : flags.request_id);

  NormalizeJobSpec(&spec);
  if (absl::Status s = ValidateJobSpec(spec); !s.ok()) return s;
  return spec;
}

std::string RandomRequestId() {
  std::random_device device;
  uint64_t value = (static_cast<uint64_t>(device()) << 32) ^ device();
  return absl::StrFormat("%016x", value);
}

std::string ResolveScheduler(const std::string& flag_value) {
  if (!flag_value.empty()) return flag_value;
  const char* env = std::getenv(kSchedulerEnv);
  if (env != nullptr && env[0] != '\0') return env;
  return kDefaultScheduler;
}

std::string FormatDuration(int64_t millis) {
  if (millis < 0) millis = 0;
  if (millis < 1000) return absl::StrCat(millis, "ms");
  if (millis < 60'000) return absl::StrFormat("%d.%ds", millis / 1000, (millis % 1000) / 100);
  int64_t seconds = millis / 1000;
  if (seconds < 3600) return absl::StrFormat("%dm%02ds", seconds / 60, seconds % 60);
  int64_t minutes = seconds / 60;
  return absl::StrFormat("%dh%02dm", minutes / 60, minutes % 60);
}

std::string FormatTimestamp(int64_t unix_millis, absl::TimeZone tz) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(unix_millis), tz);
}

std::string FormatBytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

std::string FormatApp(const deja::v1::AppSpec& app) {
  if (app.version().empty()) return app.name();
  return absl::StrCat(app.name(), "@", app.version());
}

std::string FormatCommand(const deja::v1::AppSpec& app) {
  std::vector<std::string> words;
  for (const std::string& word : app.command()) {
    bool plain = !word.empty() && word.find_first_of(" \t\n'\"\\$`") == std::string::npos;
    if (plain) {
      words.push_back(word);
      continue;
    }
    std::string quoted = "'";
    for (char c : word) {
      if (c == '\'') {
        quoted += "'\\''";
      } else {
        quoted += c;
      }
    }
    quoted += "'";
    words.push_back(quoted);
  }
  return absl::StrJoin(words, " ");
}

std::string RenderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::vector<std::string>> lines;
  if (!header.empty()) lines.push_back(header);
  for (const auto& row : rows) {
    std::vector<std::string> line;
    for (const std::string& cell : row) line.push_back(OrDash(cell));
    lines.push_back(std::move(line));
  }
  std::vector<size_t> widths;
  for (const auto& line : lines) {
    if (widths.size() < line.size()) widths.resize(line.size(), 0);
    for (size_t i = 0; i < line.size(); ++i) widths[i] = std::max(widths[i], line[i].size());
  }
  std::string text;
  for (const auto& line : lines) {
    std::string rendered;
    for (size_t i = 0; i < line.size(); ++i) {
      if (i > 0) rendered += "  ";
      rendered += (i + 1 == line.size()) ? line[i] : Pad(line[i], widths[i]);
    }
    while (!rendered.empty() && rendered.back() == ' ') rendered.pop_back();
    text += rendered;
    text += "\n";
  }
  return text;
}

std::string RenderKeyValues(const std::vector<std::pair<std::string, std::string>>& rows) {
  std::vector<std::vector<std::string>> table;
  for (const auto& [key, value] : rows) table.push_back({key, value});
  return RenderTable({}, table);
}

std::string FormatSubmitLine(const deja::v1::SubmitResponse& response) {
  const Job& job = response.job();
  if (response.reused()) {
    std::string line = absl::StrCat(job.job_id(), " reusing ", OrDash(job.reused_from()));
    if (job.time_saved_ms() > 0) {
      absl::StrAppend(&line, " (saves ", FormatDuration(job.time_saved_ms()), ")");
    }
    return line;
  }
  std::string line =
      absl::StrCat(job.job_id(), " ", absl::AsciiStrToLower(StateName(job.state())));
  if (job.state() == deja::v1::WAITING && !job.waiting_for().empty()) {
    absl::StrAppend(&line, " for ", job.waiting_for(), " (identical job in flight)");
  }
  return line;
}

std::string FormatStateLine(const Job& job) {
  std::string line = absl::StrCat(job.job_id(), " ", StateName(job.state()));
  const std::string& worker = job.worker_id();
  switch (job.state()) {
    case deja::v1::QUEUED:
      if (job.attempt() > 1) absl::StrAppend(&line, " (attempt ", job.attempt(), ")");
      break;
    case deja::v1::WAITING:
      if (!job.waiting_for().empty()) {
        absl::StrAppend(&line, " for ", job.waiting_for(), " (identical job in flight)");
      }
      if (job.attempt() > 1) absl::StrAppend(&line, " (attempt ", job.attempt(), ")");
      break;
    case deja::v1::ASSIGNED:
      if (!worker.empty()) absl::StrAppend(&line, " to ", worker);
      break;
    case deja::v1::RUNNING:
      if (!worker.empty()) absl::StrAppend(&line, " on ", worker);
      if (job.attempt() > 1) absl::StrAppend(&line, " (attempt ", job.attempt(), ")");
      break;
    case deja::v1::MATERIALIZING:
      if (!job.reused_from().empty()) absl::StrAppend(&line, " from ", job.reused_from());
      if (!worker.empty()) absl::StrAppend(&line, " on ", worker);
      break;
    case deja::v1::SUCCEEDED:
      if (!job.reused_from().empty()) {
        absl::StrAppend(&line, " reused from ", job.reused_from());
        if (job.time_saved_ms() > 0) {
          absl::StrAppend(&line, ", saved ", FormatDuration(job.time_saved_ms()));
        }
      } else {
        if (job.has_exit_code()) absl::StrAppend(&line, " exit ", job.exit_code());
        if (job.run_time_ms() > 0) {
          absl::StrAppend(&line, " in ", FormatDuration(job.run_time_ms()));
        }
      }
      break;
    case deja::v1::FAILED:
      if (job.has_exit_code()) absl::StrAppend(&line, " exit ", job.exit_code());
      break;
    default:
      break;
  }
  // A QUEUED line (after a requeue, a lookup that could not be served, or
  // the failure of the identical job it waited for), a failure or a cancel
  // explains itself.
  if (!job.message().empty() && job.state() != deja::v1::SUCCEEDED &&
      (IsTerminal(job.state()) || job.attempt() > 1 || job.state() == deja::v1::QUEUED)) {
    absl::StrAppend(&line, ": ", job.message());
  }
  return line;
}

std::string StateLineKey(const Job& job) {
  return absl::StrCat(static_cast<int>(job.state()), "/", job.attempt(), "/", job.worker_id(),
                      "/", job.waiting_for());
}

int ExitCodeForJob(const Job& job) {
  switch (job.state()) {
    case deja::v1::SUCCEEDED:
      return kExitOk;
    case deja::v1::CANCELLED:
      return kExitCancelled;
    case deja::v1::FAILED: {
      if (!job.has_exit_code() || job.exit_code() == 0) return kExitError;
      int code = job.exit_code();
      if (code < 0) return std::min(128 - code, 255);
      return std::min(code, 255);
    }
    default:
      return kExitError;
  }
}

std::vector<std::pair<std::string, std::string>> StatusRows(const Job& job, absl::TimeZone tz) {
  return StatusRows(job, tz, absl::Now());
}

std::vector<std::pair<std::string, std::string>> StatusRows(const Job& job, absl::TimeZone tz,
                                                            absl::Time now) {
  std::vector<std::pair<std::string, std::string>> rows;
  auto add = [&rows](std::string key, std::string value) {
    if (!value.empty()) rows.emplace_back(std::move(key), std::move(value));
  };
  auto time = [&tz](int64_t millis) {
    return millis > 0 ? FormatTimestamp(millis, tz) : std::string();
  };
  const deja::v1::JobSpec& spec = job.spec();
  add("job", job.job_id());
  add("project", spec.project());
  add("app", FormatApp(spec.app()));
  add("command", FormatCommand(spec.app()));
  add("state", StateName(job.state()));
  if (job.state() == deja::v1::WAITING && !job.waiting_for().empty()) {
    add("waiting for", absl::StrCat(job.waiting_for(), " (identical job in flight)"));
  }
  add("attempt", job.attempt() > 0 ? absl::StrCat(job.attempt()) : "");
  add("worker", job.worker_id());
  add("hash", job.job_hash());
  if (!job.memoization_off_reason().empty()) {
    add("memoization", absl::StrCat("off: ", job.memoization_off_reason()));
  }
  add("created", time(job.created_at_ms()));
  add("started", time(job.started_at_ms()));
  add("finished", time(job.finished_at_ms()));
  add("run time", job.run_time_ms() > 0 || job.has_exit_code()
                      ? FormatDuration(job.run_time_ms())
                      : "");
  add("exit code", job.has_exit_code() ? absl::StrCat(job.exit_code()) : "");
  if (!job.reused_from().empty()) {
    std::string source = job.reused_from();
    if (job.reused_source_finished_at_ms() > 0) {
      absl::StrAppend(&source, " (finished ", time(job.reused_source_finished_at_ms()), ")");
    }
    add("reused from", source);
  }
  add("time saved", job.time_saved_ms() > 0 ? FormatDuration(job.time_saved_ms()) : "");
  if (job.manifest().files_size() > 0) {
    uint64_t total = 0;
    for (const auto& file : job.manifest().files()) total += file.size();
    int count = job.manifest().files_size();
    add("files", absl::StrCat(count, count == 1 ? " file, " : " files, ", FormatBytes(total)));
  }
  if (job.workspace_expired() ||
      (IsTerminal(job.state()) && job.expires_at_ms() > 0 &&
       job.expires_at_ms() <= absl::ToUnixMillis(now))) {
    add("workspace", job.expires_at_ms() > 0
                         ? absl::StrCat("expired at ", time(job.expires_at_ms()))
                         : std::string("expired"));
  } else if (job.expires_at_ms() > 0) {
    add("expires", time(job.expires_at_ms()));
  }
  add("message", job.message());
  return rows;
}

std::string InputsTable(const Job& job) {
  if (job.spec().inputs().empty()) return "";
  std::vector<std::vector<std::string>> rows;
  for (const deja::v1::InputRef& input : job.spec().inputs()) {
    uint64_t size = input.kind() == "dir" ? input.total_bytes() : input.size();
    rows.push_back({input.name(), input.kind(), FormatBytes(size), input.digest(),
                    input.path().empty() ? "inputs/" + input.name() : input.path()});
  }
  return RenderTable({"INPUT", "KIND", "SIZE", "DIGEST", "PATH"}, rows);
}

std::string OutputsTable(const Job& job) {
  if (job.outputs().empty()) return "";
  std::vector<std::vector<std::string>> rows;
  for (const deja::v1::OutputFile& output : job.outputs()) {
    rows.push_back({output.path(), FormatBytes(output.size()), output.digest()});
  }
  return RenderTable({"OUTPUT", "SIZE", "DIGEST"}, rows);
}

std::string FormatGetLine(const std::string& job_id, uint64_t files, uint64_t bytes,
                          const std::string& dir) {
  std::string shown = dir;
  if (shown.empty() || shown.back() != '/') shown += '/';
  return absl::StrCat(job_id, ": downloaded ", files, files == 1 ? " file (" : " files (",
                      FormatBytes(bytes), ") to ", shown);
}

std::string GetOutputDir(const std::string& job_id, const std::string& out_flag) {
  return out_flag.empty() ? job_id : out_flag;
}

std::string ReuseBanner(const Job& job, absl::TimeZone tz) {
  if (job.reused_from().empty()) return "";
  std::string banner = absl::StrCat("reused from ", job.reused_from());
  if (job.reused_source_finished_at_ms() > 0) {
    absl::StrAppend(&banner, " (finished ", FormatTimestamp(job.reused_source_finished_at_ms(), tz),
                    ")");
  }
  return banner;
}

std::string JobsTable(const std::vector<Job>& jobs, absl::TimeZone tz, absl::Time now) {
  std::vector<std::vector<std::string>> rows;
  for (const Job& job : jobs) {
    rows.push_back({job.job_id(), job.spec().project(), FormatApp(job.spec().app()),
                    StateName(job.state()), job.worker_id(),
                    job.created_at_ms() > 0 ? FormatTimestamp(job.created_at_ms(), tz) : "",
                    JobDuration(job, now), job.reused_from()});
  }
  return RenderTable(
      {"JOB", "PROJECT", "APP", "STATE", "WORKER", "CREATED", "DURATION", "REUSED-FROM"}, rows);
}

std::string WorkersTable(const std::vector<deja::v1::WorkerInfo>& workers) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& worker : workers) {
    std::map<std::string, std::string> platform(worker.platform().begin(),
                                                worker.platform().end());
    rows.push_back({worker.worker_id(), absl::StrCat(worker.slots()),
                    absl::StrCat(worker.busy_slots()), worker.connected() ? "yes" : "no",
                    worker.advertise(), absl::StrJoin(platform, ",", absl::PairFormatter("="))});
  }
  return RenderTable({"ID", "SLOTS", "BUSY", "CONNECTED", "ADVERTISE", "PLATFORM"}, rows);
}

absl::StatusOr<absl::Time> ParseTimeFlag(absl::string_view flag, absl::string_view arg,
                                         absl::Time now, absl::TimeZone tz) {
  const std::string text(arg);
  auto bad = [&]() {
    return InvalidFlag(flag, arg,
                       "expected an RFC 3339 time (2026-11-22T10:00:00Z), a date (2026-11-22), "
                       "a local time (2026-11-22 10:00:00) or an age (30m, 2h, 3d, 1w)");
  };
  if (text.empty()) return bad();
  // An age: one or more NUMBER UNIT pairs.
  if (text.find_first_not_of("0123456789smhdw") == std::string::npos &&
      !absl::ascii_isdigit(static_cast<unsigned char>(text.back()))) {
    absl::Duration age = absl::ZeroDuration();
    size_t i = 0;
    while (i < text.size()) {
      size_t start = i;
      while (i < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[i]))) ++i;
      // Nine digits of any unit is already longer than anyone means.
      if (i == start || i - start > 9 || i == text.size()) return bad();
      int64_t n = std::stoll(text.substr(start, i - start));
      switch (text[i]) {
        case 's':
          age += absl::Seconds(n);
          break;
        case 'm':
          age += absl::Minutes(n);
          break;
        case 'h':
          age += absl::Hours(n);
          break;
        case 'd':
          age += absl::Hours(24 * n);
          break;
        case 'w':
          age += absl::Hours(24 * 7 * n);
          break;
        default:
          return bad();
      }
      ++i;
    }
    return now - age;
  }
  absl::Time time;
  std::string error;
  if (text.size() == 10 && absl::ParseTime("%Y-%m-%d", text, tz, &time, &error)) return time;
  if (text.size() == 19 && text[10] == ' ' &&
      absl::ParseTime("%Y-%m-%d %H:%M:%S", text, tz, &time, &error)) {
    return time;
  }
  if (text.size() > 19 && (text[10] == 'T' || text[10] == 't')) {
    // This Abseil's %Ez wants a numeric offset; "Z" is UTC.
    std::string rfc3339 = text;
    if (rfc3339.back() == 'Z' || rfc3339.back() == 'z') {
      rfc3339.pop_back();
      rfc3339 += "+00:00";
    }
    if (absl::ParseTime(absl::RFC3339_full, rfc3339, &time, &error)) return time;
  }
  return bad();
}

bool LooksLikeJobId(absl::string_view arg) {
  return arg.size() >= 2 && arg[0] == 'j' &&
         std::all_of(arg.begin() + 1, arg.end(),
                     [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); });
}

absl::StatusOr<deja::v1::SetProjectRequest> BuildSetProjectRequest(
    const std::string& project, const std::string& memoization,
    std::optional<int32_t> retention_hours) {
  if (memoization.empty() && !retention_hours.has_value()) {
    return absl::InvalidArgumentError(
        "project set: nothing to change; give --memoization on|off and/or --retention HOURS");
  }
  deja::v1::SetProjectRequest request;
  request.set_project(project);
  if (!memoization.empty()) {
    std::string lowered = absl::AsciiStrToLower(memoization);
    if (lowered != "on" && lowered != "off") {
      return InvalidFlag("--memoization", memoization, "expected on or off");
    }
    request.set_use_memoization(lowered == "on");
  }
  if (retention_hours.has_value()) request.set_intermediate_files_hours(*retention_hours);
  return request;
}

deja::v1::GetMemoRequest BuildGetMemoRequest(const std::string& arg, const std::string& project) {
  deja::v1::GetMemoRequest request;
  request.set_project(project);
  if (LooksLikeJobId(arg)) {
    request.set_job_id(arg);
  } else {
    request.set_job_hash(absl::AsciiStrToLower(arg));
  }
  return request;
}

absl::StatusOr<deja::v1::EvictMemoRequest> BuildEvictRequest(const EvictFlags& flags,
                                                             absl::Time now, absl::TimeZone tz) {
  int selectors = static_cast<int>(!flags.hash.empty()) + static_cast<int>(!flags.app.empty()) +
                  static_cast<int>(!flags.before.empty());
  if (selectors != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("cache evict: give exactly one of HASH, --app NAME and --before TIME (got ",
                     selectors, ")"));
  }
  deja::v1::EvictMemoRequest request;
  request.set_project(flags.project);
  if (!flags.hash.empty()) {
    std::string hash = absl::AsciiStrToLower(flags.hash);
    if (!IsHex(hash) || hash.size() > kFullHashLength) {
      return absl::InvalidArgumentError(
          absl::StrCat("cache evict: \"", flags.hash, "\" is not a job hash (hex)"));
    }
    request.set_job_hash(hash);
  } else if (!flags.app.empty()) {
    request.set_app_name(flags.app);
  } else {
    absl::StatusOr<absl::Time> before = ParseTimeFlag("--before", flags.before, now, tz);
    if (!before.ok()) return before.status();
    int64_t before_ms = absl::ToUnixMillis(*before);
    if (before_ms <= 0) return InvalidFlag("--before", flags.before, "is before 1970");
    request.set_before_ms(before_ms);
  }
  return request;
}

std::vector<std::pair<std::string, std::string>> ProjectRows(
    const deja::v1::ProjectSettings& settings, absl::TimeZone tz) {
  std::vector<std::pair<std::string, std::string>> rows;
  rows.emplace_back("project", settings.project());
  rows.emplace_back("memoization", settings.use_memoization() ? "on" : "off");
  rows.emplace_back("retention", absl::StrCat(settings.intermediate_files_hours(), "h"));
  if (settings.updated_at_ms() > 0) {
    rows.emplace_back("updated", FormatTimestamp(settings.updated_at_ms(), tz));
  }
  return rows;
}

uint64_t ManifestBytes(const deja::v1::Manifest& manifest) {
  uint64_t total = 0;
  for (const auto& file : manifest.files()) total += file.size();
  return total;
}

namespace {

std::string ExpiresCell(int64_t expires_at_ms, absl::TimeZone tz) {
  return expires_at_ms > 0 ? FormatTimestamp(expires_at_ms, tz) : "never";
}

}  // namespace

std::string MemoTable(const std::vector<deja::v1::MemoEntry>& entries, absl::TimeZone tz) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& entry : entries) {
    rows.push_back({entry.job_hash().substr(0, 12), entry.project(), entry.app_name(),
                    entry.source_job_id(), FormatBytes(ManifestBytes(entry.manifest())),
                    entry.created_at_ms() > 0 ? FormatTimestamp(entry.created_at_ms(), tz) : "",
                    ExpiresCell(entry.expires_at_ms(), tz)});
  }
  return RenderTable({"HASH", "PROJECT", "APP", "SOURCE-JOB", "SIZE", "CREATED", "EXPIRES"},
                     rows);
}

std::vector<std::pair<std::string, std::string>> MemoRows(const deja::v1::MemoEntry& entry,
                                                          absl::TimeZone tz) {
  std::vector<std::pair<std::string, std::string>> rows;
  auto add = [&rows](std::string key, std::string value) {
    if (!value.empty()) rows.emplace_back(std::move(key), std::move(value));
  };
  add("hash", entry.job_hash());
  add("project", entry.project());
  add("app", entry.app_name());
  add("source job", entry.source_job_id());
  add("worker", entry.worker_id());
  add("run time", FormatDuration(entry.run_time_ms()));
  add("created", entry.created_at_ms() > 0 ? FormatTimestamp(entry.created_at_ms(), tz) : "");
  add("expires", ExpiresCell(entry.expires_at_ms(), tz));
  int count = entry.manifest().files_size();
  add("files", absl::StrCat(count, count == 1 ? " file, " : " files, ",
                            FormatBytes(ManifestBytes(entry.manifest()))));
  int outputs = entry.outputs_size();
  uint64_t output_bytes = 0;
  for (const auto& output : entry.outputs()) output_bytes += output.size();
  add("outputs", absl::StrCat(outputs, outputs == 1 ? " file, " : " files, ",
                              FormatBytes(output_bytes)));
  return rows;
}

std::string MemoOutputsTable(const deja::v1::MemoEntry& entry) {
  if (entry.outputs().empty()) return "";
  std::vector<std::vector<std::string>> rows;
  for (const deja::v1::OutputFile& output : entry.outputs()) {
    rows.push_back({output.path(), FormatBytes(output.size()), output.digest()});
  }
  return RenderTable({"OUTPUT", "SIZE", "DIGEST"}, rows);
}

std::string FormatEvictLine(size_t count) {
  return absl::StrCat("evicted ", count, count == 1 ? " entry" : " entries");
}

std::string ExplainText(const deja::v1::ExplainResponse& response) {
  std::vector<std::pair<std::string, std::string>> rows;
  rows.emplace_back("job", response.job_id());
  rows.emplace_back("verdict", deja::v1::ExplainResponse::Verdict_Name(response.verdict()));
  if (!response.summary().empty()) rows.emplace_back("summary", response.summary());
  const deja::v1::MemoEntry& nearest = response.nearest();
  if (response.has_nearest() && (!nearest.source_job_id().empty() ||
                                 !nearest.job_hash().empty())) {
    rows.emplace_back("nearest", absl::StrCat(OrDash(nearest.source_job_id()), " (hash ",
                                              OrDash(nearest.job_hash()), ")"));
  }
  std::string text = RenderKeyValues(rows);
  if (!response.differences().empty()) {
    std::vector<std::vector<std::string>> diffs;
    for (const deja::v1::FieldDiff& diff : response.differences()) {
      diffs.push_back({diff.field(), Shorten(diff.job_value(), kMaxDiffCell),
                       Shorten(diff.entry_value(), kMaxDiffCell)});
    }
    text += "\n";
    text += RenderTable({"FIELD", "THIS-JOB", "NEAREST-ENTRY"}, diffs);
  }
  return text;
}

std::string StatsTable(const deja::v1::StatsResponse& stats) {
  auto row = [](const std::string& app, const deja::v1::AppStats& s) {
    return std::vector<std::string>{
        app,
        absl::StrCat(s.jobs()),
        absl::StrCat(s.succeeded()),
        absl::StrCat(s.failed()),
        absl::StrCat(s.reused()),
        s.succeeded() > 0 ? absl::StrFormat("%.1f%%", s.reuse_rate() * 100) : "",
        FormatDuration(s.run_time_ms()),
        FormatDuration(s.time_saved_ms())};
  };
  std::vector<std::vector<std::string>> rows;
  for (const deja::v1::AppStats& app : stats.apps()) rows.push_back(row(app.app_name(), app));
  rows.push_back(row("total", stats.total()));
  return RenderTable({"APP", "JOBS", "SUCCEEDED", "FAILED", "REUSED", "REUSE-RATE", "RUN-TIME",
                      "TIME-SAVED"},
                     rows);
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  options.add_whitespace = false;
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    // Only invalid UTF-8 in a string field gets here; never drop the record.
    return absl::StrCat("{\"error\":\"cannot print ", message.GetTypeName(), " as JSON\"}");
  }
  return json;
}

}  // namespace cli

int RunCli(int argc, char** argv, std::ostream& out, std::ostream& err) {
  using namespace cli;  // NOLINT(build/namespaces): the pieces above
  CLI::App app(kDescription, "deja");
  app.footer(kFooter);
  app.require_subcommand(1);
  GlobalFlags global;
  AddGlobalFlags(&app, &global);

  SpecFlags spec_flags;
  bool dry_run = false;
  CLI::App* submit = app.add_subcommand(
      "submit",
      "Submit a job and print its id: \"j12 queued\" or \"j13 reusing j12 (saves 1.2s)\"");
  AddSpecFlags(submit, &spec_flags);
  submit->add_flag("--dry-run", dry_run,
                   "Print the JobSpec that would be submitted, as JSON, and submit nothing");
  CLI::App* run = app.add_subcommand(
      "run",
      "Submit a job, print a line per state change until it ends, and exit with its exit code");
  AddSpecFlags(run, &spec_flags);

  std::string job_id;
  CLI::App* status = app.add_subcommand("status", "Show everything about one job");
  status->add_option("JOB", job_id, "Job id, e.g. j12")->required();

  bool stderr_stream = false;
  CLI::App* logs = app.add_subcommand(
      "logs", "Print a job's stdout log (or stderr); a reused job's log is its source's");
  logs->add_option("JOB", job_id, "Job id, e.g. j12")->required();
  logs->add_flag("--stderr", stderr_stream, "Print the stderr log instead of stdout");

  std::string project;
  std::string state;
  uint32_t limit = 0;
  CLI::App* ls = app.add_subcommand("ls", "List jobs as a table");
  ls->add_option("--project", project, "Only this project (default: every project)")
      ->type_name("P");
  ls->add_option("--state", state,
                 absl::StrCat("Only jobs in this state: ", AllStateNames()))
      ->type_name("S");
  ls->add_option("--limit", limit, "At most N jobs (default 1000)")->type_name("N");

  CLI::App* cancel = app.add_subcommand("cancel", "Cancel a job and print its resulting state");
  cancel->add_option("JOB", job_id, "Job id, e.g. j12")->required();

  CLI::App* workers = app.add_subcommand("workers", "List the workers the scheduler knows");

  std::string out_dir;
  CLI::App* get = app.add_subcommand(
      "get", "Download every output of a succeeded job, byte-identical and with its mode bits");
  get->add_option("JOB", job_id, "Job id, e.g. j12")->required();
  get->add_option("--out", out_dir, "Directory to write into (default ./JOB/)")->type_name("DIR");

  // Project settings.
  std::string settings_project;
  std::string set_memoization;
  int32_t set_retention = 0;
  CLI::App* project_cmd = app.add_subcommand(
      "project", "Show or change a project's memoization and retention settings");
  project_cmd->require_subcommand(1);
  CLI::App* project_get =
      project_cmd->add_subcommand("get", "Show a project's settings (defaults if never set)");
  project_get->add_option("P", settings_project, "Project")->required();
  CLI::App* project_set = project_cmd->add_subcommand(
      "set",
      "Change a project's settings and print them; applies to jobs that finish after the change");
  project_set->add_option("P", settings_project, "Project")->required();
  project_set
      ->add_option("--memoization", set_memoization,
                   "Memoization of the project's jobs whose --memoization is inherit")
      ->type_name("MODE")
      ->check(CLI::IsMember({"on", "off"}, CLI::ignore_case));
  CLI::Option* retention =
      project_set
          ->add_option("--retention", set_retention,
                       "Hours a finished job's workspace (intermediate files, logs) is kept, and "
                       "so can be reused (1 to 120; default 24)")
          ->type_name("HOURS");

  // The memo index.
  std::string cache_project;
  std::string cache_app;
  uint32_t cache_limit = 0;
  std::string cache_arg;
  EvictFlags evict_flags;
  CLI::App* cache = app.add_subcommand("cache", "Inspect and evict memo entries");
  cache->require_subcommand(1);
  CLI::App* cache_ls = cache->add_subcommand("ls", "List memo entries as a table");
  cache_ls->add_option("--project", cache_project, "Only this project (default: every project)")
      ->type_name("P");
  cache_ls->add_option("--app", cache_app, "Only this app name")->type_name("NAME");
  cache_ls->add_option("--limit", cache_limit, "At most N entries (default: all)")
      ->type_name("N");
  CLI::App* cache_show = cache->add_subcommand(
      "show", "Show one memo entry: by hash (a unique prefix will do) or by job id");
  cache_show->add_option("HASH|JOB", cache_arg, "Job hash or prefix, or a job id (j12)")
      ->required();
  cache_show
      ->add_option("--project", cache_project, "Project of the hash (default: any project)")
      ->type_name("P");
  CLI::App* cache_evict = cache->add_subcommand(
      "evict", "Evict memo entries: one hash, every entry of an app, or entries created before "
               "a time; evicted entries are never served again");
  cache_evict->add_option("HASH", evict_flags.hash, "Job hash (a unique prefix will do)");
  cache_evict->add_option("--app", evict_flags.app, "Every entry of this app")
      ->type_name("NAME");
  cache_evict
      ->add_option("--before", evict_flags.before,
                   "Entries created before TIME: 2026-11-22T10:00:00Z, 2026-11-22, or an age "
                   "such as 2h or 3d (older than)")
      ->type_name("TIME");
  cache_evict->add_option("--project", evict_flags.project, "Only this project (default: every)")
      ->type_name("P");

  std::string explain_job;
  CLI::App* explain = app.add_subcommand(
      "explain", "Say why a job was or was not reused, with the nearest entry's differences");
  explain->add_option("JOB", explain_job, "Job id, e.g. j12")->required();

  std::string stats_project;
  std::string stats_since;
  CLI::App* stats =
      app.add_subcommand("stats", "Jobs, reuses, reuse rate and time saved, per app");
  stats->add_option("--project", stats_project, "Only this project (default: every project)")
      ->type_name("P");
  stats
      ->add_option("--since", stats_since,
                   "Only jobs created at or after TIME: 2026-11-22T10:00:00Z, 2026-11-22, or an "
                   "age such as 2h or 7d")
      ->type_name("TIME");

  // Pipelines.
  PipelineFlags pipeline_flags;
  std::string pipeline_id;
  std::string pipeline_project;
  uint32_t pipeline_limit = 0;
  std::string retry_node;
  CLI::App* pipeline = app.add_subcommand(
      "pipeline", "Run DAGs of jobs from a YAML file, reused node by node across runs");
  pipeline->require_subcommand(1);
  CLI::App* pipeline_run = pipeline->add_subcommand(
      "run",
      "Upload the file's local inputs, submit the pipeline and follow it to its end (exit 0 when "
      "it succeeded, else 1)");
  AddPipelineFlags(pipeline_run, &pipeline_flags);
  CLI::App* pipeline_plan = pipeline->add_subcommand(
      "plan", "Say which nodes would be reused and which would run, and the time it would save; "
              "submits nothing");
  AddPipelineFlags(pipeline_plan, &pipeline_flags);
  CLI::App* pipeline_status =
      pipeline->add_subcommand("status", "Show a pipeline and the state of each node");
  pipeline_status->add_option("ID", pipeline_id, "Pipeline id, e.g. p3")->required();
  CLI::App* pipeline_ls = pipeline->add_subcommand("ls", "List pipelines as a table");
  pipeline_ls->add_option("--project", pipeline_project, "Only this project (default: every)")
      ->type_name("P");
  pipeline_ls->add_option("--limit", pipeline_limit, "At most N pipelines")->type_name("N");
  CLI::App* pipeline_cancel = pipeline->add_subcommand(
      "cancel", "Cancel a pipeline: its running jobs and the nodes not started");
  pipeline_cancel->add_option("ID", pipeline_id, "Pipeline id, e.g. p3")->required();
  CLI::App* pipeline_retry = pipeline->add_subcommand(
      "retry", "Run a finished pipeline's failed, cancelled and upstream-failed nodes again "
               "(succeeded ones are verified and reused), then follow it like run");
  pipeline_retry->add_option("ID", pipeline_id, "Pipeline id, e.g. p3")->required();
  pipeline_retry
      ->add_option("--node", retry_node,
                   "Only this node (run fresh) and what depends on it")
      ->type_name("N");

  for (CLI::App* sub :
       {submit, run, status, get, logs, ls, cancel, workers, project_cmd, project_get,
        project_set, cache, cache_ls, cache_show, cache_evict, explain, stats, pipeline,
        pipeline_run, pipeline_plan, pipeline_status, pipeline_ls, pipeline_cancel,
        pipeline_retry}) {
    AddGlobalFlags(sub, &global);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e, out, err);
    return code == 0 ? kExitOk : kExitUsage;
  }

  Runner runner(global, out, err);
  if (submit->parsed()) return runner.Submit(spec_flags, dry_run);
  if (run->parsed()) return runner.Run(spec_flags);
  if (status->parsed()) return runner.Status(job_id);
  if (get->parsed()) return runner.Get(job_id, out_dir);
  if (logs->parsed()) return runner.Logs(job_id, stderr_stream);
  if (ls->parsed()) return runner.List(project, state, limit);
  if (cancel->parsed()) return runner.Cancel(job_id);
  if (workers->parsed()) return runner.Workers();
  if (project_get->parsed()) return runner.ProjectGet(settings_project);
  if (project_set->parsed()) {
    return runner.ProjectSet(settings_project, set_memoization,
                             retention->count() > 0 ? std::optional<int32_t>(set_retention)
                                                    : std::nullopt);
  }
  if (cache_ls->parsed()) return runner.CacheList(cache_project, cache_app, cache_limit);
  if (cache_show->parsed()) return runner.CacheShow(cache_arg, cache_project);
  if (cache_evict->parsed()) return runner.CacheEvict(evict_flags);
  if (explain->parsed()) return runner.Explain(explain_job);
  if (stats->parsed()) return runner.Stats(stats_project, stats_since);
  if (pipeline_run->parsed()) return runner.Pipelines().Run(pipeline_flags);
  if (pipeline_plan->parsed()) return runner.Pipelines().Plan(pipeline_flags);
  if (pipeline_status->parsed()) return runner.Pipelines().Status(pipeline_id);
  if (pipeline_ls->parsed()) return runner.Pipelines().List(pipeline_project, pipeline_limit);
  if (pipeline_cancel->parsed()) return runner.Pipelines().Cancel(pipeline_id);
  if (pipeline_retry->parsed()) return runner.Pipelines().Retry(pipeline_id, retry_node);
  err << "deja: no command given; see deja --help\n";
  return kExitUsage;
}

}  // namespace deja
