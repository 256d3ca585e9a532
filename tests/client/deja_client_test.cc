// DejaClient behaviour that needs no scheduler.
#include "client/deja_client.h"

#include <arpa/inet.h>
#include <grpc/grpc.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>

#include "tests/client/cli_test_util.h"

namespace deja {
namespace {

using ::deja::cli::testing::CliResult;
using ::deja::cli::testing::RunDeja;

// Each case runs in a fresh process (gRPC stays initialized once started)
// and exits 0 when its expectations hold, else prints why and exits 1.
class LazyChannelDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// The channel, and with it gRPC's threads, is made by the first call.
TEST_F(LazyChannelDeathTest, ConstructingStartsNothingTheFirstCallConnects) {
  EXPECT_EXIT(
      {
        DejaClient client("127.0.0.1:1",
                          DejaClientOptions{.rpc_timeout = absl::Seconds(5), .security = {}});
        const bool started_by_constructor = grpc_is_initialized() != 0;
        const bool connected_before = client.Connected();
        absl::StatusOr<deja::v1::Job> job = client.GetJob("j1");
        const bool started_by_call = grpc_is_initialized() != 0;
        if (started_by_constructor || connected_before || job.ok() || !started_by_call) {
          fprintf(stderr, "constructor started gRPC %d, connected %d, call %s, call started %d\n",
                  started_by_constructor, connected_before, job.status().ToString().c_str(),
                  started_by_call);
          _exit(1);
        }
        _exit(absl::IsUnavailable(job.status()) ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

// `deja submit --dry-run` sends nothing, so a scheduler that never answers
// does not matter.
TEST(LazyChannelTest, DryRunWorksWithAnUnreachableScheduler) {
  // 192.0.2.1 (TEST-NET-1) never answers: a connection attempt would hang.
  CliResult result = RunDeja(
      {"submit", "--dry-run", "--scheduler", "192.0.2.1:1", "--timeout", "1", "--", "true"});
  EXPECT_EQ(result.code, 0) << result.err;
  EXPECT_EQ(result.err, "");
  EXPECT_NE(result.out.find("\"command\":[\"true\"]"), std::string::npos) << result.out;
}

// A scheduler that accepts the connection but has not yet sent its first
// HTTP/2 frame (busy, or behind a slow link): the connection is given the
// whole --timeout. gRPC used to give up after its minimum reconnect backoff
// (250 ms) with UNAVAILABLE, "timed out before receiving SETTINGS frame".
TEST(ConnectDeadlineTest, ASlowHandshakeGetsTheWholeTimeout) {
  // A listening socket nobody accepts on: the kernel completes the TCP
  // handshake, and nothing is ever sent.
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(listen(listener, 16), 0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const std::string target = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));

  CliResult result =
      RunDeja({"status", "j1", "--scheduler", target, "--insecure", "--timeout", "1.5"});
  close(listener);
  EXPECT_EQ(result.code, 1);
  // The deadline ended the call, not gRPC's connect timeout.
  EXPECT_NE(result.err.find("Deadline"), std::string::npos) << result.err;
  EXPECT_EQ(result.err.find("SETTINGS"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace deja
