// B3: a reuse of a large workspace until SUCCEEDED, on the worker holding
// it (against `cp -a` of the same tree) and on the other worker (against a
// raw loopback TCP transfer of the same files).
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/harness.h"

namespace deja::bench {
namespace {

namespace fs = std::filesystem;

void WriteAll(int fd, const char* data, size_t size, const std::string& what) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) Fail(absl::StrCat(what, ": ", std::strerror(errno)));
    data += n;
    size -= static_cast<size_t>(n);
  }
}

// False on a clean EOF before the first byte.
bool ReadAll(int fd, char* data, size_t size, const std::string& what) {
  size_t got = 0;
  while (got < size) {
    ssize_t n = read(fd, data + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 && got == 0) return false;
    if (n <= 0) Fail(absl::StrCat(what, ": short read"));
    got += static_cast<size_t>(n);
  }
  return true;
}

struct FileToSend {
  std::string path;  // relative
  uint64_t size;
};

// Sends every file of `root` listed in `files` to 127.0.0.1:port; each file
// is [u32 path length][path][u64 size][bytes]; a zero length ends the
// stream; returns once the receiver acknowledged (all files written).
void SendTree(const std::string& root, const std::vector<FileToSend>& files, int port) {
  int sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  Check(sock >= 0, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(sock);
    Fail("connect to the TCP receiver");
  }
  std::string buffer(1 << 20, '\0');
  for (const FileToSend& f : files) {
    uint32_t len = static_cast<uint32_t>(f.path.size());
    WriteAll(sock, reinterpret_cast<const char*>(&len), sizeof(len), "send");
    WriteAll(sock, f.path.data(), f.path.size(), "send");
    WriteAll(sock, reinterpret_cast<const char*>(&f.size), sizeof(f.size), "send");
    int fd = open((root + "/" + f.path).c_str(), O_RDONLY | O_CLOEXEC);
    Check(fd >= 0, "open " + f.path);
    uint64_t left = f.size;
    while (left > 0) {
      ssize_t n = read(fd, buffer.data(), std::min<uint64_t>(buffer.size(), left));
      if (n < 0 && errno == EINTR) continue;
      Check(n > 0, "read " + f.path);
      WriteAll(sock, buffer.data(), static_cast<size_t>(n), "send");
      left -= static_cast<uint64_t>(n);
    }
    close(fd);
  }
  uint32_t end = 0;
  WriteAll(sock, reinterpret_cast<const char*>(&end), sizeof(end), "send");
  char ack = 0;
  Check(ReadAll(sock, &ack, 1, "ack") && ack == 'k', "the TCP receiver did not acknowledge");
  close(sock);
}

deja::v1::JobSpec GenSpec(const Options& options, int files, uint64_t bytes) {
  deja::v1::JobSpec spec;
  spec.set_project("b3");
  spec.mutable_app()->set_name("gen-tree");
  spec.mutable_app()->set_version("1");
  for (const std::string& w :
       {options.self, std::string("--mode=gen_tree"), std::string("--dir=data"),
        absl::StrCat("--files=", files), absl::StrCat("--bytes=", bytes)}) {
    spec.mutable_app()->add_command(w);
  }
  return spec;
}

// Makes `holder`'s only slot busy with a job that sleeps, and leaves the
// other worker idle. Returns the blocker's id.
std::string BusyHolder(BenchCluster& cluster, const std::string& holder, int rep) {
  auto submit = [&](int k) {
    deja::v1::JobSpec spec;
    spec.set_project("b3");
    spec.mutable_app()->set_name("blocker");
    spec.mutable_app()->add_command("/bin/sleep");
    spec.mutable_app()->add_command("600");
    (*spec.mutable_params())["n"] = absl::StrCat(rep, "-", k);
    spec.set_memoization(deja::v1::MEMOIZATION_OFF);
    std::string id = cluster.Submit(spec, "a blocker").job().job_id();
    deja::v1::Job job;
    WaitFor(
        [&] {
          auto j = cluster.client().GetJob(id);
          if (j.ok()) job = *j;
          return j.ok() && job.state() == deja::v1::RUNNING;
        },
        absl::Seconds(30), "the blocker to run");
    return job;
  };
  deja::v1::Job first = submit(0);
  if (first.worker_id() == holder) return first.job_id();
  deja::v1::Job second = submit(1);
  Check(second.worker_id() == holder, "the second blocker is not on the holder");
  Must(cluster.client().CancelJob(first.job_id()).status(), "cancel the first blocker");
  WaitFor(
      [&] {
        auto workers = cluster.client().ListWorkers();
        if (!workers.ok()) return false;
        for (const auto& w : *workers) {
          if (w.worker_id() != holder && w.busy_slots() > 0) return false;
        }
        return true;
      },
      absl::Seconds(30), "the other worker to be idle");
  return second.job_id();
}

