#!/usr/bin/env python3
"""Crash and fault torture test of a real Deja cluster (issue 12).

A scheduler and three workers (real daemons, loopback, a temp dir) take a
stream of short jobs (0 to 3 s), each of which writes an output and then
appends a line to a ledger outside its workspace as its last act: the
ledger counts how often each job's command ran to completion. Meanwhile an
injector, every INTERVAL, does one of:
  - kill -9 the scheduler, and restart it on its data dir;
  - kill -9 a worker (the worker process; its watchdog, the daemon's
    first process, sees it die), and restart it on its work dir;
  - pause a worker (SIGSTOP) for 0.5 to 6 s, shorter or longer than the
    scheduler's --worker_timeout (3 s), then SIGCONT it;
  - fill a worker's disk for 0.5 to 4 s: each work dir is a 256 MiB tmpfs
    (when the test may mount one: root) and each worker keeps
    --min_free_disk=64MiB free, so a filler file leaving 16 MiB free makes
    it evict its kept workspaces and then refuse jobs (handing back what
    crosses) until the filler is removed. Commands still have room to write:
    a job that fails because its own writes hit ENOSPC would be a real
    failure, not a fault the cluster must hide.
When the injections are done it lets the cluster settle, stops the daemons
with SIGTERM and checks:
  lost          a submitted job that did not end (or cannot be found)
  failed        a job that did not succeed (every command succeeds), among
                them successes turned failures (its command had completed)
  run twice     a job whose command completed more than once
  leftovers     a process of the cluster's (cwd or command line under its
                temp dir) still alive after the daemons stopped
  ended on its own  a daemon found exited without being killed (a crash,
                a refused start); it is restarted, and the run fails
Any of them fails the run (exit 1), except a job run twice whose earlier
completions each fall in an instant no scheduler can tell from a failure,
counted apart, by cause:
  - completed as its worker was paused past the timeout, before it
    reported: its last act came within 50 ms of the SIGSTOP (the watchdog
    stops a stopped worker's jobs at once, so this is rare), and the
    scheduler then gave the job up with its silent worker;
  - its last act came as its worker was killed, before it exited: at most
    50 ms before the SIGKILL of the worker process that spawned it (the
    ledger has each command's parent pid), so the watchdog killed the
    command before it exited: it had not completed;
  - unreported: the scheduler was killed within 1 s of its completion and
    its worker was then paused before it could report the result, so the
    restarted scheduler gave up on the worker.
A command that runs on after its worker's kill, or completes during a
pause, fails the run.
(docs/worker.md, "What survives what".)

  tests/torture/torture.py --bin build                 # quick: about 60 s
  tests/torture/torture.py --bin build --injections 1000   # long
The last line is the verdict, e.g.
  torture: 1000 injections (...), 2406 jobs: 0 lost, 0 failed (0 successes
  turned failures), 0 run twice, 0 leftover processes, 0 daemons ended on
  their own; run twice in known windows: 3, 3 unreported: ...: PASS
"""

import argparse
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

WORKER_TIMEOUT_S = 3.0
HEARTBEAT_S = 0.5
WORKERS = ["w1", "w2", "w3"]
PROJECT = "torture"
MIB = 1 << 20
TMPFS_BYTES = 256 * MIB
MIN_FREE_DISK = 64 * MIB
# How close to a worker's kill or pause a command's last act may come and
# still count as that instant's (see known windows above).
WINDOW_S = 0.05


def log(msg):
    print(f"torture: {msg}", flush=True)


