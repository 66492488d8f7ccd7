"""The local intake as an editor's wakatime-cli sees it: real HTTP to an in-process agent."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.api.intake import MAX_BULK, parse_body
from agent.daemon import Agent
from agent.heartbeat import STRING_FIELDS
from tests.conftest import API_KEY

T0 = 1755864000.0
WAKATIME_UA = "wakatime/v1.115.2 (linux-6.8.0-x86_64) go1.23 vscode/1.99.0 vscode-wakatime/25.0.0"


@pytest.fixture
def http(agent: Agent) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=agent.intake_url, timeout=10) as client:
        yield client


def bearer(key: str = API_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def beat(i: int = 0, **extra: Any) -> dict[str, Any]:
    return {"entity": f"/home/o/p/f{i}.py", "type": "file", "time": T0 + i, "project": "p", **extra}


def stored_count(agent: Agent) -> int:
    return agent.store.heartbeat_count()


@pytest.mark.parametrize(
    "auth",
    [
        lambda: ({"Authorization": f"Bearer {API_KEY}"}, {}),
        lambda: ({"Authorization": "Basic " + base64.b64encode(API_KEY.encode()).decode()}, {}),
        lambda: ({}, {"api_key": API_KEY}),
    ],
    ids=["bearer", "basic", "query"],
)
def test_three_auth_forms(http: httpx.Client, auth: Callable[[], tuple[dict[str, str], dict[str, str]]]) -> None:
    headers, params = auth()
    r = http.post("/users/current/heartbeats.bulk", json=[beat()], headers=headers, params=params)
    assert r.status_code == 201


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({}, {}),
        ({"Authorization": "Bearer wrong"}, {"api_key": API_KEY}),  # a bad Bearer never falls through
        ({"Authorization": "Basic " + base64.b64encode(f"{API_KEY}:".encode()).decode()}, {}),
        ({"Authorization": "Basic !!!notbase64"}, {}),
    ],
)
def test_bad_credentials_are_401(http: httpx.Client, agent: Agent, headers: dict[str, str], params: dict) -> None:
    r = http.post("/users/current/heartbeats.bulk", json=[beat()], headers=headers, params=params)
    assert (r.status_code, r.json()) == (401, {"error": "Unauthorized"})
    assert stored_count(agent) == 0


def test_bulk_answers_per_item_in_order(http: httpx.Client, agent: Agent) -> None:
    body = [beat(0), beat(1, time="yesterday"), "not an object", beat(3, lineno="x"), beat(4)]
    r = http.post("/users/current/heartbeats.bulk", json=body, headers={**bearer(), "User-Agent": WAKATIME_UA})
    assert r.status_code == 201
    responses = r.json()["responses"]
    assert [status for _, status in responses] == [201, 400, 400, 400, 201]
    assert responses[0][0]["entity"] == "/home/o/p/f0.py" and responses[0][0]["id"] == 1
    assert responses[0][0]["user_agent"] == WAKATIME_UA  # the HTTP User-Agent is kept, as the server does
    assert "time" in responses[1][0]["error"]
    assert "lineno" in responses[3][0]["error"]
    assert stored_count(agent) == 2


def test_single_endpoint_forms(http: httpx.Client, agent: Agent) -> None:
    r = http.post("/users/current/heartbeats", json=[beat(0), beat(1)], headers=bearer())
    assert r.status_code == 202 and r.json()["time"] == T0  # only the first element, as on the server
    r = http.post("/users/current/heartbeats", json={"hackatime": beat(2)}, headers=bearer())
    assert r.status_code == 202
    r = http.post(
        "/users/current/heartbeats", content=json.dumps(beat(3)), headers={**bearer(), "Content-Type": "text/plain"}
    )
    assert r.status_code == 202
    assert stored_count(agent) == 3


def test_duplicates_return_the_stored_row(http: httpx.Client, agent: Agent) -> None:
    first = http.post("/users/current/heartbeats.bulk", json=[beat(0)], headers=bearer()).json()
    again = http.post("/users/current/heartbeats.bulk", json=[beat(0)], headers=bearer()).json()
    assert first["responses"][0][0]["id"] == again["responses"][0][0]["id"]
    assert stored_count(agent) == 1


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "Bad Request"),
        (b"", 400, "No data provided"),
        (b"[]", 400, "No data provided"),
        (b"{}", 400, "No data provided"),
        (b"42", 400, "No data provided"),
        (json.dumps([beat(i) for i in range(MAX_BULK + 1)]).encode(), 400, "Too many heartbeats"),
    ],
)
def test_malformed_requests_store_nothing(
    http: httpx.Client, agent: Agent, body: bytes, status: int, message: str
) -> None:
    r = http.post(
        "/users/current/heartbeats.bulk", content=body, headers={**bearer(), "Content-Type": "application/json"}
    )
    assert r.status_code == status
    assert message in r.json()["error"]
    assert stored_count(agent) == 0


def test_oversized_body_is_413(http: httpx.Client, agent: Agent) -> None:
    huge = b"[" + b" " * (9 * 1024 * 1024) + b"]"
    r = http.post("/users/current/heartbeats.bulk", content=huge, headers=bearer())
    assert r.status_code == 413 and "larger than" in r.json()["error"]
    assert stored_count(agent) == 0


@pytest.mark.parametrize(
    "path",
    [
        "/api/hackatime/v1/users/current/heartbeats.bulk",
        "/api/v1/users/current/heartbeats.bulk",
        "/users/current/heartbeats.bulk",
        "/",  # the legacy wakatime CLI posts to exactly its configured api_url
        "/api/v1/heartbeats.bulk",
    ],
)
def test_every_path_a_wakatime_client_uses(agent: Agent, path: str) -> None:
    with httpx.Client(base_url=agent.control_url, timeout=10) as client:
        r = client.post(path, json=[beat(0), beat(1)], headers=bearer())
    assert r.status_code == 201 and len(r.json()["responses"]) == 2


def test_statusbar_today_has_hackatimes_shape(http: httpx.Client) -> None:
    r = http.get("/users/current/statusbar/today", headers=bearer())
    assert r.status_code == 200
    grand = r.json()["data"]["grand_total"]
    assert isinstance(grand["total_seconds"], int) and isinstance(grand["text"], str)


def test_control_api_needs_its_token(agent: Agent) -> None:
    with httpx.Client(base_url=agent.control_url, timeout=10) as client:
        assert client.get("/agent/v1/status").status_code == 401
        assert client.get("/agent/v1/status", headers=bearer()).status_code == 401  # the API key is not the token
        ok = client.get("/agent/v1/status", headers={"Authorization": f"Bearer {agent.token}"})
    assert ok.status_code == 200
    assert API_KEY not in ok.text
    assert ok.json()["api_key"].endswith("6f70")


def test_listens_on_loopback_only(agent: Agent) -> None:
    assert agent.control_url.startswith("http://127.0.0.1:")
    assert agent.server is not None and agent.server.address[0] == "127.0.0.1"


heartbeat_like = st.fixed_dictionaries(
    {
        "time": st.one_of(
            st.floats(allow_nan=False, allow_infinity=False), st.integers(), st.text(max_size=12), st.none()
        )
    },
    optional={
        "entity": st.one_of(st.text(max_size=30), st.integers()),
        "lineno": st.one_of(st.integers(), st.text(max_size=3), st.floats(allow_nan=False, allow_infinity=False)),
        "is_write": st.one_of(st.booleans(), st.integers(), st.text(max_size=3)),
        "dependencies": st.one_of(st.lists(st.text(max_size=5), max_size=3), st.text(max_size=5)),
        "project": st.one_of(st.text(max_size=30), st.none()),
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(st.one_of(heartbeat_like, st.integers(), st.text(max_size=5)), min_size=1, max_size=12))
def test_any_bulk_gets_one_answer_per_item_and_stores_exactly_the_accepted(
    http: httpx.Client, agent: Agent, items: list[Any]
) -> None:
    before = stored_count(agent)
    r = http.post("/users/current/heartbeats.bulk", json=items, headers=bearer())
    assert r.status_code == 201
    responses = r.json()["responses"]
    assert len(responses) == len(items)
    accepted_ids = {body["id"] for body, status in responses if status == 201}
    assert all(status in (201, 400) for _, status in responses)
    assert all("error" in body for body, status in responses if status == 400)
    # Everything answered 201 is in the store (committed before the answer), nothing else was added.
    assert stored_count(agent) - before <= len(accepted_ids)
    rows = agent.store.reader().execute("SELECT id FROM heartbeats").fetchall()
    assert accepted_ids <= {row[0] for row in rows}


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        # What the legacy Python CLI sends for a Latin-1 file name: a surrogate escape in JSON.
        ('{"entity":"/home/o/caf\\udce9.py","type":"file","time":1755864000}', "entity is not valid Unicode"),
        ('{"entity":"/p/x.py","time":1755864000,"branch":"\\ud800"}', "branch is not valid Unicode"),
        ('{"entity":"/p/x.py","time":1755864000,"dependencies":["ok","\\udfff"]}', "dependencies"),
        ('{"entity":"/p/x.py","time":1755864000,"extra":' + _deep(1000) + "}", "nested too deeply"),
        ('{"entity":"/p/x.py","time":1' + "0" * 400 + "}", "time must be"),
        ('{"entity":"/p/x.py","time":1755864000,"lines":' + "9" * 5000 + "}", "not valid JSON"),
        ('{"entity":"/p/x.py","time":1755864000, oops}', "not valid JSON"),
    ],
    ids=["latin1-name", "lone-high", "dependency", "deep", "time-10^400", "5000-digits", "broken-item"],
)
def test_one_bad_item_gets_its_own_400_and_its_neighbours_are_stored(
    http: httpx.Client, agent: Agent, bad: str, words: str
) -> None:
    good = [json.dumps(beat(i)) for i in range(99)]
    body = "[" + ",".join([*good[:50], bad, *good[50:]]) + "]"
    r = http.post("/users/current/heartbeats.bulk", content=body.encode(), headers=bearer())
    assert r.status_code == 201
    responses = r.json()["responses"]
    assert len(responses) == 100
    assert responses[50][1] == 400 and words in responses[50][0]["error"]
    assert [status for _, status in responses[:50] + responses[51:]] == [201] * 99
    assert stored_count(agent) == 99
    again = http.post("/users/current/heartbeats.bulk", content=body.encode(), headers=bearer())
    assert again.status_code == 201 and stored_count(agent) == 99  # the retry is answered the same way


def test_bytes_that_are_not_utf8_fail_only_their_item(http: httpx.Client, agent: Agent) -> None:
    body = b'[{"entity":"/p/caf\xe9.py","time":1755864000},' + json.dumps(beat(1)).encode() + b"]"
    r = http.post("/users/current/heartbeats.bulk", content=body, headers=bearer())
    assert r.status_code == 201
    assert [status for _, status in r.json()["responses"]] == [400, 201]
    assert "entity is not valid Unicode" in r.json()["responses"][0][0]["error"]
    assert stored_count(agent) == 1


@pytest.mark.parametrize("body", [b"[" + b"{" * 2000, b"[1, 2", b"[1] x", _deep(5000).encode() + b"x", b"\xff\xfe"])
def test_a_body_that_cannot_be_parsed_at_all_is_400(http: httpx.Client, agent: Agent, body: bytes) -> None:
    r = http.post("/users/current/heartbeats.bulk", content=body, headers=bearer())
    assert r.status_code == 400 and "not valid JSON" in r.json()["message"]
    assert stored_count(agent) == 0


def test_the_single_endpoint_refuses_a_lone_surrogate(http: httpx.Client, agent: Agent) -> None:
    body = b'{"entity":"/home/o/caf\\udce9.py","type":"file","time":1755864000}'
    r = http.post("/users/current/heartbeats", content=body, headers=bearer())
    assert r.status_code == 400 and "not valid Unicode" in r.json()["error"]
    assert stored_count(agent) == 0


def test_a_web_page_is_refused_by_the_control_api_but_not_by_the_intake(http: httpx.Client, agent: Agent) -> None:
    token = {"Authorization": f"Bearer {agent.token}"}
    with httpx.Client(base_url=agent.control_url, timeout=10) as client:
        refused = client.get("/agent/v1/status", headers={**token, "Origin": "https://evil.example"})
        assert refused.status_code == 403 and "Origin" in refused.json()["error"]
        assert client.get("/agent/v1/status", headers=token).status_code == 200
        rebound = client.get("/agent/v1/status", headers={**token, "Host": "evil.example:80"})
        assert rebound.status_code == 403 and "Host" in rebound.json()["error"]
    r = http.post("/users/current/heartbeats.bulk", json=[beat(0)], headers={**bearer(), "Origin": "vscode-file://x"})
    assert r.status_code == 201


@pytest.mark.parametrize("field", STRING_FIELDS)
def test_a_lone_surrogate_in_any_string_field_fails_only_its_item(http: httpx.Client, agent: Agent, field: str) -> None:
    bad = json.dumps({**beat(99), field: "caf\udce9"})  # json.dumps writes it as the escape \udce9
    assert "\\udce9" in bad
    good = [json.dumps(beat(i)) for i in range(99)]
    body = "[" + ",".join([*good[:50], bad, *good[50:]]) + "]"
    r = http.post("/users/current/heartbeats.bulk", content=body.encode(), headers=bearer())
    assert r.status_code == 201
    responses = r.json()["responses"]
    assert [status for _, status in responses[:50] + responses[51:]] == [201] * 99
    answer, status = responses[50]
    if status == 201:  # an editor named in the body yields to the one the User-Agent names, as on the server
        assert field in ("editor", "operating_system") and "\udce9" not in json.dumps(answer)
        assert stored_count(agent) == 100
    else:
        assert status == 400 and "not valid Unicode" in answer["error"], answer
        assert stored_count(agent) == 99


_bodies = st.recursive(
    # Integers within 64 bits: orjson reads a longer one as a float (see test_a_huge_integer_is_refused_alike).
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(st.characters(codec=None)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_bodies)
def test_a_body_is_read_as_the_json_module_reads_it(doc: Any) -> None:
    """Bodies are read by orjson first (agent/fastjson.py): what it reads must be what the json
    module reads, or what it refuses must still be read by the json module."""
    body = json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")
    try:
        expected = json.loads(body)
    except ValueError:  # a lone surrogate written raw: not UTF-8; the per-item reading decides
        return
    assert parse_body(body) == expected
    assert _types(parse_body(body)) == _types(expected)


@pytest.mark.parametrize(
    "body",
    [b"[NaN]", b'["\\ud800"]', b"\xef\xbb\xbf[1]", "[1.5]".encode("utf-16"), b"[" * 600 + b"]" * 600, b"[1e400]"],
    ids=["nan", "lone-surrogate", "bom", "utf-16", "600-deep", "overflow"],
)
def test_what_orjson_refuses_the_json_module_still_reads(body: bytes) -> None:
    assert parse_body(body) == json.loads(body)


@pytest.mark.parametrize("field", ["lineno", "time", "is_write"])
def test_a_huge_integer_is_refused_alike(http: httpx.Client, agent: Agent, field: str) -> None:
    """orjson reads an integer beyond 64 bits as a float, the json module as an int: out of every
    field's range either way, so the item gets the same 400."""
    huge = "1" + "0" * 30
    bad = json.dumps(beat(1))[:-1] + f', "{field}": {huge}}}'
    answers = []
    for body in ("[" + bad + "," + json.dumps(beat(2)) + "]", "[" + bad + "," + json.dumps(beat(2)) + ", NaN]"):
        r = http.post("/users/current/heartbeats.bulk", content=body.encode(), headers=bearer())
        answers.append(r.json()["responses"][0])  # orjson reads the first body, the json module the second
    assert answers[0] == answers[1] and answers[0][1] == 400


def _types(value: Any) -> Any:
    if isinstance(value, list):
        return [_types(v) for v in value]
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    return type(value)
