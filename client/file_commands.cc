#include "client/file_commands.h"

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/cli.h"
#include "client/hash_cache.h"
#include "client/inputs.h"
#include "client/job_format.h"
#include "client/progress.h"
#include "common/errors.h"
#include "common/files.h"
#include "common/job_spec.h"
#include "common/job_state.h"

namespace deja::cli {

void FileCommands::Register(CommandTable& table) {
  // Where CLI11 writes the arguments; the handler reads them after the parse.
  struct Flags {
    std::string job_id;
    std::string out_dir;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* get = table.AddCommand(
      "get", "Download every output of a succeeded job, byte-identical and with its mode bits",
      [flags](CommandContext& context) {
        return FileCommands(context).Get(flags->job_id, flags->out_dir);
      });
  get->add_option("JOB", flags->job_id, "Job id, e.g. j12")->required();
  get->add_option("--out", flags->out_dir, "Directory to write into (default ./JOB/)")
      ->type_name("DIR");
}

std::optional<deja::v1::JobSpec> FileCommands::PrepareSpec(const SpecFlags& flags, bool upload,
                                                           int* exit_code) {
  std::ostream& err = context_.err();
  std::vector<InputFlag> input_flags;
  std::vector<deja::v1::InputRef> placeholders;
  for (const std::string& arg : flags.inputs) {
    absl::StatusOr<InputFlag> flag = ParseInputFlag(arg);
    if (!flag.ok()) {
      *exit_code = context_.UsageError(flag.status());
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
    *exit_code = context_.UsageError(spec.status());
    return std::nullopt;
  }
  if (input_flags.empty()) {
    if (flags.timing) err << "deja: " << FormatInputTiming({}) << "\n";
    return *std::move(spec);
  }

  // The input phase, timed for --timing: the hash cache's load and save are
  // part of what a re-submit costs.
  const auto start = std::chrono::steady_clock::now();
  std::string warning;
  std::unique_ptr<HashCache> cache = HashCache::Load(HashCache::DefaultPath(), {}, &warning);
  if (!warning.empty()) err << "deja: warning: " << warning << "\n";
  absl::StatusOr<PreparedInputs> prepared = PrepareInputs(input_flags, cache->AsFileHasher());
  if (absl::Status saved = cache->Save(); !saved.ok()) {
    err << "deja: warning: cannot save the hash cache: " << saved.message() << "\n";
  }
  if (flags.timing) {
    InputTiming timing{
        .elapsed = absl::FromChrono(std::chrono::steady_clock::now() - start),
        .hashed_files = cache->misses(),
        .hashed_bytes = cache->miss_bytes(),
        .cached_files = cache->hits(),
        .cached_bytes = cache->hit_bytes(),
    };
    err << "deja: " << FormatInputTiming(timing) << "\n";
  }
  if (!prepared.ok()) {
    // A missing or unreadable PATH is the command line's fault.
    bool usage = absl::IsInvalidArgument(prepared.status()) ||
                 absl::IsNotFound(prepared.status()) || absl::IsPermissionDenied(prepared.status());
    *exit_code = usage ? context_.UsageError(prepared.status()) : context_.Fail(prepared.status());
    return std::nullopt;
  }
  if (upload) {
    absl::StatusOr<UploadReport> report;
    {
      ProgressBar bar(err, context_.progress(), "uploading");
      report = UploadMissing(context_.client().blobs(), prepared->blobs,
                             [&bar](uint64_t done, uint64_t total) { bar.Update(done, total); });
    }
    if (!report.ok()) {
      *exit_code = context_.Fail(report.status());
      return std::nullopt;
    }
    err << FormatUploadReport(*report) << "\n";
  }
  spec->clear_inputs();
  for (deja::v1::InputRef& ref : prepared->refs) *spec->add_inputs() = std::move(ref);
  if (absl::Status valid = ValidateSpecToSend(*spec); !valid.ok()) {
    *exit_code = context_.UsageError(valid);
    return std::nullopt;
  }
  return *std::move(spec);
}

int FileCommands::Get(const std::string& job_id, const std::string& out_dir) {
  absl::StatusOr<deja::v1::Job> job = context_.client().GetJob(job_id);
  if (!job.ok()) return context_.Fail(job.status());
  if (job->state() != deja::v1::SUCCEEDED) {
    return context_.Fail(absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, " is ", std::string(JobStateName(job->state())),
                     "; only a SUCCEEDED job has outputs to get")));
  }
  if (job->outputs().empty()) {
    return context_.Fail(absl::FailedPreconditionError(absl::StrCat(
        "job ", job_id, " has no outputs (declare them with --output when submitting)")));
  }
  const std::string dir = GetOutputDir(job_id, out_dir);
  uint64_t total = 0;
  for (int i = 0; i < job->outputs_size(); ++i) {
    const deja::v1::OutputFile& output = job->outputs(i);
    // The scheduler's record is trusted no further than a user's flag.
    if (absl::Status s =
            ValidateWorkspacePath(absl::StrCat("outputs[", i, "].path"), output.path());
        !s.ok()) {
      return context_.Fail(s);
    }
    total += output.size();
  }
  uint64_t done = 0;
  {
    ProgressBar bar(context_.err(), context_.progress(), "downloading");
    for (const deja::v1::OutputFile& output : job->outputs()) {
      const std::string dest = absl::StrCat(dir, "/", output.path());
      absl::Status status = MakeParentDirs(dest);
      deja::v1::BlobRef blob;
      blob.set_digest(output.digest());
      blob.set_size(output.size());
      if (status.ok()) {
        status = context_.client().blobs().DownloadToFile(
            blob, dest, [&](uint64_t moved) { bar.Update(done + moved, total); });
      }
      mode_t mode = static_cast<mode_t>(output.mode() & 0777);
      if (status.ok() && chmod(dest.c_str(), mode == 0 ? 0644 : mode) != 0) {
        status = ErrnoStatus(errno, "chmod " + dest);
      }
      if (!status.ok()) {
        bar.Clear();
        return context_.Fail(absl::Status(
            status.code(),
            absl::StrCat("get ", output.path(), " of ", job_id, ": ", status.message())));
      }
      done += output.size();
      bar.Update(done, total);
    }
  }
  if (context_.json()) {
    for (const deja::v1::OutputFile& output : job->outputs()) context_.PrintJson(output);
  } else {
    context_.out() << FormatGetLine(job_id, static_cast<uint64_t>(job->outputs_size()), total, dir)
                   << "\n";
  }
  return kExitOk;
}

}  // namespace deja::cli
