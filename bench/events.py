"""W10 (the events issue's W8; W8 of this suite is label search): what delivering change events
costs W1's durable single assigns, and whether the events keep up with them.

In one run, on the backend's tagd:
1. W1's load (`bench/assign.lua`, wrk 2 threads, 64 connections) on tagd as W1 runs it: no
   webhook endpoint, no `--nats-url`;
2. tagd restarted with `--webhook-allow-private --nats-url nats://127.0.0.1:4222`, one
   webhook endpoint (every event type) at a local receiver, and an ordered JetStream consumer
   of stream `TAGD` filtered on `tagd.<corp_id>.>` (this run's organization only, messages
   published after it started only); both are `bench/events_sink.js` (Node, keep-alive,
   answers 204 at once). The same W1 load again.

During both loads a probe assigns a fresh number to one of its own users (`99000000<k>`, in
W1's group) every 50 ms, one request at a time, and notes when its HTTP 200 arrived (the write
is acknowledged: committed). The receiver and the consumer note when each event arrives; the
probe users' events are matched by (user_id, number_value). Lag = arrival - acknowledgement,
on the same wall clock (one machine).

Definitions:
- writes/s: wrk's requests / its duration (W1's own figure), with events.
- events/s of a sink, under load: the W1 events (tag.assigned of group `w1`, not the probe's,
  each event id once) that arrived while the load ran, divided by the time from the first of
  them to arrive until the load's end (wrk returning). When delivery keeps up, that window
  is the load's shifted by the lag and events/s equals writes/s; when it falls behind, it is
  the rate delivery sustained under the load. (The log also gives the rate from the first
  event to the last, the tail after the load included, when the CPU is no longer shared.)
- events behind: acknowledged writes less the W1 events that had arrived when wrk returned.
- the end: after the load a last probe write (the fence, a second after wrk stopped, so after
  every write of the load); each destination delivers in version order, so once the fence's
  event arrived, every W1 event has: the suite waits for it (5 loads' time at most).
- lag p50 / p99: over the probe's events of the loaded phase (20 a second); an event that
  never arrived counts as infinitely late. The log also gives the lag with no load (2 s of
  probes before it): the delivery path alone.

tagd publishes an organization's whole change log to NATS the first time it runs with
`--nats-url` (the position of sink `nats` starts at 0). That backlog (W3's 10,000,000 import
entries in a full run) is not what W10 measures: before step 2, with tagd stopped, the suite
sets every organization's `nats` position to its log head, as if NATS had always been on.
"""

import json
import os
import sqlite3
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
NATS_URL = os.environ.get("TAGD_BENCH_NATS_URL", "nats://127.0.0.1:4222")
WEBHOOK_PORT, NATS_SINK_PORT = 18093, 18094
PROBE_USERS = [f"99000000{k}" for k in range(1, 5)]
PROBE_EVERY = 0.05
LAG_TARGET_MS = 250


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


class Sink:
    """One bench/events_sink.js process and its /stats."""

    def __init__(self, mode, port, work, *args):
        self.mode, self.port = mode, port
        self.log = open(work / f"events-sink-{mode}.log", "a")
        self.process = subprocess.Popen(["node", str(BENCH / "events_sink.js"), mode, "--port", str(port), *args],
                                        stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.stats(brief=True)["ready"]:
                    break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"W10: the {mode} sink did not start (see {self.log.name})")
            time.sleep(0.05)

    def stats(self, brief=False, gaps=False):
        url = f"http://127.0.0.1:{self.port}/stats?" + ("brief=1&" if brief else "") + ("gaps=1" if gaps else "")
        return json.loads(urllib.request.urlopen(url, timeout=10).read())

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


