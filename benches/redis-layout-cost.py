#!/usr/bin/env python3
"""What a verification's layout costs Redis, in instructions (callgrind): short scripts
that write a fresh verification's nine fields as a hash (HSET, PEXPIREAT) or as one
string of them joined by NUL (SET ... PXAT); read them back into Lua (HGETALL joined, or
GET); and check a wrong code against each (read, compare, count the failure: HINCRBY on
the hash, or the string split, changed and written back); beside an empty script. Each
figure is the difference between runs of `redis-server` under `valgrind --tool=callgrind`
making 2,000 and 6,000 calls, divided by 4,000, measured as redis-script-cost.py does.

    python3 benches/redis-layout-cost.py                 # every script
    python3 benches/redis-layout-cost.py empty get_packed

Needs valgrind, redis-server and the Python package `redis` (pip install redis).
"""

import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "redis_script_cost", os.path.join(HERE, "redis-script-cost.py"))
redis_script_cost = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(redis_script_cost)

STORED = 2000
FEW, MANY = 2000, 6000
EXPIRES = "9999999999999"


def fields(i):
    """A fresh verification's names and values, as a start writes them."""
    return ["id", "%032x" % i, "to", "+12015551234", "hash", "a" * 64, "channel", "sms",
            "created", "1764763000000", "expires", "1764763600000", "status", "pending",
            "locale", "en", "region", "US"]


# The verification read, compared with a wrong code, its failure counted, and answered
# joined: `vh` is the hash as HGETALL gives it (names and values in turn).
WRONG_HASH = r"""
local vh = redis.call('HGETALL', KEYS[1])
local function field(name) for i = 1, #vh, 2 do if vh[i] == name then return vh[i + 1] end end end
if field('status') ~= 'pending' or field('hash') == ARGV[1] then return 0 end
local failed = redis.call('HINCRBY', KEYS[1], 'failed', '1')
vh[#vh + 1] = 'failed' vh[#vh + 1] = tostring(failed)
return table.concat(vh, '\0')
"""

# The same on the packed string: split at each NUL, changed, joined and written back.
WRONG_PACKED = r"""
local s = redis.call('GET', KEYS[1])
local vh, from = {}, 1
while true do
  local nul = string.find(s, '\0', from, true)
  if not nul then vh[#vh + 1] = string.sub(s, from) break end
  vh[#vh + 1] = string.sub(s, from, nul - 1)
  from = nul + 1
end
local function at(name) for i = 1, #vh, 2 do if vh[i] == name then return i + 1 end end end
if vh[at('status')] ~= 'pending' or vh[at('hash')] == ARGV[1] then return 0 end
local f = at('failed')
if f then vh[f] = tostring(tonumber(vh[f]) + 1) else vh[#vh + 1] = 'failed' vh[#vh + 1] = '1' end
local joined = table.concat(vh, '\0')
redis.call('SET', KEYS[1], joined, 'KEEPTTL')
return joined
"""

# Each script, and the keys and arguments of its i-th call. Reads go to the STORED
# verifications written before, as hashes `h:N` and as strings `s:N`.
SCRIPTS = {
    "empty": ("return 1", lambda i: ([], [])),
    "hset_fresh": (
        "redis.call('HSET', KEYS[1], unpack(ARGV, 2)) "
        "redis.call('PEXPIREAT', KEYS[1], ARGV[1]) return 1",
        lambda i: (["v:%d" % i], [EXPIRES] + fields(i))),
    "set_packed": (
        "redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[1]) return 1",
        lambda i: (["v:%d" % i], [EXPIRES, "\0".join(fields(i))])),
    "hgetall_concat": (
        r"return table.concat(redis.call('HGETALL', KEYS[1]), '\0')",
        lambda i: (["h:%d" % (i % STORED)], [])),
    "get_packed": (
        "return redis.call('GET', KEYS[1])",
        lambda i: (["s:%d" % (i % STORED)], [])),
    "wrong_hash": (WRONG_HASH, lambda i: (["h:%d" % (i % STORED)], ["b" * 64])),
    "wrong_packed": (WRONG_PACKED, lambda i: (["s:%d" % (i % STORED)], ["b" * 64])),
}


def drive(client, name, calls):
    body, call = SCRIPTS[name]
    client.flushall()
    for i in range(STORED):
        f = fields(i)
        client.hset("h:%d" % i, mapping=dict(zip(f[::2], f[1::2])))
        client.set("s:%d" % i, "\0".join(f))
    sha = client.script_load(body)
    pipe = client.pipeline(transaction=False)
    for i in range(calls):
        keys, args = call(i)
        pipe.evalsha(sha, len(keys), *keys, *args)
        if i % 500 == 499:
            pipe.execute()
    pipe.execute()


def main():
    for name in sys.argv[1:] or SCRIPTS:
        if name not in SCRIPTS:
            raise SystemExit("no script %r; there are: %s" % (name, ", ".join(SCRIPTS)))
        counts = [redis_script_cost.redis_instructions(
            lambda client, n=n: drive(client, name, n)) for n in (FEW, MANY)]
        print("%-16s %8.0f instructions" % (name, (counts[1] - counts[0]) / (MANY - FEW)),
              flush=True)


if __name__ == "__main__":
    main()
