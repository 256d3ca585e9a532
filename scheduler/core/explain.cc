#include "scheduler/core/explain.h"

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/job_state.h"

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
  Compare("app.image_id", a.image_id(), b.image_id(), &out);
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

absl::StatusOr<deja::v1::ExplainResponse> ExplainJob(const std::string& job_id,
                                                     const MemoIndex& memo, const JobTable& jobs) {
  absl::StatusOr<deja::v1::Job> read = jobs.Get(job_id);
  if (!read.ok()) return read.status();
  const deja::v1::Job& job = *read;
  deja::v1::ExplainResponse out;
  out.set_job_id(job_id);
  auto verdict = [&](deja::v1::ExplainResponse::Verdict v, std::string summary) {
    out.set_verdict(v);
    out.set_summary(std::move(summary));
    return out;
  };
  if (!job.reused_from().empty()) {
    if (job.state() == deja::v1::SUCCEEDED) {
      return verdict(deja::v1::ExplainResponse::REUSED,
                     absl::StrCat("reused from ", job.reused_from(), ", saving ",
                                  absl::FormatDuration(absl::Milliseconds(job.time_saved_ms())),
                                  job.spec().reuse_job_id().empty() ? " (same job hash)"
                                                                    : " (named with --reuse)"));
    }
    return verdict(deja::v1::ExplainResponse::PENDING,
                   absl::StrCat("to be reused from ", job.reused_from(), " (",
                                std::string(JobStateName(job.state())), ")"));
  }
  if (job.state() == deja::v1::WAITING) {
    return verdict(deja::v1::ExplainResponse::WAITED,
                   absl::StrCat("waiting for the identical job ", job.waiting_for(),
                                ", which is in flight; reused when it succeeds"));
  }
  if (!job.memoization_off_reason().empty()) {
    return verdict(deja::v1::ExplainResponse::MEMOIZATION_OFF,
                   absl::StrCat("memoization was off: ", job.memoization_off_reason()));
  }
  if (job.spec().force()) {
    return verdict(deja::v1::ExplainResponse::FORCED,
                   "--force: ran fresh on purpose; its success replaces the memo entry");
  }
  if (absl::StartsWith(job.message(), "not reused:") ||
      absl::StartsWith(job.message(), "memo entry from") ||
      absl::StartsWith(job.message(), "the identical job")) {
    return verdict(deja::v1::ExplainResponse::ENTRY_UNUSABLE, job.message());
  }
  // No entry had its hash: compare with the nearest entry of the same app.
  std::optional<deja::v1::MemoEntry> nearest;
  std::vector<deja::v1::FieldDiff> best;
  absl::Status scanned = memo.ForEach([&](const deja::v1::MemoEntry& entry) {
    if (entry.project() != job.spec().project() || entry.app_name() != job.spec().app().name() ||
        entry.source_job_id() == job_id) {
      return;
    }
    absl::StatusOr<deja::v1::Job> src = jobs.Get(entry.source_job_id());
    if (!src.ok()) return;
    std::vector<deja::v1::FieldDiff> diff = IdentityDiff(job.spec(), src->spec());
    if (!nearest.has_value() || diff.size() < best.size() ||
        (diff.size() == best.size() && entry.created_at_ms() > nearest->created_at_ms())) {
      nearest = entry;
      best = std::move(diff);
    }
  });
  if (!scanned.ok()) return scanned;
  if (!nearest.has_value()) {
    return verdict(deja::v1::ExplainResponse::NO_MATCHING_ENTRY,
                   absl::StrCat("no other success of app ", job.spec().app().name(),
                                " is in the memo index of project ", job.spec().project()));
  }
  *out.mutable_nearest() = *nearest;
  std::vector<std::string> fields;
  for (auto& d : best) {
    fields.push_back(d.field());
    *out.add_differences() = std::move(d);
  }
  std::string summary =
      best.empty()
          ? absl::StrCat("the nearest entry, from ", nearest->source_job_id(),
                         ", has the same identity but did not exist when this job was submitted")
          : absl::StrCat("no memo entry has its hash; the nearest, from ", nearest->source_job_id(),
                         ", differs in ", best.size(),
                         best.size() == 1 ? " field: " : " fields: ", absl::StrJoin(fields, ", "));
  return verdict(deja::v1::ExplainResponse::NO_MATCHING_ENTRY, summary);
}

}  // namespace deja
