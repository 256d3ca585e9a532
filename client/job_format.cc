#include "client/job_format.h"

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/cli.h"
#include "client/cli_format.h"
#include "common/job_state.h"
#include "common/resources.h"

namespace deja::cli {
namespace {

using deja::v1::Job;

std::string StateName(deja::v1::JobState state) { return std::string(JobStateName(state)); }

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

}  // namespace

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

std::string FormatSubmitLine(const deja::v1::SubmitResponse& response) {
  const Job& job = response.job();
  if (response.reused()) {
    std::string line = absl::StrCat(job.job_id(), " reusing ", OrDash(job.reused_from()));
    if (job.time_saved_ms() > 0) {
      absl::StrAppend(&line, " (saves ", FormatDuration(job.time_saved_ms()), ")");
    }
    return line;
  }
  std::string line = absl::StrCat(job.job_id(), " ", absl::AsciiStrToLower(StateName(job.state())));
  if (job.state() == deja::v1::WAITING && !job.waiting_for().empty()) {
    absl::StrAppend(&line, " for ", job.waiting_for(), " (identical job in flight)");
  }
  return line;
}

std::string ArrayStateCounts(const google::protobuf::Map<std::string, uint32_t>& states) {
  std::vector<std::string> parts;
  const auto* descriptor = deja::v1::JobState_descriptor();
  for (int i = 0; i < descriptor->value_count(); ++i) {
    auto it = states.find(descriptor->value(i)->name());
    if (it == states.end() || it->second == 0) continue;
    parts.push_back(absl::StrCat(it->second, " ", absl::AsciiStrToLower(it->first)));
  }
  return parts.empty() ? "no jobs" : absl::StrJoin(parts, ", ");
}

namespace {

// "2000 jobs, j101 to j2100".
std::string ArrayJobsRange(const google::protobuf::RepeatedPtrField<deja::v1::ArrayJob>& jobs) {
  if (jobs.empty()) return "no jobs";
  if (jobs.size() == 1) return absl::StrCat("1 job, ", jobs[0].job_id());
  return absl::StrCat(jobs.size(), " jobs, ", jobs[0].job_id(), " to ",
                      jobs[jobs.size() - 1].job_id());
}

}  // namespace

std::string FormatArraySubmitLine(const deja::v1::SubmitArrayResponse& response) {
  google::protobuf::Map<std::string, uint32_t> states;
  size_t reused = 0;
  for (const deja::v1::ArrayJob& job : response.jobs()) {
    ++states[deja::v1::JobState_Name(job.state())];
    if (job.reused()) ++reused;
  }
  std::string line = absl::StrCat(response.array_id(), ": ", ArrayJobsRange(response.jobs()), ": ",
                                  ArrayStateCounts(states));
  if (reused > 0) absl::StrAppend(&line, " (", reused, " reused)");
  return line;
}

std::vector<std::pair<std::string, std::string>> ArrayStatusRows(const deja::v1::JobArray& array,
                                                                 absl::TimeZone tz) {
  std::vector<std::pair<std::string, std::string>> rows = {
      {"array", array.array_id()},
      {"project", array.project()},
      {"created", FormatTimestamp(array.created_at_ms(), tz)},
      {"jobs", ArrayJobsRange(array.jobs())},
      {"states", ArrayStateCounts(array.states())},
      {"reused", absl::StrCat(array.reused())},
  };
  constexpr size_t kShown = 10;
  std::vector<std::string> failed;
  size_t failures = 0;
  for (const deja::v1::ArrayJob& job : array.jobs()) {
    if (job.state() != deja::v1::FAILED) continue;
    if (++failures <= kShown) failed.push_back(job.job_id());
  }
  if (failures > kShown) failed.push_back(absl::StrCat("and ", failures - kShown, " more"));
  if (!failed.empty()) rows.emplace_back("failed", absl::StrJoin(failed, " "));
  return rows;
}

std::string FormatStateLine(const Job& job) {
  std::string line = absl::StrCat(job.job_id(), " ", StateName(job.state()));
  const std::string& worker = job.worker_id();
  switch (job.state()) {
    case deja::v1::QUEUED:
      if (job.attempt() > 1) absl::StrAppend(&line, " (attempt ", job.attempt(), ")");
      if (!job.unplaceable().empty()) absl::StrAppend(&line, " (", job.unplaceable(), ")");
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
        if (job.has_exit_code()) absl::StrAppend(&line, " ", ShortExit(job.exit_code()));
        if (job.run_time_ms() > 0) {
          absl::StrAppend(&line, " in ", FormatDuration(job.run_time_ms()));
        }
      }
      break;
    case deja::v1::FAILED:
      if (job.has_exit_code()) absl::StrAppend(&line, " ", ShortExit(job.exit_code()));
      break;
    default:
      break;
  }
  // A QUEUED line (after a requeue, a lookup that could not be served, or
  // the failure of the identical job it waited for), a failure or a cancel
  // explains itself (a failure's exit once: "FAILED exit 3", not
  // "FAILED exit 3: command exited with code 3").
  const bool says_exit =
      job.has_exit_code() && job.message() == "command " + DescribeExit(job.exit_code());
  if (!job.message().empty() && !says_exit && job.state() != deja::v1::SUCCEEDED &&
      (IsTerminal(job.state()) || job.attempt() > 1 || job.state() == deja::v1::QUEUED)) {
    absl::StrAppend(&line, ": ", job.message());
  }
  return line;
}

