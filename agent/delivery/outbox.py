"""Delivery: claim the oldest ready heartbeats, POST them in bulk, settle each one.

Per item: 2xx → sent; 4xx → dead with the server's reason (never blocking later
items); anything else or missing → ready again. Per request: 401/403 → stop and
keep everything; 429 → wait Retry-After; 5xx, timeouts, resets, malformed
bodies → capped exponential backoff; a whole-batch 400 → split the batch until
the bad item is alone, then dead-letter it.

Waiting uses the monotonic clock: a wall clock stepped back (a laptop waking with a
corrected clock) neither stretches a backoff nor stalls delivery; only stored facts
(last success, last error) carry wall times. When the disk is full, outcomes the
server has already given are kept in memory and recorded once a write succeeds again,
so acknowledged heartbeats do not stay "in flight" until a restart.
"""

from __future__ import annotations

import enum
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from agent.contract import DESTINATION
from agent.store import Store, StoreFull

from .hackatime import HackatimeClient
from .pacing import Backoff, retry_after_seconds

log = logging.getLogger(__name__)


class Verdict(enum.Enum):
    SENT = "sent"
    DEAD = "dead"
    RETRY = "retry"


def item_verdict(result: Any) -> tuple[Verdict, str | None]:
    """Classify one ``[body, status]`` entry of a bulk response (None: missing)."""
    if not (isinstance(result, list) and len(result) == 2 and isinstance(result[1], int)):
        return Verdict.RETRY, None
    body, status = result
    if 200 <= status < 300:
        return Verdict.SENT, None
    if 400 <= status < 500 and status not in (408, 429):
        reason = f"HTTP {status}"
        if isinstance(body, dict):
            message = body.get("error") or body.get("message")
            if message:
                reason += f": {message}"
            if body.get("type"):
                reason += f" ({body['type']})"
        return Verdict.DEAD, reason[:500]
    return Verdict.RETRY, None


class Outcome(enum.Enum):
    IDLE = "idle"  # nothing to send
    DELIVERED = "delivered"  # a batch was settled (some may be dead or retried)
    AUTH_REJECTED = "auth_rejected"
    NO_KEY = "no_key"
    RATE_LIMITED = "rate_limited"
    UNREACHABLE = "unreachable"  # network error, timeout, 5xx, garbage
    BACKING_OFF = "backing_off"  # an earlier failure's wait has not ended
    DISK_FULL = "disk_full"  # the store cannot record outcomes; retried when a write succeeds
    STOPPED = "stopped"


@dataclass
class PassResult:
    outcome: Outcome
    sent: int = 0
    dead: int = 0
    retried: int = 0
    wait: float = 0.0  # seconds until trying again makes sense
    error: str | None = None


@dataclass
class _Settlement:
    sent: list[int] = field(default_factory=list)
    dead: list[tuple[int, str]] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    unreached: list[int] = field(default_factory=list)


DISK_FULL_RETRY = 10.0  # seconds between attempts to record outcomes while the disk is full


@dataclass
class DrainResult:
    outcome: Outcome
    sent: int = 0
    dead: int = 0
    pending: int = 0
    error: str | None = None


