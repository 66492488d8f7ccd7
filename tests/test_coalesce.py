"""Coalescing rules on plain numbers: the state machine has no clock, files or threads of its own."""

from __future__ import annotations

from itertools import pairwise

from agent.capture.coalesce import (
    MASS_CHANGE_FILES,
    MASS_CHANGE_QUIET,
    Coalescer,
    Due,
    Taken,
)

T = 1_800_000_000.0


def paths(due: list[Due]) -> list[str]:
    return [d.choices[0][0] for d in due]


def test_leading_edge_after_the_delay_then_one_trailing_edge_per_window() -> None:
    c = Coalescer(window=30, delay=0.3)
    assert c.add("/p/a.py", T, "/p") is Taken.FILE
    assert c.due(T + 0.2) == []
    assert c.next_due_in(T + 0.2) is not None
    assert paths(c.due(T + 0.3)) == ["/p/a.py"]  # leading edge
    for s in range(1, 20):
        c.add("/p/a.py", T + s, "/p")  # saves inside the window merge
    assert c.due(T + 29.9) == []
    [due] = c.due(T + 30.3)  # trailing edge: the last save's time
    assert due == Due([("/p/a.py", T + 19)], False)
    assert c.next_due_in(T + 31) is None and c.pending == 0


def test_next_due_in_counts_down_to_zero_when_overdue() -> None:
    c = Coalescer(window=30, delay=0.3)
    assert c.next_due_in(T) is None
    c.add("/p/a.py", T, "/p")
    wait = c.next_due_in(T)
    assert wait is not None and 0.3 <= wait < 0.31
    assert c.next_due_in(T + 5) == 0.0


def test_force_takes_everything_now() -> None:
    c = Coalescer(window=30, delay=60)
    c.add("/p/a.py", T, "/p")
    c.add("/q/b.py", T, "/q")
    assert sorted(paths(c.due(T, force=True))) == ["/p/a.py", "/q/b.py"]


def test_forgotten_files_and_folders_are_not_due() -> None:
    c = Coalescer(window=30, delay=0.3)
    c.add("/p/a.py", T, "/p")
    c.add("/p/sub/b.py", T, "/p")
    c.add("/p/subway.py", T, "/p")
    c.forget("/p/a.py")
    c.forget_tree("/p/sub")
    assert paths(c.due(T + 1)) == ["/p/subway.py"]  # a sibling with the same prefix stays


def test_a_mass_change_is_one_heartbeat_per_window_for_its_project() -> None:
    c = Coalescer(window=30, delay=0.3)
    taken = [c.add(f"/p/f{i}.py", T + i * 0.01, "/p") for i in range(MASS_CHANGE_FILES + 500)]
    assert taken[: MASS_CHANGE_FILES - 1] == [Taken.FILE] * (MASS_CHANGE_FILES - 1)
    assert taken[MASS_CHANGE_FILES - 1] is Taken.MASS_CHANGE_STARTED
    assert set(taken[MASS_CHANGE_FILES:]) == {Taken.MASS_CHANGE}
    assert c.mass_changes == 1 and c.pending == 0  # the files pending so far joined it
    last = T + (MASS_CHANGE_FILES + 499) * 0.01
    [due] = c.due(last + MASS_CHANGE_QUIET)  # quiet: the tool is done
    assert due.mass_change and due.choices[0] == (f"/p/f{MASS_CHANGE_FILES + 499}.py", last)
    assert len(due.choices) > 1  # fallbacks, newest first, in case the newest cannot be built
    assert c.mass_changes == 0


def test_other_projects_are_not_swept_into_a_mass_change() -> None:
    c = Coalescer(window=30, delay=0.3)
    c.add("/q/mine.py", T, "/q")
    for i in range(MASS_CHANGE_FILES):
        c.add(f"/p/f{i}.py", T + i * 0.01, "/p")
    assert c.pending == 1
    assert "/q/mine.py" in paths(c.due(T + 5))


def test_slow_tools_are_not_a_mass_change() -> None:
    c = Coalescer(window=30, delay=0.3)
    for i in range(MASS_CHANGE_FILES * 3):
        assert c.add(f"/p/f{i}.py", T + i * 0.5, "/p") is Taken.FILE  # 2 files a second
    assert c.mass_changes == 0


def test_a_never_ending_mass_change_still_emits_once_a_window() -> None:
    c = Coalescer(window=30, delay=0.3)
    emitted: list[float] = []
    for step in range(9500):  # 95 s of a file every 10 ms
        now = T + step * 0.01
        c.add(f"/p/f{step % 50}.py", now, "/p")
        emitted += [now for _ in c.due(now)]
    assert len(emitted) == 3  # about 30, 60 and 90 s in
    assert all(b - a >= 30 for a, b in pairwise(emitted))
