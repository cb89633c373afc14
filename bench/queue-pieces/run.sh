#!/usr/bin/env bash
# The durable queue's pieces inside PostgreSQL, each alone and without a client: on a
# scratch schema built from the store's migrations, JOBS queued no-op jobs, then CYCLES
# claims of 1,000 and the ends of the 1,000 claimed, each statement timed by the server's
# clock. Four variants, each on a fresh fill:
#   store       the claim function (`taskyard_claim`) and the store's batch of ends
#               (deletes the jobs, inserts the records; read from `pg_batch.rs`);
#   no-record   the same ends without the records' insert;
#   bare        the claim's update returning ids only, and a bare delete of the ids;
#   bare-ctid   the same, the delete finding the rows by `ctid` instead of by key.
# Prints the median ms a claim of 1,000 and ms their ends, per variant.
# Usage: bash bench/queue-pieces/run.sh [JOBS] [CYCLES]   (PostgreSQL from $DATABASE_URL or
# the local one)
set -euo pipefail
cd "$(dirname "$0")/../.."
jobs=${1:-200000}
cycles=${2:-30}
url=${DATABASE_URL:-postgres://$(id -un)@127.0.0.1:5432/test}
schema=queue_pieces
sql() { PGOPTIONS="-c client_min_messages=warning" psql -q -X -v ON_ERROR_STOP=1 "$url" "$@"; }

# The store's own batch of ends, as `pg_batch.rs` writes it.
store_ends=$(python3 - <<'PY'
import re
src = open("crates/taskyard/src/store/pg_batch.rs").read()
block = src[src.index("static PUT_CLAIMED"):]
block = block[:block.index("});")]
text = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', block, re.S))
text = re.sub(r"\\\n\s*", "", text)
columns = ("id, task, status, trigger_kind, trigger_data, payload, attempt, attempts, instance, queued_at, "
           "started_at, finished_at, duration_ms, result, error, progress, progress_message")
print(text.replace("{COLUMNS}", columns))
PY
)
no_record=${store_ends/records AS (INSERT INTO taskyard_runs*RETURNING id, fence), live/records AS (SELECT e.id, e.fence FROM ended e), live}
# The bare deletes take the same 13 parameters, unused but for the ids (or the ctids, as $13).
unused='$3::text[] IS NOT NULL AND $4::int8[] IS NOT NULL AND $5::text[] IS NOT NULL AND $6::text[] IS NOT NULL AND $7::int8[] IS NOT NULL AND $8::int8[] IS NOT NULL AND $9::int8[] IS NOT NULL AND $10::text[] IS NOT NULL AND $11::text[] IS NOT NULL AND $12::float8[] IS NOT NULL'
bare="DELETE FROM taskyard_jobs j WHERE j.id = ANY(\$1) AND \$2::int8[] IS NOT NULL AND $unused AND \$13::text[] IS NOT NULL"
bare_ctid="DELETE FROM taskyard_jobs j WHERE j.ctid = ANY(\$13::tid[]) AND \$1::text[] IS NOT NULL AND \$2::int8[] IS NOT NULL AND $unused"
claim_function="SELECT count(*) FROM taskyard_claim('a', 9999999999, 1000, '{noop}', '{}', '{}', '{}')"
claim_ids="WITH due AS (SELECT j.ctid FROM taskyard_jobs j WHERE j.claimed_by IS NULL AND j.run_at <= 9999999999 AND j.task = 'noop' ORDER BY j.priority DESC, j.run_at, j.id LIMIT 1000 FOR UPDATE SKIP LOCKED), taken AS (UPDATE taskyard_jobs j SET claimed_by = 'a', run_at = 9999999999, fence = j.fence + 1 WHERE j.ctid = ANY(ARRAY(SELECT ctid FROM due)) RETURNING j.id) SELECT count(*) FROM taken"

{
  echo "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema; SET search_path = $schema;"
  cat crates/taskyard/src/store/migrations/postgres/*.sql
} | sql >/dev/null

measure() { # name, claim statement, ends statement
  sql <<SQL
SET search_path = $schema;
TRUNCATE taskyard_jobs, taskyard_runs;
INSERT INTO taskyard_jobs (id, task, priority, run_at, max_attempts, fence, status, trigger_kind, trigger_data,
    payload, attempt, attempts, instance, queued_at)
    SELECT '01a236f2-089e-7000-8000-' || lpad(to_hex(n), 12, '0'), 'noop', 0, 1000 + n, 1, 0, 'queued', 'manual',
        '{}', '{"n": 1}', 1, '[]', 'a', 1000 + n FROM generate_series(1, $jobs) n;
VACUUM ANALYZE taskyard_jobs;
CHECKPOINT;
SQL
  {
    cat <<SQL
SET search_path = $schema;
SET enable_seqscan = off;
CREATE TEMP TABLE timings (claim_ms float8, ends_ms float8);
PREPARE ends(text[], int8[], text[], int8[], text[], text[], int8[], int8[], int8[], text[], text[], float8[], text[]) AS $3;
SELECT array_fill('succeeded'::text, ARRAY[1000])::text AS st, array_fill(1::int8, ARRAY[1000])::text AS att,
    array_fill('[{"attempt":1,"status":"succeeded","started_at":1764790000000,"finished_at":1764790000001}]'::text,
        ARRAY[1000])::text AS atts,
    array_fill('a'::text, ARRAY[1000])::text AS inst, array_fill(1764790000000::int8, ARRAY[1000])::text AS sa,
    array_fill(1764790000001::int8, ARRAY[1000])::text AS fa, array_fill(1::int8, ARRAY[1000])::text AS dur,
    array_fill('null'::text, ARRAY[1000])::text AS res, array_fill(NULL::float8, ARRAY[1000])::text AS nf \gset
SQL
    for _ in $(seq "$cycles"); do
      cat <<SQL
SELECT clock_timestamp() AS c0 \gset
$2 \g /dev/null
SELECT clock_timestamp() AS c1 \gset
SELECT array_agg(id)::text AS ids, array_agg(fence)::text AS fences, array_agg(ctid)::text AS ctids
    FROM (SELECT id, fence, ctid FROM taskyard_jobs WHERE claimed_by = 'a' LIMIT 1000) b \gset
SELECT clock_timestamp() AS c2 \gset
EXECUTE ends(:'ids', :'fences', :'st', :'att', :'atts', :'inst', :'sa', :'fa', :'dur', :'res', NULL, :'nf', :'ctids') \g /dev/null
SELECT clock_timestamp() AS c3 \gset
INSERT INTO timings VALUES (extract(epoch FROM :'c1'::timestamptz - :'c0'::timestamptz) * 1000,
    extract(epoch FROM :'c3'::timestamptz - :'c2'::timestamptz) * 1000);
SQL
    done
    echo "SELECT '$1', round(percentile_cont(0.5) WITHIN GROUP (ORDER BY claim_ms)::numeric, 2), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ends_ms)::numeric, 2) FROM timings;"
  } | sql -At -F ' '
}

echo "variant claim-ms-per-1000 ends-ms-per-1000"
measure store "$claim_function" "$store_ends"
measure no-record "$claim_function" "$no_record"
measure bare "$claim_ids" "$bare"
measure bare-ctid "$claim_ids" "$bare_ctid"
sql -c "DROP SCHEMA $schema CASCADE"
