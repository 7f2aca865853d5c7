#!/usr/bin/env python3
"""What the service spends on an API start or check, in instructions (callgrind).

Counts are repeatable, unlike the load harness's timings on a shared virtual machine:
each figure is the difference between two runs of the service under
`valgrind --tool=callgrind` that differ only in how many requests they answer, divided
by that difference. Eight keep-alive connections send the requests, each waiting for
its answer; distinct numbers as in the load harness, the console provider, logs at warn.
User-space instructions only: the kernel's share (sockets, wake-ups) is not counted.

    cargo build --release
    python3 benches/service-cost.py                        # starts, Redis backend
    python3 benches/service-cost.py --backend memory       # starts, memory backend
    python3 benches/service-cost.py --check                # wrong codes checked by number
    python3 benches/service-cost.py --bin /tmp/older/phone-verify

Needs valgrind, and redis-server for the Redis backend.
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
API_KEY = "bench-api-key-0123456789abcdef"
CONNECTIONS = 8


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def number(i):
    """The load harness's `nth_number`: distinct, valid US numbers."""
    return "+1201%03d%04d" % (200 + i // 10000, i % 10000)


def config(port, store):
    """The load harness's settings (benches/service.toml), on `port`, with `store` after."""
    with open(os.path.join(HERE, "service.toml")) as f:
        template = f.read()
    for name, value in [("bind", "127.0.0.1:%d" % port), ("static_dir", ROOT + "/static"),
                        ("api_key", API_KEY), ("extra", store)]:
        template = template.replace("{%s}" % name, value)
    return template


def post_all(port, path, bodies, status):
    """POSTs the JSON `bodies` over CONNECTIONS connections; each answer must have `status`."""
    failures = []

    def worker(k):
        try:
            send(k)
        except Exception as e:  # noqa: BLE001 - reported below, as a failed run
            failures.append((type(e).__name__, str(e)))

    def send(k):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for body in bodies[k::CONNECTIONS]:
            conn.request("POST", path, json.dumps(body), {
                "Content-Type": "application/json",
                "Authorization": "Bearer " + API_KEY,
            })
            reply = conn.getresponse()
            text = reply.read()
            if reply.status != status:
                failures.append((reply.status, text))
                return

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit("%s answered %s" % (path, failures[0]))


def instructions(args, starts, checks):
    """Instructions of one service run that makes `starts` starts, then `checks` checks."""
    with tempfile.TemporaryDirectory() as dir:
        redis = None
        store = ""
        if args.backend == "redis":
            redis_port = free_port()
            redis = subprocess.Popen(
                ["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL, cwd=dir)
            store = '[store]\nbackend = "redis"\nredis_url = "redis://127.0.0.1:%d"\n' % redis_port
        port = free_port()
        path = os.path.join(dir, "config.toml")
        with open(path, "w") as f:
            f.write(config(port, store))
        out = os.path.join(dir, "callgrind.out")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PHONE_VERIFY")}
        env["PHONE_VERIFY_CONFIG"] = path
        service = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, args.bin],
            env=env, cwd=dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port)).close()
                    break
                except OSError:
                    if service.poll() is not None:
                        raise SystemExit("the service exited")
                    time.sleep(0.2)
            # One start alone first: under valgrind, the first number's plan takes
            # seconds to compile, and requests queued behind it could time out.
            post_all(port, "/api/v1/verifications", [{"to": number(799999), "channel": "sms"}], 201)
            post_all(port, "/api/v1/verifications",
                     [{"to": number(i), "channel": "sms"} for i in range(starts)], 201)
            # A wrong code (the console's codes are digits; one in a million is right).
            post_all(port, "/api/v1/verifications/check",
                     [{"to": number(i % starts), "code": "000000"} for i in range(checks)], 200)
        finally:
            service.terminate()
            service.wait()
            if redis:
                redis.kill()
                redis.wait()
        with open(out) as f:
            return next(int(line.split()[1]) for line in f if line.startswith("summary:"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "phone-verify"))
    parser.add_argument("--backend", choices=["redis", "memory"], default="redis")
    parser.add_argument("--check", action="store_true", help="count checks, not starts")
    args = parser.parse_args()
    for tool in ["valgrind"] + (["redis-server"] if args.backend == "redis" else []):
        if not shutil.which(tool):
            raise SystemExit(tool + " not found")
    few, many = 500, 2500
    if args.check:
        cost = (instructions(args, 1000, many) - instructions(args, 1000, few)) / (many - few)
        what = "wrong check by number"
    else:
        cost = (instructions(args, many, 0) - instructions(args, few, 0)) / (many - few)
        what = "start"
    print("%s backend, instructions per %s: %.0f" % (args.backend, what, cost))


if __name__ == "__main__":
    main()
