#include "scheduler/core/keys.h"

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/hash.h"

namespace deja {
namespace {

// "<prefix><seq>" -> seq; 0 for a malformed id (no digits, a leading zero).
uint64_t ParseSeq(char prefix, const std::string& id) {
  uint64_t seq = 0;
  if (id.size() < 2 || id[0] != prefix || id[1] == '0') return 0;
  if (!absl::SimpleAtoi(absl::string_view(id).substr(1), &seq)) return 0;
  return seq;
}

}  // namespace

std::string MemoKey(const std::string& project, const std::string& job_hash) {
  return absl::StrCat(project, std::string(1, '\0'), job_hash);
}

std::string MemoId(const std::string& project, const std::string& job_hash) {
  return absl::HexStringToBytes(HashBytes(MemoKey(project, job_hash)));
}

std::string RequestKey(const std::string& project, const std::string& request_id) {
  return absl::StrCat(project, std::string(1, '\0'), request_id);
}

std::string JobIdFromSeq(uint64_t seq) { return absl::StrCat("j", seq); }

uint64_t ParseJobId(const std::string& job_id) { return ParseSeq('j', job_id); }

std::string PipelineIdFromSeq(uint64_t seq) { return absl::StrCat("p", seq); }

uint64_t ParsePipelineId(const std::string& pipeline_id) { return ParseSeq('p', pipeline_id); }

std::string ArrayIdFromSeq(uint64_t seq) { return absl::StrCat("a", seq); }

uint64_t ParseArrayId(const std::string& array_id) { return ParseSeq('a', array_id); }

}  // namespace deja
