"""The README says what the code does: every field a heartbeat carries to the server is in "What
leaves my machine" (and nothing else is), and the troubleshooting's commands are the agent's own."""

from __future__ import annotations

import re
from pathlib import Path

from agent import heartbeat
from agent.capture.inotify import SYSCTL_HINT

README = Path(__file__).resolve().parents[1] / "README.md"


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def documented_fields() -> set[str]:
    """The backquoted names in the first column of the section's field table."""
    rows = [line for line in section("What leaves my machine").splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([a-z_*]+)`", row.split("|")[1])}


def sent_fields() -> set[str]:
    """Every key a stored heartbeat's payload can hold: the fields Hackatime keeps, less ``plugin``,
    which normalize folds into ``user_agent``."""
    raw: dict[str, object] = {name: "x" for name in heartbeat.STRING_FIELDS}
    raw.update({name: 1 for name in heartbeat.INT_FIELDS})
    raw.update(time=1_700_000_000.0, is_write=True, dependencies=["numpy"])
    payload = heartbeat.normalize(raw, machine="box").payload
    assert "plugin" not in payload
    return set(payload)


def test_what_leaves_my_machine_lists_every_field_sent_and_no_other() -> None:
    documented = documented_fields()
    sent = sent_fields()
    wildcards = [name[:-1] for name in documented if name.endswith("*")]
    undocumented = {name for name in sent - documented if not name.startswith(tuple(wildcards))}
    assert undocumented == set()
    assert {name for name in documented if not name.endswith("*")} - sent == set()
    assert all(any(name.startswith(prefix) for name in sent) for prefix in wildcards)


def test_the_documented_user_agent_has_the_agents_shape() -> None:
    example = re.search(r"saves recorded by the agent say `([^`]+)`", section("What leaves my machine"))
    assert example is not None
    pattern = re.escape(example.group(1)).replace(re.escape("<version>"), r"[^ ]+")
    pattern = pattern.replace(re.escape("linux-6.1.0-amd64-x86_64"), r"[^)]+").replace(re.escape("3.11.2"), r"[\d.]+")
    assert re.fullmatch(pattern, heartbeat.user_agent())


def test_troubleshooting_gives_the_command_the_agent_prints_for_inotify() -> None:
    command = SYSCTL_HINT.split("raise it with: ", 1)[1]
    assert f"`{command}`" in section("Troubleshooting").replace("\n  ", " ")
