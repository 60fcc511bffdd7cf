#!/usr/bin/env python3
"""Random 4 KiB reads of a 1 GiB file: tram's file reader against fio (io_uring and psync).

Systems: tram (bench/file_read/file_read_bench: QD N = N coroutines), tram-registered (the
same with a registered file and registered buffers), fio-io_uring (fixedbufs, registerfiles:
bench/fio/randread-io_uring.fio) and fio-psync (pread(2), queue depth 1 only). Settings:
queue depth 1 and 32, each page-cached and with O_DIRECT (--quick: qd1/cached and
qd32/direct only). Every process runs pinned to one CPU (taskset). Runs of all systems are
interleaved, run after run, so that drift in the machine hits them alike; medians are
reported, with tram's ratio to each fio engine.

The ratio shown is tram's ops/s over the peer's in the same round, median over the rounds: on
a shared machine whose speed drifts by tens of per cent from one run to the next, that pairs
runs taken seconds apart. Latency is from submission to completion for every system (fio's
lat_percentiles; tram's reader reads the clock around the whole co_await).

cpu_us_per_op is the CPU time (user and system) of the measured reads per read: tram's reader
takes it with getrusage over its measured window, fio reports its job's (usr_cpu, sys_cpu).
It bounds a QD1 page-cached reader's ops/s on an idle machine, and other tenants' load
disturbs it far less than ops/s (io_uring's kernel workers are counted by neither).

syscalls_per_op comes from --perf-runs more runs per system and setting, without ramp, under
`perf stat -e raw_syscalls:sys_enter`, divided by the reads of the whole run (process set-up
included: a few hundred calls against hundreds of thousands of reads); those runs are kept
out of the timings. Skipped without perf.

The file is made once in --dir (default /var/tmp/tram-bench, on a real disk: O_DIRECT needs
a file system that supports it, which tmpfs does not; the direct settings are reported skipped
when it refuses) and read once through the page cache before the runs.

Output: a table, and CSV rows `workload,setting,system,metric,value` (workload randread;
metrics ops_per_s, p50_us, p99_us, cpu_us_per_op, syscalls_per_op) appended to --csv.

  bench/scripts/file_compare.py --build build-release --csv bench/results/latest.csv
"""

import argparse
import json
import mmap
import os
import re
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIO_DIR = os.path.join(os.path.dirname(HERE), "fio")
sys.path.insert(0, FIO_DIR)
import fio_compare  # noqa: E402  (make_file, warm_cache, run_fio)

METRICS = ("ops_per_s", "p50_us", "p99_us", "cpu_us_per_op")


