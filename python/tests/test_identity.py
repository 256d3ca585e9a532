"""The same job from the CLI and from Python is one job: same input digests,
same job_hash, and whichever comes second is reused."""

import os

import pytest

import deja


@pytest.fixture
def inputs(tmp_path, unique):
    """A directory input (nested files, an executable, a symlink, an empty
    dir) and a file input, unique to the test."""
    data = tmp_path / "data"
    (data / "sub" / "deeper").mkdir(parents=True)
    (data / "empty").mkdir()
    (data / "a.txt").write_text(f"a {unique}\n")
    (data / "sub" / "b.csv").write_text("x,y\n1,2\n")
    (data / "sub" / "deeper" / "run.sh").write_text("#!/bin/sh\necho run\n")
    os.chmod(data / "sub" / "deeper" / "run.sh", 0o755)
    os.symlink("a.txt", data / "link")
    (tmp_path / "config.ini").write_text("[x]\nk = v\n")
    return data, tmp_path / "config.ini"


def job_spec_fields(spec):
    """What identity sees of a spec, as comparable values."""
    return ([(i.name, i.kind, i.digest, i.path, i.size, i.total_bytes) for i in spec.inputs],
            list(spec.app.command), dict(spec.params), dict(spec.app.env), list(spec.outputs))


def test_a_cli_job_is_reused_by_the_same_job_from_python(cluster, client, inputs, unique):
    data, config = inputs
    command = ["sh", "-c", "find ${inputs.data} | sort > listing.txt; cat ${inputs.cfg}"]
    cli_job = cluster.cli_json(
        "submit", "--input", f"data={data}", "--input", f"cfg={config}:conf/config.ini",
        "--output", "listing.txt", "--param", f"run={unique}", "--env", "MODE=fast",
        "--version", "2", "--", *command)
    cli_done = client.wait(cli_job["job_id"], 60)
    assert cli_done.state == "SUCCEEDED", client.logs(cli_done.id, "stderr")

    job = client.submit(command, inputs={"data": data, "cfg": (config, "conf/config.ini")},
                        outputs=["listing.txt"], params={"run": unique}, env={"MODE": "fast"},
                        version="2")
    assert job_spec_fields(job.proto.spec) == job_spec_fields(cli_done.proto.spec)
    assert job.job_hash == cli_done.job_hash
    assert job.reused_from == cli_done.id
    # The client computes the same identity without asking.
    assert deja.job_hash(job.proto.spec) == job.job_hash
    assert client.wait(job.id, 60).outputs == cli_done.outputs


def test_a_python_job_is_reused_by_the_same_job_from_the_cli(cluster, client, inputs, unique):
    data, _ = inputs
    command = ["sh", "-c", f"ls -R ${{inputs.tree}} > tree.txt; echo {unique}"]
    first = client.run(command, inputs={"tree": data}, outputs=["tree.txt"], timeout=60)
    assert first.state == "SUCCEEDED"
    cli_job = cluster.cli_json("submit", "--input", f"tree={data}", "--output", "tree.txt", "--",
                               *command)
    assert (cli_job["job_hash"], cli_job["reused_from"]) == (first.job_hash, first.id)


def test_input_digests_are_the_content_stores(client, tmp_path, unique):
    # docs/content-store.md's vector: hello.txt in a directory.
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "hello.txt").write_bytes(b"hello\n")
    job = client.submit(["sh", "-c", f"cat ${{inputs.d}}/hello.txt ${{inputs.f}}; : {unique}"],
                        inputs={"d": tmp_path / "d", "f": tmp_path / "d" / "hello.txt"})
    assert [(i.kind, i.digest, i.size) for i in job.proto.spec.inputs] == [
        ("dir", "07230876d13b91dbc148d400cf4665bf", 120),
        ("file", "6bba86c7e069f56d5a10b435f1c8e49c", 6)]
    assert client.wait(job.id, 60).state == "SUCCEEDED"
    assert client.logs(job.id) == "hello\nhello\n"
