// The job-identity test vectors of docs/job-identity.md, as specs.
#ifndef DEJA_TESTS_COMMON_VECTORS_H_
#define DEJA_TESTS_COMMON_VECTORS_H_

#include "deja/v1/job.pb.h"

namespace deja::testing {

// Vector 1: the smallest job.
inline deja::v1::JobSpec MinimalSpec() {
  deja::v1::JobSpec spec;
  spec.set_project("default");
  spec.mutable_app()->set_name("echo");
  spec.mutable_app()->add_command("echo");
  spec.mutable_app()->add_command("hi");
  return spec;
}

// Vector 2: every identity field set.
inline deja::v1::JobSpec FullSpec() {
  deja::v1::JobSpec spec;
  spec.set_project("ml");
  auto* app = spec.mutable_app();
  app->set_name("train");
  app->set_version("2.1");
  for (const char* word : {"python3", "train.py", "--lr", "${params.lr}"}) app->add_command(word);
  (*app->mutable_env())["B"] = "2";
  (*app->mutable_env())["A"] = "1";
  app->set_image("debian:12");
  (*app->mutable_platform())["arch"] = "x86_64";
  (*spec.mutable_params())["lr"] = "0.1";
  (*spec.mutable_params())["epochs"] = "3";
  auto* data = spec.add_inputs();
  data->set_name("data");
  data->set_kind("dir");
  data->set_digest("0123456789abcdef0123456789abcdef");
  spec.add_outputs("model/*.bin");
  spec.add_outputs("metrics.json");
  return spec;
}

// Vector 3: vector 2 with cache_key [lr]: "epochs" leaves the hash.
inline deja::v1::JobSpec CacheKeySpec() {
  deja::v1::JobSpec spec = FullSpec();
  spec.mutable_app()->add_cache_key("lr");
  return spec;
}

// Vector 4: vector 2 pinned to an image ID (the scheduler sets app.image_id
// from a pushed image, docs/containers.md).
inline constexpr char kImageId[] =
    "sha256:3fa380ac4b75eec125cfa329682fec8e95d1ce7e9a72a2c77e77b508f9a54012";
inline deja::v1::JobSpec PinnedImageSpec() {
  deja::v1::JobSpec spec = FullSpec();
  spec.mutable_app()->set_image_id(kImageId);
  return spec;
}

}  // namespace deja::testing

#endif  // DEJA_TESTS_COMMON_VECTORS_H_
