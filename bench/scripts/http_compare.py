#!/usr/bin/env python3
"""Measure tram's http_server against nginx with wrk, in one run.

Both serve the same temporary root holding a 1 KiB and a 64 KiB file; nginx runs from
bench/nginx/ (one worker, sendfile on, access log off). Each server runs pinned to one CPU
(taskset), wrk (one thread, 50 connections, keep-alive) pinned to the other. Runs of the
systems are interleaved so that drift in the machine's speed hits them alike; medians of
several runs are reported.

System calls per request come from one more run per system and file, under
`perf stat -e raw_syscalls:sys_enter -p SERVER -- wrk ...`, so the count covers exactly wrk's
life; it is divided by the requests wrk completed. Those runs are kept out of the timings: perf
slows the server it watches.

Scaling: tram with --threads 1, and with --threads 2 in each way of spreading connections over
the workers (--accept reuseport: a SO_REUSEPORT listener per worker; --accept handoff: worker 0
accepts and deals connections out round-robin), runs interleaved, server and wrk (two threads)
both unpinned, 1 KiB file; efficiency = rate(2) / (2 * rate(1)) for each mode. On a 2-CPU
machine wrk shares the CPUs with the server, which bounds what scaling can show.
--only-scaling runs just those.

Output: a table on stdout, and CSV rows `workload,setting,system,metric,value` (workload http,
metrics requests_per_s, p50_us, p99_us, syscalls_per_req; workload http-scaling: systems
tram-1thread, tram-2threads-MODE, metrics requests_per_s and scaling_efficiency) appended to
--csv. nginx or wrk missing: reported as skipped, never faked.

Example:
  bench/scripts/http_compare.py --build build-release --csv /tmp/http.csv
  bench/scripts/http_compare.py --build build-release --only-scaling --runs 3 --duration 3
"""

import argparse
import atexit
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"  # loopback only, by design
HERE = os.path.dirname(os.path.abspath(__file__))
NGINX_CTL = os.path.join(HERE, "..", "nginx", "nginx_ctl.sh")

started = []  # (kind, handle): http_server processes and nginx run dirs to stop


