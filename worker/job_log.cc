#include "worker/job_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "worker/paths.h"

namespace deja::worker {

deja::v1::LogData ReadJobLog(const std::string& work_dir, const std::string& worker_id,
                             const deja::v1::LogRequest& request) {
  deja::v1::LogData data;
  data.set_request_id(request.request_id());
  const std::string no_logs =
      absl::StrCat("no logs for job ", request.job_id(), " on worker ", worker_id);
  if (!paths::ValidateJobId(request.job_id()).ok()) {
    data.set_error(no_logs);
    return data;
  }
  std::string path;
  switch (request.stream()) {
    case deja::v1::LOG_STDOUT:
      path = paths::StdoutPath(work_dir, request.job_id());
      break;
    case deja::v1::LOG_STDERR:
      path = paths::StderrPath(work_dir, request.job_id());
      break;
    default:
      data.set_error(absl::StrCat("stream: unknown log stream ", request.stream()));
      return data;
  }
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    data.set_error(no_logs);
    return data;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    data.set_error(no_logs);
    return data;
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const uint32_t limit =
      request.limit() == 0 || request.limit() > kMaxLogChunk ? kMaxLogChunk : request.limit();
  std::string buffer;
  if (request.offset() < size) {
    buffer.resize(std::min<uint64_t>(limit, size - request.offset()));
    size_t got = 0;
    while (got < buffer.size()) {
      ssize_t n = pread(fd, buffer.data() + got, buffer.size() - got,
                        static_cast<off_t>(request.offset() + got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    buffer.resize(got);
  }
  close(fd);
  data.set_eof(request.offset() + buffer.size() >= size);
  data.set_size(size);
  data.set_data(std::move(buffer));
  return data;
}

}  // namespace deja::worker