// Submits a reuse of `spec` (request id `request_id`), waits for SUCCEEDED
// and returns the seconds it took; it must be a reuse of `source` run on
// `expect_worker`. Appends the worker's copy step (run_time_ms) to
// `copy_ms` and sets `*method` from the REUSED marker.
double TimeReuse(BenchCluster& cluster, const deja::v1::JobSpec& spec,
                 const std::string& request_id, const std::string& source,
                 const std::string& expect_worker, std::vector<double>* copy_ms,
                 std::string* method) {
  deja::v1::JobSpec hit = spec;
  hit.set_request_id(request_id);
  sync();
  const double t0 = Now();
  const std::string id = cluster.Submit(hit, "B3 reuse").job().job_id();
  const deja::v1::Job job = cluster.Wait(id, absl::Seconds(300));
  const double t = Now() - t0;
  Check(job.state() == deja::v1::SUCCEEDED && job.reused_from() == source,
        absl::StrCat("B3 reuse ", id, " was not a reuse of ", source, ": ", job.message()));
  Check(job.worker_id() == expect_worker,
        absl::StrCat("B3 reuse ran on ", job.worker_id(), ", not ", expect_worker));
  copy_ms->push_back(static_cast<double>(job.run_time_ms()));
  const std::string marker =
      deja::testing::ReadFile(cluster.Workspace(job.worker_id(), id) + "/REUSED");
  if (size_t at = marker.find("method="); at != std::string::npos) {
    *method = marker.substr(at + 7, marker.find('\n', at) - at - 7);
  }
  return t;
}

// Seconds of `cp -a src_ws` into a fresh temp dir.
double TimeCpA(const Options& options, const std::string& src_ws) {
  TempDir dest(options.tmp_root, "b3-cp");
  sync();
  const double t0 = Now();
  auto r = deja::testing::RunCommand("/bin/cp", {"-a", src_ws, dest.path() + "/tree"});
  const double t = Now() - t0;
  Check(r.exit_code == 0, "cp -a: " + r.err);
  return t;
}

// The unprivileged account the deployment case runs its worker as (the
// Docker image's workers are not root either).
constexpr char kNonRootUser[] = "nobody";
constexpr char kNonRootGroup[] = "nogroup";

