#include "client/pipeline_commands.h"

#include <google/protobuf/util/message_differencer.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <memory>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/cli.h"
#include "client/cli_format.h"
#include "client/command_context.h"
#include "client/hash_cache.h"
#include "client/inputs.h"
#include "client/live_view.h"
#include "client/pipeline_format.h"
#include "client/pipeline_yaml.h"
#include "client/progress.h"
#include "client/spec_flags.h"

namespace deja::cli {
namespace {

using deja::v1::NodeStatus;
using deja::v1::Pipeline;

bool NodeNamed(const deja::v1::PipelineSpec& spec, const std::string& name) {
  return std::any_of(spec.nodes().begin(), spec.nodes().end(),
                     [&name](const auto& node) { return node.name() == name; });
}

void AddPipelineFlags(CLI::App* app, PipelineFlags* flags) {
  app->add_option("FILE", flags->file, "Pipeline YAML file (docs/pipelines.md)")->required();
  app->add_option("--param", flags->params,
                  "Value of a pipeline parameter, overriding the file's default (repeatable)")
      ->type_name("K=V")
      ->allow_extra_args(false);
  app->add_option("--project", flags->project, "Project (default: the file's, else \"default\")")
      ->type_name("P");
  app->add_flag("--force", flags->force,
                "Every node runs fresh (no lookup); successes replace "
                "the memo entries");
  app->add_option("--force-node", flags->force_nodes,
                  "This node runs fresh (repeatable); what depends on it is looked up as usual")
      ->type_name("N")
      ->allow_extra_args(false);
  app->add_flag("--no-reuse", flags->no_reuse,
                "Pipeline-wide reuse off: every node runs and none is memoized");
}

// The commands as the CLI runs them: on the context's client and streams,
// with the live view when stdout is a terminal.
PipelineCommands ForContext(const CommandContext& context) {
  PipelineCommandOptions options;
  options.json = context.json();
  options.live = StdoutIsTerminal(context.out(), &options.width);
  options.progress = context.progress();
  options.tz = context.tz();
  return PipelineCommands(context.client(), context.out(), context.err(), options);
}

}  // namespace

void PipelineCommands::Register(CommandTable& table) {
  // Where CLI11 writes the arguments; the handlers read them after the parse.
  struct Flags {
    PipelineFlags pipeline;
    std::string id;
    std::string project;
    uint32_t limit = 0;
    std::string retry_node;
  };
  auto flags = std::make_shared<Flags>();

  CLI::App* pipeline = table.AddGroup(
      "pipeline", "Run DAGs of jobs from a YAML file, reused node by node across runs");
  CLI::App* run = table.AddCommand(
      pipeline, "run",
      "Upload the file's local inputs, submit the pipeline and follow it to its end (exit 0 when "
      "it succeeded, else 1)",
      [flags](CommandContext& context) { return ForContext(context).Run(flags->pipeline); });
  AddPipelineFlags(run, &flags->pipeline);
  CLI::App* plan = table.AddCommand(
      pipeline, "plan",
      "Say which nodes would be reused and which would run, and the time it would save; "
      "submits nothing",
      [flags](CommandContext& context) { return ForContext(context).Plan(flags->pipeline); });
  AddPipelineFlags(plan, &flags->pipeline);
  CLI::App* status = table.AddCommand(
      pipeline, "status", "Show a pipeline and the state of each node",
      [flags](CommandContext& context) { return ForContext(context).Status(flags->id); });
  status->add_option("ID", flags->id, "Pipeline id, e.g. p3")->required();
  CLI::App* ls = table.AddCommand(pipeline, "ls", "List pipelines as a table",
                                  [flags](CommandContext& context) {
                                    return ForContext(context).List(flags->project, flags->limit);
                                  });
  ls->add_option("--project", flags->project, "Only this project (default: every)")->type_name("P");
  ls->add_option("--limit", flags->limit, "At most N pipelines")->type_name("N");
  CLI::App* cancel = table.AddCommand(
      pipeline, "cancel", "Cancel a pipeline: its running jobs and the nodes not started",
      [flags](CommandContext& context) { return ForContext(context).Cancel(flags->id); });
  cancel->add_option("ID", flags->id, "Pipeline id, e.g. p3")->required();
  CLI::App* retry = table.AddCommand(
      pipeline, "retry",
      "Run a finished pipeline's failed, cancelled and upstream-failed nodes again "
      "(succeeded ones are verified and reused), then follow it like run",
      [flags](CommandContext& context) {
        return ForContext(context).Retry(flags->id, flags->retry_node);
      });
  retry->add_option("ID", flags->id, "Pipeline id, e.g. p3")->required();
  retry
      ->add_option("--node", flags->retry_node, "Only this node (run fresh) and what depends on it")
      ->type_name("N");
}

// ---------------------------------------------------------------------------
// Pure pieces.

absl::StatusOr<std::map<std::string, std::string>> ParseParamOverrides(
    const std::vector<std::string>& params) {
  std::map<std::string, std::string> overrides;
  for (const std::string& arg : params) {
    absl::StatusOr<std::pair<std::string, std::string>> kv = ParseKeyValue("--param", arg);
    if (!kv.ok()) return kv.status();
    if (!overrides.emplace(kv->first, kv->second).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("--param \"", arg, "\": key \"", kv->first, "\" given twice"));
    }
  }
  return overrides;
}

