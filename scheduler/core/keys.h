// The ids and keys of the scheduler's records. Pure functions.
//
// scheduler/store/schema.h owns how they are stored; these functions must
// keep producing exactly the bytes it describes.
#ifndef DEJA_SCHEDULER_CORE_KEYS_H_
#define DEJA_SCHEDULER_CORE_KEYS_H_

#include <cstdint>
#include <string>

namespace deja {

// Project, NUL, job hash: a job identity within its project. The key of
// the single-flight groups, and what MemoId hashes.
std::string MemoKey(const std::string& project, const std::string& job_hash);
// The id of a memo entry: the 16 raw bytes of XXH3-128(MemoKey(...)). Fixed
// size, so the in-memory index holds it inline and can name the stored
// entry (schema.h) with nothing else.
std::string MemoId(const std::string& project, const std::string& job_hash);
// Project, NUL, request id: the key of a request id (the `requests` column
// family, and pipelines' request ids). The same bytes as a MemoKey of the
// same strings; a separate name because it keys another thing.
std::string RequestKey(const std::string& project, const std::string& request_id);

// "j42" <-> 42. ParseJobId returns 0 for a malformed id.
std::string JobIdFromSeq(uint64_t seq);
uint64_t ParseJobId(const std::string& job_id);

// "p7" <-> 7. ParsePipelineId returns 0 for a malformed id.
std::string PipelineIdFromSeq(uint64_t seq);
uint64_t ParsePipelineId(const std::string& pipeline_id);

// "a42" <-> 42: a job array, numbered by its first job (j42); its jobs
// follow in element order. ParseArrayId returns 0 for a malformed id.
std::string ArrayIdFromSeq(uint64_t seq);
uint64_t ParseArrayId(const std::string& array_id);

}  // namespace deja

#endif  // DEJA_SCHEDULER_CORE_KEYS_H_
