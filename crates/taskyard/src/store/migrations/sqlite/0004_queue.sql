-- Durable runs: a queued row any instance may claim once `run_at` has come.
ALTER TABLE taskyard_runs ADD COLUMN durable INTEGER NOT NULL DEFAULT 0;
ALTER TABLE taskyard_runs ADD COLUMN run_at INTEGER;
ALTER TABLE taskyard_runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE taskyard_runs ADD COLUMN unique_key TEXT;
ALTER TABLE taskyard_runs ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 1;
ALTER TABLE taskyard_runs ADD COLUMN fence INTEGER NOT NULL DEFAULT 0;
-- One queued-or-running run per task and key, held by the database.
CREATE UNIQUE INDEX taskyard_runs_unique_live ON taskyard_runs (task, unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('queued', 'running');
CREATE INDEX taskyard_runs_due ON taskyard_runs (priority, run_at, id)
    WHERE durable AND status = 'queued';
