// Job identity: the canonical byte encoding of the identity fields of a job
// spec and its XXH3-128 hash. The format is specified, with test vectors, in
// docs/job-identity.md; changing it is a breaking change that bumps the
// domain tag.
#ifndef DEJA_COMMON_JOB_IDENTITY_H_
#define DEJA_COMMON_JOB_IDENTITY_H_

#include <string>
#include <string_view>

#include "deja/v1/job.pb.h"

namespace deja {

inline constexpr std::string_view kJobIdentityTag = "deja.job.v1";

// The canonical encoding of `spec`'s identity fields. Deterministic: maps are
// sorted by key, inputs by name, output globs lexicographically. Never
// includes project, labels, request id or memo policy.
std::string CanonicalJobEncoding(const deja::v1::JobSpec& spec);

// Hex XXH3-128 of CanonicalJobEncoding(spec).
std::string JobHash(const deja::v1::JobSpec& spec);

}  // namespace deja

#endif  // DEJA_COMMON_JOB_IDENTITY_H_
