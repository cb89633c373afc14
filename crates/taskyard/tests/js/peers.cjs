// Next fire times from the JavaScript engines taskyard is compatible with, and `ms` values.
// Usage: node peers.cjs NODE_MODULES_DIR < input.json
// input:  { "cron": [{ "expr", "tz", "from", "n" }], "ms": ["1s", ...] }
// output: { "cron": [{ "croner": {ok|error}, "cronParser": {ok|error} }], "ms": [string|null] }
const dir = process.argv[2];
const { Cron } = require(`${dir}/croner`);
const parser = require(`${dir}/cron-parser`);
const ms = require(`${dir}/ms`);

const input = JSON.parse(require("fs").readFileSync(0, "utf8"));

function attempt(f) {
  try {
    return { ok: f() };
  } catch (e) {
    return { error: String(e && e.message ? e.message : e) };
  }
}

const cron = input.cron.map(({ expr, tz, from, n }) => ({
  croner: attempt(() => {
    const job = new Cron(expr, { timezone: tz, paused: true });
    const times = [];
    let t = new Date(from);
    while (times.length < n) {
      const next = job.nextRun(t);
      if (!next) break;
      times.push(next.toISOString());
      t = next;
    }
    return times;
  }),
  cronParser: attempt(() => {
    const it = parser.parseExpression(expr, { currentDate: new Date(from), tz });
    const times = [];
    while (times.length < n) {
      times.push(it.next().toDate().toISOString());
    }
    return times;
  }),
}));

// `ms` returns undefined for what it cannot parse and throws for an empty string.
const values = input.ms.map((s) => {
  const v = attempt(() => ms(s)).ok;
  // As a string: JSON number parsers need not round-trip every double exactly.
  return v === undefined ? null : String(v);
});

process.stdout.write(JSON.stringify({ cron, ms: values }));
