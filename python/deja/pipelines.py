"""Pipelines: built in Python (PipelineDef) or read from a YAML file.

load_yaml reads the format of docs/pipelines.md into a PipelineDef exactly
as the CLI's parser does (client/pipeline_yaml.cc, pipeline_node_parser.cc,
yaml_reader.cc): apps inlined, ${pipeline.X} substituted, scalars taken as
written, unknown keys refused, local input paths resolved against the
file's directory; every error is InvalidArgument "FILE:LINE: FIELD:
problem". Client.pipeline then hashes and uploads the local inputs and
sends the same SubmitPipelineRequest as `deja pipeline run`. What the
scheduler checks itself (edges naming unknown nodes or outputs, cycles,
inputs fed twice...) comes back as InvalidArgument naming the field, without
a line.

Not thread-safe: build a PipelineDef on one thread.
"""

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import yaml

from deja import content, errors, spec as specs
from deja.v1 import job_pb2, pipeline_pb2


@dataclass
class Node:
    """One node of a PipelineDef: a job template.

    `inputs` maps input names to (local path, workspace path) ("" for the
    default inputs/NAME): files and directories hashed and uploaded at
    submit. Inputs fed by edges are not listed here.
    """

    name: str
    app: job_pb2.AppSpec
    params: Dict[str, str] = field(default_factory=dict)
    inputs: Dict[str, Tuple[str, str]] = field(default_factory=dict)
    outputs: List[str] = field(default_factory=list)
    memoization: int = job_pb2.MEMOIZATION_INHERIT
    force: bool = False
    reuse_job_id: str = ""
    resources: Optional[job_pb2.Resources] = None
    fail_unplaceable: bool = False
    network: bool = False
    # Fans the node out: param -> values ("1-100", "a,b,c"), one node per
    # element ("NAME.1", "NAME.2"...), expanded by the scheduler.
    array: Dict[str, str] = field(default_factory=dict)

    def to_proto(self):
        """The deja.v1.PipelineNode, without the local inputs (not hashed yet)."""
        node = pipeline_pb2.PipelineNode(
            name=self.name, app=self.app, params=self.params, outputs=self.outputs,
            memoization=self.memoization, force=self.force, reuse_job_id=self.reuse_job_id,
            fail_unplaceable=self.fail_unplaceable, network=self.network, array=self.array)
        if self.resources is not None:
            node.resources.CopyFrom(self.resources)
        return node


def parse_edge(source, target):
    """(from_node, from_output, to_node, to_input) of "NODE.output.NAME" and
    "NODE.input.NAME" (NAME is everything after the first ".output." /
    ".input."). Raises InvalidArgument naming the part at fault."""
    out_at = source.find(".output.")
    if out_at <= 0 or out_at + 8 == len(source):
        raise errors.InvalidArgument(f'bad edge source "{source}"; expected NODE.output.NAME '
                                     "(NAME a file, a glob or *)")
    in_at = target.find(".input.")
    if in_at <= 0 or in_at + 7 == len(target):
        raise errors.InvalidArgument(
            f'bad edge destination "{target}"; expected NODE.input.NAME')
    return source[:out_at], source[out_at + 8:], target[:in_at], target[in_at + 7:]


