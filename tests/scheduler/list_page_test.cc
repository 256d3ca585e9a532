#include "scheduler/core/list_page.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "deja/v1/job.pb.h"
#include "gtest/gtest.h"

namespace deja {
namespace {

// A record of about `bytes` serialized bytes whose key is its creation time.
deja::v1::MemoEntry Entry(int64_t created, size_t bytes) {
  deja::v1::MemoEntry entry;
  entry.set_created_at_ms(created);
  entry.set_app_name(std::string(bytes, 'a'));
  return entry;
}

std::string Key(const deja::v1::MemoEntry& e) {
  return absl::StrFormat("%020d", e.created_at_ms());
}

std::string Times(const std::vector<deja::v1::MemoEntry>& page) {
  std::string out;
  for (const auto& e : page) out += absl::StrCat(e.created_at_ms(), " ");
  return out;
}

TEST(NewestPageTest, PagesGoFromTheNewestBackBoundedByBytesAndCount) {
  std::vector<deja::v1::MemoEntry> all;
  for (int t = 1; t <= 5; ++t) all.push_back(Entry(t, 1000));
  auto page = NewestPage(all, Key, "", 0, 2100);
  EXPECT_EQ(Times(page.items), "4 5 ");
  EXPECT_EQ(page.next, Key(all[3]));
  page = NewestPage(all, Key, page.next, 0, 2100);
  EXPECT_EQ(Times(page.items), "2 3 ");
  page = NewestPage(all, Key, page.next, 0, 2100);
  EXPECT_EQ(Times(page.items), "1 ");
  EXPECT_EQ(page.next, "") << "the last page";
  page = NewestPage(all, Key, "", 3, 0);
  EXPECT_EQ(Times(page.items), "3 4 5 ");
  EXPECT_EQ(page.next, "") << "a limit ends the list, not a page";
  page = NewestPage(all, Key, "", 0, 10);
  EXPECT_EQ(Times(page.items), "5 ") << "one record larger than the bound still comes, alone";
  EXPECT_EQ(page.next, Key(all[4]));
  EXPECT_EQ(Times(NewestPage(std::vector<deja::v1::MemoEntry>{}, Key, "", 0, 10).items), "");
}

}  // namespace
}  // namespace deja
