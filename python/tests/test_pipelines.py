"""Pipelines against a real cluster: the example YAML file (the same request
as `deja pipeline run`, and reused node by node), one built in Python, a
plan, and parse errors that read as the CLI's."""

import os
import subprocess

import pytest

import deja


def test_the_example_pipeline_from_python_matches_the_clis_and_is_reused(
        cluster, client, repo):
    path = os.path.join(repo, "examples", "pipeline", "pipeline.yaml")
    # A threshold of its own, so no other run decides what is reused.
    params = {"threshold": "0.55"}
    cli_run = cluster.cli_json("pipeline", "run", path, "--param", "threshold=0.55")
    assert cli_run["state"] == "PIPELINE_SUCCEEDED"

    plan = client.plan_pipeline(path, params=params)
    assert [(n.name, n.reused) for n in plan.nodes] == [
        ("preprocess", True), ("train", True), ("evaluate", True)]

    ran = client.pipeline(path, params=params, wait=True, timeout=120)
    assert ran.state == deja.PipelineState.SUCCEEDED
    assert ran.id != cli_run["pipeline_id"]
    cli_pipeline = client.pipeline_status(cli_run["pipeline_id"])
    # The same spec as the CLI's parser sent: apps, params, inputs, edges.
    assert ran.proto.spec == cli_pipeline.proto.spec
    for node in ran.nodes:
        assert node.reused_from == cli_pipeline.node(node.name).job_id, node.name
    assert "accuracy" in client.logs(ran.node("evaluate").job_id)

    # Forcing a node runs it fresh; its byte-identical output keeps evaluate reused.
    forced = client.pipeline(path, params=params, force_nodes=["train"], wait=True, timeout=120)
    assert [(n.name, n.reused) for n in forced.nodes] == [
        ("preprocess", True), ("train", False), ("evaluate", True)]


def test_a_pipeline_built_in_python_runs_then_is_reused(client, tmp_path, unique):
    (tmp_path / "numbers.txt").write_text("3\n1\n2\n")
    p = deja.PipelineDef(f"sorted-{unique}")
    p.node("sort", ["sh", "-c", "sort -n ${inputs.numbers} > sorted.txt"],
           inputs={"numbers": tmp_path / "numbers.txt"}, outputs=["sorted.txt"])
    p.node("sum", ["sh", "-c", "awk '{s += $1} END {print s}' ${inputs.sorted}; "
                   "echo ${params.tag}"], params={"tag": unique}, cpus=0.5)
    p.edge("sort.output.sorted.txt -> sum.input.sorted")

    first = client.pipeline(p, wait=True, timeout=120)
    assert first.state == "SUCCEEDED" and first.ended
    assert [n.state for n in first.nodes] == [deja.NodeState.SUCCEEDED] * 2
    assert client.logs(first.node("sum").job_id) == f"6\n{unique}\n"
    sorted_job = client.status(first.node("sort").job_id)
    assert [o.path for o in sorted_job.outputs] == ["sorted.txt"]

    again = client.pipeline(p)
    again = client.wait_pipeline(again.id, timeout=120)
    assert [(n.name, n.reused_from) for n in again.nodes] == [
        (n.name, n.job_id) for n in first.nodes]
    assert again.node("sum").time_saved == first.node("sum").run_time