class PipelineDef:
    """A pipeline to submit: nodes and edges, built in Python or by load_yaml.

        p = PipelineDef("demo")
        p.node("prep", ["sh", "-c", "sort ${inputs.data} > sorted.txt"],
               inputs={"data": "points.txt"}, outputs=["sorted.txt"])
        p.node("count", ["wc", "-l", "${inputs.sorted}"])
        p.edge("prep.output.sorted.txt -> count.input.sorted")
        client.pipeline(p)

    `project` None leaves it to the scheduler (the token's project, else
    "default"); `reuse=False` runs every node fresh; `params` are recorded
    on the pipeline (a YAML file's parameters in force), and `source` names
    the file it came from, for humans (load_yaml sets both).
    """

    def __init__(self, name, *, project=None, reuse=True, params=None, source=""):
        self.name = name
        self.project = project or ""
        self.reuse = reuse
        self.params = {k: str(v) for k, v in (params or {}).items()}
        self.source = source
        self.nodes: List[Node] = []
        self.edges: List[pipeline_pb2.PipelineEdge] = []

    def node(self, name, command=None, *, app=None, app_name=None, params=None, inputs=None,
             outputs=(), memoization=None, force=False, reuse_job_id=None, cpus=None,
             memory=None, gpus=0, time_limit=None, fail_unplaceable=False, network=False,
             array=None, **app_keywords):
        """Adds and returns a node (a Node).

        Give its `command` with app_spec's keywords (version, env, image,
        platform, reuse, side_effects, cache_key; the app is called
        `app_name`, by default the node's name), or a ready `app` (a
        deja.v1.AppSpec from deja.spec.app_spec). `inputs` maps input names
        to local paths or (path, workspace_path) pairs; the other keywords
        are Client.submit's. `array` ({"i": "1-100"}, values as `deja
        submit --array`'s) fans the node out over a job array: the
        scheduler makes one node per element, "NAME.1"..., and an edge out
        of it gives its downstream a directory per element. Edges add the
        inputs they feed.
        """
        if (app is None) == (command is None):
            raise errors.InvalidArgument(f"nodes[{name}]: give command or app, not both or none")
        if app is None:
            app = specs.app_spec(command, name=app_name or name, **app_keywords)
        elif app_keywords or app_name:
            keys = ", ".join([*app_keywords, *(["app_name"] if app_name else [])])
            raise errors.InvalidArgument(f"nodes[{name}]: with app=, give {keys} in the app "
                                         "itself")
        node = Node(name, app, {k: str(v) for k, v in (params or {}).items()},
                    content.input_entries(inputs), [str(o) for o in outputs],
                    specs.parse_memoization(memoization), bool(force), reuse_job_id or "",
                    specs.resources(cpus, memory, gpus, time_limit), bool(fail_unplaceable),
                    bool(network), {k: str(v) for k, v in (array or {}).items()})
        self.nodes.append(node)
        return node

    def edge(self, source, target=None, *, path=None):
        """Adds an edge: "NODE.output.NAME -> NODE.input.NAME", or the two
        parts as `source` and `target`. `path` is the input's workspace path
        (default inputs/NAME)."""
        if target is None:
            parts = source.split("->")
            if len(parts) != 2:
                raise errors.InvalidArgument(
                    f'bad edge "{source}"; expected NODE.output.NAME -> NODE.input.NAME')
            source, target = parts[0].strip(), parts[1].strip()
        from_node, from_output, to_node, to_input = parse_edge(source, target)
        edge = pipeline_pb2.PipelineEdge(from_node=from_node, from_output=from_output,
                                         to_node=to_node, to_input=to_input, to_path=path or "")
        self.edges.append(edge)
        return edge

    def to_spec(self):
        """The deja.v1.PipelineSpec, without the local inputs (not hashed yet)."""
        return pipeline_pb2.PipelineSpec(
            name=self.name, project=self.project, reuse=self.reuse, params=self.params,
            nodes=[n.to_proto() for n in self.nodes], edges=self.edges, source=self.source)


# ---------------------------------------------------------------------------
# The YAML format (docs/pipelines.md).

_TOP_KEYS = ("name", "project", "reuse", "params", "apps", "nodes", "edges")
_APP_KEYS = ("name", "command", "version", "env", "image", "platform", "reuse", "side_effects",
             "cache_key")
_NODE_APP_KEYS = _APP_KEYS[1:]
_NODE_KEYS = ("name", "app", "params", "inputs", "outputs", "memoization", "force",
              "reuse_job_id", "command", "version", "env", "image", "platform", "reuse",
              "side_effects", "cache_key", "cpus", "memory", "gpus", "time_limit", "unplaceable",
              "network", "array")
_RESOURCE_KEYS = ("cpus", "memory", "gpus", "time_limit", "unplaceable", "network")
_INPUT_KEYS = ("path", "workspace_path")
_EDGE_KEYS = ("from", "to", "path")
_EDGE_EXAMPLE = "NODE.output.NAME -> NODE.input.NAME (NAME of an output may be a glob or *)"
_NULL_TAG = "tag:yaml.org,2002:null"
_REF = "${pipeline."
# How ${pipeline.X} is substituted in a value (client/yaml_reader.h).
_NONE, _VALUE, _COMMAND = "none", "value", "command"


def _is_null(node):
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG


def _type_name(node):
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    return "empty" if _is_null(node) else "a scalar"


def _line(node, fallback):
    """The 1-based line of `node`; `fallback` for a null value ("key:")."""
    return fallback if node is None or _is_null(node) else node.start_mark.line + 1


