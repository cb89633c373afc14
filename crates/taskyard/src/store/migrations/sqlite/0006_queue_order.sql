-- The queue's order (highest priority first, then due time, then id) walked in an index
-- instead of sorted on every claim: across the tasks an instance runs, and per task for
-- the tasks with a limit of running runs.
DROP INDEX taskyard_runs_due;
CREATE INDEX taskyard_runs_due ON taskyard_runs (priority DESC, run_at, id)
    WHERE durable AND status = 'queued';
CREATE INDEX taskyard_runs_due_by_task ON taskyard_runs (task, priority DESC, run_at, id)
    WHERE durable AND status = 'queued';
-- The in-process runs of dead instances, found by the lease keeper every second without
-- reading the durable queue.
CREATE INDEX taskyard_runs_unfinished_local ON taskyard_runs (instance)
    WHERE status IN ('queued', 'running') AND NOT durable;