def test_an_array_node_fans_out_and_its_downstream_gathers_it(client, unique):
    p = deja.PipelineDef(f"fan-{unique}")
    p.node("score", ["sh", "-c", f"echo {unique} ${{params.i}} > s.txt"], outputs=["s.txt"],
           array={"i": "1-3"})
    p.node("merge", ["sh", "-c", "cat ${inputs.scores}/score.*/s.txt"])
    p.edge("score.output.s.txt -> merge.input.scores")
    done = client.pipeline(p, wait=True, timeout=120)
    assert done.state == "SUCCEEDED"
    assert [n.name for n in done.nodes] == ["score.1", "score.2", "score.3", "merge"]
    assert client.logs(done.node("merge").job_id) == "".join(
        f"{unique} {i}\n" for i in (1, 2, 3))
    # YAML says the same with `array:`.
    yaml_def = deja.parse_yaml(f"""
name: fan-{unique}
nodes:
  - name: score
    array: {{i: 1-3}}
    command: [sh, -c, "echo {unique} ${{params.i}} > s.txt"]
    outputs: [s.txt]
  - name: merge
    command: [sh, -c, "cat ${{inputs.scores}}/score.*/s.txt"]
edges:
  - score.output.s.txt -> merge.input.scores
""")
    again = client.wait_pipeline(client.pipeline(yaml_def).id, timeout=120)
    assert [(n.name, n.reused_from) for n in again.nodes] == [
        (n.name, n.job_id) for n in done.nodes]


def test_the_scheduler_refuses_a_bad_pipeline_naming_the_field(client, unique):
    p = deja.PipelineDef(f"bad-{unique}")
    p.node("a", ["true"])
    p.edge("a.output.x -> b.input.y")
    with pytest.raises(deja.InvalidArgument, match=f"submit pipeline bad-{unique}: edges"):
        client.pipeline(p)


def test_force_nodes_must_name_nodes(client, repo):
    path = os.path.join(repo, "examples", "pipeline", "pipeline.yaml")
    with pytest.raises(deja.InvalidArgument, match='force_nodes "nope": the pipeline has no node'
                                                   " of that name"):
        client.pipeline(path, force_nodes=["nope"])


BAD_FILES = [
    "name: a\nnodes:\n  - name: x\n    comand: [true]\n",
    "name: a\nparams: {epochs: 3}\nnodes:\n  - name: x\n    command: [echo, '${pipeline.epoch}']\n",
    "name: a\nnodes:\n  - name: x\n    command: [true]\nedges:\n  - x.model -> y.input.z\n",
    "name: a\nnodes:\n  - name: x\n    command: echo hi\n",
    "name: a\nnodes:\n  - name: x\n    command: [true]\n    inputs: {d: nowhere.csv}\n",
    "name: a\nname: b\n",
    "name: a\n---\nname: b\n",
    "name: a\nnodes:\n  - name: x\n    command: [true]\n    cpus: 1.5x\n",
    "name: a\nnodes:\n  - name: x\n    command: [true]\n    gpus: 1.0\n",
    "name: a\nnodes:\n  - name: x\n    app: nope\n",
    "name: a\nnodes:\n  - name: x\n    version: 1\n",
    "",
    "- a\n",
    "name: a\nnodes:\n  - name: x\n    command: [true]\nedges:\n  - {from: x.output.y}\n",
    "name: a\nnodes:\n  - name: x\n    command: [true]\nedges:\n  - [a, b, c]\n",
    "name: a\nparams: {1x: 2}\nnodes:\n  - name: x\n    command: [true]\n",
    "name: a\nparams: {x: }\nnodes:\n  - name: x\n    command: [true]\n",
    "name: a\nnodes:\n  - name: x\n    command: [true]\n    app: {command: [true]}\n",
    "name: a\nnodes:\n  - name: x\n    command: [true]\n    params: {a: [1]}\n",
    "name: a\nnodes:\n  - 3\n",
]


@pytest.mark.parametrize("index", range(len(BAD_FILES)))
def test_a_bad_file_gets_the_clis_message(cluster, tmp_path, index):
    path = tmp_path / "p.yaml"
    path.write_text(BAD_FILES[index])
    # Parse errors come before any call: no scheduler needed.
    cli = subprocess.run([cluster.binary("client/deja"), "--scheduler", "127.0.0.1:1",
                          "pipeline", "plan", str(path)], capture_output=True, text=True,
                         timeout=60)
    assert cli.returncode == 2, cli.stderr
    with pytest.raises(deja.InvalidArgument) as raised:
        deja.load_yaml(str(path))
    assert f"deja: {raised.value}" == cli.stderr.splitlines()[0]
