"""W12 (issue 18): how long the console's pages take with the suite's organization loaded
(W3's import: 1,000,000 users x 10 tags; --quick 100,000), signed in as an operator. Each page
is fetched 50 times in a row after one warm-up; the p99 goes against the issue's target of
100 ms a page.
"""

import http.client
import json
import time
import urllib.parse

TARGET_MS = 100.0
TIMES = 50


def sign_in(port, token):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = urllib.parse.urlencode({"token": token})
    connection.request("POST", "/console/sign-in", body,
                       {"content-type": "application/x-www-form-urlencoded"})
    response = connection.getresponse()
    response.read()
    cookie = response.getheader("set-cookie") or ""
    if response.status != 303 or "tagd_console=" not in cookie:
        raise RuntimeError(f"console sign-in failed: {response.status}")
    return cookie.split(";")[0]


def p99(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def pages(corp_id, user):
    segment = json.dumps({"all": [{"tag": "t0"}, {"not": {"tag": "t1"}}]})
    base = f"/console/orgs/{corp_id}"
    return {
        "organizations": "/console/orgs",
        "organization": base,
        "user": f"{base}/user?user_id={urllib.parse.quote(user)}",
        "segments": f"{base}/segments?filter={urllib.parse.quote(segment)}",
        "webhooks": f"{base}/webhooks",
    }


def run(port, token, corp_id, user):
    """Each page's p99 in milliseconds."""
    cookie = sign_in(port, token)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    figures = {}
    for name, path in pages(corp_id, user).items():
        times = []
        for i in range(TIMES + 1):
            started = time.perf_counter()
            connection.request("GET", path, headers={"cookie": cookie})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"console page {name}: {response.status}")
            if i:
                times.append((time.perf_counter() - started) * 1000)
        figures[name] = p99(times)
    return figures
