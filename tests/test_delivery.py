"""Delivery against the loopback Hackatime stand-in: every outcome the server can produce."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.delivery.hackatime import HackatimeClient
from agent.delivery.outbox import Outbox, Outcome, Verdict, item_verdict
from agent.delivery.pacing import Backoff
from agent.heartbeat import normalize
from agent.store.store import Store
from tests.conftest import API_KEY
from tests.standin import Fault, HackatimeStandin

T0 = 1755864000.0


class Clock:
    """Delivery decisions read this clock, so backoff can be 'waited out' without sleeping."""

    def __init__(self) -> None:
        self.now = T0 + 86400

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "store.db") as s:
        s.set_destination("hackatime", "unused")
        yield s


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_outbox(store: Store, srv: HackatimeStandin, clock: Clock, key: str = API_KEY, timeout: float = 5) -> Outbox:
    client = HackatimeClient(srv.api_url, key, machine="test-box", timeout=timeout)
    return Outbox(store, client, batch_size=100, clock=clock, monotonic=clock, backoff=Backoff(base=1, cap=4))


def add(store: Store, n: int, start: float = T0, **extra: object) -> list[int]:
    hbs = [
        normalize({"time": start + i, "entity": f"/p/f{i}.py", "project": "p", **extra}, machine="m") for i in range(n)
    ]
    return [a.id for a in store.add(hbs, "editor")]


def server_payloads(srv: HackatimeStandin) -> list[float]:
    return sorted(row["time"] for row in srv.heartbeats())


def test_bulk_in_batches_of_100_oldest_first(store: Store, standin: HackatimeStandin, clock: Clock) -> None:
    add(store, 250, start=T0 + 1000)
    add(store, 1, start=T0)  # arrived last, but older: goes first
    outbox = make_outbox(store, standin, clock)
    try:
        result = outbox.drain()
    finally:
        outbox.client.close()
    assert (result.outcome, result.sent, result.pending) == (Outcome.IDLE, 251, 0)
    posts = [r for r in standin.requests() if r.method == "POST"]
    assert [r.items for r in posts] == [100, 100, 51]
    assert standin.heartbeats()[0]["time"] == T0
    assert standin.count() == 251
    dest = store.destination("hackatime")
    assert dest["auth_state"] == "ok" and dest["last_success"] == clock.now


def test_payload_is_sent_byte_for_byte_and_resends_are_free(
    store: Store, standin: HackatimeStandin, clock: Clock
) -> None:
    add(store, 3)
    outbox = make_outbox(store, standin, clock)
    try:
        standin.inject(Fault.LOST_AFTER_STORE)  # stored, but we never hear so
        first = outbox.deliver_once()
        assert first.outcome is Outcome.UNREACHABLE
        assert standin.count() == 3
        clock.now += 10
        assert outbox.drain().sent == 3
    finally:
        outbox.client.close()
    assert standin.count() == 3  # the resend matched the stored rows (fields_hash)
    stored = {row["time"]: row for row in standin.heartbeats()}
    frozen = [json.loads(p) for (p,) in store.reader().execute("SELECT payload FROM heartbeats WHERE id <= 3")]
    for payload in frozen:
        assert stored[payload["time"]]["entity"] == payload["entity"]
        assert stored[payload["time"]]["machine"] == "m"


def test_per_item_422_is_dead_lettered_without_blocking(store: Store, standin: HackatimeStandin, clock: Clock) -> None:
    ids = add(store, 5)
    # A heartbeat the server refuses: an integer column out of its range fails only that item.
    with store.transaction() as conn:
        conn.execute("UPDATE heartbeats SET payload = json_set(payload, '$.time', 5.0) WHERE id = ?", (ids[2],))
    outbox = make_outbox(store, standin, clock)
    try:
        result = outbox.drain()
    finally:
        outbox.client.close()
    assert (result.sent, result.dead, result.pending) == (4, 1, 0)
    dead = store.dead_letters("hackatime")
    assert [d["id"] for d in dead] == [ids[2]]
    assert "422" in dead[0]["reason"] and "InvalidHeartbeatTime" in dead[0]["reason"]


def test_401_stops_delivery_and_keeps_everything(store: Store, standin: HackatimeStandin, clock: Clock) -> None:
    add(store, 7)
    outbox = make_outbox(store, standin, clock, key="99999999-9999-4999-8999-999999999999")
    try:
        result = outbox.drain()
        assert result.outcome is Outcome.AUTH_REJECTED
        assert "rejected the API key" in (result.error or "")
        again = outbox.deliver_once(ignore_backoff=True)
        assert again.outcome is Outcome.AUTH_REJECTED
    finally:
        outbox.client.close()
    assert len([r for r in standin.requests() if r.method == "POST"]) == 1  # stopped, no hammering
    assert store.counts("hackatime").pending == 7
    assert store.destination("hackatime")["auth_state"] == "rejected"
    assert "9999" not in (result.error or "")


def test_429_waits_for_retry_after(store: Store, standin: HackatimeStandin, clock: Clock) -> None:
    add(store, 3)
    standin.inject(Fault.RATE_LIMITED_429, retry_after=42)
    outbox = make_outbox(store, standin, clock)
    try:
        result = outbox.deliver_once()
        assert (result.outcome, result.wait) == (Outcome.RATE_LIMITED, 42)
        assert outbox.deliver_once().outcome is Outcome.BACKING_OFF
        clock.now += 42
        assert outbox.deliver_once().outcome is Outcome.DELIVERED
    finally:
        outbox.client.close()
    assert standin.count() == 3


@pytest.mark.parametrize(
    "fault",
    [
        Fault.SERVER_ERROR_500,
        Fault.BAD_GATEWAY_502,
        Fault.SERVICE_UNAVAILABLE_503,
        Fault.CONNECTION_RESET,
        Fault.MALFORMED_201,
        Fault.TRUNCATED_201,
    ],
)
def test_transient_faults_back_off_then_deliver_exactly_once(
    store: Store, standin: HackatimeStandin, clock: Clock, fault: Fault
) -> None:
    add(store, 10)
    standin.inject(fault, times=2)
    outbox = make_outbox(store, standin, clock)
    try:
        first = outbox.deliver_once()
        assert first.outcome is Outcome.UNREACHABLE and 0.5 <= first.wait <= 1
        assert outbox.deliver_once().outcome is Outcome.BACKING_OFF
        clock.now += first.wait
        second = outbox.deliver_once()
        assert second.outcome is Outcome.UNREACHABLE and 1 <= second.wait <= 2  # exponential
        clock.now += second.wait
        assert outbox.drain().sent == 10
    finally:
        outbox.client.close()
    assert standin.count() == 10
    assert store.destination("hackatime")["backoff_until"] is None  # reset on success


def test_a_hang_past_the_timeout_is_a_retry(store: Store, standin: HackatimeStandin, clock: Clock) -> None:
    add(store, 2)
    standin.inject(Fault.HANG)
    outbox = make_outbox(store, standin, clock, timeout=0.3)
    try:
        result = outbox.deliver_once()
        assert result.outcome is Outcome.UNREACHABLE and "Timeout" in (result.error or "")
        standin.release_hangs()
        clock.now += result.wait
        assert outbox.drain().sent == 2
    finally:
        outbox.client.close()
    assert standin.count() == 2


def test_missing_results_are_retried(store: Store, standin: HackatimeStandin, clock: Clock) -> None:
    add(store, 5)
    standin.inject(Fault.SHORT_RESPONSES_201, drop=2)
    outbox = make_outbox(store, standin, clock)
    try:
        first = outbox.deliver_once()
        assert (first.sent, first.retried) == (3, 2)
        assert outbox.drain().sent == 2
    finally:
        outbox.client.close()
    assert standin.count() == 5


def test_whole_batch_400_is_split_to_isolate_the_bad_item(
    store: Store, standin: HackatimeStandin, clock: Clock
) -> None:
    add(store, 8)
    # The first request and the halves that still hold the poison get 400: 8 → 4 → 2 → 1.
    standin.inject(Fault.BAD_REQUEST_400, times=4)
    outbox = make_outbox(store, standin, clock)
    try:
        result = outbox.drain()
    finally:
        outbox.client.close()
    assert (result.sent, result.dead, result.pending) == (7, 1, 0)
    assert [r.items for r in standin.requests() if r.method == "POST"] == [8, 4, 2, 1, 1, 2, 4]
    assert "400" in store.dead_letters("hackatime")[0]["reason"]


@pytest.mark.parametrize(
    ("result", "verdict"),
    [
        ([{"id": 1}, 201], Verdict.SENT),
        ([{"id": 1}, 202], Verdict.SENT),
        ([{"error": "bad", "type": "X"}, 422], Verdict.DEAD),
        ([{"error": "bad"}, 400], Verdict.DEAD),
        ([{}, 429], Verdict.RETRY),
        ([{}, 500], Verdict.RETRY),
        (None, Verdict.RETRY),
        ("garbage", Verdict.RETRY),
        ([{}], Verdict.RETRY),
    ],
)
def test_item_verdicts(result: object, verdict: Verdict) -> None:
    assert item_verdict(result)[0] is verdict


def test_a_wall_clock_stepped_back_during_backoff_does_not_stall_delivery(
    store: Store, standin: HackatimeStandin, make_config: Any
) -> None:
    from agent.daemon import build_status

    wall, steady = Clock(), Clock()
    add(store, 5)
    standin.inject(Fault.SERVER_ERROR_500)
    client = HackatimeClient(standin.api_url, API_KEY, machine="test-box", timeout=5)
    outbox = Outbox(store, client, clock=wall, monotonic=steady, backoff=Backoff(base=4, cap=8))
    try:
        failed = outbox.deliver_once()
        assert failed.outcome is Outcome.UNREACHABLE and 2 <= failed.wait <= 4
        assert outbox.backoff_remaining() == pytest.approx(failed.wait)
        wall.now -= 3600  # NTP corrects the clock an hour back while delivery waits
        assert outbox.backoff_remaining() == pytest.approx(failed.wait)  # the wait is unchanged
        add(store, 2, start=T0 + 100)  # new heartbeats wait for the same backoff, no longer
        status = build_status(store, make_config(), clock=wall, backoff=lambda _name: outbox.backoff_remaining())
        shown = status["destinations"][0]
        assert shown["backoff_seconds"] == round(failed.wait, 1)  # status shows the wait, in wall time
        assert shown["backoff_until"] == pytest.approx(wall.now + failed.wait, abs=0.1)
        assert "500" in shown["last_error"] and shown["pending"] == 7
        steady.now += failed.wait / 2
        assert outbox.deliver_once().outcome is Outcome.BACKING_OFF
        steady.now += failed.wait / 2
        assert outbox.drain().sent == 7
        assert outbox.backoff_remaining() == 0
    finally:
        client.close()
    dest = store.destination("hackatime")
    assert dest["last_error"] is None and dest["last_error_at"] is None  # recovered: no stale error
    assert dest["last_success"] == wall.now  # stored facts keep the wall clock


def test_status_never_shows_a_backoff_without_its_reason(store: Store, make_config: Any) -> None:
    """A delivery that fails while status is being read: the outbox stores the reason, then
    publishes the backoff. Status reads them in the opposite order, so whichever moment the
    failure lands in, a wait it shows has its reason beside it."""
    from agent.daemon import build_status

    def failing_now(name: str) -> float:
        # what the delivery thread does between status's reads: store the reason, then back off
        store.update_destination(name, last_error="network error: connection reset", last_error_at=T0)
        return 30.0

    status = build_status(store, make_config(), clock=lambda: T0, backoff=failing_now)
    dest = status["destinations"][0]
    assert dest["backoff_until"] == T0 + 30.0
    assert dest["last_error"] == "network error: connection reset"
