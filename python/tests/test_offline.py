"""What the client computes alone: the test vectors of docs/job-identity.md
and docs/content-store.md, pipeline YAML files, resource values. No daemon."""

import os

import pytest

import deja
from deja import content, hashing, spec
from deja.v1 import job_pb2


def full_spec(**app_extra):
    """Vector 2 of docs/job-identity.md (with extra app fields)."""
    return job_pb2.JobSpec(
        project="ml",
        app=job_pb2.AppSpec(name="train", version="2.1",
                            command=["python3", "train.py", "--lr", "${params.lr}"],
                            env={"B": "2", "A": "1"}, image="debian:12",
                            platform={"arch": "x86_64"}, **app_extra),
        params={"lr": "0.1", "epochs": "3"},
        inputs=[job_pb2.InputRef(name="data", kind="dir",
                                 digest="0123456789abcdef0123456789abcdef")],
        outputs=["model/*.bin", "metrics.json"])


def test_job_identity_vector_1_the_smallest_job():
    minimal = job_pb2.JobSpec(project="default",
                              app=job_pb2.AppSpec(name="echo", command=["echo", "hi"]))
    assert hashing.canonical_job_bytes(minimal).hex() == (
        "0b0000000000000064656a612e6a6f622e763104000000000000006563686f000000000000000002000000"
        "0000000004000000000000006563686f020000000000000068690000000000000000000000000000000000"
        "00000000000000000000000000000000000000000000000000000000000000")
    assert deja.job_hash(minimal) == "88a4775899d16b8582a1ae81e2e0d230"
    # The name defaults to the command's basename, as the scheduler's does.
    minimal.app.name = ""
    assert deja.job_hash(minimal) == "88a4775899d16b8582a1ae81e2e0d230"


def test_job_identity_vector_2_every_field():
    assert hashing.canonical_job_bytes(full_spec()).hex() == (
        "0b0000000000000064656a612e6a6f622e763105000000"
        "00000000747261696e0300000000000000322e31040000"
        "00000000000700000000000000707974686f6e33080000"
        "0000000000747261696e2e707904000000000000002d2d"
        "6c720c00000000000000247b706172616d732e6c727d02"
        "0000000000000001000000000000004101000000000000"
        "0031010000000000000042010000000000000032090000"
        "000000000064656269616e3a3132010000000000000004"
        "000000000000006172636806000000000000007838365f"
        "36340200000000000000060000000000000065706f6368"
        "7301000000000000003302000000000000006c72030000"
        "0000000000302e31010000000000000004000000000000"
        "0064617461030000000000000064697220000000000000"
        "0030313233343536373839616263646566303132333435"
        "363738396162636465660b00000000000000696e707574"
        "732f6461746102000000000000000c000000000000006d"
        "6574726963732e6a736f6e0b000000000000006d6f64656c2f2a2e62696e")
    assert deja.job_hash(full_spec()) == "dedb06d71d69d431290d14f1b587473b"


def test_job_identity_vector_3_cache_key_keeps_only_the_listed_params():
    keyed = full_spec(cache_key=["lr"])
    assert deja.job_hash(keyed) == "4e26d563c93dcd6b29fe1e476db4fa6f"
    keyed.params["epochs"] = "300"
    assert deja.job_hash(keyed) == "4e26d563c93dcd6b29fe1e476db4fa6f"
    keyed.params["lr"] = "0.2"
    assert deja.job_hash(keyed) != "4e26d563c93dcd6b29fe1e476db4fa6f"


def test_job_identity_vector_4_a_pinned_image():
    image_id = "sha256:3fa380ac4b75eec125cfa329682fec8e95d1ce7e9a72a2c77e77b508f9a54012"
    pinned = hashing.canonical_job_bytes(full_spec(image_id=image_id)).hex()
    full = hashing.canonical_job_bytes(full_spec()).hex()
    assert pinned[:len(full)] == full
    assert pinned[len(full):] == (
        "0800000000000000696d6167655f69644700000000000000736861323536"
        "3a3366613338306163346237356565633132356366613332393638326665"
        "633865393564316365376539613732613263373765373762353038663961"
        "3534303132")
    assert deja.job_hash(full_spec(image_id=image_id)) == "368dfa273ef5e41a486773b525028555"


