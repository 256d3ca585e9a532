#include "scheduler/core/pipeline_runner.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/check.h"
#include "common/hash.h"
#include "common/job_identity.h"
#include "common/job_spec.h"
#include "common/job_state.h"
#include "common/pipeline.h"
#include "scheduler/core/keys.h"

namespace deja {

using deja::v1::Job;
using deja::v1::NodeStatus;
using deja::v1::Pipeline;

namespace {

bool NodeFinal(deja::v1::NodeState state) {
  return state == deja::v1::NODE_SUCCEEDED || state == deja::v1::NODE_FAILED ||
         state == deja::v1::NODE_UPSTREAM_FAILED || state == deja::v1::NODE_CANCELLED;
}

int NodeIndex(const Pipeline& p, const std::string& name) {
  for (int i = 0; i < p.nodes_size(); ++i) {
    if (p.nodes(i).name() == name) return i;
  }
  return -1;
}

// Copies what status views show from the node's job.
void CopyJob(const Job& job, NodeStatus* node) {
  node->set_job_id(job.job_id());
  node->set_job_state(job.state());
  node->set_worker_id(job.worker_id());
  node->set_reused_from(job.reused_from());
  node->set_run_time_ms(job.run_time_ms());
  node->set_time_saved_ms(job.time_saved_ms());
  node->set_message(job.message());
  node->set_started_at_ms(job.started_at_ms());
  node->set_finished_at_ms(job.finished_at_ms());
}

// The project defaulted, array nodes expanded, then validated.
absl::Status CheckProject(deja::v1::PipelineSpec* spec) {
  if (spec->project().empty()) spec->set_project(kDefaultProject);
  absl::StatusOr<deja::v1::PipelineSpec> expanded = ExpandArrayNodes(std::move(*spec));
  if (!expanded.ok()) return expanded.status();
  *spec = *std::move(expanded);
  return ValidatePipeline(*spec);
}

}  // namespace

PipelineRunner::PipelineRunner(JobSubmitter* submitter, JobTable* jobs, const ReuseDecider* reuse,
                               BlobIndex* blobs, const ImageTable* images)
    : submitter_(submitter), jobs_(jobs), reuse_(reuse), blobs_(blobs), images_(images) {}

void PipelineRunner::Load(Pipeline pipeline) {
  uint64_t seq = ParsePipelineId(pipeline.pipeline_id());
  DEJA_CHECK(seq != 0, "stored pipeline has a malformed id: " + pipeline.pipeline_id());
  next_seq_ = std::max(next_seq_, seq + 1);
  for (int i = 0; i < pipeline.nodes_size(); ++i) {
    if (!pipeline.nodes(i).job_id().empty()) {
      job_nodes_[pipeline.nodes(i).job_id()] = {pipeline.pipeline_id(), i};
    }
  }
  if (!pipeline.request_id().empty()) {
    requests_[RequestKey(pipeline.spec().project(), pipeline.request_id())] =
        pipeline.pipeline_id();
  }
  pipelines_[seq] = std::move(pipeline);
}

deja::v1::Pipeline* PipelineRunner::Find(const std::string& pipeline_id) {
  auto it = pipelines_.find(ParsePipelineId(pipeline_id));
  return it == pipelines_.end() ? nullptr : &it->second;
}

absl::StatusOr<Pipeline> PipelineRunner::Submit(const deja::v1::SubmitPipelineRequest& request,
                                                absl::Time now, Effects* fx) {
  deja::v1::PipelineSpec spec = request.spec();
  if (auto s = CheckProject(&spec); !s.ok()) return s;
  std::string request_key;
  if (!request.request_id().empty()) {
    request_key = RequestKey(spec.project(), request.request_id());
    if (auto it = requests_.find(request_key); it != requests_.end()) {
      return *Find(it->second);
    }
  }
  for (const auto& node : spec.nodes()) {
    for (const auto& input : node.inputs()) {
      if (blobs_ != nullptr && !blobs_->Has(input.digest(), input.size())) {
        return absl::FailedPreconditionError(absl::StrCat(
            "nodes[", node.name(), "].inputs[", input.name(), "]: blob ", input.digest(),
            " is not in the content store; upload it first (deja pipeline run does)"));
      }
    }
  }
  uint64_t seq = next_seq_++;
  Pipeline pipeline;
  pipeline.set_pipeline_id(PipelineIdFromSeq(seq));
  *pipeline.mutable_spec() = std::move(spec);
  pipeline.set_state(deja::v1::PIPELINE_RUNNING);
  pipeline.set_created_at_ms(absl::ToUnixMillis(now));
  pipeline.set_run(1);
  pipeline.set_request_id(request.request_id());
  for (const auto& node : pipeline.spec().nodes()) {
    NodeStatus* status = pipeline.add_nodes();
    status->set_name(node.name());
    status->set_state(deja::v1::NODE_PENDING);
  }
  if (!request_key.empty()) requests_[request_key] = pipeline.pipeline_id();
  Pipeline& stored = pipelines_[seq] = std::move(pipeline);
  Advance(stored, now, fx);
  return stored;
}

void PipelineRunner::Advance(Pipeline& p, absl::Time now, Effects* fx) {
  if (p.state() != deja::v1::PIPELINE_RUNNING) return;
  const deja::v1::PipelineSpec& spec = p.spec();
  for (const std::string& name : TopologicalOrder(spec)) {
    const int index = NodeIndex(p, name);
    NodeStatus* status = p.mutable_nodes(index);
    if (status->state() != deja::v1::NODE_PENDING) continue;
    // Its inputs are known once every upstream succeeded.
    bool ready = true;
    std::string failed_upstream;
    for (const auto& edge : spec.edges()) {
      if (edge.to_node() != name) continue;
      const NodeStatus& up = p.nodes(NodeIndex(p, edge.from_node()));
      if (up.state() == deja::v1::NODE_SUCCEEDED) continue;
      ready = false;
      if (NodeFinal(up.state()) && failed_upstream.empty()) failed_upstream = edge.from_node();
    }
    if (!failed_upstream.empty()) {
      status->set_state(deja::v1::NODE_UPSTREAM_FAILED);
      status->set_message(absl::StrCat("upstream ", failed_upstream, " did not succeed"));
      continue;
    }
    if (!ready) continue;
    const deja::v1::PipelineNode& node = spec.nodes(index);
    deja::v1::JobSpec job = NodeJobSpec(spec, node);
    (*job.mutable_labels())["pipeline"] = p.pipeline_id();
    absl::Status problem;
    for (const auto& group : EdgesInto(spec, name)) {
      // Ended: from the store unless it ended in this round.
      std::vector<Job> ups;
      ups.reserve(group.size());
      for (const auto* edge : group) {
        absl::StatusOr<Job> up = jobs_->Get(p.nodes(NodeIndex(p, edge->from_node())).job_id());
        if (!up.ok()) {
          problem = up.status();
          break;
        }
        ups.push_back(*std::move(up));
      }
      if (!problem.ok()) break;
      std::vector<const google::protobuf::RepeatedPtrField<deja::v1::OutputFile>*> outputs;
      outputs.reserve(ups.size());
      for (const Job& up : ups) outputs.push_back(&up.outputs());
      auto input = ResolveEdges(group, outputs);
      if (!input.ok()) {
        problem = input.status();
        break;
      }
      // Written by the caller before the records that name them.
      for (auto& blob : input->dir_blobs) fx->blob_puts[HashBytes(blob)] = std::move(blob);
      *job.add_inputs() = input->input;
    }
    absl::StatusOr<deja::v1::SubmitResponse> submitted =
        problem.ok() ? submitter_->Submit(job, now, fx)
                     : absl::StatusOr<deja::v1::SubmitResponse>(problem);
    if (!submitted.ok()) {
      status->set_state(deja::v1::NODE_FAILED);
      status->set_message(std::string(submitted.status().message()));
      continue;
    }
    status->set_state(deja::v1::NODE_SUBMITTED);
    CopyJob(submitted->job(), status);
    job_nodes_[submitted->job().job_id()] = {p.pipeline_id(), index};
  }
  // Settled when every node is final.
  bool all_final = true, all_ok = true, any_cancelled = false;
  for (const auto& n : p.nodes()) {
    all_final &= NodeFinal(n.state());
    all_ok &= n.state() == deja::v1::NODE_SUCCEEDED;
    any_cancelled |= n.state() == deja::v1::NODE_CANCELLED;
  }
  if (all_final) {
    p.set_state(all_ok          ? deja::v1::PIPELINE_SUCCEEDED
                : any_cancelled ? deja::v1::PIPELINE_CANCELLED
                                : deja::v1::PIPELINE_FAILED);
    p.set_finished_at_ms(absl::ToUnixMillis(now));
    std::vector<std::string> failed;
    for (const auto& n : p.nodes()) {
      if (n.state() == deja::v1::NODE_FAILED) failed.push_back(n.name());
    }
    p.set_message(failed.empty() ? "" : absl::StrCat("failed: ", absl::StrJoin(failed, ", ")));
  }
  fx->pipelines[p.pipeline_id()] = p;
}

void PipelineRunner::Sync(absl::Time now, Effects* fx) {
  std::set<std::string> seen;
  while (true) {
    std::vector<std::string> ids;
    for (const auto& [id, job] : fx->jobs) {
      if (!seen.contains(id) && job_nodes_.contains(id)) ids.push_back(id);
    }
    if (ids.empty()) return;
    for (const auto& id : ids) {
      seen.insert(id);
      // Copies: Advance adds to job_nodes_, which may rehash.
      const auto [pipeline_id, index] = job_nodes_.at(id);
      Pipeline* p = Find(pipeline_id);
      if (p == nullptr) continue;
      NodeStatus* node = p->mutable_nodes(index);
      if (node->job_id() != id) continue;  // an earlier run's job
      const Job& job = jobs_->At(id);
      CopyJob(job, node);
      if (node->state() == deja::v1::NODE_SUBMITTED && IsTerminal(job.state())) {
        node->set_state(job.state() == deja::v1::SUCCEEDED ? deja::v1::NODE_SUCCEEDED
                        : job.state() == deja::v1::FAILED  ? deja::v1::NODE_FAILED
                                                           : deja::v1::NODE_CANCELLED);
      }
      Advance(*p, now, fx);  // may add jobs: the loop picks them up
      fx->pipelines[pipeline_id] = *p;
    }
  }
}

void PipelineRunner::Resume(absl::Time now, Effects* fx) {
  for (auto& [seq, p] : pipelines_) {
    if (p.state() != deja::v1::PIPELINE_RUNNING) continue;
    for (int i = 0; i < p.nodes_size(); ++i) {
      NodeStatus* node = p.mutable_nodes(i);
      if (node->state() != deja::v1::NODE_SUBMITTED) continue;
      // Back in memory if it ended: Sync settles it.
      if (Job* job = jobs_->Resident(node->job_id()); job != nullptr) {
        fx->jobs[job->job_id()] = *job;
      }
    }
    Advance(p, now, fx);
  }
  Sync(now, fx);
}

absl::StatusOr<Pipeline> PipelineRunner::Get(const std::string& pipeline_id) const {
  auto it = pipelines_.find(ParsePipelineId(pipeline_id));
  if (it == pipelines_.end()) {
    return absl::NotFoundError(absl::StrCat("pipeline ", pipeline_id, " not found"));
  }
  return it->second;
}

std::vector<Pipeline> PipelineRunner::List(const std::string& project) const {
  std::vector<Pipeline> out;
  for (const auto& [seq, p] : pipelines_) {
    if (project.empty() || p.spec().project() == project) out.push_back(p);
  }
  return out;
}

absl::StatusOr<Pipeline> PipelineRunner::Cancel(const std::string& pipeline_id, absl::Time now,
                                                Effects* fx) {
  Pipeline* p = Find(pipeline_id);
  if (p == nullptr)
    return absl::NotFoundError(absl::StrCat("pipeline ", pipeline_id, " not found"));
  if (p->state() != deja::v1::PIPELINE_RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat("pipeline ", pipeline_id, " already ended (",
                                                      deja::v1::PipelineState_Name(p->state()),
                                                      ")"));
  }
  for (int i = 0; i < p->nodes_size(); ++i) {
    NodeStatus* node = p->mutable_nodes(i);
    if (node->state() == deja::v1::NODE_PENDING) {
      node->set_state(deja::v1::NODE_CANCELLED);
      node->set_message("pipeline cancelled");
    } else if (node->state() == deja::v1::NODE_SUBMITTED) {
      const Job* job = jobs_->Find(node->job_id());
      if (job != nullptr && !IsTerminal(job->state())) {
        (void)submitter_->CancelJob(node->job_id(), now, fx);
      }
      node->set_state(deja::v1::NODE_CANCELLED);
      node->set_message("pipeline cancelled");
    }
  }
  Advance(*p, now, fx);
  return *p;
}