def stop_servers():
    for kind, handle in started:
        if kind == "proc" and handle.poll() is None:
            handle.terminate()
            try:
                handle.wait(timeout=5)
            except subprocess.TimeoutExpired:
                handle.kill()
                handle.wait(timeout=5)
        elif kind == "nginx":
            subprocess.run(["sh", NGINX_CTL, "stop", handle], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
    started.clear()


def on_signal(signum, _frame):
    stop_servers()
    sys.exit(128 + signum)


def note(text):
    print(f"http_compare: {text}", file=sys.stderr, flush=True)


def wait_for_port(port, proc=None, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:  # bounded by the deadline
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def port_taken(port):
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


SCALING_MODES = ("reuseport", "handoff")  # http_server --accept, at --threads 2


def start_tram(exe, root, port, cpus, threads, log_dir, accept=None):
    """http_server pinned to `cpus` (a taskset list), or None when it cannot run; `accept`:
    its --accept mode (None: its default)."""
    if not os.access(exe, os.X_OK):
        note(f"tram: skipped ({exe} not found; build with -Dexamples=true)")
        return None
    if port_taken(port):
        note(f"tram: skipped ({HOST}:{port} is taken; try another --base-port)")
        return None
    name = "tram" if threads == 1 else f"tram-{threads}threads"
    if accept is not None:
        name += f"-{accept}"
    log_path = os.path.join(log_dir, f"{name}.log")
    command = ["taskset", "-c", cpus, exe, "--root", root, "--host", HOST, "--port", str(port),
               "--threads", str(threads)]
    if accept is not None:
        command += ["--accept", accept]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    started.append(("proc", proc))
    if not wait_for_port(port, proc):
        with open(log_path, errors="replace") as log:
            note(f"tram: skipped (no listener on {HOST}:{port}) {log.read().strip()}")
        proc.kill()
        return None
    return {"name": name, "port": port, "pid": proc.pid, "proc": proc}


def start_nginx(root, port, cpu):
    if shutil.which("nginx") is None:
        note("nginx: skipped (not installed; Debian: apt-get install nginx)")
        return None
    if port_taken(port):
        note(f"nginx: skipped ({HOST}:{port} is taken)")
        return None
    r = subprocess.run(["sh", NGINX_CTL, "start", str(port), root, str(cpu)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0:
        note(f"nginx: skipped ({r.stderr.decode(errors='replace').strip()})")
        return None
    prefix = r.stdout.decode().strip()
    started.append(("nginx", prefix))
    worker = subprocess.run(["sh", NGINX_CTL, "worker-pid", prefix], stdout=subprocess.PIPE,
                            timeout=30).stdout.decode().strip()
    if not wait_for_port(port) or not worker:
        note("nginx: skipped (no listener or no worker)")
        return None
    return {"name": "nginx", "port": port, "pid": int(worker), "proc": None}


def to_us(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return None
    return float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]


def parse_wrk(text):
    """wrk --latency output -> {requests_per_s, p50_us, p99_us, requests, errors}."""
    out = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["requests_per_s"] = float(m.group(1))
    m = re.search(r"(\d+) requests in", text)
    if m:
        out["requests"] = int(m.group(1))
    for pct, key in (("50", "p50_us"), ("99", "p99_us")):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
        if m and to_us(m.group(1)) is not None:
            out[key] = to_us(m.group(1))
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(g) for g in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors += int(m.group(1))
    out["errors"] = errors
    return out


def perf_ok():
    if shutil.which("perf") is None:
        return False
    r = subprocess.run(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "--", "true"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    return r.returncode == 0 and b"<not supported>" not in r.stderr


def run_wrk(args, server, path, client_cpus, wrk_threads, counted=False):
    url = f"http://{HOST}:{server['port']}{path}"
    cmd = ["wrk", f"-t{wrk_threads}", f"-c{args.connections}", f"-d{args.duration}s",
           "--latency", url]
    if client_cpus is not None:
        cmd = ["taskset", "-c", client_cpus] + cmd
    perf_out = None
    if counted:
        perf_out = os.path.join(args.tmpdir, f"perf-{server['name']}.txt")
        cmd = ["perf", "stat", "-x,", "-o", perf_out, "-e", "raw_syscalls:sys_enter",
               "-p", str(server["pid"]), "--"] + cmd
    limit = args.duration + 60
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=limit)
    except subprocess.TimeoutExpired:
        note(f"{server['name']} {path}: wrk ran past {limit} s")
        return None
    text = r.stdout.decode(errors="replace")
    result = parse_wrk(text)
    if r.returncode != 0 or "requests_per_s" not in result:
        note(f"{server['name']} {path}: wrk failed (exit {r.returncode}): "
             f"{r.stderr.decode(errors='replace').strip()} {text.strip()}")
        return None
    if result["errors"]:
        note(f"{server['name']} {path}: {result['errors']} errors or non-2xx answers")
    if perf_out:
        total = None
        with open(perf_out) as f:
            for line in f:
                fields = line.strip().split(",")
                if len(fields) >= 3 and fields[2] == "raw_syscalls:sys_enter" and \
                        fields[0].isdigit():
                    total = int(fields[0])
        if total is not None and result.get("requests"):
            result["syscalls_per_req"] = total / result["requests"]
    return result


def median_of(runs, metric):
    values = [r[metric] for r in runs if metric in r]
    return statistics.median(values) if values else None


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default="build", help="build directory (default build)")
    parser.add_argument("--csv", help="append workload,setting,system,metric,value rows here")
    parser.add_argument("--quick", action="store_true", help="fewer and shorter runs")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--client-cpu", type=int, default=0)
    parser.add_argument("--base-port", type=int, default=7600)
    parser.add_argument("--no-perf", action="store_true")
    parser.add_argument("--no-scaling", action="store_true")
    parser.add_argument("--only-scaling", action="store_true",
                        help="run only the scaling runs (no nginx comparison)")
    args = parser.parse_args()
    if args.no_scaling and args.only_scaling:
        parser.error("--no-scaling and --only-scaling exclude each other")
    if args.quick:
        args.runs, args.duration = 2, 2

    if shutil.which("wrk") is None:
        note("wrk not installed (Debian: apt-get install wrk): every system skipped")
        return 0
    exe = os.path.join(args.build, "examples", "http_server", "http_server")

    args.tmpdir = tempfile.mkdtemp(prefix="http_compare.")
    atexit.register(shutil.rmtree, args.tmpdir, True)
    atexit.register(stop_servers)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    root = os.path.join(args.tmpdir, "root")
    os.mkdir(root)
    os.chmod(args.tmpdir, 0o755)
    files = [("1KiB", "/1k.bin", 1024), ("64KiB", "/64k.bin", 64 * 1024)]
    for _, path, size in files:
        with open(root + path, "wb") as f:
            f.write(os.urandom(size))

    counted = not args.no_perf and not args.only_scaling and perf_ok()
    if not args.no_perf and not args.only_scaling and not counted:
        note("perf syscall tracepoint unavailable: no syscalls/request")

    servers = []
    if not args.only_scaling:
        servers = [s for s in (start_nginx(root, args.base_port, args.server_cpu),
                               start_tram(exe, root, args.base_port + 1, str(args.server_cpu), 1,
                                          args.tmpdir)) if s is not None]
        if not servers:
            note("no server could be started")
            return 1
    names = ["nginx", "tram"]
    started_at = time.monotonic()
    results = {}  # (setting, system, kind) -> [runs]
    client = str(args.client_cpu)
    for label, path, _ in files if not args.only_scaling else []:
        setting = f"{label}/{args.connections}c"
        for run in range(args.runs + (1 if counted else 0)):
            is_counted = run == args.runs
            for server in servers:
                r = run_wrk(args, server, path, client, 1, is_counted)
                kind = "counted" if is_counted else "timed"
                if r is not None:
                    results.setdefault((setting, server["name"], kind), []).append(r)
                if r and is_counted:
                    text = f"{r.get('syscalls_per_req', float('nan')):.3f} syscalls/req"
                elif r:
                    text = (f"{r['requests_per_s']:.0f} req/s p50 {r.get('p50_us', 0):.0f} us "
                            f"p99 {r.get('p99_us', 0):.0f} us")
                else:
                    text = "failed"
                tag = "perf" if is_counted else f"run {run + 1}"
                note(f"{setting:>10} {tag:>6} {server['name']:>6}: {text}")
    stop_servers()

    scaling = {}  # (threads, accept mode or None) -> [runs]
    if not args.no_scaling:
        ncpu = len(os.sched_getaffinity(0))
        cpus = f"0-{ncpu - 1}"
        port = args.base_port + 2
        variants = [(1, None)] + [(2, mode) for mode in SCALING_MODES]
        for run in range(args.runs):
            for threads, mode in variants:
                server = start_tram(exe, root, port, cpus, threads, args.tmpdir, mode)
                if server is None:
                    continue
                r = run_wrk(args, server, "/1k.bin", None, 2)
                stop_servers()
                if r is not None:
                    scaling.setdefault((threads, mode), []).append(r)
                    flags = f"--threads {threads}" + (f" --accept {mode}" if mode else "")
                    note(f"   scaling  run {run + 1} tram {flags}: "
                         f"{r['requests_per_s']:.0f} req/s")

    rows = []
    if not args.only_scaling:
        print(f"\nHTTP static files, wrk -t1 -c{args.connections}, medians of {args.runs} runs "
              f"of {args.duration} s (server on CPU {args.server_cpu}, wrk on CPU "
              f"{args.client_cpu}; ratio against nginx; syscalls per request from one more run "
              f"under perf)")
        print(f"{'setting':>10} {'system':>8} {'req/s':>10} {'ratio':>6} {'p50 us':>9} "
              f"{'p99 us':>9} {'sys/req':>8}")
    for label, _, _ in files if not args.only_scaling else []:
        setting = f"{label}/{args.connections}c"
        base = median_of(results.get((setting, "nginx", "timed"), []), "requests_per_s")
        for name in names:
            runs = results.get((setting, name, "timed"))
            if not runs:
                print(f"{setting:>10} {name:>8} {'skipped':>10}")
                continue
            med = {m: median_of(runs, m) for m in ("requests_per_s", "p50_us", "p99_us")}
            med = {k: v for k, v in med.items() if v is not None}
            syscalls = median_of(results.get((setting, name, "counted"), []), "syscalls_per_req")
            if syscalls is not None:
                med["syscalls_per_req"] = syscalls
            ratio = med["requests_per_s"] / base if base else float("nan")
            sys_text = f"{syscalls:.3f}" if syscalls is not None else "-"
            print(f"{setting:>10} {name:>8} {med['requests_per_s']:>10.0f} {ratio:>6.2f} "
                  f"{med.get('p50_us', float('nan')):>9.0f} "
                  f"{med.get('p99_us', float('nan')):>9.0f} {sys_text:>8}")
            for metric, value in med.items():
                fmt = f"{value:.0f}" if metric == "requests_per_s" else f"{value:.3f}"
                rows.append(f"http,{setting},{name},{metric},{fmt}")
    if scaling.get((1, None)):
        one = median_of(scaling[(1, None)], "requests_per_s")
        setting = f"1KiB/{args.connections}c"
        print(f"\nScaling (1 KiB, wrk -t2 -c{args.connections}, all CPUs shared, medians of "
              f"{args.runs} runs of {args.duration} s): --threads 1 {one:.0f} req/s")
        rows.append(f"http-scaling,{setting},tram-1thread,requests_per_s,{one:.0f}")
        for mode in SCALING_MODES:
            runs = scaling.get((2, mode))
            if not runs:
                print(f"  --threads 2 --accept {mode:<9} skipped")
                continue
            two = median_of(runs, "requests_per_s")
            efficiency = two / (2 * one)
            print(f"  --threads 2 --accept {mode:<9} {two:.0f} req/s, efficiency "
                  f"{efficiency:.2f}")
            system = f"tram-2threads-{mode}"
            rows.append(f"http-scaling,{setting},{system},requests_per_s,{two:.0f}")
            rows.append(f"http-scaling,{setting},{system},scaling_efficiency,{efficiency:.3f}")
        if scaling.get((2, "reuseport")) and scaling.get((2, "handoff")):
            ratio = (median_of(scaling[(2, "handoff")], "requests_per_s") /
                     median_of(scaling[(2, "reuseport")], "requests_per_s"))
            print(f"  handoff / reuseport at --threads 2: {ratio:.2f}x")
    print(f"(took {time.monotonic() - started_at:.0f} s)")

    if args.csv:
        new_file = not os.path.exists(args.csv) or os.path.getsize(args.csv) == 0
        with open(args.csv, "a") as f:
            if new_file:
                f.write("workload,setting,system,metric,value\n")
            for row in rows:
                f.write(row + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
