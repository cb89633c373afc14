// graphile-worker's side of the queue comparison: a burn-down of N no-op jobs added in
// batches (as graphile-worker's own benchmark does), then the add→start latency of jobs
// added one at a time to an idle worker, and the database writes per job. Prints one JSON
// line. Usage: node queue-graphile.mjs DATABASE_URL SCHEMA N CONCURRENCY
import { Logger, run, makeWorkerUtils } from "graphile-worker";
import pg from "pg";

const [connectionString, schema, total, concurrency] = [
  process.argv[2], process.argv[3], Number(process.argv[4]), Number(process.argv[5]),
];
// Quiet: a log line per job would measure the terminal.
const logger = new Logger(() => () => {});
const utils = await makeWorkerUtils({ connectionString, schema, logger });
await utils.migrate();
const stats = new pg.Client({ connectionString });
await stats.connect();
const counters = async () => {
  await stats.query("SELECT pg_stat_force_next_flush()").catch(() => {});
  // Idle backends send their counters after at most 10 s.
  await new Promise((r) => setTimeout(r, 11000));
  const { rows } = await stats.query(
    "SELECT xact_commit::bigint AS commits, (tup_inserted + tup_updated + tup_deleted)::bigint AS rows, " +
      "wal_records::bigint AS wal, wal_bytes::bigint AS wal_bytes " +
      "FROM pg_stat_database, pg_stat_wal WHERE datname = current_database()",
  );
  const [row] = rows;
  return {
    commits: Number(row.commits),
    rows: Number(row.rows),
    wal: Number(row.wal),
    walBytes: Number(row.wal_bytes),
  };
};

for (let i = 0; i < total; i += 1000) {
  const batch = [];
  for (let j = i; j < Math.min(total, i + 1000); j++) batch.push({ identifier: "noop", payload: { n: j } });
  await utils.addJobs(batch);
}

let done = 0;
let allDone;
const finished = new Promise((resolve) => (allDone = resolve));
let latencyDone;
const latencies = [];
const before = await counters();
const began = performance.now();
// The configuration of graphile-worker's own performance page: a local queue and batched
// completions, with the pool one larger than the concurrency.
const runner = await run({
  logger,
  noHandleSignals: true,
  preset: {
    worker: {
      connectionString,
      schema,
      concurrentJobs: concurrency,
      maxPoolSize: concurrency + 1,
      pollInterval: 200,
      localQueue: { size: 500 },
      completeJobBatchDelay: 0,
      failJobBatchDelay: 0,
    },
  },
  taskList: {
    noop: async () => {
      if (++done === total) allDone();
    },
    latency: async (payload) => {
      latencies.push(performance.now() - payload.t);
      latencyDone();
    },
  },
});
await finished;
const seconds = (performance.now() - began) / 1000;
const after = await counters();

// Idle: one job at a time, each added once the previous one started.
for (let i = 0; i < 50; i++) {
  const started = new Promise((resolve) => (latencyDone = resolve));
  await utils.addJob("latency", { t: performance.now() });
  await started;
  await new Promise((r) => setTimeout(r, 20));
}
latencies.sort((a, b) => a - b);
await runner.stop();
await utils.release();
await stats.end();
console.log(JSON.stringify({
  jobs_per_s: total / seconds,
  p50_ms: latencies[Math.floor(latencies.length / 2)],
  p99_ms: latencies[Math.floor(latencies.length * 0.99)],
  commits_per_job: (after.commits - before.commits) / total,
  rows_per_job: (after.rows - before.rows) / total,
  wal_per_job: (after.wal - before.wal) / total,
  wal_bytes_per_job: (after.walBytes - before.walBytes) / total,
}));
process.exit(0);
