#include "scheduler/service/dashboard.h"

#include <google/protobuf/util/json_util.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/http_endpoint.h"
#include "scheduler/core/list_page.h"

namespace deja {
namespace {

using deja::v1::Job;

constexpr absl::Duration kAnswerWithin = absl::Seconds(15);
constexpr size_t kDefaultJobs = 50;
constexpr size_t kMaxJobs = 500;
constexpr uint32_t kLogTail = 8192;
// The workspace files a job's page lists at most (`deja status --files`
// lists them all).
constexpr int kMaxFiles = 200;
// The jobs the time-saved chart reads at most (a day of a busy cluster).
constexpr size_t kMaxChartJobs = 200'000;

std::string Json(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

// {"key": <json>, ...} from already-encoded values.
std::string Object(const std::vector<std::pair<std::string, std::string>>& members) {
  std::string out = "{";
  for (const auto& [key, value] : members) {
    absl::StrAppend(&out, out.size() > 1 ? "," : "", "\"", key, "\":", value);
  }
  return out + "}";
}

template <typename Messages>
std::string Array(const Messages& items) {
  std::string out = "[";
  for (const auto& item : items) absl::StrAppend(&out, out.size() > 1 ? "," : "", Json(item));
  return out + "]";
}

// A JSON string literal (bytes that are not UTF-8, in a log, replaced).
std::string Quote(const std::string& text) {
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

int HttpStatusOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
      return 400;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

// The last kLogTail bytes of a log from the worker holding it, read on the
// loop: one request for the size, one for the tail. `done` gets "" when
// there is none to read.
void ReadTail(SchedulerLoop* loop, const std::string& worker, const std::string& job_id,
              deja::v1::LogStream stream, std::function<void(const std::string&)> done) {
  deja::v1::ReadLogsRequest sized;
  sized.set_job_id(job_id);
  sized.set_stream(stream);
  sized.set_limit(1);
  loop->RequestLogs(
      worker, sized,
      [loop, worker, job_id, stream, done = std::move(done)](
          const absl::Status& status, const deja::v1::ReadLogsResponse& first) mutable {
        if (!status.ok()) return done("");
        if (first.size() <= 1) return done(first.data());
        deja::v1::ReadLogsRequest tail;
        tail.set_job_id(job_id);
        tail.set_stream(stream);
        tail.set_offset(first.size() > kLogTail ? first.size() - kLogTail : 0);
        tail.set_limit(kLogTail);
        loop->RequestLogs(worker, tail,
                          [done = std::move(done)](const absl::Status& s,
                                                   const deja::v1::ReadLogsResponse& read) mutable {
                            done(s.ok() ? read.data() : std::string());
                          });
      });
}

}  // namespace

absl::StatusOr<Caller> AuthenticateHttp(AccessControl& access, const httplib::Request& request,
                                        const std::string& what) {
  const std::string token = RequestToken(request);
  return access.Authenticate(token.empty() ? "" : "Bearer " + token,
                             CallInfo{what, absl::StrCat("http:", request.remote_addr)});
}

void Dashboard::Serve(const httplib::Request& request, httplib::Response& response,
                      const std::string& what, Work work) {
  response.set_header("Cache-Control", "no-store");
  auto caller = AuthenticateHttp(*access_, request, what);
  if (!caller.ok()) {
    response.status = 401;
    response.set_content(Object({{"error", Quote(std::string(caller.status().message()))}}),
                         "application/json");
    return;
  }
  struct Answer {
    absl::Notification done;
    absl::StatusOr<std::string> json;
  };
  auto answer = std::make_shared<Answer>();
  loop_->Post([work = std::move(work), caller = *std::move(caller), answer] {
    work(caller, [answer](absl::StatusOr<std::string> json) {
      answer->json = std::move(json);
      answer->done.Notify();
    });
  });
  if (!answer->done.WaitForNotificationWithTimeout(kAnswerWithin)) {
    response.status = 504;
    response.set_content(Object({{"error", Quote("the scheduler did not answer in time")}}),
                         "application/json");
    return;
  }
  if (!answer->json.ok()) {
    response.status = HttpStatusOf(answer->json.status());
    response.set_content(Object({{"error", Quote(std::string(answer->json.status().message()))}}),
                         "application/json");
    return;
  }
  response.set_content(*answer->json, "application/json");
}

void Dashboard::Register(httplib::Server& server) {
  server.Get("/", [](const httplib::Request&, httplib::Response& response) {
    // Nothing from elsewhere: the page, its style and script are inline, and
    // it talks only to this server.
    response.set_header("Content-Security-Policy",
                        "default-src 'none'; script-src 'unsafe-inline'; style-src "
                        "'unsafe-inline'; connect-src 'self'; img-src data:");
    response.set_header("X-Content-Type-Options", "nosniff");
    response.set_header("Referrer-Policy", "no-referrer");
    response.set_content(kDashboardPage, "text/html; charset=utf-8");
  });

  SchedulerLoop* loop = loop_;
  AccessControl* access = access_;
  // A project (empty: every one) the caller may read.
  auto readable = [access](const Caller& caller,
                           const std::string& asked) -> absl::StatusOr<std::string> {
    const std::string project = AccessControl::Scope(caller, asked);
    if (absl::Status s = access->Authorize(caller, Right::kRead, project); !s.ok()) return s;
    return project;
  };

  server.Get("/api/jobs", [this, loop, readable](const httplib::Request& req,
                                                 httplib::Response& res) {
    Serve(req, res, "GET /api/jobs", [loop, readable, req](const Caller& caller, auto reply) {
      // The filters of ListJobs, from the query string.
      deja::v1::ListJobsRequest request;
      auto project = readable(caller, req.get_param_value("project"));
      if (!project.ok()) return reply(project.status());
      for (absl::string_view name :
           absl::StrSplit(req.get_param_value("state"), ',', absl::SkipEmpty())) {
        deja::v1::JobState state;
        if (!deja::v1::JobState_Parse(std::string(name), &state)) {
          return reply(absl::InvalidArgumentError(absl::StrCat("state: ", name, "?")));
        }
        request.add_states(state);
      }
      request.set_app(req.get_param_value("app"));
      request.set_array_id(req.get_param_value("array"));
      for (size_t i = 0; i < req.get_param_value_count("label"); ++i) {
        std::pair<std::string, std::string> kv =
            absl::StrSplit(req.get_param_value("label", i), absl::MaxSplits('=', 1));
        (*request.mutable_labels())[kv.first] = kv.second;
      }
      int64_t since_ms = 0;
      uint64_t before = 0;
      size_t limit = kDefaultJobs;
      if ((req.has_param("since_ms") &&
           !absl::SimpleAtoi(req.get_param_value("since_ms"), &since_ms)) ||
          (req.has_param("cursor") && !absl::SimpleAtoi(req.get_param_value("cursor"), &before)) ||
          (req.has_param("limit") && !absl::SimpleAtoi(req.get_param_value("limit"), &limit))) {
        return reply(absl::InvalidArgumentError("since_ms, cursor and limit are numbers"));
      }
      request.set_since_ms(since_ms);
      JobFilter filter = JobFilterOf(request);
      filter.project = *project;
      uint64_t next = 0;
      auto jobs = loop->core().ListJobs(filter, std::clamp<size_t>(limit, 1, kMaxJobs), before,
                                        kMaxListPageBytes, &next);
      if (!jobs.ok()) return reply(jobs.status());
      std::reverse(jobs->begin(), jobs->end());  // newest first on the page
      reply(Object(
          {{"jobs", Array(*jobs)}, {"next_cursor", Quote(next == 0 ? "" : absl::StrCat(next))}}));
    });
  });

  server.Get("/api/job", [this, loop, access](const httplib::Request& req, httplib::Response& res) {
    Serve(req, res, "GET /api/job", [loop, access, req](const Caller& caller, auto reply) {
      const std::string id = req.get_param_value("id");
      auto job = loop->core().GetJob(id);
      if (!job.ok()) return reply(job.status());
      if (auto s = access->Authorize(caller, Right::kRead, job->spec().project()); !s.ok()) {
        return reply(s);
      }
      auto explained = loop->core().Explain(id, loop->Now());
      auto members = std::make_shared<std::vector<std::pair<std::string, std::string>>>();
      members->emplace_back("job", Json(*job));
      members->emplace_back("explain", explained.ok() ? Json(*explained) : "null");
      // Every file of the finished workspace (its manifest), the first ones.
      if (!job->manifest().digest().empty()) {
        auto manifest = loop->blobs()->ReadManifest(job->manifest());
        if (manifest.ok()) {
          const int total = manifest->files_size();
          if (total > kMaxFiles)
            manifest->mutable_files()->DeleteSubrange(kMaxFiles, total - kMaxFiles);
          members->emplace_back("files", Array(manifest->files()));
          members->emplace_back("files_total", absl::StrCat(total));
        }
      }
      auto holder = loop->core().WorkspaceHolder(id);
      if (!holder.ok()) {
        members->emplace_back("logs_error", Quote(std::string(holder.status().message())));
        return reply(Object(*members));
      }
      ReadTail(loop, *holder, id, deja::v1::LOG_STDOUT,
               [loop, holder = *holder, id, members, reply](const std::string& out) mutable {
                 members->emplace_back("stdout_tail", Quote(out));
                 ReadTail(loop, holder, id, deja::v1::LOG_STDERR,
                          [members, reply](const std::string& err) mutable {
                            members->emplace_back("stderr_tail", Quote(err));
                            reply(Object(*members));
                          });
               });
    });
  });

  server.Get("/api/pipelines", [this, loop, readable](const httplib::Request& req,
                                                      httplib::Response& res) {
    Serve(req, res, "GET /api/pipelines", [loop, readable, req](const Caller& caller, auto reply) {
      auto project = readable(caller, req.get_param_value("project"));
      if (!project.ok()) return reply(project.status());
      std::vector<deja::v1::Pipeline> pipelines = loop->core().ListPipelines(*project);
      std::reverse(pipelines.begin(), pipelines.end());  // newest first
      if (pipelines.size() > kDefaultJobs) pipelines.resize(kDefaultJobs);
      reply(Object({{"pipelines", Array(pipelines)}}));
    });
  });

  server.Get("/api/pipeline", [this, loop, access](const httplib::Request& req,
                                                   httplib::Response& res) {
    Serve(req, res, "GET /api/pipeline", [loop, access, req](const Caller& caller, auto reply) {
      auto pipeline = loop->core().GetPipeline(req.get_param_value("id"));
      if (!pipeline.ok()) return reply(pipeline.status());
      if (auto s = access->Authorize(caller, Right::kRead, pipeline->spec().project()); !s.ok()) {
        return reply(s);
      }
      reply(Object({{"pipeline", Json(*pipeline)}}));
    });
  });

  server.Get(
      "/api/stats", [this, loop, readable](const httplib::Request& req, httplib::Response& res) {
        Serve(req, res, "GET /api/stats", [loop, readable, req](const Caller& caller, auto reply) {
          auto project = readable(caller, req.get_param_value("project"));
          if (!project.ok()) return reply(project.status());
          int days = 14;
          if (req.has_param("days") &&
              (!absl::SimpleAtoi(req.get_param_value("days"), &days) || days < 1 || days > 90)) {
            return reply(absl::InvalidArgumentError("days: 1 to 90"));
          }
          deja::v1::StatsRequest request;
          request.set_project(*project);
          auto stats = loop->core().Stats(request);
          if (!stats.ok()) return reply(stats.status());
          // Time saved per UTC day, from the reuses of the last `days` days.
          const absl::Time today =
              absl::FromUnixSeconds(absl::ToUnixSeconds(loop->Now()) / 86400 * 86400);
          const absl::Time first = today - absl::Hours(24 * (days - 1));
          JobFilter filter;
          filter.project = *project;
          filter.states = {deja::v1::SUCCEEDED};
          filter.since_ms = absl::ToUnixMillis(first);
          auto jobs = loop->core().ListJobs(filter, kMaxChartJobs, 0, 0, nullptr);
          if (!jobs.ok()) return reply(jobs.status());
          std::vector<int64_t> saved(static_cast<size_t>(days));
          std::vector<int64_t> reused(static_cast<size_t>(days));
          for (const Job& job : *jobs) {
            if (job.reused_from().empty()) continue;
            const int64_t day = (job.created_at_ms() - absl::ToUnixMillis(first)) / 86'400'000;
            if (day < 0 || day >= days) continue;
            saved[static_cast<size_t>(day)] += job.time_saved_ms();
            ++reused[static_cast<size_t>(day)];
          }
          std::string per_day = "[";
          for (int d = 0; d < days; ++d) {
            absl::StrAppend(
                &per_day, d > 0 ? "," : "", "{\"day\":\"",
                absl::FormatTime("%Y-%m-%d", first + absl::Hours(24 * d), absl::UTCTimeZone()),
                "\",\"saved_ms\":", saved[static_cast<size_t>(d)],
                ",\"reused\":", reused[static_cast<size_t>(d)], "}");
          }
          per_day += "]";
          reply(Object({{"stats", Json(*stats)}, {"saved_per_day", per_day}}));
        });
      });

  server.Get("/api/workers", [this, loop](const httplib::Request& req, httplib::Response& res) {
    Serve(req, res, "GET /api/workers", [loop](const Caller&, auto reply) {
      reply(Object({{"workers", Array(loop->core().ListWorkers())}}));
    });
  });
}

}  // namespace deja
