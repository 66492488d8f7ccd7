"""The store on real SQLite files: modes, states, migrations and recovery from damage."""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import stat
from pathlib import Path

import pytest

import agent.store.connection
from agent.heartbeat import normalize
from agent.store import Store, StoreTooNew
from agent.store.schema import MIGRATIONS

T0 = 1755864000.0


def beats(n: int, start: float = T0, entity: str = "/p/a.py") -> list:
    return [normalize({"time": start + i, "entity": entity, "project": "p"}, machine="m") for i in range(n)]


def open_store(path: Path) -> Store:
    store = Store(path)
    store.set_destination("hackatime", "http://example.invalid")
    return store


def test_files_are_private_and_wal(tmp_path: Path) -> None:
    with open_store(tmp_path / "s.db") as store:
        store.add(beats(3), "editor")
        for name in ("s.db", "s.db-wal", "s.db-shm"):
            assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600, name
        assert store.reader().execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_delivery_states_and_resume(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with open_store(path) as store:
        store.add(beats(5), "editor")
        claimed = store.claim("hackatime", 3)
        assert [hb_id for hb_id, _ in claimed] == [1, 2, 3]  # oldest first
        store.settle("hackatime", sent=[1], dead=[(2, "HTTP 422: bad")])
        counts = store.counts("hackatime")
        assert (counts.pending, counts.in_flight, counts.sent, counts.dead) == (2, 1, 1, 1)
    # A crash leaves #3 in flight: the next start puts it back to ready.
    with open_store(path) as store:
        assert store.resume_in_flight() == 1
        assert store.counts("hackatime").pending == 3
        assert store.dead_letters("hackatime")[0]["reason"] == "HTTP 422: bad"
        assert store.retry_dead("hackatime", [2]) == 1
        store.settle("hackatime", dead=[(2, "again")])
        assert store.discard_dead("hackatime", [2]) == 1
        assert store.counts("hackatime").dead == 0
        assert store.heartbeat_count() == 5  # discarded deliveries keep the heartbeat for stats


def test_duplicates_return_the_existing_row(tmp_path: Path) -> None:
    with open_store(tmp_path / "s.db") as store:
        first = store.add(beats(2), "editor")
        again = store.add(beats(2), "editor")
        assert [a.id for a in again] == [a.id for a in first]
        assert not any(a.created for a in again)
        assert store.counts("hackatime").pending == 2


@pytest.mark.parametrize("layout", ["all new", "some stored", "twin in the batch"])
def test_every_answer_names_the_row_holding_that_heartbeat(tmp_path: Path, layout: str) -> None:
    """New rows' ids are taken without reading them back when nothing conflicted; either way
    each answer must name the row whose payload is that heartbeat, and only new rows count."""
    with open_store(tmp_path / "s.db") as store:
        store.add(beats(3, start=T0 + 100, entity="/p/other.py"), "editor")  # ids 1-3: not in the batch
        batch = beats(5)
        if layout == "some stored":
            store.add([batch[1], batch[3]], "editor")
        elif layout == "twin in the batch":
            batch.insert(3, batch[0])
        results = store.add(batch, "editor")
        stored = dict(store.reader().execute("SELECT id, payload FROM heartbeats").fetchall())
        assert [stored[r.id] for r in results] == [hb.payload_json for hb in batch]
        assert len(set(stored.values())) == len(stored) == 3 + 5
        expected_new = {"all new": 5, "some stored": 3, "twin in the batch": 5}[layout]
        assert sum(r.created for r in results) == expected_new
        assert store.counts("hackatime").pending == 3 + 5


def test_the_columns_hold_the_payloads_fields(tmp_path: Path) -> None:
    """The query columns are copied from the frozen payload: editor and OS as derived from the
    user agent, is_write as 0/1 or NULL, absent fields NULL."""
    ua = "wakatime/v1.115.2 (linux-6.8.0-x86_64) go1.23 vscode/1.99.0 vscode-wakatime/25.0.0"
    raws = [
        {"time": T0, "entity": "/p/a.py", "project": "p", "language": "Python", "branch": "main",
         "is_write": True, "user_agent": ua},
        {"time": T0 + 1, "entity": "example.com", "type": "domain", "is_write": False},
        {"time": T0 + 2, "entity": "/p/b.py", "editor": "Kate", "operating_system": "Linux"},
    ]  # fmt: skip
    with open_store(tmp_path / "s.db") as store:
        store.add([normalize(raw, machine="box") for raw in raws], "editor")
        rows = (
            store.reader()
            .execute(
                "SELECT entity, type, category, project, branch, language, editor, operating_system, machine, is_write "
                "FROM heartbeats ORDER BY id"
            )
            .fetchall()
        )
    assert rows == [
        ("/p/a.py", None, "coding", "p", "main", "Python", "vscode", "linux", "box", 1),
        ("example.com", "domain", "browsing", None, None, None, None, None, "box", 0),
        ("/p/b.py", None, "coding", None, None, None, "Kate", "Linux", "box", None),
    ]


def test_migration_backs_up_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.db"
    with open_store(path) as store:
        store.add(beats(4), "editor")
        version = store.reader().execute("PRAGMA user_version").fetchone()[0]
    monkeypatch.setattr(agent.store.connection, "MIGRATIONS", [*MIGRATIONS, "CREATE TABLE later_feature (x INTEGER)"])
    monkeypatch.setattr(agent.store.connection, "LATEST", len(MIGRATIONS) + 1)
    with Store(path) as store:
        assert store.reader().execute("PRAGMA user_version").fetchone()[0] == version + 1
        assert store.heartbeat_count() == 4
    backup = tmp_path / f"s.db.bak-v{version}"
    assert backup.exists() and stat.S_IMODE(backup.stat().st_mode) == 0o600
    with sqlite3.connect(backup) as conn:
        assert conn.execute("SELECT count(*) FROM heartbeats").fetchone()[0] == 4


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    open_store(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 999")
    with pytest.raises(StoreTooNew, match="newer version"):
        Store(path)


def _corrupt_page(path: Path, page: int, page_size: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek((page - 1) * page_size)
        fh.write(b"\xde\xad\xbe\xef" * (page_size // 4))


def test_damaged_index_is_moved_aside_and_rows_recovered(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with open_store(path) as store:
        store.add(beats(3000), "editor")
        store.settle("hackatime", sent=list(range(1, 1001)))
        conn = store.reader()
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'heartbeats_dedup'").fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    _corrupt_page(path, root, page_size)

    with open_store(path) as store:
        assert store.recovery is not None
        assert store.recovery["recovered"] == 3000
        moved = Path(store.recovery["moved_to"])
        assert moved.exists() and moved.name.startswith("s.db.corrupt-")
        counts = store.counts("hackatime")
        assert (counts.sent, counts.pending) == (1000, 2000)  # sent stays sent; the rest is queued again
        assert any("damaged" in n["message"] for n in store.notices())
        assert store.reader().execute("PRAGMA quick_check").fetchone()[0] == "ok"
        store.add(beats(1, start=T0 + 10_000), "editor")  # and the fresh store takes new work


def _imported(n: int, start: float) -> list[tuple[object, ...]]:
    """Rows as an import prepares them for ``add_imported``."""
    rows = []
    for hb in beats(n, start=start, entity="/p/old.py"):
        p = hb.payload
        fields = ("entity", "type", "category", "project", "branch", "language", "machine")
        entity, kind, category, project, branch, language, machine = (p.get(f) for f in fields)
        rows.append((hb.time, hb.dedup_key, hb.payload_json, entity, kind, category, project, branch, language,
                     hb.editor, hb.operating_system, machine, p.get("is_write")))  # fmt: skip
    return rows


def test_recovery_keeps_each_delivery_state_priority_and_history_kept_local(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with open_store(path) as store:
        store.add(beats(1000), "editor")
        store.settle("hackatime", sent=list(range(1, 501)), dead=[(501, "HTTP 400: bad")])
        store.add_imported(_imported(1000, T0 - 100_000), upload=True)  # history queued behind live work
        store.add_imported(_imported(1000, T0 - 200_000), upload=False)  # history kept on this computer
        before = store.counts("hackatime")
        conn = store.reader()
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'heartbeats_dedup'").fetchone()[0]
    _corrupt_page(path, root, 4096)  # an index page: every row can still be read

    with open_store(path) as store:
        assert store.recovery is not None and (store.recovery["recovered"], store.recovery["lost"]) == (3000, 0)
        after = store.counts("hackatime")
        assert (after.sent, after.dead, after.pending, after.history) == (500, 1, 1499, 1000)
        assert after == before
        assert store.held_count() == 1000  # still held: not uploaded because the file was damaged
        sources = dict(store.reader().execute("SELECT source, count(*) FROM heartbeats GROUP BY source").fetchall())
        assert sources == {"editor": 1000, "import": 2000}
        assert store.upload_held() == 1000 and store.counts("hackatime").history == 2000


def test_unreadable_file_starts_fresh_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with open_store(path) as store:
        store.add(beats(10), "editor")
    _corrupt_page(path, 1, 4096)  # the header: "file is not a database"
    with open_store(path) as store:
        assert store.recovery is not None and store.recovery["recovered"] == 0
        assert store.heartbeat_count() == 0
        assert store.notices()[0]["level"] == "error"


def test_hooks_run_inside_the_insert_transaction(tmp_path: Path) -> None:
    seen: list[int] = []
    with open_store(tmp_path / "s.db") as store:
        store.insert_hooks.append(lambda conn, rows: seen.extend(hb_id for hb_id, _ in rows))

        def failing(conn: sqlite3.Connection, rows: object) -> None:
            raise RuntimeError("rollup failed")

        store.add(beats(2), "editor")
        store.insert_hooks.append(failing)
        with pytest.raises(RuntimeError):
            store.add(beats(2, start=T0 + 100), "editor")
        assert store.heartbeat_count() == 2  # nothing half-stored
    assert seen == [1, 2, 3, 4]


def test_a_failing_migration_is_raised_and_never_moves_the_data_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.db"
    with open_store(path) as store:
        store.add(beats(3), "editor")
    monkeypatch.setattr(agent.store.connection, "MIGRATIONS", [*MIGRATIONS, "CREATE TABLE broken ("])
    monkeypatch.setattr(agent.store.connection, "LATEST", len(MIGRATIONS) + 1)
    with pytest.raises(sqlite3.OperationalError):
        Store(path)
    assert sorted(p.name for p in tmp_path.iterdir() if "corrupt" in p.name) == []
    monkeypatch.undo()
    with open_store(path) as store:
        assert store.heartbeat_count() == 3  # the failed migration rolled back


def test_migration_3_rekeys_old_rows_so_an_import_of_them_adds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.db"
    ua = "wakatime/v1.90.0 (linux-6.5.0-x86_64) go1.21 vscode/1.85.0 vscode-wakatime/24.4.0"
    # A v2 store holding payloads the way v2 froze them: the body's editor, an empty dependency
    # list, and a digest of those bytes as the key.
    monkeypatch.setattr(agent.store.connection, "MIGRATIONS", MIGRATIONS[:2])
    monkeypatch.setattr(agent.store.connection, "LATEST", 2)
    old_payload = (
        f'{{"category":"coding","dependencies":[],"editor":"Code","entity":"/p/a.py","machine":"m",'
        f'"time":{T0!r},"user_agent":"{ua}"}}'
    )
    with open_store(path) as store, store.transaction() as conn:
        for key, payload in ((b"old-key-00000001", old_payload), (b"unreadable-00001", "not json")):
            conn.execute(
                "INSERT INTO heartbeats(time, dedup_key, payload, source, received_at) VALUES (?, ?, ?, 'editor', 0)",
                (T0, key, payload),
            )
    monkeypatch.undo()
    with open_store(path) as store:
        assert store.reader().execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        # The same heartbeat as Hackatime's export carries it: the server's editor, no dependencies.
        exported = normalize(
            {"time": T0, "entity": "/p/a.py", "user_agent": ua, "editor": "vscode", "operating_system": "linux"},
            machine="m",
        )
        assert [a.created for a in store.add([exported], "import")] == [False]
        keys = {r[0] for r in store.reader().execute("SELECT dedup_key FROM heartbeats")}
        assert keys == {exported.dedup_key, b"unreadable-00001"}  # an unreadable row keeps its key


def test_migration_5_keys_a_heartbeat_sent_without_a_language_by_the_language_the_server_infers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.db"
    monkeypatch.setattr(agent.store.connection, "MIGRATIONS", MIGRATIONS[:4])
    monkeypatch.setattr(agent.store.connection, "LATEST", 4)
    live = normalize({"time": T0, "entity": "/p/a.py", "user_agent": "vim/9 vim-wakatime/1"}, machine="m")
    named = normalize({**live.payload, "time": T0 + 1, "language": "Go"}, machine="m")
    with open_store(path) as store, store.transaction() as conn:
        # As v4 keyed them: a digest of the payload's bytes, whatever the server infers.
        for hb in (live, named):
            conn.execute(
                "INSERT INTO heartbeats(time, dedup_key, payload, source, received_at, entity, language) "
                "VALUES (?, ?, ?, 'editor', 0, ?, ?)",
                (
                    hb.time,
                    hashlib.md5(hb.payload_json.encode()).digest(),
                    hb.payload_json,
                    "/p/a.py",
                    hb.get("language"),
                ),
            )
    monkeypatch.undo()
    with open_store(path) as store:
        exported = normalize({**live.payload, "language": "Python"}, machine="m")
        assert [a.created for a in store.add([exported, named], "import")] == [False, False]
        assert store.heartbeat_count() == 2


def test_live_heartbeats_are_claimed_before_imported_history(tmp_path: Path) -> None:
    from agent.store import HISTORY

    with open_store(tmp_path / "s.db") as store:
        history = store.add(beats(5, start=T0 - 86400 * 365), "import", priority=HISTORY)
        live = store.add(beats(3, start=T0), "editor")
        counts = store.counts("hackatime")
        assert (counts.pending, counts.history, counts.oldest_pending) == (8, 5, T0 - 86400 * 365)
        first = {hb_id for hb_id, _ in store.claim("hackatime", 4)}
        assert first == {*(a.id for a in live), history[0].id}  # every live one, then the oldest history
        later = store.add(beats(1, start=T0 + 100), "editor")  # arrives while history is queued
        assert {hb_id for hb_id, _ in store.claim("hackatime", 2)} == {later[0].id, history[1].id}
        assert store.counts("hackatime").history == 5


def test_queue_counts_match_a_tally_of_the_rows(tmp_path: Path) -> None:
    """Every state and priority at once, two destinations: the one-statement counts agree with
    counting the rows one by one."""
    from agent.store import DEAD, HISTORY, IN_FLIGHT, READY

    with open_store(tmp_path / "s.db") as store:
        store.set_destination("mirror", "http://mirror.invalid")
        store.add(beats(40, start=T0 - 86400 * 30), "import", priority=HISTORY)
        store.add(beats(25, start=T0), "editor")
        claimed = [hb_id for hb_id, _ in store.claim("hackatime", 50)]  # 25 live, then 25 history
        store.settle("hackatime", sent=claimed[:10], dead=[(i, "HTTP 400") for i in claimed[10:14]])
        store.settle("hackatime", retry=claimed[14:20])
        store.claim("mirror", 7)
        for name in ("hackatime", "mirror"):
            rows = (
                store.reader()
                .execute("SELECT d.state, d.priority, d.time FROM deliveries d WHERE d.destination = ?", (name,))
                .fetchall()
            )
            queued = [r for r in rows if r[0] in (READY, IN_FLIGHT)]
            counts = store.counts(name)
            assert counts.pending == sum(r[0] == READY for r in rows)
            assert counts.in_flight == sum(r[0] == IN_FLIGHT for r in rows)
            assert counts.dead == sum(r[0] == DEAD for r in rows)
            assert counts.history == sum(r[1] == HISTORY for r in queued)
            assert counts.oldest_pending == min(r[2] for r in queued)
        assert store.counts("hackatime").sent == 10 and store.counts("mirror").sent == 0
        assert (store.counts("hackatime").in_flight, store.counts("mirror").in_flight) == (30, 7)


def _store_with_history(path: Path, n: int = 5000) -> None:
    """``n`` heartbeats, the first fifth already delivered, in a file closed cleanly."""
    with open_store(path) as store:
        for start in range(0, n, 1000):
            store.add(
                [
                    normalize({"time": T0 + i, "entity": f"/p/file{i}.py", "project": "p"}, machine="m")
                    for i in range(start, min(n, start + 1000))
                ],
                "editor",
            )
        store.settle("hackatime", sent=list(range(1, n // 5 + 1)))


def _readable(path: Path, n: int) -> dict[int, str]:
    """The heartbeats a damaged file still gives by any plain query: whole-table scans from
    either end, scans of id ranges of every size down to ten (each until its first error), and
    each id alone. A damaged page hides rows from some of these reads and not from others."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.text_factory = bytes  # each payload decoded here: one of garbage text does not end a read
    found: dict[int, str] = {}

    def take(sql: str, *params: int) -> None:
        try:
            for hb_id, payload in conn.execute(sql, params):
                try:
                    if isinstance(json.loads(payload.decode("utf-8")), dict):
                        found[hb_id] = payload.decode("utf-8")
                except (ValueError, TypeError, AttributeError):
                    pass
        except sqlite3.DatabaseError:
            pass

    try:
        take("SELECT id, payload FROM heartbeats")
        take("SELECT id, payload FROM heartbeats ORDER BY id DESC")
        for size in (1000, 100, 10):
            for lo in range(1, n + 1, size):
                take("SELECT id, payload FROM heartbeats WHERE id BETWEEN ? AND ?", lo, lo + size - 1)
        for hb_id in range(1, n + 1):
            take("SELECT id, payload FROM heartbeats WHERE id = ?", hb_id)
    finally:
        conn.close()
    return found


def _damage_blocks(path: Path, seed: int, blocks: int = 5, size: int = 1024) -> None:
    rng = random.Random(seed)
    count = path.stat().st_size // size
    with open(path, "r+b") as fh:
        for block in rng.sample(range(1, count), blocks):  # block 0 holds the header: see the test below
            fh.seek(block * size)
            fh.write(bytes(rng.randrange(256) for _ in range(size)))


# Seed 16 damages a record so that only a scan reading no more than the payload gets past it.
@pytest.mark.parametrize("damage", [*(f"blocks-{seed}" for seed in (*range(1, 13), 16)), "half"])
def test_recovery_keeps_every_row_that_can_be_read(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "s.db"
    _store_with_history(path)
    with sqlite3.connect(path) as conn:
        original = dict(conn.execute("SELECT id, payload FROM heartbeats").fetchall())
    conn.close()
    if damage == "half":
        os.truncate(path, path.stat().st_size // 2)
    else:
        _damage_blocks(path, seed=int(damage.split("-")[1]))
    copy = tmp_path / "copy.db"
    copy.write_bytes(path.read_bytes())
    if damage == "half":
        # The header still counts the lost pages, and SQLite refuses every query over such a file;
        # counting only the pages that remain, it reads the rows on them.
        with open(copy, "r+b") as fh:
            page_size = int.from_bytes(fh.read(18)[16:18], "big")
            fh.seek(28)
            fh.write((copy.stat().st_size // page_size).to_bytes(4, "big"))
    rows = _readable(copy, 5000)
    readable = len(rows)

    with open_store(path) as store:
        assert store.recovery is not None, "the damage went unnoticed"
        assert store.recovery["recovered"] == readable == store.heartbeat_count()
        recovered = dict(store.reader().execute("SELECT id, payload FROM heartbeats").fetchall())
        assert recovered == rows  # the same rows, none of them garbage from a damaged page
        assert all(original[hb_id] == payload for hb_id, payload in recovered.items())
        notice = store.notices()[0]
        assert notice["level"] == "error" and f"{readable} heartbeats were recovered" in notice["message"]
        assert 0 < readable < 5000
        if damage == "half":  # the rows on the pages cut off cannot even be counted
            assert store.recovery["lost"] is None and "unknown" in notice["message"]
        else:
            assert store.recovery["lost"] == 5000 - readable
            assert f"{5000 - readable} could not be read" in notice["message"]
        counts = store.counts("hackatime")
        assert counts.pending + counts.sent == readable  # every recovered heartbeat is sent or queued
    assert not list(tmp_path.glob("*.readable*"))  # the working copy of a cut-short file is gone


def test_an_empty_file_is_a_damaged_store(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _store_with_history(path, 2000)
    os.truncate(path, 0)  # a crash in the middle of a copy
    with open_store(path) as store:
        assert store.recovery is not None and store.recovery["recovered"] == 0
        assert "empty" in store.recovery["error"]
        assert Path(store.recovery["moved_to"]).exists()  # kept for the user to look at
        assert "empty (0 bytes)" in store.notices()[0]["message"]
        store.add(beats(1), "editor")
        assert store.heartbeat_count() == 1
