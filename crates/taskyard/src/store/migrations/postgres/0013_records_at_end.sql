-- A durable run's record is written once, when the run ends. Until then the run lives in
-- its job, whose row holds the record's columns too: enqueue writes one row, a claim reads
-- no record, the fenced states of a long run update the job, and the end deletes the job
-- and inserts the record. Updating the wide record at the end wrote a new version of it
-- and an entry in every index of the history: measured inside the server, that was half
-- of an end's work (15 µs a job, against 8.5 for the insert). A run is in exactly one of
-- the two tables, and the history reads both through `taskyard_history`. A job's status
-- is `queued` or `running`: the check lets PostgreSQL leave the jobs out of a page of
-- ended runs. The defaults serve the rows moved here and nothing else: every writer
-- names every column.
ALTER TABLE taskyard_jobs
    ADD COLUMN status TEXT COLLATE "C" NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running')),
    ADD COLUMN trigger_kind TEXT NOT NULL DEFAULT 'manual',
    ADD COLUMN trigger_data JSONB NOT NULL DEFAULT '{}',
    ADD COLUMN payload JSONB NOT NULL DEFAULT 'null',
    ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1,
    ADD COLUMN attempts JSONB NOT NULL DEFAULT '[]',
    ADD COLUMN instance TEXT COLLATE "C" NOT NULL DEFAULT '',
    ADD COLUMN queued_at BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN started_at BIGINT,
    ADD COLUMN finished_at BIGINT,
    ADD COLUMN duration_ms BIGINT,
    ADD COLUMN result JSONB,
    ADD COLUMN error TEXT,
    ADD COLUMN progress DOUBLE PRECISION,
    ADD COLUMN progress_message TEXT;
-- The queued and running durable runs move into their jobs.
DELETE FROM taskyard_jobs j USING taskyard_runs r WHERE r.id = j.id AND r.status NOT IN ('queued', 'running');
UPDATE taskyard_jobs j SET status = r.status, trigger_kind = r.trigger_kind, trigger_data = r.trigger_data,
    payload = r.payload, attempt = r.attempt, attempts = r.attempts, instance = r.instance,
    queued_at = r.queued_at, started_at = r.started_at, finished_at = r.finished_at,
    duration_ms = r.duration_ms, result = r.result, error = r.error, progress = r.progress,
    progress_message = r.progress_message
    FROM taskyard_runs r WHERE r.id = j.id;
DELETE FROM taskyard_runs r USING taskyard_jobs j WHERE r.id = j.id;
-- Every run, ended or not.
CREATE VIEW taskyard_history AS
    SELECT id, task, status, trigger_kind, trigger_data, payload, attempt, attempts, instance, queued_at,
        started_at, finished_at, duration_ms, result, error, progress, progress_message FROM taskyard_runs
    UNION ALL
    SELECT id, task, status, trigger_kind, trigger_data, payload, attempt, attempts, instance, queued_at,
        started_at, finished_at, duration_ms, result, error, progress, progress_message FROM taskyard_jobs;
-- Claims hand back the claimed runs from their jobs alone, as the claim's update returned
-- them: no record to read.
CREATE OR REPLACE FUNCTION taskyard_claim(
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
    claimed taskyard_jobs[] := '{}';
    got taskyard_jobs[];
    take INTEGER;
BEGIN
    IF cardinality(free) > 0 AND room > 0 THEN
        WITH due AS (
            SELECT j.ctid FROM taskyard_jobs j
            WHERE j.claimed_by IS NULL AND j.run_at <= now AND j.task = ANY(free)
            ORDER BY j.priority DESC, j.run_at, j.id LIMIT room FOR UPDATE SKIP LOCKED
        ), taken AS (
            UPDATE taskyard_jobs j SET claimed_by = claimer, run_at = now, fence = j.fence + 1
            WHERE j.ctid = ANY(ARRAY(SELECT due.ctid FROM due))
            RETURNING j AS job
        ) SELECT array_agg(taken.job) INTO got FROM taken;
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
            SELECT j.ctid FROM taskyard_jobs j
            WHERE j.claimed_by IS NULL AND j.run_at <= now AND j.task = limited[i]
            ORDER BY j.priority DESC, j.run_at, j.id LIMIT take FOR UPDATE SKIP LOCKED
        ), taken AS (
            UPDATE taskyard_jobs j SET claimed_by = claimer, run_at = now, fence = j.fence + 1
            WHERE j.ctid = ANY(ARRAY(SELECT due.ctid FROM due))
            RETURNING j AS job
        ) SELECT array_agg(taken.job) INTO got FROM taken;
        claimed := claimed || COALESCE(got, '{}');
        room := room - COALESCE(cardinality(got), 0);
    END LOOP;
    RETURN QUERY SELECT j.id, j.task, j.status, j.trigger_kind, j.trigger_data::text, j.payload::text,
        j.attempt::bigint, j.attempts::text, j.instance, j.queued_at, j.started_at, j.finished_at,
        j.duration_ms, j.result::text, j.error, j.progress, j.progress_message, j.fence,
        j.max_attempts::bigint, j.priority::bigint, j.run_at,
        (CASE WHEN j.cancel_requested THEN 1 ELSE 0 END)::bigint
        FROM unnest(claimed) AS j;
END $$;
