-- Cancelling a run from any instance: the instance that runs it sees the flag.
ALTER TABLE taskyard_runs ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX taskyard_runs_cancel ON taskyard_runs (instance)
    WHERE cancel_requested AND status IN ('queued', 'running');
-- Counting a task's running durable runs, for its concurrency across the cluster.
CREATE INDEX taskyard_runs_running ON taskyard_runs (task)
    WHERE durable AND status = 'running';
-- Schedules paused or resumed through any instance, for every instance and every restart.
CREATE TABLE taskyard_schedules (
    schedule TEXT PRIMARY KEY,
    paused BIGINT NOT NULL,
    changed_at BIGINT NOT NULL,
    instance TEXT NOT NULL
);
