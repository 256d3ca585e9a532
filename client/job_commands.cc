#include "client/job_commands.h"

#include <google/protobuf/util/message_differencer.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/cli.h"
#include "client/cli_format.h"
#include "client/file_commands.h"
#include "client/job_format.h"
#include "common/job_state.h"

namespace deja::cli {
namespace {

using deja::v1::Job;

std::string StateName(deja::v1::JobState state) { return std::string(JobStateName(state)); }

std::string AllStateNames() {
  std::vector<std::string> names;
  const auto* descriptor = deja::v1::JobState_descriptor();
  for (int i = 0; i < descriptor->value_count(); ++i) {
    auto state = static_cast<deja::v1::JobState>(descriptor->value(i)->number());
    if (state != deja::v1::JOB_STATE_UNSPECIFIED) names.push_back(StateName(state));
  }
  return absl::StrJoin(names, ", ");
}

}  // namespace

void JobCommands::Register(CommandTable& table) {
  // Where CLI11 writes the arguments; the handlers read them after the parse.
  struct Flags {
    SpecFlags spec;
    bool dry_run = false;
    std::string job_id;
    bool files = false;
    bool stderr_stream = false;
    std::string project;
    std::string state;
    uint32_t limit = 0;
  };
  auto flags = std::make_shared<Flags>();

  CLI::App* submit = table.AddCommand(
      "submit", "Submit a job and print its id: \"j12 queued\" or \"j13 reusing j12 (saves 1.2s)\"",
      [flags](CommandContext& context) {
        return JobCommands(context).Submit(flags->spec, flags->dry_run);
      });
  AddSpecFlags(submit, &flags->spec);
  submit->add_flag("--dry-run", flags->dry_run,
                   "Print the JobSpec that would be submitted, as JSON, and submit nothing");
  CLI::App* run = table.AddCommand(
      "run",
      "Submit a job, print a line per state change until it ends, and exit with its exit code",
      [flags](CommandContext& context) { return JobCommands(context).Run(flags->spec); });
  AddSpecFlags(run, &flags->spec);

  CLI::App* status =
      table.AddCommand("status", "Show everything about one job", [flags](CommandContext& context) {
        return flags->files ? JobCommands(context).Files(flags->job_id)
                            : JobCommands(context).Status(flags->job_id);
      });
  status->add_option("JOB", flags->job_id, "Job id, e.g. j12")->required();
  status->add_flag("--files", flags->files,
                   "List every file of the job's workspace (mode, size, path), a page at a "
                   "time, instead of the summary");

  CLI::App* logs = table.AddCommand(
      "logs", "Print a job's stdout log (or stderr); a reused job's log is its source's",
      [flags](CommandContext& context) {
        return JobCommands(context).Logs(flags->job_id, flags->stderr_stream);
      });
  logs->add_option("JOB", flags->job_id, "Job id, e.g. j12")->required();
  logs->add_flag("--stderr", flags->stderr_stream, "Print the stderr log instead of stdout");

  CLI::App* ls = table.AddCommand("ls", "List jobs as a table", [flags](CommandContext& context) {
    return JobCommands(context).List(flags->project, flags->state, flags->limit);
  });
  ls->add_option("--project", flags->project, "Only this project (default: every project)")
      ->type_name("P");
  ls->add_option("--state", flags->state,
                 absl::StrCat("Only jobs in this state: ", AllStateNames()))
      ->type_name("S");
  ls->add_option("--limit", flags->limit, "At most N jobs (default 1000)")->type_name("N");

  CLI::App* cancel = table.AddCommand(
      "cancel", "Cancel a job and print its resulting state",
      [flags](CommandContext& context) { return JobCommands(context).Cancel(flags->job_id); });
  cancel->add_option("JOB", flags->job_id, "Job id, e.g. j12")->required();

  table.AddCommand("workers", "List the workers the scheduler knows",
                   [](CommandContext& context) { return JobCommands(context).Workers(); });
}

std::optional<deja::v1::SubmitResponse> JobCommands::DoSubmit(const SpecFlags& flags,
                                                              int* exit_code) {
  std::optional<deja::v1::JobSpec> spec =
      FileCommands(context_).PrepareSpec(flags, /*upload=*/true, exit_code);
  if (!spec.has_value()) return std::nullopt;
  absl::StatusOr<deja::v1::SubmitResponse> response = context_.client().Submit(*spec);
  if (!response.ok()) {
    *exit_code = context_.Fail(response.status());
    return std::nullopt;
  }
  return *std::move(response);
}

int JobCommands::Submit(const SpecFlags& flags, bool dry_run) {
  int exit_code = kExitOk;
  if (dry_run) {
    std::optional<deja::v1::JobSpec> spec =
        FileCommands(context_).PrepareSpec(flags, /*upload=*/false, &exit_code);
    if (!spec.has_value()) return exit_code;
    context_.PrintJson(*spec);
    return kExitOk;
  }
  std::optional<deja::v1::SubmitResponse> response = DoSubmit(flags, &exit_code);
  if (!response.has_value()) return exit_code;
  if (context_.json()) {
    context_.PrintJson(response->job());
  } else {
    context_.out() << FormatSubmitLine(*response) << "\n";
  }
  return kExitOk;
}

int JobCommands::Run(const SpecFlags& flags) {
  int exit_code = kExitOk;
  std::optional<deja::v1::SubmitResponse> response = DoSubmit(flags, &exit_code);
  if (!response.has_value()) return exit_code;
  const std::string job_id = response->job().job_id();
  std::ostream& out = context_.out();

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
    if (context_.json()) {
      if (!last_job.has_value() ||
          !google::protobuf::util::MessageDifferencer::Equals(*last_job, job)) {
        context_.PrintJson(job);
        out.flush();
      }
    } else if (std::string key = StateLineKey(job); key != last_key) {
      out << FormatStateLine(job) << "\n";
      out.flush();
      last_key = key;
    }
    last_job = job;
  };
  while (true) {
    absl::StatusOr<Job> job = context_.client().WatchJob(job_id, on_update);
    if (job.ok() && IsTerminal(job->state())) return ExitCodeForJob(*job);
    if (!job.ok() && !IsRetryableWatchError(job.status())) return context_.Fail(job.status());
    if (!interrupted) {
      std::string why = job.ok() ? "stream ended" : std::string(job.status().message());
      context_.err() << "deja: lost the watch of " << job_id << " (" << why
                     << "); watching again\n";
      interrupted = true;
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
}

int JobCommands::Status(const std::string& job_id) {
  absl::StatusOr<Job> job = context_.client().GetJob(job_id);
  if (!job.ok()) return context_.Fail(job.status());
  if (context_.json()) {
    context_.PrintJson(*job);
  } else {
    std::ostream& out = context_.out();
    out << RenderKeyValues(StatusRows(*job, context_.tz(), absl::Now()));
    if (std::string inputs = InputsTable(*job); !inputs.empty()) out << "\n" << inputs;
    if (std::string outputs = OutputsTable(*job); !outputs.empty()) out << "\n" << outputs;
  }
  return kExitOk;
}

int JobCommands::Files(const std::string& job_id) {
  std::ostream& out = context_.out();
  std::string token;
  bool first = true;
  do {
    absl::StatusOr<deja::v1::ListJobFilesResponse> page =
        context_.client().ListJobFiles(job_id, token, 0);
    if (!page.ok()) return context_.Fail(page.status());
    if (context_.json()) {
      for (const deja::v1::FileEntry& file : page->files()) context_.PrintJson(file);
    } else {
      if (first) {
        out << job_id << ": " << FormatFiles(page->manifest().files(), page->manifest().bytes())
            << "\n";
      }
      for (const deja::v1::FileEntry& file : page->files()) out << FileLine(file) << "\n";
    }
    first = false;
    token = page->next_page_token();
  } while (!token.empty());
  return kExitOk;
}

int JobCommands::Logs(const std::string& job_id, bool stderr_stream) {
  absl::StatusOr<Job> job = context_.client().GetJob(job_id);
  if (!job.ok()) return context_.Fail(job.status());
  std::ostream& out = context_.out();
  if (!context_.json()) {
    std::string banner = ReuseBanner(*job, context_.tz());
    if (!banner.empty()) out << banner << "\n";
  }
  absl::StatusOr<uint64_t> read = context_.client().StreamLogs(
      job_id, stderr_stream ? deja::v1::LOG_STDERR : deja::v1::LOG_STDOUT,
      [&out](absl::string_view chunk) {
        out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
      });
  out.flush();
  if (!read.ok()) return context_.Fail(read.status());
  return kExitOk;
}

int JobCommands::List(const std::string& project, const std::string& state_name, uint32_t limit) {
  deja::v1::JobState state = deja::v1::JOB_STATE_UNSPECIFIED;
  if (!state_name.empty()) {
    std::optional<deja::v1::JobState> parsed = ParseJobState(state_name);
    if (!parsed.has_value()) {
      return context_.UsageError(InvalidFlag(
          "--state", state_name, absl::StrCat("not a job state; use one of ", AllStateNames())));
    }
    state = *parsed;
  }
  absl::StatusOr<std::vector<Job>> jobs = context_.client().ListJobs(project, state, limit);
  if (!jobs.ok()) return context_.Fail(jobs.status());
  if (context_.json()) {
    for (const Job& job : *jobs) context_.PrintJson(job);
  } else {
    context_.out() << JobsTable(*jobs, context_.tz(), absl::Now());
  }
  return kExitOk;
}

int JobCommands::Cancel(const std::string& job_id) {
  absl::StatusOr<Job> job = context_.client().CancelJob(job_id);
  if (!job.ok()) return context_.Fail(job.status());
  if (context_.json()) {
    context_.PrintJson(*job);
  } else {
    context_.out() << job->job_id() << " " << StateName(job->state()) << "\n";
  }
  return kExitOk;
}

int JobCommands::Workers() {
  absl::StatusOr<std::vector<deja::v1::WorkerInfo>> workers = context_.client().ListWorkers();
  if (!workers.ok()) return context_.Fail(workers.status());
  if (context_.json()) {
    for (const auto& worker : *workers) context_.PrintJson(worker);
  } else {
    context_.out() << WorkersTable(*workers);
  }
  return kExitOk;
}

}  // namespace deja::cli