def child_named(parent, name):
    """The pid of `parent`'s child whose command is `name`, or None."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        comm = stat[stat.find("(") + 1:stat.rfind(")")]
        if comm == name and stat.rsplit(")", 1)[1].split()[1] == str(parent):
            return int(pid)
    return None


class Daemon:
    """A daemon process, restartable with the same arguments. A worker's
    process is its watchdog; the worker runs in its child (worker/watchdog.h),
    which is what a crash or a pause hits."""

    def __init__(self, name, argv, log_path, worker=False):
        self.name, self.argv, self.log_path, self.worker = name, argv, log_path, worker
        self.proc = None
        self.paused = None  # the pid paused, while it is

    def start(self):
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)

    def target(self):
        """The process a crash or a pause hits: the worker process, once
        forked, or the scheduler's."""
        if not self.worker:
            return self.proc.pid
        deadline = time.time() + 10
        while time.time() < deadline and self.proc.poll() is None:
            pid = child_named(self.proc.pid, "deja-worker")
            if pid:
                return pid
            time.sleep(0.01)
        return self.proc.pid

    def kill9_and_restart(self, delay):
        """Returns when the SIGKILL was sent, and to which pid."""
        pid = self.target()
        killed = (time.time(), pid)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:  # ended meanwhile: the next look reports it
            pass
        self.proc.wait()
        time.sleep(delay)
        self.start()
        return killed

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.paused:
            os.kill(self.paused, signal.SIGCONT)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            log(f"{self.name} did not stop on SIGTERM within 30 s: SIGKILL")
            self.proc.kill()
            self.proc.wait()


