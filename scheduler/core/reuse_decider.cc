#include "scheduler/core/reuse_decider.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/job_state.h"
#include "scheduler/core/dispatcher.h"
#include "scheduler/core/job_times.h"
#include "scheduler/core/keys.h"
#include "scheduler/core/memo_policy.h"

namespace deja {

using deja::v1::Job;

void ClearReuse(Job& job, const std::string& why) {
  job.set_message(why);
  job.clear_reused_from();
  job.clear_time_saved_ms();
  job.clear_reused_source_finished_at_ms();
  job.clear_started_at_ms();
}

ReuseDecider::ReuseDecider(const JobTable* jobs, MemoIndex* memo, const ProjectTable* projects,
                           const Dispatcher* workers, BlobIndex* blobs)
    : jobs_(jobs), memo_(memo), projects_(projects), workers_(workers), blobs_(blobs) {}

absl::Status ReuseDecider::CheckManualReuse(const deja::v1::JobSpec& spec, absl::Time now) const {
  const std::string& id = spec.reuse_job_id();
  if (id.empty()) return absl::OkStatus();
  // Naming a job is an explicit wish: it overrides the project's setting and
  // an app's reuse: false, but not a contradiction in the same request, nor
  // an app that must always execute.
  if (spec.force() || spec.memoization() == deja::v1::MEMOIZATION_OFF) {
    return absl::InvalidArgumentError(
        "reuse_job_id: cannot be combined with force or memoization off");
  }
  if (spec.app().side_effects()) {
    return absl::InvalidArgumentError(absl::StrCat("reuse_job_id: app ", spec.app().name(),
                                                   " has side_effects: true and always executes"));
  }
  absl::StatusOr<Job> read = jobs_->Get(id);
  if (absl::IsNotFound(read.status())) {
    return absl::InvalidArgumentError(absl::StrCat("reuse_job_id: job ", id, " not found"));
  }
  if (!read.ok()) return read.status();
  const Job& src = *read;
  if (src.spec().project() != spec.project()) {
    return absl::InvalidArgumentError(absl::StrCat("reuse_job_id: ", id, " is in project ",
                                                   src.spec().project(), ", not ", spec.project()));
  }
  if (src.spec().app().name() != spec.app().name()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "reuse_job_id: ", id, " is app ", src.spec().app().name(), ", not ", spec.app().name()));
  }
  if (src.state() != deja::v1::SUCCEEDED) {
    return absl::FailedPreconditionError(absl::StrCat("reuse_job_id: ", id, " is ",
                                                      std::string(JobStateName(src.state())),
                                                      "; only a job that succeeded can be reused"));
  }
  if (src.workspace_expired() || Expired(src.expires_at_ms(), now)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "reuse_job_id: the workspace of ", id, " expired at ", FormatMillis(src.expires_at_ms())));
  }
  return absl::OkStatus();
}