class Probe:
    """Assigns 1, 2, 3... to the probe users in turn, one request at a time, every PROBE_EVERY
    seconds, and keeps (key, acknowledged at) where key is what the sinks report."""

    def __init__(self, tagd, group):
        self.tagd, self.group = tagd, group
        self.headers = {"authorization": f"Bearer {tagd.token}", "x-app-id": tagd.app_id}
        self.sent = 0
        self.acked = []

    def assign(self):
        self.sent += 1
        user = PROBE_USERS[self.sent % len(PROBE_USERS)]
        answer = self.tagd.call("POST", "/api/v5/entity/user/tags/assign", {
            "corp_id": self.tagd.corp_id, "tags_group_id": self.group, "user_id": user,
            "value": str(self.sent)}, self.headers)
        acked = time.time()
        if answer.get("code") != 0:
            raise RuntimeError(f"W10 probe: {answer}")
        return f"{user}:{self.sent}", acked

    def run_until(self, done):
        while not done.is_set():
            started = time.monotonic()
            self.acked.append(self.assign())
            time.sleep(max(0.0, PROBE_EVERY - (time.monotonic() - started)))


def loaded(wrk, base, duration, env, probe, at_end=lambda: None):
    """W1's load with the probe beside it: (wrk's summary, load start, load end, at_end()),
    times on the wall clock; `at_end` runs as soon as wrk returns."""
    done = threading.Event()
    summary, end = {}, {}

    def load():
        try:
            summary.update(wrk("assign.lua", base, duration, env))
            end["time"] = time.time()
            end["seen"] = at_end()
        finally:
            done.set()

    start = time.time()
    thread = threading.Thread(target=load)
    thread.start()
    probe.run_until(done)
    thread.join()
    if not summary:
        raise RuntimeError("W10: wrk failed")
    return summary, start, end["time"], end["seen"]


def lags_ms(acked, probes):
    """Each probe's lag in ms (infinite when its event never arrived)."""
    return [probes[key] - at * 1000 if key in probes else float("inf") for key, at in acked]


def position_nats_at_head(tagd, backend, work, psql):
    """Every organization's `nats` position at its log head (tagd stopped)."""
    upsert = ("INSERT INTO event_sinks (org_id, sink, delivered_version) VALUES ({org}, 'nats', {head}) "
              "ON CONFLICT (org_id, sink) DO UPDATE SET delivered_version = excluded.delivered_version, "
              "lease_owner = NULL, lease_until = NULL")
    if backend == "sqlite":
        with sqlite3.connect(str(work / "tagd.db")) as db:
            for (org,) in db.execute("SELECT id FROM organizations").fetchall():
                head = db.execute("SELECT MAX(version) FROM change_log WHERE org_id = ?", (org,)).fetchone()[0]
                db.execute(upsert.format(org=org, head=head or 0))
        return
    orgs = psql("-c", "SELECT id FROM organizations", schema="bench_tagd").stdout.split()
    for org in orgs:
        head = psql("-c", f"SELECT COALESCE(MAX(version), 0) FROM change_log WHERE org_id = {org}",
                    schema="bench_tagd").stdout.strip()
        psql("-c", upsert.format(org=org, head=head), schema="bench_tagd")


def wait_for_probe(probe, sinks, seconds=20):
    """One probe write, then wait until every sink received its event: delivery is live."""
    key, _ = probe.assign()
    deadline = time.monotonic() + seconds
    while True:
        waiting = [sink.mode for sink in sinks if key not in sink.stats()["probes"]]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"W10: the first probe event did not reach the {' and the '.join(waiting)} "
                               f"sink in {seconds} s")
        time.sleep(0.05)


def drain(probe, sinks, cap):
    """After the load: one more probe write (the fence), then waits until every sink received
    its event (all events before it arrived: delivery is in version order), `cap` s at most."""
    time.sleep(1.0)  # the load's last requests (in flight when wrk stopped) are answered
    fence, _ = probe.assign()
    deadline = time.monotonic() + cap
    waiting = list(sinks)
    while waiting and time.monotonic() < deadline:
        waiting = [sink for sink in waiting if fence not in sink.stats()["probes"]]
        time.sleep(0.1)
    return [sink.mode for sink in waiting]


