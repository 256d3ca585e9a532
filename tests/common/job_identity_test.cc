#include "common/job_identity.h"

#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/common/vectors.h"

namespace deja {
namespace {

using deja::v1::JobSpec;

std::string Hex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

// The vectors of docs/job-identity.md. If one of these changes, the encoding
// changed: that breaks every memo index, so bump the domain tag instead.
TEST(JobIdentityTest, Vector1Minimal) {
  JobSpec spec = testing::MinimalSpec();
  EXPECT_EQ(Hex(CanonicalJobEncoding(spec)),
            "0b0000000000000064656a612e6a6f622e763104000000000000006563686f000000000000000002000000"
            "0000000004000000000000006563686f020000000000000068690000000000000000000000000000000000"
            "00000000000000000000000000000000000000000000000000000000000000");
  EXPECT_EQ(JobHash(spec), "88a4775899d16b8582a1ae81e2e0d230");
}

TEST(JobIdentityTest, Vector2EveryField) {
  JobSpec spec = testing::FullSpec();
  EXPECT_EQ(
      Hex(CanonicalJobEncoding(spec)),
      "0b0000000000000064656a612e6a6f622e76310500000000000000747261696e0300000000000000322e31040000"
      "00000000000700000000000000707974686f6e330800000000000000747261696e2e707904000000000000002d2d"
      "6c720c00000000000000247b706172616d732e6c727d020000000000000001000000000000004101000000000000"
      "0031010000000000000042010000000000000032090000000000000064656269616e3a3132010000000000000004"
      "000000000000006172636806000000000000007838365f36340200000000000000060000000000000065706f6368"
      "7301000000000000003302000000000000006c720300000000000000302e31010000000000000004000000000000"
      "00646174610300000000000000646972200000000000000030313233343536373839616263646566303132333435"
      "363738396162636465660b00000000000000696e707574732f6461746102000000000000000c000000000000006d"
      "6574726963732e6a736f6e0b000000000000006d6f64656c2f2a2e62696e");
  EXPECT_EQ(JobHash(spec), "dedb06d71d69d431290d14f1b587473b");
}

TEST(JobIdentityTest, Vector3CacheKey) {
  EXPECT_EQ(JobHash(testing::CacheKeySpec()), "4e26d563c93dcd6b29fe1e476db4fa6f");
  // Only the listed params count.
  JobSpec other = testing::CacheKeySpec();
  (*other.mutable_params())["epochs"] = "300";
  EXPECT_EQ(JobHash(other), JobHash(testing::CacheKeySpec()));
  (*other.mutable_params())["lr"] = "0.2";
  EXPECT_NE(JobHash(other), JobHash(testing::CacheKeySpec()));
}

TEST(JobIdentityTest, Vector4PinnedImage) {
  JobSpec spec = testing::PinnedImageSpec();
  const std::string full = Hex(CanonicalJobEncoding(testing::FullSpec()));
  const std::string pinned = Hex(CanonicalJobEncoding(spec));
  // Vector 2's bytes, then str("image_id") str(app.image_id).
  ASSERT_EQ(pinned.substr(0, full.size()), full);
  EXPECT_EQ(pinned.substr(full.size()),
            "0800000000000000696d6167655f69644700000000000000736861323536"
            "3a3366613338306163346237356565633132356366613332393638326665"
            "633865393564316365376539613732613263373765373762353038663961"
            "3534303132");
  EXPECT_EQ(JobHash(spec), "368dfa273ef5e41a486773b525028555");
}

TEST(JobIdentityTest, HashIsHexOfXxh3_128) {
  EXPECT_EQ(JobHash(testing::MinimalSpec()).size(), 32u);
}

struct Mutation {
  std::string field;
  std::function<void(JobSpec*)> apply;
};

TEST(JobIdentityTest, EveryIdentityFieldChangesTheHash) {
  const std::vector<Mutation> mutations = {
      {"app.name", [](JobSpec* s) { s->mutable_app()->set_name("train2"); }},
      {"app.version", [](JobSpec* s) { s->mutable_app()->set_version("2.2"); }},
      {"app.command word", [](JobSpec* s) { s->mutable_app()->set_command(1, "other.py"); }},
      {"app.command length", [](JobSpec* s) { s->mutable_app()->add_command("--x"); }},
      {"app.env value", [](JobSpec* s) { (*s->mutable_app()->mutable_env())["A"] = "9"; }},
      {"app.env key", [](JobSpec* s) { (*s->mutable_app()->mutable_env())["C"] = "1"; }},
      {"app.image", [](JobSpec* s) { s->mutable_app()->set_image("debian:13"); }},
      {"app.platform", [](JobSpec* s) { (*s->mutable_app()->mutable_platform())["gpu"] = "1"; }},
      {"app.image_id", [](JobSpec* s) { s->mutable_app()->set_image_id(testing::kImageId); }},
      {"params value", [](JobSpec* s) { (*s->mutable_params())["lr"] = "0.2"; }},
      {"params key", [](JobSpec* s) { (*s->mutable_params())["seed"] = "1"; }},
      {"input name", [](JobSpec* s) { s->mutable_inputs(0)->set_name("data2"); }},
      {"input kind", [](JobSpec* s) { s->mutable_inputs(0)->set_kind("file"); }},
      {"input digest",
       [](JobSpec* s) { s->mutable_inputs(0)->set_digest("ffffffffffffffffffffffffffffffff"); }},
      {"input path", [](JobSpec* s) { s->mutable_inputs(0)->set_path("data"); }},
      {"outputs", [](JobSpec* s) { s->add_outputs("extra.txt"); }},
      {"output glob", [](JobSpec* s) { s->set_outputs(0, "model/*.pt"); }},
  };
  const std::string base = JobHash(testing::FullSpec());
  for (const auto& m : mutations) {
    JobSpec spec = testing::FullSpec();
    m.apply(&spec);
    EXPECT_NE(JobHash(spec), base) << m.field << " must be part of the job identity";
  }
}

TEST(JobIdentityTest, NonIdentityFieldsDoNotChangeTheHash) {
  const std::vector<Mutation> mutations = {
      {"project", [](JobSpec* s) { s->set_project("other"); }},
      {"labels", [](JobSpec* s) { (*s->mutable_labels())["owner"] = "ana"; }},
      {"request_id", [](JobSpec* s) { s->set_request_id("r-123"); }},
      {"memoization", [](JobSpec* s) { s->set_memoization(deja::v1::MEMOIZATION_OFF); }},
      {"force", [](JobSpec* s) { s->set_force(true); }},
      {"reuse_job_id", [](JobSpec* s) { s->set_reuse_job_id("j1"); }},
      {"app.reuse", [](JobSpec* s) { s->mutable_app()->set_reuse(false); }},
      {"app.side_effects", [](JobSpec* s) { s->mutable_app()->set_side_effects(true); }},
      {"resources",
       [](JobSpec* s) {
         s->mutable_resources()->set_memory_bytes(uint64_t{4} << 30);
         s->mutable_resources()->set_milli_cpus(2000);
         s->mutable_resources()->set_gpus(1);
         s->mutable_resources()->set_time_limit_ms(7'200'000);
       }},
      {"network", [](JobSpec* s) { s->set_network(true); }},
      {"fail_unplaceable", [](JobSpec* s) { s->set_fail_unplaceable(true); }},
      {"map insertion order",
       [](JobSpec* s) {
         s->mutable_app()->mutable_env()->clear();
         (*s->mutable_app()->mutable_env())["A"] = "1";
         (*s->mutable_app()->mutable_env())["B"] = "2";
       }},
      {"output order", [](JobSpec* s) { s->mutable_outputs()->SwapElements(0, 1); }},
      {"default input path", [](JobSpec* s) { s->mutable_inputs(0)->set_path("inputs/data"); }},
  };
  const std::string base = JobHash(testing::FullSpec());
  for (const auto& m : mutations) {
    JobSpec spec = testing::FullSpec();
    m.apply(&spec);
    EXPECT_EQ(JobHash(spec), base) << m.field << " must not be part of the job identity";
  }
}

TEST(JobIdentityTest, LengthPrefixesKeepFieldsApart) {
  JobSpec a = testing::MinimalSpec();
  JobSpec b = testing::MinimalSpec();
  a.mutable_app()->set_command(1, "ab");
  a.mutable_app()->add_command("c");
  b.mutable_app()->set_command(1, "a");
  b.mutable_app()->add_command("bc");
  EXPECT_NE(JobHash(a), JobHash(b));
}

}  // namespace
}  // namespace deja
