"""Typed records of what the scheduler returns: jobs, arrays, pipelines...

Each record is a small frozen dataclass made from one protobuf message, with
the fields people use, in Python types (states as enums that compare equal
to their names, times as UTC datetimes, durations as timedeltas), and the
message itself as `.proto` for everything else. Records are snapshots: they
never change; ask the Client again for news.
"""

import datetime
import enum
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from google.protobuf.message import Message

from deja.v1 import access_pb2, job_pb2, pipeline_pb2, scheduler_pb2


def _state(cls, proto_enum, value, prefix):
    """The member of enum `cls` for `value` of `proto_enum`, whose names are
    the member's with `prefix` ("PIPELINE_RUNNING"), and *_UNSPECIFIED."""
    name = proto_enum.Name(value)
    return cls.UNSPECIFIED if name.endswith("_UNSPECIFIED") else cls(name[len(prefix):])


class JobState(str, enum.Enum):
    """A job's state. Compares equal to its name: `job.state == "SUCCEEDED"`."""

    UNSPECIFIED = "UNSPECIFIED"
    QUEUED = "QUEUED"
    ASSIGNED = "ASSIGNED"
    RUNNING = "RUNNING"
    MATERIALIZING = "MATERIALIZING"
    WAITING = "WAITING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def ended(self):
        """True for SUCCEEDED, FAILED and CANCELLED: nothing follows."""
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)

    @classmethod
    def from_proto(cls, value):
        """The state of a deja.v1.JobState number."""
        return _state(cls, job_pb2.JobState, value, "")

    def __str__(self):
        return self.value


class PipelineState(str, enum.Enum):
    """A pipeline's state (PIPELINE_RUNNING is RUNNING...)."""

    UNSPECIFIED = "UNSPECIFIED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def ended(self):
        """True for every state but RUNNING (and UNSPECIFIED)."""
        return self in (PipelineState.SUCCEEDED, PipelineState.FAILED, PipelineState.CANCELLED)

    @classmethod
    def from_proto(cls, value):
        """The state of a deja.v1.PipelineState number."""
        return _state(cls, pipeline_pb2.PipelineState, value, "PIPELINE_")

    def __str__(self):
        return self.value


class NodeState(str, enum.Enum):
    """A pipeline node's state (NODE_PENDING is PENDING...)."""

    UNSPECIFIED = "UNSPECIFIED"
    PENDING = "PENDING"
    SUBMITTED = "SUBMITTED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    UPSTREAM_FAILED = "UPSTREAM_FAILED"
    CANCELLED = "CANCELLED"

    @classmethod
    def from_proto(cls, value):
        """The state of a deja.v1.NodeState number."""
        return _state(cls, pipeline_pb2.NodeState, value, "NODE_")

    def __str__(self):
        return self.value


def _time(ms):
    """A Unix time in ms as an aware UTC datetime; None for 0 (not set)."""
    if not ms:
        return None
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)


def _duration(ms):
    return datetime.timedelta(milliseconds=ms)


@dataclass(frozen=True)
class OutputFile:
    """A declared output of a succeeded job, as stored in the content store."""

    path: str
    digest: str
    size: int
    mode: int

    @classmethod
    def from_proto(cls, proto):
        """From a deja.v1.OutputFile."""
        return cls(proto.path, proto.digest, proto.size, proto.mode)


