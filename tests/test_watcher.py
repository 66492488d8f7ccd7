"""The file watcher with real observers on real temp trees.

No sleeps: a test waits for the watcher to have taken in an event (``expect_event``
on a sentinel written after the operation — one inotify queue keeps events in
order), then calls ``flush()`` or ``tick()`` to emit. Timing rules run on a fake
clock.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from agent.capture.coalesce import MASS_CHANGE_FILES
from agent.capture.content import line_changes
from agent.capture.inotify import inotify_status
from agent.capture.prune import is_editor_temp
from agent.capture.watcher import Watcher
from agent.config import CaptureSettings
from agent.heartbeat import HeartbeatError, normalize

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify tests")

WAIT = 10.0  # seconds; only ever reached when something is broken
_sentinels = count()


class RecordingSink:
    """Stores what the watcher submits, after the real normaliser has accepted it."""

    def __init__(self) -> None:
        self.heartbeats: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        self.editor_entities: set[str] = set()

    def submit(self, heartbeats: list[dict[str, Any]], source: str) -> None:
        assert source == "watcher"
        for hb in heartbeats:
            normalize(hb, machine="test")  # raises HeartbeatError, as the real sink does
        with self.cond:
            self.heartbeats.extend(heartbeats)
            self.cond.notify_all()

    def editor_heartbeat_since(self, entity: str, since: float) -> bool:
        return entity in self.editor_entities

    def wait_for(self, n: int) -> list[dict[str, Any]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.heartbeats) >= n, WAIT), self.heartbeats
            return list(self.heartbeats)

    def entities(self) -> list[str]:
        return [hb["entity"] for hb in self.heartbeats]


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def make_watcher(sink: RecordingSink) -> Iterator[Callable[..., Watcher]]:
    made: list[Watcher] = []

    def make(*folders: Path, settings: CaptureSettings | None = None, **kw: Any) -> Watcher:
        kw.setdefault("delay", 0.05)
        s = settings or CaptureSettings(watch_dirs=tuple(folders))
        w = Watcher(kw.pop("sink", sink), s, secret=b"s" * 32, **kw)
        made.append(w)
        w.start()
        return w

    yield make
    for w in made:
        w.stop()


def caught_up(w: Watcher, folder: Path) -> None:
    """Wait until the watcher has taken in every event caused before this call."""
    sentinel = folder / f".sentinel-{next(_sentinels)}.swp"  # a swap-file name: never a heartbeat
    flag = w.expect_event(sentinel)
    sentinel.write_text("x")
    assert flag.wait(WAIT), "the watcher never saw the sentinel"
    sentinel.unlink()


def git(cwd: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
    }  # fmt: skip
    subprocess.run(["git", "-c", "init.defaultBranch=main", *args], cwd=cwd, env=env, check=True, capture_output=True)


def make_project(root: Path, name: str = "proj", branch: str = "main") -> Path:
    """A folder that looks like a Git checkout to the detector (what git writes, minus objects)."""
    proj = root / name
    (proj / ".git").mkdir(parents=True)
    (proj / ".git" / "HEAD").write_text(f"ref: refs/heads/{branch}\n")
    (proj / "src").mkdir()
    return proj


# ---- saves -----------------------------------------------------------------------------------------


def test_nothing_is_watched_by_default(make_watcher: Callable[..., Watcher]) -> None:
    w = make_watcher()
    assert w.folders() == [] and w.stats()["watches"] == 0 and w.uncovered() == []


def test_save_in_place_becomes_a_heartbeat_with_wakatime_fields(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink
) -> None:
    proj = make_project(tmp_path)
    w = make_watcher(tmp_path)
    target = proj / "src" / "app.py"
    target.write_text("import os\nprint(os.getcwd())\n")
    [hb] = sink.wait_for(1)  # the real clock and a 50 ms delay: no flush needed
    assert hb["entity"] == str(target)
    assert (hb["type"], hb["category"], hb["is_write"]) == ("file", "coding", True)
    assert (hb["project"], hb["branch"], hb["language"], hb["lines"]) == ("proj", "main", "Python", 2)
    assert hb["project_root_count"] == str(proj).count("/") + 1
    assert isinstance(hb["time"], float)
    assert "hackatime-desktop-watcher" in hb["user_agent"]
    assert "line_additions" not in hb  # nothing seen before to diff against

    target.write_text("import os\nimport sys\nprint(os.getcwd())\n")
    caught_up(w, proj)
    w.flush()  # the window has not closed: flush emits the trailing edge now
    hb2 = sink.heartbeats[-1]
    assert (hb2["line_additions"], hb2["line_deletions"], hb2["lines"]) == (1, 0, 3)


def test_new_file_then_delete_before_emit_records_nothing(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink
) -> None:
    w = make_watcher(tmp_path, delay=60)
    f = tmp_path / "scratch.py"
    f.write_text("x = 1\n")
    f.unlink()
    caught_up(w, tmp_path)
    w.flush()
    assert sink.heartbeats == []


def test_new_file_is_recorded(tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink) -> None:
    w = make_watcher(tmp_path, delay=60)
    (tmp_path / "new.rs").write_text("fn main() {}\n")
    caught_up(w, tmp_path)
    w.flush()
    assert [(Path(hb["entity"]).name, hb["language"]) for hb in sink.heartbeats] == [("new.rs", "Rust")]


def test_atomic_save_by_rename_counts_as_a_save_of_the_target(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink
) -> None:
    target = tmp_path / "main.go"
    target.write_text("package main\n")
    w = make_watcher(tmp_path, delay=60)
    w.flush()  # nothing yet: the file existed before watching
    # First save gives the diff baseline, as an editor's in-place write would.
    target.write_text("package main\n\nfunc main() {}\n")
    caught_up(w, tmp_path)
    w.flush()
    # Then two atomic saves: one with a recognised temp name, one with an opaque name.
    for temp_name in ("main.go.tmp.8123", ".main.go.Xa9Qz"):
        temp = tmp_path / temp_name
        temp.write_text('package main\n\nimport "fmt"\n\nfunc main() { fmt.Println() }\n')
        os.replace(temp, target)
        caught_up(w, tmp_path)
        w.flush()
    assert sink.entities() == [str(target)] * 3
    last = sink.heartbeats[-1]
    assert last["lines"] == 5 and last["language"] == "Go"
    # "func main() {}" became three lines: three added, one deleted.
    assert (sink.heartbeats[1]["line_additions"], sink.heartbeats[1]["line_deletions"]) == (3, 1)


def test_vim_style_save_with_swap_backup_and_probe_files(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink
) -> None:
    target = tmp_path / "notes.py"
    target.write_text("a = 1\n")
    w = make_watcher(tmp_path, delay=60)
    target.write_text("a = 1\nb = 2\n")  # a first save, so a diff baseline exists
    caught_up(w, tmp_path)
    w.flush()
    swap = tmp_path / ".notes.py.swp"
    swap.write_bytes(b"b0VIM 9.0\x00" + b"\x00" * 100)
    # vim's write sequence with backupcopy=no: probe file, backup rename, new file, drop backup.
    probe = tmp_path / "4913"
    probe.write_text("")
    probe.unlink()
    os.rename(target, tmp_path / "notes.py~")
    target.write_text("a = 1\nb = 2\nc = 3\n")
    (tmp_path / "notes.py~").unlink()
    swap.write_bytes(b"b0VIM 9.0\x00" + b"\x01" * 100)
    swap.unlink()
    caught_up(w, tmp_path)
    w.flush()
    assert sink.entities() == [str(target), str(target)]
    assert (sink.heartbeats[-1]["line_additions"], sink.heartbeats[-1]["line_deletions"]) == (1, 0)


def test_move_between_projects_is_recorded_for_the_destination(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink
) -> None:
    alpha = make_project(tmp_path, "alpha")
    beta = make_project(tmp_path, "beta", branch="dev")
    src = alpha / "src" / "util.py"
    src.write_text("def f():\n    return 1\n")
    w = make_watcher(tmp_path, delay=60)
    dest = beta / "src" / "util.py"
    os.rename(src, dest)
    caught_up(w, tmp_path)
    w.flush()
    [hb] = sink.heartbeats
    assert (hb["entity"], hb["project"], hb["branch"]) == (str(dest), "beta", "dev")


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_branch_switch_changes_the_branch_of_later_saves(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "app.py").write_text("x = 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "init")
    w = make_watcher(tmp_path, delay=60)
    (repo / "app.py").write_text("x = 2\n")
    caught_up(w, tmp_path)
    w.flush()
    git(repo, "checkout", "-q", "-b", "feature/speed")
    (repo / "app.py").write_text("x = 3\n")
    caught_up(w, tmp_path)
    w.flush()
    assert [hb["branch"] for hb in sink.heartbeats] == ["main", "feature/speed"]
    assert all(".git" not in Path(e).parts for e in sink.entities())


# ---- coalescing and mass changes (fake clock) -----------------------------------------------------


def test_one_heartbeat_per_file_per_window_keeping_the_last_save(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink
) -> None:
    clock = FakeClock()
    w = make_watcher(tmp_path, clock=clock, delay=0.3, window=30)
    f = tmp_path / "loop.py"
    saves = []
    for i in range(3):
        f.write_text(f"x = {i}\n")
        saves.append(clock.now)
        caught_up(w, tmp_path)
        if i == 0:
            clock.now += 0.5  # past the delay: the leading edge goes out
            w.tick()
            assert len(sink.heartbeats) == 1
        clock.now += 5
    w.tick()
    assert len(sink.heartbeats) == 1  # saves 2 and 3 wait for the window to close
    clock.now = saves[0] + 0.5 + 30
    w.tick()
    assert [hb["time"] for hb in sink.heartbeats] == [saves[0], saves[2]]  # trailing edge: the last save
    clock.now += 300
    w.tick()
    assert len(sink.heartbeats) == 2


def test_checkout_of_5000_files_records_one_heartbeat(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink
) -> None:
    clock = FakeClock()
    repo = make_project(tmp_path, "big")
    other = make_project(tmp_path, "other")
    w = make_watcher(tmp_path, clock=clock, delay=0.3, window=30)
    for d in range(50):  # new folders too, as a checkout creates them
        folder = repo / "src" / f"mod{d:02}"
        folder.mkdir()
        for i in range(100):
            (folder / f"file{i:03}.py").write_text(f"VALUE = {d * 100 + i}\n")
    (other / "src" / "mine.py").write_text("print('the user kept coding elsewhere')\n")
    caught_up(w, tmp_path)
    w.flush()
    stats = w.stats()
    assert stats["saves"] >= 5000 and stats["mass_changes"] == 1
    by_project: dict[str, int] = {}
    for hb in sink.heartbeats:
        by_project[hb["project"]] = by_project.get(hb["project"], 0) + 1
    assert by_project == {"big": 1, "other": 1}
    burst_hb = next(hb for hb in sink.heartbeats if hb["project"] == "big")
    assert "line_additions" not in burst_hb  # no diffing of tool output


def test_a_few_files_saved_together_are_not_a_mass_change(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink
) -> None:
    w = make_watcher(tmp_path, clock=FakeClock(), delay=0.3)
    for i in range(MASS_CHANGE_FILES - 1):
        (tmp_path / f"f{i}.py").write_text("pass\n")
    caught_up(w, tmp_path)
    w.flush()
    assert len(sink.heartbeats) == MASS_CHANGE_FILES - 1 and w.stats().get("mass_changes", 0) == 0


def test_editor_heartbeats_are_preferred(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink
) -> None:
    w = make_watcher(tmp_path, delay=60)
    edited = tmp_path / "edited.py"
    sink.editor_entities.add(str(edited))
    edited.write_text("a = 1\n")
    (tmp_path / "plain.py").write_text("b = 1\n")
    caught_up(w, tmp_path)
    w.flush()
    assert sink.entities() == [str(tmp_path / "plain.py")]
    assert w.stats()["skipped_editor"] == 1


# ---- what is not recorded -------------------------------------------------------------------------


def test_gitignored_build_folder_gets_no_watch_and_no_heartbeat(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink
) -> None:
    proj = make_project(tmp_path)
    (proj / ".gitignore").write_text("generated/\n*.log\n!keep.log\n")
    (proj / "generated" / "deep" / "deeper").mkdir(parents=True)
    (proj / "build" / "lib").mkdir(parents=True)  # build output: pruned by name even without .gitignore
    (proj / "node_modules" / "pkg").mkdir(parents=True)
    (proj / "venv-custom").mkdir()
    (proj / "venv-custom" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    w = make_watcher(tmp_path, delay=60)
    assert w.stats()["watches"] == 3  # tmp_path, proj, proj/src
    (proj / "generated" / "deep" / "out.py").write_text("x = 1\n")
    (proj / "build" / "lib" / "out.py").write_text("x = 1\n")
    (proj / "generated2").mkdir()
    (proj / "generated" / "later").mkdir()  # created while watched: still pruned
    (proj / "server.log").write_text("started\n")
    (proj / "keep.log").write_text("kept\n")
    (proj / "src" / "real.py").write_text("y = 2\n")
    caught_up(w, proj)
    w.flush()
    assert sorted(Path(e).name for e in sink.entities()) == ["keep.log", "real.py"]
    assert w.stats()["watches"] == 4  # + generated2, not generated/later


def test_editing_gitignore_takes_effect(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink
) -> None:
    w = make_watcher(tmp_path, delay=60)
    (tmp_path / ".gitignore").write_text("*.gen.py\n")
    caught_up(w, tmp_path)
    (tmp_path / "a.gen.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("x = 1\n")
    caught_up(w, tmp_path)
    w.flush()
    assert sorted(Path(e).name for e in sink.entities()) == [".gitignore", "b.py"]


def test_ignore_files_stop_at_repository_boundaries(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink
) -> None:
    # A dotfiles repository in the home folder that ignores everything ...
    home = tmp_path / "home"
    (home / ".git").mkdir(parents=True)
    (home / ".gitignore").write_text("*\n")
    code = home / "code"
    proj = make_project(code, "app")
    (proj / ".gitignore").write_text("secret.py\n")
    (code / "scratch").mkdir()
    # ... must not hide the user's own repositories below it, whose own rules still apply.
    w = make_watcher(code, delay=60)
    (proj / "src" / "main.py").write_text("x = 1\n")
    (proj / "secret.py").write_text("x = 1\n")
    (code / "scratch" / "loose.py").write_text("x = 1\n")  # outside any nested repo: ignored, as git does
    caught_up(w, code)
    w.flush()
    assert sink.entities() == [str(proj / "src" / "main.py")]


def test_a_watched_sub_folder_obeys_its_repositorys_ignore_file(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink
) -> None:
    proj = make_project(tmp_path, "repo")
    (proj / ".gitignore").write_text("*.gen.ts\n")
    w = make_watcher(proj / "src", delay=60)
    (proj / "src" / "a.gen.ts").write_text("export {}\n")
    (proj / "src" / "a.ts").write_text("export {}\n")
    caught_up(w, proj / "src")
    w.flush()
    assert sink.entities() == [str(proj / "src" / "a.ts")]


def test_symlink_loops_are_not_followed(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink
) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "up").symlink_to("../..")
    (tmp_path / "a" / "self").symlink_to(".")
    (tmp_path / "loop1").symlink_to("loop2")
    (tmp_path / "loop2").symlink_to("loop1")
    (tmp_path / "a" / "real.py").write_text("x = 1\n")
    (tmp_path / "link.py").symlink_to(tmp_path / "a" / "real.py")
    w = make_watcher(tmp_path, delay=60)
    assert w.stats()["watches"] == 3  # tmp_path, a, a/b: links are not folders to walk
    (tmp_path / "a" / "real.py").write_text("x = 2\n")
    caught_up(w, tmp_path)
    w.flush()
    assert sink.entities() == [str(tmp_path / "a" / "real.py")]


def test_files_that_cannot_be_read_are_skipped_without_blocking(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink
) -> None:
    w = make_watcher(tmp_path, delay=60)
    os.mkfifo(tmp_path / "pipe.py")  # opening it for reading would block a careless reader
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(tmp_path / "sock.py"))  # open() on a socket fails even for root
        (tmp_path / "binary.py").write_bytes(b"\x00\x01\x02" * 100)
        (tmp_path / "fine.py").write_text("ok = True\n")
        caught_up(w, tmp_path)
        w.flush()
    finally:
        server.close()
    assert sink.entities() == [str(tmp_path / "fine.py")]


_CAPS_DROPPED = "HACKATIME_TEST_WITHOUT_DAC_CAPS"


def test_permission_denied_file_is_skipped(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink, request: pytest.FixtureRequest
) -> None:
    locked = tmp_path / "locked.py"
    locked.write_text("secret = 1\n")
    locked.chmod(0o200)  # write-only: saved by its owner, unreadable to the watcher
    try:
        locked.read_bytes()
    except PermissionError:
        pass
    else:
        # Root reads files whatever their mode (CI runs as root): run this test again in a
        # child without the capabilities that let it, so the case is covered there too.
        if os.environ.get(_CAPS_DROPPED) or not shutil.which("setpriv"):
            pytest.skip("this process reads files whatever their mode, and cannot drop that right")
        caps = "-dac_override,-dac_read_search"
        child = subprocess.run(
            ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}", sys.executable, "-m", "pytest", "-q",
             "-p", "no:cacheprovider", request.node.nodeid],
            cwd=request.config.rootpath, env={**os.environ, _CAPS_DROPPED: "1"},
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert child.returncode == 0 and child.stdout.splitlines()[-1].startswith("1 passed"), (
            child.stdout + child.stderr
        )
        return
    w = make_watcher(tmp_path, delay=60)
    locked.write_text("secret = 2\n")
    caught_up(w, tmp_path)
    w.flush()
    assert sink.heartbeats == [] and w.stats()["skipped_unreadable"] == 1


def test_excluded_paths_temp_files_and_the_agents_own_files(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink
) -> None:
    data = tmp_path / "agent-data"
    data.mkdir()
    settings = CaptureSettings(exclude=(r"/private/",), watch_dirs=(tmp_path,))
    w = make_watcher(settings=settings, ignore_paths=[data], delay=60)
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "diary.md").write_text("dear diary\n")
    (data / "agent.sqlite3-journal.txt").write_text("log line\n")
    for name in ("x.py~", "#x.py#", ".#x.py", "x.py.swp", "x.py___jb_tmp___", "photo.png"):
        (tmp_path / name).write_text("tmp\n")
    (tmp_path / "kept.py").write_text("kept = 1\n")
    caught_up(w, tmp_path)
    w.flush()
    assert sink.entities() == [str(tmp_path / "kept.py")]
    stats = w.stats()
    assert stats["skipped_excluded"] >= 1 and stats["skipped_temp"] >= 5
    # The agent's own folder is not even watched, so its writes raise no event at all.
    assert stats.get("skipped_own", 0) == 0 and stats["watches"] == 2  # tmp_path and private/


def test_hide_file_names_never_stores_the_name(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink
) -> None:
    proj = make_project(tmp_path, "clientwork")
    settings = CaptureSettings(hide_file_names=True, hide_project_names=True, watch_dirs=(tmp_path,))
    w = make_watcher(settings=settings, delay=60)
    (proj / "src" / "merger_terms.py").write_text("x = 1\n")
    caught_up(w, tmp_path)
    w.flush()
    [hb] = sink.heartbeats
    assert hb["entity"] == "HIDDEN.py" and hb["language"] == "Python"
    text = json.dumps(sink.heartbeats)
    for secret in ("merger_terms", "clientwork", str(tmp_path), "main"):
        assert secret not in text


def test_exclude_unknown_project(tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink) -> None:
    proj = make_project(tmp_path, "known")
    settings = CaptureSettings(exclude_unknown_project=True, watch_dirs=(tmp_path,))
    w = make_watcher(settings=settings, delay=60)
    (tmp_path / "loose.py").write_text("x = 1\n")
    (proj / "src" / "ok.py").write_text("x = 1\n")
    caught_up(w, tmp_path)
    w.flush()
    assert sink.entities() == [str(proj / "src" / "ok.py")]


# ---- folders, limits and observers ----------------------------------------------------------------


def test_folders_added_and_removed_at_run_time(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    w = make_watcher(one, delay=60)
    assert w.add_folder(two) is None
    assert w.folders() == [str(one), str(two)]
    (two / "a.py").write_text("a = 1\n")
    caught_up(w, two)
    w.flush()
    assert len(sink.heartbeats) == 1
    w.remove_folder(two)
    assert w.folders() == [str(one)]
    (two / "b.py").write_text("b = 1\n")
    (one / "c.py").write_text("c = 1\n")
    caught_up(w, one)
    w.flush()
    assert sink.entities() == [str(two / "a.py"), str(one / "c.py")]


def test_nested_folders_share_one_set_of_watches(tmp_path: Path, make_watcher: Callable[..., Watcher]) -> None:
    inner = tmp_path / "outer" / "inner"
    inner.mkdir(parents=True)
    w = make_watcher(inner)
    assert w.stats()["watches"] == 1
    w.add_folder(tmp_path / "outer")
    assert w.stats()["watches"] == 2
    w.remove_folder(tmp_path / "outer")
    assert w.stats()["watches"] == 1


class InotifyCallback:
    """watchdog's ``WatchCallback`` protocol: records the names the inotify reader hands it."""

    def __init__(self) -> None:
        self.names: list[bytes] = []
        self.cond = threading.Condition()

    def on_event(self, event: Any) -> None:
        with self.cond:
            self.names.append(event.name)
            self.cond.notify_all()

    def on_watch_deleted(self, wd: Any) -> None:
        pass

    def on_queue_overflow(self) -> None:
        pass

    def wait_for(self, name: bytes) -> list[bytes]:
        with self.cond:
            assert self.cond.wait_for(lambda: name in self.names, WAIT), self.names
            return list(self.names)


