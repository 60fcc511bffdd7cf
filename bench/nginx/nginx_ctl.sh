#!/bin/sh
# Start or stop the benchmark nginx (bench/nginx/nginx.conf.in) on 127.0.0.1.
#
#   nginx_ctl.sh start PORT ROOT [CPU]   prints the run dir (PREFIX) on stdout; nginx's pid is
#                                        PREFIX/nginx.pid (the master; its one worker is its
#                                        child). With CPU, nginx runs pinned there (taskset).
#   nginx_ctl.sh stop PREFIX             stops that nginx (bounded wait) and removes PREFIX.
#   nginx_ctl.sh worker-pid PREFIX       the worker's pid (what perf stat -p should watch).
set -eu

here=$(cd "$(dirname "$0")" && pwd)

die() { echo "nginx_ctl: $*" >&2; exit 1; }

start() {
    [ $# -ge 2 ] || die "usage: nginx_ctl.sh start PORT ROOT [CPU]"
    port=$1 root=$2 cpu=${3:-}
    command -v nginx >/dev/null 2>&1 || die "nginx not installed (Debian: apt-get install nginx)"
    [ -d "$root" ] || die "root $root is not a directory"
    root=$(cd "$root" && pwd)
    prefix=$(mktemp -d "${TMPDIR:-/tmp}/tram-nginx.XXXXXX")
    chmod 755 "$prefix"
    sed -e "s|@PORT@|$port|g" -e "s|@ROOT@|$root|g" -e "s|@PREFIX@|$prefix|g" \
        -e "s|@USER@|$(id -un)|g" "$here/nginx.conf.in" > "$prefix/nginx.conf"
    if [ -n "$cpu" ]; then
        taskset -c "$cpu" nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log"
    else
        nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log"
    fi
    # The master writes its pid file once listening; wait for it, bounded (5 s).
    i=0
    while [ ! -s "$prefix/nginx.pid" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    [ -s "$prefix/nginx.pid" ] || { cat "$prefix/error.log" >&2; rm -rf "$prefix"; die "nginx did not start"; }
    echo "$prefix"
}

worker_pid() {
    [ $# -eq 1 ] || die "usage: nginx_ctl.sh worker-pid PREFIX"
    master=$(cat "$1/nginx.pid")
    pgrep -P "$master" | head -n 1
}

stop() {
    [ $# -eq 1 ] || die "usage: nginx_ctl.sh stop PREFIX"
    prefix=$1
    [ -f "$prefix/nginx.conf" ] || die "$prefix is not a run dir of nginx_ctl.sh"
    if [ -s "$prefix/nginx.pid" ]; then
        pid=$(cat "$prefix/nginx.pid")
        kill -TERM "$pid" 2>/dev/null || true
        # Bounded wait (5 s), then force.
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -rf "$prefix"
}

[ $# -ge 1 ] || die "usage: nginx_ctl.sh start PORT ROOT [CPU] | stop PREFIX | worker-pid PREFIX"
cmd=$1
shift
case "$cmd" in
    start) start "$@" ;;
    stop) stop "$@" ;;
    worker-pid) worker_pid "$@" ;;
    *) die "unknown command $cmd" ;;
esac
