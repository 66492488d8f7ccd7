"""A faithful loopback stand-in of the Hackatime server (hackatime-api.md), for tests and benchmarks.

Start one with ``HackatimeStandin(keys={api_key: User(id=1, username="orpheus")}, now=epoch)`` as a
context manager and point the client at ``srv.api_url``. Then:

* ``srv.inject(Fault.X, times=n)`` queues failures (see ``Fault``); ``srv.set_throttle(ThrottleLimits())``
  enforces the real rate limits against the stand-in's clock (``srv.set_now``);
* ``srv.heartbeats()``, ``srv.count()`` and ``srv.requests()`` show what arrived;
  ``srv.wait_for(predicate, timeout)`` blocks until it holds, without polling;
* ``srv.seed(items, key)`` stores heartbeats without HTTP, for tests of the read endpoints;
* ``srv.hold(method, path, stage)`` holds the next matching request before or after the app answers it,
  so a test can order requests on purpose;
* ``measure_ingest_rate()`` is the stand-in's own ingest rate, the baseline for delivery benchmarks.

``durations`` holds §2/§3 (capped gaps, per-group totals, local days, streak) as plain functions.
"""

from .app import HackatimeApp, Request, Response
from .auth import basic_header
from .faults import Fault, FaultScope
from .ingest import fields_hash, hash_source
from .rate import IngestRate, make_bulk_bodies, measure_ingest_rate
from .server import Gate, HackatimeStandin, RequestRecord
from .throttle import ThrottleLimits
from .users import DEFAULT_API_KEY, DEFAULT_USER, TextMode, User

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_USER",
    "Fault",
    "FaultScope",
    "Gate",
    "HackatimeApp",
    "HackatimeStandin",
    "IngestRate",
    "Request",
    "RequestRecord",
    "Response",
    "TextMode",
    "ThrottleLimits",
    "User",
    "basic_header",
    "fields_hash",
    "hash_source",
    "make_bulk_bodies",
    "measure_ingest_rate",
]
