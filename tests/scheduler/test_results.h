// What the scheduler's unit tests put in a fake worker's JobResult: the
// manifest ref a real worker reports with every finished attempt (it
// uploaded the manifest first; a fake BlobIndex that lists blobs must list
// kTestManifestDigest too).
#ifndef DEJA_TESTS_SCHEDULER_TEST_RESULTS_H_
#define DEJA_TESTS_SCHEDULER_TEST_RESULTS_H_

#include "deja/v1/worker.pb.h"

namespace deja::testing {

inline constexpr char kTestManifestDigest[] = "feedfacefeedfacefeedfacefeedface";

// A one-file manifest ("logs/stdout", 2 bytes).
inline void AddTestManifest(deja::v1::JobResult* result) {
  deja::v1::ManifestRef* ref = result->mutable_manifest();
  ref->set_digest(kTestManifestDigest);
  ref->set_size(20);
  ref->set_files(1);
  ref->set_bytes(2);
}

}  // namespace deja::testing

#endif  // DEJA_TESTS_SCHEDULER_TEST_RESULTS_H_
