"""A real Deja cluster for the tests: deja-scheduler and deja-worker
processes on 127.0.0.1 port 0, in a temp dir of their own, with TLS and
tokens as in production (tests/integration/cluster.cc is the model).

The scheduler writes its CA (DATA/tls/ca.crt) and first admin token
(DATA/admin.token) on first start; the admin makes a worker token, with
which the workers enroll. Nothing waits a fixed time: every wait polls a
condition with a deadline.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import deja


def poll_until(predicate, timeout=20.0, what="condition"):
    """Calls `predicate` until it returns something true (returned), backing
    off from 10 ms to 200 ms; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout:g}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


class Cluster:
    """A scheduler and workers built in `build_dir` (BUILD/scheduler/
    deja-scheduler, BUILD/worker/deja-worker, BUILD/client/deja)."""

    def __init__(self, build_dir):
        self.build_dir = build_dir
        self.root = tempfile.mkdtemp(prefix="deja-py-")
        # Jobs run as deja-job when the worker runs as root: they must reach
        # files the tests leave here (gates), like /tmp.
        os.chmod(self.root, 0o1777)
        self.data_dir = os.path.join(self.root, "scheduler-data")
        self.address = None
        self._processes = {}  # name -> Popen
        self._admin = None

    # -- paths ----------------------------------------------------------------

    def binary(self, relative):
        path = os.path.join(self.build_dir, relative)
        if not os.access(path, os.X_OK):
            raise AssertionError(f"{path}: not built (DEJA_BUILD_DIR={self.build_dir})")
        return path

    @property
    def ca_file(self):
        """The cluster's CA, which clients trust."""
        return os.path.join(self.data_dir, "tls", "ca.crt")

    @property
    def admin_token_file(self):
        """The first admin token (every project)."""
        return os.path.join(self.data_dir, "admin.token")

    # -- daemons --------------------------------------------------------------

    def _spawn(self, name, argv):
        log = open(os.path.join(self.root, f"{name}.log"), "ab")
        self._processes[name] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                                 stderr=subprocess.STDOUT)
        log.close()

    def start_scheduler(self):
        """Starts the scheduler on a free port and waits until it serves."""
        port_file = os.path.join(self.root, "scheduler.port")
        self._spawn("scheduler", [
            self.binary("scheduler/deja-scheduler"), f"--data_dir={self.data_dir}",
            "--listen=127.0.0.1:0", f"--port_file={port_file}"])

        def ready():
            self._check_alive("scheduler")
            return (os.path.exists(self.admin_token_file) and os.path.exists(port_file)
                    and open(port_file).read().strip())
        self.address = f"127.0.0.1:{poll_until(ready, what='scheduler start')}"

    def admin(self):
        """A Client with the admin token (made once)."""
        if self._admin is None:
            self._admin = deja.Client(self.address, token_file=self.admin_token_file,
                                      tls_ca=self.ca_file)
        return self._admin

    def start_worker(self, worker_id, slots=2):
        """Starts a worker enrolled with a worker token the admin made."""
        token_file = os.path.join(self.root, "worker.token")
        if not os.path.exists(token_file):
            with open(token_file, "w") as f:
                f.write(self.admin().create_token("worker", description="test workers").secret)
        work_dir = os.path.join(self.root, f"worker-{worker_id}")
        os.makedirs(work_dir, exist_ok=True)
        self._spawn(f"worker-{worker_id}", [
            self.binary("worker/deja-worker"), f"--scheduler={self.address}",
            f"--work_dir={work_dir}", f"--slots={slots}", f"--id={worker_id}",
            "--advertise=127.0.0.1:0", f"--tls_ca={self.ca_file}", f"--token_file={token_file}"])

    def wait_for_workers(self, count, timeout=20.0):
        """Waits until `count` workers are connected."""
        def connected():
            for name in self._processes:
                self._check_alive(name)
            return sum(w.connected for w in self.admin().workers()) == count
        poll_until(connected, timeout, f"{count} workers connected")

    def _check_alive(self, name):
        code = self._processes[name].poll()
        if code is not None:
            raise AssertionError(f"{name} exited with {code}:\n{self.log(name)}")

    def log(self, name):
        """The log of daemon `name` ("scheduler", "worker-w1")."""
        with open(os.path.join(self.root, f"{name}.log"), errors="replace") as f:
            return f.read()

    # -- the CLI --------------------------------------------------------------

    def cli_env(self):
        """The environment of a `deja` command: this cluster, the admin token,
        a hash cache of its own."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEJA_")}
        env.update(DEJA_SCHEDULER=self.address, DEJA_TLS_CA=self.ca_file,
                   DEJA_TOKEN_FILE=self.admin_token_file,
                   DEJA_HASH_CACHE=os.path.join(self.root, "hashes"))
        return env

    def cli(self, *args, cwd=None):
        """Runs `deja ARGS...`; returns the CompletedProcess (text), asserting exit 0."""
        result = subprocess.run([self.binary("client/deja"), *args], env=self.cli_env(),
                                cwd=cwd, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (f"deja {' '.join(args)} exited {result.returncode}:\n"
                                        f"{result.stdout}{result.stderr}")
        return result

    def cli_json(self, *args, cwd=None):
        """The last JSON object `deja --json ARGS...` printed."""
        lines = self.cli("--json", *args, cwd=cwd).stdout.strip().splitlines()
        return json.loads(lines[-1])

    # -- teardown -------------------------------------------------------------

    def stop(self, keep=False):
        """Stops every daemon (SIGTERM, then SIGKILL after 10 s), kills what
        jobs are left under the root, and removes it unless `keep`."""
        if self._admin is not None:
            self._admin.close()
        for name, process in sorted(self._processes.items(), key=lambda kv: kv[0] == "scheduler"):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self._kill_stray_jobs()
        if keep:
            for name in self._processes:
                sys.stderr.write(f"===== {name}.log =====\n{self.log(name)}\n")
            sys.stderr.write(f"cluster kept in {self.root}\n")
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def _kill_stray_jobs(self):
        """SIGKILLs the processes whose working directory is under the root:
        jobs left by a daemon that did not stop them."""
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                continue
            if cwd.startswith(self.root + "/"):
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
