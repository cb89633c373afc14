// `GET /bench/run-task?n=N`: N sequential runTask calls of the no-op task, timed in-process.
export default defineEventHandler(async (event) => {
  const n = Number(getQuery(event).n ?? 100000);
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    await runTask("noop", { payload: {} });
  }
  const ns = Number(process.hrtime.bigint() - start);
  return { runs: n, ns_per_run: ns / n, runs_per_s: n / (ns / 1e9) };
});