@dataclass(frozen=True)
class Job:
    """The scheduler's record of a job (deja.v1.Job).

    `reused_from` is the job it was served from ("" when it ran), and
    `time_saved` the run time that reuse saved. `exit_code` is None until
    the command has exited (a reused job's is 0, as its source's).
    """

    id: str
    state: JobState
    project: str
    app: str
    job_hash: str
    exit_code: Optional[int]
    worker_id: str
    attempt: int
    created_at: Optional[datetime.datetime]
    started_at: Optional[datetime.datetime]
    finished_at: Optional[datetime.datetime]
    run_time: datetime.timedelta
    reused_from: str
    time_saved: datetime.timedelta
    outputs: List[OutputFile]
    message: str
    params: Dict[str, str]
    labels: Dict[str, str]
    array_id: str
    proto: job_pb2.Job = field(repr=False, compare=False)

    @property
    def reused(self):
        """True when the job was served from an earlier success."""
        return bool(self.reused_from)

    @property
    def ended(self):
        """True once the job is SUCCEEDED, FAILED or CANCELLED."""
        return self.state.ended

    @classmethod
    def from_proto(cls, proto):
        """From a deja.v1.Job."""
        return cls(
            id=proto.job_id,
            state=JobState.from_proto(proto.state),
            project=proto.spec.project,
            app=proto.spec.app.name,
            job_hash=proto.job_hash,
            exit_code=proto.exit_code if proto.HasField("exit_code") else None,
            worker_id=proto.worker_id,
            attempt=proto.attempt,
            created_at=_time(proto.created_at_ms),
            started_at=_time(proto.started_at_ms),
            finished_at=_time(proto.finished_at_ms),
            run_time=_duration(proto.run_time_ms),
            reused_from=proto.reused_from,
            time_saved=_duration(proto.time_saved_ms),
            outputs=[OutputFile.from_proto(o) for o in proto.outputs],
            message=proto.message,
            params=dict(proto.spec.params),
            labels=dict(proto.spec.labels),
            array_id=proto.array_id,
            proto=proto,
        )


@dataclass(frozen=True)
class ArrayJob:
    """One element of a job array: its job, state, reuse and own params."""

    id: str
    state: JobState
    reused: bool
    params: Dict[str, str]

    @classmethod
    def from_proto(cls, proto):
        """From a deja.v1.ArrayJob."""
        return cls(proto.job_id, JobState.from_proto(proto.state), proto.reused,
                   dict(proto.params))


@dataclass(frozen=True)
class JobArray:
    """A job array (submit_array, array): its id ("a12") and its jobs in element order.

    `states` counts the elements per state name and `reused` those served
    from earlier successes. In the reply of Client.submit_array, `project`
    is "" and `created_at` None (Client.array has them).
    """

    id: str
    project: str
    created_at: Optional[datetime.datetime]
    jobs: List[ArrayJob]
    states: Dict[str, int]
    reused: int
    proto: Message = field(repr=False, compare=False)

    @property
    def ended(self):
        """True when every element has ended."""
        return all(job.state.ended for job in self.jobs)

    @property
    def job_ids(self):
        """The elements' job ids, in element order."""
        return [job.id for job in self.jobs]

    @classmethod
    def from_proto(cls, proto):
        """From a deja.v1.JobArray (GetArray)."""
        return cls(proto.array_id, proto.project, _time(proto.created_at_ms),
                   [ArrayJob.from_proto(j) for j in proto.jobs], dict(proto.states),
                   proto.reused, proto)

    @classmethod
    def from_submit(cls, proto):
        """From a deja.v1.SubmitArrayResponse: states and reuses counted here."""
        jobs = [ArrayJob.from_proto(j) for j in proto.jobs]
        states = {}
        for job in jobs:
            states[job.state.value] = states.get(job.state.value, 0) + 1
        return cls(proto.array_id, "", None, jobs, states, sum(j.reused for j in jobs), proto)


@dataclass(frozen=True)
class NodeStatus:
    """A pipeline node as it is now: its job and that job's reuse facts."""

    name: str
    state: NodeState
    job_id: str
    job_state: JobState
    reused_from: str
    run_time: datetime.timedelta
    time_saved: datetime.timedelta
    message: str
    worker_id: str

    @property
    def reused(self):
        """True when the node's job was served from an earlier success."""
        return bool(self.reused_from)

    @classmethod
    def from_proto(cls, proto):
        """From a deja.v1.NodeStatus."""
        return cls(proto.name, NodeState.from_proto(proto.state), proto.job_id,
                   JobState.from_proto(proto.job_state), proto.reused_from,
                   _duration(proto.run_time_ms), _duration(proto.time_saved_ms), proto.message,
                   proto.worker_id)


