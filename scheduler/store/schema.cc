#include "scheduler/store/schema.h"

namespace deja::schema {

const std::vector<std::string>& ColumnFamilyNames() {
  static const auto* names = new std::vector<std::string>{
      "default",  "jobs",   "memo",  "settings", "blobs",        "pipelines",
      "requests", "tokens", "audit", "workers",  "blob_projects"};
  return *names;
}

std::string JobKey(uint64_t seq) {
  std::string key(8, '\0');
  for (int i = 0; i < 8; ++i) key[i] = static_cast<char>((seq >> (8 * (7 - i))) & 0xff);
  return key;
}

uint64_t SeqFromKey(const std::string& key) {
  if (key.size() != 8) return 0;
  uint64_t seq = 0;
  for (unsigned char c : key) seq = (seq << 8) | c;
  return seq;
}

}  // namespace deja::schema