def test_compact_watch_bookkeeping_serves_two_callbacks_on_one_folder(tmp_path: Path) -> None:
    """The watcher's inotify reader keeps a compact record per watch (memory: design.md's
    RSS budget); two callbacks on one folder — two roots reaching it through a bind
    mount — must still each get its events, and the watch must go with the last one."""
    from watchdog.observers.inotify_c import CallbackId, InotifyConstants

    from agent.capture.observer import _SlimInotifyFD

    reader = _SlimInotifyFD()
    reader.start()
    try:
        first, second = InotifyCallback(), InotifyCallback()
        path, mask = os.fsencode(tmp_path), InotifyConstants.IN_CREATE
        wd = reader.add_callback(path, mask, first, CallbackId(1))
        assert reader.add_callback(path, mask, second, CallbackId(2)) == wd  # one watch, two callbacks
        (tmp_path / "one").touch()
        assert first.wait_for(b"one") == second.wait_for(b"one") == [b"one"]

        reader.remove_callbacks([(wd, CallbackId(1))])  # the second one takes the first's place
        (tmp_path / "two").touch()
        assert second.wait_for(b"two") == [b"one", b"two"]
        assert first.names == [b"one"]  # the reader hands an event to its callbacks before the next

        with pytest.warns(RuntimeWarning, match="already exists"):  # as watchdog's own Watch does
            reader.add_callback(path, mask, second, CallbackId(2))
        reader.remove_callbacks([(wd, CallbackId(2))])  # the last callback: the watch is removed
        assert not reader._watch_for_wd
        assert reader.add_callback(path, mask, first, CallbackId(1)) >= 0  # and can be added again
    finally:
        reader.stop()
        reader.join()


