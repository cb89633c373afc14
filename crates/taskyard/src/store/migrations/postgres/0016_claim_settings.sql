-- A claim's planner settings belong to the claim function, not to the sessions that call
-- it: a pooler (PgBouncer, the pooled endpoints of managed PostgreSQL) refuses settings at
-- a session's start, and those sessions would claim without them. The claim walks the
-- queue's index in its order, never sorting the queue, even while the table's statistics
-- still describe the empty table of a minute ago (a claim of 64 among 50,000 queued runs:
-- 80 ms sorted, 2 ms walked), and finds its rows by key.
ALTER FUNCTION taskyard_claim(TEXT, BIGINT, INTEGER, TEXT[], TEXT[], INTEGER[], TEXT[])
    SET enable_sort = off
    SET enable_seqscan = off;
