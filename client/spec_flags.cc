#include "client/spec_flags.h"

#include <CLI/CLI.hpp>
#include <cstdint>
#include <random>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli_format.h"
#include "common/job_spec.h"
#include "common/resources.h"

namespace deja::cli {
namespace {

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

}  // namespace

void AddSpecFlags(CLI::App* app, SpecFlags* flags) {
  app->add_option("--project", flags->project,
                  "Project of the job (default: the token's project, else \"default\")")
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
  app->add_option("--image", flags->image,
                  "Container image the job runs in, on a worker with a container engine; the "
                  "image ID it ran enters reuse decisions (docs/containers.md)")
      ->type_name("IMAGE");
  app->add_option("--cpus", flags->cpus,
                  "CPUs the job needs (2, 0.5): placed on a worker with that many free, and "
                  "limited to them; not part of its identity")
      ->type_name("N");
  app->add_option("--memory", flags->memory,
                  "Memory the job needs (4GiB, 512M): placed on a worker with that much free; "
                  "past it the job fails \"out of memory\"; not part of its identity")
      ->type_name("SIZE");
  app->add_option("--gpus", flags->gpus, "GPUs the job needs; not part of its identity")
      ->type_name("N");
  app->add_option("--time-limit", flags->time_limit,
                  "Wall-clock limit of the command (2h, 90m, 1h30m): past it the job is killed "
                  "and fails; not part of its identity")
      ->type_name("DURATION");
  app->add_option("--unplaceable", flags->unplaceable,
                  "When no connected worker could ever run the job (too few CPUs, memory or "
                  "GPUs, no platform match, no container engine): wait in QUEUED saying why "
                  "(default), or fail at once")
      ->type_name("wait|fail")
      ->check(CLI::IsMember({"wait", "fail"}, CLI::ignore_case));
  app->add_flag("--network", flags->network,
                "Give an --image job's container a network (default: none); not part of its "
                "identity");
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
  deja::v1::Resources* resources = spec.mutable_resources();
  if (!flags.cpus.empty()) {
    absl::StatusOr<uint32_t> cpus = ParseCpus("--cpus", flags.cpus);
    if (!cpus.ok()) return cpus.status();
    resources->set_milli_cpus(*cpus);
  }
  if (!flags.memory.empty()) {
    absl::StatusOr<uint64_t> memory = ParseMemory("--memory", flags.memory);
    if (!memory.ok()) return memory.status();
    resources->set_memory_bytes(*memory);
  }
  if (absl::Status s = CheckGpus("--gpus", flags.gpus); !s.ok()) return s;
  resources->set_gpus(static_cast<uint32_t>(flags.gpus));
  if (!flags.time_limit.empty()) {
    absl::StatusOr<uint64_t> limit = ParseTimeLimit("--time-limit", flags.time_limit);
    if (!limit.ok()) return limit.status();
    resources->set_time_limit_ms(*limit);
  }
  if (resources->ByteSizeLong() == 0) spec.clear_resources();
  spec.set_fail_unplaceable(absl::AsciiStrToLower(flags.unplaceable) == "fail");
  spec.set_network(flags.network);
  spec.set_force(flags.force);
  spec.set_reuse_job_id(flags.reuse_job.empty() ? flags.reuse_job_alias : flags.reuse_job);
  spec.set_request_id(flags.request_id.empty() ? RandomRequestId() : flags.request_id);

  NormalizeJobSpec(&spec);
  // No --project: the scheduler's choice (the token's project, else
  // "default").
  if (flags.project.empty()) spec.clear_project();
  if (absl::Status s = ValidateSpecToSend(spec); !s.ok()) return s;
  return spec;
}

absl::Status ValidateSpecToSend(deja::v1::JobSpec spec) {
  if (spec.project().empty()) spec.set_project(kDefaultProject);
  return ValidateJobSpec(spec);
}

std::string RandomRequestId() {
  std::random_device device;
  uint64_t value = (static_cast<uint64_t>(device()) << 32) ^ device();
  return absl::StrFormat("%016x", value);
}

}  // namespace deja::cli
