// The pure parts of the Docker Engine client: the create request, the log
// stream's framing, and paths as the engine sees them. The calls themselves
// are exercised against a real engine by tests/integration/container_test.cc.
#include "common/docker_engine.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace deja {
namespace {

TEST(DockerEngineTest, CreateBodyAsksForNothingPrivileged) {
  ContainerSpec spec;
  spec.image = "sha256:" + std::string(64, 'a');
  spec.argv = {"sh", "-c", "echo hi"};
  spec.env = {{"HOME", "/workspace"}};
  spec.working_dir = "/workspace";
  spec.user = "999:998";
  spec.mounts = {{"/w/jobs/j1", "/workspace", false}, {"/w/jobs/j1/in", "/workspace/in", true}};
  spec.memory_bytes = uint64_t{4} << 30;
  spec.milli_cpus = 1500;
  const nlohmann::json body = nlohmann::json::parse(ContainerCreateBody(spec));
  EXPECT_EQ(body["Image"], spec.image);
  EXPECT_EQ(body["Cmd"], nlohmann::json(spec.argv));
  EXPECT_EQ(body["Entrypoint"], nlohmann::json::array({""})) << "the image's ENTRYPOINT unused";
  EXPECT_EQ(body["Env"], nlohmann::json::array({"HOME=/workspace"}));
  EXPECT_EQ(body["User"], "999:998");
  EXPECT_EQ(body["NetworkDisabled"], true);
  const nlohmann::json& host = body["HostConfig"];
  EXPECT_EQ(host["NetworkMode"], "none");
  EXPECT_EQ(host["CapDrop"], nlohmann::json::array({"ALL"}));
  EXPECT_EQ(host["SecurityOpt"], nlohmann::json::array({"no-new-privileges"}));
  EXPECT_EQ(host["Memory"], uint64_t{4} << 30);
  EXPECT_EQ(host["MemorySwap"], uint64_t{4} << 30) << "no swap past the limit";
  EXPECT_EQ(host["NanoCpus"], uint64_t{1'500'000'000});
  EXPECT_FALSE(host.contains("DeviceRequests"));
  ASSERT_EQ(host["Mounts"].size(), 2u);
  EXPECT_EQ(host["Mounts"][1]["Source"], "/w/jobs/j1/in");
  EXPECT_EQ(host["Mounts"][1]["ReadOnly"], true);

  spec.network = true;
  spec.gpus = 2;
  const nlohmann::json more = nlohmann::json::parse(ContainerCreateBody(spec));
  EXPECT_EQ(more["HostConfig"]["NetworkMode"], "bridge");
  EXPECT_EQ(more["HostConfig"]["DeviceRequests"][0]["Count"], 2);
}

TEST(DockerEngineTest, LogStreamFramesSplitAnywhere) {
  std::string stream;
  auto frame = [&](char kind, const std::string& bytes) {
    stream.push_back(kind);
    stream.append(3, '\0');
    const auto n = static_cast<uint32_t>(bytes.size());
    for (int shift : {24, 16, 8, 0}) stream.push_back(static_cast<char>((n >> shift) & 0xff));
    stream += bytes;
  };
  frame(1, "out one\n");
  frame(2, "err\n");
  frame(1, std::string(70000, 'x'));
  for (size_t slice : {size_t{1}, size_t{3}, size_t{8}, size_t{4096}, stream.size()}) {
    std::string out, err;
    LogDemuxer demux(
        [&](int kind, std::string_view bytes) { (kind == 2 ? err : out).append(bytes); });
    for (size_t at = 0; at < stream.size(); at += slice) {
      demux.Feed(std::string_view(stream).substr(at, slice));
    }
    EXPECT_EQ(out, "out one\n" + std::string(70000, 'x')) << slice;
    EXPECT_EQ(err, "err\n") << slice;
  }
}

TEST(DockerEngineTest, EnginePathsFollowTheDeepestMount) {
  const std::vector<BindMount> mounts = {
      {"/var/lib/docker/volumes/deja_worker1-work/_data", "/var/lib/deja-worker", false},
      {"/srv/creds", "/var/lib/deja-credentials", true},
      {"/var/lib/docker/volumes/x/_data", "/var/lib/deja-worker/jobs", false}};
  EXPECT_EQ(EnginePathOf("/var/lib/deja-worker", mounts),
            "/var/lib/docker/volumes/deja_worker1-work/_data");
  EXPECT_EQ(EnginePathOf("/var/lib/deja-worker/meta", mounts),
            "/var/lib/docker/volumes/deja_worker1-work/_data/meta");
  EXPECT_EQ(EnginePathOf("/var/lib/deja-worker/jobs/j1", mounts),
            "/var/lib/docker/volumes/x/_data/j1");
  EXPECT_EQ(EnginePathOf("/var/lib/deja-workers", mounts), "") << "a prefix is not a parent";
  EXPECT_EQ(EnginePathOf("/tmp", mounts), "");
}

}  // namespace
}  // namespace deja
