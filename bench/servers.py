"""W11 (issue 17): W1 (single assigns) and W4 (list reads) with one and with three tagd servers
over one PostgreSQL, in one run.

The load is the same in both: three wrk processes of 21 connections each (63 in all, one thread
each). For the one-server figure all three aim at one server; for the three-server figure each
aims at its own server, as a round-robin load balancer would spread them. The extra servers
start on the suite's database, wait until their index holds the organization, and stop after.

On a machine of two cores this measures contention, not scaling: the three servers, the three
wrk processes and PostgreSQL share the same two cores, so three servers can at best match one.
What the ratio shows is the cost of running several (each follows the change log and keeps its
own index; each write is read back by every server), which docs/SCALING.md uses.
"""

import os
import signal
import subprocess
import threading
import time
import urllib.request

CONNECTIONS_PER_WRK = 21


def metric(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def start(tagd, port, tagd_binary, admin_token, work):
    env = {**os.environ, "TAGD_ADMIN_TOKEN": admin_token, "TAGD_LOG": "warn"}
    return subprocess.Popen(
        [str(tagd_binary), "serve", "--listen", f"127.0.0.1:{port}", "--database", tagd.database,
         "--rate-limit-per-sec", "10000000", "--rate-limit-burst", "10000000"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(work / f"tagd-extra-{port}.log", "a"))


def wait_for_index(port, seconds=600):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if metric(port, "tagd_index_organizations_loaded") >= 1:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the index of the server on port {port} did not load")


def split_load(wrk, script, bases, duration, env):
    """One wrk per base at once; requests per second summed, the worst p99."""
    answers = [None] * len(bases)

    def one(i):
        answers[i] = wrk(script, bases[i], duration, env, connections=CONNECTIONS_PER_WRK, threads=1)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if any(answer is None for answer in answers):
        raise RuntimeError(f"{script}: a wrk of the split load failed")
    return {"rps": sum(a["rps"] for a in answers), "p99_ms": max(a["p99_ms"] for a in answers)}


def run(tagd, port, duration, env, wrk, tagd_binary, admin_token, work, log):
    """W4 then W1, each on one server and then on three; the first server is already running
    on `port` with its index loaded."""
    extra_ports = [port + 1, port + 2]
    extras = [start(tagd, p, tagd_binary, admin_token, work) for p in extra_ports]
    try:
        for p in extra_ports:
            wait_for_index(p)
        one = [f"http://127.0.0.1:{port}"] * 3
        three = [f"http://127.0.0.1:{p}" for p in [port] + extra_ports]
        figures = {}
        for name, script in [("list_user_tags", "list_user_tags.lua"), ("assign", "assign.lua")]:
            figures[name] = {"one": split_load(wrk, script, one, duration, env),
                             "three": split_load(wrk, script, three, duration, env)}
            log(f"W11 {name}: {figures[name]}")
        return figures
    finally:
        for process in extras:
            process.send_signal(signal.SIGTERM)
        for process in extras:
            process.wait(timeout=60)
