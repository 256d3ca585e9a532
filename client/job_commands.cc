#include "client/job_commands.h"

#include <google/protobuf/util/message_differencer.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/array_params.h"
#include "client/cache_commands.h"
#include "client/cli.h"
#include "client/cli_format.h"
#include "client/file_commands.h"
#include "client/job_format.h"
#include "common/files.h"
#include "common/job_spec.h"
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
    ArrayFlags array;
    bool dry_run = false;
    std::string job_id;
    bool files = false;
    bool stderr_stream = false;
    bool follow = false;
    JobQueryFlags query;
    uint32_t limit = 1000;
    std::string cursor;
    std::vector<std::string> cancel_ids;
    bool yes = false;
  };
  auto flags = std::make_shared<Flags>();

  CLI::App* submit = table.AddCommand(
      "submit", "Submit a job and print its id: \"j12 queued\" or \"j13 reusing j12 (saves 1.2s)\"",
      [flags](CommandContext& context) {
        return JobCommands(context).Submit(flags->spec, flags->array, flags->dry_run);
      });
  AddSpecFlags(submit, &flags->spec);
  submit
      ->add_option("--array", flags->array.arrays,
                   "Submit a job array: one job per value of param K, e.g. i=1-2000, i=0-100:10 "
                   "or s=a,b,c (repeatable: the product); prints the array's id, a12")
      ->type_name("K=VALUES");
  submit
      ->add_option("--params-file", flags->array.params_file,
                   "Submit a job array: one job per line of FILE, `k=v k2=v2` or a JSON object "
                   "(with --array: every line with every value)")
      ->type_name("FILE");
  submit->add_flag("--dry-run", flags->dry_run,
                   "Print the JobSpec that would be submitted, as JSON, and submit nothing");
  CLI::App* run = table.AddCommand(
      "run",
      "Submit a job, print a line per state change until it ends, and exit with its exit code",
      [flags](CommandContext& context) {
        return JobCommands(context).Run(flags->spec, flags->follow);
      });
  AddSpecFlags(run, &flags->spec);
  run->add_flag("-f,--follow", flags->follow,
                "Stream the job's stdout and stderr to ours as it runs (the state lines then go "
                "to stderr)");

  CLI::App* status =
      table.AddCommand("status", "Show everything about one job", [flags](CommandContext& context) {
        return flags->files ? JobCommands(context).Files(flags->job_id)
                            : JobCommands(context).Status(flags->job_id);
      });
  status->add_option("JOB", flags->job_id, "Job id, e.g. j12, or an array's, a12")->required();
  status->add_flag("--files", flags->files,
                   "List every file of the job's workspace (mode, size, path), a page at a "
                   "time, instead of the summary");

  CLI::App* logs = table.AddCommand(
      "logs", "Print a job's stdout log (or stderr); a reused job's log is its source's",
      [flags](CommandContext& context) {
        return JobCommands(context).Logs(flags->job_id, flags->stderr_stream, flags->follow);
      });
  logs->add_option("JOB", flags->job_id, "Job id, e.g. j12")->required();
  logs->add_flag("--stderr", flags->stderr_stream, "Print the stderr log instead of stdout");
  logs->add_flag("-f,--follow", flags->follow,
                 "Keep printing what the log gains until the job ends (a queued job: from its "
                 "start)");

  auto add_filters = [flags](CLI::App* command, const std::string& states_help) {
    JobQueryFlags& query = flags->query;
    command->add_option("--project", query.project, "Only this project (default: every project)")
        ->type_name("P");
    command->add_option("--state", query.states, states_help)->type_name("S")->delimiter(',');
    command->add_option("--app", query.app, "Only jobs of this app")->type_name("NAME");
    command->add_option("--label", query.labels, "Only jobs with this label (repeatable: all)")
        ->type_name("K=V");
    command
        ->add_option("--since", query.since,
                     "Only jobs submitted at or after TIME: 2026-11-22T10:00:00Z, 2026-11-22, or "
                     "an age such as 2h or 7d")
        ->type_name("TIME");
    command->add_option("--array", query.array, "Only the jobs of this job array")
        ->type_name("ARRAY");
  };
  CLI::App* ls = table.AddCommand("ls", "List jobs as a table", [flags](CommandContext& context) {
    return JobCommands(context).List(flags->query, flags->limit, flags->cursor);
  });
  add_filters(ls, absl::StrCat("Only jobs in these states (repeatable, or comma-separated): ",
                               AllStateNames()));
  ls->add_option("--limit", flags->limit,
                 "At most N jobs, the newest (default 1000; 0: all); when more match, says how "
                 "to continue")
      ->type_name("N");
  ls->add_option("--cursor", flags->cursor,
                 "Continue a listing: the older jobs, from the cursor the last page printed")
      ->type_name("CURSOR");

  CLI::App* cancel = table.AddCommand(
      "cancel",
      "Cancel jobs: those named, or every job the filters match that has not ended (after a "
      "count and a confirmation)",
      [flags](CommandContext& context) {
        return JobCommands(context).Cancel(flags->cancel_ids, flags->query, flags->yes);
      });
  cancel->add_option("JOB", flags->cancel_ids, "Job ids, e.g. j12 j13, or an array's, a12")
      ->type_name("JOB...");
  add_filters(cancel, "Only jobs in these states (default: every state not ended)");
  cancel->add_flag("-y,--yes", flags->yes, "Cancel what the filters match without asking");

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

