#!/usr/bin/env python3
"""Turn the benchmark suite's CSV into the table of tram against its peers, and a PNG chart.

Input: rows `workload,setting,system,metric,value` (bench/results/latest.csv), one per median,
written by the benchmarks of one run. A system whose name starts with "tram" is tram; every
other system of the same workload and setting is a peer. For each workload and setting the
table shows tram's headline metric next to the best peer's, their ratio (above 1.0: tram is
ahead, whether the metric counts operations per second or nanoseconds per operation), their
p99 latency when measured, and the system calls per operation of each.

Example:
  bench/scripts/report.py bench/results/latest.csv --png bench/results/latest.png
"""

import argparse
import collections
import csv
import os
import shutil
import subprocess
import sys
import tempfile

# Headline metrics, the first one present wins; True: higher is better.
HEADLINE = [("ops_per_s", True), ("msgs_per_s", True), ("requests_per_s", True),
            ("ns_per_op", False), ("p50_us", False)]
SYSCALLS = ("syscalls_per_op", "syscalls_per_msg", "syscalls_per_req")
WORKLOAD_ORDER = ["nop", "await", "echo", "echo-scaling", "http", "http-scaling", "randread",
                  "wake"]


def load(path):
    """{(workload, setting): {system: {metric: value}}}, in the order rows first appear."""
    table = collections.OrderedDict()
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                value = float(row["value"])
            except (KeyError, TypeError, ValueError):
                continue
            key = (row["workload"], row["setting"])
            table.setdefault(key, collections.OrderedDict()).setdefault(
                row["system"], {})[row["metric"]] = value
    return table


def headline(systems):
    for metric, higher in HEADLINE:
        if any(metric in m for m in systems.values()):
            return metric, higher
    return None, True


def syscalls(metrics):
    for name in SYSCALLS:
        if name in metrics:
            return metrics[name]
    return None


def fmt(value):
    if value is None:
        return "-"
    if value >= 100_000:
        return f"{value / 1e6:.2f}M" if value >= 1e6 else f"{value / 1e3:.0f}k"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def compare(table):
    """One line per workload and setting where tram and at least one peer were measured."""
    lines = []
    order = {w: i for i, w in enumerate(WORKLOAD_ORDER)}
    for (workload, setting), systems in sorted(
            table.items(), key=lambda kv: order.get(kv[0][0], len(order))):
        metric, higher = headline(systems)
        if metric is None:
            continue
        trams = {s: m for s, m in systems.items() if s.startswith("tram") and metric in m}
        peers = {s: m for s, m in systems.items() if not s.startswith("tram") and metric in m}
        for tram_name, tram in trams.items():
            peer_name, peer = None, None
            if peers:
                pick = max if higher else min
                peer_name = pick(peers, key=lambda s: peers[s][metric])
                peer = peers[peer_name]
            ratio = None
            if peer and peer[metric] and tram[metric]:
                ratio = tram[metric] / peer[metric] if higher else peer[metric] / tram[metric]
            lines.append({
                "workload": workload, "setting": setting, "metric": metric,
                "tram": tram_name, "tram_value": tram[metric],
                "peer": peer_name, "peer_value": peer[metric] if peer else None,
                "ratio": ratio,
                "tram_p99": tram.get("p99_us"), "peer_p99": peer.get("p99_us") if peer else None,
                "tram_sys": syscalls(tram), "peer_sys": syscalls(peer) if peer else None,
            })
    return lines


def print_table(lines, out=sys.stdout):
    head = ["workload", "setting", "metric", "tram", "value", "best peer", "value", "ratio",
            "p99 us tram/peer", "syscalls/op tram/peer"]
    rows = []
    for l in lines:
        rows.append([
            l["workload"], l["setting"], l["metric"], l["tram"], fmt(l["tram_value"]),
            l["peer"] or "(none measured)", fmt(l["peer_value"]),
            f"{l['ratio']:.2f}x" if l["ratio"] else "-",
            f"{fmt(l['tram_p99'])} / {fmt(l['peer_p99'])}",
            f"{fmt(l['tram_sys'])} / {fmt(l['peer_sys'])}",
        ])
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |", file=out)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=out)
    for r in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |", file=out)


def draw(lines, png):
    """A bar per comparison: tram's ratio to the best peer, with the 1.0 line."""
    if shutil.which("gnuplot") is None:
        print("report: no gnuplot, no chart (Debian: gnuplot-nox)", file=sys.stderr)
        return False
    bars = [l for l in lines if l["ratio"]]
    if not bars:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "ratios.dat")
        with open(data, "w") as f:
            # Top to bottom in table order: gnuplot counts y upwards.
            for i, l in enumerate(reversed(bars)):
                label = f"{l['workload']} {l['setting']}: {l['tram']} vs {l['peer']}"
                f.write(f"{i} {l['ratio']:.4f} \"{label}\"\n")
        top = max(1.2, max(l["ratio"] for l in bars) * 1.1)
        script = f"""
set terminal pngcairo noenhanced size 1100,{140 + 26 * len(bars)} font "sans,10"
set output "{png}"
set title "tram / best peer, measured in the same run (right of the red line: tram ahead)"
set style fill solid 0.8 border -1
set xrange [0:{top:.2f}]
set yrange [-0.7:{len(bars) - 0.3}]
set grid xtics
set key off
set lmargin 52
set arrow from 1, graph 0 to 1, graph 1 nohead lc rgb "red" lw 2
plot "{data}" using ($2/2):1:($2/2):(0.35):ytic(3) with boxxyerror lc rgb "#3b6ea8", \\
     "{data}" using 2:1:(sprintf("%.2fx", $2)) with labels left offset 0.5,0
"""
        try:
            subprocess.run(["gnuplot"], input=script, text=True, check=True, timeout=60)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
            print(f"report: gnuplot failed: {e}", file=sys.stderr)
            return False
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", help="rows workload,setting,system,metric,value")
    parser.add_argument("--png", help="draw the ratios here (gnuplot)")
    args = parser.parse_args()
    if not os.path.exists(args.csv):
        sys.exit(f"report: {args.csv} does not exist: run the benchmarks first")
    lines = compare(load(args.csv))
    if not lines:
        sys.exit(f"report: {args.csv} has no tram row to compare")
    print_table(lines)
    if args.png and draw(lines, args.png):
        print(f"\n(chart: {args.png})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