def _edit_distance(a, b):
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        diagonal, row[0] = row[0], i
        for j in range(1, len(b) + 1):
            above = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1]))
            diagonal = above
    return row[len(b)]


def _valid_param_name(name):
    return (0 < len(name) <= 128 and (name[0].isascii() and (name[0].isalpha() or name[0] == "_"))
            and all(c.isascii() and (c.isalnum() or c in "_-.") for c in name))


class _Reader:
    """Typed reading of the composed YAML, errors as "NAME:LINE: FIELD: problem"."""

    def __init__(self, name, base_dir, overrides):
        self.name = name
        self.base_dir = base_dir
        self.overrides = overrides
        self.params = {}
        self.apps = {}

    def error(self, line, field, problem):
        where = f"{self.name}:{line}: "
        return errors.InvalidArgument(f"{where}{field}: {problem}" if field else where + problem)

    def declared(self):
        if not self.params:
            return "the file declares no params:"
        return "declared: " + ", ".join(sorted(self.params))

    def mapping(self, node, line, field, allowed=()):
        """[(key, value node, key line)]; unknown and duplicate keys refused."""
        if _is_null(node):
            return []
        if not isinstance(node, yaml.MappingNode):
            raise self.error(_line(node, line), field, f"must be a mapping, not {_type_name(node)}")
        entries, seen = [], {}
        for key_node, value in node.value:
            key_line = _line(key_node, line)
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.error(key_line, field,
                                 f"keys must be strings, not {_type_name(key_node)}")
            key = key_node.value
            if not allowed:  # a map of names: field[key]
                key_field = f"{field}[{key}]"
            else:
                key_field = f"{field}.{key}" if field else key
            if allowed and key not in allowed:
                hint, best = "", 3
                for known in allowed:
                    distance = _edit_distance(key.lower(), known)
                    if distance < best:
                        best, hint = distance, f' (did you mean "{known}"?)'
                raise self.error(key_line, key_field, f'unknown key "{key}"{hint}; allowed here: '
                                 + ", ".join(allowed))
            if key in seen:
                raise self.error(key_line, key_field,
                                 f'duplicate key "{key}" (first at line {seen[key]})')
            seen[key] = key_line
            entries.append((key, value, key_line))
        return entries

    def sequence(self, node, line, field, example):
        if _is_null(node):
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(_line(node, line), field,
                             f"must be a list, e.g. {example}, not {_type_name(node)}")
        return node.value

    def string(self, node, line, field, subst=_NONE):
        line = _line(node, line)
        if _is_null(node):
            raise self.error(line, field, "has no value")
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(line, field,
                             f"must be a string, number or boolean, not {_type_name(node)}")
        return node.value if subst == _NONE else self._substitute(node.value, line, field, subst)

    def boolean(self, node, line, field, subst=_NONE):
        text = self.string(node, line, field, subst)
        if text.lower() in ("true", "yes", "on"):
            return True
        if text.lower() in ("false", "no", "off"):
            return False
        raise self.error(_line(node, line), field, f'"{text}" is not true or false')

    def string_map(self, node, line, field, subst):
        return {k: self.string(v, kl, f"{field}[{k}]", subst)
                for k, v, kl in self.mapping(node, line, field)}

    def string_list(self, node, line, field, subst, example):
        return [self.string(item, line, f"{field}[{i}]", subst)
                for i, item in enumerate(self.sequence(node, line, field, example))]

    def _substitute(self, text, line, field, subst):
        out, pos = [], 0
        while pos < len(text):
            if text.startswith("$${", pos):
                # An escaped "${": a command keeps the escape for the
                # scheduler; elsewhere "$${pipeline." is a literal "${pipeline.".
                literal = subst == _VALUE and text.startswith(_REF, pos + 1)
                out.append("${" if literal else "$${")
                pos += 3
            elif text.startswith(_REF, pos):
                end = text.find("}", pos)
                if end < 0:
                    raise self.error(line, field, f'unterminated "${{pipeline." in "{text}"')
                key = text[pos + len(_REF):end]
                if key not in self.params:
                    raise self.error(line, field, f'unknown pipeline parameter "{key}" in '
                                     f'"${{pipeline.{key}}}" ({self.declared()})')
                value = self.params[key]
                out.append(value.replace("${", "$${") if subst == _COMMAND else value)
                pos = end + 1
            else:
                out.append(text[pos])
                pos += 1
        return "".join(out)


