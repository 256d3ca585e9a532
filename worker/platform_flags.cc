#include "worker/platform_flags.h"

#include <sys/utsname.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace deja::worker {

std::vector<char*> MergePlatformFlags(int argc, char** argv, std::string* merged_storage) {
  std::vector<char*> out;
  std::vector<std::string> values;
  bool after_terminator = false;
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i == 0 || after_terminator) {
      out.push_back(argv[i]);
      continue;
    }
    if (arg == "--") {
      after_terminator = true;
      out.push_back(argv[i]);
      continue;
    }
    absl::string_view name = arg;
    if (!absl::ConsumePrefix(&name, "--")) absl::ConsumePrefix(&name, "-");
    if (name == "platform" && i + 1 < argc) {
      values.push_back(argv[++i]);
    } else if (absl::ConsumePrefix(&name, "platform=")) {
      values.push_back(std::string(name));
    } else {
      out.push_back(argv[i]);
    }
  }
  if (!values.empty()) {
    *merged_storage = absl::StrCat("--platform=", absl::StrJoin(values, ","));
    out.insert(out.begin() + 1, merged_storage->data());
  }
  return out;
}

absl::StatusOr<std::map<std::string, std::string>> ParsePlatform(
    const std::vector<std::string>& values) {
  std::map<std::string, std::string> platform;
  for (const std::string& kv : values) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat("--platform \"", kv, "\": expected K=V"));
    }
    const std::string key = kv.substr(0, eq);
    if (key == "os" || key == "arch") {
      return absl::InvalidArgumentError(
          absl::StrCat("--platform \"", kv, "\": ", key, " is detected, not set"));
    }
    if (!platform.emplace(key, kv.substr(eq + 1)).second) {
      return absl::InvalidArgumentError(absl::StrCat("--platform: ", key, " given twice"));
    }
  }
  struct utsname uts;
  platform["os"] = "linux";
  platform["arch"] = uname(&uts) == 0 ? uts.machine : "unknown";
  return platform;
}

}  // namespace deja::worker
