-- A claim hands back the rows its updates return, as they come. It gathered them into an
-- array of whole jobs, joined arrays, and unnested the result: every claimed job's row was
-- copied three times, a tenth of the claim's work in the server. `RETURN QUERY` appends
-- each update's rows to the function's result, and `ROW_COUNT` says how many it added.
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
    got INTEGER;
    take INTEGER;
BEGIN
    IF cardinality(free) > 0 AND room > 0 THEN
        RETURN QUERY WITH due AS (
            SELECT j.ctid FROM taskyard_jobs j
            WHERE j.claimed_by IS NULL AND j.run_at <= now AND j.task = ANY(free)
            ORDER BY j.priority DESC, j.run_at, j.id LIMIT room FOR UPDATE SKIP LOCKED
        ), taken AS (
            UPDATE taskyard_jobs j SET claimed_by = claimer, run_at = now, fence = j.fence + 1
            WHERE j.ctid = ANY(ARRAY(SELECT due.ctid FROM due))
            RETURNING j.*
        ) SELECT t.id, t.task, t.status, t.trigger_kind, t.trigger_data::text, t.payload::text,
            t.attempt::bigint, t.attempts::text, t.instance, t.queued_at, t.started_at, t.finished_at,
            t.duration_ms, t.result::text, t.error, t.progress, t.progress_message, t.fence,
            t.max_attempts::bigint, t.priority::bigint, t.run_at,
            (CASE WHEN t.cancel_requested THEN 1 ELSE 0 END)::bigint
            FROM taken t;
        GET DIAGNOSTICS got = ROW_COUNT;
        room := room - got;
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
        RETURN QUERY WITH due AS (
            SELECT j.ctid FROM taskyard_jobs j
            WHERE j.claimed_by IS NULL AND j.run_at <= now AND j.task = limited[i]
            ORDER BY j.priority DESC, j.run_at, j.id LIMIT take FOR UPDATE SKIP LOCKED
        ), taken AS (
            UPDATE taskyard_jobs j SET claimed_by = claimer, run_at = now, fence = j.fence + 1
            WHERE j.ctid = ANY(ARRAY(SELECT due.ctid FROM due))
            RETURNING j.*
        ) SELECT t.id, t.task, t.status, t.trigger_kind, t.trigger_data::text, t.payload::text,
            t.attempt::bigint, t.attempts::text, t.instance, t.queued_at, t.started_at, t.finished_at,
            t.duration_ms, t.result::text, t.error, t.progress, t.progress_message, t.fence,
            t.max_attempts::bigint, t.priority::bigint, t.run_at,
            (CASE WHEN t.cancel_requested THEN 1 ELSE 0 END)::bigint
            FROM taken t;
        GET DIAGNOSTICS got = ROW_COUNT;
        room := room - got;
    END LOOP;
END $$;
