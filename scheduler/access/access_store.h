// AccessStore: where the scheduler keeps its tokens (deja.v1.TokenRecord:
// the token and a hash of its secret, never the secret), which token
// enrolled each worker id (deja.v1.WorkerEnrollment) and its audit log
// (deja.v1.AuditEvent). An interface, so that scheduler/access neither
// includes nor links RocksDB: RocksStore (scheduler/store) implements it over
// the "tokens", "workers" and "audit" column families, whose encoding
// scheduler/store/schema.h owns.
//
// Durability: PutToken and a durable AppendAudit return once the record is
// durable (a synced write); a lazy AppendAudit survives a crash of the
// process, and the next synced write makes it durable too.
//
// Thread-safety: implementations are thread-safe; AccessControl calls them
// from gRPC's threads.
#ifndef DEJA_SCHEDULER_ACCESS_ACCESS_STORE_H_
#define DEJA_SCHEDULER_ACCESS_ACCESS_STORE_H_

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "deja/v1/access.pb.h"

namespace deja {

class AccessStore {
 public:
  virtual ~AccessStore() = default;

  // Creates or replaces the record of token `record.token().id()`.
  virtual absl::Status PutToken(const deja::v1::TokenRecord& record) = 0;
  // Every token record, in no particular order.
  virtual absl::Status ScanTokens(
      const std::function<void(const deja::v1::TokenRecord&)>& visit) const = 0;

  // Creates or replaces the enrollment of worker `enrollment.worker_id()`.
  virtual absl::Status PutEnrollment(const deja::v1::WorkerEnrollment& enrollment) = 0;
  virtual absl::Status ScanEnrollments(
      const std::function<void(const deja::v1::WorkerEnrollment&)>& visit) const = 0;

  // Stores `event` under event.seq(), and deletes the event `drop_seq`
  // (0: none) in the same write: the log keeps a bounded number of events.
  virtual absl::Status AppendAudit(const deja::v1::AuditEvent& event, uint64_t drop_seq,
                                   bool durable) = 0;
  // Events newest first until `visit` returns false.
  virtual absl::Status ScanAudit(
      const std::function<bool(const deja::v1::AuditEvent&)>& visit) const = 0;
};

}  // namespace deja

#endif  // DEJA_SCHEDULER_ACCESS_ACCESS_STORE_H_
