"""Fixtures: one real cluster (scheduler + 2 workers) for the whole session.

DEJA_BUILD_DIR names the build tree whose binaries run (run_tests.sh sets
it). Tests that need no daemon (test_offline.py) run without it. Each test
makes its jobs unique (a token in the command) so that reuse across tests
never decides an outcome.
"""

import os
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster  # noqa: E402  (beside this file)

# The user's own configuration must not leak into the tests.
for _name in [n for n in os.environ if n.startswith("DEJA_") and n != "DEJA_BUILD_DIR"]:
    del os.environ[_name]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def cluster(request):
    """The running Cluster: a scheduler and workers w1, w2 (2 slots each)."""
    build_dir = os.environ.get("DEJA_BUILD_DIR")
    if not build_dir:
        pytest.fail("DEJA_BUILD_DIR is not set: run python/run_tests.sh BUILD_DIR")
    c = Cluster(os.path.abspath(build_dir))
    try:
        c.start_scheduler()
        c.start_worker("w1")
        c.start_worker("w2")
        c.wait_for_workers(2)
    except BaseException:
        c.stop(keep=True)
        raise
    yield c
    c.stop(keep=request.session.testsfailed > 0)


@pytest.fixture(scope="session")
def client(cluster):
    """A deja.Client of the cluster with the admin token."""
    return cluster.admin()


@pytest.fixture
def unique():
    """A string no other test's job holds: put it in a command."""
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def repo():
    """The repository's root (examples/, docs/)."""
    return REPO
