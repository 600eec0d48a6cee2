#!/usr/bin/env python3
"""Writes tests/scenarios/storm.jsonl: an alert storm caused by one failing dependency.

The payments database fails at 10:00:20. Over the next 20 minutes 32 pods of the three services
that depend on it (payments-api, checkout-api, web-frontend) repeat their alerts every 15 s,
in Alertmanager webhooks and native events, the first symptoms before the database alert.
In the same window, two unrelated failures: the email worker's queue backs up (its own
dependency chain) and a batch host fills its disk (no service). At 10:20:30 everything
recovers; a tick at 10:25:00 lets the resolve hold end. Deterministic: no randomness.
Run from the repository root: python3 scripts/gen-storm.py > tests/scenarios/storm.jsonl
"""
import datetime
import json

T0 = datetime.datetime(2026, 11, 28, 10, 0, 0, tzinfo=datetime.timezone.utc)


def ts(sec):
    return (T0 + datetime.timedelta(seconds=sec)).isoformat().replace("+00:00", "Z")


def native(name, ci, service, severity, status, sec):
    return {"name": name, "time": ts(sec), "ci": ci, "severity": severity, "status": status,
            "source": "probe", "labels": {"service": service}}


def am(status, alerts, sec):
    return {"version": "4", "groupKey": "{}:{alertname=\"storm\"}", "status": status,
            "receiver": "d2c", "alerts": [
                {"status": status, "labels": labels, "annotations": {},
                 "startsAt": ts(sec), "endsAt": ts(sec) if status == "resolved" else "0001-01-01T00:00:00Z"}
                for labels in alerts]}


pods = ([("payments-api", f"payments-api-{i}", "HighErrorRate", "critical") for i in range(10)]
        + [("checkout-api", f"checkout-api-{i}", "HighLatency", "major") for i in range(10)]
        + [("web-frontend", f"web-{i}", "Http5xxRate", "critical") for i in range(12)])
pg = {"alertname": "PostgresDown", "job": "postgres", "cluster": "payments", "severity": "critical"}
lines = []
for sec in range(0, 1215, 15):
    # web pods notice first (at 0 s), the database alert comes at 20 s.
    for service, ci, name, sev in pods:
        if service == "web-frontend" or sec >= 30:
            lines.append(native(name, ci, service, sev, "firing", sec + 1))
            lines.append(native(name + "Slo", ci, service, "warning", "firing", sec + 2))
    if sec >= 15:
        lines.append(am("firing", [pg], sec + 5))
    if 60 <= sec < 900:
        lines.append(native("QueueBacklog", "email-worker-1", "email-worker", "warning", "firing", sec + 3))
    if 120 <= sec < 600:
        lines.append(native("DiskFull", "batch-7", "", "major", "firing", sec + 4))
recover = 1230
lines.append(am("resolved", [pg], recover))
for service, ci, name, sev in pods:
    lines.append(native(name, ci, service, sev, "resolved", recover + 1))
    lines.append(native(name + "Slo", ci, service, "warning", "resolved", recover + 2))
lines.append(native("QueueBacklog", "email-worker-1", "email-worker", "warning", "resolved", recover + 3))
lines.append(native("DiskFull", "batch-7", "", "major", "resolved", recover + 4))
for line in lines:
    # An empty service label is left out.
    if "labels" in line and line["labels"].get("service") == "":
        del line["labels"]
    print(json.dumps(line, separators=(",", ":")))
print(json.dumps({"tick": ts(1500)}))
