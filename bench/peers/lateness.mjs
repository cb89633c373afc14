// Lateness of JavaScript croner (Nitro's scheduler engine) with many jobs due in the same
// second: N jobs `* * * * * *`, created as Nitro creates its scheduled tasks (a callback,
// no options). Each run notes how many milliseconds after its whole second it started.
// Only the S whole seconds after every job exists count, so the time spent creating jobs
// (which holds up the event loop) is not counted as lateness.
// Prints {"runs": count, "late_ms": [...]}.
// Usage: node lateness.mjs N S
import { Cron } from "croner";

const [n, seconds] = process.argv.slice(2).map(Number);
const now = () => performance.timeOrigin + performance.now();
const runs = [];
const jobs = [];
for (let i = 0; i < n; i++) {
  jobs.push(new Cron("* * * * * *", () => {
    runs.push(now());
  }));
}
const from = Math.ceil(now() / 1000) * 1000;
const until = from + seconds * 1000;
// A run belongs to the second it started in (lateness stays under a second here).
setTimeout(() => {
  for (const job of jobs) job.stop();
  const late = runs
    .filter((at) => at >= from && Math.floor(at / 1000) * 1000 < until)
    .map((at) => at % 1000);
  console.log(JSON.stringify({ runs: late.length, late_ms: late }));
}, until + 1000 - now());
