-- Retention deletes by finish time: runs that have not finished need no entry. (On
-- PostgreSQL this version also adds the claim function; SQLite claims under its one
-- writer's lock.)
DROP INDEX taskyard_runs_by_finish;
CREATE INDEX taskyard_runs_by_finish ON taskyard_runs (finished_at) WHERE finished_at IS NOT NULL;
