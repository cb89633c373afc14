CREATE TABLE taskyard_runs (
    id               TEXT PRIMARY KEY NOT NULL,
    task             TEXT NOT NULL,
    status           TEXT NOT NULL,
    trigger_kind     TEXT NOT NULL,
    trigger_data     TEXT NOT NULL,
    payload          TEXT NOT NULL,
    attempt          INTEGER NOT NULL,
    attempts         TEXT NOT NULL,
    instance         TEXT NOT NULL,
    queued_at        INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    duration_ms      INTEGER,
    result           TEXT,
    error            TEXT,
    progress         REAL,
    progress_message TEXT
);
CREATE INDEX taskyard_runs_by_task ON taskyard_runs (task, id);
CREATE INDEX taskyard_runs_by_status ON taskyard_runs (status, id);
CREATE INDEX taskyard_runs_by_finish ON taskyard_runs (finished_at);
CREATE TABLE taskyard_instances (
    id           TEXT PRIMARY KEY NOT NULL,
    hostname     TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    lease_until  INTEGER NOT NULL
);
