#include "common/resources.h"

#include <cmath>
#include <cstdlib>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"

namespace deja {
namespace {

absl::Status Invalid(absl::string_view flag, absl::string_view text, absl::string_view why) {
  if (flag.empty()) return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": ", why));
  return absl::InvalidArgumentError(absl::StrCat(flag, " ", text, ": ", why));
}

}  // namespace

absl::StatusOr<uint32_t> ParseCpus(absl::string_view flag, absl::string_view text) {
  double cpus = 0;
  const std::string trimmed(absl::StripAsciiWhitespace(text));
  if (trimmed.empty() || !absl::SimpleAtod(trimmed, &cpus) || !std::isfinite(cpus)) {
    return Invalid(flag, text, "expected a number of CPUs (2, 0.5)");
  }
  if (cpus <= 0) return Invalid(flag, text, "must be more than 0");
  if (cpus * 1000 > kMaxMilliCpus) {
    return Invalid(flag, text, absl::StrCat("more than ", kMaxMilliCpus / 1000, " CPUs"));
  }
  const auto milli = static_cast<uint32_t>(std::llround(cpus * 1000));
  if (milli == 0) return Invalid(flag, text, "less than a thousandth of a CPU");
  return milli;
}

absl::StatusOr<uint64_t> ParseMemory(absl::string_view flag, absl::string_view text) {
  const std::string s = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  size_t digits = 0;
  while (digits < s.size() && (absl::ascii_isdigit(s[digits]) || s[digits] == '.')) ++digits;
  double number = 0;
  if (digits == 0 || !absl::SimpleAtod(s.substr(0, digits), &number)) {
    return Invalid(flag, text, "expected a size (4GiB, 512M, 1048576)");
  }
  std::string unit(absl::StripAsciiWhitespace(s.substr(digits)));
  if (unit.size() > 1 && unit.back() == 'b') unit.pop_back();  // "kb", "kib" -> "k", "ki"
  if (unit.size() == 2 && unit[1] == 'i') unit.pop_back();
  int shift = 0;
  if (unit.empty() || unit == "b") {
    shift = 0;
  } else if (unit == "k") {
    shift = 10;
  } else if (unit == "m") {
    shift = 20;
  } else if (unit == "g") {
    shift = 30;
  } else if (unit == "t") {
    shift = 40;
  } else {
    return Invalid(flag, text, "unknown unit; use B, KiB, MiB, GiB or TiB (K, M, G, T)");
  }
  const double bytes = std::ldexp(number, shift);
  if (bytes < 1) return Invalid(flag, text, "must be at least 1 byte");
  if (bytes > static_cast<double>(kMaxMemoryBytes)) return Invalid(flag, text, "more than 1 PiB");
  return static_cast<uint64_t>(std::llround(bytes));
}

absl::StatusOr<uint64_t> ParseTimeLimit(absl::string_view flag, absl::string_view text) {
  absl::Duration d;
  const std::string trimmed(absl::StripAsciiWhitespace(text));
  if (!absl::ParseDuration(trimmed, &d) || d == absl::InfiniteDuration()) {
    return Invalid(flag, text, "expected a duration (2h, 90m, 1h30m, 45s)");
  }
  if (d < absl::Milliseconds(1)) return Invalid(flag, text, "must be at least 1ms");
  if (d > absl::Milliseconds(kMaxTimeLimitMs)) return Invalid(flag, text, "more than 366 days");
  return static_cast<uint64_t>(absl::ToInt64Milliseconds(d));
}

absl::Status CheckGpus(absl::string_view flag, int64_t gpus) {
  if (gpus < 0 || gpus > kMaxGpus) {
    return Invalid(flag, absl::StrCat(gpus), absl::StrCat("must be 0 to ", kMaxGpus));
  }
  return absl::OkStatus();
}

std::string FormatCpus(uint32_t milli_cpus) {
  if (milli_cpus % 1000 == 0) return absl::StrCat(milli_cpus / 1000);
  std::string s = absl::StrFormat("%d.%03d", milli_cpus / 1000, milli_cpus % 1000);
  while (s.back() == '0') s.pop_back();
  return s;
}