absl::StatusOr<Pipeline> PipelineRunner::Retry(const deja::v1::RetryPipelineRequest& request,
                                               absl::Time now, Effects* fx) {
  Pipeline* p = Find(request.pipeline_id());
  if (p == nullptr) {
    return absl::NotFoundError(absl::StrCat("pipeline ", request.pipeline_id(), " not found"));
  }
  if (p->state() == deja::v1::PIPELINE_RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("pipeline ", request.pipeline_id(), " is still running"));
  }
  if (!request.node().empty() && NodeIndex(*p, request.node()) < 0) {
    return absl::InvalidArgumentError(absl::StrCat("node: pipeline ", request.pipeline_id(),
                                                   " has no node \"", request.node(), "\""));
  }
  // Every node is submitted again: the ones that succeeded come back as
  // memo hits, verified again; a named node runs fresh.
  deja::v1::PipelineSpec* spec = p->mutable_spec();
  spec->set_force(false);
  spec->clear_force_nodes();
  if (!request.node().empty()) spec->add_force_nodes(request.node());
  for (int i = 0; i < p->nodes_size(); ++i) {
    NodeStatus fresh;
    fresh.set_name(p->nodes(i).name());
    fresh.set_state(deja::v1::NODE_PENDING);
    *p->mutable_nodes(i) = fresh;
  }
  p->set_state(deja::v1::PIPELINE_RUNNING);
  p->set_run(p->run() + 1);
  p->clear_finished_at_ms();
  p->clear_message();
  Advance(*p, now, fx);
  return *p;
}

