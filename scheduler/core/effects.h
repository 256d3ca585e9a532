// Effects: what a SchedulerCore call asks its caller to carry out, and
// CoreOptions, the core's settings. Plain data.
//
// Durability order (the caller's contract, kept by scheduler/service):
//   0. write `blob_puts` to the content store, durably;
//   1. commit the records (jobs, memo, requests, projects, pipelines, images) in one
//      atomic, synced batch;
//   2. only then send `to_workers` and answer clients;
//   3. end `close_sessions`.
// So a record never names a blob that is not durable, and nothing leaves
// the process that a crash could take back. The core itself never writes:
// every write, blobs included, travels in Effects.
#ifndef DEJA_SCHEDULER_CORE_EFFECTS_H_
#define DEJA_SCHEDULER_CORE_EFFECTS_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "deja/v1/job.pb.h"
#include "deja/v1/pipeline.pb.h"
#include "deja/v1/scheduler.pb.h"
#include "deja/v1/worker.pb.h"

namespace deja {

struct CoreOptions {
  // A worker silent (no heartbeat, or no stream) this long is lost and its
  // jobs are requeued.
  absl::Duration worker_timeout = absl::Seconds(10);
  // Executions a job gets before lost workers make it FAILED.
  int max_attempts = 3;
  // Heartbeat interval asked of workers.
  absl::Duration heartbeat_interval = absl::Seconds(1);
  // Assignments a worker may hold beyond its slots: it starts the next the
  // moment a slot frees, without waiting for a scheduler round trip. Good for
  // many short jobs; a job sent ahead waits for that worker's slot even if
  // another worker frees one first. 0 (the default) sends only to free slots.
  int dispatch_ahead = 0;
};

// What a core call asks its caller to carry out, in this order.
struct Effects {
  // 0. Write first: blobs the core built (a pipeline edge's directory
  //    blob), digest -> bytes. Records below may name them.
  std::map<std::string, std::string> blob_puts;
  // 1. Persist: the latest version of every changed job, memo changes.
  std::map<std::string, deja::v1::Job> jobs;
  std::map<std::string, deja::v1::MemoEntry> memo_puts;  // by MemoId
  std::set<std::string> memo_deletes;                    // MemoIds
  // New request ids: RequestKey(project, request_id) -> job id.
  std::map<std::string, std::string> requests;
  std::map<std::string, deja::v1::ProjectSettings> projects;  // by project
  std::map<std::string, deja::v1::Pipeline> pipelines;        // by pipeline id
  std::map<std::string, deja::v1::ImageRecord> images;        // by name
  // 2. Then send, in order, to the current stream of each worker.
  std::vector<std::pair<std::string, deja::v1::SchedulerMessage>> to_workers;
  // 3. Then end these worker streams (worker id, session): declared lost.
  std::vector<std::pair<std::string, uint64_t>> close_sessions;

  bool empty() const {
    return blob_puts.empty() && jobs.empty() && memo_puts.empty() && memo_deletes.empty() &&
           requests.empty() && projects.empty() && pipelines.empty() && images.empty() &&
           to_workers.empty() && close_sessions.empty();
  }
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_CORE_EFFECTS_H_
