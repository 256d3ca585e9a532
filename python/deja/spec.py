"""Building JobSpecs, AppSpecs and Resources as `deja submit`'s flags do.

client/spec_flags.cc is the model: the same defaults (app name from the
command's basename, project left to the scheduler, a random request id),
and resources written as people write them ("1.5" CPUs, "4GiB", "1h30m",
parsed as common/resources.cc does). Everything else is checked by the
scheduler, whose INVALID_ARGUMENT names the field.
"""

import math
import os
import re
import secrets

from deja import errors
from deja.v1 import job_pb2

_MAX_MILLI_CPUS = 1024 * 1000
_MAX_MEMORY_BYTES = 1 << 50
_MAX_GPUS = 1024
_MAX_TIME_LIMIT_MS = 366 * 24 * 3600 * 1000
_MEMORY_SHIFT = {"": 0, "b": 0, "k": 10, "m": 20, "g": 30, "t": 40}
# absl::ParseDuration's units.
_DURATION_UNITS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|ms|s|m|h)")

_MEMOIZATION = {
    None: job_pb2.MEMOIZATION_INHERIT,
    "inherit": job_pb2.MEMOIZATION_INHERIT,
    "on": job_pb2.MEMOIZATION_ON,
    "off": job_pb2.MEMOIZATION_OFF,
}


def _invalid(field, text, why):
    """'FIELD TEXT: why', or '"TEXT": why' without a field (common/resources.h)."""
    return errors.InvalidArgument(f"{field} {text}: {why}" if field else f'"{text}": {why}')


def random_request_id():
    """16 random lowercase hex characters, as the CLI's default request id."""
    return secrets.token_hex(8)


def default_app_name(argv0):
    """The app name the scheduler gives a command: the bytes of its basename,
    A-Z lowercased, any byte but [a-z0-9] (and '-', '_', '.' after the
    first) as '_' (NormalizeJobSpec, common/job_spec.cc)."""
    name = ""
    for byte in os.fsencode(argv0.rsplit("/", 1)[-1]):
        c = chr(byte).lower() if byte < 128 else "_"
        ok = "a" <= c <= "z" or "0" <= c <= "9" or (name and c in "-_.")
        name += c if ok else "_"
    return name[:128]


def normalize_job_spec(spec):
    """A copy of a deja.v1.JobSpec with the scheduler's defaults filled in:
    project "default", app name from the command, image_id from an image
    named by its ID (NormalizeJobSpec, common/job_spec.cc)."""
    copy = job_pb2.JobSpec()
    copy.CopyFrom(spec)
    spec = copy
    spec.project = spec.project or "default"
    if not spec.app.name and spec.app.command:
        spec.app.name = default_app_name(spec.app.command[0])
    if not spec.app.image_id and re.fullmatch(r"sha256:[0-9a-f]{64}", spec.app.image):
        spec.app.image_id = spec.app.image
    return spec


def parse_cpus(value, field="cpus"):
    """CPUs (2, 0.5, "1.25") in thousandths; InvalidArgument naming `field`."""
    try:
        cpus = float(str(value).strip())
    except ValueError:
        raise _invalid(field, value, "expected a number of CPUs (2, 0.5)") from None
    if not math.isfinite(cpus):
        raise _invalid(field, value, "expected a number of CPUs (2, 0.5)")
    if cpus <= 0:
        raise _invalid(field, value, "must be more than 0")
    if cpus * 1000 > _MAX_MILLI_CPUS:
        raise _invalid(field, value, f"more than {_MAX_MILLI_CPUS // 1000} CPUs")
    milli = round(cpus * 1000)
    if milli == 0:
        raise _invalid(field, value, "less than a thousandth of a CPU")
    return milli


def parse_memory(value, field="memory"):
    """Bytes from an int or "4GiB", "512M", "100KiB" (binary units)."""
    if isinstance(value, int):
        number, unit = float(value), ""
    else:
        text = str(value).strip().lower()
        match = re.fullmatch(r"([\d.]+)\s*([a-z]*)", text)
        try:
            number = float(match.group(1)) if match else None
        except ValueError:
            number = None
        if number is None:
            raise _invalid(field, value, "expected a size (4GiB, 512M, 1048576)")
        unit = match.group(2)
        if len(unit) > 1 and unit.endswith("b"):
            unit = unit[:-1]
        if len(unit) == 2 and unit[1] == "i":
            unit = unit[:-1]
    if unit not in _MEMORY_SHIFT:
        raise _invalid(field, value, "unknown unit; use B, KiB, MiB, GiB or TiB (K, M, G, T)")
    size = math.ldexp(number, _MEMORY_SHIFT[unit])
    if size < 1:
        raise _invalid(field, value, "must be at least 1 byte")
    if size > _MAX_MEMORY_BYTES:
        raise _invalid(field, value, "more than 1 PiB")
    return round(size)


