#!/usr/bin/env bash
# The durable queue's end inside PostgreSQL, without a client: a procedure claims jobs 64
# at a time (the claim function's own statement) and ends them 128 at a time, committing
# after each, on scratch schemas built from the store's migrations up to 12. Three variants
# of the end, in alternating rounds:
#   update  migration 12: the run's record is written when it is queued, and updated at
#           its end;
#   hot     the same, without the indexes that name the status or the finish time, and
#           the records' pages 40 % full, so that the end's update can be HOT (a bound,
#           not a design: the history's pages need those indexes);
#   insert  the queued run kept in its job row, its record inserted at its end (what
#           migration 13 made of the store).
# Prints the server's µs a job for the claims and for the ends (synchronous_commit off
# for the procedure, so the times are the server's work, not the disk's flushes).
# Usage: bash bench/queue-ends/run.sh [JOBS] [ROUNDS]   (PostgreSQL from $DATABASE_URL or
# the local one)
set -euo pipefail
cd "$(dirname "$0")/../.."
jobs=${1:-20000}
rounds=${2:-2}
url=${DATABASE_URL:-postgres://$(id -un)@127.0.0.1:5432/test}
migrations=crates/taskyard/src/store/migrations/postgres
sql() { psql -q -X -v ON_ERROR_STOP=1 "$url" "$@"; }

schema() { # variant
  local s=queue_ends_$1
  {
    echo "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $s CASCADE; CREATE SCHEMA $s; SET search_path = $s;"
    cat "$migrations"/00{0[1-9],1[0-2]}_*.sql
    if [ "$1" = insert ]; then
      cat <<SQL
ALTER TABLE taskyard_jobs ADD COLUMN trigger_kind TEXT NOT NULL DEFAULT 'manual',
    ADD COLUMN trigger_data JSONB NOT NULL DEFAULT '{}', ADD COLUMN payload JSONB NOT NULL DEFAULT '{}',
    ADD COLUMN queued_at BIGINT NOT NULL DEFAULT 0;
INSERT INTO taskyard_jobs (id, task, priority, run_at, max_attempts, fence, queued_at)
    SELECT lpad(to_hex(g), 8, '0') || '-0000-7000-8000-' || lpad(to_hex(g * 7919 % 1000003), 12, '0'),
        'noop', 0, 1000 + g, 1, 0, 1000 + g FROM generate_series(1, $jobs) g;
SQL
    else
      cat <<SQL
INSERT INTO taskyard_runs (id, task, status, trigger_kind, trigger_data, payload, attempt, attempts,
    instance, queued_at, durable, priority, run_at, max_attempts, fence)
    SELECT lpad(to_hex(g), 8, '0') || '-0000-7000-8000-' || lpad(to_hex(g * 7919 % 1000003), 12, '0'),
        'noop', 'queued', 'manual', '{}', '{}', 0, '[]', 'bench', 1000 + g, TRUE, 0, 1000 + g, 1, 0
    FROM generate_series(1, $jobs) g;
INSERT INTO taskyard_jobs (id, task, priority, run_at, max_attempts, fence)
    SELECT id, task, 0, run_at, 1, 0 FROM taskyard_runs;
SQL
    fi
    if [ "$1" = hot ]; then
      echo "DROP INDEX taskyard_runs_by_finish, taskyard_runs_by_status, taskyard_runs_unfinished,
          taskyard_runs_cancel, taskyard_runs_unfinished_local;
          ALTER TABLE taskyard_runs SET (fillfactor = 40);"
    fi
  } | sql
  [ "$1" = hot ] && sql -c "SET search_path = $s" -c "VACUUM FULL taskyard_runs"
  sql -c "SET search_path = $s" -c "VACUUM ANALYZE taskyard_runs" -c "VACUUM ANALYZE taskyard_jobs"
}

# The ends' statement of each variant, over the arrays `ids` and `fences` (k rows): the
# store's own (`pg_batch.rs`) for `update` and `hot`, and for `insert` the same with the
# record inserted from its job.
ends_values="WITH v AS (SELECT * FROM UNNEST(ids, fences, array_fill('succeeded'::text, ARRAY[k]),
    array_fill(1::int8, ARRAY[k]), array_fill('[{\"attempt\":1}]'::text, ARRAY[k]),
    array_fill('bench'::text, ARRAY[k]), array_fill(5::int8, ARRAY[k]), array_fill(6::int8, ARRAY[k]),
    array_fill(1::int8, ARRAY[k]), array_fill('null'::text, ARRAY[k]))
    AS v(id, fence, status, attempt, attempts, instance, started_at, finished_at, duration_ms, result)),
  ended AS (DELETE FROM taskyard_jobs j
    WHERE j.id = ANY(ARRAY(SELECT v.id FROM v WHERE v.status NOT IN ('queued', 'running')))
    AND EXISTS (SELECT 1 FROM v WHERE v.id = j.id AND v.fence = j.fence) RETURNING j.*)"