def test_watch_limit_watches_what_fits_and_says_what_is_not_covered(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink
) -> None:
    for top in ("alpha", "beta"):
        for sub in range(3):
            (tmp_path / top / f"s{sub}" / "deep").mkdir(parents=True)
    w = make_watcher(tmp_path, max_watches=3, delay=60)
    [report] = w.uncovered()
    assert report["reason"] == "inotify-limit"
    assert report["missing_count"] == 15 - 3  # 1 + 2 + 6 + 6 folders, 3 watched (breadth first)
    assert set(report["missing"]) == {str(tmp_path / t / f"s{i}") for t in ("alpha", "beta") for i in range(3)}
    assert "max_user_watches" in report["message"] or "limit" in report["message"]
    assert "sysctl" in report["message"] and str(tmp_path) in report["message"]
    (tmp_path / "alpha" / "covered.py").write_text("x = 1\n")
    (tmp_path / "alpha" / "s0" / "uncovered.py").write_text("x = 1\n")
    caught_up(w, tmp_path)
    w.flush()
    assert sink.entities() == [str(tmp_path / "alpha" / "covered.py")]
    assert w.stats()["watches"] == 3


def test_inotify_status_reads_the_kernel_limit() -> None:
    status = inotify_status()
    assert isinstance(status["max_user_watches"], int) and status["max_user_watches"] > 0
    assert isinstance(status["used"], int)


