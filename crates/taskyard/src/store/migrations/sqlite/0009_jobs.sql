-- The live queue in a table of its own: a row per queued or claimed durable run, narrow,
-- claimed and deleted, while the run's record in `taskyard_runs` is written when the run
-- is queued and when it ends. A claim changes a few columns of the narrow row instead of
-- the wide record and its five indexes. `fence` is the claim's fencing token; the run's
-- record keeps the fence of its last claim once the job is gone, so that a run queued
-- again from its history never hands out a fence an old attempt holds.
CREATE TABLE taskyard_jobs (
    id               TEXT PRIMARY KEY,
    task             TEXT NOT NULL,
    priority         INTEGER NOT NULL,
    run_at           INTEGER NOT NULL,
    unique_key       TEXT,
    max_attempts     INTEGER NOT NULL,
    fence            INTEGER NOT NULL,
    claimed_by       TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
INSERT INTO taskyard_jobs (id, task, priority, run_at, unique_key, max_attempts, fence, claimed_by, cancel_requested)
    SELECT id, task, priority, COALESCE(run_at, queued_at), unique_key, max_attempts, fence,
        CASE WHEN status = 'running' THEN instance END, cancel_requested
    FROM taskyard_runs WHERE durable AND status IN ('queued', 'running');
-- The queue's order over the jobs no instance holds, overall and per task.
CREATE INDEX taskyard_jobs_due ON taskyard_jobs (priority DESC, run_at, id) WHERE claimed_by IS NULL;
CREATE INDEX taskyard_jobs_due_by_task ON taskyard_jobs (task, priority DESC, run_at, id) WHERE claimed_by IS NULL;
-- One queued-or-running run per task and key, held by the database.
CREATE UNIQUE INDEX taskyard_jobs_unique ON taskyard_jobs (task, unique_key) WHERE unique_key IS NOT NULL;
-- Claimed jobs: counted per task for its limit across the cluster, swept for dead instances.
CREATE INDEX taskyard_jobs_claimed ON taskyard_jobs (task, claimed_by) WHERE claimed_by IS NOT NULL;
-- Cancels asked for the jobs an instance holds.
CREATE INDEX taskyard_jobs_cancel ON taskyard_jobs (claimed_by) WHERE cancel_requested;
DROP INDEX taskyard_runs_unique_live;
DROP INDEX taskyard_runs_due;
DROP INDEX taskyard_runs_due_by_task;
DROP INDEX taskyard_runs_running;
-- The cancel flag on a run record stays for the runs an instance executes in process.
DROP INDEX taskyard_runs_cancel;
CREATE INDEX taskyard_runs_cancel ON taskyard_runs (instance)
    WHERE cancel_requested AND status IN ('queued', 'running') AND NOT durable;
