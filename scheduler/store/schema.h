// The scheduler's RocksDB schema. This file owns it: column families, key
// and value encodings, and the schema-version marker checked at open.
//
//   column family  key                              value
//   -------------  -------------------------------  ---------------------------
//   default        (unused)
//   jobs           job seq, 8 bytes big-endian      deja.v1.Job (binary proto)
//   memo           project \0 job_hash              deja.v1.MemoEntry
//   settings       "schema_version"                 decimal kSchemaVersion
//   settings       "project/" + project name        deja.v1.ProjectSettings
//   blobs          blob digest (32 hex)             deja.v1.BlobMeta
//   pipelines      pipeline seq, 8 bytes big-endian deja.v1.Pipeline
//
// Blob bytes live in files beside the database (scheduler/content).
// Column families are opened in exactly this order; new ones are appended.
// Changing an encoding bumps kSchemaVersion; a store with another version
// is refused at open with FAILED_PRECONDITION.
#ifndef DEJA_SCHEDULER_STORE_SCHEMA_H_
#define DEJA_SCHEDULER_STORE_SCHEMA_H_

#include <cstdint>
#include <string>
#include <vector>

namespace deja::schema {

inline constexpr int kSchemaVersion = 1;
inline constexpr char kSchemaVersionKey[] = "schema_version";

enum ColumnFamily : int { kDefault = 0, kJobs = 1, kMemo = 2, kSettings = 3, kBlobs = 4,
                         kPipelines = 5 };

// Names in ColumnFamily order.
const std::vector<std::string>& ColumnFamilyNames();

inline constexpr char kProjectPrefix[] = "project/";

// Job and pipeline keys sort by sequence number, i.e. by submission order.
std::string JobKey(uint64_t seq);
inline std::string PipelineKey(uint64_t seq) { return JobKey(seq); }
// The memo key is deja::MemoKey(project, job_hash) (scheduler_core.h).

}  // namespace deja::schema

#endif  // DEJA_SCHEDULER_STORE_SCHEMA_H_