def test_missing_folder_is_reported_not_fatal_and_adding_it_again_retries(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink
) -> None:
    later = tmp_path / "later"
    w = make_watcher(later, delay=60)
    [report] = w.uncovered()
    assert report["reason"] == "missing" and "does not exist" in report["message"]
    later.mkdir()
    assert w.add_folder(later) is None and w.uncovered() == []
    (later / "x.py").write_text("x = 1\n")
    caught_up(w, later)
    w.flush()
    assert sink.entities() == [str(later / "x.py")]


def test_folder_deleted_while_watched(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink
) -> None:
    doomed, kept = tmp_path / "doomed", tmp_path / "kept"
    (doomed / "sub").mkdir(parents=True)
    (kept / "sub").mkdir(parents=True)
    w = make_watcher(doomed, kept, delay=60)
    gone = w.expect_event(doomed)
    (doomed / "sub" / "x.py").write_text("x = 1\n")
    shutil.rmtree(doomed)
    assert gone.wait(WAIT)
    shutil.rmtree(kept / "sub")  # a sub-folder deleted: the rest stays watched
    (kept / "y.py").write_text("y = 1\n")
    caught_up(w, kept)
    w.flush()
    assert sink.entities() == [str(kept / "y.py")]
    [report] = w.uncovered()
    assert report["path"] == str(doomed) and report["reason"] == "deleted"
    assert w.stats()["watches"] == 1
    doomed.mkdir()  # it comes back, and the user adds it again
    assert w.add_folder(doomed) is None and w.uncovered() == []
    (doomed / "z.py").write_text("z = 1\n")
    caught_up(w, doomed)
    w.flush()
    assert sink.entities()[-1] == str(doomed / "z.py")


