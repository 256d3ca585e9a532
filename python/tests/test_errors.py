"""Errors read as what the client was doing and why, with one exception
class per kind; configuration comes from the CLI's variables."""

import socket

import pytest

import deja


def test_a_bad_token_is_unauthenticated(cluster):
    with deja.Client(cluster.address, token="t1.not-the-secret", tls_ca=cluster.ca_file) as bad:
        with pytest.raises(deja.Unauthenticated) as raised:
            bad.status("j1")
    assert str(raised.value).startswith("get job j1: ")
    assert raised.value.code.name == "UNAUTHENTICATED"


def test_no_token_says_how_to_give_one(cluster):
    with deja.Client(cluster.address, tls_ca=cluster.ca_file) as anonymous:
        with pytest.raises(deja.Unauthenticated, match=r"give a token with token=, token_file="):
            anonymous.jobs()


def test_a_reader_may_not_submit(cluster, client):
    reader = client.create_token("reader", project="default", description="python test")
    assert (reader.role, reader.project) == ("READER", "default")
    with deja.Client(cluster.address, token=reader.secret, tls_ca=cluster.ca_file) as c:
        c.jobs()  # reading is allowed
        with pytest.raises(deja.PermissionDenied) as raised:
            c.submit(["echo", "no"])
    assert str(raised.value).startswith("submit echo: ")


def test_an_unknown_job_is_not_found(client):
    with pytest.raises(deja.NotFound) as raised:
        client.status("j999999")
    assert str(raised.value) == "get job j999999: job j999999 not found"
    assert raised.value.details == "job j999999 not found"
    with pytest.raises(deja.NotFound, match="wait for job j999999: "):
        client.wait("j999999", timeout=5)
    with pytest.raises(deja.NotFound, match="read the stdout of job j999999: "):
        client.logs("j999999")
    with pytest.raises(deja.NotFound, match="j999999"):
        "".join(client.logs("j999999", follow=True))


def test_a_missing_input_file_is_not_found_and_nothing_is_submitted(client, tmp_path, unique):
    before = len(client.jobs(limit=0))
    with pytest.raises(deja.NotFound) as raised:
        client.submit(["cat", "${inputs.data}", unique], inputs={"data": tmp_path / "gone.csv"})
    assert str(raised.value) == (
        f"submit cat: input 'data': {tmp_path}/gone.csv: No such file or directory")
    assert len(client.jobs(limit=0)) == before


def test_the_scheduler_names_the_bad_field(client):
    with pytest.raises(deja.InvalidArgument, match=r"submit echo: outputs\[0\]: .*\.\."):
        client.submit(["echo", "x"], outputs=["../escape"])
    with pytest.raises(deja.InvalidArgument, match=r'unknown param "nope"'):
        client.submit(["echo", "${params.nope}"])


def test_a_bad_argument_is_refused_before_any_call(client):
    with pytest.raises(deja.InvalidArgument, match="must be a list of words"):
        client.submit("echo hi")
    with pytest.raises(deja.InvalidArgument, match="memoization 'sometimes'"):
        client.submit(["echo"], memoization="sometimes")
    with pytest.raises(deja.InvalidArgument, match="stream 'both'"):
        client.logs("j1", stream="both")


def test_an_unreachable_scheduler_is_unavailable_naming_it(cluster):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        with deja.Client(f"127.0.0.1:{port}", token="x", tls_ca=cluster.ca_file,
                         timeout=5) as c:
            with pytest.raises(deja.Unavailable,
                               match=f"get job j1: cannot reach scheduler at 127.0.0.1:{port}"):
                c.status("j1")


def test_the_environment_configures_the_client_as_for_the_cli(cluster, monkeypatch):
    monkeypatch.setenv("DEJA_SCHEDULER", cluster.address)
    monkeypatch.setenv("DEJA_TLS_CA", cluster.ca_file)
    monkeypatch.setenv("DEJA_TOKEN_FILE", cluster.admin_token_file)
    with deja.Client() as c:
        assert c.address == cluster.address
        assert len(c.workers()) == 2
    monkeypatch.setenv("DEJA_TOKEN", "t1.wrong")  # $DEJA_TOKEN comes before the file
    with deja.Client() as c:
        with pytest.raises(deja.Unauthenticated):
            c.workers()
    monkeypatch.setenv("DEJA_TLS_CA", "/nonexistent/ca.crt")
    with pytest.raises(deja.InvalidArgument,
                       match=r"\$DEJA_TLS_CA: /nonexistent/ca.crt: No such file"):
        deja.Client()


def test_an_empty_token_file_is_refused(tmp_path):
    (tmp_path / "token").write_text("\n")
    with pytest.raises(deja.InvalidArgument, match=r"token_file: .*/token: empty, not a token"):
        deja.Client("127.0.0.1:1", token_file=tmp_path / "token")