absl::StatusOr<deja::v1::PipelinePlan> PipelineRunner::Plan(
    const deja::v1::SubmitPipelineRequest& request, absl::Time now) const {
  deja::v1::PipelineSpec spec = request.spec();
  if (auto s = CheckProject(&spec); !s.ok()) return s;
  deja::v1::PipelinePlan plan;
  // Outputs of the nodes predicted to be reused: the memo entry's.
  std::map<std::string, google::protobuf::RepeatedPtrField<deja::v1::OutputFile>> known;
  std::map<std::string, deja::v1::NodePlan> plans;
  for (const std::string& name : TopologicalOrder(spec)) {
    const deja::v1::PipelineNode* node = nullptr;
    for (const auto& n : spec.nodes()) {
      if (n.name() == name) node = &n;
    }
    deja::v1::NodePlan np;
    np.set_name(name);
    deja::v1::JobSpec job = NodeJobSpec(spec, *node);
    std::string unknown;
    for (const auto& group : EdgesInto(spec, name)) {
      std::vector<const google::protobuf::RepeatedPtrField<deja::v1::OutputFile>*> outputs;
      for (const auto* edge : group) {
        auto up = known.find(edge->from_node());
        if (up == known.end()) {
          unknown = edge->from_node();
          break;
        }
        outputs.push_back(&up->second);
      }
      if (!unknown.empty()) break;
      auto input = ResolveEdges(group, outputs);
      if (!input.ok()) {
        unknown = group.front()->from_node();
        break;
      }
      *job.add_inputs() = input->input;
    }
    if (!unknown.empty()) {
      np.set_reason(absl::StrCat("upstream ", unknown,
                                 " runs first; reused only if its outputs come out identical"));
    } else {
      images_->Pin(&job);  // as Submit will
      np.set_job_hash(JobHash(job));
      ReuseDecision d = reuse_->Decide(job, np.job_hash(), now);
      if (d.reuse) {
        np.set_reused(true);
        np.set_source_job_id(d.source_id);
        np.set_expires_at_ms(d.expires_at_ms);
        np.set_time_saved_ms(d.time_saved_ms);
        plan.set_time_saved_ms(plan.time_saved_ms() + d.time_saved_ms);
        known[name] = std::move(d.outputs);
      } else {
        np.set_reason(d.problem);
      }
    }
    plans[name] = np;
  }
  for (const auto& n : spec.nodes()) *plan.add_nodes() = plans[n.name()];
  return plan;
}

}  // namespace deja