def log_endpoint(tagd, v5, webhook_id, backend, log):
    """The endpoint's state as tagd shows it, and its failed attempts among the newest 100."""
    query = f"corp_id={tagd.corp_id}"
    rows = tagd.call("GET", f"/api/v5/webhooks/list?{query}", headers=v5)["data"]["rows"]
    row = next((r for r in rows if r["webhook_id"] == webhook_id), {})
    attempts = tagd.call("GET", f"/api/v5/webhooks/deliveries?{query}&webhook_id={webhook_id}&limit=100",
                         headers=v5)["data"]["rows"]
    failed = [a for a in attempts if a.get("error")]
    log(f"W10 {backend} webhook endpoint: delivered_version {row.get('delivered_version')}, failures "
        f"{row.get('failures')}, next_attempt_at {row.get('next_attempt_at')}, enabled {row.get('enabled')}; "
        f"{len(failed)} failed of the newest {len(attempts)} attempts"
        + (f", e.g. version {failed[0]['version']}: {failed[0]['error']}" if failed else ""))


def run(tagd, backend, work, duration, env, base, wrk, sh, psql, tagd_binary, log):
    """{with_rps, without_rps, writes_p50_ms, <sink>: {rate, lag_p50_ms, lag_p99_ms, ...}}."""
    group = tagd.groups["w1"]
    probes = work / "w10_probe_users.csv"
    probes.write_text("user_id,variable_name,value\n" + "".join(f"{u},w1,0\n" for u in PROBE_USERS))
    sh([str(tagd_binary), "--database", tagd.database, "import", "--corp-id", tagd.corp_id,
        "--progress-every", "0", str(probes)])

    # 1. Without events: tagd as W1 runs it.
    tagd.start()
    try:
        # As in W1 after W4: the index holds the organization before the load (it is loaded
        # again at each start, and would otherwise load during it).
        tagd.wait_for_index()
        plain, _, _, _ = loaded(wrk, base, duration, env, Probe(tagd, group))
    finally:
        tagd.stop()
    log(f"W10 {backend}: without events {plain['rps']:.0f} req/s, p50 {plain['p50_ms']:.1f} ms, "
        f"p99 {plain['p99_ms']:.1f} ms")

    # 2. With a webhook endpoint and NATS.
    position_nats_at_head(tagd, backend, work, psql)
    tagd.start("--webhook-allow-private", "--nats-url", NATS_URL)
    sinks = []
    try:
        tagd.wait_for_index()
        v5 = {"authorization": f"Bearer {tagd.token}", "x-app-id": tagd.app_id}
        created = tagd.call("POST", "/api/v5/webhooks/create", {
            "corp_id": tagd.corp_id, "url": f"http://127.0.0.1:{WEBHOOK_PORT}/hook", "event_types": [],
            "description": "bench W10"}, v5)
        if created.get("code") != 0:
            raise RuntimeError(f"W10: webhooks/create answered {created}")
        sinks.append(Sink("webhook", WEBHOOK_PORT, work, "--secret", created["data"]["secret"]))
        sinks.append(Sink("nats", NATS_SINK_PORT, work, "--url", NATS_URL, "--corp", tagd.corp_id))
        probe = Probe(tagd, group)
        wait_for_probe(probe, sinks)
        # The lag with no load (the pipeline alone): 2 s of probes.
        probe.acked.clear()
        idle_done = threading.Event()
        threading.Timer(2.0, idle_done.set).start()
        probe.run_until(idle_done)
        time.sleep(0.5)
        idle = {sink.mode: lags_ms(probe.acked, sink.stats()["probes"]) for sink in sinks}
        probe.acked.clear()
        before = {sink.mode: sink.stats(brief=True) for sink in sinks}
        summary, load_start, load_end, at_end = loaded(
            wrk, base, duration, env, probe, lambda: {sink.mode: sink.stats(brief=True, gaps=True) for sink in sinks})
        # Every acknowledged write is one event (a refused one is none: wrk's line says so).
        expected = int(summary["requests"] - summary.get("non2xx", 0))
        late = drain(probe, sinks, cap=max(60, 5 * duration))
        if late:
            log(f"W10 {backend}: the fence's event did not reach the {' and the '.join(late)} sink; "
                "the numbers count what arrived")
        after = {sink.mode: sink.stats() for sink in sinks}
        log_endpoint(tagd, v5, created["data"]["webhook_id"], backend, log)
        tagd.call("POST", "/api/v5/webhooks/delete", {
            "corp_id": tagd.corp_id, "webhook_id": created["data"]["webhook_id"]}, v5)
    finally:
        for sink in sinks:
            sink.stop()
        tagd.stop()

    if len({stats["w1_events"] for stats in after.values()}) > 1:
        log(f"W10 {backend}: the sinks received different numbers of W1 events: "
            + ", ".join(f"{mode} {stats['w1_events']:,}" for mode, stats in after.items()))
    out = {"with_rps": summary["rps"], "without_rps": plain["rps"], "writes_p50_ms": summary["p50_ms"]}
    log(f"W10 {backend}: with events {summary['rps']:.0f} req/s ({expected:,} acknowledged in "
        f"{load_end - load_start:.1f} s), p50 {summary['p50_ms']:.1f} ms, p99 {summary['p99_ms']:.1f} ms; "
        f"{len(probe.acked)} probes")
    for mode, stats in after.items():
        ended = at_end[mode]
        # events/s: the W1 events that arrived while the load ran, over the time from the first
        # of them to the load's end (see the module's docstring).
        under_load = ended["w1_events"] / (load_end - ended["first_ms"] / 1000) if ended["w1_events"] else 0.0
        arrived = stats["w1_events"]
        first_to_last = (arrived / ((stats["last_ms"] - stats["first_ms"]) / 1000)
                         if arrived > 1 and stats["last_ms"] > stats["first_ms"] else 0.0)
        until = stats["last_ms"] / 1000 if arrived else load_end
        lags = lags_ms(probe.acked, stats["probes"])
        missing = sum(1 for lag in lags if lag == float("inf"))
        cpu = (stats["cpu_ms"] - before[mode]["cpu_ms"]) / 1000 / max(1e-3, until - load_start)
        out[mode] = {"rate": under_load, "lag_p50_ms": percentile(lags, 0.50),
                     "lag_p99_ms": percentile(lags, 0.99)}
        log(f"W10 {backend} {mode}: idle lag p50 {percentile(idle[mode], 0.5):.1f} ms p99 "
            f"{percentile(idle[mode], 0.99):.1f} ms ({len(idle[mode])} probes); under load "
            f"{under_load:.0f} events/s, {ended['w1_events']:,} of {expected:,} W1 events by the load's end "
            f"({max(0, expected - ended['w1_events']):,} behind), {arrived:,} in all, the last "
            f"{until - load_end:.2f} s after the load's end ({first_to_last:.0f} events/s first to last); "
            f"lag p50 {out[mode]['lag_p50_ms']:.1f} ms p99 {out[mode]['lag_p99_ms']:.1f} ms max "
            f"{max(lags, default=float('nan')):.1f} ms ({len(lags) - missing} probes, {missing} missing); "
            f"{stats['events']:,} events in all, {stats['other']} neither W1's nor the probe's, repeats "
            f"{stats['repeats']}, bad signatures {stats['bad_signatures']}; the sink used {cpu * 100:.0f}% of a core")
        gaps = ended["gaps"]
        if gaps["n"]:
            log(f"W10 {backend} {mode}: between two W1 events under load: p50 {gaps['p50_ms'] * 1000:.0f} µs, "
                f"p99 {gaps['p99_ms']:.2f} ms; {gaps['stalls']:,} gaps over 2 ms took "
                f"{gaps['stalls_ms'] / 1000:.2f} s of {gaps['total_ms'] / 1000:.2f} s, the {gaps['n'] - gaps['stalls']:,} "
                f"others {(gaps['total_ms'] - gaps['stalls_ms']) / max(1, gaps['n'] - gaps['stalls']) * 1000:.0f} µs "
                f"on average")
        if stats["other"]:
            log(f"W10 {backend} {mode}: an event neither W1's nor the probe's: {stats['other_example']}")
    return out
