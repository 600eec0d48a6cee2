#!/usr/bin/env python3
"""Writes the "right the first time" replay scenarios of tests/scenarios/ (issue 15):

- symptom-first.jsonl: five outages on the example topology whose cause alerts 10 to 60 s after
  its symptoms (chains of 2, 3 and 4 services), an hour apart, each recovering after 6 minutes;
- withdraw.jsonl: two incidents merged by an alert that links them (the one merged away had an
  RFC), an incident resolving before its RFC was approved, and an incident whose root cause
  moves after its first version;
- flapping.jsonl: the tracking API's error alert flapping 6 times in 5 minutes, then quiet;
- unknown-storm.jsonl: 1,000+ Alertmanager alerts of one outage over 5 services the model does
  not know, all in namespace shop-eu of cluster prod-1, and one unrelated alert elsewhere;
- learned.jsonl: the payments and the user database (no declared dependency between them)
  failing and recovering together three times, then a fourth time.

Deterministic: no randomness, fixed times. Run from the repository root:
    python3 scripts/gen-scenarios.py
"""
import datetime
import json

T0 = datetime.datetime(2026, 11, 28, 10, 0, 0, tzinfo=datetime.timezone.utc)
ZERO = "0001-01-01T00:00:00Z"


def ts(sec):
    return (T0 + datetime.timedelta(seconds=sec)).isoformat().replace("+00:00", "Z")


def native(name, ci, severity, status, sec, attributes=None, labels=None):
    e = {"name": name, "time": ts(sec), "ci": ci, "severity": severity, "status": status,
         "source": "probe"}
    if labels:
        e["labels"] = labels
    if attributes:
        e["attributes"] = attributes
    return e


def am(status, alerts, sec):
    """An Alertmanager v4 notification; `alerts` are (labels, annotations) pairs."""
    return {"version": "4", "groupKey": "{}:{alertname=\"x\"}", "truncatedAlerts": 0,
            "status": status, "receiver": "d2c", "groupLabels": {}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
            "alerts": [{"status": status, "labels": labels, "annotations": annotations,
                        "startsAt": ts(sec),
                        "endsAt": ts(sec) if status == "resolved" else ZERO}
                       for labels, annotations in alerts]}


def tick(sec):
    return {"tick": ts(sec)}


def write(name, lines):
    with open(f"tests/scenarios/{name}", "w") as f:
        for line in lines:
            f.write(json.dumps(line, separators=(",", ":")) + "\n")


# Alerts of the example topology, by service: (alert name, CI, severity).
ALERT = {
    "web-frontend": ("Http5xxRate", "web-1", "critical"),
    "checkout-api": ("HighErrorRate", "checkout-api-5c1a", "critical"),
    "payments-api": ("HighErrorRate", "payments-api-7f9c", "critical"),
    "payments-db": ("PostgresDown", "pg-payments-1", "critical"),
    "auth-service": ("LoginFailures", "auth-6d2b", "critical"),
    "user-db": ("PostgresDown", "pg-users-1", "critical"),
    "catalog-api": ("HighErrorRate", "catalog-api-2b7e", "major"),
    "search-cache": ("RedisDown", "redis-search-1", "major"),
    "tracking-api": ("HighErrorRate", "tracking-api-1", "critical"),
}

ANNOTATIONS = {
    "summary": "{name} on {ci}",
    "description": "{service} answers with errors; see the runbook",
    "runbook_url": "https://runbooks.example.com/{service}/{name}",
    "dashboard": "https://grafana.example.com/d/{service}",
}


def alert(service, status, sec, repeat=False):
    name, ci, sev = ALERT[service]
    attrs = {k: v.format(name=name, ci=ci, service=service) for k, v in ANNOTATIONS.items()}
    return native(name, ci, sev, status, sec, attributes=attrs)


def outage(start, chain, recover_after=360):
    """`chain`: (service, seconds after start) in the order they alert, symptoms first.
    Every alert repeats every 15 s until the recovery; then all resolve, cause first."""
    lines = []
    end = start + recover_after
    events = []
    for service, offset in chain:
        t = start + offset
        while t < end:
            events.append((t, service))
            t += 15
    for t, service in sorted(events):
        lines.append(alert(service, "firing", t))
    for i, (service, _) in enumerate(reversed(chain)):
        lines.append(alert(service, "resolved", end + i))
    lines.append(tick(end + 2400))
    return lines


HOUR = 3600
symptom_first = []
# The example: the API's error alert 30 s before the database alert.
symptom_first += outage(0, [("payments-api", 0), ("payments-db", 30)])
# Login failures 10 s before the user database.
symptom_first += outage(1 * HOUR, [("auth-service", 0), ("user-db", 10)])
# The catalog alerts a full minute before its cache.
symptom_first += outage(2 * HOUR, [("catalog-api", 0), ("search-cache", 60)])
# Three services: checkout, then payments API, then the database 45 s after the first symptom.
symptom_first += outage(3 * HOUR, [("checkout-api", 0), ("payments-api", 20), ("payments-db", 45)])
# The chain of four: web → checkout → payments API → database, the cause at 60 s.
symptom_first += outage(4 * HOUR, [("web-frontend", 0), ("checkout-api", 15),
                                   ("payments-api", 30), ("payments-db", 60)])