def test_polling_is_used_only_when_asked(
    tmp_path: Path, make_watcher: Callable[..., Watcher], sink: RecordingSink
) -> None:
    (tmp_path / "node_modules" / "dep").mkdir(parents=True)
    w = make_watcher(tmp_path, observer="polling", poll_interval=0.05, delay=60)
    (tmp_path / "node_modules" / "dep" / "index.js").write_text("module.exports = 1\n")
    (tmp_path / "poll.py").write_text("x = 1\n")
    caught_up(w, tmp_path)
    w.flush()
    assert sink.entities() == [str(tmp_path / "poll.py")]


def test_sink_errors_do_not_stop_the_watcher(tmp_path: Path, make_watcher: Callable[..., Watcher]) -> None:
    class Flaky(RecordingSink):
        calls = 0

        def submit(self, heartbeats: list[dict[str, Any]], source: str) -> None:
            self.calls += 1
            if self.calls == 1:
                raise HeartbeatError("refused")
            if self.calls == 2:
                raise OSError("disk full")
            super().submit(heartbeats, source)

    flaky = Flaky()
    w = make_watcher(tmp_path, sink=flaky, delay=60)
    (tmp_path / "a.py").write_text("a = 1\n")
    caught_up(w, tmp_path)
    w.flush()  # batch refused, then the one-by-one retry hits a storage error
    (tmp_path / "b.py").write_text("b = 1\n")
    caught_up(w, tmp_path)
    w.flush()
    assert flaky.entities() == [str(tmp_path / "b.py")]