def _parse_params(reader, entry, out):
    line = 1
    if entry is not None:
        _, node, line = entry
        for key, value, key_line in reader.mapping(node, line, "params"):
            field_name = f"params[{key}]"
            if not _valid_param_name(key):
                raise reader.error(key_line, field_name,
                                   f'invalid parameter name "{key}" (letters, digits, \'_\', '
                                   "'-', '.'; starting with a letter or '_')")
            if _is_null(value):
                raise reader.error(key_line, field_name,
                                   'needs a default value ("" for an empty one)')
            reader.params[key] = reader.string(value, key_line, field_name)
    for key, value in reader.overrides.items():
        if key not in reader.params:
            raise reader.error(line, "params", f"--param {key}={value}: no such pipeline "
                               f"parameter ({reader.declared()})")
        reader.params[key] = str(value)
    out.params = dict(reader.params)


def _app_key(reader, key, value, key_line, field_name, app):
    """One app key into the app_spec keywords `app`."""
    line = _line(value, key_line)
    if key == "command":
        if isinstance(value, yaml.ScalarNode) and not _is_null(value):
            raise reader.error(line, field_name, "must be a list of words (argv), e.g. "
                               '[python3, train.py]; for a shell line: [sh, -c, "..."]')
        app["command"] = reader.string_list(value, key_line, field_name, _COMMAND,
                                            "[python3, train.py]")
    elif key in ("env", "platform"):
        app[key] = reader.string_map(value, key_line, field_name, _VALUE)
    elif key == "cache_key":
        app[key] = reader.string_list(value, key_line, field_name, _VALUE, "[epochs, lr]")
    elif key in ("reuse", "side_effects"):
        app[key] = reader.boolean(value, key_line, field_name, _VALUE)
    else:  # name, version, image
        app[key] = reader.string(value, key_line, field_name, _VALUE)


def _app_mapping(reader, node, line, field_name, default_name):
    app = {}
    for key, value, key_line in reader.mapping(node, line, field_name, _APP_KEYS):
        _app_key(reader, key, value, key_line, f"{field_name}.{key}", app)
    if "command" not in app:
        raise reader.error(_line(node, line), f"{field_name}.command",
                           "required: the argv to run, e.g. [python3, train.py]")
    app.setdefault("name", default_name)
    return app


def _node_inputs(reader, node, line, field_name):
    inputs = {}
    for key, value, key_line in reader.mapping(node, line, field_name):
        input_field = f"{field_name}[{key}]"
        path, workspace_path, path_line = None, "", _line(value, key_line)
        if isinstance(value, yaml.MappingNode):
            for k, v, kl in reader.mapping(value, key_line, input_field, _INPUT_KEYS):
                text = reader.string(v, kl, f"{input_field}.{k}", _VALUE)
                if k == "path":
                    path, path_line = text, _line(v, kl)
                else:
                    workspace_path = text
            if path is None:
                raise reader.error(key_line, f"{input_field}.path", "required: the local file or "
                                   "directory (relative to the pipeline file)")
        else:
            path = reader.string(value, key_line, input_field, _VALUE)
        if not path:
            raise reader.error(path_line, input_field, "the local path must not be empty")
        local = os.path.normpath(os.path.join(reader.base_dir, path))
        if not os.path.exists(local):
            raise reader.error(path_line, input_field, f"{local}: no such file or directory")
        inputs[key] = (local, workspace_path)
    return inputs


def _node_resource(reader, key, value, key_line, field_name, kw):
    """A node's cpus, memory, gpus, time_limit, unplaceable or network into `kw`."""
    line = _line(value, key_line)
    if key == "network":
        kw["network"] = reader.boolean(value, key_line, field_name, _VALUE)
        return
    text = reader.string(value, key_line, field_name, _VALUE)
    if key == "unplaceable":
        if text not in ("wait", "fail"):
            raise reader.error(line, field_name, f'"{text}" is not wait or fail')
        kw["fail_unplaceable"] = text == "fail"
        return
    parse = {"cpus": specs.parse_cpus, "memory": specs.parse_memory,
             "time_limit": specs.parse_time_limit, "gpus": specs.parse_gpus}[key]
    try:
        parse(text, field="")
    except errors.InvalidArgument as e:
        raise reader.error(line, field_name, e.details) from None
    kw[key] = text


