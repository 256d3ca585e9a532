"""Job arrays (SubmitArray, GetArray): many param sets of one spec in one call."""

import re

import pytest

import deja


def test_an_array_of_50_is_one_reply_and_resubmitting_reuses_every_element(client, unique):
    elements = [{"i": str(i)} for i in range(50)]
    command = ["sh", "-c", f"echo {unique} ${{params.i}} > out.txt"]
    array = client.submit_array(command, elements, outputs=["out.txt"], params={"i": "none"},
                                request_id=f"array-{unique}")
    assert re.fullmatch(r"a\d+", array.id)
    assert len(array.jobs) == 50 and len({j.id for j in array.jobs}) == 50
    # Jobs are numbered on from the array's: a12 holds j12, j13, ...
    first = int(array.id[1:])
    assert [j.id for j in array.jobs] == [f"j{first + i}" for i in range(50)]
    assert [j.params for j in array.jobs] == elements

    done = client.wait_array(array.id, timeout=120)
    assert (done.states, done.reused, done.project) == ({"SUCCEEDED": 50}, 0, "default")
    job = client.status(array.jobs[7].id)
    assert (job.array_id, job.params["i"], job.proto.array_index, job.proto.array_size) == (
        array.id, "7", 7, 50)
    assert client.logs(job.id) == ""
    assert [j.id for j in client.jobs(array_id=array.id, limit=0)] == [j.id for j in array.jobs]

    # The same call again (same request id): the same array, nothing new.
    again = client.submit_array(command, elements, outputs=["out.txt"], params={"i": "none"},
                                request_id=f"array-{unique}")
    assert (again.id, [j.id for j in again.jobs]) == (array.id, [j.id for j in array.jobs])

    # A new array of the same elements: every one served from the first.
    second = client.submit_array(command, elements, outputs=["out.txt"], params={"i": "none"})
    assert second.id != array.id
    finished = client.wait_array(second.id, timeout=120)
    assert (finished.states, finished.reused) == ({"SUCCEEDED": 50}, 50)
    for original, reused in zip(array.jobs, finished.jobs):
        assert client.status(reused.id).reused_from == original.id


def test_an_unknown_array_is_not_found(client):
    with pytest.raises(deja.NotFound) as raised:
        client.array("a999999")
    assert str(raised.value) == "get array a999999: array a999999 not found"
