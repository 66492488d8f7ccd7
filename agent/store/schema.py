"""The store's schema, as an ordered list of migrations.

Migration N brings a database from version N-1 to N. Append new ones; never
edit a released one. ``Store`` backs the file up before it migrates.
"""

from __future__ import annotations

# Delivery states (persist-queue's ack states): ready → in flight → sent | dead.
READY, IN_FLIGHT, SENT, DEAD = 0, 1, 2, 3
# Delivery priorities: heartbeats captured now go before imported history, whatever its age.
LIVE, HISTORY = 0, 1

MIGRATIONS: list[str] = [
    # 1: heartbeats with their frozen payload, one delivery row per destination.
    """
    CREATE TABLE heartbeats (
        id INTEGER PRIMARY KEY,
        time REAL NOT NULL,
        dedup_key BLOB NOT NULL,          -- MD5 of the frozen payload; see heartbeats_dedup
        payload TEXT NOT NULL,            -- the JSON sent to every destination, byte for byte
        source TEXT NOT NULL,             -- editor | watcher | import (recovery keeps the source)
        received_at REAL NOT NULL,
        entity TEXT,
        type TEXT,
        category TEXT,
        project TEXT,
        branch TEXT,
        language TEXT,
        editor TEXT,                      -- parsed from user_agent, as the server does
        operating_system TEXT,
        machine TEXT,
        is_write INTEGER
    );
    -- Identical heartbeats share their time, so (time, key) is as unique as the key alone; led by
    -- time it grows at its end like the data (a random MD5 alone would dirty a page per row on
    -- every commit), and it serves every time-range query as well.
    CREATE UNIQUE INDEX heartbeats_dedup ON heartbeats(time, dedup_key);

    CREATE TABLE destinations (
        name TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        auth_state TEXT NOT NULL DEFAULT 'unknown',   -- unknown | ok | rejected | missing
        last_success REAL,
        last_error TEXT,
        last_error_at REAL,
        backoff_until REAL,
        failures INTEGER NOT NULL DEFAULT 0,
        reachable_at REAL,                           -- the server last answered (any HTTP status)
        unreachable_at REAL,                         -- a request last failed below HTTP (offline)
        sent_total INTEGER NOT NULL DEFAULT 0        -- deliveries ever marked sent (counting them is O(n))
    );

    CREATE TABLE deliveries (
        destination TEXT NOT NULL,
        heartbeat_id INTEGER NOT NULL REFERENCES heartbeats(id) ON DELETE CASCADE,
        time REAL NOT NULL,               -- copy of heartbeats.time: oldest first without a join
        state INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        updated_at REAL NOT NULL,
        reason TEXT,                      -- why it is dead (the server's error)
        PRIMARY KEY (destination, heartbeat_id)
    ) WITHOUT ROWID;
    CREATE INDEX deliveries_queue ON deliveries(destination, state, time, heartbeat_id);

    CREATE TABLE server_cache (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        fetched_at REAL NOT NULL
    );

    CREATE TABLE notices (
        id INTEGER PRIMARY KEY,
        time REAL NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL,
        dismissed INTEGER NOT NULL DEFAULT 0
    );

    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 2: per-15-minute rollups for local stats (agent/stats.py explains the design).
    # One row per (dimension, UTC bucket, group value): the capped-gap sum between consecutive
    # heartbeats of that group inside the bucket, and the group's first and last time there.
    # A window's exact total is the rows' sums plus the capped gaps between neighbouring rows.
    # The stats_rollup_id mark is the highest heartbeat id folded in; 0 makes the agent
    # build the rollups from the heartbeats already stored.
    """
    CREATE TABLE stats_rollup (
        dim INTEGER NOT NULL,             -- 0 all, 1 non-browsing, 2 project, 3 language, 4 editor,
                                          -- 5 operating_system, 6 machine, 7 category, 8 project+language,
                                          -- 9 project credited by LEAD (the summaries rule)
        bucket INTEGER NOT NULL,          -- floor(time / 900)
        value TEXT NOT NULL,              -- the group, char(0) standing for NULL
        span REAL NOT NULL,
        first REAL NOT NULL,
        last REAL NOT NULL,
        n INTEGER NOT NULL,
        tail TEXT,                        -- dim 0: project of the bucket's last heartbeat
        PRIMARY KEY (dim, bucket, value)
    ) WITHOUT ROWID;
    INSERT INTO meta(key, value) VALUES ('stats_rollup_id', '0')
        ON CONFLICT(key) DO UPDATE SET value = '0';
    """,
    # 3: imported history. Its deliveries wait behind every live one (priority leads the
    # queue index, ahead of time). Dedup keys follow the server's fields_hash rule
    # (agent/heartbeat.py), so a heartbeat in an export and the same one captured live are
    # one row: rekey() is registered by Store; a row whose new key is already taken by its
    # twin keeps its old key (both were stored, and sent, before this version).
    """
    ALTER TABLE deliveries ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;  -- LIVE or HISTORY
    DROP INDEX deliveries_queue;
    CREATE INDEX deliveries_queue ON deliveries(destination, state, priority, time, heartbeat_id);
    UPDATE OR IGNORE heartbeats SET dedup_key = rekey(payload, dedup_key);
    """,
    # 4: which deliveries a server figure can already contain. ``delivery_seq`` in meta counts
    # claims; a claim stamps its rows with the new value (``claim_seq``), and ``reach_seq`` keeps
    # the first claim whose request may have reached the server (cleared again when that
    # request surely did not: refused connection, 401/403, 429). A figure fetched when the
    # counter stood at R may contain a heartbeat exactly when its reach_seq <= R, so work
    # stamped later (or never) is all a merge may add to it (agent/stats/missing.py).
    # Rows sent before this version have neither stamp and count as contained.
    """
    ALTER TABLE deliveries ADD COLUMN claim_seq INTEGER;
    ALTER TABLE deliveries ADD COLUMN reach_seq INTEGER;
    CREATE INDEX deliveries_reach ON deliveries(destination, reach_seq) WHERE reach_seq IS NOT NULL;
    INSERT INTO meta(key, value) VALUES ('delivery_seq', '0') ON CONFLICT(key) DO NOTHING;
    """,
    # 5: the dedup key covers the language the server infers from the file name when one is
    # sent without a language (agent/heartbeat.py, key_needs_context): only such rows change
    # key. As in 3, a row whose new key its twin already holds keeps its old key.
    """
    UPDATE OR IGNORE heartbeats SET dedup_key = rekey(payload, dedup_key)
        WHERE lower(trim(coalesce(language, ''), ' ' || char(9, 10, 11, 12, 13))) IN ('', 'unknown')
        AND entity IS NOT NULL;
    """,
    # 6: imported history kept local (``import --no-upload``), as the id ranges each batch
    # stored, so that it can still be queued for upload later (``import --upload-held``).
    # Those heartbeats have no delivery rows until then.
    """
    CREATE TABLE held_imports (
        lo INTEGER NOT NULL,              -- first and last heartbeat id of one stored batch
        hi INTEGER NOT NULL
    );
    """,
]

LATEST = len(MIGRATIONS)