update_end="$ends_values,
  live AS (SELECT j.id, j.fence FROM taskyard_jobs j JOIN v ON j.id = v.id AND j.fence = v.fence
    WHERE v.status IN ('queued', 'running') FOR UPDATE OF j),
  fenced AS (SELECT id, fence FROM ended UNION ALL SELECT id, fence FROM live)
  UPDATE taskyard_runs SET status = v.status, attempt = v.attempt, attempts = v.attempts::jsonb,
    instance = v.instance, started_at = v.started_at, finished_at = v.finished_at,
    duration_ms = v.duration_ms, result = v.result::jsonb, fence = v.fence
  FROM v JOIN fenced f ON f.id = v.id AND f.fence = v.fence WHERE taskyard_runs.id = v.id"
insert_end="$ends_values
  INSERT INTO taskyard_runs (id, task, status, trigger_kind, trigger_data, payload, attempt, attempts,
    instance, queued_at, started_at, finished_at, duration_ms, result, durable, priority, max_attempts, fence)
  SELECT v.id, e.task, v.status, e.trigger_kind, e.trigger_data, e.payload, v.attempt, v.attempts::jsonb,
    v.instance, e.queued_at, v.started_at, v.finished_at, v.duration_ms, v.result::jsonb, TRUE,
    e.priority, e.max_attempts, v.fence
  FROM v JOIN ended e ON e.id = v.id AND e.fence = v.fence"

burn() { # variant
  local end=$update_end
  [ "$1" = insert ] && end=$insert_end
  sql -c "SET search_path = queue_ends_$1" -c "SET synchronous_commit = off" -c "
CREATE PROCEDURE burn() LANGUAGE plpgsql AS \$\$
DECLARE
  got TEXT[]; got_fences BIGINT[]; ids TEXT[] := '{}'; fences BIGINT[] := '{}'; k INT;
  t0 TIMESTAMPTZ; claims INTERVAL := '0'; ends INTERVAL := '0'; n INT := 0;
BEGIN
  LOOP
    t0 := clock_timestamp();
    WITH due AS (
      SELECT j.ctid FROM taskyard_jobs j WHERE j.claimed_by IS NULL AND j.run_at <= 1e12
        AND j.task = ANY(ARRAY['noop']) ORDER BY j.priority DESC, j.run_at, j.id LIMIT 64 FOR UPDATE SKIP LOCKED
    ), taken AS (
      UPDATE taskyard_jobs j SET claimed_by = 'bench', run_at = 1e12, fence = j.fence + 1
      WHERE j.ctid = ANY(ARRAY(SELECT due.ctid FROM due)) RETURNING j.id, j.fence
    ) SELECT array_agg(taken.id), array_agg(taken.fence) INTO got, got_fences FROM taken;
    COMMIT;
    claims := claims + (clock_timestamp() - t0);
    IF got IS NOT NULL THEN ids := ids || got; fences := fences || got_fences; n := n + cardinality(got); END IF;
    k := cardinality(ids);
    IF k >= 128 OR (got IS NULL AND k > 0) THEN
      t0 := clock_timestamp();
      $end;
      COMMIT;
      ends := ends + (clock_timestamp() - t0);
      ids := '{}'; fences := '{}';
    END IF;
    EXIT WHEN got IS NULL;
  END LOOP;
  RAISE NOTICE '% jobs: claims % µs a job, ends % µs a job', n,
    round(extract(epoch FROM claims) * 1e6 / n, 1), round(extract(epoch FROM ends) * 1e6 / n, 1);
END \$\$" -c "CALL burn()" 2>&1 | sed -n "s/^NOTICE: */$1: /p"
}

for _ in $(seq "$rounds"); do
  for variant in update hot insert; do
    schema "$variant"
    burn "$variant"
  done
done
# KEEP=1 keeps the schemas, to read their statistics.
[ -n "${KEEP:-}" ] || for variant in update hot insert; do
  sql -c "SET client_min_messages = warning" -c "DROP SCHEMA IF EXISTS queue_ends_$variant CASCADE"
done
