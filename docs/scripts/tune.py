#!/usr/bin/env python3
"""Runs the docs/tuning.md measurements: for each config variant, four 1,000-node runs
(10 crashes; the same with 5% loss; 10 flaky nodes + 2 crashes; a 30 s partition) and prints
a markdown table. usage: tune.py SWIM_SIM_BINARY [seed]"""
import json, subprocess, sys, os
BIN = sys.argv[1]; SEED = sys.argv[2] if len(sys.argv) > 2 else "1"
N = 1000
VARIANTS = [
    ("lan() (default)", ""),
    ("suspicion_mult = 3", "suspicion_mult = 3\n"),
    ("suspicion_mult = 6", "suspicion_mult = 6\n"),
    ("probe_interval = 500ms", 'probe_interval = "500ms"\nprobe_timeout = "250ms"\n'),
    ("gossip_interval = 100ms", 'gossip_interval = "100ms"\n'),
    ("wan() timing", 'probe_interval = "5s"\nprobe_timeout = "3s"\nsuspicion_mult = 6\ngossip_interval = "500ms"\ngossip_nodes = 4\npush_pull_interval = "60s"\n'),
]
def crashes(k, start=20, step=4):
    return "".join(f'[[faults]]\nat = "{start+i*step}s"\nkind = "crash"\nnode = {100+i*37}\n' for i in range(k))
RUNS = [
    ("crash", crashes(10), 0.0),
    ("crash, 5% loss", crashes(10), 0.05),
    ("flaky", "".join(f'[[faults]]\nat = "5s"\nkind = "flaky"\nnode = {300+i*41}\nrate = 0.5\n' for i in range(10)) + crashes(2, 40), 0.0),
    ("partition 30 s", '[[faults]]\nat = "30s"\nkind = "partition"\ngroups = [[' + ", ".join(str(i) for i in range(N//2, N)) + ']]\nduration = "30s"\n', 0.0),
]
def run(cfg, faults, loss):
    text = f'name = "tune"\nnodes = {N}\nduration = "120s"\nseeds = [0, 1, 2]\n[config]\n{cfg}{faults}'
    # [config] must come before [[faults]]; faults are array tables so order is fine.
    path = "/tmp/tune-scenario.toml"
    open(path, "w").write(text)
    args = [BIN, "run", "--scenario-file", path, "--seed", SEED, "--json", "--quiet"]
    if loss: args += ["--loss", str(loss)]
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0 and not out.stdout.strip():
        raise SystemExit(out.stderr)
    return json.loads(out.stdout)
print("| config | run | dead at every live node p50 / p99 (s) | false deaths (a) / (d) | bytes per node per second |")
print("| --- | --- | ---: | ---: | ---: |")
for name, cfg in VARIANTS:
    for rname, faults, loss in RUNS:
        d = run(cfg, faults, loss)
        det = d["detection"]["all_dead_ms"]
        fd = d["false_deaths"]
        load = d["load"]
        b = load["bytes_per_node_s"] + load["stream_bytes_per_node_s"]
        dd = "-" if det["count"] == 0 else f'{det["p50"]/1000:.1f} / {det["p99"]/1000:.1f}'
        print(f'| {name} | {rname} | {dd} | {fd["reachable"]["events"]} / {fd["healthy_in_faulty_run"]["events"]} | {b:.0f} |', flush=True)
