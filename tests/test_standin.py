"""The Hackatime stand-in checked against hackatime-api.md, over real loopback HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.standin import Fault, HackatimeStandin, ThrottleLimits, User, basic_header, durations, measure_ingest_rate

KEY = "11111111-2222-4333-8444-555555555555"
NY_KEY = "66666666-7777-4888-9999-aaaaaaaaaaaa"
USER = User(id=1, username="orpheus", timezone="UTC")
NY_USER = User(id=2, username="heidi", timezone="America/New_York", day_goal=1800)
T0 = 1_755_864_000.0  # 2025-08-22T12:00:00Z, a Friday
UA = "wakatime/v1.115.2 (linux-6.8.0-x86_64) go1.23 vscode/1.96.0 vscode-wakatime/25.0.0"
BULK = "/users/current/heartbeats.bulk"
SINGLE = "/users/current/heartbeats"


@pytest.fixture
def srv() -> Iterator[HackatimeStandin]:
    with HackatimeStandin(keys={KEY: USER, NY_KEY: NY_USER}, now=T0) as standin:
        yield standin
        assert standin.errors() == []


# The stand-in is plain HTTP, but every httpx.Client builds a TLS context unless given one, and
# loading the CA bundle costs ~35 ms: one shared context keeps the whole file fast.
_TLS = ssl.create_default_context()


def client(srv: HackatimeStandin, key: str | None = KEY, base_url: str | None = None, **kwargs: Any) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=base_url or srv.api_url, headers=headers, verify=_TLS, **kwargs)


def hb(time: Any = T0, **fields: Any) -> dict[str, Any]:
    return {"entity": "/src/app.py", "type": "file", "time": time, "project": "app", "user_agent": UA, **fields}


def post_bulk(srv: HackatimeStandin, items: list[Any], key: str = KEY, **kwargs: Any) -> httpx.Response:
    with client(srv, key) as c:
        return c.post(BULK, json=items, **kwargs)


# --- authentication (§1.1) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "query", "status", "form"),
    [
        ({"Authorization": f"Bearer {KEY}"}, {}, 202, "bearer"),
        ({"Authorization": basic_header(KEY)}, {}, 202, "basic"),
        ({}, {"api_key": KEY}, 202, "query"),
        ({"Authorization": f"Token {KEY}"}, {"api_key": KEY}, 202, "query"),  # neither scheme: query allowed
        ({"Authorization": "Bearer wrong"}, {"api_key": KEY}, 401, "bearer"),  # no fall-through
        ({"Authorization": "Bearer"}, {"api_key": KEY}, 401, "bearer"),
        ({"Authorization": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()}, {}, 401, "basic"),
        ({"Authorization": "Basic !!not-base64!!"}, {"api_key": KEY}, 401, "basic"),
        ({"Authorization": "Basic " + base64.b64encode(b"\xff\xfe").decode()}, {}, 401, "basic"),
        ({}, {}, 401, None),
    ],
)
def test_auth_matrix_on_wakatime_endpoints(
    srv: HackatimeStandin, headers: dict[str, str], query: dict[str, str], status: int, form: str | None
) -> None:
    with client(srv, key=None) as c:
        response = c.post(SINGLE, json=hb(), headers=headers, params=query)
    assert response.status_code == status
    if status == 401:
        assert response.json() == {"error": "Unauthorized"}
        assert srv.heartbeats() == []
    assert srv.requests()[-1].auth == form


def test_auth_differs_per_endpoint_family(srv: HackatimeStandin) -> None:
    basic = {"Authorization": basic_header(KEY)}
    bearer = {"Authorization": f"Bearer {KEY}"}
    with client(srv, key=None, base_url=srv.url) as c:
        assert c.get("/api/v1/my/heartbeats", params={"api_key": KEY}).status_code == 401
        assert c.get("/api/v1/my/heartbeats", headers=basic).status_code == 200
        # /users/my/stats takes a Bearer key only.
        assert c.get("/api/v1/users/my/stats", headers=basic).status_code == 401
        assert c.get("/api/v1/users/my/stats", headers=bearer).status_code == 200
        # OAuth-only endpoints never take an API key: empty 401 with a Doorkeeper challenge.
        response = c.get("/api/v1/authenticated/me", headers=bearer)
    assert response.status_code == 401 and response.content == b""
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_key_gets_401_and_pending_deletion_403(srv: HackatimeStandin) -> None:
    srv.revoke_key(KEY)
    assert post_bulk(srv, [hb()]).status_code == 401
    srv.update_user(User(id=2, username="heidi", timezone="America/New_York", pending_deletion=True))
    response = post_bulk(srv, [hb()], key=NY_KEY)
    assert (response.status_code, response.json()) == (403, {"error": "Account pending deletion"})


# --- bulk and single POST bodies (§4.1, §4.2) --------------------------------------------------


def test_bulk_answers_each_item_in_input_order(srv: HackatimeStandin) -> None:
    items = [hb(T0), "not an object", hb(12345), hb(T0 + 30), hb(T0, project=7)]
    response = post_bulk(srv, items)
    assert response.status_code == 201
    results = response.json()["responses"]
    assert [status for _, status in results] == [201, 422, 422, 201, 422]
    assert results[0][0]["id"] == 1 and results[3][0]["id"] == 2
    assert results[1][0]["type"] == "NoMethodError"
    assert results[2][0] == {
        "error": "time must be Unix epoch seconds between 1000000000 and 1999999999",
        "type": "HeartbeatIngest::InvalidHeartbeatTime",
    }
    assert results[4][0]["type"] == "NoMethodError"  # project.gsub on an Integer
    assert [row["time"] for row in srv.heartbeats()] == [T0, T0 + 30]
    assert srv.requests()[-1].items == 5


def test_bulk_cap_of_100(srv: HackatimeStandin) -> None:
    response = post_bulk(srv, [hb(T0 + i) for i in range(101)])
    assert (response.status_code, response.json()) == (
        400,
        {"error": "Too many heartbeats in a single request (max 100)"},
    )
    assert srv.count() == 0 and srv.requests()[-1].items == 101
    response = post_bulk(srv, [hb(T0 + i) for i in range(100)])
    assert response.status_code == 201 and len(response.json()["responses"]) == 100


@pytest.mark.parametrize(
    ("content", "content_type", "expected"),
    [
        (b"", "application/json", {"error": "No data provided..."}),
        (b"[]", "application/json", {"error": "No data provided..."}),
        (b"{}", "application/json", {"error": "No data provided..."}),
        (b"5", "application/json", {"error": "No data provided..."}),
        (b'{"project": "no heartbeats key"}', "application/json", {"error": "No data provided..."}),
        (b'{"heartbeats": [1]}', "text/plain", {"error": "No data provided..."}),  # text/plain needs an array
        (b"not json", "text/plain", {"error": "No data provided..."}),
    ],
)
def test_bulk_empty_bodies(srv: HackatimeStandin, content: bytes, content_type: str, expected: Any) -> None:
    with client(srv) as c:
        response = c.post(BULK, content=content, headers={"Content-Type": content_type})
    assert (response.status_code, response.json()) == (400, expected)


@pytest.mark.parametrize(
    ("content", "content_type"),
    [(b"{not json", "application/json"), (b"[NaN]", "application/json"), (b"a=1", "application/x-www-form-urlencoded")],
)
def test_bulk_non_json_is_a_bad_request(srv: HackatimeStandin, content: bytes, content_type: str) -> None:
    with client(srv) as c:
        response = c.post(BULK, content=content, headers={"Content-Type": content_type})
    body = response.json()
    assert response.status_code == 400
    assert (body["error"], body["status"]) == ("Bad Request", 400) and body["message"]


@pytest.mark.parametrize(
    "shape",
    [
        lambda items: items,
        lambda items: {"heartbeats": items},
        lambda items: {"hackatime": {"heartbeats": items}},
    ],
)
def test_bulk_body_forms(srv: HackatimeStandin, shape: Any) -> None:
    response = post_bulk(srv, shape([hb(T0), hb(T0 + 1)]))
    assert response.status_code == 201 and srv.count() == 2


def test_bulk_text_plain_array(srv: HackatimeStandin) -> None:
    with client(srv) as c:
        response = c.post(BULK, content=json.dumps([hb()]), headers={"Content-Type": "text/plain"})
    assert response.status_code == 201 and srv.count() == 1


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (json.dumps([hb(T0), hb(T0 + 1)]), "application/json"),  # only the first element is used
        (json.dumps(hb(T0)), "application/json"),
        (json.dumps({"hackatime": hb(T0)}), "application/json"),
        (json.dumps(hb(T0)), "text/plain"),
        (json.dumps([hb(T0)]), "text/plain"),
    ],
)
def test_single_body_forms(srv: HackatimeStandin, content: str, content_type: str) -> None:
    with client(srv) as c:
        response = c.post(SINGLE, content=content, headers={"Content-Type": content_type})
    assert response.status_code == 202
    row = response.json()
    assert "data" not in row and row["id"] == 1 and row["time"] == T0
    assert row["source_type"] == "direct_entry" and srv.count() == 1


def test_single_failures(srv: HackatimeStandin) -> None:
    with client(srv) as c:
        assert c.post(SINGLE, json={}).json() == {"error": "No data provided..."}
        response = c.post(SINGLE, json=hb("yesterday-ish"))
    assert response.status_code == 422
    assert response.json() == {
        "error": "time must be a Unix epoch timestamp or parseable date",
        "type": "HeartbeatIngest::InvalidHeartbeatTime",
    }


def test_one_out_of_range_integer_fails_the_whole_batch(srv: HackatimeStandin) -> None:
    results = post_bulk(srv, [hb(T0), hb(T0 + 1, lineno=2**31), "x"]).json()["responses"]
    assert [status for _, status in results] == [422, 422, 422]
    assert results[0][0]["type"] == "ActiveModel::RangeError" and srv.count() == 0


# --- dedup and fields_hash (§4.4) --------------------------------------------------------------


def test_fields_hash_matches_a_hand_written_rails_json() -> None:
    # Written out by hand from §4.4: key order, null for absent, <>& escaped, "é" raw,
    # time as a float, and the one non-null AI key appended at the end.
    rails_json = (
        '{"user_id":1,"branch":null,"category":"coding","dependencies":["x"],"editor":"vscode",'
        '"entity":"/src/\\u003ca\\u003e\\u0026b.py","language":"Python","machine":"m",'
        '"operating_system":"linux","project":"café","type":"file","user_agent":"' + UA + '",'
        '"line_additions":null,"line_deletions":null,"lineno":3,"lines":null,"cursorpos":null,'
        '"project_root_count":null,"time":1755864000.0,"is_write":true,"ai_input_tokens":12}'
    )
    expected = hashlib.md5(rails_json.encode("utf-8")).hexdigest()
    item = {
        "entity": "/src/<a>&b.py",
        "type": "file",
        "time": 1755864000,
        "project": "café",
        "language": "Python",
        "is_write": True,
        "lineno": 3,
        "dependencies": ["x"],
        "ai_input_tokens": 12,
        "user_agent": UA,
        "unpermitted": "dropped",
    }
    with HackatimeStandin(keys={KEY: USER}, now=T0) as standin, client(standin) as c:
        row = c.post(SINGLE, json=item, headers={"X-Machine-Name": "m"}).json()
    assert row["fields_hash"] == expected
    assert "unpermitted" not in row


def test_resend_returns_the_existing_row(srv: HackatimeStandin) -> None:
    first = post_bulk(srv, [hb(T0), hb(T0 + 30), hb(T0)]).json()["responses"]
    assert [r["id"] for r, _ in first] == [1, 2, 1]  # a duplicate inside one batch too
    again = post_bulk(srv, [hb(T0 + 30)], headers={"CF-Connecting-IP": "203.0.113.9"}).json()["responses"]
    assert again == [[first[1][0], 201]]  # ip_address is not hashed
    with client(srv) as c:
        single = c.post(SINGLE, json=hb(T0))
    assert (single.status_code, single.json()["id"]) == (202, 1)
    assert srv.count() == 2


def test_a_changed_hashed_field_is_a_new_row(srv: HackatimeStandin) -> None:
    post_bulk(srv, [hb()], headers={"X-Machine-Name": "a"})
    post_bulk(srv, [hb()], headers={"X-Machine-Name": "b"})
    post_bulk(srv, [hb(T0 + 0.001)])
    assert srv.count() == 3


def test_soft_deleted_row_is_recreated(srv: HackatimeStandin) -> None:
    post_bulk(srv, [hb()])
    srv.delete_heartbeat(1)
    row = post_bulk(srv, [hb()]).json()["responses"][0][0]
    assert row["id"] == 2 and row["deleted_at"] is None


def test_rendered_rows_decode_to_the_stored_rows(srv: HackatimeStandin) -> None:
    items = [hb(T0, ai_model="m1", dependencies=["a", "<b>"]), hb(T0 + 1, project="π"), hb(T0 + 2, branch=None)]
    answered = [row for row, _ in post_bulk(srv, items).json()["responses"]]
    assert answered == srv.heartbeats()
    assert list(srv.heartbeats()[0])[:3] == ["id", "user_id", "time"]


# --- normalisation (§4.3) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (1755864000, 1755864000.0),
        ("1755864000.5", 1755864000.5),
        (1755864000250, 1755864000.25),  # ms
        (1755864000250000, 1755864000.25),  # µs
        (1755864000000000000, 1755864000.0),  # ns (a float: .25 would not survive 1e18 / 1e9 exactly)
        ("2025-08-22T12:00:00.250Z", 1755864000.25),
        ("2025-08-22T14:00:00+02:00", 1755864000.0),
    ],
)
def test_time_normalisation(srv: HackatimeStandin, sent: Any, stored: float) -> None:
    row, status = post_bulk(srv, [hb(sent)]).json()["responses"][0]
    assert (status, row["time"]) == (201, stored)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'[{"time": 1e999}]', "HeartbeatIngest::InvalidHeartbeatTime"),  # Infinity: no message
        (b'[{"time": "NaN"}]', "time must be a Unix epoch timestamp or parseable date"),
        (b'[{"time": 999999999}]', "time must be Unix epoch seconds between 1000000000 and 1999999999"),
        (b'[{"time": true}]', "time must be a Unix epoch timestamp"),
        (b'[{"entity": "no time"}]', "time must be a Unix epoch timestamp"),
    ],
)
def test_bad_times_are_422(srv: HackatimeStandin, content: bytes, message: str) -> None:
    with client(srv) as c:
        response = c.post(BULK, content=content, headers={"Content-Type": "application/json"})
    body, status = response.json()["responses"][0]
    assert (status, body) == (422, {"error": message, "type": "HeartbeatIngest::InvalidHeartbeatTime"})


def test_normalisation_rules(srv: HackatimeStandin) -> None:
    items = [
        hb(T0, entity="test.txt", language="Text"),
        hb(T0 + 1, project="\x00 my\x07proj\u200b  ", branch="feat\x00ure"),
        hb(T0 + 2, language=None, entity="/x/y.rs", editor="body-editor", operating_system="body-os"),
        hb(T0 + 3, user_agent=None, plugin="neovim/0.10.0 wakatime.nvim/1.0.0"),
        hb(T0 + 4, user_agent="", type="domain", entity="github.com", machine="body-machine"),
        hb(T0 + 5, user_agent="not a wakatime ua", editor="emacs", operating_system="plan9"),
    ]
    post_bulk(srv, items, headers={"User-Agent": "curl/8.5.0"})
    rows = srv.heartbeats()
    assert rows[0]["source_type"] == "test_entry"
    assert (rows[1]["project"], rows[1]["branch"]) == ("myproj", "feature")
    assert (rows[2]["language"], rows[2]["editor"], rows[2]["operating_system"]) == ("Rust", "vscode", "linux")
    assert (rows[3]["user_agent"], rows[3]["editor"]) == ("neovim/0.10.0 wakatime.nvim/1.0.0", "neovim")
    assert (rows[4]["user_agent"], rows[4]["editor"], rows[4]["category"]) == ("curl/8.5.0", "curl", "browsing")
    assert rows[4]["machine"] == "body-machine"
    assert (rows[5]["editor"], rows[5]["operating_system"]) == ("emacs", "plan9")  # unparsable UA
    assert all(row["category"] in ("coding", "browsing") for row in rows)


def test_machine_header_wins_over_body(srv: HackatimeStandin) -> None:
    post_bulk(srv, [hb(machine="body")], headers={"X-Machine-Name": "header"})
    assert srv.heartbeats()[0]["machine"] == "header"


def test_placeholders_resolve_from_request_then_store(srv: HackatimeStandin) -> None:
    post_bulk(srv, [hb(T0, language="Go", branch="main"), hb(T0 + 1, project="other", language="Zig")])
    items = [
        hb(T0 + 2, language="<<LAST_LANGUAGE>>", branch="<<LAST_BRANCH>>"),  # from the store
        hb(T0 + 3, language="Python"),
        hb(T0 + 4, language="<<LAST_LANGUAGE>>"),  # earlier in this request wins
        hb(T0 + 5, project="<<LAST_PROJECT>>", language="<<LAST_LANGUAGE>>"),  # project kept as is
    ]
    post_bulk(srv, items)
    rows = srv.heartbeats()[2:]
    assert [(r["project"], r["language"], r["branch"]) for r in rows] == [
        ("app", "Go", "main"),
        ("app", "Python", None),
        ("app", "Python", None),
        ("<<LAST_PROJECT>>", "Python", None),
    ]


# --- statusbar and durations (§2, §4.5) --------------------------------------------------------


def statusbar(srv: HackatimeStandin, key: str = KEY) -> dict[str, Any]:
    with client(srv, key) as c:
        response = c.get("/users/current/statusbar/today")
    assert response.status_code == 200
    return response.json()["data"]


@pytest.mark.parametrize(
    ("offsets", "seconds", "text"),
    [
        ([], 0, "Start coding!"),
        ([0], 0, "Start coding!"),
        ([0, 30], 30, "0m"),
        ([0, 0, 0], 0, "Start coding!"),  # identical timestamps add nothing
        ([0, 100, 3700], 220, "3m"),  # an hour-long gap is capped at 120 s, not dropped
        ([0, 0.5], 0, "Start coding!"),  # 0.5 rounds to even
        ([0, 1.5], 2, "0m"),
        ([0, 2.5], 2, "0m"),
        ([i * 60.0 for i in range(91)], 5400, "1h 30m"),
        ([i * 120.0 for i in range(31)], 3600, "1h"),
    ],
)
def test_statusbar_duration_table(srv: HackatimeStandin, offsets: list[float], seconds: int, text: str) -> None:
    if offsets:
        post_bulk(srv, [hb(T0 - 7200 + offset, entity=f"/f{i}") for i, offset in enumerate(offsets)])
    grand = statusbar(srv)["grand_total"]
    assert (grand["total_seconds"], grand["text"]) == (seconds, text)


def test_today_is_the_profile_zone_day_with_integer_bounds(srv: HackatimeStandin) -> None:
    # New York is UTC-4 in August: its 2025-08-22 starts at 04:00Z.
    midnight = 1_755_835_200.0
    offsets = [-120.0, -0.5, 0.0, 60.0, 120.0]  # 23:58, 23:59:59.5 (yesterday), then today
    post_bulk(srv, [hb(midnight + o, entity=f"/f{i}") for i, o in enumerate(offsets)], key=NY_KEY)
    srv.set_now(midnight + 600)
    assert statusbar(srv, NY_KEY)["grand_total"]["total_seconds"] == 120  # nothing across midnight
    srv.set_now(midnight - 0.1)  # yesterday evening: 23:59:59.5 is past end_of_day.to_i
    assert statusbar(srv, NY_KEY)["grand_total"]["total_seconds"] == 0
    assert statusbar(srv, KEY)["grand_total"]["total_seconds"] == 0  # another user's rows never count


def test_statusbar_goal(srv: HackatimeStandin) -> None:
    srv.set_now(1_755_864_000.0)  # 08:00 in New York
    assert statusbar(srv, NY_KEY)["grand_total"]["text"] == "Start coding! / 30m goal"
    post_bulk(srv, [hb(T0 - 1200 + i * 60.0, entity=f"/f{i}") for i in range(16)], key=NY_KEY)
    data = statusbar(srv, NY_KEY)
    assert data["grand_total"] == {"text": "15m / 30m goal", "total_seconds": 900}
    assert data["goal"] == {"target_seconds": 1800, "tracked_seconds": 900, "completion_percent": 50, "complete": False}
    assert "goal" not in statusbar(srv, KEY)


def test_statusbar_text_modes(srv: HackatimeStandin) -> None:
    post_bulk(srv, [hb(T0 - 5400 + i * 60.0, entity=f"/f{i}") for i in range(91)])
    srv.update_user(User(id=1, username="orpheus", text_mode="clock_emoji"))
    assert statusbar(srv)["grand_total"]["text"] == "🕜"  # 5400 s = 3 half hours past 🕛: half past one
    srv.update_user(User(id=1, username="orpheus", text_mode="compliment_text", day_goal=60))
    text = statusbar(srv)["grand_total"]["text"]
    assert text.endswith("!") and "/" not in text


def test_group_totals_partition_per_group(srv: HackatimeStandin) -> None:
    # §2's example: A@0, B@30, A@60, B@90 → overall 90, but A = 60 and B = 60.
    post_bulk(srv, [hb(T0 + t, project=p, entity=f"/{p}{t}") for t, p in ((0, "A"), (30, "B"), (60, "A"), (90, "B"))])
    with client(srv) as c:
        data = c.get("/users/current/stats/last_7_days").json()["data"]
    assert data["total_seconds"] == 90
    assert [(p["name"], p["total_seconds"], p["percent"]) for p in data["projects"]] == [
        ("A", 60, 50.0),
        ("B", 60, 50.0),
    ]
    assert [e["name"] for e in data["editors"]] == ["VSCode"] and data["operating_systems"][0]["name"] == "Linux"
    assert data["days_including_holidays"] == 1 and data["daily_average"] == 90.0
    assert data["categories"][0]["total_seconds"] == 90
    assert (data["start"], data["end"]) == ("2025-08-15T00:00:00Z", "2025-08-22T23:59:59Z")


def test_summaries_credit_each_gap_to_the_earlier_project(srv: HackatimeStandin) -> None:
    post_bulk(srv, [hb(T0 + t, project=p, entity=f"/{p}{t}") for t, p in ((0, "A"), (30, "B"), (60, "A"), (90, "B"))])
    with client(srv) as c:
        body = c.get("/users/current/summaries", params={"start": "2025-08-21", "end": "2025-08-22"}).json()
        errors = [
            c.get("/users/current/summaries", params=params).json()
            for params in (
                {"start": "2025-8-21", "end": "2025-08-22"},
                {"start": "2025-08-22", "end": "2025-08-21"},
                {"start": "2024-08-21", "end": "2025-08-22"},
                {"start": "2025-08-21", "end": "2025-08-22", "timezone": "Mars/Base"},
            )
        ]
    yesterday, today = body["data"]
    assert yesterday["grand_total"]["total_seconds"] == 0 and yesterday["range"]["text"] == "Yesterday"
    assert today["grand_total"]["total_seconds"] == 90 and today["range"]["text"] == "Today"
    assert [(p["name"], p["total_seconds"]) for p in today["projects"]] == [("A", 60), ("B", 30)]
    assert today["languages"] == [] and body["cumulative_total"]["seconds"] == 90
    assert [e["error"] for e in errors] == [
        "start and end must be valid dates in YYYY-MM-DD format",
        "end must not be before start",
        "date range cannot exceed 366 days",
        "Invalid timezone",
    ]


def test_profile_and_my_heartbeats(srv: HackatimeStandin) -> None:
    post_bulk(srv, [hb(T0), hb(T0 + 60), hb(T0 - 86400)])
    srv.set_now(T0 + 120)
    with client(srv) as c:
        profile = c.get("/users/current").json()["data"]
        mine = c.get(srv.url + "/api/v1/my/heartbeats").json()
        bad = c.get(srv.url + "/api/v1/my/heartbeats", params={"start_time": "not a time"})
        recent = c.get(srv.url + "/api/v1/my/heartbeats/most_recent").json()
    assert (profile["id"], profile["username"], profile["timezone"]) == ("1", "orpheus", "UTC")
    assert (mine["start_time"], mine["end_time"]) == ("2025-08-22T00:00:00.000Z", "2025-08-22T23:59:59.999Z")
    assert [h["time"] for h in mine["heartbeats"]] == [T0, T0 + 60] and mine["total_seconds"] == 60
    assert bad.status_code == 500
    assert recent["has_heartbeat"] and recent["heartbeat"]["id"] == 2 and recent["time_ago"] == "1 minute ago"


# --- streak (§3) ---------------------------------------------------------------------------------


def day_of_work(day_start: float, seconds: int, **fields: Any) -> list[dict[str, Any]]:
    """Heartbeats a minute apart (the last gap shorter) adding up to ``seconds`` from 09:00."""
    times = [day_start + 9 * 3600 + t for t in range(0, seconds, 60)] + [day_start + 9 * 3600 + seconds]
    return [hb(t, entity=f"/w{t}", **fields) for t in times]


def test_streak(srv: HackatimeStandin) -> None:
    day = 86400.0
    today = T0 - 12 * 3600  # 2025-08-22T00:00Z
    items = (
        day_of_work(today - 5 * day, 1200)  # before the gap: not counted
        + day_of_work(today - 4 * day, 1200, category="browsing")  # browsing never counts
        + day_of_work(today - 3 * day, 900)
        + day_of_work(today - 2 * day, 900)
        + day_of_work(today - day, 1200)
        + day_of_work(today, 899)  # one second short: today is not eligible yet
    )
    for first in range(0, len(items), 100):
        post_bulk(srv, items[first : first + 100])
    with client(srv, base_url=srv.url) as c:
        stats = c.get("/api/v1/users/my/stats").json()
    assert stats["data"]["streak"] == 3  # from yesterday
    post_bulk(srv, [hb(today + 9 * 3600 + 900, entity="/last")])
    assert durations.streak_days(srv.heartbeats(), durations.zone("UTC"), T0) == 4
    srv.set_now(T0 + 2 * day)  # two days later: neither today nor yesterday qualifies
    assert durations.streak_days(srv.heartbeats(), durations.zone("UTC"), srv.now()) == 0


def test_user_stats_languages_and_projects(srv: HackatimeStandin) -> None:
    post_bulk(srv, [hb(T0 + i * 60.0, entity=f"/f{i}", language="python") for i in range(11)])
    with client(srv, key=None, base_url=srv.url) as c:  # public stats: no auth needed
        data = c.get("/api/v1/users/orpheus/stats", params={"features": "languages,projects"}).json()["data"]
        missing = c.get("/api/v1/users/nobody/stats")
        bad = c.get("/api/v1/users/1/stats", params={"start_date": "yesterday-ish"})
    assert data["total_seconds"] == 600 and data["human_readable_total"] == "10m"
    assert data["languages"][0]["name"] == "Python" and data["languages"][0]["percent"] == 100.0
    assert data["projects"][0]["name"] == "app"
    assert missing.status_code == 404
    assert (bad.status_code, bad.json()) == (422, {"error": "Invalid start_date"})


def test_duration_rules_directly() -> None:
    timeline = [(0.0, "A"), (30.0, "B"), (60.0, "A"), (90.0, "B")]
    rows = [{"id": i, "time": t, "p": p} for i, (t, p) in enumerate(timeline)]
    assert durations.duration_seconds(rows) == 90
    assert durations.grouped_duration_seconds(rows, "p") == {"A": 60, "B": 60}
    assert durations.lead_credits(rows, "p") == {"A": 60.0, "B": 30.0}


# --- faults -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "json_body"),
    [
        (Fault.SERVER_ERROR_500, 500, True),
        (Fault.BAD_GATEWAY_502, 502, False),
        (Fault.SERVICE_UNAVAILABLE_503, 503, False),
        (Fault.BAD_REQUEST_400, 400, True),
        (Fault.UNAUTHORIZED_401, 401, True),
    ],
)
def test_error_status_faults_store_nothing(srv: HackatimeStandin, fault: Fault, status: int, json_body: bool) -> None:
    srv.inject(fault)
    response = post_bulk(srv, [hb()])
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json" if json_body else "text/html")
    assert srv.count() == 0 and srv.requests()[-1].fault is fault
    assert post_bulk(srv, [hb()]).status_code == 201  # consumed


def test_rate_limited_fault(srv: HackatimeStandin) -> None:
    srv.inject(Fault.RATE_LIMITED_429, retry_after=17)
    response = post_bulk(srv, [hb()])
    assert response.status_code == 429
    assert response.json() == {
        "error": "Rate limit exceeded",
        "message": "Woah there, way too fast, take a chill pill speedy gonzales!",
        "retry_after": 17,
        "reset_at": "2025-08-22T12:00:17Z",
    }
    assert response.headers["Retry-After"] == "17" and response.headers["X-RateLimit-Remaining"] == "0"
    assert response.headers["X-RateLimit-Reset"] == str(int(T0) + 17)
    assert response.headers["X-RateLimit-Reset-At"] == "2025-08-22T12:00:17Z"


def test_faults_are_consumed_in_order_and_by_scope(srv: HackatimeStandin) -> None:
    srv.inject(Fault.SERVER_ERROR_500, times=2)
    srv.inject(Fault.SERVICE_UNAVAILABLE_503)
    srv.inject(Fault.BAD_GATEWAY_502, scope="reads")
    with client(srv) as c:
        assert c.get("/users/current/statusbar/today").status_code == 502  # reads skip heartbeat faults
        statuses = [c.post(BULK, json=[hb()]).status_code for _ in range(4)]
    assert statuses == [500, 500, 503, 201] and srv.pending_faults() == 0


def test_faults_are_taken_once_across_threads(srv: HackatimeStandin) -> None:
    srv.inject(Fault.SERVER_ERROR_500, times=10)
    statuses: list[int] = []

    def worker() -> None:
        with client(srv) as c:
            for _ in range(5):
                statuses.append(c.post(BULK, json=[hb()]).status_code)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] * 10 + [500] * 10


def test_connection_reset_before_any_response(srv: HackatimeStandin) -> None:
    srv.inject(Fault.CONNECTION_RESET)
    with pytest.raises(httpx.TransportError):
        post_bulk(srv, [hb()])
    assert srv.count() == 0
    assert (srv.requests()[-1].status, srv.requests()[-1].items) == (None, 1)


def test_lost_after_store(srv: HackatimeStandin) -> None:
    srv.inject(Fault.LOST_AFTER_STORE)
    with pytest.raises(httpx.TransportError):
        post_bulk(srv, [hb(), hb(T0 + 1)])
    assert srv.count() == 2  # stored, but the client never heard
    assert [r["id"] for r, _ in post_bulk(srv, [hb(), hb(T0 + 1)]).json()["responses"]] == [1, 2]


def test_malformed_and_truncated_201(srv: HackatimeStandin) -> None:
    srv.inject(Fault.MALFORMED_201)
    response = post_bulk(srv, [hb()])
    assert response.status_code == 201
    with pytest.raises(json.JSONDecodeError):
        response.json()
    srv.inject(Fault.TRUNCATED_201)
    with pytest.raises(httpx.RemoteProtocolError):
        post_bulk(srv, [hb(T0 + 1)])
    assert srv.count() == 2


def test_short_responses(srv: HackatimeStandin) -> None:
    srv.inject(Fault.SHORT_RESPONSES_201, drop=2)
    response = post_bulk(srv, [hb(T0 + i) for i in range(5)])
    assert response.status_code == 201 and len(response.json()["responses"]) == 3
    assert srv.count() == 5


def test_hang_holds_until_released_then_resets(srv: HackatimeStandin) -> None:
    srv.inject(Fault.HANG)
    outcome: list[BaseException] = []

    def send() -> None:
        try:
            post_bulk(srv, [hb()], timeout=30)
        except httpx.TransportError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=send)
    thread.start()
    assert srv.wait_for(lambda s: any(r.fault is Fault.HANG for r in s.requests()), timeout=5)
    assert outcome == []
    srv.release_hangs()
    thread.join()
    assert len(outcome) == 1 and srv.count() == 0


def test_stop_releases_hangs_and_joins_every_thread() -> None:
    before = {t for t in threading.enumerate() if t.name.startswith("standin")}
    standin = HackatimeStandin(keys={KEY: USER}, now=T0).start()
    standin.inject(Fault.HANG)
    idle = client(standin)
    idle.get("/users/current")  # leaves a keep-alive connection (and its thread) open
    failures: list[BaseException] = []

    def send() -> None:
        try:
            post_bulk(standin, [hb()], timeout=30)
        except httpx.TransportError as exc:
            failures.append(exc)

    thread = threading.Thread(target=send)
    thread.start()
    assert standin.wait_for(lambda s: len(s.requests()) == 2, timeout=5)
    standin.stop()
    thread.join()
    idle.close()
    assert len(failures) == 1
    assert {t for t in threading.enumerate() if t.name.startswith("standin")} == before


# --- throttle (§6) ------------------------------------------------------------------------------


def test_throttle_enforces_fixed_windows_on_the_injected_clock(srv: HackatimeStandin) -> None:
    srv.set_throttle(ThrottleLimits(general=(5, 60)))
    srv.set_now(T0 + 45)
    statuses = [post_bulk(srv, [hb(T0 + i)]).status_code for i in range(6)]
    assert statuses == [201] * 5 + [429]
    last = srv.requests()[-1]
    assert last.status == 429 and srv.count() == 5
    with client(srv) as c:
        response = c.get("/users/current")
    assert response.headers["Retry-After"] == "15" and response.headers["X-RateLimit-Limit"] == "5"
    srv.set_now(T0 + 60)  # the next window
    assert post_bulk(srv, [hb(T0 + 99)]).status_code == 201


def test_paced_client_sees_no_429(srv: HackatimeStandin) -> None:
    srv.set_throttle(ThrottleLimits(general=(10, 60), heartbeat_uploads=(12, 60)))
    for i in range(30):  # exactly 10 a minute
        srv.set_now(T0 + i * 6.0)
        post_bulk(srv, [hb(T0 + i)])
    assert [r.status for r in srv.requests()].count(429) == 0 and srv.count() == 30


# --- plumbing -----------------------------------------------------------------------------------


def test_keep_alive_and_request_log(srv: HackatimeStandin) -> None:
    with client(srv) as c:
        for i in range(3):
            c.post(BULK, json=[hb(T0 + i)])
        c.get("/nowhere")
    assert len(srv.app.store.copies()) == 3
    log = srv.requests()
    assert [(r.method, r.status, r.items) for r in log] == [("POST", 201, 1)] * 3 + [("GET", 404, 0)]
    assert all(r.at == T0 for r in log)


def test_seed_stores_without_http(srv: HackatimeStandin) -> None:
    srv.seed([hb(T0 + i, entity=f"/f{i}") for i in range(150)], KEY)
    assert srv.count() == 150 and srv.requests() == []
    with pytest.raises(ValueError, match="seeding failed"):
        srv.seed([hb(1)], KEY)


def test_direct_ingest_rate_is_measurable() -> None:
    rate = measure_ingest_rate(total=500, batch=100)
    assert rate.heartbeats == 500 and rate.per_second > 0 and rate.per_cpu_second > 0
