// Helpers shared by the CLI unit tests: run `deja` in process and capture
// what it prints.
#ifndef DEJA_TESTS_CLIENT_CLI_TEST_UTIL_H_
#define DEJA_TESTS_CLIENT_CLI_TEST_UTIL_H_

#include <google/protobuf/util/json_util.h>

#include <sstream>
#include <string>
#include <vector>

#include "client/cli.h"
#include "deja/v1/job.pb.h"
#include "gtest/gtest.h"

namespace deja::cli::testing {

struct CliResult {
  int code;
  std::string out;
  std::string err;
};

// Runs `deja ARGS...` through RunCli.
inline CliResult RunDeja(std::vector<std::string> args) {
  args.insert(args.begin(), "deja");
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::ostringstream out, err;
  int code = RunCli(static_cast<int>(args.size()), argv.data(), out, err);
  return {code, out.str(), err.str()};
}

// The JobSpec `deja submit --dry-run ARGS...` prints.
inline deja::v1::JobSpec DryRun(std::vector<std::string> args) {
  args.insert(args.begin(), {"submit", "--dry-run"});
  CliResult result = RunDeja(args);
  EXPECT_EQ(result.code, 0) << result.err;
  deja::v1::JobSpec spec;
  auto status = google::protobuf::util::JsonStringToMessage(result.out, &spec);
  EXPECT_TRUE(status.ok()) << result.out;
  return spec;
}

}  // namespace deja::cli::testing

#endif  // DEJA_TESTS_CLIENT_CLI_TEST_UTIL_H_
