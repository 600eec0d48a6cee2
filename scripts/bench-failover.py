#!/usr/bin/env python3
"""Failover on librdkafka's mock cluster or tansu, measured: how long the correlate stage of a
surviving instance takes to carry on with the partitions of an instance killed with `kill -9`.

Each run starts a fresh broker (`d2c mock-broker` with 3 partitions, or with `--broker tansu`
tansu 0.6.0 with memory storage, where d2c creates the topics), instance A, then instance B once
A owns every events partition (session timeout 3 s, checkpoints every 1 s, group waits off, JSON
logs), and
posts a steady trickle of new alerts (10 per 100 ms, spread over every partition) to the HTTP
ingest of one of them. When both own events partitions, every owned partition is restored and a
checkpoint interval has passed, it kills with SIGKILL the instance owning more of them and reads
the survivor's log from then on:

- kill -> revoked: the survivor's first `partitions revoked` of the events topic (an eager
  rebalance revokes the survivor's own partitions too; a cooperative one revokes nothing);
- kill -> assigned: its first `partitions assigned` of the events topic;
- restore per partition: `state restored from checkpoint` (or `no checkpoint`) after the kill,
  its `millis`, and whether the partition was the dead one's or the survivor's own;
- kill -> first output: the survivor's `first outputs since the state was restored published`
  for a partition the dead instance owned (the first incident record produced for that
  partition, acknowledged by the broker), first and last of those partitions;
- kill -> last restored: the last restore of a dead instance's partition;
- assigned -> first output: d2c's own share of the takeover (restore and first batch).

Prints one row per run and the medians, as a Markdown table. Every process it starts is stopped
on exit. Needs only python3 and a built d2c:

    cargo build --release --bin d2c
    scripts/bench-failover.py                        # 3 runs, target/release/d2c
    scripts/bench-failover.py --runs 5 --bin path/to/d2c --warmup 30
    scripts/bench-failover.py --broker tansu --runs 5        # tansu from scripts/install-tansu.sh
    D2C_KAFKA__ASSIGNMENT=eager scripts/bench-failover.py   # any D2C_* passes through

Logs of the last run are kept in the directory it prints.
"""

import argparse
import datetime
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVENTS = "d2c.events"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ts(line):
    """Seconds since the epoch of a JSON log line's timestamp."""
    t = line["timestamp"]
    return datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()


def log_lines(path):
    out = []
    with open(path, errors="replace") as f:
        for raw in f:
            raw = raw.strip()
            if not raw.startswith("{"):
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            line["t"] = ts(line)
            out.append(line)
    return out


def msg(line):
    return line.get("fields", {}).get("message", "")


def events_partitions(line):
    """Partitions of the events topic in a `partitions assigned/revoked` line."""
    parts = line.get("fields", {}).get("partitions", "")
    out = set()
    for tp in parts.split(","):
        topic, _, p = tp.rpartition("/")
        if topic == EVENTS and p.isdigit():
            out.add(int(p))
    return out