std::string FormatMemory(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int unit = 0;
  while (unit < 5 && bytes >= (uint64_t{1} << (10 * (unit + 1)))) ++unit;
  const uint64_t whole = bytes >> (10 * unit);
  if (bytes == whole << (10 * unit)) return absl::StrCat(whole, " ", kUnits[unit]);
  // Not a whole number of the unit: one decimal, as a person reads it.
  return absl::StrFormat("%.1f %s", std::ldexp(static_cast<double>(bytes), -10 * unit),
                         kUnits[unit]);
}

std::string FormatTimeLimit(uint64_t ms) {
  std::string out;
  const uint64_t hours = ms / 3'600'000;
  const uint64_t minutes = ms / 60'000 % 60;
  const uint64_t seconds_ms = ms % 60'000;
  if (hours > 0) absl::StrAppend(&out, hours, "h");
  if (minutes > 0) absl::StrAppend(&out, minutes, "m");
  if (seconds_ms > 0) {
    if (seconds_ms % 1000 == 0) {
      absl::StrAppend(&out, seconds_ms / 1000, "s");
    } else if (seconds_ms < 1000) {
      absl::StrAppend(&out, seconds_ms, "ms");
    } else {
      std::string s = absl::StrFormat("%.3f", static_cast<double>(seconds_ms) / 1000);
      while (s.back() == '0') s.pop_back();
      absl::StrAppend(&out, s, "s");
    }
  }
  return out.empty() ? "0s" : out;
}

std::string FormatResources(const deja::v1::Resources& r) {
  std::vector<std::string> parts;
  if (r.milli_cpus() > 0) parts.push_back(absl::StrCat("cpus ", FormatCpus(r.milli_cpus())));
  if (r.memory_bytes() > 0) {
    parts.push_back(absl::StrCat("memory ", FormatMemory(r.memory_bytes())));
  }
  if (r.gpus() > 0) parts.push_back(absl::StrCat("gpus ", r.gpus()));
  if (r.time_limit_ms() > 0) {
    parts.push_back(absl::StrCat("time limit ", FormatTimeLimit(r.time_limit_ms())));
  }
  return absl::StrJoin(parts, ", ");
}

absl::Status ValidateResources(absl::string_view field, const deja::v1::Resources& r) {
  auto past = [&](absl::string_view name, absl::string_view bound) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".", name, ": more than ", bound));
  };
  if (r.milli_cpus() > kMaxMilliCpus) return past("milli_cpus", absl::StrCat(kMaxMilliCpus));
  if (r.memory_bytes() > kMaxMemoryBytes) return past("memory_bytes", "1 PiB");
  if (r.gpus() > kMaxGpus) return past("gpus", absl::StrCat(kMaxGpus));
  if (r.time_limit_ms() > kMaxTimeLimitMs) return past("time_limit_ms", "366 days");
  return absl::OkStatus();
}

std::string Shortfall(const deja::v1::Resources& want, const deja::v1::Resources& have) {
  if (want.milli_cpus() > have.milli_cpus()) {
    return absl::StrCat("cpus ≥ ", FormatCpus(want.milli_cpus()));
  }
  if (want.memory_bytes() > have.memory_bytes()) {
    return absl::StrCat("memory ≥ ", FormatMemory(want.memory_bytes()));
  }
  if (want.gpus() > have.gpus()) return absl::StrCat("gpus ≥ ", want.gpus());
  return "";
}

deja::v1::Resources Remaining(const deja::v1::Resources& have, const deja::v1::Resources& used) {
  deja::v1::Resources left;
  left.set_milli_cpus(have.milli_cpus() > used.milli_cpus() ? have.milli_cpus() - used.milli_cpus()
                                                            : 0);
  left.set_memory_bytes(
      have.memory_bytes() > used.memory_bytes() ? have.memory_bytes() - used.memory_bytes() : 0);
  left.set_gpus(have.gpus() > used.gpus() ? have.gpus() - used.gpus() : 0);
  return left;
}

void AddUse(const deja::v1::Resources& job, int sign, deja::v1::Resources* total) {
  total->set_milli_cpus(total->milli_cpus() + sign * static_cast<int64_t>(job.milli_cpus()));
  total->set_memory_bytes(total->memory_bytes() + sign * static_cast<int64_t>(job.memory_bytes()));
  total->set_gpus(total->gpus() + sign * static_cast<int64_t>(job.gpus()));
}

}  // namespace deja
