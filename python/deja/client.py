"""Client: the Python face of Deja's Scheduler API (protos/deja/v1/scheduler.proto).

Behaves as the `deja` CLI does (client/): the same connection rules
(deja.connection), inputs hashed and uploaded the same way so a job
submitted here has the job_hash the CLI would give it, a random request id
on every submit (so a retried call creates nothing twice), waits that
re-watch a broken stream with backoff, and logs followed by polling as
`deja logs -f` does.

Thread-safe: one Client may be shared by threads (gRPC channels are).
Errors: every method raises a deja.errors.DejaError subclass, whose message
says what the client was doing and the scheduler's reason.
"""

import codecs
import datetime
import pathlib
import time

import grpc

from deja import content, errors, pipelines, spec as specs
from deja.connection import DEFAULT_TIMEOUT, Connection, resolve_address, resolve_security
from deja.records import (Explanation, Job, JobArray, JobState, Pipeline, PipelinePlan,
                          PipelineState, Stats, Token, Worker)
from deja.v1 import access_pb2, job_pb2, scheduler_pb2

# The codes a watch stream breaks with when the scheduler restarts or the
# network blips: watching again may work (client/deja_client.cc).
_RETRYABLE = frozenset({
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED,
    grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.CANCELLED})
_INITIAL_BACKOFF, _MAX_BACKOFF = 0.1, 2.0
# Log polling of a followed job: fast while it grows, up to a second idle.
_FOLLOW_BACKOFF, _FOLLOW_MAX_BACKOFF = 0.1, 1.0
_LOG_STREAMS = {"stdout": job_pb2.LOG_STDOUT, "stderr": job_pb2.LOG_STDERR}
_DEFAULT_LIST_LIMIT = 1000


def _ms(when):
    """Unix ms of a datetime or of seconds since the epoch; 0 for None."""
    if when is None:
        return 0
    if isinstance(when, datetime.datetime):
        return int(when.timestamp() * 1000)
    return int(when * 1000)


