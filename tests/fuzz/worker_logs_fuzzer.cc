// The worker's metadata files as a crash, a full disk or a hand edit may
// leave them: the record log framing (worker/record_log.h), the expiry log
// replay and the old one-file-per-job expiry records (worker/retention.h),
// and the fingerprints file (worker/fingerprints.h).
//
// Input: one byte choosing the file, then:
//   0  raw bytes of a record log (torn tails, bad checksums, huge sizes);
//   1  expiry log records, 2  fingerprints records: each as [u8 length]
//      [payload] (the target frames them with valid checksums, so the
//      payload decoders are reached; a last record may be torn);
//   3  "JOB_ID\nTEXT": an old-layout record meta/expiry/<JOB_ID>.
// Properties:
//   - Open keeps exactly what Read sees, cuts the torn tail off (a second
//     Read sees the same records, not truncated), and Rewrite of those
//     records reads back the same payloads;
//   - every expiry record that Load keeps names a valid job id (it becomes
//     a path under jobs/ that the sweeper renames and deletes), and Load
//     keeps what ReadRecords reported, loading twice keeps the same;
//   - fingerprints keep no more jobs than there are workspaces.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "tests/fuzz/fuzz_util.h"
#include "worker/fingerprints.h"
#include "worker/paths.h"
#include "worker/record_log.h"
#include "worker/retention.h"

namespace {

namespace paths = deja::worker::paths;
using deja::worker::RecordLog;

// Job ids the seeds use; their workspaces exist in every work dir.
constexpr const char* kJobs[] = {"j1", "j2", "j-3"};

void WriteFile(const std::string& path, std::string_view bytes) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  DEJA_CHECK(fd >= 0, "create " + path);
  DEJA_CHECK(write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()),
             "write " + path);
  close(fd);
}

// A fresh work dir with jobs/<id> for each of kJobs.
std::string FreshWorkDir() {
  const std::string work_dir = deja::fuzz::ScratchDir() + "/w";
  DEJA_CHECK(paths::RemoveTree(work_dir).ok(), "clean " + work_dir);
  DEJA_CHECK(paths::MakeDirs(paths::MetaDir(work_dir)).ok(), "meta");
  for (const char* job : kJobs) {
    DEJA_CHECK(paths::MakeDirs(paths::WorkspaceDir(work_dir, job)).ok(), "jobs");
  }
  return work_dir;
}

std::vector<std::string> Payloads(const std::vector<RecordLog::Record>& records) {
  std::vector<std::string> out;
  for (const auto& r : records) out.push_back(r.payload);
  return out;
}

void FuzzRecordLog(std::string_view bytes) {
  const std::string path = FreshWorkDir() + "/log";
  WriteFile(path, bytes);
  std::vector<RecordLog::Record> seen;
  bool truncated = false;
  DEJA_CHECK(RecordLog::Read(path, &seen, &truncated).ok(), "Read of a readable file");
  std::vector<RecordLog::Record> opened;
  auto log = RecordLog::Open(path, &opened);
  DEJA_CHECK(log.ok(), log.status().ToString());
  DEJA_CHECK(Payloads(opened) == Payloads(seen), "Open and Read disagree");
  for (const auto& r : opened) {
    auto back = (*log)->ReadAt(r.offset, static_cast<uint32_t>(r.payload.size()));
    DEJA_CHECK(back.ok() && *back == r.payload, "ReadAt of an intact record");
  }
  std::vector<RecordLog::Record> again;
  bool cut = true;
  DEJA_CHECK(RecordLog::Read(path, &again, &cut).ok(), "Read after Open");
  DEJA_CHECK(!cut && Payloads(again) == Payloads(seen), "Open left a torn tail");
  DEJA_CHECK((*log)->Rewrite(Payloads(seen), nullptr).ok(), "Rewrite");
  again.clear();
  DEJA_CHECK(RecordLog::Read(path, &again, &cut).ok() && !cut, "Read after Rewrite");
  DEJA_CHECK(Payloads(again) == Payloads(seen), "Rewrite changed the records");
}

