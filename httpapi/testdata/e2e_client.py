#!/usr/bin/env python3
"""A client of harmonia's HTTP API in Python's standard library only.

Usage: e2e_client.py BASE_URL WRITE_TOKEN PUBLISH_TOKEN

It registers a license and two artifacts, publishes two versions, points
the alias "production" at the first, follows the alias's SSE watch while
it moves the alias with If-Match, resumes the watch with Last-Event-ID,
and reads the problem document of a stale If-Match. It prints one line per
step and exits non-zero at the first surprise.
"""
import json
import queue
import sys
import threading
import urllib.error
import urllib.request

BASE, WRITE, PUBLISH = sys.argv[1], sys.argv[2], sys.argv[3]
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def call(method, path, token=None, body=None, headers=None):
    """Send a request; return (status, headers, decoded JSON body or None)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token is None and method == "GET":
        token = WRITE  # every scope may read
    if token:
        req.add_header("Authorization", "Bearer " + token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=120) as res:
            raw = res.read()
            return res.status, res.headers, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:  # 3xx without redirect, 4xx, 5xx
        raw = err.read()
        return err.code, err.headers, json.loads(raw) if raw else None


def expect(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)
    print("ok:", what)


def watch(events, last_event_id=None):
    """Follow the alias's SSE stream, putting (id, event, data) on events."""
    req = urllib.request.Request(BASE + "/aliases/production/watch")
    req.add_header("Authorization", "Bearer " + WRITE)
    if last_event_id is not None:
        req.add_header("Last-Event-ID", last_event_id)
    res = urllib.request.urlopen(req, timeout=120)
    assert res.headers["Content-Type"].startswith("text/event-stream")
    ev = {}
    for line in res:
        line = line.decode().rstrip("\n")
        if line == "":
            if "event" in ev:
                events.put((ev.get("id"), ev["event"], json.loads(ev["data"])))
            ev = {}
        elif not line.startswith(":") and ":" in line:
            k, v = line.split(":", 1)
            ev[k] = v[1:] if v.startswith(" ") else v


def next_event(events):
    try:
        return events.get(timeout=120)
    except queue.Empty:
        expect(False, "an SSE event within 120 s")


status, _, doc = call("GET", "/openapi.json")
expect(status == 200 and doc["openapi"].startswith("3.1"), "the OpenAPI 3.1 document is served")

status, _, lic = call("PUT", "/licenses/spdx/MIT", WRITE, {"commercial_use": True})
expect(status == 201 and lic["spdx_id"] == "MIT", "license registered")

ids = []
for name in ("resnet50", "bert"):
    status, _, art = call("POST", "/artifacts", WRITE, {
        "name": name, "version": "1.0.0", "path": "models/%s.onnx" % name, "size_bytes": 1024,
        "hashes": {"sha256": SHA}, "license_id": lic["id"], "tags": ["python"]})
    expect(status == 201 and art["created_by"] == "writer", "artifact %s registered by the token's identity" % name)
    ids.append(art["id"])

for tag, arts in (("2026.12.0", ids[:1]), ("2026.12.1", ids)):
    status, _, out = call("POST", "/versions", PUBLISH, {"version_tag": tag, "artifact_ids": arts})
    expect(status == 201 and out["version"]["published_by"] == "publisher", "version %s published" % tag)

status, headers, v = call("GET", "/versions/2026.12.0")
expect(status == 200 and headers["ETag"] == '"%s"' % v["digest"], "a version's ETag is its digest")
status, _, _ = call("GET", "/versions/2026.12.0", headers={"If-None-Match": headers["ETag"]})
expect(status == 304, "If-None-Match on a version answers 304")

status, headers, move = call("PUT", "/aliases/production", PUBLISH, {"version_tag": "2026.12.0"}, {"If-None-Match": "*"})
expect(status == 200 and move["by"] == "publisher", "alias created with If-None-Match: *")
status, headers, alias = call("GET", "/aliases/production")
etag = headers["ETag"]
expect(status == 200 and alias["version_tag"] == "2026.12.0", "alias read, ETag " + etag)

events = queue.Queue()
threading.Thread(target=watch, args=(events,), daemon=True).start()
eid, kind, data = next_event(events)
expect(kind == "current" and data["to"] == "2026.12.0" and eid == "1", "the watch starts with the alias's current target")

status, _, move = call("PUT", "/aliases/production", PUBLISH, {"version_tag": "2026.12.1", "reason": "python says so"}, {"If-Match": etag})
expect(status == 200 and move["from"] == "2026.12.0", "alias moved with If-Match")
eid, kind, data = next_event(events)
expect(kind == "move" and data["to"] == "2026.12.1" and eid == "2" and data["reason"] == "python says so", "the watch saw the move")

status, headers, problem = call("PUT", "/aliases/production", PUBLISH, {"version_tag": "2026.12.0"}, {"If-Match": etag})
expect(status == 412 and headers["Content-Type"] == "application/problem+json", "a stale If-Match answers 412 with a problem document")
expect(problem["code"] == "precondition_failed" and problem["status"] == 412 and problem["field"] == "If-Match"
       and problem["entity"] == "alias" and "2026.12.1" in problem["detail"], "the problem names the code, entity, field and actual target")

resumed = queue.Queue()
threading.Thread(target=watch, args=(resumed, "1"), daemon=True).start()
eid, kind, data = next_event(resumed)
expect(kind == "move" and eid == "2", "a watch resumed with Last-Event-ID replays the move it missed")

status, _, problem = call("POST", "/versions", None, {"version_tag": "x", "artifact_ids": ids})
expect(status == 401 and problem["code"] == "unauthorized", "a write without a token answers 401")
print("e2e: all steps passed")
