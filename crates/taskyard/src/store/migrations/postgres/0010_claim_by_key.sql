-- A claim's update finds the jobs its `due` scan locked by their place in the table (`ctid`),
-- not by key, and returns their columns, which the claim hands back without reading the
-- jobs again. The jobs it takes are those the scan locked (`FOR UPDATE SKIP LOCKED`
-- rechecks them on their newest version), so no one else can have claimed them since. With
-- `claimed_by IS NULL` repeated in the update, PostgreSQL planned it as a bitmap of the
-- whole queue's due index ANDed with the keys': a walk of every queued job per claim
-- (41,295 entries for 256 jobs, 2 ms, with 100,000 queued). A job whose place changed
-- between the scan and the update (it cannot while locked) would be left queued, not lost.
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
    RETURN QUERY SELECT r.id, r.task, r.status, r.trigger_kind, r.trigger_data::text, r.payload::text,
        r.attempt::bigint, r.attempts::text, r.instance, r.queued_at, r.started_at, r.finished_at,
        r.duration_ms, r.result::text, r.error, r.progress, r.progress_message, j.fence,
        j.max_attempts::bigint, j.priority::bigint, j.run_at,
        (CASE WHEN j.cancel_requested THEN 1 ELSE 0 END)::bigint
        FROM unnest(claimed) AS j JOIN taskyard_runs r ON r.id = j.id;
END $$;
