#include "worker/job_user.h"

#include <pwd.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/errors.h"
#include "worker/paths.h"

extern char** environ;

namespace deja::worker {
namespace {

absl::StatusOr<JobUser> LookupUser(const std::string& name) {
  struct passwd pwd;
  struct passwd* found = nullptr;
  char buffer[4096];
  uid_t uid = 0;
  const int err = absl::SimpleAtoi(name, &uid)
                      ? getpwuid_r(uid, &pwd, buffer, sizeof(buffer), &found)
                      : getpwnam_r(name.c_str(), &pwd, buffer, sizeof(buffer), &found);
  if (err != 0) return ErrnoStatus(err, "looking up user " + name);
  if (found == nullptr) return absl::NotFoundError(absl::StrCat("no user ", name));
  return JobUser{pwd.pw_name, pwd.pw_uid, pwd.pw_gid};
}

absl::Status CreateSystemUser(const std::string& name) {
  const char* useradd = "/usr/sbin/useradd";
  std::vector<std::string> args = {useradd,      "--system",          "--user-group",
                                   "--home-dir", "/nonexistent",      "--no-create-home",
                                   "--shell",    "/usr/sbin/nologin", name};
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (int err = posix_spawn(&pid, useradd, nullptr, nullptr, argv.data(), environ); err != 0) {
    return ErrnoStatus(err, absl::StrCat("running ", useradd));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(useradd, " ", name, " failed (status ", status, ")"));
  }
  return absl::OkStatus();
}

// Every entry under `root` and `root` itself to uid:gid (symlinks
// themselves, never followed), then `root` 0700.
absl::Status ChownTree(const std::string& root, uid_t uid, gid_t gid) {
  if (lchown(root.c_str(), uid, gid) != 0) return ErrnoStatus(errno, "chown " + root);
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(root, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (lchown(it->path().c_str(), uid, gid) != 0) {
      return ErrnoStatus(errno, "chown " + it->path().string());
    }
  }
  if (ec) return absl::InternalError(absl::StrCat("listing ", root, ": ", ec.message()));
  if (chmod(root.c_str(), 0700) != 0) return ErrnoStatus(errno, "chmod 0700 " + root);
  return absl::OkStatus();
}

// Whether `user` (without supplementary groups) may search directory `st`.
bool CanSearch(const struct stat& st, const JobUser& user) {
  if (st.st_uid == user.uid) return (st.st_mode & S_IXUSR) != 0;
  if (st.st_gid == user.gid) return (st.st_mode & S_IXGRP) != 0;
  return (st.st_mode & S_IXOTH) != 0;
}

}  // namespace

absl::Status PrepareWorkDir(const std::string& work_dir, const JobUser& user) {
  const std::string jobs = paths::JobsDir(work_dir);
  for (const std::string& dir : {work_dir, jobs}) {
    if (chmod(dir.c_str(), 0711) != 0) return ErrnoStatus(errno, "chmod 0711 " + dir);
  }
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(work_dir, ec)) {
    if (entry.path() == jobs || entry.is_symlink()) continue;
    if (chmod(entry.path().c_str(), entry.is_directory() ? 0700 : 0600) != 0) {
      return ErrnoStatus(errno, "chmod " + entry.path().string());
    }
  }
  if (ec) return absl::InternalError(absl::StrCat("listing ", work_dir, ": ", ec.message()));
  // Every directory from / down to jobs/ must let the job user through.
  std::string path = jobs;
  while (true) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "stat " + path);
    if (!CanSearch(st, user)) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "--work_dir %s: user %s, who runs the jobs, cannot pass through %s (mode %04o, owner "
          "uid %d) to reach its workspaces; let it through (chmod o+x %s) or choose another "
          "--work_dir",
          work_dir, user.name, path, st.st_mode & 07777, st.st_uid, path));
    }
    if (path == "/") break;
    const size_t slash = path.rfind('/');
    path = slash == 0 ? "/" : path.substr(0, slash);
  }
  return absl::OkStatus();
}

UserDatabase SystemUsers() { return UserDatabase{LookupUser, CreateSystemUser}; }

absl::StatusOr<std::optional<JobUser>> ResolveJobUser(const std::string& flag, bool allow_root,
                                                      uid_t euid, const UserDatabase& users,
                                                      std::vector<std::string>* notes) {
  if (euid != 0) {
    if (flag.empty()) return std::nullopt;
    auto user = users.lookup(flag);
    if (user.ok() && user->uid == euid) return std::nullopt;
    return absl::InvalidArgumentError(absl::StrCat(
        "--job_user ", flag, ": this worker runs as uid ", euid,
        ", not root, so its jobs run as that user; start it as root to run jobs as another"));
  }
  if (flag.empty()) {
    auto user = users.lookup(kDefaultJobUser);
    if (absl::IsNotFound(user.status())) {
      if (absl::Status created = users.create(kDefaultJobUser); created.ok()) {
        notes->push_back(
            absl::StrCat("created the system user ", kDefaultJobUser, " to run jobs as"));
        user = users.lookup(kDefaultJobUser);
      } else {
        notes->push_back(absl::StrCat("cannot create the user ", kDefaultJobUser, " (",
                                      created.message(), "): jobs run as nobody"));
        user = users.lookup("nobody");
      }
    }
    if (!user.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("no user to run jobs as (", user.status().message(),
                       "): give --job_user=USER, an unprivileged user"));
    }
    if (user->uid == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "user ", user->name, " is uid 0: give --job_user=USER, an unprivileged user"));
    }
    return *user;
  }
  auto user = users.lookup(flag);
  if (!user.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--job_user ", flag, ": ", user.status().message()));
  }
  if (user->uid == 0) {
    if (!allow_root) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--job_user ", flag,
          ": jobs would run as root, with the whole machine theirs; give --allow_root_jobs too "
          "if that is meant"));
    }
    notes->push_back("jobs run as root (--allow_root_jobs)");
    return std::nullopt;
  }
  return *user;
}

std::vector<std::string> AsUser(const JobUser& user, const std::string& program,
                                const std::vector<std::string>& argv) {
  std::vector<std::string> wrapped = {kSetpriv,
                                      absl::StrCat("--reuid=", user.uid),
                                      absl::StrCat("--regid=", user.gid),
                                      "--clear-groups",
                                      "--",
                                      program};
  if (argv.size() > 1) wrapped.insert(wrapped.end(), argv.begin() + 1, argv.end());
  return wrapped;
}

absl::Status GiveWorkspace(const std::string& workspace, const JobUser& user) {
  return ChownTree(workspace, user.uid, user.gid);
}

absl::Status TakeBackWorkspace(const std::string& workspace) {
  return ChownTree(workspace, geteuid(), getegid());
}

}  // namespace deja::worker
