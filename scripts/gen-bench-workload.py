#!/usr/bin/env python3
"""Workloads for callgrind instruction counts of `d2c replay` (BENCHMARKS.md, "Round 3: where the
instructions go"). Writes, into OUT (default ./bench-workload):

  dedup.jsonl              50,000 repeats of 30 alerts on the example topology (dedup path)
  large/topology.toml      200 trees of 10 services (2,000 services, 10,000 CIs), 100 capabilities,
                           the shape of benches/support/mod.rs
  large/distinct.jsonl     20,000 distinct alerts on that topology (new-alert path)
  large/d2c.toml           the example config with `topology` pointing at large/topology.toml
  large/bursts.jsonl       20,000 new alerts in outage bursts of 10 on one tree (one incident
                           each), 10 ms apart, a burst every 2 s: the shape of
                           benches/scale.rs `new_alerts_as_state_grows` (new-alert path)
  large/outage-N.jsonl     a mass outage: N new alerts (2k, 8k, 32k) joining one incident
  large/wave-16000.jsonl   16,000 alerts of one incident firing, then all resolving
  large/unmapped-N.jsonl   N alerts (4k, 16k) the model does not know, grouped by
                           fallback_group_by into one incident
  large/silenced-40000.jsonl  the same shape, 40,000 alerts, all in zone eu-1
  large/silenced.d2c.toml  large/d2c.toml with a silence of zone eu-1 for the day: every alert
                           of silenced-40000.jsonl is suppressed and remembered (the cap of the
                           suppressed alerts, 10,000 per partition, is passed 30,000 times)

Deterministic: the same files on every run (Python's `random.Random(3)`).
Usage: scripts/gen-bench-workload.py [OUT] [--config config/d2c.toml]
"""

import argparse
import datetime
import json
import os
import random
import re

BASE = datetime.datetime(2026, 11, 28, 10, 0, 0)