def test_stop_emits_pending_trailing_edges(tmp_path: Path, sink: RecordingSink) -> None:
    w = Watcher(sink, CaptureSettings(watch_dirs=(tmp_path,)), secret=b"s" * 32, delay=60)
    w.start()
    try:
        (tmp_path / "last.py").write_text("x = 1\n")
        caught_up(w, tmp_path)
    finally:
        w.stop()
    assert sink.entities() == [str(tmp_path / "last.py")]


# ---- small pure rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [".main.py.swp", ".main.py.swo", "main.py~", "4913", "5036", ".#main.py", "#main.py#", "main.py___jb_tmp___",
     ".goutputstream-ABC123", "main.py.kate-swp", "main.py.tmp", "main.py.tmp.1234", "tmpa8f3k2zq", ".DS_Store",
     "~$report.docx", ".~lock.sheet.ods#", "x.crswap"],
)  # fmt: skip
def test_editor_temp_names(name: str) -> None:
    assert is_editor_temp(name)


@pytest.mark.parametrize("name", ["main.py", "4914", "2024", "template.html", "tmp.py", "temperature.rs", "README"])
def test_real_names_are_not_temp(name: str) -> None:
    assert not is_editor_temp(name)


def test_line_changes() -> None:
    old = b"a\nb\nc\nd\n"
    assert line_changes(old, old) == (0, 0)
    assert line_changes(old, b"a\nb\nX\nc\nd\n") == (1, 0)
    assert line_changes(old, b"a\nd\n") == (0, 2)
    assert line_changes(old, b"a\nB\nc\nd\ne\n") == (2, 1)
    assert line_changes(b"", b"x\ny\n") == (2, 0)
    big_old = b"".join(b"line %d\n" % i for i in range(5000))
    big_new = b"".join(b"LINE %d\n" % i for i in range(5000))
    assert line_changes(big_old, big_new) == (5000, 5000)
