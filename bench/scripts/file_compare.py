#!/usr/bin/env python3
"""Random 4 KiB reads of a 1 GiB file: tram's file reader against fio (io_uring and psync).

Systems: tram (bench/file_read/file_read_bench: QD N = N coroutines), tram-registered (the
same with a registered file and registered buffers), fio-io_uring (fixedbufs, registerfiles:
bench/fio/randread-io_uring.fio) and fio-psync (pread(2), queue depth 1 only). Settings:
queue depth 1 and 32, each page-cached and with O_DIRECT (--quick: qd1/cached and
qd32/direct only). Every process runs pinned to one CPU (taskset). Runs of all systems are
interleaved, run after run, so that drift in the machine hits them alike; medians are
reported, with tram's ratio to each fio engine.

syscalls_per_op comes from one more run per system and setting, without ramp, under
`perf stat -e raw_syscalls:sys_enter`, divided by the reads of that whole run (process set-up
included, which is a few hundred calls against hundreds of thousands of reads); those runs are
kept out of the timings. Skipped when perf is missing.

The file is made once in --dir (default /var/tmp/tram-bench, on a real disk: O_DIRECT needs
a file system that supports it, which tmpfs does not; the direct settings are reported skipped
when it refuses) and read once through the page cache before the runs.

Output: a table, and CSV rows `workload,setting,system,metric,value` (workload randread;
metrics ops_per_s, p50_us, p99_us, syscalls_per_op) appended to --csv.

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

METRICS = ("ops_per_s", "p50_us", "p99_us")


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


def perf_syscalls(cmd, timeout):
    """Runs `cmd` under perf stat; returns (raw_syscalls:sys_enter count, stdout)."""
    out = subprocess.run(["perf", "stat", "-x", ",", "-e", "raw_syscalls:sys_enter", "--"] + cmd,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    if out.returncode != 0:
        return None, ""
    for line in out.stderr.decode(errors="replace").splitlines():
        fields = line.split(",")
        if len(fields) > 2 and "raw_syscalls:sys_enter" in fields[2] and fields[0].isdigit():
            return int(fields[0]), out.stdout.decode(errors="replace")
    return None, ""


def syscalls_tram(args, path, depth, direct, registered):
    cmd = tram_command(args, path, depth, direct, registered, args.runtime, 0)
    count, text = perf_syscalls(cmd, args.runtime + 60)
    if count is None:
        return None
    return count / max(parse_tram(text)["total_reads"], 1)


def syscalls_fio(args, job_file, depth, direct, path):
    env = dict(os.environ, FIO_FILE=path, FIO_IODEPTH=str(depth), FIO_DIRECT=str(direct),
               FIO_RUNTIME=str(args.runtime), FIO_RAMP="0")
    cmd = ["taskset", "-c", str(args.cpu), "fio", "--output-format=json",
           os.path.join(FIO_DIR, job_file)]
    out = subprocess.run(["perf", "stat", "-x", ",", "-e", "raw_syscalls:sys_enter", "--"] + cmd,
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=args.runtime + 120)
    if out.returncode != 0:
        return None
    count = None
    for line in out.stderr.decode(errors="replace").splitlines():
        fields = line.split(",")
        if len(fields) > 2 and "raw_syscalls:sys_enter" in fields[2] and fields[0].isdigit():
            count = int(fields[0])
    text = out.stdout.decode(errors="replace")
    ios = json.loads(text[text.index("{"):])["jobs"][0]["read"]["total_ios"]
    return None if count is None else count / max(ios, 1)


def systems_for(depth):
    """(system, runner) pairs for one queue depth."""
    systems = [
        ("tram", lambda a, p, d, x: run_tram(a, p, d, x, False),
         lambda a, p, d, x: syscalls_tram(a, p, d, x, False)),
        ("tram-registered", lambda a, p, d, x: run_tram(a, p, d, x, True),
         lambda a, p, d, x: syscalls_tram(a, p, d, x, True)),
        ("fio-io_uring", lambda a, p, d, x: fio_compare.run_fio(a, "randread-io_uring.fio", d,
                                                                x, p),
         lambda a, p, d, x: syscalls_fio(a, "randread-io_uring.fio", d, x, p)),
    ]
    if depth == 1:  # pread has no queue depth
        systems.append(
            ("fio-psync", lambda a, p, d, x: fio_compare.run_fio(a, "randread-psync.fio", d, x, p),
             lambda a, p, d, x: syscalls_fio(a, "randread-psync.fio", d, x, p)))
    return systems


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build-release", help="meson build dir with tram")
    parser.add_argument("--dir", default="/var/tmp/tram-bench",
                        help="where the 1 GiB file is made once and kept")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--runtime", type=float, default=3, help="seconds measured per run")
    parser.add_argument("--ramp", type=float, default=0.5)
    parser.add_argument("--cpu", type=int, default=1)
    parser.add_argument("--quick", action="store_true",
                        help="qd1/cached and qd32/direct only, 3 runs of 1 s")
    parser.add_argument("--no-perf", action="store_true", help="skip syscalls_per_op")
    parser.add_argument("--csv", help="append workload,setting,system,metric,value rows here")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.runtime = 3, 1
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

    results = {}
    for depth, direct in settings:
        setting = f"4KiB/qd{depth}/{'direct' if direct else 'cached'}"
        for run in range(args.runs):
            for system, runner, _ in systems_for(depth):
                r = runner(args, path, depth, direct)
                if r:
                    results.setdefault((setting, system), []).append(r)
                    print(f"  {setting:>16} run {run + 1} {system:>15}: {r['ops_per_s']:>9.0f}"
                          f" ops/s p50 {r['p50_us']:.2f} us p99 {r['p99_us']:.2f} us",
                          file=sys.stderr, flush=True)

    syscalls = {}
    if not args.no_perf and shutil.which("perf"):
        for depth, direct in settings:
            setting = f"4KiB/qd{depth}/{'direct' if direct else 'cached'}"
            for system, _, counter in systems_for(depth):
                value = counter(args, path, depth, direct)
                if value is not None:
                    syscalls[(setting, system)] = value

    rows = []
    print(f"\nRandom 4 KiB reads of 1 GiB, medians of {args.runs} interleaved runs of "
          f"{args.runtime:g} s (CPU {args.cpu})")
    print(f"{'setting':>16} {'system':>15} {'ops/s':>9} {'p50 us':>8} {'p99 us':>9} "
          f"{'sysc/op':>7}  tram/fio-io_uring, tram/fio-psync")
    medians = {}
    for (setting, system), runs in results.items():
        medians[(setting, system)] = {m: statistics.median(r[m] for r in runs) for m in METRICS}
    for (setting, system), med in medians.items():
        calls = syscalls.get((setting, system))
        ratio = ""
        if system.startswith("tram"):
            for peer in ("fio-io_uring", "fio-psync"):
                other = medians.get((setting, peer))
                if other:
                    ratio += f" {med['ops_per_s'] / other['ops_per_s']:.2f}x"
        calls_text = f"{calls:.3f}" if calls is not None else "-"
        print(f"{setting:>16} {system:>15} {med['ops_per_s']:>9.0f} {med['p50_us']:>8.2f} "
              f"{med['p99_us']:>9.2f} {calls_text:>7} {ratio}")
        for metric, value in med.items():
            fmt = f"{value:.0f}" if metric == "ops_per_s" else f"{value:.3f}"
            rows.append(f"randread,{setting},{system},{metric},{fmt}")
        if calls is not None:
            rows.append(f"randread,{setting},{system},syscalls_per_op,{calls:.4f}")
    if args.csv:
        new_file = not os.path.exists(args.csv) or os.path.getsize(args.csv) == 0
        with open(args.csv, "a") as f:
            if new_file:
                f.write("workload,setting,system,metric,value\n")
            f.writelines(row + "\n" for row in rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
