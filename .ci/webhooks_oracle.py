#!/usr/bin/env python3
"""Outside oracle for tagd's webhooks (docs/EVENTS.md): a real `tagd serve`, a real HTTP
receiver, and signatures checked by the Standard Webhooks reference library from PyPI
(`standardwebhooks`), not by tagd's own code.

    python3 -m pip install standardwebhooks
    python3 .ci/webhooks_oracle.py target/debug/tagd

What it checks:
  1. every change (a user, a tag group, an assignment) is delivered once, in version order,
     with `webhook-id` equal to the event's id, and every delivery verifies;
  2. after rotate_secret the next delivery carries two signatures and verifies with the new
     secret and with the old one;
  3. a receiver answering 500 twice gets the same event (same webhook-id, same body) again,
     and the third attempt delivers it; webhooks/deliveries shows the three attempts.

Exits 0 when all hold, 1 with a message naming what did not. tagd is always killed.
"""

import base64
import hashlib
import hmac
import http.server
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

try:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError
except ImportError:
    sys.exit("webhooks oracle: the `standardwebhooks` package is missing "
             "(python3 -m pip install standardwebhooks)")

WAIT_SECS = 20


class OracleFailure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise OracleFailure(message)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, predicate, timeout=WAIT_SECS):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise OracleFailure(f"timed out after {timeout} s waiting for {what}")


# --- the receiver -------------------------------------------------------------------------

