#include "common/docker_engine.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/hash.h"

namespace deja {
namespace {

using Json = nlohmann::json;

constexpr char kApi[] = "http://localhost/v1.41";

// Sinks and sources of a request's bodies.
using Sink = std::function<bool(std::string_view)>;   // false: stop
using Source = std::function<size_t(char*, size_t)>;  // 0: end; CURL_READFUNC_ABORT

struct Response {
  long status = 0;
  std::string body;  // unless a sink took it
};

size_t WriteToSink(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  return (*sink)(std::string_view(data, size * count)) ? size * count : 0;
}

size_t ReadFromSource(char* buffer, size_t size, size_t count, void* user) {
  return (*static_cast<Source*>(user))(buffer, size * count);
}

std::string Escape(const std::string& text) {
  char* escaped = curl_easy_escape(nullptr, text.data(), static_cast<int>(text.size()));
  std::string out = escaped != nullptr ? escaped : "";
  curl_free(escaped);
  return out;
}

// One request. `timeout` zero: none. Without a sink the body is returned;
// an error status's body is always read (its "message").
absl::StatusOr<Response> Call(const std::string& socket, const char* method,
                              const std::string& path, const std::string* body,
                              absl::Duration timeout, Sink sink = nullptr, Source source = nullptr,
                              const char* content_type = nullptr) {
  static std::once_flag global_init;
  std::call_once(global_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return absl::ResourceExhaustedError("curl_easy_init failed");
  Response response;
  bool error_body = false;
  Sink collect = [&](std::string_view data) {
    if (sink != nullptr && !error_body) {
      // The status is known once the body starts.
      long status = 0;
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
      if (status < 300) return sink(data);
      error_body = true;
    }
    if (response.body.size() < (size_t{16} << 20)) response.body.append(data);
    return true;
  };
  struct curl_slist* headers = nullptr;
  const std::string url = absl::StrCat(kApi, path);
  curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, socket.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  if (timeout > absl::ZeroDuration()) {
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, WriteToSink);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &collect);
  if (body != nullptr) {
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
  } else if (source != nullptr) {
    headers = curl_slist_append(headers, absl::StrCat("Content-Type: ", content_type).c_str());
    headers = curl_slist_append(headers, "Transfer-Encoding: chunked");
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, ReadFromSource);
    curl_easy_setopt(curl, CURLOPT_READDATA, &source);
  } else if (std::strcmp(method, "POST") == 0) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
  }
  if (headers != nullptr) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  const CURLcode code = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (code != CURLE_OK && !(code == CURLE_WRITE_ERROR && sink != nullptr && !error_body)) {
    return absl::UnavailableError(absl::StrCat("container engine at ", socket, ": ", method, " ",
                                               path, ": ", curl_easy_strerror(code)));
  }
  if (code == CURLE_WRITE_ERROR) {
    return absl::AbortedError(absl::StrCat(method, " ", path, ": stopped by its reader"));
  }
  if (response.status >= 300) {
    std::string message = response.body;
    Json parsed = Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_object() && parsed.contains("message") && parsed["message"].is_string()) {
      message = parsed["message"].get<std::string>();
    }
    while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) {
      message.pop_back();
    }
    message = absl::StrCat("container engine: ", message, " (", method, " ", path, ": HTTP ",
                           response.status, ")");
    if (response.status == 404) return absl::NotFoundError(message);
    if (response.status == 409) return absl::FailedPreconditionError(message);
    return absl::InternalError(message);
  }
  return response;
}

absl::StatusOr<Json> CallJson(const std::string& socket, const char* method,
                              const std::string& path, absl::Duration timeout,
                              const std::string* body = nullptr) {
  absl::StatusOr<Response> response = Call(socket, method, path, body, timeout);
  if (!response.ok()) return response.status();
  Json parsed = Json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return absl::InternalError(
        absl::StrCat("container engine: ", method, " ", path, ": the answer is not JSON"));
  }
  return parsed;
}