ReuseDecision ReuseDecider::Decide(const deja::v1::JobSpec& spec, const std::string& job_hash,
                                   absl::Time now) const {
  ReuseDecision d;
  // The source: a job the user named (--reuse), or the memo entry.
  google::protobuf::RepeatedPtrField<deja::v1::OutputFile> outputs;
  deja::v1::ManifestRef manifest;
  if (!spec.reuse_job_id().empty()) {
    absl::StatusOr<Job> src = jobs_->Get(spec.reuse_job_id());  // checked at submit
    if (!src.ok()) {
      d.source_id = spec.reuse_job_id();
      d.problem = absl::StrCat("not reused: reading ", spec.reuse_job_id(), " failed (",
                               src.status().ToString(), "); running fresh");
      return d;
    }
    d.source_id = src->job_id();
    d.worker_id = src->worker_id();
    d.time_saved_ms = src->reused_from().empty() ? src->run_time_ms() : src->time_saved_ms();
    d.expires_at_ms = src->expires_at_ms();
    d.source_finished_at_ms = src->finished_at_ms();
    outputs = src->outputs();
    manifest = src->manifest();
  } else {
    MemoPolicy policy = DecideMemoPolicy(spec, projects_->Settings(spec.project()));
    if (!policy.lookup) {
      d.problem = policy.off_reason.empty() ? "--force: runs fresh"
                                            : "memoization off: " + policy.off_reason;
      return d;
    }
    const std::string memo_id = MemoId(spec.project(), job_hash);
    const MemoIndex::MemoRef* ref = memo_->Find(memo_id);
    if (ref == nullptr) {
      d.problem = "no memo entry has its hash";
      return d;
    }
    absl::StatusOr<deja::v1::MemoEntry> read = memo_->Read(memo_id);
    if (!read.ok()) {
      // Not dropped: the store may answer next time.
      d.source_id = JobIdFromSeq(ref->source_seq);
      d.problem = absl::StrCat("not reused: reading the memo entry from ", d.source_id, " failed (",
                               read.status().ToString(), "); running fresh");
      return d;
    }
    const deja::v1::MemoEntry& entry = *read;
    if (Expired(entry.expires_at_ms(), now)) {
      d.problem =
          absl::StrCat("not reused: the memo entry from ", entry.source_job_id(), " expired at ",
                       FormatMillis(entry.expires_at_ms()), "; running fresh");
      d.drop_entry = true;
      return d;
    }
    std::string missing = MissingBlob(entry.manifest(), entry.outputs());
    if (!missing.empty()) {
      d.problem = absl::StrCat("memo entry from ", entry.source_job_id(), " dropped: ", missing,
                               "; running fresh");
      d.drop_entry = true;
      return d;
    }
    d.source_id = entry.source_job_id();
    d.worker_id = entry.worker_id();
    d.time_saved_ms = entry.run_time_ms();
    d.expires_at_ms = entry.expires_at_ms();
    // The entry is written with the source's success, at its finish time.
    d.source_finished_at_ms = entry.created_at_ms();
    outputs = entry.outputs();
  }
  if (!spec.reuse_job_id().empty()) {
    // (A memo entry's blobs were checked above.)
    if (std::string missing = MissingBlob(manifest, outputs); !missing.empty()) {
      d.problem = absl::StrCat("not reused: ", d.source_id, ": ", missing, "; running fresh");
      return d;
    }
  }
  if (!workers_->IsConnected(d.worker_id)) {
    d.problem = absl::StrCat("not reused: the workspace of ", d.source_id, " is on worker ",
                             d.worker_id, ", which is not connected; running fresh");
    return d;
  }
  d.outputs = std::move(outputs);
  d.reuse = true;
  return d;
}

bool ReuseDecider::LookUp(Job& job, absl::Time now, Effects* fx) {
  ReuseDecision d = Decide(job.spec(), job.job_hash(), now);
  if (d.drop_entry) memo_->Drop(MemoId(job.spec().project(), job.job_hash()), fx);
  if (!d.reuse) {
    // Say why only when an entry or a named job existed but could not serve.
    if (!d.source_id.empty() || d.drop_entry) job.set_message(d.problem);
    return false;
  }
  job.set_reused_from(d.source_id);
  job.set_time_saved_ms(d.time_saved_ms);
  if (d.source_finished_at_ms != 0) job.set_reused_source_finished_at_ms(d.source_finished_at_ms);
  return true;
}

std::string ReuseDecider::MissingBlob(
    const deja::v1::ManifestRef& manifest,
    const google::protobuf::RepeatedPtrField<deja::v1::OutputFile>& outputs) const {
  if (manifest.digest().empty()) return "it has no manifest";
  if (blobs_ == nullptr) return "";
  if (!blobs_->Has(manifest.digest(), manifest.size())) {
    return absl::StrCat("its manifest (blob ", manifest.digest(),
                        ") is missing from the content store");
  }
  for (const auto& output : outputs) {
    if (!blobs_->Has(output.digest(), output.size())) {
      return absl::StrCat("its output ", output.path(), " (blob ", output.digest(),
                          ") is missing from the content store");
    }
  }
  return "";
}

}  // namespace deja