write("symptom-first.jsonl", symptom_first)

withdraw = []
# 1. Merge. Login latency on the auth service (a standard RFC), then the payments API's errors
# (P1: an emergency RFC); 3 minutes later checkout, which needs both, links them: the later
# incident is merged into the earlier one and its RFC is withdrawn.
withdraw.append(native("HighLatency", "auth-6d2b", "major", "firing", 0))
withdraw.append(alert("payments-api", "firing", 10))
withdraw.append(tick(170))
withdraw.append(alert("checkout-api", "firing", 180))
withdraw.append(native("HighLatency", "auth-6d2b", "major", "resolved", 400))
withdraw.append(alert("payments-api", "resolved", 401))
withdraw.append(alert("checkout-api", "resolved", 402))
withdraw.append(tick(700))
# 2. Early resolve: the payments database fails for 4 minutes; nobody decides on the fail-over.
withdraw.append(alert("payments-db", "firing", HOUR))
withdraw.append(tick(HOUR + 60))
withdraw.append(alert("payments-db", "resolved", HOUR + 240))
withdraw.append(tick(HOUR + 600))
# 3. The root cause moves after the first version: checkout alone for 3 minutes (a rollback of
# checkout is proposed), then the payments database fails below it.
withdraw.append(alert("checkout-api", "firing", 2 * HOUR))
withdraw.append(tick(2 * HOUR + 170))
withdraw.append(alert("payments-db", "firing", 2 * HOUR + 180))
withdraw.append(tick(2 * HOUR + 300))
withdraw.append(alert("payments-db", "resolved", 2 * HOUR + 500))
withdraw.append(alert("checkout-api", "resolved", 2 * HOUR + 501))
withdraw.append(tick(2 * HOUR + 2700))
write("withdraw.jsonl", withdraw)

# The tracking API's error alert flaps: 6 times firing and resolving within 5 minutes (every
# 25 s), then stays resolved; ticks let flapping calm down, the hold end and the incident close.
flapping = []
for i in range(12):
    flapping.append(alert("tracking-api", "firing" if i % 2 == 0 else "resolved", i * 25))
for sec in range(300, 3 * HOUR, 300):
    flapping.append(tick(sec))
write("flapping.jsonl", flapping)

# 1,000+ alerts of one outage over five services the model does not know, all in namespace
# shop-eu of cluster prod-1: the cart database fails at 40 s, after the services above it; its
# pods repeat their alerts every 15 s for 10 minutes. Meanwhile one unrelated alert in namespace
# reporting. Then everything recovers.
unknown = []
services = [("storefront", "HighErrorRate", "critical", 0, 8),
            ("cart", "HighErrorRate", "critical", 10, 6),
            ("pricing", "HighLatency", "major", 20, 6),
            ("recommendations", "HighLatency", "warning", 25, 4),
            ("cart-db", "PostgresDown", "critical", 40, 2)]
for sec in range(0, 600, 15):
    batch = []
    for app, name, sev, start, pods in services:
        if sec + 15 <= start:
            continue
        for p in range(pods):
            labels = {"alertname": name, "namespace": "shop-eu", "cluster": "prod-1",
                      "app": app, "pod": f"{app}-{p}", "instance": f"{app}-{p}:8080",
                      "severity": sev}
            batch.append((labels, {"summary": f"{name} on {app}-{p}",
                                   "runbook_url": f"https://runbooks.example.com/{app}"}))
    unknown.append(am("firing", batch, max(sec, 0) + 1))
    if sec == 120:
        unknown.append(am("firing", [({"alertname": "CronJobFailed", "namespace": "reporting",
                                       "cluster": "prod-1", "app": "nightly-report",
                                       "pod": "nightly-report-1", "severity": "warning"},
                                      {"summary": "the nightly report failed"})], sec + 2))
resolved = []
for app, name, sev, start, pods in services:
    for p in range(pods):
        resolved.append(({"alertname": name, "namespace": "shop-eu", "cluster": "prod-1",
                          "app": app, "pod": f"{app}-{p}", "instance": f"{app}-{p}:8080",
                          "severity": sev}, {}))
unknown.append(am("resolved", resolved, 660))
unknown.append(am("resolved", [({"alertname": "CronJobFailed", "namespace": "reporting",
                                 "cluster": "prod-1", "app": "nightly-report",
                                 "pod": "nightly-report-1", "severity": "warning"}, {})], 661))
unknown.append(tick(1200))
write("unknown-storm.jsonl", unknown)

# The payments and the user database share a storage array the model does not know: three
# times they fail within seconds of each other and recover together (two incidents each time);
# the fourth time the learned link makes them one incident.
learned = []
for k in range(4):
    start = k * HOUR
    for t in range(0, 300, 30):
        learned.append(alert("payments-db", "firing", start + t))
        learned.append(alert("user-db", "firing", start + t + 5))
    learned.append(alert("payments-db", "resolved", start + 300))
    learned.append(alert("user-db", "resolved", start + 302))
    learned.append(tick(start + 600))
write("learned.jsonl", learned)
