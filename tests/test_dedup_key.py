"""The local dedup key follows the server's fields_hash rule (hackatime-api.md §4.4): two
heartbeats share a key exactly when the stand-in (which implements §4.3–4.4) stores them as one."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.heartbeat import dedup_key_of, normalize
from tests.standin.ingest import PlaceholderState, RequestContext, fields_hash
from tests.standin.ingest import normalize as server_normalize

T = 1755864000.25
VSCODE = "wakatime/v1.90.0 (linux-6.5.0-x86_64) go1.21 vscode/1.85.0 vscode-wakatime/24.4.0"


class _NoRows:
    def latest_value(self, user_id: int, project: str, column: str, sentinel: str) -> str | None:
        return None


def server_hash(payload: dict[str, Any]) -> str:
    """What the server hashes for a payload we send it (no X-Machine-Name, no User-Agent header)."""
    model = server_normalize(payload, 1, RequestContext(), PlaceholderState(_NoRows(), 1))
    return fields_hash(model)


# A small domain, so that equal and unequal pairs both come up often. A language left out,
# blank or "unknown" is inferred from the file name by the server (file names both language
# tables know, and one neither knows).
heartbeats = st.fixed_dictionaries(
    {"time": st.sampled_from([T, T * 1000, T + 1])},
    optional={
        "language": st.sampled_from(["Python", "Go", "", " unknown", "Unknown"]),
        "entity": st.sampled_from(["/p/a.py", "/p/b.py", "/p/c.go", "/p/d.nosuchext", " "]),
        "editor": st.sampled_from(["vscode", "vim", "", "  "]),
        "operating_system": st.sampled_from(["linux", "Windows", ""]),
        "user_agent": st.sampled_from([VSCODE, "vim/9 vim-wakatime/1", "9c0b5a8e-1111-2222-3333-444455556666"]),
        "dependencies": st.sampled_from([[], ["os"]]),
        "lineno": st.sampled_from([1, 2]),
        "is_write": st.booleans(),
        "project": st.sampled_from(["p", " p ", "q"]),
        "id": st.sampled_from(["1", "2"]),  # export bookkeeping, not hashed
    },
)


@settings(max_examples=400, deadline=None)
@given(heartbeats, heartbeats)
def test_keys_match_exactly_when_the_server_hashes_match(a: dict[str, Any], b: dict[str, Any]) -> None:
    ha, hb = normalize(a, machine="box"), normalize(b, machine="box")
    assert (ha.dedup_key == hb.dedup_key) == (server_hash(ha.payload) == server_hash(hb.payload))


@settings(max_examples=200, deadline=None)
@given(heartbeats)
def test_the_payload_sent_is_stored_as_the_heartbeat_received(raw: dict[str, Any]) -> None:
    # Adding the derived editor/OS and dropping an empty dependency list changes nothing the
    # server stores: it hashes our payload exactly as it would the raw heartbeat.
    raw = {**raw, "machine": "box"}
    assert server_hash(normalize(raw, machine="box").payload) == server_hash(raw)


def test_an_exported_heartbeat_and_the_live_one_share_a_key() -> None:
    live = {"time": T, "entity": "/p/a.py", "language": "Python", "user_agent": VSCODE}
    # Hackatime's export carries the server's own editor/OS columns and an empty dependency list.
    exported = {**live, "editor": "vscode", "operating_system": "linux", "dependencies": [], "id": 7}
    assert normalize(live, machine="box").dedup_key == normalize(exported, machine="box").dedup_key


def test_a_stored_payload_is_rekeyed_to_the_key_normalize_gives() -> None:
    hb = normalize({"time": T, "entity": "/a", "user_agent": VSCODE, "editor": "x"}, machine="m")
    old_form = (
        f'{{"category":"coding","dependencies":[],"editor":"x","entity":"/a","machine":"m",'
        f'"time":{T!r},"user_agent":"{VSCODE}"}}'
    )
    assert dedup_key_of(old_form) == hb.dedup_key


def test_a_language_the_server_infers_is_in_the_key() -> None:
    sent = normalize({"time": T, "entity": "/p/a.py", "user_agent": VSCODE}, machine="box")
    # The export carries the language the server filled in; the payload sent stays as it was.
    exported = normalize({"time": T, "entity": "/p/a.py", "user_agent": VSCODE, "language": "Python"}, machine="box")
    assert sent.dedup_key == exported.dedup_key
    assert "language" not in sent.payload
    unnamed = normalize({"time": T, "entity": "/p/LICENSE.nosuchext", "user_agent": VSCODE}, machine="box")
    assert unnamed.dedup_key != normalize({**unnamed.payload, "language": "Text"}, machine="box").dedup_key