def test_resources_and_labels_are_not_identity():
    wider = full_spec()
    wider.resources.milli_cpus = 4000
    wider.labels["team"] = "vision"
    wider.request_id = "r1"
    assert deja.job_hash(wider) == "dedb06d71d69d431290d14f1b587473b"


def test_file_digest_matches_the_content_store_vector(tmp_path):
    (tmp_path / "hello.txt").write_bytes(b"hello\n")
    assert deja.digest_bytes(b"hello\n") == "6bba86c7e069f56d5a10b435f1c8e49c"
    assert deja.digest_file(tmp_path / "hello.txt") == "6bba86c7e069f56d5a10b435f1c8e49c"


def test_directory_digest_matches_the_content_store_vector(tmp_path):
    (tmp_path / "hello.txt").write_bytes(b"hello\n")
    tree = deja.digest_tree(tmp_path)
    # The 120 bytes of docs/content-store.md, "Directory encoding".
    expected = bytes.fromhex("""
        0b 00 00 00 00 00 00 00 64 65 6a 61 2e 64 69 72
        2e 76 31 01 00 00 00 00 00 00 00 09 00 00 00 00
        00 00 00 68 65 6c 6c 6f 2e 74 78 74 04 00 00 00
        00 00 00 00 66 69 6c 65 00 00 00 00 00 00 00 00
        20 00 00 00 00 00 00 00 36 62 62 61 38 36 63 37
        65 30 36 39 66 35 36 64 35 61 31 30 62 34 33 35
        66 31 63 38 65 34 39 63 06 00 00 00 00 00 00 00
        00 00 00 00 00 00 00 00""")
    assert len(expected) == 120
    assert tree.blobs[0].data == expected
    assert (tree.digest, tree.size, tree.total_bytes) == (
        "07230876d13b91dbc148d400cf4665bf", 120, 6)
    assert [b.digest for b in tree.blobs] == [tree.digest, "6bba86c7e069f56d5a10b435f1c8e49c"]


def test_directory_digest_sees_names_modes_links_and_empty_dirs(tmp_path):
    def digest():
        return deja.digest_tree(tmp_path).digest

    (tmp_path / "a.sh").write_text("echo hi\n")
    first = digest()
    os.chmod(tmp_path / "a.sh", 0o755)
    executable = digest()
    (tmp_path / "empty").mkdir()
    with_dir = digest()
    os.symlink("/etc/passwd", tmp_path / "link")
    with_link = digest()
    assert len({first, executable, with_dir, with_link}) == 4
    # Symlinks are recorded by target, never followed: no blob for /etc/passwd.
    assert all(b.path is None or not b.path.endswith("passwd")
               for b in deja.digest_tree(tmp_path).blobs)


def test_prepare_inputs_names_the_missing_path(tmp_path):
    with pytest.raises(deja.NotFound) as raised:
        content.prepare_inputs({"data": tmp_path / "nope.csv"})
    assert str(raised.value) == (
        f"submit: input 'data': {tmp_path}/nope.csv: No such file or directory")


def test_prepare_inputs_makes_file_and_dir_refs(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "hello.txt").write_bytes(b"hello\n")
    (tmp_path / "f.txt").write_bytes(b"hello\n")
    refs, blobs = content.prepare_inputs({"f": tmp_path / "f.txt",
                                          "d": (tmp_path / "d", "in/d")})
    assert [(r.name, r.kind, r.digest, r.size, r.total_bytes, r.path) for r in refs] == [
        ("f", "file", "6bba86c7e069f56d5a10b435f1c8e49c", 6, 0, ""),
        ("d", "dir", "07230876d13b91dbc148d400cf4665bf", 120, 6, "in/d")]
    # The file blob is shared by both inputs: listed once.
    assert sorted(b.digest for b in blobs) == sorted(
        {"6bba86c7e069f56d5a10b435f1c8e49c", "07230876d13b91dbc148d400cf4665bf"})