def _parse_node(reader, node, nodes_line, index, out):
    field_name = f"nodes[{index}]"
    line = _line(node, nodes_line)
    if not isinstance(node, yaml.MappingNode):
        raise reader.error(line, field_name, "a node must be a mapping (name, app or command, "
                           f"params, inputs, outputs...), not {_type_name(node)}")
    named = field_name
    for key_node, value in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == "name" and isinstance(
                value, yaml.ScalarNode) and not _is_null(value):
            named = f"nodes[{value.value}]"
            break
    entries = reader.mapping(node, line, named, _NODE_KEYS)
    name_entry = next((e for e in entries if e[0] == "name"), None)
    if name_entry is None:
        raise reader.error(line, f"{field_name}.name", "required")
    name = reader.string(name_entry[1], name_entry[2], f"{field_name}.name")
    field_name = f"nodes[{name}]"
    own, kw, app_entry, own_key = {}, {}, None, None
    for key, value, key_line in entries:
        key_field = f"{field_name}.{key}"
        if key == "app":
            app_entry = (value, key_line)
        elif key in _NODE_APP_KEYS:
            own_key = own_key or (key, key_line)
            _app_key(reader, key, value, key_line, key_field, own)
        elif key == "params":
            kw["params"] = reader.string_map(value, key_line, key_field, _VALUE)
        elif key == "array":
            kw["array"] = reader.string_map(value, key_line, key_field, _VALUE)
        elif key == "outputs":
            kw["outputs"] = reader.string_list(value, key_line, key_field, _VALUE,
                                               '[model.bin, "metrics/*.json"]')
        elif key == "inputs":
            kw["inputs"] = _node_inputs(reader, value, key_line, key_field)
        elif key == "memoization":
            text = reader.string(value, key_line, key_field, _VALUE)
            if text not in ("on", "off", "inherit"):
                raise reader.error(_line(value, key_line), key_field,
                                   f'"{text}" is not on, off or inherit')
            kw["memoization"] = text
        elif key == "force":
            kw["force"] = reader.boolean(value, key_line, key_field, _VALUE)
        elif key == "reuse_job_id":
            kw["reuse_job_id"] = reader.string(value, key_line, key_field, _VALUE)
        elif key in _RESOURCE_KEYS:
            _node_resource(reader, key, value, key_line, key_field, kw)
    if app_entry is not None and own_key is not None:
        raise reader.error(own_key[1], f"{field_name}.{own_key[0]}",
                           f"a node with app: (line {app_entry[1]}) takes its {own_key[0]} from "
                           "that app; give it there, or drop app: and give the node its own "
                           "command")
    if app_entry is not None:
        value, key_line = app_entry
        if isinstance(value, yaml.ScalarNode) and not _is_null(value):
            if value.value not in reader.apps:
                known = ("apps: " + ", ".join(sorted(reader.apps)) if reader.apps
                         else "the file has no apps:")
                raise reader.error(_line(value, key_line), f"{field_name}.app",
                                   f'unknown app "{value.value}" ({known})')
            app = dict(reader.apps[value.value])
        elif isinstance(value, yaml.MappingNode):
            app = _app_mapping(reader, value, key_line, f"{field_name}.app", name)
        else:
            raise reader.error(_line(value, key_line), f"{field_name}.app",
                               "must be the name of an app under apps: or a mapping with "
                               f"command, version..., not {_type_name(value)}")
    elif "command" in own:
        app = dict(own, name=name)
    elif own_key is not None:
        raise reader.error(line, field_name, f"has {own_key[0]} but no command: a node needs "
                           "command: (its own app) or app:")
    else:
        raise reader.error(line, field_name, "needs command: (the argv to run) or app: (a name "
                           "under apps: or a mapping)")
    command, app["app_name"] = app.pop("command"), app.pop("name")
    out.node(name, command, **app, **kw)


