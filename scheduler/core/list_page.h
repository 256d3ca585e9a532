// One page of a list RPC (ListMemo, ListPipelines): the newest matches,
// bounded by a count and by bytes, so that no response exceeds the message
// size limit whatever the records hold.
#ifndef DEJA_SCHEDULER_CORE_LIST_PAGE_H_
#define DEJA_SCHEDULER_CORE_LIST_PAGE_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace deja {

// The most serialized records one list response holds: well under the
// 4 MiB a gRPC client receives by default, with room for one large record
// (a job spec is at most 1 MiB, its outputs list as much).
inline constexpr size_t kMaxListPageBytes = size_t{2} << 20;

template <typename T>
struct ListPage {
  std::vector<T> items;  // oldest first
  // The key of the oldest item when a match was left out for room (ask
  // again with it as `before`); empty on the last page.
  std::string next;
};

// `items` sorted by `key(item)` (a string; oldest first). Returns the newest
// `limit` (0: all) of those whose key sorts before `before` (empty: all), as
// many as fit in `max_bytes` of ByteSizeLong (0: no bound) but at least one.
template <typename T, typename KeyFn>
ListPage<T> NewestPage(std::vector<T> items, KeyFn key, const std::string& before, size_t limit,
                       size_t max_bytes) {
  ListPage<T> page;
  size_t end = items.size();
  if (!before.empty()) {
    while (end > 0 && !(key(items[end - 1]) < before)) --end;
  }
  size_t begin = end;
  size_t bytes = 0;
  while (begin > 0 && (limit == 0 || end - begin < limit)) {
    const size_t size = items[begin - 1].ByteSizeLong();
    if (max_bytes > 0 && begin < end && bytes + size > max_bytes) {
      page.next = key(items[begin]);
      break;
    }
    bytes += size;
    --begin;
  }
  page.items.assign(std::make_move_iterator(items.begin() + static_cast<std::ptrdiff_t>(begin)),
                    std::make_move_iterator(items.begin() + static_cast<std::ptrdiff_t>(end)));
  return page;
}

}  // namespace deja

#endif  // DEJA_SCHEDULER_CORE_LIST_PAGE_H_
