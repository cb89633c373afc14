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
    run_at           BIGINT NOT NULL,
    unique_key       TEXT,
    max_attempts     INTEGER NOT NULL,
    fence            BIGINT NOT NULL,
    claimed_by       TEXT,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE
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
DROP TRIGGER taskyard_runs_queued ON taskyard_runs;
CREATE TRIGGER taskyard_jobs_queued AFTER INSERT OR UPDATE OF claimed_by ON taskyard_jobs
    FOR EACH ROW WHEN (NEW.claimed_by IS NULL) EXECUTE FUNCTION taskyard_notify_queued();
CREATE FUNCTION taskyard_notify_job_cancel() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('taskyard_cancel', NEW.claimed_by || ' ' || NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER taskyard_jobs_cancel AFTER UPDATE OF cancel_requested ON taskyard_jobs
    FOR EACH ROW WHEN (NEW.cancel_requested AND NOT OLD.cancel_requested AND NEW.claimed_by IS NOT NULL)
    EXECUTE FUNCTION taskyard_notify_job_cancel();
-- Claims take jobs, then read the claimed runs' records in a statement of their own: a
-- statement's snapshot is taken as it begins, and a job queued while the claim ran, and
-- claimed by it, has its record in the snapshot of a later statement only. Returns each
-- record as the store reads runs (JSON as text), then its job's fence, attempts, priority,
-- `run_at` and cancel flag. (`ROWS`: a claim returns tens of rows, not the thousand a
-- function is guessed at.)
DROP FUNCTION taskyard_claim(TEXT, BIGINT, INTEGER, TEXT[], TEXT[], INTEGER[], TEXT[]);
CREATE FUNCTION taskyard_claim(
    claimer TEXT, now BIGINT, room INTEGER,
    free TEXT[], limited TEXT[], limits INTEGER[], ended TEXT[]
) RETURNS TABLE (
    id TEXT, task TEXT, status TEXT, trigger_kind TEXT, trigger_data TEXT, payload TEXT,
    attempt BIGINT, attempts TEXT, instance TEXT, queued_at BIGINT, started_at BIGINT,
    finished_at BIGINT, duration_ms BIGINT, result TEXT, error TEXT, progress DOUBLE PRECISION,
    progress_message TEXT, fence BIGINT, max_attempts BIGINT, priority BIGINT, run_at BIGINT,
    cancel_requested BIGINT
) LANGUAGE plpgsql ROWS 64 AS $$
#variable_conflict use_column
DECLARE
    claimed TEXT[] := '{}';
    got TEXT[];
    take INTEGER;
BEGIN
    IF cardinality(free) > 0 AND room > 0 THEN
        WITH due AS (
            SELECT j.id FROM taskyard_jobs j
            WHERE j.claimed_by IS NULL AND j.run_at <= now AND j.task = ANY(free)
            ORDER BY j.priority DESC, j.run_at, j.id LIMIT room FOR UPDATE SKIP LOCKED
        ), taken AS (
            UPDATE taskyard_jobs j SET claimed_by = claimer, run_at = now, fence = j.fence + 1
            WHERE j.id = ANY(ARRAY(SELECT due.id FROM due)) AND j.claimed_by IS NULL
            RETURNING j.id
        ) SELECT array_agg(taken.id) INTO got FROM taken;
        claimed := claimed || COALESCE(got, '{}');
        room := room - COALESCE(cardinality(got), 0);
    END IF;
    FOR i IN 1 .. COALESCE(cardinality(limited), 0) LOOP
        EXIT WHEN room <= 0;
        -- Nothing due: neither the lock nor the count.
        CONTINUE WHEN NOT EXISTS (
            SELECT 1 FROM taskyard_jobs j
            WHERE j.claimed_by IS NULL AND j.run_at <= now AND j.task = limited[i]
        );
        PERFORM pg_advisory_xact_lock(hashtext('taskyard:' || limited[i]));
        SELECT GREATEST(0, LEAST(room, limits[i] - COUNT(*))) INTO take
            FROM taskyard_jobs j
            WHERE j.task = limited[i] AND j.claimed_by IS NOT NULL AND j.id <> ALL(ended);
        CONTINUE WHEN take = 0;
        WITH due AS (
            SELECT j.id FROM taskyard_jobs j
            WHERE j.claimed_by IS NULL AND j.run_at <= now AND j.task = limited[i]
            ORDER BY j.priority DESC, j.run_at, j.id LIMIT take FOR UPDATE SKIP LOCKED
        ), taken AS (
            UPDATE taskyard_jobs j SET claimed_by = claimer, run_at = now, fence = j.fence + 1
            WHERE j.id = ANY(ARRAY(SELECT due.id FROM due)) AND j.claimed_by IS NULL
            RETURNING j.id
        ) SELECT array_agg(taken.id) INTO got FROM taken;
        claimed := claimed || COALESCE(got, '{}');
        room := room - COALESCE(cardinality(got), 0);
    END LOOP;
    RETURN QUERY SELECT r.id, r.task, r.status, r.trigger_kind, r.trigger_data::text, r.payload::text,
        r.attempt::bigint, r.attempts::text, r.instance, r.queued_at, r.started_at, r.finished_at,
        r.duration_ms, r.result::text, r.error, r.progress, r.progress_message, j.fence,
        j.max_attempts::bigint, j.priority::bigint, j.run_at,
        (CASE WHEN j.cancel_requested THEN 1 ELSE 0 END)::bigint
        FROM unnest(claimed) AS c(id) JOIN taskyard_jobs j ON j.id = c.id JOIN taskyard_runs r ON r.id = c.id;
END $$;
