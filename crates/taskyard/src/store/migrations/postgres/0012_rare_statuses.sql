-- The history's index by status leaves out succeeded runs. They are most runs, and every
-- run that ends well changed its status: indexed, that was one more index entry written at
-- every end (a non-HOT update writes an entry into each index). A page filtered by
-- `succeeded` walks the newest runs instead, where succeeded runs are found at once; the
-- other statuses, rarer, keep their index. Pages name the status in their SQL, so that the
-- planner can see that a filtered page matches the index's condition.
DROP INDEX taskyard_runs_by_status;
CREATE INDEX taskyard_runs_by_status ON taskyard_runs (status, id) WHERE status <> 'succeeded';
