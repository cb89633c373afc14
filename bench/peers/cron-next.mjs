// Next-occurrence cost of JavaScript croner (Nitro's cron engine), used as Nitro uses it
// (no options: the process's zone, which the caller sets with TZ). For each expression given
// as an argument: the best of 5 rounds of N calls of nextRun from one instant, and the
// answer. Prints {"expr": {"ns": ns_per_call, "next": "ISO instant"}, ...}.
// Usage: TZ=UTC node cron-next.mjs N FROM EXPR...
import { Cron } from "croner";

const [n, from, ...expressions] = process.argv.slice(2);
const calls = Number(n);
const start = new Date(from);
const result = {};
for (const expr of expressions) {
  const job = new Cron(expr, { paused: true });
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) {
      job.nextRun(start);
    }
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / calls);
  }
  result[expr] = { ns: best, next: job.nextRun(start).toISOString() };
}
console.log(JSON.stringify(result));
