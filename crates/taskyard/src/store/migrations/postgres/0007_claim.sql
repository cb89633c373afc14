-- A claim in one round trip: the tasks without a limit together, in the queue's order,
-- then each task with a limit under a lock of its own, counting its running runs after
-- the lock is held (each statement of a function reads the rows committed before it
-- began). `ended` are the caller's runs that ended with their ends on the way: not
-- counted as running, whether or not their ends are in yet. Returns the claimed rows.
CREATE FUNCTION taskyard_claim(
    claimer TEXT, now BIGINT, room INTEGER,
    free TEXT[], limited TEXT[], limits INTEGER[], ended TEXT[]
) RETURNS SETOF taskyard_runs LANGUAGE plpgsql AS $$
DECLARE
    got INTEGER;
    take INTEGER;
BEGIN
    IF cardinality(free) > 0 AND room > 0 THEN
        RETURN QUERY WITH due AS (
            SELECT id FROM taskyard_runs
            WHERE durable AND status = 'queued' AND run_at <= now AND task = ANY(free)
            ORDER BY priority DESC, run_at, id LIMIT room FOR UPDATE SKIP LOCKED
        ), claimed AS (
            UPDATE taskyard_runs SET status = 'running', instance = claimer,
                started_at = COALESCE(started_at, now), run_at = now, fence = fence + 1
            WHERE id = ANY(ARRAY(SELECT id FROM due)) AND status = 'queued'
            RETURNING taskyard_runs.*
        ) SELECT * FROM claimed;
        GET DIAGNOSTICS got = ROW_COUNT;
        room := room - got;
    END IF;
    FOR i IN 1 .. COALESCE(cardinality(limited), 0) LOOP
        EXIT WHEN room <= 0;
        -- Nothing due: neither the lock nor the count.
        CONTINUE WHEN NOT EXISTS (
            SELECT 1 FROM taskyard_runs
            WHERE durable AND status = 'queued' AND run_at <= now AND task = limited[i]
        );
        PERFORM pg_advisory_xact_lock(hashtext('taskyard:' || limited[i]));
        -- The claim above for one task: `task = …` walks the per-task index of the queue.
        SELECT GREATEST(0, LEAST(room, limits[i] - COUNT(*))) INTO take
            FROM taskyard_runs
            WHERE task = limited[i] AND durable AND status = 'running' AND id <> ALL(ended);
        CONTINUE WHEN take = 0;
        RETURN QUERY WITH due AS (
            SELECT id FROM taskyard_runs
            WHERE durable AND status = 'queued' AND run_at <= now AND task = limited[i]
            ORDER BY priority DESC, run_at, id LIMIT take FOR UPDATE SKIP LOCKED
        ), claimed AS (
            UPDATE taskyard_runs SET status = 'running', instance = claimer,
                started_at = COALESCE(started_at, now), run_at = now, fence = fence + 1
            WHERE id = ANY(ARRAY(SELECT id FROM due)) AND status = 'queued'
            RETURNING taskyard_runs.*
        ) SELECT * FROM claimed;
        GET DIAGNOSTICS got = ROW_COUNT;
        room := room - got;
    END LOOP;
END $$;
-- Retention deletes by finish time: runs that have not finished need no entry.
DROP INDEX taskyard_runs_by_finish;
CREATE INDEX taskyard_runs_by_finish ON taskyard_runs (finished_at) WHERE finished_at IS NOT NULL;
