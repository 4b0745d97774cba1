// W10 (the events issue's W8): where tagd's events arrive during the benchmark.
//
//   node bench/events_sink.js webhook --port P --secret whsec_...
//   node bench/events_sink.js nats --port P --url nats://127.0.0.1:4222 --corp CORP_ID
//
// `webhook` is the endpoint tagd posts to (POST /hook, answered 204 at once, keep-alive);
// `nats` reads stream TAGD with an ordered JetStream consumer filtered on `tagd.<corp>.>`,
// delivering only messages published after it started (and, when it is stopped, deletes its
// consumer and purges those subjects from the stream, so runs do not pile up in JetStream). Both answer GET /stats on
// their port (JSON), which bench/events.py polls:
//   w1_events      distinct tag.assigned events of the `w1` group, probe users left out
//   first_ms, last_ms   wall-clock arrival (ms since the epoch) of the first and the last
//   events, repeats     every event of the corp / events seen again (same id)
//   other          events that are neither W1's nor the probe's (with an example)
//   probes         {"<user_id>:<number_value>": arrival ms}, the probe users' events
//   bad_signatures probe events whose webhook-signature did not verify (webhook only)
//   cpu_ms         this process's CPU time (user + system), to tell a saturated sink
//   gaps           with ?gaps=1: the times between consecutive W1 events so far (p50, p99,
//                  and the stalls over STALL_MS: how many, how long in all)
// Arrival times are performance.timeOrigin + performance.now(): the wall clock the driver's
// time.time() reads, with sub-millisecond steps.
"use strict";

const http = require("http");
const crypto = require("crypto");
const { performance } = require("perf_hooks");

const PROBE_PREFIX = "99000000"; // bench/events.py's probe users are 99000000<k>
const W1_VARIABLE = "w1";
const STALL_MS = 2;

function args() {
  const [mode, ...rest] = process.argv.slice(2);
  const out = { mode };
  for (let i = 0; i < rest.length; i += 2) out[rest[i].replace(/^--/, "")] = rest[i + 1];
  return out;
}

const now = () => performance.timeOrigin + performance.now();

const stats = {
  ready: false,
  w1_events: 0,
  first_ms: null,
  last_ms: null,
  events: 0,
  repeats: 0,
  other: 0,
  other_example: null,
  bad_signatures: 0,
  probes: {},
};
const seen = new Set();
const gaps = [];

/** Counts one event (its JSON text) that arrived at `at`; `verify` checks a probe's signature. */
function record(text, at, verify) {
  let event;
  try {
    event = JSON.parse(text);
  } catch (e) {
    return;
  }
  if (seen.has(event.id)) {
    stats.repeats += 1;
    return;
  }
  seen.add(event.id);
  stats.events += 1;
  if (event.type !== "tag.assigned" || !event.data) return other(text);
  const user = String(event.data.user_id);
  if (user.startsWith(PROBE_PREFIX)) {
    stats.probes[`${user}:${event.data.number_value}`] = at;
    if (verify && !verify()) stats.bad_signatures += 1;
    return;
  }
  if (event.data.variable_name !== W1_VARIABLE) return other(text);
  stats.w1_events += 1;
  if (stats.first_ms === null) stats.first_ms = at;
  else gaps.push(at - stats.last_ms);
  stats.last_ms = at;
}

function other(text) {
  stats.other += 1;
  if (stats.other_example === null) stats.other_example = text.slice(0, 600);
}

function statsReply(req, res) {
  const brief = req.url.includes("brief");
  const usage = process.cpuUsage();
  const body = { ...stats, cpu_ms: (usage.user + usage.system) / 1000 };
  if (brief) {
    body.probes = Object.keys(stats.probes).length;
  }
  if (req.url.includes("gaps")) {
    const ordered = Float64Array.from(gaps).sort();
    const at = (q) => (ordered.length ? ordered[Math.min(ordered.length - 1, Math.floor(ordered.length * q))] : 0);
    const stalls = gaps.filter((g) => g > STALL_MS);
    body.gaps = {
      n: gaps.length,
      p50_ms: at(0.5),
      p99_ms: at(0.99),
      stalls: stalls.length,
      stalls_ms: stalls.reduce((a, b) => a + b, 0),
      total_ms: gaps.reduce((a, b) => a + b, 0),
    };
  }
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/** Standard Webhooks: v1,base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>")), any of several. */
function signatureValid(secret, headers, body) {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const signed = `${headers["webhook-id"]}.${headers["webhook-timestamp"]}.${body}`;
  const expected = crypto.createHmac("sha256", key).update(signed).digest("base64");
  return String(headers["webhook-signature"] || "")
    .split(" ")
    .some((s) => s === `v1,${expected}`);
}

function serve(port, onPost) {
  const server = http.createServer((req, res) => {
    if (req.method === "GET" && req.url.startsWith("/stats")) return statsReply(req, res);
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const at = now();
      res.writeHead(204);
      res.end();
      if (onPost) onPost(req, Buffer.concat(chunks).toString(), at);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(Number(port), "127.0.0.1");
  return server;
}

async function webhook(opts) {
  serve(opts.port, (req, body, at) => {
    record(body, at, () => signatureValid(opts.secret, req.headers, body));
  });
  stats.ready = true;
}

async function nats(opts) {
  const { connect } = require("@nats-io/transport-node");
  const { jetstream, jetstreamManager, DeliverPolicy } = require("@nats-io/jetstream");
  serve(opts.port, null);
  const nc = await connect({ servers: opts.url.replace(/^nats:\/\//, "") });
  const jsm = await jetstreamManager(nc);
  const subjects = `tagd.${opts.corp}.>`;
  // tagd creates stream TAGD when it starts with --nats-url; wait for it.
  for (let tries = 0; ; tries++) {
    try {
      await jsm.streams.info("TAGD");
      break;
    } catch (e) {
      if (tries > 200) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const consumer = await jetstream(nc).consumers.get("TAGD", {
    filter_subjects: subjects,
    deliver_policy: DeliverPolicy.New,
  });
  const messages = await consumer.consume({ max_messages: 1000 });
  // Leaves nothing behind: the consumer (it would linger 5 minutes) and this run's messages.
  const stop = async () => {
    try {
      const info = await consumer.info(true);
      await jsm.consumers.delete("TAGD", info.name);
    } catch (e) {
      console.error(`events_sink nats: could not delete the consumer: ${e}`);
    }
    try {
      await jsm.streams.purge("TAGD", { filter: subjects });
    } finally {
      process.exit(0);
    }
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  stats.ready = true;
  const decoder = new TextDecoder();
  for await (const m of messages) {
    record(decoder.decode(m.data), now(), null);
  }
}

const opts = args();
const run = { webhook, nats }[opts.mode];
if (!run) {
  console.error("usage: events_sink.js webhook|nats --port P [--secret S] [--url U --corp C]");
  process.exit(2);
}
run(opts).catch((e) => {
  console.error(`events_sink ${opts.mode}: ${e.stack || e}`);
  process.exit(1);
});
