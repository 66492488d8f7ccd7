"""Benchmark: what listening to the keyring's D-Bus signals costs the agent (agent/keyring_signals.py).

On a private session bus with the real GNOME Keyring on it (tests/secret_service.py), one child
process imports what the agent imports, then measures, in order and paired in one go:
RSS and idle CPU without the listener (the baseline), the same with it started, and the
listener's CPU per change of our key and per change of another program's secret, each made
by ``python -m keyring set`` in another process. The keyring read a change of our key then
starts (a child process, about 0.3 s of CPU) is not the listener's and is not counted.

Figures are printed, never asserted. Memory in MiB (2**20 bytes); RSS from /proc.

    python bench/bench_keyring_signals.py            # 20 s idle windows, 20 changes each
    python bench/bench_keyring_signals.py --quick    # 5 s, 5 changes
"""

from __future__ import annotations

import argparse
import compileall
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

KEYS = ("0b6a3e1e-6c1f-4d1e-9a5b-2f3c4d5e6f70", "11111111-2222-4333-8444-555555556f70")


def rss_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


def keyring_set(service: str, user: str, secret: str) -> None:
    subprocess.run([sys.executable, "-m", "keyring", "set", service, user], input=secret, text=True, check=True)


def thread_cpu_us(thread: threading.Thread) -> float:
    """A thread's CPU time so far, from the scheduler's own count (nanoseconds)."""
    return int(Path(f"/proc/self/task/{thread.native_id}/schedstat").read_text().split()[0]) / 1000


def idle_cpu_ms(seconds: float) -> float:
    """This process's CPU over ``seconds`` of waiting (its threads run as they like meanwhile)."""
    began = time.process_time()
    threading.Event().wait(seconds)  # the bench waits on purpose: an idle window
    return (time.process_time() - began) * 1000


def child(idle: float, changes: int) -> dict[str, float]:
    import agent.cli
    import agent.daemon
    import agent.key_watch  # noqa: F401
    from agent.key_watch import session_bus_address
    from agent.secrets import KEYRING_SERVICE, KEYRING_USER, SECRET_SERVICE_SIGNALS

    gc.collect()
    figures = {"rss_before": rss_mib(), "idle_before_ms": idle_cpu_ms(idle)}

    from agent.keyring_signals import KeyringSignals

    heard = threading.Semaphore(0)
    address = session_bus_address()
    assert address is not None
    listener = KeyringSignals([SECRET_SERVICE_SIGNALS], lambda _what: heard.release(), address=address).start()
    try:
        gc.collect()
        figures["rss_after"] = rss_mib()
        figures["idle_after_ms"] = idle_cpu_ms(idle)
        thread = listener._thread  # the listener's own CPU, not the keyring command's in this process
        assert thread is not None
        began = thread_cpu_us(thread)
        for i in range(changes):
            keyring_set(KEYRING_SERVICE, KEYRING_USER, KEYS[i % 2])
            assert heard.acquire(timeout=60), "the change of our key was not heard"
        ours = thread_cpu_us(thread) - began
        began = thread_cpu_us(thread)
        for i in range(changes):
            # Not heard, by design: each is followed by a change of ours, which is, so that
            # the other one is known to have been taken by the listener's thread too.
            keyring_set("another-app", KEYRING_USER, f"secret-{i}")
            keyring_set(KEYRING_SERVICE, KEYRING_USER, KEYS[i % 2])
            assert heard.acquire(timeout=60), "the change of our key was not heard"
        others = thread_cpu_us(thread) - began - ours
        figures["per_change_ours_us"] = ours / changes
        figures["per_change_other_us"] = others / changes
    finally:
        listener.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=2, type=float, metavar=("IDLE", "CHANGES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]))))
        return
    # The agent runs from bytecode; PYTHONDONTWRITEBYTECODE would leave the child compiling
    # (and holding) every module's source.
    import jeepney

    missing = [daemon for daemon in ("dbus-daemon", "gnome-keyring-daemon") if shutil.which(daemon) is None]
    if missing:
        print(f"bench_keyring_signals: skipped, {' and '.join(missing)} not installed (make system-deps installs them)")
        return
    from tests.secret_service import SecretServiceBus

    for folder in (ROOT / "agent", Path(jeepney.__file__).parent):
        compileall.compile_dir(str(folder), quiet=1)
    idle, changes = (5.0, 5) if args.quick else (20.0, 20)
    with tempfile.TemporaryDirectory() as tmp, SecretServiceBus(Path(tmp) / "bus", Path(tmp) / "home") as bus:
        (Path(tmp) / "home").mkdir(exist_ok=True)
        env = {**os.environ, **bus.env, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(idle), str(changes)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    f = json.loads(done.stdout.strip().splitlines()[-1])
    window = f"ms / {idle:.0f} s"
    print(f"agent's modules, no listener: RSS {f['rss_before']:.2f} MiB, idle CPU {f['idle_before_ms']:.1f} {window}")
    print(f"listener started: RSS {f['rss_after']:.2f} MiB, idle CPU {f['idle_after_ms']:.1f} {window}")
    ratio = f["idle_after_ms"] / max(f["idle_before_ms"], 0.001)
    print(f"  listener's RSS: +{f['rss_after'] - f['rss_before']:.2f} MiB; idle CPU ratio {ratio:.2f}")
    print(f"  listener's CPU per change of our key: {f['per_change_ours_us']:.0f} µs (then a keyring read: ~289 ms)")
    print(f"  listener's CPU per change of another program's secret: {f['per_change_other_us']:.0f} µs (no read)")


if __name__ == "__main__":
    main()
