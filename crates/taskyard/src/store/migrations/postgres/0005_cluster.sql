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
-- Wake-ups pushed to every instance: a durable run is queued, or a cancel is asked for.
CREATE FUNCTION taskyard_notify_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('taskyard_queue', NEW.task);
    RETURN NULL;
END $$;
CREATE TRIGGER taskyard_runs_queued AFTER INSERT OR UPDATE OF status ON taskyard_runs
    FOR EACH ROW WHEN (NEW.durable AND NEW.status = 'queued') EXECUTE FUNCTION taskyard_notify_queued();
CREATE FUNCTION taskyard_notify_cancel() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('taskyard_cancel', NEW.instance || ' ' || NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER taskyard_runs_cancel AFTER UPDATE OF cancel_requested ON taskyard_runs
    FOR EACH ROW WHEN (NEW.cancel_requested AND NOT OLD.cancel_requested) EXECUTE FUNCTION taskyard_notify_cancel();