def parse_time_limit(value, field="time_limit"):
    """Milliseconds from seconds (a number) or "2h", "90m", "1h30m", "500ms"."""
    if isinstance(value, (int, float)):
        ms = value * 1000.0
    else:
        text = str(value).strip()
        body = text.lstrip("+-")
        parts = _DURATION_PART.findall(body)
        if body == "0":
            ms = 0.0
        elif not parts or "".join(n + u for n, u in parts) != body:
            raise _invalid(field, value, "expected a duration (2h, 90m, 1h30m, 45s)")
        else:
            ms = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
            if text.startswith("-"):
                ms = -ms
    if ms < 1:
        raise _invalid(field, value, "must be at least 1ms")
    if ms > _MAX_TIME_LIMIT_MS:
        raise _invalid(field, value, "more than 366 days")
    return int(ms)


def parse_gpus(value, field="gpus"):
    """A GPU count from an int or whole-number text, 0 to 1024."""
    try:
        gpus = int(value)
    except (TypeError, ValueError):
        where = f"{field} " if field else ""
        raise errors.InvalidArgument(f'{where}"{value}" is not a whole number') from None
    if gpus < 0 or gpus > _MAX_GPUS:
        raise _invalid(field, value, f"must be 0 to {_MAX_GPUS}")
    return gpus


def resources(cpus=None, memory=None, gpus=0, time_limit=None):
    """A deja.v1.Resources, or None when nothing is asked for.

    cpus: a number or text ("1.5"); memory: bytes or text ("4GiB");
    gpus: a count; time_limit: seconds or text ("1h30m").
    """
    proto = job_pb2.Resources()
    if cpus is not None:
        proto.milli_cpus = parse_cpus(cpus)
    if memory is not None:
        proto.memory_bytes = parse_memory(memory)
    proto.gpus = parse_gpus(gpus or 0)
    if time_limit is not None:
        proto.time_limit_ms = parse_time_limit(time_limit)
    return proto if proto.ByteSize() else None


def parse_memoization(value):
    """The deja.v1.Memoization of "on", "off", "inherit" (any case) or None."""
    key = value.lower() if isinstance(value, str) else value
    if key not in _MEMOIZATION:
        raise errors.InvalidArgument(f"memoization {value!r}: expected on, off or inherit")
    return _MEMOIZATION[key]


def app_spec(command, *, name=None, version="", env=None, image="", platform=None,
             reuse=True, side_effects=False, cache_key=()):
    """A deja.v1.AppSpec: what runs.

    `command` is the argv (a list of words; "${params.X}" and "${inputs.X}"
    are substituted by the scheduler). `name` defaults to the command's
    basename; `reuse=False` marks the app non-deterministic (never
    memoized); `side_effects=True` makes it always execute.
    """
    if isinstance(command, (str, bytes)):
        raise errors.InvalidArgument(
            f"command {command!r}: must be a list of words (argv), e.g. ['python3', 'train.py'];"
            " for a shell line: ['sh', '-c', '...']")
    command = [str(word) for word in command]
    app = job_pb2.AppSpec(
        name=name if name is not None else (default_app_name(command[0]) if command else ""),
        version=str(version or ""), command=command, image=image or "",
        env={k: str(v) for k, v in (env or {}).items()},
        platform={k: str(v) for k, v in (platform or {}).items()},
        side_effects=bool(side_effects), cache_key=list(cache_key))
    if not reuse:
        app.reuse = False
    return app


def job_spec(command, *, project=None, params=None, inputs=(), outputs=(), labels=None,
             memoization=None, force=False, reuse_job_id=None, request_id=None, cpus=None,
             memory=None, gpus=0, time_limit=None, fail_unplaceable=False, network=False,
             **app):
    """A deja.v1.JobSpec as `deja submit` builds it from its flags.

    `inputs` are deja.v1.InputRefs (deja.inputs.prepare_inputs makes them
    from local paths); `app` holds app_spec's keywords. `project` None
    leaves it to the scheduler (the token's project, else "default");
    `request_id` None draws a random one (random_request_id).
    """
    spec = job_pb2.JobSpec(
        project=project or "", app=app_spec(command, **app),
        params={k: str(v) for k, v in (params or {}).items()},
        inputs=list(inputs), outputs=[str(o) for o in outputs],
        labels={k: str(v) for k, v in (labels or {}).items()},
        memoization=parse_memoization(memoization), force=bool(force),
        reuse_job_id=reuse_job_id or "",
        request_id=request_id or random_request_id(),
        fail_unplaceable=bool(fail_unplaceable), network=bool(network))
    wanted = resources(cpus, memory, gpus, time_limit)
    if wanted is not None:
        spec.resources.CopyFrom(wanted)
    return spec
