#!/usr/bin/env python3
"""Measure TCP echo servers side by side with echo_load, in one run.

Every system under test is just a name and a command line (placeholders {host}, {port},
{build}); tram's echo_server joins as one more --system. Each server runs pinned to one CPU
(taskset); echo_load runs pinned to the other CPU, or to the server's CPU for the single
connection case (a wake-up across cores costs ~60 us on the 2-core VM, which would swamp the
latency being measured). Runs of the systems are interleaved so that drift in the machine's
speed hits them alike; medians of several runs are reported.

The server's syscalls per message come from one more run per system and setting, under
`perf stat -e raw_syscalls:sys_enter,syscalls:sys_enter_<a few> -p SERVER -- echo_load ...`,
so the count covers exactly the client's life; it is divided by echo_load's total_msgs
(warm-up included). Those runs are kept out of the timings: perf slows the server it watches.

Output: a table on stdout, and CSV rows `workload,setting,system,metric,value` (metrics
msgs_per_s, p50_us, p99_us, syscalls_per_msg) appended to --csv.

Scaling (unless --no-scaling): tram's echo_server with --threads 1, and with --threads 2 in
each way of spreading connections over the workers (--accept reuseport: a SO_REUSEPORT
listener per worker; --accept handoff: one acceptor dealing connections out round-robin), each
allowed on both CPUs (--scaling-cpus), against echo_load with two client threads on the same
CPUs, interleaved; rows `echo,SIZE/Nc/scaling,tram-t1,msgs_per_s,...`,
`echo,SIZE/Nc/scaling,tram-t2-MODE,msgs_per_s,...` and
`echo,SIZE/Nc/scaling,tram-MODE,scaling_efficiency,E` with E = msgs/s at 2 threads / (2 x at
1). On a 2-core machine the client shares the cores, so E is a lower bound.
--only-scaling runs just those.

--quick: one size (64 B), 1 and 50 connections, 2 runs of 1 s, for a smoke test.

Example:
  bench/scripts/echo_compare.py --build build-echo --csv /tmp/echo.csv
  bench/scripts/echo_compare.py --build build-echo --only-scaling --runs 3 --duration 2
  bench/scripts/echo_compare.py --build build-peers --csv /tmp/echo.csv \\
      --system epoll='{build}/bench/peers/epoll_echo --host {host} --port {port}' \\
      --system liburing='{build}/bench/peers/liburing_echo --host {host} --port {port}'
"""

import argparse
import atexit
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"  # loopback only, by design

DEFAULT_SYSTEMS = [
    "epoll={build}/bench/peers/epoll_echo --host {host} --port {port}",
    "liburing={build}/bench/peers/liburing_echo --host {host} --port {port}",
    "tram={build}/examples/echo_server/echo_server --host {host} --port {port}",
]

started = []  # server processes to stop, whatever happens


def stop_servers():
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + 3
    for proc in started:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=3)
    started.clear()


def on_signal(signum, _frame):
    stop_servers()
    sys.exit(128 + signum)


def size_label(size):
    if size % 1024 == 0:
        return f"{size // 1024}KiB"
    return f"{size}B"


def parse_systems(specs, build):
    systems = []
    for spec in specs:
        name, sep, command = spec.partition("=")
        if not sep or not name or not command:
            sys.exit(f"echo_compare: --system wants NAME=COMMAND, got {spec!r}")
        systems.append((name, command))
    return systems


