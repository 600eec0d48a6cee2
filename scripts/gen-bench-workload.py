#!/usr/bin/env python3
"""Workloads for callgrind instruction counts of `d2c replay` (BENCHMARKS.md, "Round 3: where the
instructions go"). Writes, into OUT (default ./bench-workload):

  dedup.jsonl              50,000 repeats of 30 alerts on the example topology (dedup path)
  large/topology.toml      200 trees of 10 services (2,000 services, 10,000 CIs), 100 capabilities,
                           the shape of benches/support/mod.rs
  large/distinct.jsonl     20,000 distinct alerts on that topology (new-alert path)
  large/d2c.toml           the example config with `topology` pointing at large/topology.toml

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


def config(src, dst, topo):
    text = open(src).read()
    policy = os.path.abspath(os.path.join(os.path.dirname(src), "change-policy.toml"))
    text = re.sub(r'(?m)^topology = ".*"', f'topology = "{os.path.abspath(topo)}"', text, count=1)
    text = re.sub(r'(?m)^change_policy = ".*"', f'change_policy = "{policy}"', text, count=1)
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
    config(a.config, os.path.join(a.out, "large", "d2c.toml"), topo)


if __name__ == "__main__":
    main()