// Times a same-worker reuse `reps` times with the worker running as
// kNonRootUser, each against `cp -a` of the source workspace (interleaved):
// the deployment case, where the materializer may hard-link. Appends to the
// vectors; returns the copy method the REUSED markers named.
std::string RunSameWorkerNonRoot(const Options& options, const deja::v1::JobSpec& spec, int reps,
                                 std::vector<double>* same_s, std::vector<double>* cp_s,
                                 std::vector<double>* copy_ms) {
  // A bench not run as root has unprivileged workers already: it runs the
  // worker as itself.
  const bool as_root = geteuid() == 0;
  uid_t uid = geteuid();
  gid_t gid = getegid();
  if (as_root) {
    const struct passwd* pw = getpwnam(kNonRootUser);
    const struct group* gr = getgrnam(kNonRootGroup);
    Check(pw != nullptr && gr != nullptr,
          absl::StrCat("B3 non-root: no user ", kNonRootUser, " / group ", kNonRootGroup));
    uid = pw->pw_uid;
    gid = gr->gr_gid;
  }
  BenchCluster cluster(options.tmp_root, "b3-nonroot");
  const std::string id = "nr1";
  const std::string work_dir = cluster.root() + "/worker-" + id;
  fs::create_directories(work_dir);
  std::vector<std::string> argv = {"--scheduler=" + cluster.address(), "--work_dir=" + work_dir,
                                   "--slots=1", "--id=" + id, "--advertise=127.0.0.1:0"};
  std::vector<std::string> security = cluster.access().WorkerFlags(cluster.client());
  if (!as_root) argv.insert(argv.end(), security.begin(), security.end());
  std::string binary = DEJA_WORKER_BIN;
  if (as_root) {
    // The worker must reach its work dir: the bench's own temp dirs are
    // private (0700), every other ancestor must let others through.
    Check(chmod(options.tmp_root.c_str(), 0755) == 0 && chmod(cluster.root().c_str(), 0755) == 0,
          "chmod " + cluster.root());
    for (fs::path p = fs::path(options.tmp_root).parent_path(); !p.empty() && p != p.parent_path();
         p = p.parent_path()) {
      struct stat st;
      Check(stat(p.c_str(), &st) == 0 && (st.st_mode & S_IXOTH) != 0,
            absl::StrCat("B3 non-root: ", p.string(), " is not searchable by ", kNonRootUser,
                         "; pick a --tmp_root it can reach"));
    }
    Check(chown(work_dir.c_str(), uid, gid) == 0, "chown " + work_dir);
    // Its credentials, where it can read them (the scheduler's data dir is
    // private).
    for (const auto& [flag, from] :
         {std::pair{"--tls_ca=", cluster.access().CaFile()},
          std::pair{"--token_file=", cluster.access().WorkerTokenFile()}}) {
      const std::string to = work_dir + "/" + fs::path(from).filename().string();
      fs::copy_file(from, to, fs::copy_options::overwrite_existing);
      Check(chown(to.c_str(), uid, gid) == 0, "chown " + to);
      argv.push_back(flag + to);
    }
    argv.insert(argv.begin(), {"--reuid=" + std::string(kNonRootUser),
                               "--regid=" + std::string(kNonRootGroup), "--clear-groups", binary});
    binary = "/usr/bin/setpriv";
  }
  auto worker = std::make_unique<Process>(binary, argv, cluster.root() + "/worker-" + id + ".log");
  Check(worker->pid() > 0, "could not start the non-root worker");
  cluster.WaitForWorkers(1);

  deja::v1::JobSpec first = spec;
  first.set_request_id("b3-nonroot-source");
  const std::string source = cluster.Submit(first, "B3 non-root source").job().job_id();
  const deja::v1::Job src = cluster.Wait(source, absl::Seconds(300));
  Check(src.state() == deja::v1::SUCCEEDED, "B3 non-root source job: " + src.message() +
                                                " (worker log: " + cluster.root() + "/worker-" +
                                                id + ".log)");
  const std::string src_ws = cluster.Workspace(id, source);
  struct stat st;
  Check(stat(src_ws.c_str(), &st) == 0 && st.st_uid == uid && uid != 0,
        "the non-root source workspace is not owned by an unprivileged user");

  std::string method;
  auto reuse = [&](int rep) {
    return TimeReuse(cluster, spec, absl::StrCat("b3-nonroot-reuse-", rep), source, id, copy_ms,
                     &method);
  };
  auto cp = [&] { return TimeCpA(options, src_ws); };
  for (int rep = 0; rep < reps; ++rep) {
    double s = 0, c = 0;
    if (rep % 2 == 0) {
      c = cp();
      s = reuse(rep);
    } else {
      s = reuse(rep);
      c = cp();
    }
    same_s->push_back(s);
    cp_s->push_back(c);
    Log(absl::StrCat("B3 non-root rep ", rep, ": same-worker ", FmtNum(s, 3), " s, cp -a ",
                     FmtNum(c, 3), " s"));
  }
  worker.reset();  // SIGKILL before the cluster's dir goes
  return method;
}

}  // namespace

int GenTreeMain(const std::string& dir, int files, uint64_t total_bytes) {
  Check(files > 0 && !dir.empty(), "gen_tree: --dir and --files");
  const int per_dir = 100;
  const uint64_t each = total_bytes / static_cast<uint64_t>(files);
  for (int i = 0; i < files; ++i) {
    std::string sub = absl::StrCat(dir, "/d", i / per_dir);
    if (i % per_dir == 0) fs::create_directories(sub);
    uint64_t size = i + 1 == files ? total_bytes - each * static_cast<uint64_t>(files - 1) : each;
    WritePseudoRandomFile(absl::StrCat(sub, "/f", i, ".bin"), static_cast<uint64_t>(i) + 1, size);
  }
  std::printf("wrote %d files, %llu bytes\n", files, static_cast<unsigned long long>(total_bytes));
  return 0;
}

