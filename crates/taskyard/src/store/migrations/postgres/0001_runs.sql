CREATE TABLE taskyard_runs (
    id               TEXT PRIMARY KEY,
    task             TEXT NOT NULL,
    status           TEXT NOT NULL,
    trigger_kind     TEXT NOT NULL,
    trigger_data     JSONB NOT NULL,
    payload          JSONB NOT NULL,
    attempt          INTEGER NOT NULL,
    attempts         JSONB NOT NULL,
    instance         TEXT NOT NULL,
    queued_at        BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    duration_ms      BIGINT,
    result           JSONB,
    error            TEXT,
    progress         DOUBLE PRECISION,
    progress_message TEXT
);
CREATE INDEX taskyard_runs_by_task ON taskyard_runs (task, id);
CREATE INDEX taskyard_runs_by_status ON taskyard_runs (status, id);
CREATE INDEX taskyard_runs_by_finish ON taskyard_runs (finished_at);
CREATE TABLE taskyard_instances (
    id           TEXT PRIMARY KEY,
    hostname     TEXT NOT NULL,
    pid          BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    lease_until  BIGINT NOT NULL
);
