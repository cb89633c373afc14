-- The keys that the queue's and the history's indexes compare (run ids, task names,
-- statuses, instance names, unique keys) compare as bytes: `COLLATE "C"`. Under a
-- database's locale (even `C.UTF-8`), each comparison goes through the locale's `strcoll`;
-- the btree inserts of claims and ends spent a tenth of the server's time there. Run ids
-- are UUIDs in lowercase hex and compare the same either way, so no order a reader sees
-- changes, except task and instance names in a locale that sorts other than by code point.
-- Changing a column's collation rebuilds the indexes on it; the table itself is not rewritten.
DROP TRIGGER taskyard_jobs_queued ON taskyard_jobs;
DROP TRIGGER taskyard_jobs_cancel ON taskyard_jobs;
ALTER TABLE taskyard_jobs
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN task TYPE TEXT COLLATE "C",
    ALTER COLUMN unique_key TYPE TEXT COLLATE "C",
    ALTER COLUMN claimed_by TYPE TEXT COLLATE "C";
CREATE TRIGGER taskyard_jobs_queued AFTER INSERT OR UPDATE OF claimed_by ON taskyard_jobs
    FOR EACH ROW WHEN (NEW.claimed_by IS NULL) EXECUTE FUNCTION taskyard_notify_queued();
CREATE TRIGGER taskyard_jobs_cancel AFTER UPDATE OF cancel_requested ON taskyard_jobs
    FOR EACH ROW WHEN (NEW.cancel_requested AND NOT OLD.cancel_requested AND NEW.claimed_by IS NOT NULL)
    EXECUTE FUNCTION taskyard_notify_job_cancel();
ALTER TABLE taskyard_runs
    ALTER COLUMN id TYPE TEXT COLLATE "C",
    ALTER COLUMN task TYPE TEXT COLLATE "C",
    ALTER COLUMN status TYPE TEXT COLLATE "C",
    ALTER COLUMN instance TYPE TEXT COLLATE "C";