def dedup(path):
    names = ["PostgresDown", "HighErrorRate", "HighLatency", "DiskFull", "CPUHigh"]
    cis = ["pg-payments-1", "payments-api-1", "checkout-1", "web-1", "pg-orders-a", "pg-orders-b"]
    with open(path, "w") as f:
        for i in range(50_000):
            t = BASE + datetime.timedelta(milliseconds=20 * i)
            time = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03}Z"
            f.write(json.dumps({"name": names[(i // 7) % 5], "ci": cis[i % 6], "severity": "major",
                                "status": "firing", "time": time,
                                "labels": {"env": "prod", "team": "pay"}}) + "\n")


def topology(path, trees=200, services=10, cis=5, caps=100):
    out = []
    for k in range(caps):
        crit = ["high", "medium", "low"][k % 3]
        out.append(f'[capabilities.cap-{k:03}]\ndescription = "Business capability {k}"\n'
                   f'criticality = "{crit}"\nrevenue_per_minute = {k * 10}.0\nusers = {k * 1000}\n')
    for t in range(trees):
        for s in range(services):
            caps_of = {1: [t % caps], 2: [t % caps], 3: [(t + 37) % caps]}.get(s, [])
            deps = [] if s == 0 else [f"t{t:03}-s{(s - 1) // 2}"]
            out.append(f"[services.t{t:03}-s{s}]\ndepends_on = {json.dumps(deps)}\n"
                       f"capabilities = {json.dumps([f'cap-{c:03}' for c in caps_of])}\n")
    for t in range(trees):
        for s in range(services):
            for c in range(cis):
                block = f'[[cis]]\nid = "t{t:03}-s{s}-ci{c}"\nservice = "t{t:03}-s{s}"\n'
                if c == 0:
                    block += f'match = {{ instance = "10.{t}.{s}.{c}:9100" }}\n'
                out.append(block)
    with open(path, "w") as f:
        f.write("\n".join(out))


def distinct(path, n=20_000):
    rng = random.Random(3)
    sev = ["critical", "major", "minor", "warning"]
    with open(path, "w") as f:
        for i in range(n):
            tree, s, c = (i * 119) % 200, rng.randrange(10), rng.randrange(5)
            t = BASE + datetime.timedelta(seconds=i)
            f.write(json.dumps({"name": f"Alert{i % 40}", "ci": f"t{tree:03}-s{s}-ci{c}",
                                "severity": sev[i % 4], "status": "firing",
                                "time": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                "labels": {"env": "prod", "i": str(i)}}) + "\n")


def bursts(path, n=20_000, trees=200, burst=10):
    """Outage bursts as in benches/support/mod.rs `burst_events`: burst b hits tree
    (b * 67) % trees from BASE + 2 s * b, 10 alerts 10 ms apart over its services and CIs, with a
    pod label of the burst's own, so every alert is new."""
    names = ["HighErrorRate", "HighLatency", "DiskFull", "PodRestarts"]
    sev = ["critical", "major", "warning"]
    with open(path, "w") as f:
        for b in range(n // burst):
            tree = (b * 67) % trees
            for i in range(burst):
                s, c = (i % 50) // 5, i % 5
                service = f"t{tree:03}-s{s}"
                t = BASE + datetime.timedelta(seconds=2 * b, milliseconds=10 * i)
                f.write(json.dumps({"name": names[(i // 50) % 4], "ci": f"{service}-ci{c}",
                                    "severity": sev[i % 3], "status": "firing", "time": stamp(t),
                                    "labels": {"service": service, "env": "prod",
                                               "team": f"team-{tree % 40}",
                                               "pod": f"{service}-{b:06x}-{c}"}}) + "\n")


def stamp(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03}Z"


def outage(path, n, mapped=True, resolve=False):
    """A mass outage: n new alerts, 4,000 a second, that all join one incident (tree t000 of
    the large topology, or, unmapped, hosts the model does not know grouped by
    fallback_group_by); with `resolve`, all of them resolve a minute later in the same order.
    A late event at +30 min lets the last version out."""
    with open(path, "w") as f:
        for phase, status in [(0, "firing")] + ([(1, "resolved")] if resolve else []):
            for i in range(n):
                t = BASE + datetime.timedelta(seconds=60 * phase, microseconds=250 * i)
                labels = {"env": "prod", "zone": "eu-1", "host": f"h{i}"}
                if mapped:
                    ci = f"t000-s{i % 10}-ci{i % 5}"
                else:
                    ci = f"host-{i}"
                    labels.update({"cluster": "c1", "namespace": "ns1"})
                f.write(json.dumps({"name": "NodeDown", "ci": ci, "severity": "critical",
                                    "status": status, "time": stamp(t), "labels": labels}) + "\n")
        t = BASE + datetime.timedelta(minutes=30)
        f.write(json.dumps({"name": "Tick", "ci": "t100-s0-ci0", "severity": "info",
                            "status": "firing", "time": stamp(t), "labels": {}}) + "\n")


def config(src, dst, topo):
    text = open(src).read()
    policy = os.path.abspath(os.path.join(os.path.dirname(src), "change-policy.toml"))
    text = re.sub(r'(?m)^topology = ".*"', f'topology = "{os.path.abspath(topo)}"', text, count=1)
    text = re.sub(r'(?m)^change_policy = ".*"', f'change_policy = "{policy}"', text, count=1)
    open(dst, "w").write(text)


def silenced(src, dst):
    """`src` with a day-long silence of zone eu-1 from BASE."""
    end = BASE + datetime.timedelta(days=1)
    text = open(src).read()
    text += (f'\n[[suppression.silences]]\nid = "zone-eu-1-reboot"\nmatchers = \'{{zone="eu-1"}}\'\n'
             f'starts_at = "{stamp(BASE)}"\nends_at = "{stamp(end)}"\n')
    open(dst, "w").write(text)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", nargs="?", default="bench-workload")
    p.add_argument("--config", default="config/d2c.toml")
    a = p.parse_args()
    os.makedirs(os.path.join(a.out, "large"), exist_ok=True)
    dedup(os.path.join(a.out, "dedup.jsonl"))
    topo = os.path.join(a.out, "large", "topology.toml")
    topology(topo)
    distinct(os.path.join(a.out, "large", "distinct.jsonl"))
    bursts(os.path.join(a.out, "large", "bursts.jsonl"))
    for n in (2_000, 8_000, 32_000):
        outage(os.path.join(a.out, "large", f"outage-{n}.jsonl"), n)
    outage(os.path.join(a.out, "large", "wave-16000.jsonl"), 16_000, resolve=True)
    for n in (4_000, 16_000):
        outage(os.path.join(a.out, "large", f"unmapped-{n}.jsonl"), n, mapped=False)
    outage(os.path.join(a.out, "large", "silenced-40000.jsonl"), 40_000, mapped=False)
    config(a.config, os.path.join(a.out, "large", "d2c.toml"), topo)
    silenced(os.path.join(a.out, "large", "d2c.toml"), os.path.join(a.out, "large", "silenced.d2c.toml"))


if __name__ == "__main__":
    main()