@pytest.mark.parametrize("text, expected", [
    ("2", 2000), ("0.5", 500), (1.25, 1250)])
def test_cpus_are_thousandths(text, expected):
    assert spec.parse_cpus(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("4GiB", 4 << 30), ("512M", 512 << 20), ("100kb", 100 << 10), (1048576, 1048576)])
def test_memory_takes_binary_units(text, expected):
    assert spec.parse_memory(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("1h30m", 5400000), ("500ms", 500), ("45s", 45000), (90, 90000)])
def test_time_limits_read_like_durations(text, expected):
    assert spec.parse_time_limit(text) == expected


def test_a_bad_resource_names_the_argument():
    with pytest.raises(deja.InvalidArgument, match="memory 4XB: unknown unit"):
        spec.resources(memory="4XB")


def test_default_app_name_is_the_commands_basename():
    assert spec.default_app_name("/usr/bin/Python3") == "python3"
    assert spec.default_app_name("./my tool") == "my_tool"
    assert spec.default_app_name("_x") == "_x"


# -- pipeline files -----------------------------------------------------------

def write(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_the_example_pipeline_resolves_params_apps_inputs_and_edges(repo):
    path = os.path.join(repo, "examples", "pipeline", "pipeline.yaml")
    definition = deja.load_yaml(path, params={"threshold": "0.6"})
    spec_ = definition.to_spec()
    assert (spec_.name, spec_.reuse, dict(spec_.params), spec_.source) == (
        "model-training", True, {"threshold": "0.6"}, path)
    assert [n.name for n in spec_.nodes] == ["preprocess", "train", "evaluate"]
    evaluate = spec_.nodes[2]
    assert evaluate.app.name == "evaluate" and evaluate.app.version == "1"
    assert dict(evaluate.params) == {"threshold": "0.6"}
    assert list(evaluate.app.command)[-1] == "${params.threshold}"
    example = os.path.join(repo, "examples", "pipeline")
    assert definition.nodes[0].inputs == {
        "script": (os.path.join(example, "preprocess.sh"), ""),
        "data": (os.path.join(example, "data", "points.csv"), "")}
    assert [(e.from_node, e.from_output, e.to_node, e.to_input) for e in spec_.edges] == [
        ("preprocess", "train.csv", "train", "train"),
        ("preprocess", "test.csv", "evaluate", "test"),
        ("train", "model.txt", "evaluate", "model")]


def test_pipeline_scalars_are_text_as_written_and_substituted(tmp_path):
    (tmp_path / "data").mkdir()
    path = write(tmp_path, """
name: demo
project: p1
params: {epochs: 3, ratio: 0.90, shell: "${x}"}
apps:
  py:
    command: [python3, train.py, "${pipeline.epochs}", "${pipeline.shell}", "$${pipeline.epochs}"]
    env: {RATIO: "${pipeline.ratio}", LITERAL: "$${pipeline.ratio}"}
    version: 2
    cache_key: [epochs]
nodes:
  - name: train
    app: py
    params: {epochs: "${pipeline.epochs}", dry: false}
    inputs:
      data: data/
      more: {path: ./data, workspace_path: in/more}
    outputs: [model.bin]
    memoization: "off"
    cpus: 1.5
    memory: 2GiB
    time_limit: 1h
  - name: side
    command: [sh, -c, "echo ${inputs.m}"]
    side_effects: yes
    reuse: no
edges:
  - [train.output.model.bin, side.input.m]
  - {from: train.output.*, to: side.input.all, path: in/all}
""")
    definition = deja.load_yaml(path)
    spec_ = definition.to_spec()
    train, side = spec_.nodes
    assert list(train.app.command) == ["python3", "train.py", "3", "$${x}", "$${pipeline.epochs}"]
    assert dict(train.app.env) == {"RATIO": "0.90", "LITERAL": "${pipeline.ratio}"}
    assert (train.app.name, train.app.version, list(train.app.cache_key)) == (
        "py", "2", ["epochs"])
    assert dict(train.params) == {"epochs": "3", "dry": "false"}
    assert train.memoization == job_pb2.MEMOIZATION_OFF
    assert (train.resources.milli_cpus, train.resources.memory_bytes,
            train.resources.time_limit_ms) == (1500, 2 << 30, 3600000)
    assert definition.nodes[0].inputs == {"data": (str(tmp_path / "data"), ""),
                                          "more": (str(tmp_path / "data"), "in/more")}
    assert (side.app.name, side.app.side_effects, side.app.HasField("reuse"), side.app.reuse) == (
        "side", True, True, False)
    assert [(e.from_output, e.to_input, e.to_path) for e in spec_.edges] == [
        ("model.bin", "m", ""), ("*", "all", "in/all")]
    assert spec_.project == "p1"


@pytest.mark.parametrize("text, message", [
    ("name: a\nnodes:\n  - name: x\n    comand: [true]\n",
     'p.yaml:4: nodes[x].comand: unknown key "comand" (did you mean "command"?); allowed here:'),
    ("name: a\nparams: {epochs: 3}\nnodes:\n  - name: x\n"
     "    command: [echo, '${pipeline.epoch}']\n",
     'p.yaml:5: nodes[x].command[1]: unknown pipeline parameter "epoch" in "${pipeline.epoch}" '
     "(declared: epochs)"),
    ("name: a\nnodes:\n  - name: x\n    command: [true]\nedges:\n  - x.model -> y.input.z\n",
     'p.yaml:6: edges[0]: bad edge source "x.model"; expected NODE.output.NAME'),
    ("name: a\nnodes:\n  - name: x\n    command: [true]\n    memoization: maybe\n",
     'p.yaml:5: nodes[x].memoization: "maybe" is not on, off or inherit'),
    ("name: a\nnodes:\n  - name: x\n    command: echo hi\n",
     "p.yaml:4: nodes[x].command: must be a list of words (argv)"),
    ("name: a\nnodes:\n  - name: x\n    command: [true]\n    inputs: {d: nowhere.csv}\n",
     "p.yaml:5: nodes[x].inputs[d]: {dir}/nowhere.csv: no such file or directory"),
    ("name: a\nname: b\n", 'p.yaml:2: name: duplicate key "name" (first at line 1)'),
    ("name: a\nnodes: [x\n", "p.yaml:3: invalid YAML:"),
    ("name: a\n---\nname: b\n", "p.yaml:2: only one YAML document is allowed per file"),
])
def test_pipeline_errors_name_file_line_and_field(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(deja.InvalidArgument) as raised:
        deja.load_yaml(path)
    assert str(raised.value).startswith(f"{tmp_path}/" + message.replace("{dir}", str(tmp_path)))


def test_a_param_override_the_file_does_not_declare_is_an_error(tmp_path):
    path = write(tmp_path, "name: a\nparams: {lr: 1}\nnodes:\n  - name: x\n    command: [true]\n")
    with pytest.raises(deja.InvalidArgument,
                       match=r"p.yaml:2: params: --param epochs=3: no such pipeline parameter "
                             r"\(declared: lr\)"):
        deja.load_yaml(path, params={"epochs": 3})


def test_a_pipeline_built_in_python_equals_its_yaml(tmp_path):
    (tmp_path / "in.txt").write_text("x\n")
    path = write(tmp_path, """
name: two
nodes:
  - {name: a, command: [sh, -c, "cp ${inputs.f} out.txt"], inputs: {f: in.txt}, outputs: [out.txt]}
  - {name: b, command: [cat, "${inputs.g}"], force: true}
edges: [a.output.out.txt -> b.input.g]
""")
    built = deja.PipelineDef("two", source=path)
    built.node("a", ["sh", "-c", "cp ${inputs.f} out.txt"], inputs={"f": tmp_path / "in.txt"},
               outputs=["out.txt"])
    built.node("b", ["cat", "${inputs.g}"], force=True)
    built.edge("a.output.out.txt", "b.input.g")
    assert built.to_spec() == deja.load_yaml(path).to_spec()
    assert built.nodes[0].inputs == deja.load_yaml(path).nodes[0].inputs