std::string StringField(const Json& json, const char* key) {
  auto it = json.find(key);
  return it != json.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

void LogDemuxer::Feed(std::string_view data) {
  while (!data.empty()) {
    if (left_ == 0) {
      const size_t take = std::min(data.size(), 8 - header_.size());
      header_.append(data.substr(0, take));
      data.remove_prefix(take);
      if (header_.size() < 8) return;
      stream_ = static_cast<unsigned char>(header_[0]);
      left_ = (static_cast<uint32_t>(static_cast<unsigned char>(header_[4])) << 24) |
              (static_cast<uint32_t>(static_cast<unsigned char>(header_[5])) << 16) |
              (static_cast<uint32_t>(static_cast<unsigned char>(header_[6])) << 8) |
              static_cast<uint32_t>(static_cast<unsigned char>(header_[7]));
      header_.clear();
      continue;
    }
    const size_t take = std::min<size_t>(data.size(), left_);
    sink_(stream_, data.substr(0, take));
    left_ -= static_cast<uint32_t>(take);
    data.remove_prefix(take);
  }
}

std::string ContainerCreateBody(const ContainerSpec& spec) {
  Json env = Json::array();
  for (const auto& [key, value] : spec.env) env.push_back(absl::StrCat(key, "=", value));
  Json mounts = Json::array();
  for (const BindMount& m : spec.mounts) {
    // No propagation given: the engine's default, which a source inside its
    // root (a named volume, the Compose cluster's work dirs) needs.
    mounts.push_back(
        {{"Type", "bind"}, {"Source", m.source}, {"Target", m.target}, {"ReadOnly", m.read_only}});
  }
  Json host = {
      {"Mounts", mounts},
      {"NetworkMode", spec.network ? "bridge" : "none"},
      // What a job needs of a container: nothing privileged.
      {"CapDrop", Json::array({"ALL"})},
      {"SecurityOpt", Json::array({"no-new-privileges"})},
      // An init as pid 1: signals reach the command, orphans are reaped.
      {"Init", true},
  };
  if (spec.memory_bytes > 0) {
    host["Memory"] = spec.memory_bytes;
    host["MemorySwap"] = spec.memory_bytes;  // no swap beyond the limit
  }
  if (spec.milli_cpus > 0) host["NanoCpus"] = uint64_t{spec.milli_cpus} * 1'000'000;
  if (spec.gpus > 0) {
    host["DeviceRequests"] = Json::array(
        {{{"Count", spec.gpus}, {"Capabilities", Json::array({Json::array({"gpu"})})}}});
  }
  Json body = {
      {"Image", spec.image},
      {"Cmd", spec.argv},
      // [""]: the image's ENTRYPOINT is not used; the command runs as given.
      {"Entrypoint", Json::array({""})},
      {"Env", env},
      {"Labels", spec.labels},
      {"NetworkDisabled", !spec.network},
      {"AttachStdin", false},
      {"AttachStdout", false},
      {"AttachStderr", false},
      {"Tty", false},
      {"HostConfig", host},
  };
  if (!spec.working_dir.empty()) body["WorkingDir"] = spec.working_dir;
  if (!spec.user.empty()) body["User"] = spec.user;
  return body.dump();
}

DockerEngine::DockerEngine(std::string socket_path, absl::Duration timeout)
    : socket_path_(std::move(socket_path)), timeout_(timeout) {}

absl::StatusOr<std::string> DockerEngine::Version() const {
  absl::StatusOr<Json> version = CallJson(socket_path_, "GET", "/version", timeout_);
  if (!version.ok()) return version.status();
  std::string name = "docker";
  if (auto it = version->find("Components"); it != version->end() && it->is_array()) {
    for (const Json& component : *it) {
      if (component.is_object() &&
          StringField(component, "Name").find("Podman") != std::string::npos) {
        name = "podman";
      }
    }
  }
  const std::string number = StringField(*version, "Version");
  if (number.empty()) return absl::InternalError("container engine: /version names no Version");
  return absl::StrCat(name, " ", number);
}

absl::StatusOr<std::string> DockerEngine::ImageId(const std::string& image) const {
  absl::StatusOr<Json> inspect =
      CallJson(socket_path_, "GET", absl::StrCat("/images/", Escape(image), "/json"), timeout_);
  if (!inspect.ok()) return inspect.status();
  std::string id = StringField(*inspect, "Id");
  if (id.empty())
    return absl::InternalError(absl::StrCat("container engine: image ", image, " has no Id"));
  return id;
}

absl::Status DockerEngine::SaveImage(const std::string& image, int fd) const {
  absl::Status write_error;
  Sink sink = [&](std::string_view data) {
    while (!data.empty()) {
      ssize_t n = write(fd, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        write_error =
            absl::InternalError(absl::StrCat("writing the image: ", std::strerror(errno)));
        return false;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  };
  absl::StatusOr<Response> response =
      Call(socket_path_, "GET", absl::StrCat("/images/", Escape(image), "/get"), nullptr,
           absl::ZeroDuration(), sink);
  if (!write_error.ok()) return write_error;
  return response.status();
}

absl::Status DockerEngine::LoadImage(const std::string& path) const {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat(path, ": ", std::strerror(errno)));
  absl::Status read_error;
  Source source = [&](char* buffer, size_t size) -> size_t {
    for (;;) {
      ssize_t n = read(fd, buffer, size);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        read_error = absl::InternalError(absl::StrCat(path, ": ", std::strerror(errno)));
        return CURL_READFUNC_ABORT;
      }
      return static_cast<size_t>(n);
    }
  };
  // The answer is a stream of JSON progress lines; an error is one of them.
  std::string progress;
  Sink sink = [&](std::string_view data) {
    if (progress.size() < (size_t{1} << 20)) progress.append(data);
    return true;
  };
  absl::StatusOr<Response> response = Call(socket_path_, "POST", "/images/load?quiet=1", nullptr,
                                           absl::ZeroDuration(), sink, source, "application/x-tar");
  close(fd);
  if (!read_error.ok()) return read_error;
  if (!response.ok()) return response.status();
  size_t start = 0;
  while (start < progress.size()) {
    size_t end = progress.find('\n', start);
    if (end == std::string::npos) end = progress.size();
    Json line = Json::parse(progress.substr(start, end - start), nullptr, false);
    if (line.is_object() && line.contains("error")) {
      return absl::InternalError(
          absl::StrCat("container engine: loading ", path, ": ", StringField(line, "error")));
    }
    start = end + 1;
  }
  return absl::OkStatus();
}

absl::Status DockerEngine::Create(const std::string& name, const ContainerSpec& spec) const {
  const std::string body = ContainerCreateBody(spec);
  const std::string path = absl::StrCat("/containers/create?name=", Escape(name));
  absl::StatusOr<Response> created = Call(socket_path_, "POST", path, &body, timeout_);
  if (absl::IsFailedPrecondition(created.status())) {
    // The name is taken: a container of an earlier try of this attempt.
    if (absl::Status removed = Remove(name); !removed.ok()) return removed;
    created = Call(socket_path_, "POST", path, &body, timeout_);
  }
  return created.status();
}

absl::Status DockerEngine::Start(const std::string& name) const {
  return Call(socket_path_, "POST", absl::StrCat("/containers/", Escape(name), "/start"), nullptr,
              timeout_)
      .status();
}

absl::StatusOr<int> DockerEngine::Wait(const std::string& name) const {
  absl::StatusOr<Json> waited =
      CallJson(socket_path_, "POST",
               absl::StrCat("/containers/", Escape(name), "/wait?condition=not-running"),
               absl::ZeroDuration());
  if (!waited.ok()) return waited.status();
  auto code = waited->find("StatusCode");
  if (code == waited->end() || !code->is_number_integer()) {
    return absl::InternalError("container engine: the wait's answer has no StatusCode");
  }
  return code->get<int>();
}

absl::Status DockerEngine::Logs(const std::string& name, int out_fd, int err_fd, bool follow,
                                LogsWritten* written) const {
  LogsWritten local;
  if (written == nullptr) written = &local;
  LogsWritten seen;  // of each stream in this call: the first `written` are skipped
  LogDemuxer demux([&](int stream, std::string_view bytes) {
    const int fd = stream == 2 ? err_fd : out_fd;
    uint64_t& seen_bytes = stream == 2 ? seen.stderr_bytes : seen.stdout_bytes;
    uint64_t& written_bytes = stream == 2 ? written->stderr_bytes : written->stdout_bytes;
    const uint64_t start = seen_bytes;
    seen_bytes += bytes.size();
    if (seen_bytes <= written_bytes) return;  // written by an earlier call
    if (start < written_bytes) bytes.remove_prefix(static_cast<size_t>(written_bytes - start));
    written_bytes = seen_bytes;
    while (!bytes.empty()) {
      ssize_t n = write(fd, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // a full disk: the rest is lost, as a plain job's would be
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  });
  Sink sink = [&](std::string_view data) {
    demux.Feed(data);
    return true;
  };
  return Call(socket_path_, "GET",
              absl::StrCat("/containers/", Escape(name), "/logs?stdout=1&stderr=1",
                           follow ? "&follow=1" : ""),
              nullptr, absl::ZeroDuration(), sink)
      .status();
}

absl::StatusOr<ContainerState> DockerEngine::Inspect(const std::string& name) const {
  absl::StatusOr<Json> inspect =
      CallJson(socket_path_, "GET", absl::StrCat("/containers/", Escape(name), "/json"), timeout_);
  if (!inspect.ok()) return inspect.status();
  ContainerState state;
  state.image_id = StringField(*inspect, "Image");
  auto s = inspect->find("State");
  if (s != inspect->end() && s->is_object()) {
    state.running = s->value("Running", false);
    state.exit_code = s->value("ExitCode", 0);
    state.oom_killed = s->value("OOMKilled", false);
    state.error = StringField(*s, "Error");
  }
  return state;
}

absl::Status DockerEngine::Kill(const std::string& name, const std::string& signal) const {
  absl::Status st =
      Call(socket_path_, "POST",
           absl::StrCat("/containers/", Escape(name), "/kill?signal=", signal), nullptr, timeout_)
          .status();
  // 409: it does not run (any more).
  return absl::IsFailedPrecondition(st) ? absl::OkStatus() : st;
}

absl::Status DockerEngine::Remove(const std::string& name) const {
  absl::Status st =
      Call(socket_path_, "DELETE", absl::StrCat("/containers/", Escape(name), "?force=1&v=1"),
           nullptr, timeout_)
          .status();
  // 404: gone already; 409: its removal is already in progress.
  return absl::IsNotFound(st) || absl::IsFailedPrecondition(st) ? absl::OkStatus() : st;
}

absl::StatusOr<std::vector<BindMount>> DockerEngine::Mounts(const std::string& name) const {
  absl::StatusOr<Json> inspect =
      CallJson(socket_path_, "GET", absl::StrCat("/containers/", Escape(name), "/json"), timeout_);
  if (!inspect.ok()) return inspect.status();
  std::vector<BindMount> mounts;
  auto list = inspect->find("Mounts");
  if (list == inspect->end() || !list->is_array()) return mounts;
  for (const Json& m : *list) {
    if (!m.is_object()) continue;
    mounts.push_back(
        {StringField(m, "Source"), StringField(m, "Destination"), !m.value("RW", true)});
  }
  return mounts;
}

std::string OwnContainerId() {
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  static constexpr std::string_view kMark = "containers/";
  while (std::getline(mountinfo, line)) {
    for (size_t at = line.find(kMark); at != std::string::npos; at = line.find(kMark, at + 1)) {
      const size_t start = at + kMark.size();
      if (line.size() < start + 65 || line[start + 64] != '/') continue;
      std::string id = line.substr(start, 64);
      if (IsLowerHex(id)) return id;
    }
  }
  return "";
}

std::string EnginePathOf(const std::string& path, const std::vector<BindMount>& mounts) {
  const BindMount* best = nullptr;
  for (const BindMount& m : mounts) {
    if (m.target.empty() || m.source.empty()) continue;
    const bool holds = path == m.target || (path.size() > m.target.size() &&
                                            path.compare(0, m.target.size(), m.target) == 0 &&
                                            path[m.target.size()] == '/');
    if (holds && (best == nullptr || m.target.size() > best->target.size())) best = &m;
  }
  if (best == nullptr) return "";
  return best->source + path.substr(best->target.size());
}

absl::StatusOr<std::vector<std::string>> DockerEngine::ListLabelled(
    const std::string& key, const std::string& value) const {
  const Json filters = {{"label", Json::array({absl::StrCat(key, "=", value)})}};
  absl::StatusOr<Json> list =
      CallJson(socket_path_, "GET",
               absl::StrCat("/containers/json?all=1&filters=", Escape(filters.dump())), timeout_);
  if (!list.ok()) return list.status();
  std::vector<std::string> names;
  if (!list->is_array()) return names;
  for (const Json& container : *list) {
    auto it = container.find("Names");
    if (it == container.end() || !it->is_array() || it->empty() || !(*it)[0].is_string()) continue;
    std::string name = (*it)[0].get<std::string>();
    if (!name.empty() && name.front() == '/') name.erase(0, 1);
    names.push_back(std::move(name));
  }
  return names;
}

}  // namespace deja