absl::Status ApplyPipelineFlags(const PipelineFlags& flags, deja::v1::PipelineSpec* spec) {
  if (!flags.project.empty()) spec->set_project(flags.project);
  if (flags.force) spec->set_force(true);
  if (flags.no_reuse) spec->set_reuse(false);
  for (const std::string& node : flags.force_nodes) {
    if (!NodeNamed(*spec, node)) {
      std::vector<std::string> names;
      for (const auto& n : spec->nodes()) names.push_back(n.name());
      return absl::InvalidArgumentError(
          absl::StrCat("--force-node \"", node,
                       "\": the pipeline has no node of that name (its "
                       "nodes: ",
                       absl::StrJoin(names, ", "), ")"));
    }
    if (std::find(spec->force_nodes().begin(), spec->force_nodes().end(), node) ==
        spec->force_nodes().end()) {
      spec->add_force_nodes(node);
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// The commands.

PipelineCommands::PipelineCommands(const DejaClient& client, std::ostream& out, std::ostream& err,
                                   PipelineCommandOptions options)
    : client_(client), out_(out), err_(err), options_(options) {}

int PipelineCommands::Fail(const absl::Status& status) {
  return ReportCallError(client_, err_, status);
}

int PipelineCommands::UsageError(const absl::Status& status) {
  err_ << "deja: " << status.message() << "\n";
  return kExitUsage;
}

std::optional<deja::v1::SubmitPipelineRequest> PipelineCommands::PrepareRequest(
    const PipelineFlags& flags, int* exit_code) {
  // The file's own problems (syntax, fields, unknown params) and a missing
  // or unreadable file are the command line's fault.
  auto usage = [](const absl::Status& s) {
    return absl::IsInvalidArgument(s) || absl::IsNotFound(s) || absl::IsPermissionDenied(s) ||
           absl::IsFailedPrecondition(s);
  };
  absl::StatusOr<std::map<std::string, std::string>> overrides = ParseParamOverrides(flags.params);
  if (!overrides.ok()) {
    *exit_code = UsageError(overrides.status());
    return std::nullopt;
  }
  absl::StatusOr<PipelineFile> file = LoadPipelineFile(flags.file, *overrides);
  if (!file.ok()) {
    *exit_code = usage(file.status()) ? UsageError(file.status()) : Fail(file.status());
    return std::nullopt;
  }
  deja::v1::SubmitPipelineRequest request;
  *request.mutable_spec() = std::move(file->spec);
  deja::v1::PipelineSpec* spec = request.mutable_spec();
  if (absl::Status s = ApplyPipelineFlags(flags, spec); !s.ok()) {
    *exit_code = UsageError(s);
    return std::nullopt;
  }
  request.set_request_id(RandomRequestId());
  if (file->local_inputs.empty()) return request;

  // Local files and directories: hashed like --input (one at a time, since
  // two nodes may name inputs alike), uploaded together.
  std::string warning;
  std::unique_ptr<HashCache> cache = HashCache::Load(HashCache::DefaultPath(), {}, &warning);
  if (!warning.empty()) err_ << "deja: warning: " << warning << "\n";
  std::vector<TreeBlob> blobs;
  std::set<std::string> digests;
  std::vector<std::pair<std::string, deja::v1::InputRef>> refs;  // node, input
  absl::Status failed;
  for (const LocalInput& local : file->local_inputs) {
    InputFlag flag;
    flag.name = local.name;
    flag.local_path = local.path;
    flag.workspace_path = local.workspace_path;
    flag.arg = absl::StrCat(local.name, "=", local.path);
    absl::StatusOr<PreparedInputs> prepared = PrepareInputs({flag}, cache->AsFileHasher());
    if (!prepared.ok()) {
      // "--input "<arg>": <problem>" -> "FILE: nodes[N].inputs[X]: <problem>".
      absl::string_view message = prepared.status().message();
      const std::string prefix = absl::StrCat("--input \"", flag.arg, "\": ");
      if (absl::StartsWith(message, prefix)) message.remove_prefix(prefix.size());
      failed = absl::Status(prepared.status().code(),
                            absl::StrCat(file->path.empty() ? flags.file : file->path, ": nodes[",
                                         local.node, "].inputs[", local.name, "]: ", message));
      break;
    }
    for (TreeBlob& blob : prepared->blobs) {
      if (digests.insert(blob.digest).second) blobs.push_back(std::move(blob));
    }
    refs.emplace_back(local.node, std::move(prepared->refs[0]));
  }
  if (absl::Status saved = cache->Save(); !saved.ok()) {
    err_ << "deja: warning: cannot save the hash cache: " << saved.message() << "\n";
  }
  if (!failed.ok()) {
    *exit_code = usage(failed) ? UsageError(failed) : Fail(failed);
    return std::nullopt;
  }
  for (auto& [node_name, ref] : refs) {
    auto node = std::find_if(spec->mutable_nodes()->begin(), spec->mutable_nodes()->end(),
                             [&name = node_name](const auto& n) { return n.name() == name; });
    if (node == spec->mutable_nodes()->end()) {
      *exit_code = UsageError(absl::InvalidArgumentError(
          absl::StrCat(flags.file, ": input ", ref.name(), " of unknown node ", node_name)));
      return std::nullopt;
    }
    *node->add_inputs() = std::move(ref);
  }
  absl::StatusOr<UploadReport> report;
  {
    ProgressBar bar(err_, options_.progress, "uploading");
    report = UploadMissing(client_.blobs(), blobs,
                           [&bar](uint64_t done, uint64_t total) { bar.Update(done, total); });
  }
  if (!report.ok()) {
    *exit_code = Fail(report.status());
    return std::nullopt;
  }
  err_ << FormatUploadReport(*report) << "\n";
  return request;
}

int PipelineCommands::Run(const PipelineFlags& flags) {
  int exit_code = kExitOk;
  std::optional<deja::v1::SubmitPipelineRequest> request = PrepareRequest(flags, &exit_code);
  if (!request.has_value()) return exit_code;
  absl::StatusOr<Pipeline> pipeline = client_.SubmitPipeline(*request);
  if (!pipeline.ok()) return Fail(pipeline.status());
  return Follow(*pipeline);
}

int PipelineCommands::Plan(const PipelineFlags& flags) {
  int exit_code = kExitOk;
  std::optional<deja::v1::SubmitPipelineRequest> request = PrepareRequest(flags, &exit_code);
  if (!request.has_value()) return exit_code;
  absl::StatusOr<deja::v1::PipelinePlan> plan = client_.PlanPipeline(*request);
  if (!plan.ok()) return Fail(plan.status());
  if (options_.json) {
    out_ << ToJson(*plan) << "\n";
  } else {
    out_ << PlanTable(*plan, options_.tz) << PlanSavedLine(*plan) << "\n";
  }
  return kExitOk;
}

int PipelineCommands::Status(const std::string& pipeline_id) {
  absl::StatusOr<Pipeline> pipeline = client_.GetPipeline(pipeline_id);
  if (!pipeline.ok()) return Fail(pipeline.status());
  if (options_.json) {
    out_ << ToJson(*pipeline) << "\n";
  } else {
    out_ << RenderKeyValues(PipelineRows(*pipeline, options_.tz)) << "\n"
         << PipelineNodesTable(*pipeline, absl::Now()) << PipelineSummary(*pipeline) << "\n";
  }
  return kExitOk;
}

int PipelineCommands::List(const std::string& project, uint32_t limit) {
  absl::StatusOr<std::vector<Pipeline>> pipelines = client_.ListPipelines(project, limit);
  if (!pipelines.ok()) return Fail(pipelines.status());
  if (options_.json) {
    for (const Pipeline& pipeline : *pipelines) out_ << ToJson(pipeline) << "\n";
  } else {
    out_ << PipelinesTable(*pipelines, options_.tz);
  }
  return kExitOk;
}

int PipelineCommands::Cancel(const std::string& pipeline_id) {
  absl::StatusOr<Pipeline> pipeline = client_.CancelPipeline(pipeline_id);
  if (!pipeline.ok()) return Fail(pipeline.status());
  if (options_.json) {
    out_ << ToJson(*pipeline) << "\n";
  } else {
    out_ << PipelineEndLine(*pipeline) << "\n";
  }
  return kExitOk;
}

int PipelineCommands::Retry(const std::string& pipeline_id, const std::string& node) {
  absl::StatusOr<Pipeline> pipeline = client_.RetryPipeline(pipeline_id, node);
  if (!pipeline.ok()) return Fail(pipeline.status());
  return Follow(*pipeline);
}

absl::StatusOr<Pipeline> PipelineCommands::WatchToEnd(
    const std::string& pipeline_id, const std::function<void(const Pipeline&)>& on_update,
    const std::function<void(const std::string&)>& on_lost) {
  bool interrupted = false;
  absl::Duration backoff = options_.initial_backoff;
  auto update = [&](const Pipeline& pipeline) {
    if (interrupted) {
      interrupted = false;
      backoff = options_.initial_backoff;
    }
    on_update(pipeline);
  };
  while (true) {
    absl::StatusOr<Pipeline> pipeline = client_.WatchPipeline(pipeline_id, update);
    if (pipeline.ok() && IsPipelineDone(pipeline->state())) return pipeline;
    if (!pipeline.ok() && !IsRetryableWatchError(pipeline.status())) return pipeline.status();
    if (!interrupted) {
      on_lost(pipeline.ok() ? "stream ended" : std::string(pipeline.status().message()));
      interrupted = true;
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
}

void PipelineCommands::LookUpWorkers(const Pipeline& pipeline, WorkerOfJob* workers,
                                     std::map<std::string, int>* looked_up) {
  for (const NodeStatus& node : pipeline.nodes()) {
    const deja::v1::JobState state = node.job_state();
    if (node.state() != deja::v1::NODE_SUBMITTED || node.job_id().empty() ||
        (state != deja::v1::ASSIGNED && state != deja::v1::RUNNING &&
         state != deja::v1::MATERIALIZING)) {
      continue;
    }
    auto [it, inserted] = looked_up->emplace(node.job_id(), state);
    if (!inserted && it->second == state) continue;
    it->second = state;
    // Best effort: without it the line says "running" without a worker.
    absl::StatusOr<deja::v1::Job> job = client_.GetJob(node.job_id());
    if (job.ok() && !job->worker_id().empty()) (*workers)[node.job_id()] = job->worker_id();
  }
}

int PipelineCommands::Follow(const Pipeline& started) {
  const std::string& id = started.pipeline_id();
  if (!options_.json) {
    out_ << PipelineStartLine(started) << "\n";
    out_.flush();
  }
  auto lost_line = [&id](const std::string& why) {
    return absl::StrCat("deja: lost the watch of ", id, " (", why, "); watching again\n");
  };
  WorkerOfJob workers;
  std::map<std::string, int> looked_up;

  if (options_.json || !options_.live) {
    std::optional<Pipeline> last;
    std::map<std::string, std::string> last_lines;  // node -> its last line
    auto on_update = [&](const Pipeline& pipeline) {
      if (options_.json) {
        if (!last.has_value() ||
            !google::protobuf::util::MessageDifferencer::Equals(*last, pipeline)) {
          out_ << ToJson(pipeline) << "\n";
          out_.flush();
        }
      } else {
        LookUpWorkers(pipeline, &workers, &looked_up);
        for (const NodeStatus& node : pipeline.nodes()) {
          std::string line = NodePlainLine(node, workers);
          if (line.empty() || last_lines[node.name()] == line) continue;
          out_ << line << "\n";
          last_lines[node.name()] = line;
        }
        out_.flush();
      }
      last = pipeline;
    };
    absl::StatusOr<Pipeline> done =
        WatchToEnd(id, on_update, [&](const std::string& why) { err_ << lost_line(why); });
    if (!done.ok()) return Fail(done.status());
    if (!options_.json) out_ << PipelineSummary(*done) << "\n" << PipelineEndLine(*done) << "\n";
    return ExitCodeForPipeline(*done);
  }

  // Live view: the watch runs on its own thread; this one redraws at most
  // every redraw_interval, so running times tick between updates.
  absl::Mutex mu;
  std::optional<Pipeline> latest;  // guarded by mu
  WorkerOfJob shared_workers;      // guarded by mu
  std::vector<std::string> lost;   // guarded by mu: reasons not printed yet
  bool finished = false;           // guarded by mu
  absl::StatusOr<Pipeline> result = absl::UnknownError("not watched");  // guarded by mu
  std::thread watcher([&] {
    absl::StatusOr<Pipeline> done = WatchToEnd(
        id,
        [&](const Pipeline& pipeline) {
          LookUpWorkers(pipeline, &workers, &looked_up);
          absl::MutexLock lock(&mu);
          latest = pipeline;
          shared_workers = workers;
        },
        [&](const std::string& why) {
          absl::MutexLock lock(&mu);
          lost.push_back(why);
        });
    absl::MutexLock lock(&mu);
    result = std::move(done);
    finished = true;
  });
  LiveView view(out_, options_.width);
  while (true) {
    std::optional<Pipeline> pipeline;
    WorkerOfJob now_workers;
    std::vector<std::string> reasons;
    bool end = false;
    {
      absl::MutexLock lock(&mu);
      mu.AwaitWithTimeout(absl::Condition(&finished), options_.redraw_interval);
      pipeline = latest;
      now_workers = shared_workers;
      reasons.swap(lost);
      end = finished;
    }
    if (!reasons.empty()) {
      view.Erase();
      for (const std::string& why : reasons) err_ << lost_line(why);
      err_.flush();
    }
    if (pipeline.has_value()) view.Draw(LiveViewLines(*pipeline, now_workers, absl::Now()));
    if (end) break;
  }
  watcher.join();
  absl::StatusOr<Pipeline> done;
  {
    absl::MutexLock lock(&mu);
    done = std::move(result);
  }
  if (!done.ok()) return Fail(done.status());
  view.Draw(LiveViewLines(*done, workers, absl::Now()));
  out_ << PipelineEndLine(*done) << "\n";
  return ExitCodeForPipeline(*done);
}

}  // namespace deja::cli
