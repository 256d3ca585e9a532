// Results the scheduler has not acknowledged yet, kept on the worker's disk
// so that they outlive the worker: <work_dir>/meta/results/<job_id>.<attempt>,
// a deja.v1.JobResult each, written durably (fsynced) before the result is
// sent and removed once its ack has been applied. A restarted worker loads
// them, lists them as held in Register and sends them again: a command that
// ran is never run again because its worker died before the scheduler heard.
//
// Thread-safety: thread-safe (each call touches one file, or reads the dir).
#ifndef DEJA_WORKER_RESULT_STORE_H_
#define DEJA_WORKER_RESULT_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "deja/v1/worker.pb.h"

namespace deja::worker {

class ResultStore {
 public:
  explicit ResultStore(const std::string& work_dir);

  // Writes `result` durably. A result whose job id is not a valid one (it
  // names no workspace here) is not kept, and OK.
  absl::Status Put(const deja::v1::JobResult& result) const;

  // Removes the result of (job_id, attempt), if kept.
  void Remove(const std::string& job_id, uint32_t attempt) const;

  // Every kept result, sorted by (job id, attempt). A file that does not
  // hold one (a crash while writing leaves a temporary) is removed, and
  // named in `*errors` when it was not a temporary.
  std::vector<deja::v1::JobResult> LoadAll(std::vector<std::string>* errors) const;

 private:
  std::string Path(const std::string& job_id, uint32_t attempt) const;

  const std::string dir_;
};

}  // namespace deja::worker

#endif  // DEJA_WORKER_RESULT_STORE_H_
