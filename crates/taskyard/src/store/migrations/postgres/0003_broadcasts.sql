CREATE TABLE taskyard_broadcasts (
    id       TEXT PRIMARY KEY,
    schedule TEXT NOT NULL,
    args     JSONB NOT NULL,
    origin   TEXT NOT NULL,
    sent_at  BIGINT NOT NULL
);
CREATE INDEX taskyard_broadcasts_by_time ON taskyard_broadcasts (sent_at);
CREATE INDEX taskyard_runs_unfinished ON taskyard_runs (status, task) WHERE status IN ('queued', 'running');