int JobCommands::Submit(const SpecFlags& flags, const ArrayFlags& array, bool dry_run) {
  int exit_code = kExitOk;
  if (array.any()) return SubmitArray(flags, array, dry_run);
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

int JobCommands::SubmitArray(const SpecFlags& flags, const ArrayFlags& array, bool dry_run) {
  std::vector<ParamSet> lines;
  if (!array.params_file.empty()) {
    absl::StatusOr<std::string> content = ReadWholeFile(array.params_file);
    if (!content.ok()) {
      return context_.UsageError(
          absl::InvalidArgumentError(absl::StrCat("--params-file: ", content.status().message())));
    }
    absl::StatusOr<std::vector<ParamSet>> parsed = ParseParamsFile(array.params_file, *content);
    if (!parsed.ok()) return context_.UsageError(parsed.status());
    lines = *std::move(parsed);
  }
  absl::StatusOr<std::vector<ParamSet>> elements =
      ArrayElements(array.arrays, lines, kMaxArrayElements);
  if (!elements.ok()) return context_.UsageError(elements.status());
  // The shared spec is checked with a value for each of the elements'
  // params (the command may name them), which then leave it.
  ParamSet element_keys;
  for (const ParamSet& element : *elements) element_keys.insert(element.begin(), element.end());
  SpecFlags shared = flags;
  for (const std::string& param : flags.params) {
    const std::string key = param.substr(0, param.find('='));
    if (element_keys.contains(key)) {
      return context_.UsageError(absl::InvalidArgumentError(
          absl::StrCat("param ", key, " is given by --param and by the array; give it once")));
    }
  }
  for (const auto& [key, value] : element_keys)
    shared.params.push_back(absl::StrCat(key, "=", value));
  int exit_code = kExitOk;
  std::optional<deja::v1::JobSpec> spec =
      FileCommands(context_).PrepareSpec(shared, /*upload=*/!dry_run, &exit_code);
  if (!spec.has_value()) return exit_code;
  for (const auto& [key, value] : element_keys) spec->mutable_params()->erase(key);
  deja::v1::SubmitArrayRequest request;
  for (const ParamSet& element : *elements) {
    request.add_elements()->mutable_params()->insert(element.begin(), element.end());
  }
  *request.mutable_spec() = *std::move(spec);
  if (dry_run) {
    context_.PrintJson(request);
    return kExitOk;
  }
  absl::StatusOr<deja::v1::SubmitArrayResponse> response = context_.client().SubmitArray(request);
  if (!response.ok()) return context_.Fail(response.status());
  if (context_.json()) {
    context_.PrintJson(*response);
  } else {
    context_.out() << FormatArraySubmitLine(*response) << "\n";
  }
  return kExitOk;
}

int JobCommands::Run(const SpecFlags& flags, bool follow) {
  int exit_code = kExitOk;
  std::optional<deja::v1::SubmitResponse> response = DoSubmit(flags, &exit_code);
  if (!response.has_value()) return exit_code;
  const std::string job_id = response->job().job_id();
  // With --follow the job's output is ours: the state lines go to stderr.
  std::ostream& lines = follow ? context_.err() : context_.out();

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
        lines << ToJson(job) << "\n";
        lines.flush();
      }
    } else if (std::string key = StateLineKey(job); key != last_key) {
      lines << FormatStateLine(job) << "\n";
      lines.flush();
      last_key = key;
    }
    last_job = job;
  };
  auto ended = [&](const Job& job) {
    if (job.state() == deja::v1::FAILED && !follow) PrintStderrTail(job);
    return ExitCodeForJob(job);
  };
  if (follow) {
    std::ostream& out = context_.out();
    std::ostream& err = context_.err();
    absl::StatusOr<Job> job =
        Follow(job_id, /*stdout_stream=*/true, /*stderr_stream=*/true, on_update,
               [&out, &err](deja::v1::LogStream stream, uint64_t, absl::string_view chunk) {
                 std::ostream& to = stream == deja::v1::LOG_STDERR ? err : out;
                 to.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
                 to.flush();
               });
    if (!job.ok()) return context_.Fail(job.status());
    return ended(*job);
  }
  while (true) {
    absl::StatusOr<Job> job = context_.client().WatchJob(job_id, on_update);
    if (job.ok() && IsTerminal(job->state())) return ended(*job);
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

absl::StatusOr<Job> JobCommands::Follow(
    const std::string& job_id, bool stdout_stream, bool stderr_stream,
    const std::function<void(const Job&)>& on_job,
    const std::function<void(deja::v1::LogStream, uint64_t, absl::string_view)>& on_chunk) {
  std::vector<std::pair<deja::v1::LogStream, uint64_t>> logs;  // stream, offset reached
  if (stdout_stream) logs.emplace_back(deja::v1::LOG_STDOUT, 0);
  if (stderr_stream) logs.emplace_back(deja::v1::LOG_STDERR, 0);
  // Polled: fast while the log grows, backing off to a second while idle.
  absl::Duration idle = absl::Milliseconds(100);
  while (true) {
    absl::StatusOr<Job> job = context_.client().GetJob(job_id);
    if (!job.ok()) {
      if (!IsRetryableWatchError(job.status())) return job.status();
      absl::SleepFor(absl::Seconds(1));
      continue;
    }
    on_job(*job);
    const bool ended = IsTerminal(job->state());
    bool grew = false;
    // A job not yet placed has no log; one whose worker is away or whose
    // workspace expired has none to give now: wait, or end without.
    if (!job->worker_id().empty() || ended) {
      for (auto& [stream, offset] : logs) {
        const deja::v1::LogStream which = stream;
        uint64_t from = offset;
        absl::StatusOr<uint64_t> reached = context_.client().StreamLogs(
            job_id, which,
            [&](absl::string_view chunk) {
              on_chunk(which, from, chunk);
              from += chunk.size();
            },
            offset);
        if (reached.ok()) {
          grew = grew || *reached > offset;
          offset = *reached;
        }
      }
    }
    if (ended) return *job;
    if (grew) {
      idle = absl::Milliseconds(100);
    } else {
      absl::SleepFor(idle);
      idle = std::min(idle * 2, absl::Seconds(1));
    }
  }
}

void JobCommands::PrintStderrTail(const Job& job) {
  constexpr uint32_t kTailBytes = 4096;
  constexpr size_t kTailLines = 20;
  if (job.worker_id().empty()) return;  // never ran: no log
  absl::StatusOr<std::string> tail =
      context_.client().ReadLogTail(job.job_id(), deja::v1::LOG_STDERR, kTailBytes);
  if (!tail.ok() || tail->empty()) return;
  std::vector<absl::string_view> lines = absl::StrSplit(*tail, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  // The first line of a tail cut mid-file may be cut too: only whole lines.
  const bool cut = tail->size() == kTailBytes && lines.size() > 1;
  size_t first = cut ? 1 : 0;
  if (lines.size() - first > kTailLines) first = lines.size() - kTailLines;
  std::ostream& err = context_.err();
  err << "deja: the last lines of " << job.job_id() << "'s stderr (deja logs " << job.job_id()
      << " --stderr):\n";
  for (size_t i = first; i < lines.size(); ++i) err << "  " << lines[i] << "\n";
  err.flush();
}

int JobCommands::Status(const std::string& job_id) {
  if (IsArrayId(job_id)) {
    absl::StatusOr<deja::v1::JobArray> array = context_.client().GetArray(job_id);
    if (!array.ok()) return context_.Fail(array.status());
    if (context_.json()) {
      context_.PrintJson(*array);
    } else {
      context_.out() << RenderKeyValues(ArrayStatusRows(*array, context_.tz()));
    }
    return kExitOk;
  }
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

int JobCommands::Logs(const std::string& job_id, bool stderr_stream, bool follow) {
  const deja::v1::LogStream stream = stderr_stream ? deja::v1::LOG_STDERR : deja::v1::LOG_STDOUT;
  std::ostream& out = context_.out();
  auto print = [this, &out, &job_id](deja::v1::LogStream which, uint64_t offset,
                                     absl::string_view chunk) {
    if (context_.json()) {
      nlohmann::ordered_json line;
      line["job_id"] = job_id;
      line["stream"] = which == deja::v1::LOG_STDERR ? "stderr" : "stdout";
      line["offset"] = offset;
      line["data"] = std::string(chunk);
      out << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    }
    out.flush();
  };
  if (follow) {
    bool banner = false;
    absl::StatusOr<Job> job = Follow(
        job_id, !stderr_stream, stderr_stream,
        [&](const Job& version) {
          if (banner || context_.json() || version.reused_from().empty()) return;
          banner = true;
          out << ReuseBanner(version, context_.tz()) << "\n";
        },
        print);
    if (!job.ok()) return context_.Fail(job.status());
    return kExitOk;
  }
  absl::StatusOr<Job> job = context_.client().GetJob(job_id);
  if (!job.ok()) return context_.Fail(job.status());
  if (!context_.json()) {
    std::string banner = ReuseBanner(*job, context_.tz());
    if (!banner.empty()) out << banner << "\n";
  }
  uint64_t offset = 0;
  absl::StatusOr<uint64_t> read =
      context_.client().StreamLogs(job_id, stream, [&](absl::string_view chunk) {
        print(stream, offset, chunk);
        offset += chunk.size();
      });
  out.flush();
  if (!read.ok()) return context_.Fail(read.status());
  return kExitOk;
}

int JobCommands::List(const JobQueryFlags& query, uint32_t limit, const std::string& cursor) {
  absl::StatusOr<deja::v1::ListJobsRequest> request =
      ListRequestOf(query, absl::Now(), context_.tz());
  if (!request.ok()) return context_.UsageError(request.status());
  absl::StatusOr<DejaClient::JobPage> page =
      context_.client().ListJobPage(*std::move(request), limit, cursor);
  if (!page.ok()) return context_.Fail(page.status());
  if (context_.json()) {
    for (const Job& job : page->jobs) context_.PrintJson(job);
  } else {
    context_.out() << JobsTable(page->jobs, context_.tz(), absl::Now());
  }
  if (!page->next_cursor.empty()) {
    context_.out().flush();
    context_.err() << "deja: more jobs match than these " << page->jobs.size()
                   << "; the older ones: the same command with --cursor " << page->next_cursor
                   << "\n";
  }
  return kExitOk;
}

absl::StatusOr<deja::v1::ListJobsRequest> ListRequestOf(const JobQueryFlags& flags, absl::Time now,
                                                        absl::TimeZone tz) {
  deja::v1::ListJobsRequest request;
  request.set_project(flags.project);
  request.set_app(flags.app);
  for (const std::string& name : flags.states) {
    std::optional<deja::v1::JobState> state = ParseJobState(name);
    if (!state.has_value()) {
      return InvalidFlag("--state", name,
                         absl::StrCat("not a job state; use one of ", AllStateNames()));
    }
    request.add_states(*state);
  }
  for (const std::string& label : flags.labels) {
    auto kv = ParseKeyValue("--label", label);
    if (!kv.ok()) return kv.status();
    (*request.mutable_labels())[kv->first] = kv->second;
  }
  if (!flags.since.empty()) {
    absl::StatusOr<absl::Time> since = ParseTimeFlag("--since", flags.since, now, tz);
    if (!since.ok()) return since.status();
    request.set_since_ms(absl::ToUnixMillis(*since));
  }
  if (!flags.array.empty()) {
    if (!IsArrayId(flags.array)) return InvalidFlag("--array", flags.array, "an array id, a12");
    request.set_array_id(flags.array);
  }
  return request;
}

int JobCommands::Cancel(const std::vector<std::string>& job_ids, const JobQueryFlags& query,
                        bool yes) {
  std::ostream& out = context_.out();
  if (!job_ids.empty() && query.any()) {
    return context_.UsageError(
        absl::InvalidArgumentError("name jobs, or give filters (--project, --state...), not both"));
  }
  if (job_ids.empty() && !query.any()) {
    return context_.UsageError(absl::InvalidArgumentError(
        "name the jobs to cancel, or filters that select them (--project P --state queued)"));
  }
  // Arrays named are their jobs not ended, as with --array.
  std::vector<std::string> ids;
  std::vector<std::string> arrays;
  for (const std::string& id : job_ids) (IsArrayId(id) ? arrays : ids).push_back(id);
  if (!arrays.empty() && !ids.empty()) {
    return context_.UsageError(
        absl::InvalidArgumentError("name jobs or one array, not both (deja cancel a12)"));
  }
  if (arrays.size() > 1) {
    return context_.UsageError(absl::InvalidArgumentError("name one array at a time"));
  }
  const bool named = !ids.empty();
  if (!arrays.empty()) {
    JobQueryFlags of_array;
    of_array.array = arrays.front();
    return Cancel({}, of_array, /*yes=*/true);
  }
  if (ids.empty()) {
    absl::StatusOr<deja::v1::ListJobsRequest> request =
        ListRequestOf(query, absl::Now(), context_.tz());
    if (!request.ok()) return context_.UsageError(request.status());
    if (request->states().empty()) {
      for (deja::v1::JobState state : NonTerminalStates()) request->add_states(state);
    }
    absl::StatusOr<DejaClient::JobPage> page =
        context_.client().ListJobPage(*std::move(request), /*limit=*/0, "");
    if (!page.ok()) return context_.Fail(page.status());
    for (const Job& job : page->jobs) {
      if (!IsTerminal(job.state())) ids.push_back(job.job_id());
    }
    if (ids.empty()) {
      if (!context_.json()) out << "no job to cancel matches\n";
      return kExitOk;
    }
    if (!yes) {
      if (!isatty(STDIN_FILENO)) {
        return context_.UsageError(absl::FailedPreconditionError(
            absl::StrCat(ids.size(), " jobs match; add --yes to cancel them (", ids.front(),
                         ids.size() > 1 ? absl::StrCat(" ... ", ids.back()) : "", ")")));
      }
      context_.err() << "Cancel " << ids.size() << " jobs (" << ids.front()
                     << (ids.size() > 1 ? " ... " + ids.back() : "") << ")? [y/N] ";
      context_.err().flush();
      std::string answer;
      std::getline(std::cin, answer);
      if (answer != "y" && answer != "Y" && answer != "yes") {
        context_.err() << "deja: nothing cancelled\n";
        return kExitError;
      }
    }
  }
  constexpr size_t kBatch = 1000;
  size_t cancelled = 0;
  std::vector<std::string> errors;
  for (size_t start = 0; start < ids.size(); start += kBatch) {
    std::vector<std::string> batch(
        ids.begin() + static_cast<std::ptrdiff_t>(start),
        ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), start + kBatch)));
    absl::StatusOr<deja::v1::CancelJobsResponse> response = context_.client().CancelJobs(batch);
    if (!response.ok()) return context_.Fail(response.status());
    for (const Job& job : response->jobs()) {
      if (context_.json()) {
        context_.PrintJson(job);
      } else if (named) {
        out << job.job_id() << " " << StateName(job.state()) << "\n";
      }
      if (job.state() == deja::v1::CANCELLED) ++cancelled;
    }
    errors.insert(errors.end(), response->errors().begin(), response->errors().end());
  }
  if (!named && !context_.json()) out << "cancelled " << cancelled << " jobs\n";
  for (const std::string& error : errors) context_.err() << "deja: " << error << "\n";
  return errors.empty() ? kExitOk : kExitError;
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