class Instance:
    def __init__(self, name, binary, config, env, workdir):
        self.name = name
        self.port = free_port()
        self.http = f"127.0.0.1:{self.port}"
        self.log = os.path.join(workdir, f"{name}.log")
        env = dict(env, D2C_HTTP__LISTEN=self.http)
        self.proc = subprocess.Popen(
            [binary, "run", "--config", config],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "w"),
        )

    def lines(self):
        return log_lines(self.log)

    def state(self):
        """Events partitions owned now (assigned minus revoked, in log order), and those
        restored since their latest assignment."""
        owned, restored = set(), set()
        for line in self.lines():
            m = msg(line)
            if m == "partitions assigned":
                ps = events_partitions(line)
                owned |= ps
                restored -= ps
            elif m == "partitions revoked":
                ps = events_partitions(line)
                owned -= ps
                restored -= ps
            elif m in ("state restored from checkpoint", "no checkpoint; starting with empty state"):
                restored.add(line["fields"]["partition"])
        return owned, restored

    def checkpoints(self):
        try:
            with urllib.request.urlopen(f"http://{self.http}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return 0
        for l in text.splitlines():
            if l.startswith("d2c_checkpoints_total "):
                return float(l.split()[1])
        return 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Trickle(threading.Thread):
    """Posts `per_tick` new alerts every 100 ms to `self.target` (switchable), in namespaces
    that change every second, so incidents keep being created and updated on every partition."""

    def __init__(self, target, per_tick):
        super().__init__(daemon=True)
        self.target, self.per_tick = target, per_tick
        self.stopped = threading.Event()
        self.sent = self.failed = 0

    def run(self):
        seq = 0
        while not self.stopped.is_set():
            now = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
            alerts = []
            for i in range(self.per_tick):
                ns = f"ns-{seq // (self.per_tick * 10)}-{i}"
                alerts.append({
                    "status": "firing",
                    "labels": {"alertname": "FailoverProbe", "cluster": "bench",
                               "namespace": ns, "instance": f"host-{seq}", "severity": "critical"},
                    "annotations": {"summary": "failover probe"},
                    "startsAt": now, "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://bench",
                })
                seq += 1
            body = json.dumps({"version": "4", "groupKey": "bench", "truncatedAlerts": 0,
                               "status": "firing", "receiver": "d2c", "groupLabels": {},
                               "commonLabels": {}, "commonAnnotations": {},
                               "externalURL": "http://bench", "alerts": alerts}).encode()
            req = urllib.request.Request(f"http://{self.target}/api/v1/events/alertmanager",
                                         data=body, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=2) as r:
                    r.read()
                self.sent += 1
            except OSError:
                self.failed += 1
            self.stopped.wait(0.1)


def wait(cond, within, what):
    end = time.time() + within
    while time.time() < end:
        if cond():
            return
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {within} s waiting for {what}")


def start_broker(args, binary):
    """The broker of one run, fresh: librdkafka's mock cluster (`d2c mock-broker`, with the
    topics) or tansu with memory storage (d2c creates the topics). Returns it and its address."""
    if args.broker == "mock":
        env = dict(os.environ, D2C_KAFKA__PARTITIONS=str(args.partitions), D2C_LOG="warn")
        broker = subprocess.Popen(
            [binary, "mock-broker", "--config", args.config],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = broker.stdout.readline().strip()
        if not line.startswith("bootstrap="):
            broker.kill()
            raise RuntimeError(f"mock-broker printed {line!r}")
        return broker, line.split("=", 1)[1]
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    broker = subprocess.Popen(
        [args.tansu, "broker", "--storage-engine", "memory://tansu/",
         "--listener-url", url, "--advertised-listener-url", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def listening():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    wait(listening, 30, "tansu to listen")
    return broker, f"127.0.0.1:{port}"


def one_run(args, binary, run, workdir):
    procs = []
    broker, bootstrap = start_broker(args, binary)
    trickle = None
    try:
        env = dict(os.environ)
        env.update({
            "D2C_KAFKA__BROKERS": bootstrap,
            # The mock cluster has the topics already and serves no CreateTopics.
            "D2C_KAFKA__CREATE_TOPICS": "false" if args.broker == "mock" else "true",
            "D2C_KAFKA__PARTITIONS": str(args.partitions),
            "D2C_KAFKA__SESSION_TIMEOUT": args.session_timeout,
            "D2C_STATE__CHECKPOINT_INTERVAL": "1s",
            "D2C_CORRELATION__GROUP_WAIT": "0s",
            "D2C_CORRELATION__GROUP_WAIT_MAX": "0s",
            "D2C_CORRELATION__GROUP_INTERVAL": "0s",
            "D2C_LOG_FORMAT": "json",
            "D2C_LOG": os.environ.get("D2C_LOG", "info,librdkafka=warn"),
        })
        everything = set(range(args.partitions))
        a = Instance("a", binary, args.config, env, workdir)
        procs.append(a)
        trickle = Trickle(a.http, args.per_tick)
        trickle.start()
        wait(lambda: a.state()[0] == everything, 60, "instance a to own every events partition")
        b = Instance("b", binary, args.config, env, workdir)
        procs.append(b)

        def steady():
            (oa, ra), (ob, rb) = a.state(), b.state()
            return (oa and ob and not (oa & ob) and oa | ob == everything
                    and oa <= ra and ob <= rb)

        wait(steady, 60, "both instances to own and restore events partitions")
        # A checkpoint interval and more, so the partitions to take over have checkpoints of
        # what each instance did since it took them.
        base = a.checkpoints() + b.checkpoints()
        wait(lambda: a.checkpoints() + b.checkpoints() >= base + 2, 30, "checkpoints")
        # More state to restore, and the kill at a random point of the heartbeat cycle.
        time.sleep(args.warmup + random.uniform(0.0, 1.0))
        (oa, _), (ob, _) = a.state(), b.state()
        victim, survivor = (a, b) if len(oa) >= len(ob) else (b, a)
        taken = victim.state()[0]
        own = survivor.state()[0]
        trickle.target = survivor.http
        time.sleep(0.2)
        killed = time.time()
        victim.proc.kill()
        victim.proc.wait()

        def taken_over():
            firsts = {l["fields"]["partition"] for l in survivor.lines()
                      if l["t"] >= killed
                      and msg(l) == "first outputs since the state was restored published"}
            return taken <= firsts

        try:
            wait(taken_over, args.timeout, "the survivor's first outputs of the taken partitions")
            complete = True
        except TimeoutError:
            complete = False
        after = [l for l in survivor.lines() if l["t"] >= killed]
        rel = lambda l: round(l["t"] - killed, 2)
        revoked = [rel(l) for l in after
                   if msg(l) == "partitions revoked" and events_partitions(l)]
        assigned = [rel(l) for l in after
                    if msg(l) == "partitions assigned" and events_partitions(l)]
        # (partition, millis, seconds after the kill, what it read: full bytes, deltas, their bytes)
        restores = [(l["fields"]["partition"], l["fields"].get("millis", 0), rel(l),
                     (l["fields"].get("full_bytes", 0), l["fields"].get("deltas", 0),
                      l["fields"].get("delta_bytes", 0)))
                    for l in after
                    if msg(l) in ("state restored from checkpoint",
                                  "no checkpoint; starting with empty state")]
        firsts = [(l["fields"]["partition"], rel(l)) for l in after
                  if msg(l) == "first outputs since the state was restored published"
                  and l["fields"]["partition"] in taken]
        restored_taken = [t for p, _, t, _ in restores if p in taken]
        return {
            "run": run,
            "complete": complete,
            "taken": sorted(taken),
            "own": sorted(own),
            "revoked": revoked[0] if revoked else None,
            "assigned": assigned[0] if assigned else None,
            "restores": restores,
            "own_restored_again": sorted({p for p, _, _, _ in restores if p in own}),
            "first_output": min(t for _, t in firsts) if firsts else None,
            "last_first_output": max(t for _, t in firsts) if firsts else None,
            "last_restored": max(restored_taken) if restored_taken else None,
            "assigned_to_output": (round(min(t for _, t in firsts) - assigned[0], 2)
                                   if firsts and assigned else None),
            "posts": trickle.sent,
            "failed_posts": trickle.failed,
        }
    finally:
        if trickle:
            trickle.stopped.set()
        for p in procs:
            p.stop()
        broker.kill()
        broker.wait()


def fmt(v):
    return "—" if v is None else f"{v:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/d2c"))
    ap.add_argument("--config", default=os.path.join(ROOT, "config/d2c.toml"),
                    help="settings file of the instances and the mock broker")
    ap.add_argument("--broker", choices=["mock", "tansu"], default="mock",
                    help="librdkafka's mock cluster (d2c mock-broker) or tansu")
    ap.add_argument("--tansu", default=None,
                    help="tansu binary for --broker tansu (default: scripts/install-tansu.sh's)")
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--session-timeout", default="3s")
    ap.add_argument("--per-tick", type=int, default=10, help="alerts posted every 100 ms")
    ap.add_argument("--warmup", type=float, default=10.0,
                    help="seconds of trickle between the steady state and the kill")
    ap.add_argument("--timeout", type=float, default=30.0,
                    help="seconds after the kill to wait for the takeover")
    args = ap.parse_args()
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"bench-failover: no d2c at {args.bin}; cargo build --release --bin d2c first")
    if args.broker == "tansu" and not args.tansu:
        out = subprocess.run([os.path.join(ROOT, "scripts/install-tansu.sh")],
                             capture_output=True, text=True, check=True).stdout
        args.tansu = out.strip().splitlines()[-1]
    workdir = tempfile.mkdtemp(prefix="d2c-bench-failover.")
    results = []
    for run in range(1, args.runs + 1):
        r = one_run(args, args.bin, run, workdir)
        results.append(r)
        print(json.dumps(r), file=sys.stderr, flush=True)
    print(f"\nbroker {args.broker}; session timeout {args.session_timeout}; times in seconds after the kill -9; "
          f"restores as partition:ms (MB of the full checkpoint + deltas read, MB); "
          f"logs of the last run in {workdir}\n")
    print("| run | taken over | kill → revoked | kill → assigned | restores (ms) "
          "| own restored again | kill → last restored | kill → first output (first/last partition) "
          "| assigned → first output |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        restores = ", ".join(
            f"{p}:{ms} ({full / 1e6:.1f} + {deltas}, {dbytes / 1e6:.1f})"
            for p, ms, _, (full, deltas, dbytes) in r["restores"]) or "—"
        own = ",".join(map(str, r["own_restored_again"])) or "none"
        done = "" if r["complete"] else " (incomplete)"
        print(f"| {r['run']} | {','.join(map(str, r['taken']))} | {fmt(r['revoked'])} "
              f"| {fmt(r['assigned'])} | {restores} | {own} | {fmt(r['last_restored'])} "
              f"| {fmt(r['first_output'])} / {fmt(r['last_first_output'])}{done} "
              f"| {fmt(r['assigned_to_output'])} |")
    def med(key):
        vs = [r[key] for r in results if r[key] is not None]
        return statistics.median(vs) if vs else None
    print(f"| median | | {fmt(med('revoked'))} | {fmt(med('assigned'))} | | "
          f"| {fmt(med('last_restored'))} "
          f"| {fmt(med('first_output'))} / {fmt(med('last_first_output'))} "
          f"| {fmt(med('assigned_to_output'))} |")


if __name__ == "__main__":
    main()