def direct_io_works(path):
    """Whether the file system under `path` accepts an aligned O_DIRECT read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError as e:
        return False
    try:
        buf = mmap.mmap(-1, 4096)  # page-aligned
        os.preadv(fd, [buf], 0)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def tram_command(args, path, depth, direct, registered, seconds, ramp):
    exe = os.path.join(args.build, "bench", "file_read", "file_read_bench")
    cmd = [exe, "--file", path, "--qd", str(depth), "--seconds", str(seconds), "--ramp",
           str(ramp)]
    if direct:
        cmd.append("--direct")
    if registered:
        cmd.append("--registered")
    return ["taskset", "-c", str(args.cpu)] + cmd


def parse_tram(text):
    last = text.strip().splitlines()[-1]
    return {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", last)}


def run_tram(args, path, depth, direct, registered):
    cmd = tram_command(args, path, depth, direct, registered, args.runtime, args.ramp)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=args.runtime + args.ramp + 60)
    if proc.returncode != 0:
        print(f"file_compare: {' '.join(cmd)} failed: {proc.stderr.decode().strip()}",
              file=sys.stderr)
        return None
    r = parse_tram(proc.stdout.decode())
    return {m: r[m] for m in METRICS}


PERF_EVENTS = "raw_syscalls:sys_enter"


def perf_counts(cmd, timeout, env=None):
    """Runs `cmd` under perf stat; returns (system calls, stdout) or None."""
    out = subprocess.run(["perf", "stat", "-x", ",", "-e", PERF_EVENTS, "--"] + cmd, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    if out.returncode != 0:
        return None
    calls = None
    for line in out.stderr.decode(errors="replace").splitlines():
        fields = line.split(",")
        if len(fields) < 3:
            continue
        try:
            value = float(fields[0])
        except ValueError:
            continue
        if fields[2].startswith("raw_syscalls:sys_enter"):
            calls = value
    if calls is None:
        return None
    return calls, out.stdout.decode(errors="replace")


def per_op(counts, ops):
    calls, _ = counts
    return {"syscalls_per_op": calls / max(ops, 1)}


def counts_tram(args, path, depth, direct, registered):
    cmd = tram_command(args, path, depth, direct, registered, args.runtime, 0)
    counts = perf_counts(cmd, args.runtime + 60)
    if counts is None:
        return None
    return per_op(counts, parse_tram(counts[1])["total_reads"])


def counts_fio(args, job_file, depth, direct, path):
    env = dict(os.environ, FIO_FILE=path, FIO_IODEPTH=str(depth), FIO_DIRECT=str(direct),
               FIO_RUNTIME=fio_compare.fio_time(args.runtime), FIO_RAMP="0")
    cmd = ["taskset", "-c", str(args.cpu), "fio", "--output-format=json",
           os.path.join(FIO_DIR, job_file)]
    counts = perf_counts(cmd, args.runtime + 120, env)
    if counts is None:
        return None
    text = counts[1]
    return per_op(counts, json.loads(text[text.index("{"):])["jobs"][0]["read"]["total_ios"])


def systems_for(depth):
    """(system, runner) pairs for one queue depth."""
    systems = [
        ("tram", lambda a, p, d, x: run_tram(a, p, d, x, False),
         lambda a, p, d, x: counts_tram(a, p, d, x, False)),
        ("tram-registered", lambda a, p, d, x: run_tram(a, p, d, x, True),
         lambda a, p, d, x: counts_tram(a, p, d, x, True)),
        ("fio-io_uring", lambda a, p, d, x: fio_compare.run_fio(a, "randread-io_uring.fio", d,
                                                                x, p),
         lambda a, p, d, x: counts_fio(a, "randread-io_uring.fio", d, x, p)),
    ]
    if depth == 1:  # pread has no queue depth
        systems.append(
            ("fio-psync", lambda a, p, d, x: fio_compare.run_fio(a, "randread-psync.fio", d, x, p),
             lambda a, p, d, x: counts_fio(a, "randread-psync.fio", d, x, p)))
    return systems


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build-release", help="meson build dir with tram")
    parser.add_argument("--dir", default="/var/tmp/tram-bench",
                        help="where the 1 GiB file is made once and kept")
    parser.add_argument("--runs", type=int, help="interleaved rounds (default 5, --quick 3)")
    parser.add_argument("--runtime", type=float,
                        help="seconds measured per run (default 3, --quick 1)")
    parser.add_argument("--ramp", type=float, default=0.5)
    parser.add_argument("--cpu", type=int, default=1)
    parser.add_argument("--quick", action="store_true",
                        help="qd1/cached and qd32/direct only; fewer, shorter runs")
    parser.add_argument("--perf-runs", type=int,
                        help="runs under perf stat per system and setting (default 3, --quick "
                             "1; 0: none)")
    parser.add_argument("--csv", help="append workload,setting,system,metric,value rows here")
    args = parser.parse_args()
    defaults = (3, 1, 1) if args.quick else (5, 3, 3)
    for option, default in zip(("runs", "runtime", "perf_runs"), defaults):
        if getattr(args, option) is None:
            setattr(args, option, default)
    if shutil.which("fio") is None:
        print("file_compare: skipped: fio not installed (Debian: apt-get install fio)")
        return 0
    exe = os.path.join(args.build, "bench", "file_read", "file_read_bench")
    if not os.access(exe, os.X_OK):
        print(f"file_compare: {exe} not built (ninja -C {args.build})", file=sys.stderr)
        return 1

    os.makedirs(args.dir, exist_ok=True)
    free = shutil.disk_usage(args.dir).free
    path = os.path.join(args.dir, "randread-1g.bin")
    if not os.path.exists(path) and free < 2 * fio_compare.FILE_SIZE:
        print(f"file_compare: skipped: {args.dir} has {free >> 20} MiB free, 2 GiB wanted",
              file=sys.stderr)
        return 1
    fio_compare.make_file(path)
    fio_compare.warm_cache(path)

    settings = [(1, 0), (32, 1)] if args.quick else [(1, 0), (1, 1), (32, 0), (32, 1)]
    if not direct_io_works(path):
        print(f"file_compare: O_DIRECT settings skipped: the file system of {args.dir} refuses "
              f"O_DIRECT (tmpfs does); give --dir on a disk", file=sys.stderr)
        settings = [s for s in settings if s[1] == 0]

    def name(depth, direct):
        return f"4KiB/qd{depth}/{'direct' if direct else 'cached'}"

    results = {}  # (setting, system) -> {round: metrics}
    for depth, direct in settings:
        setting = name(depth, direct)
        for run in range(args.runs):
            for system, runner, _ in systems_for(depth):
                r = runner(args, path, depth, direct)
                if r:
                    results.setdefault((setting, system), {})[run] = r
                    print(f"  {setting:>16} run {run + 1} {system:>15}: {r['ops_per_s']:>9.0f}"
                          f" ops/s p50 {r['p50_us']:.2f} us p99 {r['p99_us']:.2f} us, "
                          f"{r['cpu_us_per_op']:.2f} CPU us/op",
                          file=sys.stderr, flush=True)

    counted = {}  # (setting, system) -> [{syscalls_per_op, cpu_us_per_op}]
    if args.perf_runs > 0 and shutil.which("perf"):
        for depth, direct in settings:
            for run in range(args.perf_runs):
                for system, _, counter in systems_for(depth):
                    c = counter(args, path, depth, direct)
                    if c is not None:
                        counted.setdefault((name(depth, direct), system), []).append(c)
                        print(f"  {name(depth, direct):>16} perf {run + 1} {system:>15}: "
                              f"{c['syscalls_per_op']:.3f} syscalls/op", file=sys.stderr,
                              flush=True)

    def paired_ratio(setting, system, peer):
        """Median over rounds of system/peer ops/s in the same round: drift cancels."""
        mine, theirs = results.get((setting, system), {}), results.get((setting, peer), {})
        ratios = [mine[i]["ops_per_s"] / theirs[i]["ops_per_s"] for i in mine if i in theirs]
        return statistics.median(ratios) if ratios else None

    rows = []
    print(f"\nRandom 4 KiB reads of 1 GiB, medians of {args.runs} interleaved runs of "
          f"{args.runtime:g} s (CPU {args.cpu}); latency from submission to completion")
    print(f"{'setting':>16} {'system':>15} {'ops/s':>9} {'p50 us':>8} {'p99 us':>9} "
          f"{'sysc/op':>7} {'CPUus/op':>8}  ops/s ratio per round, median")
    for (setting, system), by_round in results.items():
        runs = list(by_round.values())
        med = {m: statistics.median(r[m] for r in runs) for m in METRICS}
        counts = counted.get((setting, system), [])
        if counts:
            med["syscalls_per_op"] = statistics.median(c["syscalls_per_op"] for c in counts)
        ratio = ""
        if system.startswith("tram"):
            for peer in ("fio-io_uring", "fio-psync"):
                r = paired_ratio(setting, system, peer)
                if r is not None:
                    ratio += f" {r:.2f}x {peer}"
        calls = f"{med['syscalls_per_op']:.3f}" if "syscalls_per_op" in med else "-"
        cpu = f"{med['cpu_us_per_op']:.2f}"
        print(f"{setting:>16} {system:>15} {med['ops_per_s']:>9.0f} {med['p50_us']:>8.2f} "
              f"{med['p99_us']:>9.2f} {calls:>7} {cpu:>8} {ratio}")
        for metric, value in med.items():
            fmt = f"{value:.0f}" if metric == "ops_per_s" else f"{value:.4f}"
            rows.append(f"randread,{setting},{system},{metric},{fmt}")
    if args.csv:
        new_file = not os.path.exists(args.csv) or os.path.getsize(args.csv) == 0
        with open(args.csv, "a") as f:
            if new_file:
                f.write("workload,setting,system,metric,value\n")
            f.writelines(row + "\n" for row in rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
