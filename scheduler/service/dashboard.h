// Dashboard: the scheduler's read-only web dashboard, on its --http_listen
// port beside /metrics (docs/operations.md#the-dashboard): one page built
// into the binary (dashboard_page.cc; nothing is fetched from elsewhere)
// and the JSON it reads, under /api/:
//
//   /api/jobs?project=&state=&app=&label=K=V&since_ms=&cursor=&limit=
//   /api/job?id=        the job, its explanation, the tail of its logs
//   /api/pipelines?project=   /api/pipeline?id=
//   /api/stats?project=&days= per-app totals, and the time saved per day
//   /api/workers
//
// Every /api/ call takes the CLI's tokens (Authorization: Bearer, or the
// page's cookie) and shows what the token may read, as the RPCs do. The
// handlers run on the HTTP server's threads; what they read is read on the
// scheduler's loop (SchedulerLoop::Post), waited for with a deadline.
#ifndef DEJA_SCHEDULER_SERVICE_DASHBOARD_H_
#define DEJA_SCHEDULER_SERVICE_DASHBOARD_H_

#include <httplib.h>

#include <string>

#include "absl/status/statusor.h"
#include "scheduler/access/access_control.h"
#include "scheduler/service/scheduler_loop.h"

namespace deja {

// The caller of an HTTP request (its bearer token, or the dashboard's
// cookie), authenticated as a gRPC call is: the audit log names `what` and
// "http:" with the peer's address.
absl::StatusOr<Caller> AuthenticateHttp(AccessControl& access, const httplib::Request& request,
                                        const std::string& what);

class Dashboard {
 public:
  // Not owned: both must outlive the HTTP server the routes go on.
  Dashboard(SchedulerLoop* loop, AccessControl* access) : loop_(loop), access_(access) {}

  // Adds / and /api/... to `server`.
  void Register(httplib::Server& server);

 private:
  // A handler's work on the loop: the JSON answer, or an error (its code
  // picks the HTTP status).
  using Work = std::function<void(const Caller&, std::function<void(absl::StatusOr<std::string>)>)>;
  void Serve(const httplib::Request& request, httplib::Response& response, const std::string& what,
             Work work);

  SchedulerLoop* const loop_;
  AccessControl* const access_;
};

// The page (HTML, CSS and JavaScript in one), from dashboard_page.cc.
extern const char kDashboardPage[];

}  // namespace deja

#endif  // DEJA_SCHEDULER_SERVICE_DASHBOARD_H_