class Client:
    """A connection to a Deja scheduler.

        with deja.Client("sched.example.com:7070", token_file="~/.deja/token") as c:
            job = c.run(["python3", "train.py", "--lr", "${params.lr}"],
                        params={"lr": "0.1"}, inputs={"data": "./data"},
                        outputs=["model.bin"])
            print(job.state, job.reused_from, job.time_saved)

    `address` defaults to $DEJA_SCHEDULER, else 127.0.0.1:7070. The channel
    is TLS unless `insecure` (or $DEJA_INSECURE=1), trusting the CA file
    `tls_ca` (else $DEJA_TLS_CA, else the system's roots), with the token
    `token` (else the file `token_file`, else $DEJA_TOKEN, else the file
    $DEJA_TOKEN_FILE). `timeout` (seconds) is the deadline of each call.
    Nothing is dialled until the first call. Raises InvalidArgument when a
    CA or token file cannot be read.
    """

    def __init__(self, address=None, token=None, tls_ca=None, *, token_file=None,
                 insecure=None, timeout=DEFAULT_TIMEOUT):
        security = resolve_security(token=token, token_file=token_file, tls_ca=tls_ca,
                                    insecure=insecure)
        self._conn = Connection(resolve_address(address), security, timeout)

    @property
    def address(self):
        """The scheduler's HOST:PORT."""
        return self._conn.address

    @property
    def timeout(self):
        """The deadline of each call, in seconds."""
        return self._conn.timeout

    def close(self):
        """Closes the connection; the client cannot be used afterwards."""
        self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, method, request, action):
        return self._conn.unary(getattr(self._conn.scheduler, method), request, action)

    # -- jobs ---------------------------------------------------------------

    def _prepare_spec(self, command, inputs, spec, verb):
        """The JobSpec of submit's arguments, its inputs hashed and uploaded."""
        job = specs.job_spec(command, **spec)
        action = f"{verb} {job.app.name}"
        refs, blobs = content.prepare_inputs(inputs, action)
        job.inputs.extend(refs)
        if blobs:
            content.upload_missing(self._conn, blobs, action)
        return job, action

    def submit(self, command, *, inputs=None, **spec):
        """Submits a job and returns it (Job) as stored: QUEUED, or already
        MATERIALIZING from an earlier success (`job.reused_from`).

        `command` is the argv, a list of words; the scheduler substitutes
        "${params.X}" and "${inputs.X}" in it. Keywords (as `deja submit`'s
        flags): inputs={name: local path or (local path, workspace path)},
        files and directories hashed and uploaded if the store lacks them;
        outputs=[globs]; params, env, platform, labels (dicts); project
        (default: the token's, else "default"); name (default: the
        command's basename), version, image, cache_key=[params]; reuse=False
        (non-deterministic app), side_effects=True (always executes);
        memoization="on"|"off"|"inherit"; force=True (run even if an
        identical job succeeded); reuse_job_id; request_id (idempotency key;
        default: random); cpus, memory ("4GiB"), gpus, time_limit (seconds
        or "1h30m"); fail_unplaceable, network.

        Raises NotFound for a missing input path, InvalidArgument naming
        the field the scheduler refused, and the connection's errors.
        """
        job, action = self._prepare_spec(command, inputs, spec, "submit")
        response = self._call("Submit", scheduler_pb2.SubmitRequest(spec=job), action)
        return Job.from_proto(response.job)

    def run(self, command, *, timeout=None, **submit):
        """Submits a job (submit's arguments) and waits until it ends
        (wait); returns the ended Job, whatever its state."""
        job = self.submit(command, **submit)
        return self.wait(job.id, timeout)

    def submit_array(self, command, elements, *, inputs=None, **spec):
        """Submits a job array: one job per element, each memoized on its own,
        all stored in one commit and answered in one reply (SubmitArray).

        `elements` is a list of param dicts ([{"i": "1"}, {"i": "2"}]), each
        added to the shared `params`. The other arguments are submit's;
        with the request id (random by default), element i is submitted as
        "<request_id>#<i>", so resubmitting the same call returns the same
        array. Returns the JobArray ("a12" and its jobs, in element order).
        """
        job, action = self._prepare_spec(command, inputs, spec, "submit array of")
        request = scheduler_pb2.SubmitArrayRequest(spec=job, elements=[
            scheduler_pb2.ArrayElement(params={k: str(v) for k, v in e.items()})
            for e in elements])
        return JobArray.from_submit(self._call("SubmitArray", request, action))

    def array(self, array_id):
        """The JobArray `array_id` now: its jobs' states, counts per state and
        reuses (NotFound for an unknown array)."""
        return JobArray.from_proto(self._call(
            "GetArray", scheduler_pb2.GetArrayRequest(array_id=array_id), f"get array {array_id}"))

    def wait_array(self, array_id, timeout=None):
        """Polls the array until every element has ended (backing off from
        0.1 s to 1 s); returns it. DeadlineExceeded after `timeout` seconds
        (None: no limit), naming the states reached."""
        deadline = None if timeout is None else time.monotonic() + timeout
        backoff = _FOLLOW_BACKOFF
        while True:
            array = self.array(array_id)
            if array.ended:
                return array
            if deadline is not None and time.monotonic() + backoff > deadline:
                raise errors.DeadlineExceeded(
                    f"array {array_id} did not finish within {timeout:g}s (states {array.states})",
                    f"wait for array {array_id}")
            time.sleep(backoff)
            backoff = min(backoff * 2, _FOLLOW_MAX_BACKOFF)

    def status(self, job_id):
        """The Job `job_id` now (NotFound when there is none)."""
        return Job.from_proto(self._call("GetJob", scheduler_pb2.GetJobRequest(job_id=job_id),
                                         f"get job {job_id}"))

    def wait(self, job_id, timeout=None):
        """Watches the job (WatchJob) until it ends and returns it.

        A broken stream (the scheduler restarting...) is watched again with
        backoff. DeadlineExceeded ("job j12 did not finish within 30s (last
        state RUNNING)") after `timeout` seconds (None: no limit); NotFound
        at once for an unknown job.
        """
        final = self._wait("job", job_id, self._conn.scheduler.WatchJob,
                           scheduler_pb2.GetJobRequest(job_id=job_id),
                           lambda job: JobState.from_proto(job.state), timeout)
        return Job.from_proto(final)

    def jobs(self, project=None, states=(), app=None, labels=None, array_id=None, since=None,
             limit=_DEFAULT_LIST_LIMIT):
        """The newest `limit` jobs (0: every one) that match, oldest first.

        Filters, all of which a job must pass: `project`, `states` (state
        names), `app` name, every one of `labels`, `array_id`, created at
        or after `since` (a datetime or Unix seconds).
        """
        request = scheduler_pb2.ListJobsRequest(
            project=project or "", app=app or "", labels=labels or {}, array_id=array_id or "",
            since_ms=_ms(since), states=[job_pb2.JobState.Value(str(s)) for s in states])
        pages = []
        while True:
            request.limit = 0 if limit == 0 else limit - sum(len(p) for p in pages)
            response = self._call("ListJobs", request, "list jobs")
            pages.append([Job.from_proto(j) for j in response.jobs])
            if (not response.next_page_token or not response.jobs or
                    (limit and sum(len(p) for p in pages) >= limit)):
                break
            request.page_token = response.next_page_token
        # Pages come newest first, each oldest first.
        return [job for page in reversed(pages) for job in page]

    def cancel(self, job_id):
        """Cancels the job; returns it (CANCELLED, or its end state if it had
        already ended)."""
        return Job.from_proto(self._call("CancelJob", scheduler_pb2.GetJobRequest(job_id=job_id),
                                         f"cancel job {job_id}"))

    def explain(self, job_id):
        """Why the job was or was not reused (Explanation)."""
        return Explanation.from_proto(self._call(
            "Explain", scheduler_pb2.GetJobRequest(job_id=job_id), f"explain job {job_id}"))

    def stats(self, project=None, since=None):
        """Jobs, reuses, reuse rate and time saved, in all and per app
        (Stats); `project` None: every project the token sees; `since`: a
        datetime or Unix seconds (None: every job)."""
        return Stats.from_proto(self._call(
            "Stats", scheduler_pb2.StatsRequest(project=project or "", since_ms=_ms(since)),
            "stats"))

    # -- logs and outputs ---------------------------------------------------

    def _log_chunks(self, job_id, stream, offset, action):
        """The log's bytes from `offset`, a ReadLogs chunk at a time, until eof."""
        while True:
            response = self._call("ReadLogs", scheduler_pb2.ReadLogsRequest(
                job_id=job_id, stream=stream, offset=offset), action)
            if response.data:
                yield response.data
            offset += len(response.data)
            # An empty chunk without eof would loop for ever: no more now.
            if response.eof or not response.data:
                return

    def logs(self, job_id, stream="stdout", follow=False):
        """A job's log: "stdout" or "stderr" (a reused job's log is its source's).

        Without `follow`, returns the whole log as a str (undecodable bytes
        replaced). With `follow`, returns an iterator of str chunks: what
        the log holds, then what it gains while the job runs (a queued job:
        from its start), ending when the job ends, as `deja logs -f`.
        """
        if stream not in _LOG_STREAMS:
            raise errors.InvalidArgument(f"stream {stream!r}: expected stdout or stderr")
        action = f"read the {stream} of job {job_id}"
        if follow:
            return self._follow(job_id, _LOG_STREAMS[stream], action)
        data = b"".join(self._log_chunks(job_id, _LOG_STREAMS[stream], 0, action))
        return data.decode("utf-8", "replace")

    def _follow(self, job_id, stream, action):
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        offset, idle = 0, _FOLLOW_BACKOFF
        while True:
            try:
                job = self.status(job_id)
            except errors.DejaError as e:
                if e.code not in _RETRYABLE:
                    raise
                time.sleep(1)
                continue
            grew = False
            # A job not placed yet has no log; one whose worker is away has
            # none to give now: wait, or end without it.
            if job.worker_id or job.ended:
                try:
                    for chunk in self._log_chunks(job_id, stream, offset, action):
                        offset += len(chunk)
                        grew = True
                        text = decoder.decode(chunk)
                        if text:
                            yield text
                except errors.DejaError:
                    pass  # as the CLI: read again on the next turn; GetJob says what is wrong
            if job.ended:  # the logs were read once more after the end
                rest = decoder.decode(b"", final=True)
                if rest:
                    yield rest
                return
            if grew:
                idle = _FOLLOW_BACKOFF
            else:
                time.sleep(idle)
                idle = min(idle * 2, _FOLLOW_MAX_BACKOFF)

    def get(self, job_id, dest=None):
        """Downloads every output of a SUCCEEDED job into `dest` (default
        ./JOB_ID), byte-identical (checked) and with its mode bits; returns
        their local paths (pathlib.Path). FailedPrecondition for a job that
        did not succeed or has no outputs."""
        action = f"get the outputs of job {job_id}"
        job = self.status(job_id)
        if job.state != JobState.SUCCEEDED:
            raise errors.FailedPrecondition(
                f"job {job_id} is {job.state}; only a SUCCEEDED job has outputs to get", action)
        if not job.outputs:
            raise errors.FailedPrecondition(
                f"job {job_id} has no outputs (declare them with outputs= when submitting)",
                action)
        for i, output in enumerate(job.outputs):
            content.check_workspace_path(f"outputs[{i}].path", output.path)
        root = pathlib.Path(dest if dest is not None else job_id)
        paths = []
        for output in job.outputs:
            path = root / output.path
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                content.download(self._conn, output.digest, output.size, str(path),
                                 f"get {output.path} of job {job_id}")
                path.chmod(output.mode & 0o777 or 0o644)
            except OSError as e:
                raise errors.from_os_error(e, action) from None
            paths.append(path)
        return paths

    # -- pipelines ----------------------------------------------------------

    def _pipeline_request(self, source, params, project, force, force_nodes, reuse,
                          request_id, verb):
        if isinstance(source, pipelines.PipelineDef):
            if params:
                raise errors.InvalidArgument(
                    "params= substitutes ${pipeline.X} in a YAML file; a PipelineDef takes "
                    "its values directly")
            definition = source
        else:
            definition = pipelines.load_yaml(source, params)
        spec = definition.to_spec()
        action = f"{verb} pipeline {spec.name}"
        spec.project = project or spec.project
        spec.force = spec.force or bool(force)
        if reuse is False:
            spec.reuse = False
        names = [n.name for n in definition.nodes]
        for node in force_nodes:
            if node not in names:
                raise errors.InvalidArgument(f'force_nodes "{node}": the pipeline has no node of '
                                             f"that name (its nodes: {', '.join(names)})", action)
            if node not in spec.force_nodes:
                spec.force_nodes.append(node)
        # Local files and directories, hashed like submit's inputs (node by
        # node, since two nodes may name inputs alike), uploaded together.
        blobs = {}
        for node, proto in zip(definition.nodes, spec.nodes):
            label = f"{definition.source or definition.name}: nodes[{node.name}].inputs[{{}}]"
            refs, found = content.prepare_inputs(node.inputs, action, label)
            proto.inputs.extend(refs)
            for blob in found:
                blobs.setdefault(blob.digest, blob)
        if blobs:
            content.upload_missing(self._conn, list(blobs.values()), action)
        request = scheduler_pb2.SubmitPipelineRequest(
            spec=spec, request_id=request_id or specs.random_request_id())
        return request, action

    def pipeline(self, source, *, params=None, project=None, force=False, force_nodes=(),
                 reuse=None, request_id=None, wait=False, timeout=None):
        """Submits a pipeline and returns it (Pipeline), as `deja pipeline run`.

        `source` is a YAML file (docs/pipelines.md; `params` override its
        pipeline parameters) or a PipelineDef. Its local inputs are hashed
        and uploaded. `project` overrides the file's; `force` runs every
        node fresh, `force_nodes` these; `reuse=False` turns pipeline-wide
        reuse off. With `wait`, returns once the pipeline has ended
        (wait_pipeline with `timeout`). Raises InvalidArgument
        "FILE:LINE: FIELD: problem" for a bad file.
        """
        request, action = self._pipeline_request(source, params, project, force, force_nodes,
                                                 reuse, request_id, "submit")
        started = Pipeline.from_proto(self._call("SubmitPipeline", request, action))
        return self.wait_pipeline(started.id, timeout) if wait else started

    def plan_pipeline(self, source, *, params=None, project=None, force=False, force_nodes=(),
                      reuse=None):
        """Which nodes `pipeline` would reuse and which it would run, and the
        time reuse would save (PipelinePlan); submits nothing (local inputs
        are uploaded, as `deja pipeline plan` does)."""
        request, action = self._pipeline_request(source, params, project, force, force_nodes,
                                                 reuse, None, "plan")
        return PipelinePlan.from_proto(self._call("PlanPipeline", request, action))

    def pipeline_status(self, pipeline_id):
        """The Pipeline `pipeline_id` now, each node with its job's state."""
        return Pipeline.from_proto(self._call(
            "GetPipeline", scheduler_pb2.GetPipelineRequest(pipeline_id=pipeline_id),
            f"get pipeline {pipeline_id}"))

    def wait_pipeline(self, pipeline_id, timeout=None):
        """Watches the pipeline until it has ended and returns it, like wait."""
        final = self._wait("pipeline", pipeline_id, self._conn.scheduler.WatchPipeline,
                           scheduler_pb2.GetPipelineRequest(pipeline_id=pipeline_id),
                           lambda p: PipelineState.from_proto(p.state), timeout)
        return Pipeline.from_proto(final)

    def cancel_pipeline(self, pipeline_id):
        """Cancels the pipeline (its running jobs and the nodes not started)."""
        return Pipeline.from_proto(self._call(
            "CancelPipeline", scheduler_pb2.GetPipelineRequest(pipeline_id=pipeline_id),
            f"cancel pipeline {pipeline_id}"))

    # -- cluster ------------------------------------------------------------

    def workers(self):
        """The workers the scheduler knows (Worker), connected or not."""
        response = self._call("ListWorkers", scheduler_pb2.ListWorkersRequest(), "list workers")
        return [Worker.from_proto(w) for w in response.workers]

    def create_token(self, role, project=None, description=""):
        """Creates a token (an admin's call) and returns it (Token; its
        `secret` is shown only now). `role`: "reader", "submitter", "admin"
        or "worker"; `project` None: every project."""
        request = access_pb2.CreateTokenRequest(role=access_pb2.Role.Value(role.upper()),
                                                project=project or "", description=description)
        return Token.from_proto(self._call("CreateToken", request, f"create a {role} token"))

    # -- watching -----------------------------------------------------------

    def _wait(self, kind, ident, method, request, state_of, timeout):
        """Watches `ident` through the server stream `method` until a snapshot
        whose state_of(...) has ended, re-watching with backoff (the CLI's
        WaitForJob); returns that snapshot."""
        action = f"wait for {kind} {ident}"
        deadline = None if timeout is None else time.monotonic() + timeout
        last, last_error, backoff = None, "", _INITIAL_BACKOFF
        while True:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            call = method(request, timeout=remaining)
            try:
                for snapshot in call:
                    last = snapshot
                    if state_of(snapshot).ended:
                        call.cancel()  # nothing follows the end
                        return snapshot
            except grpc.RpcError as e:
                if e.code() not in _RETRYABLE:
                    raise self._conn.error(e, action) from None
                if e.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                    last_error = e.details()
            if deadline is not None and time.monotonic() >= deadline:
                detail = (f" (last state {state_of(last)})" if last is not None
                          else f" ({last_error})" if last_error else "")
                raise errors.DeadlineExceeded(
                    f"{kind} {ident} did not finish within {timeout:g}s{detail}", action)
            time.sleep(backoff if deadline is None
                       else min(backoff, max(deadline - time.monotonic(), 0.0)))
            backoff = min(backoff * 2, _MAX_BACKOFF)
