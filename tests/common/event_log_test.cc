#include "common/event_log.h"

#include <nlohmann/json.hpp>

#include "common/job_state.h"
#include "common/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace deja {
namespace {

using ::testing::HasSubstr;

const absl::Time kTime = absl::FromUnixMillis(1796420415123);  // 2026-12-04T21:40:15.123Z

TEST(EventLogTest, TextLinesStartWithAnRfc3339UtcTime) {
  EXPECT_EQ(FormatLogLine(LogFormat::kText, kTime, "deja-scheduler", "job j12 finished",
                          {{"state", "FAILED"},
                           {"why", "command killed by signal 9 (SIGKILL)"},
                           {"note", ""},
                           {"path", "a=b\n"}}),
            "2026-12-04T21:40:15.123Z deja-scheduler: job j12 finished state=FAILED "
            "why=\"command killed by signal 9 (SIGKILL)\" note=\"\" path=\"a=b\\n\"");
}

TEST(EventLogTest, JsonLinesHoldTheKeysThenTheFields) {
  const std::string line =
      FormatLogLine(LogFormat::kJson, kTime, "deja-worker", "job j3 started \"x\"",
                    {{"worker", "w1"}}, {{"job", "j3"}, {"event", "started"}});
  EXPECT_EQ(line,
            R"({"time":"2026-12-04T21:40:15.123Z","daemon":"deja-worker","msg":"job j3 started )"
            R"(\"x\"","job":"j3","event":"started","worker":"w1"})");
  // Bytes that are not UTF-8 (a file name) are replaced, not thrown on.
  const std::string odd = FormatLogLine(LogFormat::kJson, kTime, "d", "bad \xff byte", {});
  EXPECT_TRUE(nlohmann::json::parse(odd, nullptr, false).is_object()) << odd;
}

TEST(EventLogTest, ParsesItsFormats) {
  EXPECT_EQ(ParseLogFormat("text"), LogFormat::kText);
  EXPECT_EQ(ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_EQ(ParseLogFormat("JSON"), std::nullopt);
  EXPECT_EQ(ParseLogFormat(""), std::nullopt);
}

TEST(ExitTest, SignalDeathsAreNamed) {
  EXPECT_EQ(DescribeExit(3), "exited with code 3");
  EXPECT_EQ(DescribeExit(-9), "killed by signal 9 (SIGKILL)");
  EXPECT_EQ(ShortExit(0), "exit 0");
  EXPECT_EQ(ShortExit(-15), "killed by signal 15 (SIGTERM)");
  EXPECT_EQ(ShortExit(-200), "killed by signal 200");
}

TEST(MetricsTest, RendersTheExpositionFormat) {
  Metrics metrics;
  metrics.Declare("b_total", Metrics::Type::kCounter, "Things\\done.\nTwice.", {"project"});
  metrics.Declare("a_seconds", Metrics::Type::kHistogram, "Latency.", {}, {0.1, 1});
  metrics.Declare("c", Metrics::Type::kGauge, "Level.");
  metrics.Add("b_total", {"p\"1\\"});
  metrics.Add("b_total", {"p\"1\\"}, 2);
  metrics.Add("b_total", {"a"}, 0.5);
  metrics.Observe("a_seconds", {}, 0.05);
  metrics.Observe("a_seconds", {}, 0.1);
  metrics.Observe("a_seconds", {}, 7);
  int collected = 0;
  metrics.AddCollector([&collected](Metrics& m) { m.Set("c", {}, ++collected); });
  metrics.Render();
  EXPECT_EQ(metrics.Render(),
            "# HELP a_seconds Latency.\n"
            "# TYPE a_seconds histogram\n"
            "a_seconds_bucket{le=\"0.1\"} 2\n"
            "a_seconds_bucket{le=\"1\"} 2\n"
            "a_seconds_bucket{le=\"+Inf\"} 3\n"
            "a_seconds_sum 7.15\n"
            "a_seconds_count 3\n"
            "# HELP b_total Things\\\\done.\\nTwice.\n"
            "# TYPE b_total counter\n"
            "b_total{project=\"a\"} 0.5\n"
            "b_total{project=\"p\\\"1\\\\\"} 3\n"
            "# HELP c Level.\n"
            "# TYPE c gauge\n"
            "c 2\n");
}

TEST(MetricsTest, ClearDropsTheSeriesOfAGauge) {
  Metrics metrics;
  metrics.Declare("free", Metrics::Type::kGauge, "Free.", {"worker"});
  metrics.Set("free", {"w1"}, 1);
  metrics.Clear("free");
  metrics.Set("free", {"w2"}, 2);
  EXPECT_THAT(metrics.Render(), HasSubstr("free{worker=\"w2\"} 2\n"));
  EXPECT_THAT(metrics.Render(), ::testing::Not(HasSubstr("w1")));
}

TEST(MetricsDeathTest, MisuseIsABug) {
  Metrics metrics;
  metrics.Declare("g", Metrics::Type::kGauge, "G.", {"a"});
  EXPECT_DEATH(metrics.Add("g", {"x"}), "is a gauge");
  EXPECT_DEATH(metrics.Set("g", {}, 1), "takes 1 labels");
  EXPECT_DEATH(metrics.Set("h", {}, 1), "not declared");
}

}  // namespace
}  // namespace deja
