#!/usr/bin/env python3
"""What Redis spends on a start's script and on a check, in instructions (callgrind).

Counts are repeatable, unlike the load harness's timings on a shared virtual machine:
each figure is the difference between two runs of `redis-server` under
`valgrind --tool=callgrind` that differ only in how many calls they make, divided by
that difference. The scripts are taken from the store's source as it is (or as it was:
pass another copy of `src/store/redis.rs`), with the arguments a start and a check by
number send for distinct numbers, as the load harness's scenarios do.

    python3 benches/redis-script-cost.py                       # this checkout
    git show REV:src/store/redis.rs > /tmp/then.rs && python3 benches/redis-script-cost.py /tmp/then.rs

Needs valgrind, redis-server and the Python package `redis` (pip install redis).
"""

import os
import re
import subprocess
import sys
import tempfile
import time

import redis

PORT = 7391


def scripts(source):
    """The number's start step that issues the code, and the check, as the store builds them."""

    def const(name):
        m = re.search(r'const %s: &str = r#"(.*?)"#;' % name, source, re.S)
        if m:
            return m.group(1)
        m = re.search(r'const %s: &str = "(.*?)";' % name, source, re.S)
        return m.group(1).replace("\\n", "\n")

    own_args = int(re.search(r"SlotStep::new\(TAKE_NUMBER_SLOT, 1, (\d+)", source).group(1))
    granted = re.search(r"fn granted_issuing.*?r#\"(.*?)\"#", source, re.S).group(1)
    for name, value in [("number", 2), ("fresh", 3), ("index", 4),
                        ("own_args", own_args), ("first", own_args + 1)]:
        granted = granted.replace("{%s}" % name, str(value))
    granted = granted.replace("{{", "{").replace("}}", "}")
    prelude = const("WINDOW_LUA") + const("NUMBER_LUA") + const("NUMBER_READ")
    start = prelude + const("ISSUE_LUA") + granted + const("TAKE_NUMBER_SLOT")
    return start, prelude + const("CHECK_CODE"), own_args


def drive(client, source, starts, checks, right):
    start, check, own_args = scripts(source)
    client.flushall()
    start_sha, check_sha = client.script_load(start), client.script_load(check)
    now = int(time.time() * 1000)
    number = lambda i: "+1201555%04d%d" % (i % 10000, i // 10000)
    vid = lambda i: "%032x" % (i + 1)
    pipe = client.pipeline(transaction=False)
    for i in range(starts):
        n = number(i)
        keys = ["p{%s}:n" % n, "p{%s}:n" % n, "p{%s}:v:%s" % (n, vid(i))]
        own = [now, 1000, 1000000, 600000, now // 60000 * 60000, now + 601000][:own_args]
        issue = ["p{%s}:v:" % n, now, vid(i), n, "a" * 64, "sms", now, now + 600000,
                 now + 601000, "", "", "en", "US"]
        pipe.evalsha(start_sha, len(keys), *keys, *own, *issue)
        if i % 500 == 499:
            pipe.execute()
    pipe.execute()
    for j in range(checks):
        i = j % starts
        n = number(i)
        keys = ["p{%s}:n" % n, "p{%s}:v:%s" % (n, vid(i))]
        args = [("a" if right else "b") * 64, now, 1000, 100, 900000, "", now + 900000,
                "p{%s}:v:" % n]
        pipe.evalsha(check_sha, len(keys), *keys, *args)
        if j % 500 == 499:
            pipe.execute()
    pipe.execute()


def instructions(source, starts, checks=0, right=False):
    return redis_instructions(lambda client: drive(client, source, starts, checks, right))


def redis_instructions(work):
    """Instructions of one `redis-server` run under callgrind while `work(client)` runs."""
    with tempfile.TemporaryDirectory() as dir:
        out = os.path.join(dir, "callgrind.out")
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
             "redis-server", "--port", str(PORT), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=dir)
        client = redis.Redis(port=PORT)
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.3)
        work(client)
        client.shutdown(nosave=True)
        server.wait()
        with open(out) as f:
            return next(int(line.split()[1]) for line in f if line.startswith("summary:"))


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "src", "store", "redis.rs")
    source = open(path).read()
    few, many = 2000, 6000
    start = (instructions(source, many) - instructions(source, few)) / (many - few)
    print("start (the number's step, issuing the code): %8.0f instructions" % start)
    for right in (False, True):
        cost = (instructions(source, many, many, right)
                - instructions(source, many, few, right)) / (many - few)
        print("check by number, %s code:             %8.0f instructions"
              % ("right" if right else "wrong", cost))


if __name__ == "__main__":
    main()
