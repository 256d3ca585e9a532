#include "common/resources.h"

#include "gtest/gtest.h"

namespace deja {
namespace {

TEST(ResourcesTest, ParsesCpus) {
  EXPECT_EQ(*ParseCpus("--cpus", "2"), 2000u);
  EXPECT_EQ(*ParseCpus("--cpus", "0.5"), 500u);
  EXPECT_EQ(*ParseCpus("--cpus", " 1.25 "), 1250u);
  EXPECT_EQ(ParseCpus("--cpus", "two").status().message(),
            "--cpus two: expected a number of CPUs (2, 0.5)");
  EXPECT_EQ(ParseCpus("--cpus", "0").status().message(), "--cpus 0: must be more than 0");
  EXPECT_EQ(ParseCpus("--cpus", "-1").status().message(), "--cpus -1: must be more than 0");
  EXPECT_EQ(ParseCpus("--cpus", "0.0001").status().message(),
            "--cpus 0.0001: less than a thousandth of a CPU");
  EXPECT_EQ(ParseCpus("--cpus", "nan").status().message(),
            "--cpus nan: expected a number of CPUs (2, 0.5)");
  EXPECT_EQ(ParseCpus("--cpus", "5000").status().message(), "--cpus 5000: more than 1024 CPUs");
  EXPECT_EQ(ParseCpus("", "x").status().message(), "\"x\": expected a number of CPUs (2, 0.5)");
}

TEST(ResourcesTest, ParsesMemoryInBinaryUnits) {
  EXPECT_EQ(*ParseMemory("--memory", "4GiB"), uint64_t{4} << 30);
  EXPECT_EQ(*ParseMemory("--memory", "4G"), uint64_t{4} << 30);
  EXPECT_EQ(*ParseMemory("--memory", "4g"), uint64_t{4} << 30);
  EXPECT_EQ(*ParseMemory("--memory", "4gb"), uint64_t{4} << 30);
  EXPECT_EQ(*ParseMemory("--memory", "512M"), uint64_t{512} << 20);
  EXPECT_EQ(*ParseMemory("--memory", "1.5GiB"), uint64_t{3} << 29);
  EXPECT_EQ(*ParseMemory("--memory", "100k"), 102400u);
  EXPECT_EQ(*ParseMemory("--memory", "1048576"), 1048576u);
  EXPECT_EQ(*ParseMemory("--memory", "2 TiB"), uint64_t{2} << 40);
  EXPECT_EQ(ParseMemory("--memory", "4XB").status().message(),
            "--memory 4XB: unknown unit; use B, KiB, MiB, GiB or TiB (K, M, G, T)");
  EXPECT_EQ(ParseMemory("--memory", "GiB").status().message(),
            "--memory GiB: expected a size (4GiB, 512M, 1048576)");
  EXPECT_EQ(ParseMemory("--memory", "0").status().message(), "--memory 0: must be at least 1 byte");
  EXPECT_EQ(ParseMemory("--memory", "2048T").status().message(), "--memory 2048T: more than 1 PiB");
}

TEST(ResourcesTest, ParsesTimeLimits) {
  EXPECT_EQ(*ParseTimeLimit("--time-limit", "2h"), 7'200'000u);
  EXPECT_EQ(*ParseTimeLimit("--time-limit", "1h30m"), 5'400'000u);
  EXPECT_EQ(*ParseTimeLimit("--time-limit", "500ms"), 500u);
  EXPECT_EQ(ParseTimeLimit("--time-limit", "2 hours").status().message(),
            "--time-limit 2 hours: expected a duration (2h, 90m, 1h30m, 45s)");
  EXPECT_EQ(ParseTimeLimit("--time-limit", "0s").status().message(),
            "--time-limit 0s: must be at least 1ms");
  EXPECT_EQ(ParseTimeLimit("--time-limit", "-5m").status().message(),
            "--time-limit -5m: must be at least 1ms");
  EXPECT_EQ(ParseTimeLimit("--time-limit", "9000h").status().message(),
            "--time-limit 9000h: more than 366 days");
  EXPECT_EQ(ParseTimeLimit("--time-limit", "inf").status().message(),
            "--time-limit inf: expected a duration (2h, 90m, 1h30m, 45s)");
}

TEST(ResourcesTest, FormatsWhatAPersonWouldType) {
  EXPECT_EQ(FormatCpus(2000), "2");
  EXPECT_EQ(FormatCpus(1500), "1.5");
  EXPECT_EQ(FormatCpus(1250), "1.25");
  EXPECT_EQ(FormatMemory(uint64_t{4} << 30), "4 GiB");
  EXPECT_EQ(FormatMemory(uint64_t{512} << 20), "512 MiB");
  EXPECT_EQ(FormatMemory(uint64_t{3} << 29), "1.5 GiB");
  EXPECT_EQ(FormatMemory(1000), "1000 B");
  EXPECT_EQ(FormatMemory((uint64_t{47} << 29) + 12345), "23.5 GiB");
  EXPECT_EQ(FormatMemory(0), "0 B");
  EXPECT_EQ(FormatTimeLimit(7'200'000), "2h");
  EXPECT_EQ(FormatTimeLimit(5'400'000), "1h30m");
  EXPECT_EQ(FormatTimeLimit(45'000), "45s");
  EXPECT_EQ(FormatTimeLimit(1'500), "1.5s");
  EXPECT_EQ(FormatTimeLimit(500), "500ms");
  // Each parses back to itself.
  for (uint64_t ms : {7'200'000u, 5'400'000u, 45'000u, 1'500u, 500u, 3'723'004u}) {
    EXPECT_EQ(*ParseTimeLimit("", FormatTimeLimit(ms)), ms) << FormatTimeLimit(ms);
  }
  deja::v1::Resources r;
  EXPECT_EQ(FormatResources(r), "");
  r.set_milli_cpus(2000);
  r.set_memory_bytes(uint64_t{4} << 30);
  r.set_gpus(1);
  r.set_time_limit_ms(7'200'000);
  EXPECT_EQ(FormatResources(r), "cpus 2, memory 4 GiB, gpus 1, time limit 2h");
}

TEST(ResourcesTest, ShortfallNamesTheFirstDimensionThatDoesNotFit) {
  deja::v1::Resources have;
  have.set_milli_cpus(2000);
  have.set_memory_bytes(uint64_t{8} << 30);
  deja::v1::Resources want;
  EXPECT_EQ(Shortfall(want, have), "") << "asking for nothing always fits";
  want.set_milli_cpus(2000);
  want.set_memory_bytes(uint64_t{8} << 30);
  EXPECT_EQ(Shortfall(want, have), "");
  want.set_gpus(1);
  EXPECT_EQ(Shortfall(want, have), "gpus ≥ 1");
  want.set_memory_bytes(uint64_t{16} << 30);
  EXPECT_EQ(Shortfall(want, have), "memory ≥ 16 GiB");
  want.set_milli_cpus(2500);
  EXPECT_EQ(Shortfall(want, have), "cpus ≥ 2.5");

  deja::v1::Resources used;
  AddUse(want, +1, &used);
  AddUse(want, +1, &used);
  AddUse(want, -1, &used);
  EXPECT_EQ(used.milli_cpus(), 2500u);
  EXPECT_EQ(Remaining(have, used).milli_cpus(), 0u) << "never below zero";
  EXPECT_EQ(Remaining(have, used).memory_bytes(), 0u);
}

TEST(ResourcesTest, ValidationNamesTheField) {
  deja::v1::Resources r;
  r.set_gpus(5000);
  EXPECT_EQ(ValidateResources("resources", r).message(), "resources.gpus: more than 1024");
  r.set_gpus(0);
  r.set_time_limit_ms(kMaxTimeLimitMs + 1);
  EXPECT_EQ(ValidateResources("resources", r).message(),
            "resources.time_limit_ms: more than 366 days");
}

}  // namespace
}  // namespace deja