class Receiver:
    """Records every request; answers 500 to the next `fail_next` ones, 200 to the rest."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []  # dicts: headers (lower-case names), body (bytes), status
        self.fail_next = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    if receiver.fail_next > 0:
                        receiver.fail_next -= 1
                        status = 500
                    else:
                        status = 200
                    receiver.requests.append({
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                        "status": status,
                    })
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def snapshot(self):
        with self.lock:
            return list(self.requests)

    def delivered(self):
        """Requests answered 200, in arrival order."""
        return [r for r in self.snapshot() if r["status"] == 200]

    def set_failures(self, n):
        with self.lock:
            self.fail_next = n

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# --- the server ---------------------------------------------------------------------------

class Tagd:
    def __init__(self, binary, workdir):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.admin_token = secrets.token_hex(32)
        self.log_path = os.path.join(workdir, "tagd.log")
        env = dict(os.environ)
        env["TAGD_ADMIN_TOKEN"] = self.admin_token
        env["TAGD_LOG_FORMAT"] = "json"
        env.setdefault("TAGD_LOG", "info,sqlx=warn")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [binary, "serve",
             "--listen", f"127.0.0.1:{self.port}",
             "--database", f"sqlite://{workdir}/t.db",
             "--webhook-allow-private",
             "--webhook-retry-schedule", "200ms,200ms"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_ready(self):
        def up():
            if self.proc.poll() is not None:
                raise OracleFailure(f"tagd exited with {self.proc.returncode} at start")
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=1) as r:
                    return r.status == 200
            except (urllib.error.URLError, ConnectionError, OSError):
                return False
        wait_for("tagd to answer /readyz", up, timeout=30)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.log.close()

    def log_tail(self, lines=40):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def request(self, method, path, body=None, headers=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=15) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode("utf-8", "replace")

    def admin(self, method, path, body=None):
        status, answer = self.request(method, "/admin/v1" + path, body,
                                      {"authorization": f"Bearer {self.admin_token}"})
        check(status in (200, 201), f"admin {method} {path}: HTTP {status} {answer}")
        return answer


class V5:
    def __init__(self, tagd, corp_id, app_id, token):
        self.tagd, self.corp_id = tagd, corp_id
        self.headers = {"authorization": f"Bearer {token}", "x-app-id": app_id}

    def call(self, method, path, body=None):
        if body is not None:
            body = {"corp_id": self.corp_id, **body}
        status, answer = self.tagd.request(method, "/api/v5" + path, body, self.headers)
        check(status == 200 and isinstance(answer, dict) and answer.get("code") == 0,
              f"v5 {method} {path}: HTTP {status} {answer}")
        return answer["data"]

    def post(self, path, **body):
        return self.call("POST", path, body)

    def get(self, path, **query):
        q = "&".join(f"{k}={v}" for k, v in {"corp_id": self.corp_id, **query}.items())
        return self.call("GET", f"{path}?{q}")


# --- checks -------------------------------------------------------------------------------

def verify(secret, delivery, label):
    """The reference library must accept the delivery; returns the parsed event."""
    try:
        event = Webhook(secret).verify(delivery["body"], delivery["headers"])
    except WebhookVerificationError as e:
        raise OracleFailure(f"{label}: standardwebhooks refused the delivery: {e} "
                            f"(headers {delivery['headers']})")
    # The same by hand, as docs/EVENTS.md shows it.
    h = delivery["headers"]
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + delivery["body"]
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    check(any(hmac.compare_digest(s.partition(",")[2], expected)
              for s in h["webhook-signature"].split()),
          f"{label}: the by-hand HMAC does not match webhook-signature")
    check(h["webhook-id"] == event["id"],
          f"{label}: webhook-id {h['webhook-id']} is not the event id {event['id']}")
    check(h.get("content-type", "").startswith("application/json"),
          f"{label}: content-type is {h.get('content-type')!r}")
    return event


def deliveries_after(receiver, count, already):
    return wait_for(f"{count} more deliveries (have {len(receiver.delivered()) - already})",
                    lambda: (receiver.delivered()[already:]
                             if len(receiver.delivered()) >= already + count else None))


def run(binary):
    workdir = tempfile.mkdtemp(prefix="tagd-webhooks-oracle-")
    tagd = Tagd(binary, workdir)
    receiver = Receiver()
    try:
        tagd.wait_ready()
        org = tagd.admin("POST", "/orgs", {"name": "Oracle"})
        corp_id = org["corp_id"]
        app = tagd.admin("POST", f"/orgs/{corp_id}/apps", {"name": "oracle"})
        status, answer = tagd.request("POST", "/api/v5/auth/token",
                                      {"app_id": app["app_id"], "app_secret": app["app_secret"]})
        check(status == 200 and answer.get("code") == 0, f"auth/token: {status} {answer}")
        v5 = V5(tagd, corp_id, app["app_id"], answer["data"]["access_token"])
        print(f"ok: tagd on {tagd.base}, organization {corp_id}, receiver {receiver.url}")

        created = v5.post("/webhooks/create", url=receiver.url, event_types=[],
                          description="webhooks oracle")
        webhook_id, secret = created["webhook_id"], created["secret"]
        check(secret.startswith("whsec_"), f"secret {secret!r} does not start with whsec_")
        listed = v5.get("/webhooks/list")
        check(secret not in json.dumps(listed), "webhooks/list shows the secret")
        print(f"ok: webhook {webhook_id} created, secret shown once")

        # 1. Changes, delivered in version order and verified.
        v5.post("/user/create", user_id="oracle-1")
        group = v5.post("/entity/tags/group/create", name="VIP", variable_name="vip",
                        description="", attribute="define", category="oracle")
        v5.post("/entity/user/tags/assign", tags_group_id=group["tags_group_id"],
                user_id="oracle-1", value="True")
        first = deliveries_after(receiver, 3, 0)
        events = [verify(secret, d, f"delivery {i + 1}") for i, d in enumerate(first)]
        types = [e["type"] for e in events]
        check(types == ["user.created", "group.created", "tag.assigned"],
              f"event types in delivery order: {types}")
        versions = [e["version"] for e in events]
        check(versions == sorted(versions) and len(set(versions)) == 3,
              f"versions not strictly increasing: {versions}")
        check(all(e["corp_id"] == corp_id for e in events), "an event of another corp_id")
        tag = events[2]["data"]
        check(tag["user_id"] == "oracle-1" and tag["define_value"] is True
              and tag["old_value"] is None and tag["variable_name"] == "vip",
              f"tag.assigned data: {tag}")
        check(all(len(d["headers"]["webhook-signature"].split()) == 1 for d in first),
              "one secret, yet more than one signature")
        print(f"ok: {len(first)} deliveries in version order {versions}, {types}, "
              "each verified by standardwebhooks")

        # 2. Rotation: the next delivery verifies with the new secret and with the old one.
        rotated = v5.post("/webhooks/rotate_secret", webhook_id=webhook_id)
        new_secret = rotated["secret"]
        check(new_secret != secret, "rotate_secret gave the same secret")
        # A change to an endpoint reaches the server delivering it within a second.
        time.sleep(1.5)
        v5.post("/user/create", user_id="oracle-2")
        [after_rotation] = deliveries_after(receiver, 1, 3)
        signatures = after_rotation["headers"]["webhook-signature"].split()
        check(len(signatures) == 2,
              f"after a rotation: {len(signatures)} signatures, expected 2: {signatures}")
        event = verify(new_secret, after_rotation, "after rotation, new secret")
        verify(secret, after_rotation, "after rotation, old secret")
        check(event["type"] == "user.created" and event["data"]["user_id"] == "oracle-2",
              f"after rotation: {event}")
        check(event["version"] > versions[-1], "after rotation: version went back")
        hook = next(r for r in v5.get("/webhooks/list")["rows"] if r["webhook_id"] == webhook_id)
        check(hook.get("previous_secret_expires_at"),
              f"webhooks/list shows no previous_secret_expires_at after a rotation: {hook}")
        print("ok: after rotation the delivery carries 2 signatures, verified with the new "
              "and with the old secret")

        # 3. A failing receiver: the same event again until it is taken.
        before = len(receiver.snapshot())
        receiver.set_failures(2)
        v5.post("/entity/user/tags/assign", tags_group_id=group["tags_group_id"],
                user_id="oracle-2", value="True")
        [retried] = deliveries_after(receiver, 1, 4)
        attempts = receiver.snapshot()[before:]
        statuses = [a["status"] for a in attempts]
        check(statuses == [500, 500, 200], f"attempts answered {statuses}, expected 500, 500, 200")
        ids = {a["headers"]["webhook-id"] for a in attempts}
        check(len(ids) == 1, f"a retry carried another webhook-id: {ids}")
        check(len({a["body"] for a in attempts}) == 1, "a retry carried another body")
        for i, a in enumerate(attempts):
            verify(new_secret, a, f"attempt {i + 1} of the retried event")
        event = json.loads(retried["body"])
        check(event["type"] == "tag.assigned" and event["data"]["user_id"] == "oracle-2",
              f"retried event: {event}")

        def recorded():
            rows = v5.get("/webhooks/deliveries", webhook_id=webhook_id, limit=100)["rows"]
            mine = [r for r in rows if r["event_id"] == event["id"]]
            return mine if len(mine) == 3 else None
        rows = sorted(wait_for("webhooks/deliveries to show the three attempts", recorded),
                      key=lambda r: r["attempt"])
        check([(r["attempt"], r["status"]) for r in rows] == [(1, 500), (2, 500), (3, 200)],
              f"webhooks/deliveries: {rows}")
        check(rows[0].get("error") and "error" not in rows[2],
              f"webhooks/deliveries errors: {rows}")
        hook = next(r for r in v5.get("/webhooks/list")["rows"] if r["webhook_id"] == webhook_id)
        check(hook["enabled"] and hook["failures"] == 0
              and hook["delivered_version"] >= event["version"],
              f"after recovery the endpoint is {hook}")
        print(f"ok: answered 500 twice, the same webhook-id {event['id']} came 3 times and was "
              "delivered; webhooks/deliveries shows attempts 1-3 (500, 500, 200)")

        # Every successful delivery, once more: unique ids, version order, all verified.
        delivered = receiver.delivered()
        seen = [json.loads(d["body"]) for d in delivered]
        check(len({e["id"] for e in seen}) == len(seen), "an event was delivered twice")
        check([e["version"] for e in seen] == sorted(e["version"] for e in seen),
              "deliveries out of version order")
        total = len(receiver.snapshot())
        print(f"webhooks oracle: passed ({len(delivered)} events delivered, {total} requests, "
              "every one verified with standardwebhooks)")
        return 0
    except OracleFailure as e:
        print(f"webhooks oracle: FAILED: {e}", file=sys.stderr)
        print("--- tagd log (last lines) ---", file=sys.stderr)
        print(tagd.log_tail(), file=sys.stderr)
        return 1
    finally:
        tagd.kill()
        receiver.close()
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} PATH/TO/tagd")
    binary = sys.argv[1]
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        sys.exit(f"webhooks oracle: {binary} is not an executable (build it: cargo build -p tagd)")
    sys.exit(run(binary))


if __name__ == "__main__":
    main()
