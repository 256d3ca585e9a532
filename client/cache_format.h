// What the memoization commands print (`deja project|cache|explain|stats`):
// project settings, memo entries, the explanation of a reuse decision, and
// the per-app statistics. docs/memoization.md shows each.
//
// Pure functions of their arguments; thread-safe.
#ifndef DEJA_CLIENT_CACHE_FORMAT_H_
#define DEJA_CLIENT_CACHE_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "deja/v1/job.pb.h"
#include "deja/v1/scheduler.pb.h"

namespace deja::cli {

// `deja project get|set`: project, memoization (on/off), retention ("24h"),
// updated (when set).
std::vector<std::pair<std::string, std::string>> ProjectRows(
    const deja::v1::ProjectSettings& settings, absl::TimeZone tz);

// `deja cache ls` and `deja cache evict`: HASH (first 12 hex) PROJECT APP
// SOURCE-JOB SIZE CREATED EXPIRES ("never" for 0).
std::string MemoTable(const std::vector<deja::v1::MemoEntry>& entries, absl::TimeZone tz);
// `deja cache show`: hash, project, app, source job, worker, run time,
// created, expires, files; then OutputsTable-like OUTPUT SIZE DIGEST rows
// (see MemoOutputsTable).
std::vector<std::pair<std::string, std::string>> MemoRows(const deja::v1::MemoEntry& entry,
                                                          absl::TimeZone tz);
std::string MemoOutputsTable(const deja::v1::MemoEntry& entry);
// `deja cache evict`: "evicted 3 entries" ("evicted 1 entry"), and
// " (the newest 900 shown)" when the response listed fewer than `count`.
std::string FormatEvictLine(uint64_t count, size_t shown);

// `deja explain`: job, verdict, summary and, when the response has them, the
// nearest entry ("j12 (hash <full hash>)") and a FIELD THIS-JOB NEAREST-ENTRY
// table of the differences (long values shortened to 60 characters).
std::string ExplainText(const deja::v1::ExplainResponse& response);

// `deja stats`: APP JOBS SUCCEEDED FAILED REUSED REUSE-RATE RUN-TIME
// TIME-SAVED, one row per app and a "total" row. REUSE-RATE is a percentage
// with one decimal, "-" when nothing succeeded.
std::string StatsTable(const deja::v1::StatsResponse& stats);
// The line under it: "content store: 1204 blobs, 3.1 GiB (collected 17
// blobs, 120.0 MiB at 2024-05-01 14:00:00)", or "content store: not
// collected yet" before the scheduler's first collection.
std::string ContentStoreLine(const deja::v1::ContentStoreStats& stats, absl::TimeZone tz);

}  // namespace deja::cli

#endif  // DEJA_CLIENT_CACHE_FORMAT_H_
