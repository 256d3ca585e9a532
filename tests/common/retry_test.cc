// RetryTransient with a fake clock: no test here sleeps.
#include "common/retry.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace deja {
namespace {

using ::testing::HasSubstr;

class RetryTest : public ::testing::Test {
 protected:
  RetryTest() {
    policy_.give_up_after = absl::Minutes(1);
    policy_.sleep = [this](absl::Duration d) {
      delays_.push_back(d);
      clock_.Advance(d);
      return !stop_;
    };
  }
  // An attempt that fails with each of `failures` in turn, then succeeds.
  std::function<absl::Status()> FailingWith(const std::vector<absl::Status>& failures) {
    return [this, failures] {
      ++attempts_;
      return attempts_ <= static_cast<int>(failures.size()) ? failures[attempts_ - 1]
                                                            : absl::OkStatus();
    };
  }

  FakeClock clock_;
  RetryPolicy policy_;
  std::vector<absl::Duration> delays_;
  int attempts_ = 0;
  bool stop_ = false;
};

TEST_F(RetryTest, TransientFailuresAreWaitedOutWithGrowingJitteredBackoff) {
  const absl::Status down = absl::UnavailableError("connection refused");
  EXPECT_TRUE(RetryTransient(policy_, &clock_, FailingWith({down, down, down, down})).ok());
  EXPECT_EQ(attempts_, 5);
  ASSERT_EQ(delays_.size(), 4u);
  absl::Duration nominal = policy_.initial_backoff;
  for (absl::Duration d : delays_) {
    EXPECT_GE(d, nominal / 2);
    EXPECT_LE(d, nominal);
    nominal *= 2;
  }
}

TEST_F(RetryTest, TheBackoffStopsGrowingAtItsMaximum) {
  std::vector<absl::Status> failures(12, absl::DeadlineExceededError("slow"));
  EXPECT_TRUE(RetryTransient(policy_, &clock_, FailingWith(failures)).ok());
  for (absl::Duration d : delays_) EXPECT_LE(d, policy_.max_backoff);
  EXPECT_GE(delays_.back(), policy_.max_backoff / 2);
}

TEST_F(RetryTest, ARealRefusalIsReturnedAtOnce) {
  for (const absl::Status& refusal :
       {absl::InvalidArgumentError("bad digest"), absl::NotFoundError("no blob"),
        absl::DataLossError("short"), absl::PermissionDeniedError("no"),
        absl::InternalError("write: No space left on device")}) {
    attempts_ = 0;
    delays_.clear();
    EXPECT_EQ(RetryTransient(policy_, &clock_, FailingWith({refusal})), refusal);
    EXPECT_EQ(attempts_, 1);
    EXPECT_TRUE(delays_.empty());
  }
}

TEST_F(RetryTest, GivesUpAtTheDeadlineAndSaysSo) {
  const absl::Status status = RetryTransient(policy_, &clock_, [this] {
    ++attempts_;
    return absl::UnavailableError("connection refused");
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("connection refused (gave up after "));
  EXPECT_THAT(status.message(), HasSubstr(absl::StrCat(attempts_, " attempts)")));
  EXPECT_LE(clock_.Now() - absl::FromUnixSeconds(1'700'000'000), policy_.give_up_after);
  EXPECT_GT(attempts_, 10);
}

TEST_F(RetryTest, StopsWhenTheSleepSaysTheDaemonIsStopping) {
  stop_ = true;
  const absl::Status status =
      RetryTransient(policy_, &clock_, FailingWith({absl::UnavailableError("down")}));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("(gave up after "));
  EXPECT_EQ(attempts_, 1);
}

TEST_F(RetryTest, APolicyOfOneAttemptReturnsTheFailureAsItIs) {
  RetryPolicy once;
  const absl::Status down = absl::UnavailableError("down");
  EXPECT_EQ(RetryTransient(once, &clock_, FailingWith({down})), down);
  EXPECT_EQ(attempts_, 1);
}

TEST_F(RetryTest, EachRetryIsReported) {
  std::vector<int> reported;
  policy_.on_retry = [&](const absl::Status& s, int attempt, absl::Duration) {
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
    reported.push_back(attempt);
  };
  const absl::Status down = absl::UnavailableError("down");
  ASSERT_TRUE(RetryTransient(policy_, &clock_, FailingWith({down, down})).ok());
  EXPECT_EQ(reported, (std::vector<int>{1, 2}));
}

}  // namespace
}  // namespace deja
