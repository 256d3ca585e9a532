// Whom jobs run as (worker/job_user.h): the resolution of --job_user and
// --allow_root_jobs against an injected user database, and the work dir a
// job user must be able to pass through.
#include "worker/job_user.h"

#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/worker/test_util.h"
#include "worker/paths.h"

namespace deja::worker {
namespace {

using ::deja::worker::testing::MakeTempDir;
using ::deja::worker::testing::RemoveTempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Users by name; `create` adds `created` when allowed.
struct FakeUsers {
  std::map<std::string, JobUser> users = {{"root", {"root", 0, 0}},
                                          {"nobody", {"nobody", 65534, 65534}},
                                          {"alice", {"alice", 1000, 1000}}};
  bool may_create = true;
  std::vector<std::string> created;

  UserDatabase Database() {
    return UserDatabase{[this](const std::string& name) -> absl::StatusOr<JobUser> {
                          auto it = users.find(name);
                          if (it == users.end())
                            return absl::NotFoundError(absl::StrCat("no user ", name));
                          return it->second;
                        },
                        [this](const std::string& name) {
                          if (!may_create)
                            return absl::PermissionDeniedError("useradd: cannot lock /etc/passwd");
                          created.push_back(name);
                          users[name] = JobUser{name, 999, 999};
                          return absl::OkStatus();
                        }};
  }
};

std::string Resolve(FakeUsers* users, const std::string& flag, bool allow_root, uid_t euid,
                    std::vector<std::string>* notes = nullptr) {
  std::vector<std::string> ignored;
  auto user = ResolveJobUser(flag, allow_root, euid, users->Database(),
                             notes != nullptr ? notes : &ignored);
  if (!user.ok()) return std::string(user.status().message());
  if (!user->has_value()) return "the worker's own user";
  return absl::StrCat((*user)->name, " ", (*user)->uid);
}

TEST(JobUserTest, ARootWorkerRunsJobsAsADedicatedUserItCreates) {
  FakeUsers users;
  std::vector<std::string> notes;
  EXPECT_EQ(Resolve(&users, "", false, 0, &notes), "deja-job 999");
  EXPECT_THAT(users.created, ElementsAre("deja-job"));
  EXPECT_THAT(notes, ElementsAre("created the system user deja-job to run jobs as"));
  // Next start: it is there.
  notes.clear();
  EXPECT_EQ(Resolve(&users, "", false, 0, &notes), "deja-job 999");
  EXPECT_EQ(users.created.size(), 1u);
  EXPECT_TRUE(notes.empty());
}

TEST(JobUserTest, WhenTheUserCannotBeCreatedJobsRunAsNobody) {
  FakeUsers users;
  users.may_create = false;
  std::vector<std::string> notes;
  EXPECT_EQ(Resolve(&users, "", false, 0, &notes), "nobody 65534");
  EXPECT_THAT(notes, ElementsAre("cannot create the user deja-job (useradd: cannot lock "
                                 "/etc/passwd): jobs run as nobody"));
}

TEST(JobUserTest, RootJobsNeedAllowRootJobs) {
  FakeUsers users;
  EXPECT_EQ(Resolve(&users, "root", false, 0),
            "--job_user root: jobs would run as root, with the whole machine theirs; give "
            "--allow_root_jobs too if that is meant");
  std::vector<std::string> notes;
  EXPECT_EQ(Resolve(&users, "root", true, 0, &notes), "the worker's own user");
  EXPECT_THAT(notes, ElementsAre("jobs run as root (--allow_root_jobs)"));
}

TEST(JobUserTest, AGivenUserIsLookedUpByNameOrUid) {
  FakeUsers users;
  EXPECT_EQ(Resolve(&users, "alice", false, 0), "alice 1000");
  EXPECT_EQ(Resolve(&users, "bob", false, 0), "--job_user bob: no user bob");
  EXPECT_TRUE(users.created.empty());
}

TEST(JobUserTest, AWorkerNotStartedAsRootRunsJobsAsItself) {
  FakeUsers users;
  EXPECT_EQ(Resolve(&users, "", false, 1000), "the worker's own user");
  EXPECT_EQ(Resolve(&users, "alice", false, 1000), "the worker's own user");
  EXPECT_EQ(Resolve(&users, "nobody", false, 1000),
            "--job_user nobody: this worker runs as uid 1000, not root, so its jobs run as that "
            "user; start it as root to run jobs as another");
  EXPECT_TRUE(users.created.empty());
}

TEST(JobUserTest, TheSystemDatabaseFindsUsersByNameAndByUid) {
  const UserDatabase users = SystemUsers();
  auto by_name = users.lookup("root");
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  EXPECT_EQ(by_name->uid, 0u);
  auto by_uid = users.lookup("0");
  ASSERT_TRUE(by_uid.ok()) << by_uid.status();
  EXPECT_EQ(by_uid->name, "root");
  EXPECT_EQ(users.lookup("no-such-user-here").status().code(), absl::StatusCode::kNotFound);
}

TEST(JobUserTest, AsUserRunsTheResolvedProgramThroughSetpriv) {
  EXPECT_THAT(AsUser(JobUser{"deja-job", 999, 998}, "/usr/bin/python3", {"python3", "-c", "x"}),
              ElementsAre("/usr/bin/setpriv", "--reuid=999", "--regid=998", "--clear-groups", "--",
                          "/usr/bin/python3", "-c", "x"));
}

TEST(JobUserTest, TheWorkDirLetsTheJobUserThroughToItsWorkspaceOnly) {
  const std::string root = MakeTempDir("job_user_test");  // 0700
  const std::string work_dir = root + "/work";
  ASSERT_TRUE(paths::MakeDirs(paths::JobsDir(work_dir)).ok());
  ASSERT_TRUE(paths::MakeDirs(work_dir + "/cache/blobs").ok());
  const JobUser user{"nobody", 65534, 65534};
  absl::Status st = PrepareWorkDir(work_dir, user);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_THAT(st.message(),
              HasSubstr(absl::StrCat("user nobody, who runs the jobs, cannot pass through ", root,
                                     " (mode 0700, owner uid ", geteuid(), ")")));
  EXPECT_THAT(st.message(), HasSubstr(absl::StrCat("chmod o+x ", root)));

  ASSERT_EQ(chmod(root.c_str(), 0711), 0);
  ASSERT_TRUE(PrepareWorkDir(work_dir, user).ok());
  struct stat st_work, st_jobs, st_cache;
  ASSERT_EQ(stat(work_dir.c_str(), &st_work), 0);
  ASSERT_EQ(stat(paths::JobsDir(work_dir).c_str(), &st_jobs), 0);
  ASSERT_EQ(stat((work_dir + "/cache").c_str(), &st_cache), 0);
  EXPECT_EQ(st_work.st_mode & 07777, 0711u);
  EXPECT_EQ(st_jobs.st_mode & 07777, 0711u);
  EXPECT_EQ(st_cache.st_mode & 07777, 0700u);
  RemoveTempDir(root);
}

}  // namespace
}  // namespace deja::worker
