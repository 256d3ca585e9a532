#include "scheduler/core/explain.h"

#include <map>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace deja {
namespace {

using Map = std::map<std::string, std::string>;

void Compare(const std::string& field, const std::string& a, const std::string& b,
             std::vector<deja::v1::FieldDiff>* out) {
  if (a == b) return;
  deja::v1::FieldDiff diff;
  diff.set_field(field);
  diff.set_job_value(a);
  diff.set_entry_value(b);
  out->push_back(std::move(diff));
}

void CompareMaps(const std::string& field, const Map& a, const Map& b,
                 std::vector<deja::v1::FieldDiff>* out) {
  std::set<std::string> keys;
  for (const auto& [k, v] : a) keys.insert(k);
  for (const auto& [k, v] : b) keys.insert(k);
  for (const auto& key : keys) {
    auto x = a.find(key);
    auto y = b.find(key);
    std::string av = x == a.end() ? "" : x->second;
    std::string bv = y == b.end() ? "" : y->second;
    if (x == a.end() || y == b.end() || av != bv) {
      deja::v1::FieldDiff diff;
      diff.set_field(absl::StrCat(field, "[", key, "]"));
      diff.set_job_value(x == a.end() ? "(absent)" : av);
      diff.set_entry_value(y == b.end() ? "(absent)" : bv);
      out->push_back(std::move(diff));
    }
  }
}

// The params that enter the hash.
Map HashedParams(const deja::v1::JobSpec& spec) {
  Map params(spec.params().begin(), spec.params().end());
  if (spec.app().cache_key_size() > 0) {
    std::set<std::string> keep(spec.app().cache_key().begin(), spec.app().cache_key().end());
    std::erase_if(params, [&](const auto& kv) { return !keep.contains(kv.first); });
  }
  return params;
}

std::string Quoted(const google::protobuf::RepeatedPtrField<std::string>& words) {
  std::vector<std::string> out;
  for (const auto& w : words) out.push_back(w.find(' ') == std::string::npos ? w : "'" + w + "'");
  return absl::StrJoin(out, " ");
}

}  // namespace

std::vector<deja::v1::FieldDiff> IdentityDiff(const deja::v1::JobSpec& job,
                                              const deja::v1::JobSpec& entry_job) {
  std::vector<deja::v1::FieldDiff> out;
  const auto& a = job.app();
  const auto& b = entry_job.app();
  Compare("app.name", a.name(), b.name(), &out);
  Compare("app.version", a.version(), b.version(), &out);
  Compare("app.command", Quoted(a.command()), Quoted(b.command()), &out);
  CompareMaps("app.env", Map(a.env().begin(), a.env().end()), Map(b.env().begin(), b.env().end()),
              &out);
  Compare("app.image", a.image(), b.image(), &out);
  CompareMaps("app.platform", Map(a.platform().begin(), a.platform().end()),
              Map(b.platform().begin(), b.platform().end()), &out);
  CompareMaps("params", HashedParams(job), HashedParams(entry_job), &out);

  std::map<std::string, const deja::v1::InputRef*> ai, bi;
  for (const auto& in : job.inputs()) ai[in.name()] = &in;
  for (const auto& in : entry_job.inputs()) bi[in.name()] = &in;
  std::set<std::string> names;
  for (const auto& [n, p] : ai) names.insert(n);
  for (const auto& [n, p] : bi) names.insert(n);
  for (const auto& name : names) {
    const std::string field = absl::StrCat("inputs[", name, "]");
    auto x = ai.find(name);
    auto y = bi.find(name);
    if (x == ai.end() || y == bi.end()) {
      Compare(field, x == ai.end() ? "(absent)" : x->second->digest(),
              y == bi.end() ? "(absent)" : y->second->digest(), &out);
      continue;
    }
    auto path = [&](const deja::v1::InputRef* in) {
      return in->path().empty() ? "inputs/" + in->name() : in->path();
    };
    Compare(field + ".digest", x->second->digest(), y->second->digest(), &out);
    Compare(field + ".kind", x->second->kind(), y->second->kind(), &out);
    Compare(field + ".path", path(x->second), path(y->second), &out);
  }
  std::set<std::string> ao(job.outputs().begin(), job.outputs().end());
  std::set<std::string> bo(entry_job.outputs().begin(), entry_job.outputs().end());
  Compare("outputs", absl::StrJoin(ao, " "), absl::StrJoin(bo, " "), &out);
  return out;
}

}  // namespace deja