class Torture:
    def __init__(self, args):
        self.args = args
        self.root = tempfile.mkdtemp(prefix="deja-torture-", dir=args.tmp)
        # A root worker runs jobs as deja-job: it passes through to the
        # workspaces and appends to the ledger.
        os.chmod(self.root, 0o711)
        self.ledger = os.path.join(self.root, "ledger")
        open(self.ledger, "a").close()
        os.chmod(self.ledger, 0o666)
        open(self.ledger, "w").close()
        self.bin = os.path.abspath(args.bin)
        self.cli = os.path.join(self.bin, "client", "deja")
        # One generator per thread, so a seed replays both streams.
        self.job_rng = random.Random(args.seed)
        self.fault_rng = random.Random(args.seed + 1)
        self.lock = threading.Lock()
        self.pauses = collections.defaultdict(list)  # worker -> [(start, end)]
        # "scheduler" or a worker -> [(time of a SIGKILL, the pid killed)]
        self.kills = collections.defaultdict(list)
        self.injections = collections.Counter()
        self.submitted = {}  # tag -> job id
        self.done_injecting = threading.Event()
        self.port = None
        self.ca = None  # the scheduler's CA certificate
        self.admin_token = None
        self.worker_token = None
        self.scheduler = None
        self.workers = {}
        self.mounted = []  # tmpfs work dirs, unmounted at the end
        self.fills = 0
        self.died = []  # daemons found ended on their own: "w2 exit 1"

    # --- the cluster -----------------------------------------------------------------------

    def start_cluster(self):
        port_file = os.path.join(self.root, "scheduler.port")
        data = os.path.join(self.root, "scheduler-data")
        flags = [f"--data_dir={data}", f"--worker_timeout={int(WORKER_TIMEOUT_S * 1000)}ms",
                 f"--heartbeat_interval={int(HEARTBEAT_S * 1000)}ms", "--max_attempts=20"]
        first = Daemon("scheduler", [os.path.join(self.bin, "scheduler", "deja-scheduler")] +
                       flags + ["--listen=127.0.0.1:0", f"--port_file={port_file}"],
                       os.path.join(self.root, "scheduler.log"))
        first.start()
        deadline = time.time() + 30
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            if time.time() > deadline:
                raise SystemExit("torture: the scheduler did not start (scheduler.log)")
            time.sleep(0.05)
        self.port = int(open(port_file).read().strip())
        # TLS and tokens, as every deployment: the scheduler's own CA, its
        # first admin token, and a worker token made with it.
        self.ca = os.path.join(data, "tls", "ca.crt")
        self.admin_token = os.path.join(data, "admin.token")
        self.worker_token = os.path.join(self.root, "worker.token")
        r = self.deja("token", "create", "--role=worker")
        if r.returncode != 0:
            raise SystemExit(f"torture: no worker token: {r.stderr}")
        with open(self.worker_token, "w") as f:
            f.write(r.stdout)
        # Restarts listen on the same port.
        first.argv = first.argv[:-2] + [f"--listen=127.0.0.1:{self.port}"]
        self.scheduler = first
        for w in WORKERS:
            work = os.path.join(self.root, w)
            os.makedirs(work)
            if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs",
                               work], capture_output=True).returncode == 0:
                self.mounted.append(work)
            d = Daemon(w, [os.path.join(self.bin, "worker", "deja-worker"),
                           f"--scheduler=127.0.0.1:{self.port}", f"--work_dir={work}",
                           f"--id={w}", "--slots=2", "--advertise=127.0.0.1:0",
                           "--peer_listen=127.0.0.1:0", f"--min_free_disk={MIN_FREE_DISK}",
                           f"--tls_ca={self.ca}", f"--token_file={self.worker_token}"],
                       os.path.join(self.root, f"{w}.log"), worker=True)
            d.start()
            self.workers[w] = d

    def deja(self, *argv, timeout=10):
        return subprocess.run([self.cli, f"--scheduler=127.0.0.1:{self.port}", "--timeout=5",
                               f"--tls_ca={self.ca}", f"--token_file={self.admin_token}",
                               *argv],
                              capture_output=True, text=True, timeout=timeout)

    # --- the job stream ----------------------------------------------------------------------

    def submit(self, i):
        tag = f"t{i:05d}"
        seconds = self.job_rng.choice([0, 0, 0.1, 0.3, 0.5, 1, 1.5, 2, 3])
        script = (f"sleep {seconds}; echo {tag} > out.txt; "
                  f"echo \"{tag} $DEJA_WORKSPACE $(date +%s.%N) $PPID\" >> {self.ledger}")
        while True:  # the scheduler may be down: the request id makes retries safe
            r = self.deja("submit", f"--project={PROJECT}", "--output=out.txt",
                          f"--request-id={tag}", "--", "sh", "-c", script)
            if r.returncode == 0:
                self.submitted[tag] = r.stdout.split()[0]
                return
            time.sleep(0.2)

    def submit_stream(self, count, pace, until_injections_end):
        """`count` jobs, one every `pace` s; with `until_injections_end`,
        more until the injector is done."""
        i = 0
        while i < count or (until_injections_end and not self.done_injecting.is_set()):
            self.submit(i)
            i += 1
            time.sleep(pace)

    # --- the faults ------------------------------------------------------------------------------

    def fill_disk(self, w):
        """A file that leaves 16 MiB free on the worker's tmpfs; its path."""
        work = os.path.join(self.root, w)
        self.fills += 1
        filler = os.path.join(work, f"filler-{self.fills}")
        st = os.statvfs(work)
        size = st.f_bavail * st.f_frsize - 16 * MIB
        if size > 0:
            fd = os.open(filler, os.O_CREAT | os.O_WRONLY, 0o644)
            try:
                os.posix_fallocate(fd, 0, size)
            except OSError:
                pass  # filled meanwhile by the jobs: it is full anyway
            finally:
                os.close(fd)
        return filler

    def inject(self, until, target, interval):
        timers = []
        while True:
            time.sleep(self.fault_rng.uniform(*interval))
            total = sum(self.injections.values())
            if (target and total >= target) or (not target and time.time() >= until):
                break
            kind = self.fault_rng.choices(
                ["kill-scheduler", "kill-worker", "pause-worker", "fill-disk"],
                weights=[2, 5, 3, 2 if len(self.mounted) == len(WORKERS) else 0])[0]
            # A daemon ends only when killed: one that ended on its own
            # (a crash, a failed start) is a finding; it is restarted.
            for d in [self.scheduler, *self.workers.values()]:
                if d.proc.poll() is not None:
                    self.died.append(f"{d.name} exit {d.proc.returncode}")
                    log(f"{d.name} ended on its own (exit {d.proc.returncode}); restarted")
                    d.start()
            with self.lock:
                running = [w for w in WORKERS if self.workers[w].paused is None]
            if kind != "kill-scheduler" and not running:
                continue
            detail = ""
            if kind == "kill-scheduler":
                self.kills["scheduler"].append(
                    self.scheduler.kill9_and_restart(self.fault_rng.uniform(0, 0.5)))
            elif kind == "fill-disk":
                w = self.fault_rng.choice(WORKERS)
                length = self.fault_rng.uniform(0.5, 4)
                filler = self.fill_disk(w)
                t = threading.Timer(length, lambda f=filler: os.path.exists(f) and os.remove(f))
                t.start()
                timers.append(t)
                detail = f" {w} for {length:.1f} s"
            elif kind == "kill-worker":
                w = self.fault_rng.choice(running)
                self.kills[w].append(
                    self.workers[w].kill9_and_restart(self.fault_rng.uniform(0, 0.5)))
                detail = f" {w}"
            else:
                d = self.workers[self.fault_rng.choice(running)]
                length = self.fault_rng.uniform(0.5, 6)
                pid = d.target()
                with self.lock:
                    paused_at = time.time()
                    os.kill(pid, signal.SIGSTOP)
                    d.paused = pid

                def resume(d=d, pid=pid, paused_at=paused_at):
                    with self.lock:
                        os.kill(pid, signal.SIGCONT)
                        self.pauses[d.name].append((paused_at, time.time()))
                        d.paused = None
                t = threading.Timer(length, resume)
                t.start()
                timers.append(t)
            self.injections[kind] += 1
            total += 1
            with open(os.path.join(self.root, "injections.log"), "a") as out:
                if kind == "pause-worker":
                    detail = f" {d.name} for {length:.1f} s"
                out.write(f"{time.time():.3f} {kind}{detail}\n")
            if total % 100 == 0:
                log(f"{total} injections so far ({dict(self.injections)}), "
                    f"{len(self.submitted)} jobs submitted")
        for t in timers:
            t.join()

    # --- the verdict -------------------------------------------------------------------------------

    def jobs(self):
        r = self.deja("--json", "ls", f"--project={PROJECT}", "--limit=1000000", timeout=60)
        if r.returncode != 0:
            return None
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def settle(self, deadline_s):
        deadline = time.time() + deadline_s
        while time.time() < deadline:
            jobs = self.jobs()
            if jobs is not None:
                ended = [j for j in jobs if j.get("state") in ("SUCCEEDED", "FAILED", "CANCELLED")]
                if len(ended) == len(jobs) and len(jobs) >= len(self.submitted):
                    return jobs
            time.sleep(1)
        return self.jobs() or []

    def leftovers(self):
        mine = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            if int(pid) == os.getpid():
                continue
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
                cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
                state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z" and (cwd.startswith(self.root) or self.root in cmd):
                mine.append(f"{pid} {cmd.strip()[:100]}")
        return mine

    def worker_of(self, workspace):
        rel = os.path.relpath(workspace, self.root)
        return rel.split(os.sep)[0]

    # The windows no fault handling closes yet, where a command that ran to
    # completion can be run again; each names its cause. Every earlier
    # completion of a job run twice must fall in one, else the run fails.
    # `parent` is the pid of the worker process that spawned the command.
    def known_window(self, worker, at, parent):
        for start, end in self.pauses[worker]:
            if end - start > WORKER_TIMEOUT_S and abs(at - start) <= WINDOW_S:
                return "completed as its worker was paused past the timeout, before it reported"
        if any(pid == parent and 0 <= k - at <= WINDOW_S for k, pid in self.kills[worker]):
            return "its last act came as its worker was killed, before it exited"
        if any(abs(k - at) <= 1.0 for k, _ in self.kills["scheduler"]) and any(
                at <= start <= at + WORKER_TIMEOUT_S + 1 for start, _ in self.pauses[worker]):
            return "unreported: the scheduler was down, then its worker paused"
        return None

    def verdict(self, jobs):
        by_tag = {}
        for j in jobs:
            script = j.get("spec", {}).get("app", {}).get("command", [""])[-1]
            tag = script.split(" > out.txt")[0].split("echo ")[-1] if "echo t" in script else None
            if tag:
                by_tag.setdefault(tag, []).append(j)
        completions = collections.defaultdict(list)
        for line in open(self.ledger):
            parts = line.split()
            if len(parts) == 4:
                completions[parts[0]].append(
                    (float(parts[2]), self.worker_of(parts[1]), int(parts[3])))
        lost, failed, turned, twice = [], [], [], []
        known = collections.Counter()
        for tag in self.submitted:
            found = by_tag.get(tag, [])
            if not found or any(j.get("state") not in ("SUCCEEDED", "FAILED") for j in found):
                lost.append(tag)
                continue
            for j in found:
                if j["state"] != "SUCCEEDED":
                    failed.append(f"{tag} {j['job_id']}: {j.get('message', '')}")
                    if completions[tag]:
                        turned.append(tag)
            runs = sorted(completions[tag])
            if len(runs) > 1:
                windows = [self.known_window(w, t, ppid) for t, w, ppid in runs[:-1]]
                if all(windows):
                    known.update(windows)
                else:
                    twice.append(f"{tag}: completed at " +
                                 ", ".join(f"{t:.3f} on {w}" for t, w, _ in runs))
        return lost, failed, turned, twice, known

    def run(self):
        a = self.args
        quick = a.injections == 0
        count = a.jobs or (100 if quick else max(400, a.injections * 2))
        duration = a.duration if quick else None
        interval = (0.5, 2.0) if quick else (0.3, 1.5)
        log(f"root {self.root}; {count} jobs; " +
            (f"injections for {duration} s" if quick else f"{a.injections} injections"))
        self.start_cluster()
        expected = duration if quick else a.injections * sum(interval) / 2
        pace = max(0.0, expected / count - 0.03)
        submitter = threading.Thread(target=self.submit_stream, args=(count, pace, not quick))
        submitter.start()
        injector = threading.Thread(target=self.inject,
                                    args=(time.time() + (duration or 0), a.injections, interval))
        injector.start()
        injector.join()
        self.done_injecting.set()
        submitter.join()
        log(f"injections done ({sum(self.injections.values())}: {dict(self.injections)}); "
            "settling")
        jobs = self.settle(300 if quick else 900)
        for d in [*self.workers.values(), self.scheduler]:
            d.stop()
        # Watchdogs exit once their worker has; jobs are gone with them.
        deadline = time.time() + 20
        left = self.leftovers()
        while left and time.time() < deadline:
            time.sleep(0.2)
            left = self.leftovers()
        for work in self.mounted:
            subprocess.run(["umount", "-l", work], capture_output=True)
        lost, failed, turned, twice, known = self.verdict(jobs)
        for name, items in [("lost", lost), ("failed", failed), ("run twice", twice),
                            ("leftover", left), ("ended on its own", self.died)]:
            for item in items[:20]:
                log(f"{name}: {item}")
        ok = not (lost or failed or twice or left or self.died)
        total = sum(self.injections.values())
        kinds = ", ".join(f"{v} {k}" for k, v in sorted(self.injections.items()))
        log(f"{total} injections ({kinds}), {len(self.submitted)} jobs: {len(lost)} lost, "
            f"{len(failed)} failed ({len(turned)} successes turned failures), "
            f"{len(twice)} run twice, {len(left)} leftover processes, "
            f"{len(self.died)} daemons ended on their own; "
            f"run twice in known windows: {sum(known.values())}"
            + "".join(f", {n} {why}" for why, n in sorted(known.items())) + ": "
            f"{'PASS' if ok else 'FAIL'}")
        if ok and not a.keep:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            log(f"logs and data kept in {self.root}")
        return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", required=True, help="the build directory (client/deja, ...)")
    p.add_argument("--injections", type=int, default=0,
                   help="long mode: this many injections (0: quick mode, --duration seconds)")
    p.add_argument("--duration", type=float, default=45, help="quick mode: seconds of injections")
    p.add_argument("--jobs", type=int, default=0, help="jobs to submit (default: by mode)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    p.add_argument("--tmp", default=None, help="where the temp dir goes")
    p.add_argument("--keep", action="store_true", help="keep the temp dir after a pass")
    args = p.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    log(f"seed {args.seed}")
    sys.exit(Torture(args).run())


if __name__ == "__main__":
    main()
