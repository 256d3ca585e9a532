#include "common/job_identity.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "common/hash.h"

namespace deja {
namespace {

// Every integer is 8 bytes little-endian; every string is its length then
// its bytes.
void PutU64(uint64_t value, std::string* out) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void PutString(std::string_view value, std::string* out) {
  PutU64(value.size(), out);
  out->append(value);
}

template <typename Map>
void PutMap(const Map& map, std::string* out) {
  std::map<std::string, std::string> sorted(map.begin(), map.end());
  PutU64(sorted.size(), out);
  for (const auto& [key, value] : sorted) {
    PutString(key, out);
    PutString(value, out);
  }
}

}  // namespace

std::string CanonicalJobEncoding(const deja::v1::JobSpec& spec) {
  const deja::v1::AppSpec& app = spec.app();
  std::string out;
  PutString(kJobIdentityTag, &out);
  PutString(app.name(), &out);
  PutString(app.version(), &out);
  PutU64(app.command_size(), &out);
  for (const std::string& arg : app.command()) PutString(arg, &out);
  PutMap(app.env(), &out);
  PutString(app.image(), &out);
  PutMap(app.platform(), &out);

  // Params: all of them, or only those the app's cache_key names.
  std::map<std::string, std::string> params(spec.params().begin(), spec.params().end());
  if (app.cache_key_size() > 0) {
    std::set<std::string> keep(app.cache_key().begin(), app.cache_key().end());
    std::erase_if(params, [&](const auto& kv) { return !keep.contains(kv.first); });
  }
  PutMap(params, &out);

  std::vector<const deja::v1::InputRef*> inputs;
  for (const auto& input : spec.inputs()) inputs.push_back(&input);
  std::sort(inputs.begin(), inputs.end(),
            [](const auto* a, const auto* b) { return a->name() < b->name(); });
  PutU64(inputs.size(), &out);
  for (const auto* input : inputs) {
    PutString(input->name(), &out);
    PutString(input->kind(), &out);
    PutString(input->digest(), &out);
    PutString(input->path().empty() ? "inputs/" + input->name() : input->path(), &out);
  }

  std::vector<std::string> outputs(spec.outputs().begin(), spec.outputs().end());
  std::sort(outputs.begin(), outputs.end());
  PutU64(outputs.size(), &out);
  for (const std::string& glob : outputs) PutString(glob, &out);
  // Appended only when set, so the identity of a job without a pinned image
  // is what it always was.
  if (!app.image_id().empty()) {
    PutString("image_id", &out);
    PutString(app.image_id(), &out);
  }
  return out;
}

std::string JobHash(const deja::v1::JobSpec& spec) { return HashBytes(CanonicalJobEncoding(spec)); }

}  // namespace deja
