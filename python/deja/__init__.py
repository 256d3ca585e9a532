"""Python client of Deja, the distributed job scheduler that never runs the same job twice.

    import deja
    with deja.Client() as client:          # $DEJA_SCHEDULER, $DEJA_TOKEN_FILE...
        job = client.run(["echo", "hello"])
        print(job.state, client.logs(job.id))

Client (deja.client) is the API; records (Job, JobArray, Pipeline...) are
what it returns; every error is a DejaError (deja.errors); PipelineDef
builds a pipeline in Python, load_yaml reads one from a file; hashing
computes digests and job hashes as the scheduler does. docs/python.md is
the guide.
"""

from deja.client import Client
from deja.errors import (AlreadyExists, Cancelled, DataLoss, DeadlineExceeded, DejaError,
                         FailedPrecondition, Internal, InvalidArgument, NotFound,
                         PermissionDenied, ResourceExhausted, Unauthenticated, Unavailable,
                         Unimplemented)
from deja.hashing import digest_bytes, digest_file, digest_tree, job_hash
from deja.pipelines import Node, PipelineDef, load_yaml, parse_yaml
from deja.records import (AppStats, ArrayJob, Explanation, FieldDiff, Job, JobArray, JobState,
                          NodePlan, NodeState, NodeStatus, OutputFile, Pipeline, PipelinePlan,
                          PipelineState, Stats, Token, Worker)

__version__ = "0.1.0"

__all__ = [
    "Client", "DejaError", "AlreadyExists", "Cancelled", "DataLoss", "DeadlineExceeded",
    "FailedPrecondition", "Internal", "InvalidArgument", "NotFound", "PermissionDenied",
    "ResourceExhausted", "Unauthenticated", "Unavailable", "Unimplemented", "digest_bytes",
    "digest_file", "digest_tree", "job_hash", "Node", "PipelineDef", "load_yaml", "parse_yaml",
    "AppStats", "ArrayJob", "Explanation", "FieldDiff", "Job", "JobArray", "JobState",
    "NodePlan", "NodeState", "NodeStatus", "OutputFile", "Pipeline", "PipelinePlan",
    "PipelineState", "Stats", "Token", "Worker",
]