// Frames the [u8 length][payload]... of `in` as a record log at `path`;
// a last record cut short is written torn (its bytes without a checksum).
void WriteFramed(const std::string& path, deja::fuzz::Input& in) {
  std::vector<std::string> payloads;
  std::string torn;
  while (!in.empty()) {
    const size_t want = in.Byte();
    std::string_view payload = in.Take(want);
    if (payload.size() < want) {
      torn = std::string(payload);
      break;
    }
    payloads.emplace_back(payload);
  }
  {
    std::vector<RecordLog::Record> ignored;
    auto log = RecordLog::Open(path, &ignored);
    DEJA_CHECK(log.ok(), log.status().ToString());
    DEJA_CHECK((*log)->Rewrite(payloads, nullptr).ok(), "Rewrite");
  }
  if (!torn.empty()) {
    int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    DEJA_CHECK(fd >= 0, "append " + path);
    const auto size = static_cast<uint32_t>(torn.size() + 7);
    std::string tail(reinterpret_cast<const char*>(&size), sizeof(size));
    tail += torn;
    DEJA_CHECK(write(fd, tail.data(), tail.size()) == static_cast<ssize_t>(tail.size()), "tail");
    close(fd);
  }
}

void CheckRetention(const std::string& work_dir) {
  auto before = deja::worker::WorkspaceRetention::ReadRecords(work_dir);
  DEJA_CHECK(before.ok(), before.status().ToString());
  deja::FakeClock clock;
  deja::worker::WorkspaceRetention retention(work_dir, &clock);
  std::vector<std::string> skipped;
  absl::Status loaded = retention.Load(&skipped);
  DEJA_CHECK(loaded.ok(), loaded.ToString());
  for (const auto& [job_id, record] : *before) {
    DEJA_CHECK(paths::ValidateJobId(job_id).ok(),
               absl::StrCat("an expiry record for job id \"", job_id, "\""));
    auto kept = retention.GetRecord(job_id);
    DEJA_CHECK(kept.has_value() && kept->expires_at_ms == record.expires_at_ms &&
                   kept->attempt == record.attempt,
               absl::StrCat("Load lost or changed the record of ", job_id));
  }
  auto after = deja::worker::WorkspaceRetention::ReadRecords(work_dir);
  DEJA_CHECK(after.ok() && after->size() == before->size(), "compaction changed the records");
  deja::worker::WorkspaceRetention reloaded(work_dir, &clock);
  DEJA_CHECK(reloaded.Load().ok(), "second Load");
  for (const auto& [job_id, record] : *before) {
    DEJA_CHECK(reloaded.GetRecord(job_id).has_value(), "second Load lost " + job_id);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  deja::fuzz::Input in(data, size);
  switch (in.Byte() % 4) {
    case 0:
      FuzzRecordLog(in.rest());
      break;
    case 1: {
      const std::string work_dir = FreshWorkDir();
      WriteFramed(paths::ExpiryLogPath(work_dir), in);
      CheckRetention(work_dir);
      break;
    }
    case 2: {
      const std::string work_dir = FreshWorkDir();
      WriteFramed(paths::FingerprintsPath(work_dir), in);
      deja::worker::FingerprintStore store(work_dir);
      absl::Status loaded = store.Load();
      DEJA_CHECK(loaded.ok(), loaded.ToString());
      DEJA_CHECK(store.JobCount() <= std::size(kJobs), "fingerprints of jobs without workspaces");
      for (const char* job : kJobs) store.Get(job);
      break;
    }
    default: {
      const std::string work_dir = FreshWorkDir();
      const std::string job_id(in.Until('\n'));
      if (!paths::ValidateJobId(job_id).ok()) break;  // not a file name
      DEJA_CHECK(paths::MakeDirs(paths::ExpiryDir(work_dir)).ok(), "expiry dir");
      WriteFile(paths::ExpiryRecordPath(work_dir, job_id), in.rest());
      CheckRetention(work_dir);
      break;
    }
  }
  return 0;
}
