"""Single jobs against a real cluster: submit, run, status, wait, logs (and
following them), get, cancel, explain, stats, listing."""

import os
import stat
import threading

import pytest

import deja
from cluster import poll_until


def test_run_returns_the_ended_job_and_its_logs_and_outputs(client, tmp_path, unique):
    (tmp_path / "words.txt").write_text("alpha\nbeta\n")
    job = client.run(
        ["sh", "-c", "mkdir out && tr a-z A-Z < ${inputs.words} > out/upper.txt && "
         "printf '#!/bin/sh\\necho hi\\n' > out/run.sh && chmod 755 out/run.sh && "
         "echo ${params.greeting} && echo warned >&2"],
        inputs={"words": tmp_path / "words.txt"}, outputs=["out/*"],
        params={"greeting": f"hello-{unique}"}, labels={"suite": "python"}, timeout=60)
    assert (job.state, job.exit_code, job.reused) == (deja.JobState.SUCCEEDED, 0, False)
    assert job.state == "SUCCEEDED" and job.ended and job.app == "sh"
    assert (job.params, job.labels) == ({"greeting": f"hello-{unique}"}, {"suite": "python"})
    assert client.status(job.id).job_hash == job.job_hash
    assert client.logs(job.id) == f"hello-{unique}\n"
    assert client.logs(job.id, stream="stderr") == "warned\n"

    paths = client.get(job.id, tmp_path / "got")
    assert sorted(p.relative_to(tmp_path / "got").as_posix() for p in paths) == [
        "out/run.sh", "out/upper.txt"]
    assert (tmp_path / "got/out/upper.txt").read_text() == "ALPHA\nBETA\n"
    assert stat.S_IMODE(os.stat(tmp_path / "got/out/run.sh").st_mode) == 0o755
    assert {o.path: o.digest for o in job.outputs}["out/upper.txt"] == deja.digest_bytes(
        b"ALPHA\nBETA\n")


def test_the_same_job_again_is_reused_and_explained(client, unique):
    command = ["sh", "-c", f"echo {unique} > out.txt"]
    first = client.run(command, outputs=["out.txt"], timeout=60)
    second = client.run(command, outputs=["out.txt"], timeout=60)
    assert second.id != first.id
    assert (second.state, second.reused_from, second.job_hash) == (
        "SUCCEEDED", first.id, first.job_hash)
    assert second.time_saved == first.run_time
    assert [o.digest for o in second.outputs] == [o.digest for o in first.outputs]
    explained = client.explain(second.id)
    assert explained.verdict == "REUSED" and first.id in explained.summary
    assert client.explain(first.id).verdict == "NO_MATCHING_ENTRY"
    # A forced run runs again; stats count the reuse.
    forced = client.run(command, outputs=["out.txt"], force=True, timeout=60)
    assert not forced.reused and client.explain(forced.id).verdict == "FORCED"
    stats = client.stats()
    assert stats.total.reused >= 1 and stats.total.jobs >= 3
    assert "sh" in {app.app for app in stats.apps}


def test_a_failed_job_keeps_its_exit_code_and_has_nothing_to_get(client, unique):
    job = client.run(["sh", "-c", f"echo {unique} failing >&2; exit 3"], timeout=60)
    assert (job.state, job.exit_code) == (deja.JobState.FAILED, 3)
    assert client.logs(job.id, "stderr") == f"{unique} failing\n"
    with pytest.raises(deja.FailedPrecondition,
                       match=f"get the outputs of job {job.id}: job {job.id} is FAILED; only a "
                             "SUCCEEDED job has outputs to get"):
        client.get(job.id)


def test_logs_follow_streams_a_running_job_until_it_ends(cluster, client, unique):
    gate = os.path.join(cluster.root, f"gate-{unique}")
    job = client.submit(["sh", "-c", f"echo first-{unique}; while [ ! -e {gate} ]; do sleep 0.05;"
                         f" done; echo second-{unique}"], time_limit=120)
    chunks = client.logs(job.id, follow=True)
    seen = ""
    while "first" not in seen:
        seen += next(chunks)
    # What the job wrote so far arrived while it still runs.
    assert seen == f"first-{unique}\n"
    assert client.status(job.id).state == "RUNNING"
    open(gate, "w").close()
    seen += "".join(chunks)  # ends when the job ends
    assert seen == f"first-{unique}\nsecond-{unique}\n"
    assert client.status(job.id).state == "SUCCEEDED"


def test_cancel_stops_a_running_job(client, unique):
    job = client.submit(["sh", "-c", f": {unique}; sleep 600"], time_limit=900)
    poll_until(lambda: client.status(job.id).state == "RUNNING", 30, f"{job.id} RUNNING")
    cancelled = client.cancel(job.id)
    assert cancelled.state == deja.JobState.CANCELLED
    assert client.wait(job.id, timeout=30).state == "CANCELLED"


def test_wait_gives_up_after_its_timeout_naming_the_last_state(client, unique):
    job = client.submit(["sh", "-c", f": {unique}; sleep 600"], time_limit=900)
    try:
        with pytest.raises(deja.DeadlineExceeded,
                           match=rf"wait for job {job.id}: job {job.id} did not finish within "
                                 r"0.5s \(last state (QUEUED|ASSIGNED|RUNNING)\)"):
            client.wait(job.id, timeout=0.5)
    finally:
        client.cancel(job.id)


def test_wait_from_another_thread_sees_the_end(client, unique):
    job = client.submit(["sh", "-c", f"echo {unique}"])
    result = {}
    waiter = threading.Thread(target=lambda: result.update(job=client.wait(job.id, 60)))
    waiter.start()
    waiter.join(90)
    assert result["job"].state == "SUCCEEDED"


def test_jobs_lists_by_label_and_state(client, unique):
    ran = client.run(["echo", unique], labels={"run": unique}, timeout=60)
    client.run(["echo", unique + "-other"], labels={"run": unique + "-other"}, timeout=60)
    assert [j.id for j in client.jobs(labels={"run": unique})] == [ran.id]
    assert [j.id for j in client.jobs(labels={"run": unique}, states=["FAILED"])] == []
    listed = client.jobs(states=["SUCCEEDED"], limit=0)
    assert ran.id in {j.id for j in listed}
    assert all(j.state == "SUCCEEDED" for j in listed)