@dataclass(frozen=True)
class Pipeline:
    """The scheduler's record of a pipeline (deja.v1.Pipeline); nodes in spec order."""

    id: str
    name: str
    project: str
    state: PipelineState
    nodes: List[NodeStatus]
    created_at: Optional[datetime.datetime]
    finished_at: Optional[datetime.datetime]
    run: int
    message: str
    proto: pipeline_pb2.Pipeline = field(repr=False, compare=False)

    @property
    def ended(self):
        """True once the pipeline SUCCEEDED, FAILED or was CANCELLED."""
        return self.state.ended

    def node(self, name):
        """The node called `name`; KeyError if there is none."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"pipeline {self.id} has no node {name!r}")

    @classmethod
    def from_proto(cls, proto):
        """From a deja.v1.Pipeline."""
        return cls(proto.pipeline_id, proto.spec.name, proto.spec.project,
                   PipelineState.from_proto(proto.state),
                   [NodeStatus.from_proto(n) for n in proto.nodes], _time(proto.created_at_ms),
                   _time(proto.finished_at_ms), proto.run, proto.message, proto)


@dataclass(frozen=True)
class NodePlan:
    """What PlanPipeline predicts for one node: reused (from which job) or run (why)."""

    name: str
    reused: bool
    source_job_id: str
    time_saved: datetime.timedelta
    reason: str
    job_hash: str

    @classmethod
    def from_proto(cls, proto):
        """From a deja.v1.NodePlan."""
        return cls(proto.name, proto.reused, proto.source_job_id,
                   _duration(proto.time_saved_ms), proto.reason, proto.job_hash)


@dataclass(frozen=True)
class PipelinePlan:
    """A dry run of a pipeline: each node's plan and the time reuse would save."""

    nodes: List[NodePlan]
    time_saved: datetime.timedelta
    proto: pipeline_pb2.PipelinePlan = field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, proto):
        """From a deja.v1.PipelinePlan."""
        return cls([NodePlan.from_proto(n) for n in proto.nodes],
                   _duration(proto.time_saved_ms), proto)


@dataclass(frozen=True)
class FieldDiff:
    """One identity field that differs between a job and the nearest memo entry."""

    field: str
    job_value: str
    entry_value: str


@dataclass(frozen=True)
class Explanation:
    """Why a job was or was not reused (Explain).

    `verdict` is one of REUSED, MEMOIZATION_OFF, FORCED, NO_MATCHING_ENTRY,
    ENTRY_UNUSABLE, WAITED, PENDING; `differences` compares the job with the
    nearest memo entry of its app when none matched.
    """

    job_id: str
    verdict: str
    summary: str
    differences: List[FieldDiff]
    proto: scheduler_pb2.ExplainResponse = field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, proto):
        """From a deja.v1.ExplainResponse."""
        return cls(proto.job_id, type(proto).Verdict.Name(proto.verdict), proto.summary,
                   [FieldDiff(d.field, d.job_value, d.entry_value) for d in proto.differences],
                   proto)


@dataclass(frozen=True)
class AppStats:
    """Jobs, reuses and time saved of one app (or of all: `app` "")."""

    app: str
    jobs: int
    succeeded: int
    failed: int
    reused: int
    reuse_rate: float
    run_time: datetime.timedelta
    time_saved: datetime.timedelta

    @classmethod
    def from_proto(cls, proto):
        """From a deja.v1.AppStats."""
        return cls(proto.app_name, proto.jobs, proto.succeeded, proto.failed, proto.reused,
                   proto.reuse_rate, _duration(proto.run_time_ms),
                   _duration(proto.time_saved_ms))


@dataclass(frozen=True)
class Stats:
    """Stats: the total and one AppStats per app."""

    total: AppStats
    apps: List[AppStats]
    proto: scheduler_pb2.StatsResponse = field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, proto):
        """From a deja.v1.StatsResponse."""
        return cls(AppStats.from_proto(proto.total),
                   [AppStats.from_proto(a) for a in proto.apps], proto)


@dataclass(frozen=True)
class Worker:
    """A worker the scheduler knows: its id, whether it is connected, its slots."""

    id: str
    connected: bool
    slots: int
    busy_slots: int
    proto: scheduler_pb2.WorkerInfo = field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, proto):
        """From a deja.v1.WorkerInfo."""
        return cls(proto.worker_id, proto.connected, proto.slots, proto.busy_slots, proto)


@dataclass(frozen=True)
class Token:
    """A token just created: `secret` is the token to hand out, shown only once."""

    id: str
    role: str
    project: str
    secret: str = field(repr=False)
    proto: access_pb2.CreateTokenResponse = field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, proto):
        """From a deja.v1.CreateTokenResponse."""
        return cls(proto.token.id, access_pb2.Role.Name(proto.token.role), proto.token.project,
                   proto.secret, proto)
