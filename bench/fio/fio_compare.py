#!/usr/bin/env python3
"""Random 4 KiB reads of a 1 GiB file with fio: the peers of tram's file reader.

Runs, pinned to one CPU (taskset), fio's io_uring engine at queue depth 1 and 32 and its psync
engine (queue depth 1: pread has none), each on the page-cached file and with O_DIRECT; takes
the median of several runs; prints a table and appends CSV rows
`workload,setting,system,metric,value` (metrics ops_per_s, p50_us, p99_us of the total
latency, submission to completion; settings such as
4KiB-rand/qd32/direct; systems fio-io_uring and fio-psync) to --csv.

The file is made once in --dir (default: a temp dir under /var/tmp, on a real disk, since
O_DIRECT needs one; tmpfs refuses it) and read once through the page cache before the cached
runs. Job files: bench/fio/randread-{io_uring,psync}.fio.

  bench/fio/fio_compare.py --runs 3 --runtime 3 --csv bench/results/latest.csv
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FILE_SIZE = 1 << 30

# (system, engine job file, queue depth)
JOBS = [("fio-psync", "randread-psync.fio", 1),
        ("fio-io_uring", "randread-io_uring.fio", 1),
        ("fio-io_uring", "randread-io_uring.fio", 32)]


def make_file(path):
    if os.path.exists(path) and os.path.getsize(path) == FILE_SIZE:
        return
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(FILE_SIZE // len(chunk)):  # bounded: 1024 chunks
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())


def warm_cache(path):
    with open(path, "rb") as f:
        while f.read(1 << 20):  # bounded by the file's size
            pass


def fio_time(seconds):
    """A duration for fio: in milliseconds, since fio reads "0.5" (seconds) as 0, and a
    time_based job with runtime 0 runs until it is killed."""
    return f"{max(int(seconds * 1000), 1)}ms"


def run_fio(args, job_file, depth, direct, path):
    env = dict(os.environ, FIO_FILE=path, FIO_IODEPTH=str(depth), FIO_DIRECT=str(direct),
               FIO_RUNTIME=fio_time(args.runtime), FIO_RAMP=fio_time(args.ramp))
    cmd = ["taskset", "-c", str(args.cpu), "fio", "--output-format=json",
           os.path.join(HERE, job_file)]
    try:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=args.runtime + args.ramp + 120)
    except subprocess.TimeoutExpired:
        print(f"fio_compare: {job_file} qd{depth} ran too long", file=sys.stderr)
        return None
    if proc.returncode != 0:
        print(f"fio_compare: {job_file} qd{depth} direct={direct} failed: "
              f"{proc.stderr.decode(errors='replace').strip()}", file=sys.stderr)
        return None
    text = proc.stdout.decode(errors="replace")
    report = json.loads(text[text.index("{"):])  # fio may print notes before the JSON
    read = report["jobs"][0]["read"]
    # Total latency (submission to completion) where the job asks for it (lat_percentiles),
    # else completion latency alone, which leaves out an io_uring submission's time.
    latency = read["lat_ns"] if "percentile" in read.get("lat_ns", {}) else read["clat_ns"]
    percentiles = latency.get("percentile", {})
    job = report["jobs"][0]
    # The job's own CPU time (usr_cpu, sys_cpu: per cent of its runtime after the ramp).
    cpu_us = (job["usr_cpu"] + job["sys_cpu"]) / 100 * job["job_runtime"] * 1e3
    return {"ops_per_s": read["iops"],
            "cpu_us_per_op": cpu_us / max(read["total_ios"], 1),
            "p50_us": percentiles.get("50.000000", 0) / 1e3,
            "p99_us": percentiles.get("99.000000", 0) / 1e3}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", help="where the 1 GiB file lives (kept when given)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--runtime", type=float, default=3)
    parser.add_argument("--ramp", type=float, default=0.5)
    parser.add_argument("--cpu", type=int, default=1)
    parser.add_argument("--csv", help="append workload,setting,system,metric,value rows here")
    args = parser.parse_args()
    if shutil.which("fio") is None:
        print("fio_compare: skipped: fio not installed (Debian: apt-get install fio)")
        return 0

    workdir = args.dir or tempfile.mkdtemp(prefix="tram-fio.", dir="/var/tmp")
    path = os.path.join(workdir, "randread-1g.bin")
    try:
        make_file(path)
        warm_cache(path)
        results = {}
        for direct in (0, 1):
            mode = "direct" if direct else "cached"
            for run in range(args.runs):
                for system, job_file, depth in JOBS:
                    setting = f"4KiB-rand/qd{depth}/{mode}"
                    r = run_fio(args, job_file, depth, direct, path)
                    if r:
                        results.setdefault((setting, system), []).append(r)
                        print(f"  {setting:>22} run {run + 1} {system:>13}: "
                              f"{r['ops_per_s']:.0f} ops/s p50 {r['p50_us']:.1f} us",
                              file=sys.stderr, flush=True)
    finally:
        if not args.dir:
            shutil.rmtree(workdir, ignore_errors=True)

    rows = []
    print(f"\nRandom 4 KiB reads of 1 GiB, medians of {args.runs} runs of {args.runtime:g} s "
          f"(CPU {args.cpu})")
    print(f"{'setting':>22} {'system':>13} {'ops/s':>10} {'p50 us':>8} {'p99 us':>8}")
    for (setting, system), runs in results.items():
        med = {m: statistics.median(r[m] for r in runs) for m in ("ops_per_s", "p50_us", "p99_us")}
        print(f"{setting:>22} {system:>13} {med['ops_per_s']:>10.0f} {med['p50_us']:>8.1f} "
              f"{med['p99_us']:>8.1f}")
        for metric, value in med.items():
            fmt = f"{value:.0f}" if metric == "ops_per_s" else f"{value:.3f}"
            rows.append(f"fio,{setting},{system},{metric},{fmt}")
    if args.csv:
        new_file = not os.path.exists(args.csv) or os.path.getsize(args.csv) == 0
        with open(args.csv, "a") as f:
            if new_file:
                f.write("workload,setting,system,metric,value\n")
            f.writelines(row + "\n" for row in rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
