#!/usr/bin/env python3
"""What a verification's layout costs Redis, in instructions (callgrind): short scripts
that write a fresh verification's nine fields as a hash (HSET, PEXPIREAT) or as one
string of them joined by NUL (SET ... PXAT); read them back into Lua (HGETALL joined, or
GET); and check a wrong code against each (read, compare, count the failure: HINCRBY on
the hash, or the string split, changed and written back); beside an empty script. Each
figure is the difference between runs of `redis-server` under `valgrind --tool=callgrind`
making 2,000 and 6,000 calls, divided by 4,000, as in redis-script-cost.py.

    python3 benches/redis-layout-cost.py                 # every script
    python3 benches/redis-layout-cost.py empty get_packed

Needs valgrind, redis-server and the Python package `redis` (pip install redis).
"""
import os, subprocess, tempfile, time, redis, sys
PORT = 7393
FIELDS = ["id", "%032x", "to", "+12015551234", "hash", "a"*64, "channel", "sms", "created", "1764763000000",
          "expires", "1764763600000", "status", "pending", "locale", "en", "region", "US"]
SCRIPTS = {
 "empty": ("return 1", lambda i: ([], [])),
 "hset_fresh": ("redis.call('HSET', KEYS[1], unpack(ARGV, 2)) redis.call('PEXPIREAT', KEYS[1], ARGV[1]) return 1",
                lambda i: (["v:%d" % i], ["9999999999999"] + [f % i if "%" in f else f for f in FIELDS])),
 "set_packed": ("redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[1]) return 1",
                lambda i: (["v:%d" % i], ["9999999999999", "\0".join(f % i if "%" in f else f for f in FIELDS)])),
 "hgetall_concat": ("return table.concat(redis.call('HGETALL', KEYS[1]), '\\0')", lambda i: (["h:%d" % (i % 2000)], [])),
 "get_packed": ("return redis.call('GET', KEYS[1])", lambda i: (["s:%d" % (i % 2000)], [])),
 "wrong_hash": ("""local vh = redis.call('HGETALL', KEYS[1])
local function field(name) for i = 1, #vh, 2 do if vh[i] == name then return vh[i + 1] end end end
if field('status') ~= 'pending' or field('hash') == ARGV[1] then return 0 end
local failed = redis.call('HINCRBY', KEYS[1], 'failed', '1')
vh[#vh + 1] = 'failed' vh[#vh + 1] = tostring(failed)
return table.concat(vh, '\\0')""", lambda i: (["h:%d" % (i % 2000)], ["b" * 64])),
 "wrong_packed": ("""local s = redis.call('GET', KEYS[1])
local vh = {}
for part in string.gmatch(s, '([^%z]*)%z?') do vh[#vh + 1] = part end
local function at(name) for i = 1, #vh, 2 do if vh[i] == name then return i + 1 end end end
if vh[at('status')] ~= 'pending' or vh[at('hash')] == ARGV[1] then return 0 end
local f = at('failed')
if f then vh[f] = tostring(tonumber(vh[f]) + 1) else vh[#vh + 1] = 'failed' vh[#vh + 1] = '1' end
local joined = table.concat(vh, '\\0')
redis.call('SET', KEYS[1], joined, 'KEEPTTL')
return joined""", lambda i: (["s:%d" % (i % 2000)], ["b" * 64])),
}
def drive(c, name, n):
    body, args = SCRIPTS[name]
    c.flushall()
    for i in range(2000):
        vals = [f % i if "%" in f else f for f in FIELDS]
        c.hset("h:%d" % i, mapping=dict(zip(vals[::2], vals[1::2])))
        c.set("s:%d" % i, "\0".join(vals))
    sha = c.script_load(body)
    p = c.pipeline(transaction=False)
    for i in range(n):
        k, a = args(i)
        p.evalsha(sha, len(k), *k, *a)
        if i % 500 == 499: p.execute()
    p.execute()
def instr(name, n):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cg")
        s = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, "redis-server", "--port", str(PORT), "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=d)
        c = redis.Redis(port=PORT)
        while True:
            try: c.ping(); break
            except redis.ConnectionError: time.sleep(0.3)
        drive(c, name, n); c.shutdown(nosave=True); s.wait()
        return next(int(l.split()[1]) for l in open(out) if l.startswith("summary:"))
for name in sys.argv[1:] or SCRIPTS:
    print("%-16s %8.0f" % (name, (instr(name, 6000) - instr(name, 2000)) / 4000), flush=True)