def wait_for_port(proc, port, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:  # bounded by the deadline
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def start_server(name, command, port, cpu, build, log_dir):
    argv = shlex.split(command.format(host=HOST, port=port, build=build))
    if not (os.path.isfile(argv[0]) and os.access(argv[0], os.X_OK)) and not shutil.which(argv[0]):
        print(f"echo_compare: {name}: skipped ({argv[0]} not found)", file=sys.stderr)
        return None
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            print(f"echo_compare: {name}: skipped ({HOST}:{port} is already taken; "
                  f"try another --base-port)", file=sys.stderr)
            return None
    except OSError:
        pass
    # The server's messages go to a file: a pipe nobody reads would stall it once full.
    log_path = os.path.join(log_dir, f"server-{name}.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["taskset", "-c", str(cpu)] + argv,
                                stdout=subprocess.DEVNULL, stderr=log)
    started.append(proc)
    if not wait_for_port(proc, port):
        with open(log_path, errors="replace") as log:
            err = log.read().strip()
        print(f"echo_compare: {name}: skipped (no listener on {HOST}:{port}) {err}",
              file=sys.stderr)
        proc.kill()
        return None
    return proc


# Syscalls worth naming in the breakdown; the total comes from raw_syscalls:sys_enter, so any
# syscall missing here still counts (as "other"). Few events on purpose: perf switches every
# per-task event at each context switch of the server, and hundreds of them slow it several
# times over (syscalls:sys_enter_* did here), which would also change how much it batches.
NAMED_SYSCALLS = ["io_uring_enter", "epoll_wait", "epoll_pwait", "read", "write", "recvfrom",
                  "sendto", "recvmsg", "sendmsg", "readv", "writev", "accept4", "epoll_ctl",
                  "setsockopt", "close", "futex"]


def perf_events():
    """The syscall tracepoints perf can count here, comma-joined, or None."""
    if shutil.which("perf") is None:
        return None
    for events in (["raw_syscalls:sys_enter"] +
                   [f"syscalls:sys_enter_{name}" for name in NAMED_SYSCALLS],
                   ["raw_syscalls:sys_enter"],
                   ["syscalls:sys_enter_io_uring_enter"]):
        ok = subprocess.run(["perf", "stat", "-x,", "-e", ",".join(events), "--", "true"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
        if ok.returncode == 0 and b"<not supported>" not in ok.stderr:
            return ",".join(events)
    return None


def parse_perf(text):
    """perf stat -x, output -> (total syscalls or None, {syscall: count})."""
    total = None
    counts = {}
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) < 3 or not fields[0].strip().isdigit():
            continue
        count = int(fields[0])
        if fields[2] == "raw_syscalls:sys_enter":
            total = count
        elif "sys_enter_" in fields[2] and count:
            counts[fields[2].split("sys_enter_")[-1]] = count
    if total is not None and total > sum(counts.values()):
        counts["other"] = total - sum(counts.values())
    return total, counts


def parse_load(text):
    values = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if sep:
            try:
                values[key] = float(value)
            except ValueError:
                pass
    return values


def run_once(args, server, connections, size, client_cpu, events=None, client_threads=1):
    """One echo_load run against server; with events, under perf stat attached to the server
    for exactly the client's lifetime, giving syscalls per message over the whole run."""
    load = [
        "taskset", "-c", str(client_cpu), args.load,
        "--host", HOST, "--port", str(server["port"]),
        "--connections", str(connections), "--size", str(size),
        "--duration", str(args.duration), "--warmup", str(args.warmup),
        "--threads", str(client_threads),
    ]
    perf_out = None
    if events:
        perf_out = os.path.join(args.tmpdir, f"perf-{server['name']}.txt")
        load = ["perf", "stat", "-x,", "-o", perf_out, "-e", events,
                "-p", str(server["proc"].pid), "--"] + load
    limit = args.warmup + args.duration + 90
    setting = f"{size_label(size)}/{connections}c"
    try:
        proc = subprocess.run(load, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=limit)
    except subprocess.TimeoutExpired:
        print(f"echo_compare: {server['name']} {setting}: ran past {limit:.0f} s",
              file=sys.stderr)
        return None
    result = parse_load(proc.stdout.decode())
    if proc.returncode != 0 or "msgs_per_s" not in result:
        print(f"echo_compare: {server['name']} {setting}: echo_load failed "
              f"(exit {proc.returncode}): {proc.stderr.decode(errors='replace').strip()}",
              file=sys.stderr)
        return None
    if perf_out:
        with open(perf_out) as f:
            total, counts = parse_perf(f.read())
        messages = result.get("total_msgs", 0)
        if messages > 0:
            if total is None:  # only io_uring_enter could be counted
                total = sum(counts.values())
            result["syscalls_per_msg"] = total / messages
            result["breakdown"] = {k: v / messages for k, v in counts.items()}
    return result


SCALING_MODES = ("reuseport", "handoff")  # echo_server --accept, at --threads 2


def run_scaling(args, size):
    """tram's echo_server at --threads 1, and at 2 in each --accept mode, on the same CPUs,
    interleaved; rows for the CSV."""
    tram = os.path.join(args.build, "examples", "echo_server", "echo_server")
    if not os.access(tram, os.X_OK):
        print(f"echo_compare: scaling: skipped (no {tram})", file=sys.stderr)
        return []
    servers = []
    variants = [("tram-t1", "--threads 1")] + [
        (f"tram-t2-{mode}", f"--threads 2 --accept {mode}") for mode in SCALING_MODES]
    for i, (name, flags) in enumerate(variants):
        port = args.base_port + 50 + i
        command = f"{tram} --host {{host}} --port {{port}} {flags}"
        proc = start_server(name, command, port, args.scaling_cpus, args.build, args.tmpdir)
        if proc is not None:
            servers.append({"name": name, "port": port, "proc": proc})
    setting = f"{size_label(size)}/{args.scaling_connections}c/scaling"
    rates = {s["name"]: [] for s in servers}
    for run in range(args.runs):
        for server in servers:
            r = run_once(args, server, args.scaling_connections, size, args.scaling_cpus,
                         client_threads=2)
            if r is not None:
                rates[server["name"]].append(r["msgs_per_s"])
                print(f"  {setting:>12} run {run + 1:>2} {server['name']:>20}: "
                      f"{r['msgs_per_s']:.0f} msg/s", file=sys.stderr, flush=True)
    stop_servers()
    rows = []
    med = {name: statistics.median(v) for name, v in rates.items() if v}
    print(f"\nScaling, {setting}, server and 2 client threads on CPUs {args.scaling_cpus}, "
          f"medians of {args.runs} runs")
    for name, value in med.items():
        print(f"{setting:>18} {name:>20} {value:>10.0f}")
        rows.append(f"echo,{setting},{name},msgs_per_s,{value:.0f}")
    for mode in SCALING_MODES:
        two = med.get(f"tram-t2-{mode}")
        if two is not None and med.get("tram-t1", 0) > 0:
            efficiency = two / (2 * med["tram-t1"])
            print(f"{setting:>18} {'efficiency ' + mode:>20} {efficiency:>10.3f}  "
                  f"(t2 / (2 x t1))")
            rows.append(f"echo,{setting},tram-{mode},scaling_efficiency,{efficiency:.3f}")
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", action="append", metavar="NAME=COMMAND",
                        help="a server under test ({host} {port} {build} are substituted); "
                             "repeatable; the first is the baseline of the ratio column")
    parser.add_argument("--build", default="build", help="build directory (default build)")
    parser.add_argument("--load", help="echo_load binary (default BUILD/bench/load/echo_load)")
    parser.add_argument("--sizes", default="64,4096")
    parser.add_argument("--connections", default="1,50,500")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--client-cpu", type=int, default=0)
    parser.add_argument("--same-cpu-up-to", type=int, default=1,
                        help="run the client on the server's CPU up to this many connections")
    parser.add_argument("--base-port", type=int, default=7400)
    parser.add_argument("--no-perf", action="store_true")
    parser.add_argument("--csv", help="append workload,setting,system,metric,value rows here")
    parser.add_argument("--quick", action="store_true",
                        help="64 B at 1 and 50 connections, 2 runs of 1 s (a smoke test)")
    parser.add_argument("--no-scaling", action="store_true",
                        help="skip tram's --threads 1 vs --threads 2 runs")
    parser.add_argument("--only-scaling", action="store_true",
                        help="run only the scaling runs (with the first of --sizes)")
    parser.add_argument("--scaling-cpus", default="0,1",
                        help="CPUs of the scaling runs, server and client alike (default 0,1)")
    parser.add_argument("--scaling-connections", type=int, default=50)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.connections, args.runs = "64", "1,50", 2
        args.duration, args.warmup = 1.0, 0.3

    args.load = args.load or os.path.join(args.build, "bench", "load", "echo_load")
    if not os.access(args.load, os.X_OK):
        sys.exit(f"echo_compare: no echo_load at {args.load} (build it, or pass --load)")
    if args.duration <= 0.6:
        sys.exit("echo_compare: --duration must exceed 0.6 s")
    sizes = [int(s) for s in args.sizes.split(",")]
    conns = [int(c) for c in args.connections.split(",")]
    systems = parse_systems(args.system or DEFAULT_SYSTEMS, args.build)

    args.tmpdir = tempfile.mkdtemp(prefix="echo_compare.")
    atexit.register(shutil.rmtree, args.tmpdir, True)
    atexit.register(stop_servers)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    if args.only_scaling:
        write_csv(args.csv, run_scaling(args, sizes[0]))
        return 0

    events = None if args.no_perf else perf_events()
    if not args.no_perf and events is None:
        print("echo_compare: perf syscall tracepoints unavailable: no syscalls/message",
              file=sys.stderr)

    servers = []
    for i, (name, command) in enumerate(systems):
        port = args.base_port + i
        proc = start_server(name, command, port, args.server_cpu, args.build, args.tmpdir)
        servers.append({"name": name, "port": port, "proc": proc})
    live = [s for s in servers if s["proc"] is not None]
    if not live:
        sys.exit("echo_compare: no server could be started")

    results = {}  # (setting, system) -> list of run results
    started_at = time.monotonic()
    for size in sizes:
        for connections in conns:
            setting = f"{size_label(size)}/{connections}c"
            client_cpu = args.server_cpu if connections <= args.same_cpu_up_to \
                else args.client_cpu
            # Timed runs without perf (it slows the server), interleaved across systems; then
            # one counted run per system for its syscalls per message.
            for run in range(args.runs + (1 if events else 0)):
                counted = run == args.runs
                for server in live:
                    if server["proc"].poll() is not None:
                        continue
                    r = run_once(args, server, connections, size, client_cpu,
                                 events if counted else None)
                    key = "counted" if counted else "timed"
                    if r is not None:
                        results.setdefault((setting, server["name"], key), []).append(r)
                    text = "failed"
                    if r and counted:
                        text = f"{r.get('syscalls_per_msg', float('nan')):.3f} syscalls/msg"
                    elif r:
                        text = (f"{r['msgs_per_s']:.0f} msg/s p50 {r['p50_us']:.1f} us "
                                f"p99 {r['p99_us']:.1f} us")
                    label = "perf" if counted else f"run {run + 1}"
                    print(f"  {setting:>12} {label:>6} {server['name']:>10}: {text}",
                          file=sys.stderr, flush=True)
    for server in live:
        if server["proc"].poll() is not None:
            print(f"echo_compare: {server['name']} exited early (status "
                  f"{server['proc'].returncode}); its later settings are missing",
                  file=sys.stderr)
    stop_servers()
    scaling_rows = [] if args.no_scaling else run_scaling(args, sizes[0])

    rows = []
    baseline = live[0]["name"]
    header = (f"{'setting':>12} {'system':>10} {'msgs/s':>10} {'ratio':>6} {'p50 us':>9} "
              f"{'p99 us':>9} {'sys/msg':>8}  top syscalls per message")
    print(f"\nTCP echo, medians of {args.runs} runs of {args.duration:g} s "
          f"(server on CPU {args.server_cpu}; ratio against {baseline}; syscalls per message "
          f"from one more run under perf, warm-up included)")
    print(header)
    for size in sizes:
        for connections in conns:
            setting = f"{size_label(size)}/{connections}c"
            base = results.get((setting, baseline, "timed"))
            base_rate = statistics.median(r["msgs_per_s"] for r in base) if base else None
            for server in servers:
                runs = results.get((setting, server["name"], "timed"))
                if not runs:
                    print(f"{setting:>12} {server['name']:>10} {'skipped':>10}")
                    continue
                med = {m: statistics.median(r[m] for r in runs)
                       for m in ("msgs_per_s", "p50_us", "p99_us")}
                with_sys = [r for r in results.get((setting, server["name"], "counted"), [])
                            if "syscalls_per_msg" in r]
                breakdown = ""
                if with_sys:
                    med["syscalls_per_msg"] = statistics.median(
                        r["syscalls_per_msg"] for r in with_sys)
                    names = {k for r in with_sys for k in r["breakdown"]}
                    per = {k: statistics.median(r["breakdown"].get(k, 0) for r in with_sys)
                           for k in names}
                    top = sorted(per.items(), key=lambda kv: -kv[1])[:4]
                    breakdown = " ".join(f"{k} {v:.3f}" for k, v in top if v >= 0.0005)
                ratio = med["msgs_per_s"] / base_rate if base_rate else float("nan")
                sys_text = f"{med['syscalls_per_msg']:.3f}" if "syscalls_per_msg" in med else "-"
                print(f"{setting:>12} {server['name']:>10} {med['msgs_per_s']:>10.0f} "
                      f"{ratio:>6.2f} {med['p50_us']:>9.1f} {med['p99_us']:>9.1f} "
                      f"{sys_text:>8}  {breakdown}")
                for metric, value in med.items():
                    fmt = f"{value:.0f}" if metric == "msgs_per_s" else f"{value:.3f}"
                    rows.append(f"echo,{setting},{server['name']},{metric},{fmt}")
    rows += scaling_rows
    print(f"(took {time.monotonic() - started_at:.0f} s)")

    write_csv(args.csv, rows)
    return 0


def write_csv(path, rows):
    """Appends rows to the CSV at path (with its header if new); nothing without a path."""
    if not path:
        return
    new_file = not os.path.exists(path) or os.path.getsize(path) == 0
    with open(path, "a") as f:
        if new_file:
            f.write("workload,setting,system,metric,value\n")
        for row in rows:
            f.write(row + "\n")


if __name__ == "__main__":
    sys.exit(main())
