// common/credentials: which addresses are loopback, token files.
#include "common/credentials.h"

#include <unistd.h>

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace deja {
namespace {

TEST(CredentialsTest, OnlyLoopbackAddressesAreLoopback) {
  for (const char* address :
       {"127.0.0.1:7070", "127.9.8.7:0", "localhost:7070", "LocalHost:1", "[::1]:7070"}) {
    EXPECT_TRUE(IsLoopback(address)) << address;
  }
  for (const char* address : {"0.0.0.0:7070", "[::]:7070", ":7070", "10.0.0.7:7070",
                              "scheduler:7070", "[2001:db8::1]:7070", "128.0.0.1:1"}) {
    EXPECT_FALSE(IsLoopback(address)) << address;
  }
  EXPECT_EQ(HostOf("[::1]:7070"), "::1");
  EXPECT_EQ(HostOf("scheduler:7070"), "scheduler");
  EXPECT_EQ(HostOf(":7070"), "");
}

TEST(CredentialsTest, ATokenFileIsTrimmedAndAnEmptyOneRefused) {
  const std::string path = ::testing::TempDir() + "/token-" + std::to_string(getpid());
  std::ofstream(path) << "  t3.secret\n";
  auto token = ReadTokenFile(path);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, "t3.secret");
  std::ofstream(path) << "\n";
  EXPECT_THAT(ReadTokenFile(path).status().message(), ::testing::HasSubstr("empty, not a token"));
  unlink(path.c_str());
  EXPECT_EQ(ReadTokenFile(path).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace deja
