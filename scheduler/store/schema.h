// The scheduler's RocksDB schema. This file owns it: column families, key
// and value encodings, and the schema-version marker checked at open.
//
//   column family  key                              value
//   -------------  -------------------------------  ---------------------------
//   default        (unused)
//   jobs           job seq, 8 bytes big-endian      deja.v1.Job (binary proto)
//   memo           MemoId(project, job_hash):       deja.v1.MemoEntry
//                  16 raw bytes, XXH3-128 of
//                  project \0 job_hash
//   settings       "schema_version"                 decimal kSchemaVersion
//   settings       "project/" + project name        deja.v1.ProjectSettings
//   settings       "image/" + image name            deja.v1.ImageRecord
//   blobs          blob digest (32 hex)             deja.v1.BlobMeta
//   pipelines      pipeline seq, 8 bytes big-endian deja.v1.Pipeline
//   requests       project \0 request_id            job seq, 8 bytes big-endian
//   tokens         token id ("t3")                  deja.v1.TokenRecord
//   audit          event seq, 8 bytes big-endian    deja.v1.AuditEvent
//   workers        worker id                        deja.v1.WorkerEnrollment
//   blob_projects  digest "/" project               empty: the project may read
//                                                   the blob (BlobGrantKey)
//
// Blob bytes live in files beside the database (scheduler/content).
// Column families are opened in exactly this order; new ones are appended
// (`tokens`, `audit`, `workers` and `blob_projects` came with access
// control, issue 13: a store without them gets them empty, and
// `blob_projects` is then filled from the jobs at open; an older build
// cannot open a store that has them).
// Changing an encoding bumps kSchemaVersion; a store with another version
// is refused at open with FAILED_PRECONDITION, except the upgrades below.
//
// Versions: 1 keyed memo by `project \0 job_hash` and had no requests
// family. 2 keys memo by a fixed 16-byte id, so that the
// scheduler's in-memory memo index can drop an entry knowing only its id,
// and adds `requests`, so that request ids need not stay in memory. A
// version-1 store is upgraded at open (RocksStore::Open): memo entries are
// re-keyed and `requests` is filled from the jobs, in batches; the version
// marker is written last, so an interrupted upgrade is simply redone.
// 3 (this one) moves each job's and memo entry's manifest (every file of the
// workspace: large) out of the record into the content store, leaving a
// ManifestRef (digest, size, files, bytes): no record, list or watch
// message grows with a workspace. A version-2 store is upgraded when the
// scheduler starts (RocksStore::MoveManifestsOut, with the content store),
// blob first, then the record, then the marker: resumable the same way.
#ifndef DEJA_SCHEDULER_STORE_SCHEMA_H_
#define DEJA_SCHEDULER_STORE_SCHEMA_H_

#include <cstdint>
#include <string>
#include <vector>

namespace deja::schema {

inline constexpr int kSchemaVersion = 3;
inline constexpr char kSchemaVersionKey[] = "schema_version";

enum ColumnFamily : int {
  kDefault = 0,
  kJobs = 1,
  kMemo = 2,
  kSettings = 3,
  kBlobs = 4,
  kPipelines = 5,
  kRequests = 6,
  kTokens = 7,
  kAudit = 8,
  kWorkers = 9,
  kBlobProjects = 10
};

// Names in ColumnFamily order.
const std::vector<std::string>& ColumnFamilyNames();

inline constexpr char kProjectPrefix[] = "project/";
inline constexpr char kImagePrefix[] = "image/";

// "blob_projects": which projects may read a blob (issue 13): one empty
// value per grant, keyed "<digest>/<project>".
inline std::string BlobGrantKey(const std::string& digest, const std::string& project) {
  return digest + "/" + project;
}

// Job and pipeline keys sort by sequence number, i.e. by submission order.
std::string JobKey(uint64_t seq);
inline std::string PipelineKey(uint64_t seq) { return JobKey(seq); }
inline std::string AuditKey(uint64_t seq) { return JobKey(seq); }
// The memo key is deja::MemoId(project, job_hash) (scheduler/core/keys.h);
// the requests key is deja::RequestKey(project, request_id).
// Inverse of JobKey; 0 for a key that is not 8 bytes.
uint64_t SeqFromKey(const std::string& key);

}  // namespace deja::schema

#endif  // DEJA_SCHEDULER_STORE_SCHEMA_H_