def _parse_edge(reader, node, edges_line, index, out):
    field_name = f"edges[{index}]"
    line = _line(node, edges_line)
    path, from_line, to_line = None, line, line

    def bad(what):
        return reader.error(line, field_name, f"{what}; expected {_EDGE_EXAMPLE}")

    if isinstance(node, yaml.ScalarNode) and not _is_null(node):
        parts = node.value.split("->")
        if len(parts) != 2:
            raise bad(f'bad edge "{node.value}"')
        source, target = parts[0].strip(), parts[1].strip()
    elif isinstance(node, yaml.SequenceNode):
        if len(node.value) != 2:
            raise bad(f"a list edge is [FROM, TO], this one has {len(node.value)} items")
        source = reader.string(node.value[0], line, f"{field_name}[0]")
        target = reader.string(node.value[1], line, f"{field_name}[1]")
        from_line, to_line = _line(node.value[0], line), _line(node.value[1], line)
    elif isinstance(node, yaml.MappingNode):
        parts = {}
        for key, value, key_line in reader.mapping(node, line, field_name, _EDGE_KEYS):
            parts[key] = (reader.string(value, key_line, f"{field_name}.{key}"),
                          _line(value, key_line))
        if "from" not in parts or "to" not in parts:
            raise reader.error(line, f"{field_name}.{'to' if 'from' in parts else 'from'}",
                               "required: an edge mapping is {from: NODE.output.NAME, to: "
                               "NODE.input.NAME, path: WORKSPACE_PATH (optional)}")
        (source, from_line), (target, to_line) = parts["from"], parts["to"]
        path = parts.get("path", (None, line))[0]
    else:
        raise bad(f"an edge must be a string, a list or a mapping, not {_type_name(node)}")
    try:
        out.edge(source, target, path=path)
    except errors.InvalidArgument as e:
        at = from_line if e.details.startswith("bad edge source") else to_line
        raise reader.error(at, field_name, e.details) from None


def parse_yaml(text, name="pipeline.yaml", base_dir="", params=None):
    """A PipelineDef from YAML `text`; `name` stands for the file in messages
    and `base_dir` for its directory (relative input paths are resolved
    against it; "" the current directory). `params` override the file's
    pipeline parameters. Raises InvalidArgument "NAME:LINE: FIELD: problem"."""
    reader = _Reader(name, os.path.abspath(base_dir or os.getcwd()),
                     {k: str(v) for k, v in (params or {}).items()})
    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.composer.ComposerError as e:
        raise reader.error(e.problem_mark.line + 1, "",
                           "only one YAML document is allowed per file") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise reader.error(mark.line + 1 if mark else 1, "",
                           f"invalid YAML: {e.problem or e.context}") from None
    if root is None or _is_null(root):
        raise reader.error(1, "name", "the file is empty: a pipeline needs at least name and "
                           "nodes")
    if not isinstance(root, yaml.MappingNode):
        raise reader.error(_line(root, 1), "", "the file must be a mapping with name, nodes, "
                           f"edges..., not {_type_name(root)}")
    top = {key: (key, value, line) for key, value, line in reader.mapping(root, 1, "", _TOP_KEYS)}
    if "name" not in top:
        raise reader.error(1, "name", "required: the pipeline's name (lowercase letters, digits, "
                           "'-', '_', '.')")
    out = PipelineDef(reader.string(top["name"][1], top["name"][2], "name"), source=name)
    if "project" in top:
        out.project = reader.string(top["project"][1], top["project"][2], "project")
    if "reuse" in top:
        out.reuse = reader.boolean(top["reuse"][1], top["reuse"][2], "reuse")
    _parse_params(reader, top.get("params"), out)
    if "apps" in top:
        _, node, line = top["apps"]
        for key, value, key_line in reader.mapping(node, line, "apps"):
            reader.apps[key] = _app_mapping(reader, value, key_line, f"apps[{key}]", key)
    if "nodes" in top:
        _, node, line = top["nodes"]
        for i, item in enumerate(reader.sequence(node, line, "nodes",
                                                 "[{name: train, command: [...]}]")):
            _parse_node(reader, item, line, i, out)
    if "edges" in top:
        _, node, line = top["edges"]
        for i, item in enumerate(reader.sequence(
                node, line, "edges", "[preprocess.output.data.npz -> train.input.dataset]")):
            _parse_edge(reader, item, line, i, out)
    return out


def load_yaml(path, params=None):
    """A PipelineDef from the YAML file at `path` (docs/pipelines.md), with
    `params` overriding its pipeline parameters (`--param K=V`). Relative
    input paths are resolved against the file's directory. Raises
    InvalidArgument "FILE:LINE: FIELD: problem", or NotFound... when the
    file cannot be read."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise errors.InvalidArgument(f"{path}: is a directory, not a pipeline file")
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except OSError as e:
        raise errors.from_os_error(e, "", "cannot read the pipeline file") from None
    return parse_yaml(text, path, os.path.dirname(os.path.abspath(path)), params)