std::string StateLineKey(const Job& job) {
  return absl::StrCat(static_cast<int>(job.state()), "/", job.attempt(), "/", job.worker_id(), "/",
                      job.waiting_for(), "/", job.unplaceable());
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
  if (!job.array_id().empty()) {
    add("array", absl::StrCat(job.array_id(), " (element ", job.array_index() + 1, " of ",
                              job.array_size(), ")"));
  }
  add("app", FormatApp(spec.app()));
  add("command", FormatCommand(spec.app()));
  add("state", StateName(job.state()));
  if (job.state() == deja::v1::WAITING && !job.waiting_for().empty()) {
    add("waiting for", absl::StrCat(job.waiting_for(), " (identical job in flight)"));
  }
  if (job.state() == deja::v1::QUEUED && !job.unplaceable().empty()) {
    add("unplaceable", job.unplaceable());
  }
  add("attempt", job.attempt() > 0 ? absl::StrCat(job.attempt()) : "");
  add("worker", job.worker_id());
  if (!spec.app().image().empty()) {
    add("image", job.image_id().empty()
                     ? spec.app().image()
                     : absl::StrCat(spec.app().image(), " (", job.image_id(), ")"));
  }
  add("resources", FormatResources(spec.resources()));
  add("hash", job.job_hash());
  if (!job.memoization_off_reason().empty()) {
    add("memoization", absl::StrCat("off: ", job.memoization_off_reason()));
  }
  add("created", time(job.created_at_ms()));
  add("started", time(job.started_at_ms()));
  add("finished", time(job.finished_at_ms()));
  add("run time",
      job.run_time_ms() > 0 || job.has_exit_code() ? FormatDuration(job.run_time_ms()) : "");
  add("exit code", !job.has_exit_code() ? ""
                   : job.exit_code() >= 0
                       ? absl::StrCat(job.exit_code())
                       : absl::StrCat(job.exit_code(), ", ", ShortExit(job.exit_code())));
  if (!job.reused_from().empty()) {
    std::string source = job.reused_from();
    if (job.reused_source_finished_at_ms() > 0) {
      absl::StrAppend(&source, " (finished ", time(job.reused_source_finished_at_ms()), ")");
    }
    add("reused from", source);
  }
  add("time saved", job.time_saved_ms() > 0 ? FormatDuration(job.time_saved_ms()) : "");
  if (job.manifest().files() > 0) {
    add("files", FormatFiles(job.manifest().files(), job.manifest().bytes()));
  }
  if (job.workspace_expired() || (IsTerminal(job.state()) && job.expires_at_ms() > 0 &&
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

std::string FileLine(const deja::v1::FileEntry& file) {
  const uint32_t type = file.mode() & 0170000;
  const std::string mode =
      type == 0120000 ? std::string("l   ") : absl::StrFormat("%04o", file.mode() & 07777);
  return absl::StrFormat("%s  %12d  %s", mode, file.size(), file.path());
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
  rows.reserve(jobs.size());
  for (const Job& job : jobs) {
    rows.push_back({job.job_id(), job.spec().project(), FormatApp(job.spec().app()),
                    StateName(job.state()), job.worker_id(),
                    job.created_at_ms() > 0 ? FormatTimestamp(job.created_at_ms(), tz) : "",
                    JobDuration(job, now), job.reused_from()});
  }
  std::string table = RenderTable(
      {"JOB", "PROJECT", "APP", "STATE", "WORKER", "CREATED", "DURATION", "REUSED-FROM"}, rows);
  // What no column holds: why a queued job cannot be placed.
  for (const Job& job : jobs) {
    if (job.state() == deja::v1::QUEUED && !job.unplaceable().empty()) {
      absl::StrAppend(&table, job.job_id(), " cannot be placed: ", job.unplaceable(), "\n");
    }
  }
  return table;
}

std::string WorkersTable(const std::vector<deja::v1::WorkerInfo>& workers) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& worker : workers) {
    std::map<std::string, std::string> platform(worker.platform().begin(), worker.platform().end());
    const deja::v1::DiskStatus& disk = worker.disk();
    std::string disk_cell;
    if (disk.total_bytes() > 0) {
      disk_cell = absl::StrCat(
          disk.refusing().empty() ? "" : "disk full: ", FormatBytes(disk.free_bytes()), " free");
    }
    const deja::v1::Capacity& capacity = worker.capacity();
    const deja::v1::Resources& total = capacity.total();
    const deja::v1::Resources& used = worker.used();
    rows.push_back(
        {worker.worker_id(), absl::StrCat(worker.busy_slots(), "/", worker.slots()),
         absl::StrCat(FormatCpus(used.milli_cpus()), "/", FormatCpus(total.milli_cpus())),
         absl::StrCat(used.memory_bytes() == 0 ? "0" : FormatMemory(used.memory_bytes()), "/",
                      FormatMemory(total.memory_bytes())),
         absl::StrCat(used.gpus(), "/", total.gpus()), OrDash(capacity.limits()),
         capacity.engine().empty() ? "none" : capacity.engine(), worker.connected() ? "yes" : "no",
         disk_cell, worker.advertise(), absl::StrJoin(platform, ",", absl::PairFormatter("="))});
  }
  std::string table = RenderTable({"ID", "SLOTS", "CPUS", "MEMORY", "GPUS", "LIMITS", "ENGINE",
                                   "CONNECTED", "DISK", "ADVERTISE", "PLATFORM"},
                                  rows);
  // Why a worker takes no image job.
  for (const auto& worker : workers) {
    if (worker.capacity().engine().empty() && !worker.capacity().no_engine().empty()) {
      absl::StrAppend(&table, worker.worker_id(),
                      " takes no --image job: ", worker.capacity().no_engine(), "\n");
    }
  }
  return table;
}

}  // namespace deja::cli
