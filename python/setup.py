"""Installs the `deja` Python client.

Deliberately a setup.py without a pyproject.toml: pip then builds with the
setuptools and wheel already installed (Debian's python3-setuptools and
python3-wheel, seen from a venv made with --system-site-packages) instead of
fetching them into an isolated build environment, so `pip install ./python`
works offline. The protobuf and gRPC modules (deja.v1) are generated at
build time from ../protos (or $DEJA_PROTOS) by gen_protos.py.
"""

import os
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_protos  # noqa: E402  (beside this file)


class BuildWithProtos(build_py):
    """build_py, then the generated deja.v1 modules into the build tree."""

    def run(self):
        super().run()
        gen_protos.generate(self.build_lib,
                            os.environ.get("DEJA_PROTOS", gen_protos.DEFAULT_PROTOS))


setup(
    name="deja",
    version="0.1.0",
    description="Python client of Deja, the distributed job scheduler that never runs the same "
                "job twice",
    packages=["deja"],
    python_requires=">=3.10",
    # Debian 12's python3-grpcio 1.51, python3-protobuf 3.21, python3-xxhash 3.2
    # and python3-yaml 6.0 satisfy these. No versions: Debian's xxhash says it
    # is 0.0.0 in its egg-info, and a bound pip cannot meet offline would make
    # it go looking on an index.
    install_requires=["grpcio", "protobuf", "PyYAML", "xxhash"],
    cmdclass={"build_py": BuildWithProtos},
)
