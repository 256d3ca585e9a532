#include "client/image_commands.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "client/cli.h"
#include "client/cli_format.h"
#include "client/inputs.h"
#include "common/hash.h"
#include "common/job_spec.h"

namespace deja::cli {
namespace {

// A temp file removed when this goes.
struct TempFile {
  std::string path;
  ~TempFile() {
    if (!path.empty()) unlink(path.c_str());
  }
};

}  // namespace

// Runs `argv` (through PATH); its stdout in `*out`, its stderr in `*err`.
// Returns its exit code, or -1 when it could not be started.
int RunTool(const std::vector<std::string>& argv, std::string* out, std::string* err) {
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return -1;
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    return -1;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int spawned = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (spawned != 0) {
    *err = absl::StrCat(argv[0], ": ", std::strerror(spawned));
    close(out_pipe[0]);
    close(err_pipe[0]);
    return -1;
  }
  // Both are small (an ID, an error): read one, then the other.
  auto drain = [](int fd, std::string* into) {
    char buffer[4096];
    for (;;) {
      ssize_t n = read(fd, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      if (into->size() < (1u << 20)) into->append(buffer, static_cast<size_t>(n));
    }
    close(fd);
  };
  drain(out_pipe[0], out);
  drain(err_pipe[0], err);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void ImageCommands::Register(CommandTable& table) {
  struct Flags {
    std::string name;
    std::string docker = "docker";
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* image = table.AddGroup(
      "image", "Images for clusters without a registry: push one to the content store, list them");
  CLI::App* push = table.AddCommand(
      image, "push",
      "Store `docker save NAME:TAG` of a local image in the content store and name it on the "
      "scheduler (an admin token of every project): jobs naming it are pinned to its ID, and "
      "workers that lack it load it from the store",
      [flags](CommandContext& context) {
        return ImageCommands(context).Push(flags->name, flags->docker);
      });
  push->add_option("NAME", flags->name, "The image (NAME:TAG), as the local engine knows it")
      ->required();
  push->add_option("--docker", flags->docker,
                   "The container engine's CLI that saves the image (default: docker; podman "
                   "works too)")
      ->type_name("PROGRAM");
  table.AddCommand(image, "ls", "The images pushed, by name: their ID and saved size",
                   [](CommandContext& context) { return ImageCommands(context).List(); });
}

int ImageCommands::Push(const std::string& name, const std::string& docker) {
  std::string out;
  std::string err;
  if (RunTool({docker, "image", "inspect", "--format", "{{.Id}}", name}, &out, &err) != 0) {
    return context_.Fail(absl::NotFoundError(
        absl::StrCat("image ", name, ": ", docker,
                     " image inspect failed: ", absl::StripTrailingAsciiWhitespace(err))));
  }
  const std::string id(absl::StripAsciiWhitespace(out));
  if (!IsImageId(id)) {
    return context_.Fail(absl::InternalError(
        absl::StrCat("image ", name, ": ", docker, " gave \"", id, "\" for its ID")));
  }
  const char* tmp = std::getenv("TMPDIR");
  TempFile saved{absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/deja-image-XXXXXX")};
  const int fd = mkstemp(saved.path.data());
  if (fd < 0) {
    const std::string why = std::strerror(errno);
    saved.path.clear();
    return context_.Fail(absl::InternalError(absl::StrCat("a temp file for the image: ", why)));
  }
  close(fd);
  // By ID: what is saved is what was inspected, whatever the tag names now.
  out.clear();
  err.clear();
  if (RunTool({docker, "save", "-o", saved.path, id}, &out, &err) != 0) {
    return context_.Fail(absl::InternalError(absl::StrCat(
        "image ", name, ": ", docker, " save failed: ", absl::StripTrailingAsciiWhitespace(err))));
  }
  absl::StatusOr<std::string> digest = HashFile(saved.path);
  if (!digest.ok()) return context_.Fail(digest.status());
  struct stat info;
  if (stat(saved.path.c_str(), &info) != 0) {
    return context_.Fail(absl::InternalError(absl::StrCat(saved.path, ": ", std::strerror(errno))));
  }
  TreeBlob blob;
  blob.digest = *digest;
  blob.size = static_cast<uint64_t>(info.st_size);
  blob.path = saved.path;
  absl::StatusOr<UploadReport> uploaded = UploadMissing(context_.client().blobs(), {blob});
  if (!uploaded.ok()) return context_.Fail(uploaded.status());
  deja::v1::PushImageRequest request;
  request.set_name(name);
  request.set_image_id(id);
  request.set_digest(blob.digest);
  request.set_size(blob.size);
  absl::StatusOr<deja::v1::ImageRecord> record = context_.client().PushImage(request);
  if (!record.ok()) return context_.Fail(record.status());
  if (context_.json()) {
    context_.PrintJson(*record);
    return kExitOk;
  }
  context_.out() << name << " " << record->image_id() << " pushed: " << FormatBytes(blob.size)
                 << (uploaded->blobs > 0 ? " uploaded" : ", already in the content store") << "\n";
  return kExitOk;
}

int ImageCommands::List() {
  absl::StatusOr<deja::v1::ListImagesResponse> images = context_.client().ListImages();
  if (!images.ok()) return context_.Fail(images.status());
  if (context_.json()) {
    for (const auto& image : images->images()) context_.PrintJson(image);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& image : images->images()) {
    rows.push_back({image.name(), image.image_id(), FormatBytes(image.size()),
                    FormatTimestamp(image.pushed_at_ms(), context_.tz()),
                    OrDash(image.pushed_by())});
  }
  context_.out() << RenderTable({"NAME", "IMAGE-ID", "SIZE", "PUSHED", "BY"}, rows);
  return kExitOk;
}

}  // namespace deja::cli