class Outbox:
    """Deliveries to one destination. Thread-safe: one pass runs at a time."""

    def __init__(
        self,
        store: Store,
        client: HackatimeClient,
        destination: str = DESTINATION,
        *,
        batch_size: int = 100,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        backoff: Backoff | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.destination = destination
        self.batch_size = max(1, min(100, batch_size))
        self.clock = clock  # wall time, for the facts stored (last success, last error)
        self.monotonic = monotonic  # for waiting
        self.backoff = backoff or Backoff()
        self.on_change = on_change or (lambda: None)
        self._pass_lock = threading.Lock()
        self._retry_at: float | None = None  # on ``monotonic``: no request before this
        self._unsettled: list[_Settlement] = []  # outcomes a full disk kept from being recorded

    def backoff_remaining(self) -> float:
        """Seconds until delivery tries again after a failure (0: not backing off)."""
        retry_at = self._retry_at
        return 0.0 if retry_at is None else max(0.0, retry_at - self.monotonic())

    # ---- one pass ---------------------------------------------------------------------

    def deliver_once(self, stop: threading.Event | None = None, *, ignore_backoff: bool = False) -> PassResult:
        with self._pass_lock:
            return self._deliver_once(stop, ignore_backoff)

    def _deliver_once(self, stop: threading.Event | None, ignore_backoff: bool) -> PassResult:
        try:
            self._record_unsettled()
        except StoreFull as exc:
            return PassResult(Outcome.DISK_FULL, wait=DISK_FULL_RETRY, error=str(exc))
        dest = self.store.destination(self.destination)
        if not self.client.api_key:
            self.store.update_destination(self.destination, auth_state="missing")
            return PassResult(Outcome.NO_KEY, error="no API key is configured")
        if dest["auth_state"] == "rejected":
            return PassResult(Outcome.AUTH_REJECTED, error=dest["last_error"])
        wait = self.backoff_remaining()
        if not ignore_backoff and wait > 0:
            return PassResult(Outcome.BACKING_OFF, wait=wait, error=dest["last_error"])
        try:
            batch = self.store.claim(self.destination, self.batch_size)
        except StoreFull as exc:
            return PassResult(Outcome.DISK_FULL, wait=DISK_FULL_RETRY, error=str(exc))
        if not batch:
            return PassResult(Outcome.IDLE)
        self.on_change()  # the in-flight count changed
        try:
            result = self._post(batch, stop)
        except StoreFull as exc:
            # Whatever the pass could not record goes back to ready first, then the outcomes the
            # server gave are applied over it (sent stays sent), as soon as a write succeeds.
            self._unsettled.insert(0, _Settlement(retry=[hb_id for hb_id, _ in batch]))
            log.warning("delivery outcomes are kept in memory until the disk has room: %s", exc)
            result = PassResult(Outcome.DISK_FULL, wait=DISK_FULL_RETRY, error=str(exc))
        self.on_change()
        return result

    def _post(self, batch: Sequence[tuple[int, str]], stop: threading.Event | None) -> PassResult:
        ids = [hb_id for hb_id, _ in batch]
        body = ("[" + ",".join(payload for _, payload in batch) + "]").encode("utf-8")
        try:
            response = self.client.post_bulk(body, stop)
        except httpx.HTTPError as exc:
            # Timeouts, resets, refused connections: nothing was acknowledged, so all go back.
            # Only a connection never made surely kept the request from the server.
            reached = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
            message = f"network error: {type(exc).__name__}: {exc}"
            return self._fail(ids, Outcome.UNREACHABLE, message, network=True, reached=reached)
        if response is None:
            self._settle(unreached=ids)
            return PassResult(Outcome.STOPPED)
        status = response.status_code
        if status in (401, 403):
            self._settle(unreached=ids)  # refused before anything was stored
            message = f"the server rejected the API key (HTTP {status}{_error_suffix(response)})"
            self.store.update_destination(
                self.destination,
                auth_state="rejected",
                last_error=message,
                last_error_at=self.clock(),
                reachable_at=self.clock(),
            )
            log.warning("%s; delivery stopped until the key is changed", message)
            return PassResult(Outcome.AUTH_REJECTED, error=message)
        if status == 429:
            body_json = _json_or_none(response)
            wait = retry_after_seconds(response.headers, body_json, self.clock())
            self._settle(unreached=ids)  # throttled before the app saw it
            self._retry_at = self.monotonic() + wait
            message = f"rate limited by the server (HTTP 429); retrying in {wait:.0f} s"
            self.store.update_destination(
                self.destination,
                last_error=message,
                last_error_at=self.clock(),
                reachable_at=self.clock(),
            )
            return PassResult(Outcome.RATE_LIMITED, wait=wait, error=message)
        if status in (400, 413) and len(batch) > 1:
            # Something in the batch poisons the whole request: split to find it.
            half = len(batch) // 2
            first = self._post(batch[:half], stop)
            second = self._post(batch[half:], stop)
            return _combine(first, second)
        if status in (400, 413):
            reason = f"HTTP {status}{_error_suffix(response)}"
            self._settle(dead=[(ids[0], reason[:500])])
            log.warning("heartbeat %d dead-lettered: %s", ids[0], reason)
            self._succeeded()
            return PassResult(Outcome.DELIVERED, dead=1)
        if not 200 <= status < 300:
            return self._fail(ids, Outcome.UNREACHABLE, f"the server answered HTTP {status}{_error_suffix(response)}")
        parsed = _json_or_none(response)
        results = parsed.get("responses") if isinstance(parsed, dict) else None
        if not isinstance(results, list):
            return self._fail(ids, Outcome.UNREACHABLE, f"the server's answer was not understood (HTTP {status})")
        sent: list[int] = []
        dead: list[tuple[int, str]] = []
        retry: list[int] = []
        for i, hb_id in enumerate(ids):
            verdict, why = item_verdict(results[i] if i < len(results) else None)
            if verdict is Verdict.SENT:
                sent.append(hb_id)
            elif verdict is Verdict.DEAD:
                dead.append((hb_id, why or "rejected"))
            else:
                retry.append(hb_id)
        self._settle(sent=sent, dead=dead, retry=retry)
        for hb_id, reason in dead:
            log.warning("heartbeat %d dead-lettered: %s", hb_id, reason)
        if retry and not sent and not dead:
            return self._fail([], Outcome.UNREACHABLE, "the server acknowledged none of the batch")
        self._succeeded()
        return PassResult(Outcome.DELIVERED, sent=len(sent), dead=len(dead), retried=len(retry))

    def _settle(
        self,
        *,
        sent: Sequence[int] = (),
        dead: Sequence[tuple[int, str]] = (),
        retry: Sequence[int] = (),
        unreached: Sequence[int] = (),
    ) -> None:
        settlement = _Settlement(list(sent), list(dead), list(retry), list(unreached))
        try:
            self._record(settlement)
        except StoreFull:
            self._unsettled.append(settlement)
            raise

    def _record(self, s: _Settlement) -> None:
        self.store.settle(self.destination, sent=s.sent, dead=s.dead, retry=s.retry, unreached=s.unreached)

    def _record_unsettled(self) -> None:
        """Record the outcomes a full disk held back, in the order they happened."""
        while self._unsettled:
            s = self._unsettled[0]
            self._record(s)
            self._unsettled.pop(0)
            log.info("recorded %d delivery outcomes held back while the disk was full", len(s.sent) + len(s.dead))

    def _fail(
        self, ids: list[int], outcome: Outcome, message: str, *, network: bool = False, reached: bool = True
    ) -> PassResult:
        """Back off after a failed request; ``network``: no HTTP answer at all (offline);
        ``reached``: the request may have got to the server (and been stored) all the same."""
        if ids and reached:
            self._settle(retry=ids)
        elif ids:
            self._settle(unreached=ids)
        wait = self.backoff.next_delay()
        now = self.clock()
        self.store.update_destination(
            self.destination,
            last_error=message,
            last_error_at=now,
            **({"unreachable_at": now} if network else {"reachable_at": now}),
        )
        # The backoff is published only once its reason is stored: a status read in between
        # would show a wait with nothing to say why.
        self._retry_at = self.monotonic() + wait
        log.info("delivery to %s failed: %s; next try in %.1f s", self.destination, message, wait)
        return PassResult(outcome, retried=len(ids), wait=wait, error=message)

    def _succeeded(self) -> None:
        self.backoff.reset()
        self._retry_at = None
        now = self.clock()
        self.store.update_destination(
            self.destination,
            last_success=now,
            reachable_at=now,
            backoff_until=None,
            auth_state="ok",
            last_error=None,  # delivery works again: an old error would only mislead
            last_error_at=None,
        )

    # ---- many passes ----------------------------------------------------------------------

    def drain(self, stop: threading.Event | None = None, *, max_wait: float = 0.0) -> DrainResult:
        """Deliver until nothing deliverable is left or delivery is blocked.

        Waits of up to ``max_wait`` seconds (a short Retry-After, a backoff step)
        are sat out; a longer one ends the drain with that outcome.
        """
        total = DrainResult(Outcome.IDLE)
        first = True
        while stop is None or not stop.is_set():
            result = self.deliver_once(stop, ignore_backoff=first)
            first = False
            total.sent += result.sent
            total.dead += result.dead
            if result.outcome is Outcome.DELIVERED:
                continue
            if result.outcome in (Outcome.RATE_LIMITED, Outcome.UNREACHABLE, Outcome.BACKING_OFF) and (
                result.wait <= max_wait
            ):
                waiter = stop or threading.Event()
                if waiter.wait(result.wait):
                    break
                continue
            total.outcome = result.outcome
            total.error = result.error
            break
        else:
            total.outcome = Outcome.STOPPED
        counts = self.store.counts(self.destination)
        total.pending = counts.pending + counts.in_flight
        return total


def _combine(a: PassResult, b: PassResult) -> PassResult:
    worst = a if a.outcome is not Outcome.DELIVERED else b
    return PassResult(
        worst.outcome,
        sent=a.sent + b.sent,
        dead=a.dead + b.dead,
        retried=a.retried + b.retried,
        wait=max(a.wait, b.wait),
        error=worst.error,
    )


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def _error_suffix(response: httpx.Response) -> str:
    body = _json_or_none(response)
    if isinstance(body, dict):
        error = body.get("error") or body.get("message")
        if isinstance(error, str) and error:
            return f": {error[:200]}"
    return ""
