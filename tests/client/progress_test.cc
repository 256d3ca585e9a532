// The terminal progress bar: silent when disabled or for small transfers,
// throttled, and erased when done.
#include "client/progress.h"

#include <gtest/gtest.h>

#include <sstream>

#include "absl/strings/match.h"

namespace deja::cli {
namespace {

constexpr uint64_t kBig = 100 << 20;

TEST(ProgressTest, FormatsDoneTotalAndPercent) {
  EXPECT_EQ(FormatProgress("uploading", 5 << 20, 10 << 20),
            "uploading  5.0 MiB of 10.0 MiB  (50%)");
  EXPECT_EQ(FormatProgress("downloading", 0, 0), "downloading  0 B of 0 B  (100%)");
}

TEST(ProgressTest, SilentWhenDisabledOrSmall) {
  std::ostringstream out;
  {
    ProgressBar disabled(out, false, "uploading");
    disabled.Update(1, kBig);
    disabled.Update(kBig, kBig);
    ProgressBar small(out, true, "uploading");
    small.Update(1, kProgressMinBytes - 1);
    small.Update(kProgressMinBytes - 1, kProgressMinBytes - 1);
  }
  EXPECT_EQ(out.str(), "");
}

TEST(ProgressTest, ThrottledToTenPerSecondAndErased) {
  std::ostringstream out;
  FakeClock clock;
  {
    ProgressBar bar(out, true, "uploading", &clock);
    bar.Update(1 << 20, kBig);
    bar.Update(2 << 20, kBig);  // too soon: not drawn
    clock.Advance(kProgressInterval);
    bar.Update(3 << 20, kBig);
    bar.Update(kBig, kBig);  // the end is always drawn
  }
  std::string text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\r'), 3 + 2);  // 3 draws, 1 erase (\r...\r)
  EXPECT_TRUE(absl::StrContains(text, "\ruploading  1.0 MiB of 100.0 MiB  (1%)"));
  EXPECT_FALSE(absl::StrContains(text, "2.0 MiB of"));
  EXPECT_TRUE(absl::StrContains(text, "(100%)"));
  EXPECT_EQ(text.back(), '\r') << "ends by erasing its line";
}

TEST(ProgressTest, NotATerminal) {
  std::ostringstream out;
  EXPECT_FALSE(StderrIsTerminal(out));
}

}  // namespace
}  // namespace deja::cli