int TcpReceiverMain(const std::string& dir, const std::string& port_file) {
  int server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  Check(server >= 0, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  Check(bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
            listen(server, 1) == 0 &&
            getsockname(server, reinterpret_cast<sockaddr*>(&addr), &len) == 0,
        "listen on 127.0.0.1:0");
  std::ofstream(port_file + ".tmp") << ntohs(addr.sin_port) << "\n";
  std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  int sock = accept4(server, nullptr, nullptr, SOCK_CLOEXEC);
  Check(sock >= 0, "accept");
  std::string buffer(1 << 20, '\0');
  std::set<std::string> made;
  while (true) {
    uint32_t path_len = 0;
    Check(ReadAll(sock, reinterpret_cast<char*>(&path_len), sizeof(path_len), "header"),
          "the sender closed early");
    if (path_len == 0) break;
    Check(path_len < 4096, "path too long");
    std::string rel(path_len, '\0');
    uint64_t size = 0;
    ReadAll(sock, rel.data(), path_len, "path");
    ReadAll(sock, reinterpret_cast<char*>(&size), sizeof(size), "size");
    const std::string dst = dir + "/" + rel;
    const std::string parent = fs::path(dst).parent_path().string();
    if (made.insert(parent).second) fs::create_directories(parent);
    int fd = open(dst.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    Check(fd >= 0, "create " + dst);
    uint64_t left = size;
    while (left > 0) {
      ssize_t n = read(sock, buffer.data(), std::min<uint64_t>(buffer.size(), left));
      if (n < 0 && errno == EINTR) continue;
      Check(n > 0, "receive " + rel);
      WriteAll(fd, buffer.data(), static_cast<size_t>(n), "write " + dst);
      left -= static_cast<uint64_t>(n);
    }
    close(fd);
  }
  WriteAll(sock, "k", 1, "ack");
  close(sock);
  close(server);
  return 0;
}

void RunB3(const Options& options, Report* report) {
  const int files = options.quick ? 50 : 1000;
  const uint64_t bytes = options.quick ? 10'000'000 : 200'000'000;
  const int reps = options.Reps(5, 1);
  BenchCluster cluster(options.tmp_root, "b3");
  cluster.StartWorker("w1", 1);
  cluster.StartWorker("w2", 1);
  cluster.WaitForWorkers(2);

  // The source workspace: a job writing `files` files of pseudo-random bytes.
  const deja::v1::JobSpec spec = GenSpec(options, files, bytes);
  deja::v1::JobSpec first = spec;
  first.set_request_id("b3-source");
  const std::string source = cluster.Submit(first, "B3 source").job().job_id();
  const deja::v1::Job src = cluster.Wait(source, absl::Seconds(300));
  Check(src.state() == deja::v1::SUCCEEDED, "B3 source job: " + src.message());
  const std::string holder = src.worker_id();
  const std::string other = holder == "w1" ? "w2" : "w1";
  const std::string src_ws = cluster.Workspace(holder, source);
  std::vector<FileToSend> to_send;
  uint64_t total = 0;
  std::string token;
  do {
    auto page = cluster.client().ListJobFiles(source, token, 0);
    Check(page.ok(), "B3 source files: " + page.status().ToString());
    for (const auto& f : page->files()) {
      if (!S_ISREG(f.mode())) continue;
      to_send.push_back({f.path(), f.size()});
      total += f.size();
    }
    token = page->next_page_token();
  } while (!token.empty());
  Log(absl::StrCat("B3 source ", source, " on ", holder, ": ", to_send.size(), " files, ", total,
                   " bytes"));
  const double mb = static_cast<double>(total) / 1e6;

  int submitted = 0;
  std::string method, cross_method;
  std::vector<double> same_copy_ms, cross_copy_ms;  // the worker's part: run_time_ms
  auto reuse = [&](const std::string& expect_worker) {
    return TimeReuse(cluster, spec, absl::StrCat("b3-reuse-", submitted++), source, expect_worker,
                     expect_worker == holder ? &same_copy_ms : &cross_copy_ms,
                     expect_worker == holder ? &method : &cross_method);
  };
  auto cp = [&] { return TimeCpA(options, src_ws); };
  auto tcp = [&] {
    TempDir dest(options.tmp_root, "b3-tcp");
    const std::string port_file = dest.path() + "/port";
    Process receiver(
        options.self,
        {"--mode=tcp_recv", "--dir=" + dest.path() + "/tree", "--port_file=" + port_file},
        dest.path() + "/receiver.log");
    const int port =
        WaitForPortFile(port_file, absl::Seconds(10), receiver, dest.path() + "/receiver.log");
    sync();
    const double t0 = Now();
    SendTree(src_ws, to_send, port);
    const double t = Now() - t0;
    Check(receiver.Wait() == 0, "the TCP receiver failed");
    return t;
  };
  auto cross = [&](int rep) {
    const std::string blocker = BusyHolder(cluster, holder, rep);
    const double t = reuse(other);
    Must(cluster.client().CancelJob(blocker).status(), "cancel the blocker");
    cluster.WaitIdle();
    return t;
  };

  std::vector<double> same_s, cp_s, cross_rate, tcp_rate, same_ratio, cross_ratio;
  for (int rep = 0; rep < reps; ++rep) {
    double s = 0, c = 0, x = 0, t = 0;
    if (rep % 2 == 0) {
      c = cp();
      s = reuse(holder);
      t = tcp();
      x = cross(rep);
    } else {
      x = cross(rep);
      t = tcp();
      s = reuse(holder);
      c = cp();
    }
    same_s.push_back(s);
    cp_s.push_back(c);
    same_ratio.push_back(s / c);
    cross_rate.push_back(mb / x);
    tcp_rate.push_back(mb / t);
    cross_ratio.push_back(t / x);
    Log(absl::StrCat("B3 rep ", rep, ": same-worker ", FmtNum(s, 3), " s, cp -a ", FmtNum(c, 3),
                     " s; cross-worker ", FmtNum(x, 3), " s, TCP ", FmtNum(t, 3), " s"));
  }
  // The deployment case: the same reuse with the worker not root.
  std::vector<double> nr_same_s, nr_cp_s, nr_copy_ms, nr_ratio;
  const std::string nr_method =
      RunSameWorkerNonRoot(options, spec, reps, &nr_same_s, &nr_cp_s, &nr_copy_ms);
  for (size_t i = 0; i < nr_same_s.size(); ++i) nr_ratio.push_back(nr_same_s[i] / nr_cp_s[i]);

  const Summary rs = Summarize(same_ratio), rx = Summarize(cross_ratio);
  const Summary rn = Summarize(nr_ratio);
  const std::string size = absl::StrCat(to_send.size(), " files, ", FmtNum(mb, 0), " MB");
  report->Add({absl::StrCat("B3 reuse of a ", to_send.size(), "-file, ", FmtNum(mb, 0),
                            " MB workspace, same worker, non-root worker (hard links; the "
                            "deployment case, judged against the target)"),
               Fmt(Summarize(nr_same_s), 3, "s"), Fmt(Summarize(nr_cp_s), 3, "s") + " `cp -a`",
               Fmt(rn, 2, "×"), "≤ 0.2×", rn.median <= 0.2});
  report->Add({geteuid() == 0 ? "B3 same, worker as root (copy)"
                              : "B3 same, workers as the bench's user (second cluster)",
               Fmt(Summarize(same_s), 3, "s"), Fmt(Summarize(cp_s), 3, "s") + " `cp -a`",
               Fmt(rs, 2, "×"), "—", std::nullopt});
  report->Add({"B3 reuse, cross-worker (holder busy)", Fmt(Summarize(cross_rate), 0, "MB/s"),
               Fmt(Summarize(tcp_rate), 0, "MB/s") + " loopback TCP", Fmt(rx, 2, "×"), "≥ 0.7×",
               rx.median >= 0.7});
  report->Note(absl::StrCat(
      "**B3.** ", Reps(reps), ". The source job (`deja-bench --mode=gen_tree`) writes ", size,
      " of pseudo-random bytes, 100 files per directory; each reuse is a Submit of the same "
      "spec timed until its watch says SUCCEEDED. Same worker, two rows: with the worker ",
      (geteuid() == 0 ? absl::StrCat("running as `", kNonRootUser,
                                     "` (`setpriv`; its own cluster, work dir owned by it), as ")
                      : std::string("running as the bench's own (unprivileged) user, in its own "
                                    "cluster, as ")),
      "deployed (the Docker image runs workers as a non-root user), where the materializer "
      "hard-links read-only files (copy method this run: `",
      nr_method,
      "`) — this row is judged against the target; and with the worker as root (copy method "
      "this run: `",
      method,
      "`; the work dir is on ext4 and root can write a read-only inode, so no reflink and no "
      "hard links), shown for honesty. The holder has a free slot "
      "and copies locally. Cross-worker: a `sleep` job holds the holder's only slot, so the "
      "other worker (root) pulls the workspace over the peer service. Baselines, interleaved: `cp "
      "-a` of the source workspace (as root); a raw TCP stream over 127.0.0.1 from this process, "
      "which reads the same files, to a receiver process that writes them (no hashing). `sync` "
      "before each timed step; the source files are in the page cache for every side. Of "
      "Deja's time, the worker's copy step (the reuse's `run_time_ms`: verify the source "
      "and copy, or pull and verify) took ",
      Fmt(Summarize(nr_copy_ms), 0, "ms"), " on the same non-root worker, ",
      Fmt(Summarize(same_copy_ms), 0, "ms"), " on the same root worker and ",
      Fmt(Summarize(cross_copy_ms), 0, "ms"),
      " cross-worker; the rest is submit, dispatch and commits."));
}

}  // namespace deja::bench
