-- A durable run's record is written once, when the run ends. Until then the run lives in
-- its job, whose row holds the record's columns too: enqueue writes one row, a claim reads
-- no record, the fenced states of a long run update the job, and the end deletes the job
-- and inserts the record instead of updating the wide record and every index of the
-- history. A run is in exactly one of the two tables, and the history reads both through
-- `taskyard_history`. A job's status is `queued` or `running`. The defaults serve the rows
-- moved here and nothing else: every writer names every column.
ALTER TABLE taskyard_jobs ADD COLUMN status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running'));
ALTER TABLE taskyard_jobs ADD COLUMN trigger_kind TEXT NOT NULL DEFAULT 'manual';
ALTER TABLE taskyard_jobs ADD COLUMN trigger_data TEXT NOT NULL DEFAULT '{}';
ALTER TABLE taskyard_jobs ADD COLUMN payload TEXT NOT NULL DEFAULT 'null';
ALTER TABLE taskyard_jobs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
ALTER TABLE taskyard_jobs ADD COLUMN attempts TEXT NOT NULL DEFAULT '[]';
ALTER TABLE taskyard_jobs ADD COLUMN instance TEXT NOT NULL DEFAULT '';
ALTER TABLE taskyard_jobs ADD COLUMN queued_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE taskyard_jobs ADD COLUMN started_at INTEGER;
ALTER TABLE taskyard_jobs ADD COLUMN finished_at INTEGER;
ALTER TABLE taskyard_jobs ADD COLUMN duration_ms INTEGER;
ALTER TABLE taskyard_jobs ADD COLUMN result TEXT;
ALTER TABLE taskyard_jobs ADD COLUMN error TEXT;
ALTER TABLE taskyard_jobs ADD COLUMN progress REAL;
ALTER TABLE taskyard_jobs ADD COLUMN progress_message TEXT;
-- The queued and running durable runs move into their jobs.
DELETE FROM taskyard_jobs WHERE id IN
    (SELECT id FROM taskyard_runs WHERE status NOT IN ('queued', 'running'));
UPDATE taskyard_jobs SET status = r.status, trigger_kind = r.trigger_kind, trigger_data = r.trigger_data,
    payload = r.payload, attempt = r.attempt, attempts = r.attempts, instance = r.instance,
    queued_at = r.queued_at, started_at = r.started_at, finished_at = r.finished_at,
    duration_ms = r.duration_ms, result = r.result, error = r.error, progress = r.progress,
    progress_message = r.progress_message
    FROM taskyard_runs AS r WHERE r.id = taskyard_jobs.id;
DELETE FROM taskyard_runs WHERE id IN (SELECT id FROM taskyard_jobs);
-- Every run, ended or not.
CREATE VIEW taskyard_history AS
    SELECT id, task, status, trigger_kind, trigger_data, payload, attempt, attempts, instance, queued_at,
        started_at, finished_at, duration_ms, result, error, progress, progress_message FROM taskyard_runs
    UNION ALL
    SELECT id, task, status, trigger_kind, trigger_data, payload, attempt, attempts, instance, queued_at,
        started_at, finished_at, duration_ms, result, error, progress, progress_message FROM taskyard_jobs;
