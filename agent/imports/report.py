"""An import run in words, for the terminal: a progress line and the summary."""

from __future__ import annotations

from agent.contract import HeldUploadAnswer, ImportProgress


def duration(seconds: float) -> str:
    """About how long: "40 s", "12 min", "1 h 5 min", "3 days 4 h"."""
    seconds = max(0, round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} days {hours} h" if hours else f"{days} days"


def upload_time(seconds: float) -> str:
    """An upload estimate: "under a minute" when the rate limits allow it at once (the pacing
    figure is then 0 s, but the requests still take their time), else "about 1 h 5 min"."""
    return "under a minute" if seconds < 60 else f"about {duration(seconds)}"


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def progress_line(p: ImportProgress) -> str:
    """One line that is rewritten while the file is read."""
    total = max(1, p["bytes_total"])
    parts = [
        f"{100 * p['bytes_read'] / total:3.0f} %",
        f"{_mb(p['bytes_read'])} of {_mb(p['bytes_total'])}",
        f"{p['read']:,} heartbeats",
        f"{p['rate']:,.0f}/s",
    ]
    if p["eta_seconds"] is not None:
        parts.append(f"{duration(p['eta_seconds'])} left")
    return " · ".join(parts)


def summary(p: ImportProgress, *, agent_running: bool) -> list[str]:
    """What the run did, then how the upload goes."""
    source = p["format_name"] or "the file"
    lines = [
        f"{p['imported']:,} new heartbeats from {source} ({p['read']:,} read: {p['duplicates']:,} already stored, "
        f"{p['invalid']:,} invalid) in {duration(p['seconds'])}"
    ]
    for error in p["errors"]:
        lines.append(f"  heartbeat {error['heartbeat']:,} (near byte {error['near_byte']:,}): {error['error']}")
    if p["invalid"] > len(p["errors"]):
        lines.append(f"  … and {p['invalid'] - len(p['errors']):,} more invalid")
    if not p["upload"]:
        lines.append(
            "kept local: these heartbeats are in your local stats and are not uploaded; "
            "to upload them later, run: hackatime-agent import --upload-held"
        )
    elif p["upload_heartbeats"] and p["upload_seconds"] is not None:
        who = "the agent is uploading them" if agent_running else "the agent uploads them while it runs"
        lines.append(
            f"uploading {p['upload_heartbeats']:,} imported heartbeats takes {upload_time(p['upload_seconds'])} "
            f"at Hackatime's limits; {who}, live heartbeats first"
        )
    return lines


def held_summary(answer: HeldUploadAnswer, *, agent_running: bool) -> str:
    """What ``import --upload-held`` queued."""
    if not answer["queued"]:
        return "no imported history is kept local (or no server is set up yet): nothing to upload"
    who = "the agent is uploading them" if agent_running else "the agent uploads them while it runs"
    return (
        f"queued {answer['queued']:,} imported heartbeats kept local; uploading them takes "
        f"{upload_time(answer['upload_seconds'])} at Hackatime's limits; {who}, live heartbeats first"
    )
