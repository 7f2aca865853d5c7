//! The Redis backend: state shared by any number of instances. Every decision is one
//! Lua script (atomic in Redis), every key has a TTL, and the keys of one number share
//! the hash tag `{+12015550123}` so scripts run on Redis Cluster and Valkey too.
//!
//! Keys (`p` is `store.key_prefix`):
//! `p{NUM}:n` the number (hash: its current id, latest send, send window's slots,
//! consecutive failures and lockout; see `NUMBER_LUA`) · `p{NUM}:v:ID` verification
//! (hash) · `pvid:{ID}` id → number, only for ids this store did not make (its own
//! name their number: see `ids`) · `pip:{IP}:w` sends from an address (hash of slots) ·
//! `pidem:{KEY}` · `p{guard}:prefix:P`, `p{guard}:country:CC`, `p{guard}:spend:DAY`: the
//! fraud guard's and the budget's counters, under one hash tag · `playout`: when this
//! layout began (see `RedisStore::folding`).
//!
//! A start is one script and one append on a single Redis; a check is one script.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{FromRedisValue, Script};
use serde::Deserialize;

use super::e164_shaped;
use super::ids::IdSealer;
use super::{
    CheckDecision, CheckTarget, Guarded, IdempotencyClaim, RETAIN_AFTER_EXPIRY, SlotDecision,
    StartDecision, StoreError, StoredResponse, VerificationKey, VerificationStore,
};
use crate::code::CodeHash;
use crate::domain::guard::{self, FraudLimits, GuardLimits, GuardRefusal, SendFacts};
use crate::domain::rules::{CheckLimits, CheckOutcome, CheckRefusal, SendLimits};
use crate::domain::window;
use crate::domain::{
    Channel, Checker, ProviderCheck, RetryAfter, SendAttempt, Status, Verdict, Verification,
    VoiceTicket,
};
use crate::i18n::Locale;
use crate::metrics::Metrics;
use crate::phone::PhoneNumber;

/// No Redis call may hang a request longer than this.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Lua shared by the scripts that count over a sliding window (see `domain::window`):
/// slots are hash fields named by a tag letter and the slot's start in milliseconds.
const WINDOW_LUA: &str = r#"
-- A field of a hash as HGETALL gave it, or nil.
local function field(h, name)
  for i = 1, #h, 2 do
    if h[i] == name then return h[i + 1] end
  end
  return nil
end
-- The slots tagged `tag` of a hash as HGETALL gave it: their total and the live slots in
-- order, then the fields of those that have passed, for the caller to delete when it writes.
local function window_slots(h, tag, now, window)
  local slots, total, stale = {}, 0, {}
  for i = 1, #h, 2 do
    local f = h[i]
    if string.sub(f, 1, 1) == tag then
      local start = tonumber(string.sub(f, 2))
      if start + window <= now then
        table.insert(stale, f)
      else
        local c = tonumber(h[i + 1])
        total = total + c
        table.insert(slots, {start, c})
      end
    end
  end
  table.sort(slots, function(a, b) return a[1] < b[1] end)
  return total, slots, stale
end
local function wait_for_room(slots, total, max, window, now)
  if total < max then return 0 end
  local remaining = total
  for _, s in ipairs(slots) do
    remaining = remaining - s[2]
    if remaining < max then return s[1] + window - now end
  end
  return window
end
"#;

/// Lua for the number's hash `p{NUM}:n`: `cur` (its current verification's id), `last`
/// (its latest send), `s<slot>` (its sends in the send window's slots), `fails` and
/// `forget` (its consecutive failures, and when they are forgotten), `lock` (locked
/// until). It is kept as long as the longest of these matters.
const NUMBER_LUA: &str = r#"
-- Writes the fields `set` (name, value, ...) to the number's hash `key`, deletes the
-- fields `stale`, and keeps the hash until `at` at least; `h`: what it held before.
-- Written before deleting: a hash emptied, then made again, would have no expiry.
local function write_number(key, h, set, stale, at)
  if #set > 0 then redis.call('HSET', key, unpack(set)) end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  if #h == 0 then
    if #set > 0 then redis.call('PEXPIREAT', key, at) end
  else
    redis.call('PEXPIREAT', key, at, 'GT')
  end
end
"#;

/// `number(key)`: the number's hash, as HGETALL gives it.
const NUMBER_READ: &str = r#"
local function number(key) return redis.call('HGETALL', key) end
"#;

/// `number(key)` while keys of the earlier layout may live (see `RedisStore::folding`):
/// a number without a hash has its keys `sendw`, `cur`, `lock` and `fail` folded into one
/// first, kept as long as the longest of them was.
const NUMBER_FOLD: &str = r#"
local function number(key)
  local h = redis.call('HGETALL', key)
  if #h > 0 then return h end
  local base = string.sub(key, 1, -2)
  local sends_key, cur_key, lock_key, fail_key = base .. 'sendw', base .. 'cur', base .. 'lock', base .. 'fail'
  local set, keep = {}, 0
  local function kept(k)
    local t = redis.call('PEXPIRETIME', k)
    if t > keep then keep = t end
  end
  local sends = redis.call('HGETALL', sends_key)
  for i = 1, #sends do table.insert(set, sends[i]) end
  if #sends > 0 then kept(sends_key) end
  local cur = redis.call('GET', cur_key)
  if cur then
    table.insert(set, 'cur') table.insert(set, cur)
    kept(cur_key)
  end
  local lock = redis.call('GET', lock_key)
  if lock then
    table.insert(set, 'lock') table.insert(set, lock)
    kept(lock_key)
  end
  local fail = redis.call('HMGET', fail_key, 'n', 'until')
  if fail[1] then
    table.insert(set, 'fails') table.insert(set, fail[1])
    table.insert(set, 'forget') table.insert(set, fail[2] or '0')
    kept(fail_key)
  end
  if #set == 0 then return h end
  redis.call('HSET', key, unpack(set))
  redis.call('PEXPIREAT', key, keep)
  redis.call('DEL', sends_key, cur_key, lock_key, fail_key)
  return redis.call('HGETALL', key)
end
"#;

/// KEYS: the number. Its current verification's id, or nothing.
const CURRENT: &str = "return field(number(KEYS[1]), 'cur')";

/// KEYS: the number. ARGV: now, cooldown, max, window, slot, until when the number's hash
/// is kept once this start is granted (its slot's window, its cooldown and, when this step
/// issues the code, the verification). {wait, previous last, issued} (see `granted`). A
/// number without a hash (its first send in a while) has nothing to wait for: no lock, no
/// cooldown, and a window with room (the settings keep `max_sends_per_number` at least 1).
const TAKE_NUMBER_SLOT: &str = r#"
local h = number(KEYS[1])
local wait, stale = 0, {}
if #h > 0 then
  local now, cooldown, max, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  local locked_until = tonumber(field(h, 'lock'))
  if locked_until and now < locked_until then wait = locked_until - now end
  local last = tonumber(field(h, 'last'))
  if last and now < last + cooldown then wait = math.max(wait, last + cooldown - now) end
  local total, slots
  total, slots, stale = window_slots(h, 's', now, window)
  wait = math.max(wait, wait_for_room(slots, total, max, window, now))
end
if wait > 0 then return {wait, '', {}} end
local slot = 's' .. ARGV[5]
local count = field(h, slot)
local set = {slot, count and tostring(tonumber(count) + 1) or '1', 'last', ARGV[1]}
local r, cur = granted({0, field(h, 'last') or ''}, h)
if cur then
  table.insert(set, 'cur')
  table.insert(set, cur)
end
write_number(KEYS[1], h, set, stale, ARGV[6])
return r
"#;

/// KEYS: the number. ARGV: slot, the `last` this start wrote, the `last` before it.
const UNTAKE_NUMBER_SLOT: &str = r#"
if redis.call('HINCRBY', KEYS[1], 's' .. ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], 's' .. ARGV[1]) end
if redis.call('HGET', KEYS[1], 'last') == ARGV[2] then
  if ARGV[3] == '' then redis.call('HDEL', KEYS[1], 'last') else redis.call('HSET', KEYS[1], 'last', ARGV[3]) end
end
return 1
"#;

/// KEYS: sends from the address. ARGV: now, max, window, slot, 'take' or 'peek'. {wait,
/// issued}.
const TAKE_IP_SLOT: &str = r#"
local now, max, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local total, slots, stale = window_slots(redis.call('HGETALL', KEYS[1]), 's', now, window)
local wait = wait_for_room(slots, total, max, window, now)
if wait > 0 or ARGV[5] == 'peek' then return {wait, {}} end
redis.call('HINCRBY', KEYS[1], 's' .. ARGV[4], 1)
if #stale > 0 then redis.call('HDEL', KEYS[1], unpack(stale)) end
redis.call('PEXPIREAT', KEYS[1], tonumber(ARGV[4]) + window)
local r = granted({0})
return r
"#;

/// KEYS: a window hash. ARGV: slot.
const UNTAKE_SLOT: &str = r#"
if redis.call('HINCRBY', KEYS[1], 's' .. ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], 's' .. ARGV[1]) end
return 1
"#;

/// KEYS: prefix, country, the day's spend. ARGV: now, fraud on, fraud window, min sends,
/// min conversion, block, prefix slot, country cap (0: none), country slot, daily limit
/// (0: none), cost, spend key expiry. {'ok'|'fraud'|'country'|'spend', detail, issued}.
const ADMIT: &str = r#"
local now = tonumber(ARGV[1])
local fraud, fwin = ARGV[2] == '1', tonumber(ARGV[3])
local prefix_stale = {}
if fraud then
  local prefix = redis.call('HGETALL', KEYS[1])
  local blocked = tonumber(field(prefix, 'blocked'))
  if blocked and now < blocked then return {'fraud', 0, {}} end
  if blocked then table.insert(prefix_stale, 'blocked') end
  local sends, _, stale_sends = window_slots(prefix, 's', now, fwin)
  local approvals, _, stale_approvals = window_slots(prefix, 'a', now, fwin)
  if sends >= tonumber(ARGV[4]) and approvals < tonumber(ARGV[5]) * sends then
    local blocked_until = now + tonumber(ARGV[6])
    redis.call('HSET', KEYS[1], 'blocked', blocked_until)
    redis.call('PEXPIREAT', KEYS[1], math.max(blocked_until, now + fwin))
    return {'fraud', 1, {}}
  end
  for _, f in ipairs(stale_sends) do table.insert(prefix_stale, f) end
  for _, f in ipairs(stale_approvals) do table.insert(prefix_stale, f) end
end
local cap, hour = tonumber(ARGV[8]), 3600000
local country_stale = {}
if cap > 0 then
  local total, slots, stale = window_slots(redis.call('HGETALL', KEYS[2]), 's', now, hour)
  local wait = wait_for_room(slots, total, cap, hour, now)
  if wait > 0 then return {'country', wait, {}} end
  country_stale = stale
end
local limit, cost = tonumber(ARGV[10]), tonumber(ARGV[11])
local spent = tonumber(redis.call('GET', KEYS[3]) or '0')
if limit > 0 and spent + cost > limit then return {'spend', 0, {}} end
if fraud then
  redis.call('HINCRBY', KEYS[1], 's' .. ARGV[7], 1)
  if #prefix_stale > 0 then redis.call('HDEL', KEYS[1], unpack(prefix_stale)) end
  redis.call('PEXPIREAT', KEYS[1], now + fwin)
end
if cap > 0 then
  redis.call('HINCRBY', KEYS[2], 's' .. ARGV[9], 1)
  if #country_stale > 0 then redis.call('HDEL', KEYS[2], unpack(country_stale)) end
  redis.call('PEXPIREAT', KEYS[2], tonumber(ARGV[9]) + hour)
end
redis.call('INCRBY', KEYS[3], cost)
redis.call('PEXPIREAT', KEYS[3], ARGV[12])
local r = granted({'ok', 0})
return r
"#;

/// KEYS: prefix. ARGV: now, fraud window, slot.
const APPROVE: &str = r#"
local now, fwin = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('HINCRBY', KEYS[1], 'a' .. ARGV[3], 1)
local blocked = tonumber(redis.call('HGET', KEYS[1], 'blocked')) or 0
redis.call('PEXPIREAT', KEYS[1], math.max(now + fwin, blocked))
return 1
"#;

/// Lua that issues a code: `issue(h, vkey, index, o)` with the number's hash as read, the
/// fresh verification's key and (on a single Redis, where any key may be reached, for an
/// id this store did not make) the fresh id's index entry. Its arguments are `ARGV[o + 1]`
/// on (see `RedisStore::issue_call`): the verification key prefix, now, then the fresh
/// verification's fields, then the fields written only when they have a value. Answers
/// the pending verification given the new code, as HGETALL, or nothing when the fresh one
/// was stored (the caller has it); then the id the number's `cur` is to name (nothing when
/// it stays), and until when the number's hash must be kept.
///
/// Arguments are used as the strings they came as: a Lua number would be converted and
/// printed again. A fresh verification's hash holds only what differs from its defaults
/// (`sent` is `created`, `failed` is 0, no `voice` or `browser`: see `RedisStore::parse`).
const ISSUE_LUA: &str = r#"
local function issue(h, vkey, index, o)
  local current = field(h, 'cur')
  if current then
    local key = ARGV[o + 1] .. current
    local v = redis.call('HMGET', key, 'status', 'expires', 'browser')
    if v[1] == 'pending' and tonumber(ARGV[o + 2]) < tonumber(v[2]) then
      if (v[3] or '') == ARGV[o + 11] then
        redis.call('HSET', key, 'hash', ARGV[o + 5], 'channel', ARGV[o + 6], 'sent', ARGV[o + 7],
          'expires', ARGV[o + 8], 'voice', ARGV[o + 10], 'locale', ARGV[o + 12], 'owner', '')
        redis.call('PEXPIREAT', key, ARGV[o + 9])
        return redis.call('HGETALL', key), nil, ARGV[o + 9]
      end
      redis.call('HSET', key, 'status', 'canceled', 'voice', '')
    end
  end
  redis.call('HSET', vkey, 'id', ARGV[o + 3], 'to', ARGV[o + 4], 'hash', ARGV[o + 5],
    'channel', ARGV[o + 6], 'created', ARGV[o + 7], 'expires', ARGV[o + 8], 'status', 'pending',
    'locale', ARGV[o + 12], 'region', ARGV[o + 13], unpack(ARGV, o + 14))
  redis.call('PEXPIREAT', vkey, ARGV[o + 9])
  if index then redis.call('SET', index, ARGV[o + 4], 'PXAT', ARGV[o + 9]) end
  return {}, ARGV[o + 3], ARGV[o + 9]
end
"#;

/// KEYS: the number, the fresh verification, its index entry (when `issue_call` gives one).
const ISSUE_CODE: &str = r#"
local h = number(KEYS[1])
local answer, cur, at = issue(h, KEYS[2], KEYS[3], 0)
write_number(KEYS[1], h, cur and {'cur', cur} or {}, {}, at)
return answer
"#;

/// The end of a script that takes a send slot, when it grants one: `granted(answer, h)`
/// appends to the answer what issuing answered, or nothing when this step issues nothing.
const GRANTED_ALONE: &str = "local function granted(r) table.insert(r, {}) return r end\n";

/// `granted` for a script that is the last step of a start and issues the code too: the
/// issue's keys (the number, the fresh verification, any index entry) follow the script's
/// own `own_keys` keys, its arguments the `own_args`. The number's own step passes the
/// number's hash `h` and writes the id issuing gives its `cur` (which `granted` answers
/// after the answer) with its own fields; another step leaves that to `granted`.
fn granted_issuing(own_keys: usize, own_args: usize) -> String {
    format!(
        r#"local function granted(r, h)
  local n, own = KEYS[{number}], h ~= nil
  if not own then h = number(n) end
  local answer, cur, at = issue(h, KEYS[{fresh}], KEYS[{index}], {own_args})
  table.insert(r, answer)
  if own then return r, cur end
  write_number(n, h, cur and {{'cur', cur}} or {{}}, {{}}, at)
  return r
end
"#,
        number = own_keys + 1,
        fresh = own_keys + 2,
        index = own_keys + 3,
    )
}

/// KEYS: verification. ARGV: the provider, its id for the message ('' for none), the
/// delivery status. Sets the status of the latest attempt through that provider with that
/// id, or else of its latest attempt. Attempts are fields `a<ms>.<seq>` holding
/// `[channel, provider, status, id]` (see `RedisStore::attempt_field`); a verification
/// stored before also has the JSON list `attempts`, older than any field.
const SET_DELIVERY: &str = r#"
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return 0 end
-- Oldest first: the list's, then the fields' by time and sequence.
local all, fields = {}, {}
local list = nil
for i = 1, #h, 2 do
  local at, seq = string.match(h[i], '^a(%d+)%.(%d+)$')
  if at then
    table.insert(fields, {tonumber(at), tonumber(seq), h[i], cjson.decode(h[i + 1])})
  elseif h[i] == 'attempts' and h[i + 1] ~= '[]' and h[i + 1] ~= '{}' then
    list = cjson.decode(h[i + 1])
  end
end
if list then
  for i, a in ipairs(list) do
    table.insert(all, {provider = a.provider, ref = a.provider_ref, set = function(status)
      list[i].delivery_status = status
      redis.call('HSET', KEYS[1], 'attempts', cjson.encode(list))
    end})
  end
end
table.sort(fields, function(a, b) if a[1] ~= b[1] then return a[1] < b[1] end return a[2] < b[2] end)
for _, f in ipairs(fields) do
  local value = f[4]
  table.insert(all, {provider = value[2], ref = value[4], set = function(status)
    value[3] = status
    redis.call('HSET', KEYS[1], f[3], cjson.encode(value))
  end})
end
local found = nil
if ARGV[2] ~= '' then
  for i = #all, 1, -1 do
    if all[i].provider == ARGV[1] and all[i].ref == ARGV[2] then found = all[i] break end
  end
end
if not found then
  for i = #all, 1, -1 do
    if all[i].provider == ARGV[1] then found = all[i] break end
  end
end
if not found then return 0 end
found.set(ARGV[3])
return 1
"#;

const END_PENDING: &str = r#"
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return {} end
if tonumber(ARGV[1]) >= tonumber(redis.call('HGET', KEYS[1], 'expires')) then return {} end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'voice', '')
return redis.call('HGETALL', KEYS[1])
"#;

/// KEYS: the number, then the verification (none: the number's current one). ARGV: the
/// candidate's hash, now, max attempts, lockout failures, lockout (ms), browser to bind on
/// approval, now plus the lockout, the verification key prefix. {tag, detail, the
/// verification as HGETALL, joined}.
const CHECK_CODE: &str = r#"
local h = number(KEYS[1])
local vkey = KEYS[2]
if not vkey then
  local current = field(h, 'cur')
  if not current then return {'notfound', '', ''} end
  vkey = ARGV[8] .. current
end
-- The verification, read once: its fields are kept up to date with what this script
-- writes, and answered joined by NUL (see `RedisStore::unjoin`): one string is far
-- cheaper to answer, and to read in the service, than two dozen.
local vh = redis.call('HGETALL', vkey)
local function keep(name, value)
  for i = 1, #vh, 2 do
    if vh[i] == name then vh[i + 1] = value return end
  end
  vh[#vh + 1] = name
  vh[#vh + 1] = value
end
local function put(set)
  redis.call('HSET', vkey, unpack(set))
  for i = 1, #set, 2 do keep(set[i], set[i + 1]) end
end
local function failed_once_more()
  local failed = redis.call('HINCRBY', vkey, 'failed', '1')
  keep('failed', tostring(failed))
  return failed
end
local function joined() return table.concat(vh, '\0') end
local status = field(vh, 'status')
if not status then return {'notfound', '', ''} end
local now = tonumber(ARGV[2])
if status == 'pending' and now >= tonumber(field(vh, 'expires')) then
  status = 'expired'
  put({'status', status, 'voice', ''})
end
if status ~= 'pending' then return {'notpending', status, joined()} end
local locked_until = tonumber(field(h, 'lock'))
if locked_until and now < locked_until then return {'locked', tostring(locked_until - now), joined()} end
-- The number's consecutive failures, forgotten once their lockout has passed.
local function failures()
  local forget_at = tonumber(field(h, 'forget'))
  if forget_at and now >= forget_at then return 0 end
  return tonumber(field(h, 'fails')) or 0
end
local function count_failure(n)
  write_number(KEYS[1], h, {'fails', n, 'forget', ARGV[7]}, {}, ARGV[7])
end
local stored = field(vh, 'hash')
if stored == '' then
  -- The provider's code: reserve an attempt, counted as a wrong code until settled.
  local n = failures()
  if (tonumber(field(vh, 'failed')) or 0) >= tonumber(ARGV[3]) or n >= tonumber(ARGV[4]) then
    return {'locked', '1000', joined()}
  end
  failed_once_more()
  count_failure(n + 1)
  return {'delegated', '', joined()}
end
if stored == ARGV[1] then
  -- Its voice ticket is cleared if it has one (a fresh verification has none stored).
  local set = {'status', 'approved'}
  if (field(vh, 'voice') or '') ~= '' then table.insert(set, 'voice') table.insert(set, '') end
  if ARGV[6] ~= '' then table.insert(set, 'browser') table.insert(set, ARGV[6]) end
  put(set)
  if field(h, 'fails') then redis.call('HDEL', KEYS[1], 'fails', 'forget') end
  return {'evaluated', '1', joined()}
end
if failed_once_more() >= tonumber(ARGV[3]) then put({'status', 'max_attempts_reached', 'voice', ''}) end
local n = failures() + 1
if n >= tonumber(ARGV[4]) then
  write_number(KEYS[1], h, {'lock', ARGV[7]}, {'fails', 'forget'}, ARGV[7])
else
  count_failure(n)
end
return {'evaluated', '0', joined()}
"#;

/// KEYS: verification, the number. ARGV: verdict, now, max attempts, lockout failures,
/// lockout (ms), browser to bind on approval.
const SETTLE_CHECK: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local now, lockout = tonumber(ARGV[2]), tonumber(ARGV[5])
local pending = redis.call('HGET', KEYS[1], 'status') == 'pending'
local verdict = ARGV[1]
local h = number(KEYS[2])
local fails = tonumber(field(h, 'fails')) or 0
local function give_back_attempt()
  local n = tonumber(redis.call('HGET', KEYS[1], 'failed')) or 0
  if n > 0 then redis.call('HINCRBY', KEYS[1], 'failed', -1) end
end
local function finish(status)
  if pending then redis.call('HSET', KEYS[1], 'status', status, 'voice', '') end
end
local function lock_if_due()
  if fails >= tonumber(ARGV[4]) then
    write_number(KEYS[2], h, {'lock', now + lockout}, {'fails', 'forget'}, now + lockout)
  end
end
if verdict == 'approved' then
  give_back_attempt()
  finish('approved')
  if pending and ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'browser', ARGV[6]) end
  if fails > 0 then redis.call('HDEL', KEYS[2], 'fails', 'forget') end
elseif verdict == 'wrong' then
  if (tonumber(redis.call('HGET', KEYS[1], 'failed')) or 0) >= tonumber(ARGV[3]) then finish('max_attempts_reached') end
  lock_if_due()
elseif verdict == 'expired' then
  give_back_attempt()
  finish('expired')
elseif verdict == 'exhausted' then
  finish('max_attempts_reached')
  lock_if_due()
else
  give_back_attempt()
  if fails > 0 then redis.call('HINCRBY', KEYS[2], 'fails', -1) end
end
return redis.call('HGETALL', KEYS[1])
"#;

/// KEYS: verification. ARGV: the provider and its id, as JSON.
const HAND_OVER: &str = r#"
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'hash', '', 'owner', ARGV[1], 'voice', '')
return 1
"#;

const CLAIM_KEY: &str = r#"
local now, expiry = tonumber(ARGV[2]), tonumber(ARGV[3])
local fingerprint = redis.call('HGET', KEYS[1], 'fp')
local kept_until = tonumber(redis.call('HGET', KEYS[1], 'until'))
if fingerprint and kept_until and now < kept_until then
  if fingerprint ~= ARGV[1] then return {'conflict'} end
  local status = redis.call('HGET', KEYS[1], 'status')
  if status then return {'replay', status, redis.call('HGET', KEYS[1], 'body')} end
  return {'progress'}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'until', expiry)
redis.call('PEXPIREAT', KEYS[1], expiry)
return {'claimed'}
"#;

const COMPLETE_KEY: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'body', ARGV[2])
return 1
"#;

/// KEYS: the layout's marker. ARGV: now, how long the marker is kept (ms). When this
/// layout began: the marker's time, set now by the first instance to use the layout, or
/// 0 when that Redis held no keys at all (so no keys of an earlier layout either).
const LAYOUT: &str = r#"
local since = redis.call('GET', KEYS[1])
if since then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return since
end
since = ARGV[1]
if redis.call('DBSIZE') == 0 then since = '0' end
redis.call('SET', KEYS[1], since, 'PX', ARGV[2])
return since
"#;

/// How long the layout's marker is kept after an instance last started; each start-up
/// renews it.
const LAYOUT_MARKER_KEPT: Duration = Duration::from_secs(30 * 24 * 3600);

/// Until the layout's marker is read: fold, to be safe.
const LAYOUT_UNKNOWN: u64 = u64::MAX;

/// How long keys of the earlier layout are assumed to live, unless the settings say.
const EARLIER_LAYOUT_LASTED: Duration = Duration::from_secs(24 * 3600);

/// The connection to a single Redis or a cluster; both reconnect by themselves.
#[derive(Clone)]
enum Connection {
    Single(Arc<PerThread>),
    Cluster(ClusterConnection),
}

/// A single Redis, reached over one multiplexed connection per thread that uses it, each
/// driven by that thread's runtime. Every actix worker is a single-threaded runtime: its
/// calls are written and their answers read on the worker itself, with no hop through
/// another thread's task (which had cost two wake-ups per call and left cores idle).
struct PerThread {
    client: redis::Client,
    config: ConnectionManagerConfig,
}

/// A thread's connection of one `PerThread` (held weakly: a thread drops its connection
/// once no store uses it), and the runtime that drives it.
struct ThreadConnection {
    of: std::sync::Weak<PerThread>,
    runtime: tokio::runtime::Id,
    manager: ConnectionManager,
}

thread_local! {
    static THREAD_CONNECTIONS: std::cell::RefCell<Vec<ThreadConnection>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

impl PerThread {
    fn new(url: &str) -> redis::RedisResult<Self> {
        Ok(Self {
            client: redis::Client::open(connection_info(url)?)?,
            config: ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(1)))
                // Every call is bounded by `CALL_TIMEOUT` in `RedisStore::call`: a second
                // timer here would be armed and cleared on every call for nothing.
                .set_response_timeout(None)
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_secs(2)),
        })
    }

    /// This thread's connection, made (lazily: it connects on first use) when the thread
    /// has none yet, or has one driven by a runtime that has since been replaced.
    fn current(self: &Arc<Self>) -> redis::RedisResult<ConnectionManager> {
        let runtime = tokio::runtime::Handle::current().id();
        THREAD_CONNECTIONS.with_borrow_mut(|connections| {
            let ours = |c: &ThreadConnection| std::ptr::eq(c.of.as_ptr(), Arc::as_ptr(self));
            if let Some(found) = connections.iter().find(|c| ours(c) && c.runtime == runtime) {
                return Ok(found.manager.clone());
            }
            connections.retain(|c| c.of.strong_count() > 0 && !ours(c));
            let manager = self
                .client
                .get_connection_manager_lazy(self.config.clone())?;
            connections.push(ThreadConnection {
                of: Arc::downgrade(self),
                runtime,
                manager: manager.clone(),
            });
            Ok(manager)
        })
    }

    /// Makes `call` on this thread's connection. A refused connection (this thread's
    /// last try to connect failed, say during an outage) means nothing was sent: the
    /// call is made once more, on the connection that failure has begun to re-make, so
    /// that no thread fails its first request after Redis is back.
    async fn call<T, F, Fut>(self: &Arc<Self>, call: F) -> redis::RedisResult<T>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        match call(self.current()?).await {
            Err(e) if e.is_connection_refusal() => call(self.current()?).await,
            answer => answer,
        }
    }
}

/// A call of a script packed as one command, `EVALSHA sha numkeys keys… args…`, each
/// key and argument written straight into the command's buffer (redis-rs's
/// `ScriptInvocation` copies each into a vector of its own first). `Request::send` loads
/// the script and sends it again when Redis does not have it yet (`NOSCRIPT`).
struct Eval<'a> {
    script: &'a Script,
    cmd: redis::Cmd,
}

impl<'a> Eval<'a> {
    /// `script` on `keys`; the arguments follow with `arg`.
    fn new<K: redis::ToRedisArgs>(script: &'a Script, keys: &[K]) -> Self {
        // Room for a start's keys and arguments, which the command would otherwise grow
        // to in several steps.
        let mut cmd = redis::Cmd::with_capacity(32, 768);
        cmd.arg("EVALSHA");
        cmd.arg(script.get_hash()).arg(keys.len()).arg(keys);
        Self { script, cmd }
    }

    fn arg(&mut self, arg: impl redis::ToRedisArgs) -> &mut Self {
        self.cmd.arg(arg);
        self
    }
}

/// What one call to Redis sends.
#[derive(Clone, Copy)]
enum Request<'a> {
    Eval(&'a Eval<'a>),
    Command(&'a redis::Cmd),
    Pipeline(&'a redis::Pipeline),
}

impl Request<'_> {
    async fn send<C: ConnectionLike, T: FromRedisValue>(self, mut c: C) -> redis::RedisResult<T> {
        match self {
            Self::Eval(eval) => match eval.cmd.query_async(&mut c).await {
                Err(e)
                    if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                {
                    eval.script.load_async(&mut c).await?;
                    eval.cmd.query_async(&mut c).await
                }
                answer => answer,
            },
            Self::Command(cmd) => cmd.query_async(&mut c).await,
            Self::Pipeline(pipe) => pipe.query_async(&mut c).await,
        }
    }
}

/// A step of a start that takes a send slot: alone, or, as a start's last step, issuing
/// the code too.
struct SlotStep {
    alone: Script,
    issuing: Script,
}

impl SlotStep {
    /// `body` counts over sliding windows and uses `own_keys` keys and `own_args`
    /// arguments; `lua` is the prelude of `NumberScripts`.
    fn new(body: &str, own_keys: usize, own_args: usize, lua: &str) -> Self {
        let issuing = granted_issuing(own_keys, own_args);
        Self {
            alone: Script::new(&format!("{lua}{GRANTED_ALONE}{body}")),
            issuing: Script::new(&format!("{lua}{ISSUE_LUA}{issuing}{body}")),
        }
    }

    fn script(&self, issuing: bool) -> &Script {
        if issuing { &self.issuing } else { &self.alone }
    }
}

/// Every script the store runs, built once and shared by the store's copies: those that
/// read no number's hash, then those that do, in each way of reading it.
struct Scripts {
    numbers: NumberScripts,
    folding: NumberScripts,
    untake_number_slot: Script,
    untake_slot: Script,
    approve: Script,
    set_delivery: Script,
    end_pending: Script,
    hand_over: Script,
    claim_key: Script,
    complete_key: Script,
    layout: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            numbers: NumberScripts::new(NUMBER_READ),
            folding: NumberScripts::new(NUMBER_FOLD),
            untake_number_slot: Script::new(UNTAKE_NUMBER_SLOT),
            untake_slot: Script::new(UNTAKE_SLOT),
            approve: Script::new(APPROVE),
            set_delivery: Script::new(SET_DELIVERY),
            end_pending: Script::new(END_PENDING),
            hand_over: Script::new(HAND_OVER),
            claim_key: Script::new(CLAIM_KEY),
            complete_key: Script::new(COMPLETE_KEY),
            layout: Script::new(LAYOUT),
        }
    }
}

/// The scripts that read a number's hash, each with one way of reading it.
struct NumberScripts {
    current: Script,
    take_number_slot: SlotStep,
    take_ip_slot: SlotStep,
    admit: SlotStep,
    issue_code: Script,
    check_code: Script,
    settle_check: Script,
}

impl NumberScripts {
    /// `number`: `NUMBER_READ`, or `NUMBER_FOLD` while keys of the earlier layout may live.
    fn new(number: &str) -> Self {
        let lua = format!("{WINDOW_LUA}{NUMBER_LUA}{number}");
        Self {
            current: Script::new(&format!("{lua}{CURRENT}")),
            take_number_slot: SlotStep::new(TAKE_NUMBER_SLOT, 1, 6, &lua),
            take_ip_slot: SlotStep::new(TAKE_IP_SLOT, 1, 5, &lua),
            admit: SlotStep::new(ADMIT, 3, 12, &lua),
            issue_code: Script::new(&format!("{lua}{ISSUE_LUA}{ISSUE_CODE}")),
            check_code: Script::new(&format!("{lua}{CHECK_CODE}")),
            settle_check: Script::new(&format!("{lua}{SETTLE_CHECK}")),
        }
    }
}

/// What issuing `fresh`'s code sends to Redis: to the issue script, or after the own keys
/// and arguments of a start's last step.
struct IssueCall<'a> {
    fresh: &'a Verification,
    keys: Vec<String>,
    /// The verification keys' prefix for this number (a key without its id).
    prefix: String,
    now: u64,
    /// The code's hash in hex; empty for a provider's code.
    hash: String,
    /// The voice ticket as JSON; empty without one.
    voice: String,
    /// Until when the verification (and any index entry) is kept, in milliseconds.
    keep_until: u64,
}

impl IssueCall<'_> {
    /// The keys of a step that takes `own` keys of its own, then the issue's (if any).
    fn keys_after<'k>(own: &[&'k str], issue: Option<&'k IssueCall<'_>>) -> Vec<&'k str> {
        let mut keys = own.to_vec();
        keys.extend(issue.iter().flat_map(|i| i.keys.iter().map(String::as_str)));
        keys
    }

    /// Adds the issue's arguments (see `ISSUE_LUA`) after those `eval` has.
    fn append(issue: Option<&IssueCall<'_>>, eval: &mut Eval<'_>) {
        let Some(issue) = issue else { return };
        let fresh = issue.fresh;
        let browser = fresh.browser.as_deref().unwrap_or("");
        eval.arg(&issue.prefix)
            .arg(issue.now)
            .arg(&fresh.id)
            .arg(fresh.to.e164())
            .arg(&issue.hash)
            .arg(fresh.channel.as_str())
            .arg(millis(fresh.last_sent_at))
            .arg(millis(fresh.expires_at))
            .arg(issue.keep_until)
            .arg(&issue.voice)
            .arg(browser)
            .arg(fresh.locale.tag())
            .arg(fresh.to.region().unwrap_or(""));
        // The fields a fresh verification has only when they have a value.
        for (name, value) in [("voice", issue.voice.as_str()), ("browser", browser)] {
            if !value.is_empty() {
                eval.arg(name).arg(value);
            }
        }
    }
}

/// Verification state in Redis.
pub struct RedisStore {
    connection: Connection,
    prefix: String,
    scripts: Arc<Scripts>,
    metrics: Arc<Metrics>,
    retain_ended: Duration,
    /// When this layout began, in milliseconds (see `folding`).
    layout_since: AtomicU64,
    /// The longest a key of the earlier layout was kept.
    earlier_layout_lasts: Duration,
    /// Makes ids that name their number, and opens them.
    ids: IdSealer,
}

/// A send attempt as the earlier layout stored it, in the JSON list `attempts` (times in
/// milliseconds).
#[derive(Deserialize)]
struct ListedAttempt {
    channel: Channel,
    provider: String,
    at: u64,
    delivery_status: Option<String>,
    provider_ref: Option<String>,
}

/// A send attempt as stored, in its own field (see `RedisStore::attempt_field`): channel,
/// provider, delivery status and the provider's id for the message, a JSON array.
type StoredAttempt = (Channel, String, Option<String>, Option<String>);

/// A verification's hash, each field found in one pass over its names and values
/// (a field missing: `None`). The send attempts are kept in the order they came.
#[derive(Default)]
struct StoredFields<'a> {
    id: Option<&'a str>,
    to: Option<&'a str>,
    region: Option<&'a str>,
    channel: Option<&'a str>,
    status: Option<&'a str>,
    created: Option<&'a str>,
    sent: Option<&'a str>,
    expires: Option<&'a str>,
    failed: Option<&'a str>,
    hash: Option<&'a str>,
    owner: Option<&'a str>,
    voice: Option<&'a str>,
    browser: Option<&'a str>,
    locale: Option<&'a str>,
    /// `attempts` (the earlier layout's list) and the fields `a<ms>.<seq>`, unread.
    attempts: Vec<(&'a str, &'a str)>,
}

impl<'a> StoredFields<'a> {
    fn read<S: AsRef<str>>(fields: &'a [S]) -> Self {
        let mut f = Self::default();
        for pair in fields.chunks_exact(2) {
            let (name, value) = (pair[0].as_ref(), pair[1].as_ref());
            let slot = match name {
                "id" => &mut f.id,
                "to" => &mut f.to,
                "region" => &mut f.region,
                "channel" => &mut f.channel,
                "status" => &mut f.status,
                "created" => &mut f.created,
                "sent" => &mut f.sent,
                "expires" => &mut f.expires,
                "failed" => &mut f.failed,
                "hash" => &mut f.hash,
                "owner" => &mut f.owner,
                "voice" => &mut f.voice,
                "browser" => &mut f.browser,
                "locale" => &mut f.locale,
                _ if name.starts_with('a') => {
                    f.attempts.push((name, value));
                    continue;
                }
                _ => continue,
            };
            // HGETALL names each field once; the first is the one read, as ever.
            slot.get_or_insert(value);
        }
        f
    }
}

/// Orders the attempts this process appends within one millisecond.
static ATTEMPT_SEQUENCE: AtomicU64 = AtomicU64::new(0);

fn millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// The start of the slot `now_ms` falls in, for a window of `window`.
fn slot_start(now_ms: u64, window: Duration) -> u64 {
    let step = window::slot_ms(window);
    now_ms / step * step
}

/// Whether `id` can name a verification (and so be part of a key).
fn id_shaped(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Where a Redis is, from its URL, with Nagle's algorithm off: a command written while
/// the previous one's segment is unacknowledged must not wait for that acknowledgement.
fn connection_info(url: &str) -> redis::RedisResult<redis::ConnectionInfo> {
    use redis::IntoConnectionInfo as _;
    Ok(url
        .into_connection_info()?
        .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true)))
}

fn refused(wait_ms: u64) -> SlotDecision {
    SlotDecision::Refused(RetryAfter(Duration::from_millis(wait_ms)))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::new(format!("unreadable {what} in redis"))
}

impl RedisStore {
    /// Keeps ended verifications readable for `retain_ended` after they expire.
    pub fn retaining(mut self, retain_ended: Duration) -> Self {
        self.retain_ended = retain_ended;
        self
    }

    /// Makes (and opens) ids that name their number with `key`, which every instance
    /// sharing the Redis must share (it is derived from `server.secret`).
    pub fn naming_ids_with(mut self, key: [u8; 16]) -> Self {
        self.ids = IdSealer::new(key);
        self
    }

    /// Whether `id` is one this store made for `e164`, found without an index entry.
    fn names(&self, id: &str, e164: &str) -> bool {
        self.ids.open(id).is_some_and(|number| number == e164)
    }

    /// The longest the earlier layout kept any of a number's keys (a verification's time
    /// to live plus `retain_ended`, the send window, the cooldown, the lockout): for that
    /// long after this layout began, numbers are read through `NUMBER_FOLD`.
    pub fn earlier_layout_lasted(mut self, longest: Duration) -> Self {
        self.earlier_layout_lasts = longest;
        self
    }

    /// Whether keys of the earlier layout (`p{NUM}:sendw`, `:cur`, `:lock`, `:fail`)
    /// may still live at `now`, so that a number without a hash must be read through
    /// `NUMBER_FOLD`: until the layout's marker is read, and for `earlier_layout_lasts`
    /// after the layout began in a Redis that held keys then. A fresh Redis never folds.
    fn folding(&self, now: SystemTime) -> bool {
        match self.layout_since.load(Ordering::Relaxed) {
            LAYOUT_UNKNOWN => true,
            0 => false,
            since => {
                millis(now) < since.saturating_add(self.earlier_layout_lasts.as_millis() as u64)
            }
        }
    }

    /// The scripts that read numbers, as `folding` says to at `now`.
    fn numbers(&self, now: SystemTime) -> &NumberScripts {
        if self.folding(now) {
            &self.scripts.folding
        } else {
            &self.scripts.numbers
        }
    }

    /// Reads (or, first, sets) when this layout began.
    async fn read_layout(&self) -> Result<(), StoreError> {
        let since: String = self
            .eval(
                Eval::new(&self.scripts.layout, &[format!("{}layout", self.prefix)])
                    .arg(millis(SystemTime::now()))
                    .arg(LAYOUT_MARKER_KEPT.as_millis() as u64),
            )
            .await?;
        let since = since.parse().map_err(|_| corrupt("layout marker"))?;
        self.layout_since.store(since, Ordering::Relaxed);
        Ok(())
    }

    /// Connects (a cluster when `cluster`), pings once, and keeps reconnecting by itself.
    /// An unreachable Redis at start-up is logged; requests get 503 until it answers.
    pub async fn connect(
        url: &str,
        cluster: bool,
        prefix: &str,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let connection = if cluster {
            let nodes = url
                .split(',')
                .map(|node| connection_info(node.trim()))
                .collect::<redis::RedisResult<Vec<_>>>()?;
            let client = redis::cluster::ClusterClient::builder(nodes)
                .connection_timeout(Duration::from_secs(1))
                .response_timeout(CALL_TIMEOUT)
                .retries(1)
                .build()?;
            Connection::Cluster(client.get_async_connection().await?)
        } else {
            Connection::Single(Arc::new(PerThread::new(url)?))
        };
        let store = Self {
            connection,
            prefix: prefix.to_string(),
            scripts: Arc::new(Scripts::new()),
            metrics,
            retain_ended: RETAIN_AFTER_EXPIRY,
            layout_since: AtomicU64::new(LAYOUT_UNKNOWN),
            earlier_layout_lasts: EARLIER_LAYOUT_LASTED,
            // Until `naming_ids_with`: ids only this store can open.
            ids: IdSealer::new(rand::random()),
        };
        match store.ping().await {
            Ok(()) => tracing::info!(cluster, "redis store connected"),
            Err(e) => {
                tracing::error!(error = %e, "redis is not reachable yet; requests get 503 until it is")
            }
        }
        Ok(store)
    }

    /// The same connection under another key prefix (tests give each case its own),
    /// reading numbers as this store does.
    pub fn with_prefix(&self, prefix: &str) -> Self {
        Self {
            connection: self.connection.clone(),
            prefix: prefix.to_string(),
            scripts: self.scripts.clone(),
            metrics: self.metrics.clone(),
            retain_ended: self.retain_ended,
            layout_since: AtomicU64::new(self.layout_since.load(Ordering::Relaxed)),
            earlier_layout_lasts: self.earlier_layout_lasts,
            ids: self.ids.clone(),
        }
    }

    fn failed(&self, e: redis::RedisError) -> StoreError {
        self.metrics.store_error();
        StoreError::caused_by(e.to_string(), e)
    }

    fn timed_out(&self) -> StoreError {
        self.metrics.store_error();
        StoreError::new("redis call timed out")
    }

    /// Sends `request` on this thread's connection (or the cluster's), within
    /// `CALL_TIMEOUT`; a failure counts as a store error.
    async fn call<T: FromRedisValue>(&self, request: Request<'_>) -> Result<T, StoreError> {
        let call = async {
            match &self.connection {
                Connection::Single(single) => single.call(|c| request.send(c)).await,
                Connection::Cluster(c) => request.send(c.clone()).await,
            }
        };
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.failed(e)),
            Err(_) => Err(self.timed_out()),
        }
    }

    async fn eval<T: FromRedisValue>(&self, eval: &Eval<'_>) -> Result<T, StoreError> {
        self.call(Request::Eval(eval)).await
    }

    async fn pipeline<T: FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T, StoreError> {
        self.call(Request::Pipeline(pipe)).await
    }

    async fn command<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        self.call(Request::Command(cmd)).await
    }

    /// The guard's counters share one hash tag, so one script decides on all of them.
    fn guard_key(&self, kind: &str, name: &str) -> String {
        self.key(&["{guard}:", kind, ":", name])
    }

    /// Has the guard admit one send (`None` when it does), and, with `issue`, issue the
    /// code when it does: what issuing answered comes second.
    async fn admit(
        &self,
        facts: &SendFacts,
        limits: &GuardLimits,
        now: SystemTime,
        issue: Option<&IssueCall<'_>>,
    ) -> Result<(Option<GuardRefusal>, Vec<String>), StoreError> {
        let now_ms = millis(now);
        let day = guard::utc_day(now);
        let fraud = limits.fraud;
        let fraud_window = fraud.map_or(Duration::from_secs(1), |f| f.window);
        let own = [
            self.guard_key("prefix", &facts.prefix),
            self.guard_key("country", &facts.country),
            self.guard_key("spend", &day.to_string()),
        ];
        let own: Vec<&str> = own.iter().map(String::as_str).collect();
        let numbers = self.numbers(now);
        let mut invocation = Eval::new(
            numbers.admit.script(issue.is_some()),
            &IssueCall::keys_after(&own, issue),
        );
        invocation
            .arg(now_ms)
            .arg(if fraud.is_some() { "1" } else { "0" })
            .arg(fraud_window.as_millis() as u64)
            .arg(fraud.map_or(0, |f| f.min_sends))
            .arg(fraud.map_or(0.0, |f| f.min_conversion).to_string())
            .arg(fraud.map_or(0, |f| f.block.as_millis() as u64))
            .arg(slot_start(now_ms, fraud_window))
            .arg(limits.country_cap.unwrap_or(0))
            .arg(slot_start(now_ms, guard::HOUR))
            .arg(limits.daily_limit_micros.unwrap_or(0))
            .arg(facts.cost_micros)
            .arg((day + 2) * 24 * 3600 * 1000);
        IssueCall::append(issue, &mut invocation);
        let (outcome, detail, issued): (String, u64, Vec<String>) = self.eval(&invocation).await?;
        let refusal = match outcome.as_str() {
            "ok" => None,
            "fraud" => Some(GuardRefusal::FraudBlocked { newly: detail == 1 }),
            "country" => Some(GuardRefusal::CountryCapped(RetryAfter(
                Duration::from_millis(detail),
            ))),
            "spend" => Some(GuardRefusal::SpendLimit(guard::until_next_day(now))),
            _ => return Err(corrupt("guard answer")),
        };
        Ok((refusal, issued))
    }

    /// Takes a send slot, in up to three atomic steps, because a number, an address and
    /// the guard's counters live in different cluster slots: the number's slot, then the
    /// address's, then the guard's admission. A refusal gives back what the earlier steps
    /// took, so nothing is ever over-granted. With `issue`, the last step issues the code
    /// too when it may reach the number's keys (always on a single Redis; on a cluster
    /// when it is the number's own step): its answer comes second, `None` when no step
    /// issued it.
    async fn take_slot(
        &self,
        to: &PhoneNumber,
        ip: Option<IpAddr>,
        now: SystemTime,
        limits: &SendLimits,
        guard: Option<Guarded<'_>>,
        issue: Option<&IssueCall<'_>>,
    ) -> Result<(SlotDecision, Option<Vec<String>>), StoreError> {
        let single = self.single();
        let now_ms = millis(now);
        let e164 = to.e164();
        let number_key = self.number_key(e164);
        let number_slot = slot_start(now_ms, limits.number_window);
        let ip_key = ip.map(|ip| self.key(&["ip:{", &ip.to_string(), "}:w"]));
        let ip_slot = slot_start(now_ms, limits.ip_window);
        // Which step issues the code: the last one, when it may reach the number's keys
        // (the number's own step shares their hash tag; another step only on a single
        // Redis). When none may, the caller issues it after.
        let (number_issues, ip_issues, admit_issues) = match (&ip_key, &guard) {
            (None, None) => (issue, None, None),
            (Some(_), None) => (None, issue.filter(|_| single), None),
            (_, Some(_)) => (None, None, issue.filter(|_| single)),
        };

        let numbers = self.numbers(now);
        let mut invocation = Eval::new(
            numbers.take_number_slot.script(number_issues.is_some()),
            &IssueCall::keys_after(&[&number_key], number_issues),
        );
        let number_kept = (number_slot + limits.number_window.as_millis() as u64)
            .max(now_ms + limits.cooldown.as_millis() as u64)
            .max(number_issues.map_or(0, |issue| issue.keep_until));
        invocation
            .arg(now_ms)
            .arg(limits.cooldown.as_millis() as u64)
            .arg(limits.max_per_number)
            .arg(limits.number_window.as_millis() as u64)
            .arg(number_slot)
            .arg(number_kept);
        IssueCall::append(number_issues, &mut invocation);
        let (number_wait, previous_last, issued): (u64, String, Vec<String>) =
            self.eval(&invocation).await?;
        let take_ip = |mode, issue| self.take_ip_slot(ip_key.as_deref(), now, limits, mode, issue);
        if number_wait > 0 {
            // The person can only retry once every limit has passed.
            let (ip_wait, _) = take_ip("peek", None).await?;
            return Ok((refused(number_wait.max(ip_wait)), None));
        }
        if number_issues.is_some() {
            return Ok((SlotDecision::Granted, Some(issued)));
        }
        let untake_number = || async {
            self.eval::<i64>(
                Eval::new(&self.scripts.untake_number_slot, &[&number_key])
                    .arg(number_slot)
                    .arg(now_ms)
                    .arg(&previous_last),
            )
            .await
        };
        let (ip_wait, issued) = take_ip("take", ip_issues).await?;
        if ip_wait > 0 {
            untake_number().await?;
            return Ok((refused(ip_wait), None));
        }
        let Some(Guarded {
            facts,
            limits: guard,
        }) = guard
        else {
            return Ok((SlotDecision::Granted, ip_issues.map(|_| issued)));
        };
        match self.admit(facts, guard, now, admit_issues).await? {
            (None, issued) => Ok((SlotDecision::Granted, admit_issues.map(|_| issued))),
            (Some(refusal), _) => {
                if let Some(key) = &ip_key {
                    self.eval::<i64>(Eval::new(&self.scripts.untake_slot, &[key]).arg(ip_slot))
                        .await?;
                }
                untake_number().await?;
                Ok((SlotDecision::Guarded(refusal), None))
            }
        }
    }

    /// The address's step of `take_slot` (`mode`: "take" or "peek"); nothing to wait for
    /// without an address.
    async fn take_ip_slot(
        &self,
        key: Option<&str>,
        now: SystemTime,
        limits: &SendLimits,
        mode: &str,
        issue: Option<&IssueCall<'_>>,
    ) -> Result<(u64, Vec<String>), StoreError> {
        let Some(key) = key else {
            return Ok((0, Vec::new()));
        };
        let now_ms = millis(now);
        let numbers = self.numbers(now);
        let mut invocation = Eval::new(
            numbers.take_ip_slot.script(issue.is_some()),
            &IssueCall::keys_after(&[key], issue),
        );
        invocation
            .arg(now_ms)
            .arg(limits.max_per_ip)
            .arg(limits.ip_window.as_millis() as u64)
            .arg(slot_start(now_ms, limits.ip_window))
            .arg(mode);
        IssueCall::append(issue, &mut invocation);
        self.eval(&invocation).await
    }

    /// Whether this is a single Redis (any script may reach any key), not a cluster.
    fn single(&self) -> bool {
        matches!(self.connection, Connection::Single(_))
    }

    /// The keys and arguments that issue `fresh`'s code.
    fn issue_call<'a>(
        &self,
        fresh: &'a Verification,
        now: SystemTime,
    ) -> Result<IssueCall<'a>, StoreError> {
        let e164 = fresh.to.e164();
        let keep_until = self.kept_until(fresh);
        let voice = match &fresh.voice {
            Some(ticket) => serde_json::to_string(ticket)
                .map_err(|e| StoreError::caused_by("cannot encode a voice ticket", e))?,
            None => String::new(),
        };
        let mut keys = vec![
            self.number_key(e164),
            self.verification_key(e164, &fresh.id),
        ];
        if self.single() && !self.names(&fresh.id, e164) {
            keys.push(self.index_key(&fresh.id));
        }
        let hash = match &fresh.checker {
            Checker::Hash(hash) => Self::hash_hex(hash),
            Checker::Provider(_) => String::new(),
        };
        Ok(IssueCall {
            fresh,
            keys,
            prefix: self.verification_key(e164, ""),
            now: millis(now),
            hash,
            voice,
            keep_until,
        })
    }

    /// Until when a verification's keys are kept, in milliseconds: its expiry, then
    /// `retain_ended` for its status to be read.
    fn kept_until(&self, v: &Verification) -> u64 {
        millis(v.expires_at + self.retain_ended)
    }

    /// What is stored after issuing `fresh`'s code, from what issuing answered; and the
    /// index entry the script could not write.
    async fn issued(
        &self,
        fresh: Verification,
        fields: Vec<String>,
    ) -> Result<Verification, StoreError> {
        let given_new_code = !fields.is_empty();
        let stored = if given_new_code {
            Self::parse(&fields)?
        } else {
            Self::as_stored(fresh)
        };
        // An id this store made needs no index entry. The script wrote the entry of any
        // other fresh one on a single Redis; a cluster keeps it in another slot, and a
        // verification given a new code keeps its id, whose entry must now live as long
        // as it does.
        // (Whether the id names its number is asked last: it is a decryption.)
        if (!self.single() || given_new_code) && !self.names(&stored.id, stored.to.e164()) {
            let _: () = self
                .command(
                    redis::cmd("SET")
                        .arg(self.index_key(&stored.id))
                        .arg(stored.to.e164())
                        .arg("PXAT")
                        .arg(self.kept_until(&stored)),
                )
                .await?;
        }
        Ok(stored)
    }

    /// The store's prefix followed by `parts`: a key, in one allocation of its size
    /// (`format!` costs more than the rest of making a key; a start makes several).
    fn key(&self, parts: &[&str]) -> String {
        let len = self.prefix.len() + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut key = String::with_capacity(len);
        key.push_str(&self.prefix);
        for part in parts {
            key.push_str(part);
        }
        key
    }

    fn idempotency_key(&self, key: &str) -> String {
        self.key(&["idem:{", key, "}"])
    }

    fn record_key(&self, kind: &str, key: &str) -> String {
        self.key(&["rec:", kind, ":{", key, "}"])
    }

    /// The number's hash (see `NUMBER_LUA`); `NUMBER_FOLD` finds the earlier layout's
    /// keys by its name.
    fn number_key(&self, e164: &str) -> String {
        self.key(&["{", e164, "}:n"])
    }

    fn verification_key(&self, e164: &str, id: &str) -> String {
        self.key(&["{", e164, "}:v:", id])
    }

    fn index_key(&self, id: &str) -> String {
        self.key(&["vid:{", id, "}"])
    }

    /// The key of the verification `key` names (no lookup: it is kept under its number).
    fn key_at(&self, key: VerificationKey<'_>) -> Option<String> {
        (e164_shaped(key.e164) && id_shaped(key.id))
            .then(|| self.verification_key(key.e164, key.id))
    }

    /// The key of verification `id`, under the number `number_of` finds.
    async fn key_of(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .number_of(id)
            .await?
            .map(|number| self.verification_key(&number, id)))
    }

    /// A fresh verification as `issue_code` stored it, and `get` will read it: created
    /// when its code is sent, times to the millisecond.
    fn as_stored(mut fresh: Verification) -> Verification {
        let ms = |at: SystemTime| from_millis(millis(at));
        fresh.last_sent_at = ms(fresh.last_sent_at);
        fresh.created_at = fresh.last_sent_at;
        fresh.expires_at = ms(fresh.expires_at);
        fresh
    }

    /// A hash's names and values as a script joined them with NUL (no stored name or
    /// value holds one: they are ids, numbers, times, tags and JSON, which escapes it).
    /// Borrowed from `joined`: one allocation, not one per name and value.
    fn unjoin(joined: &str) -> Result<Vec<&str>, StoreError> {
        if joined.is_empty() {
            return Ok(Vec::new());
        }
        let fields: Vec<&str> = joined.split('\0').collect();
        if !fields.len().is_multiple_of(2) {
            return Err(corrupt("joined fields"));
        }
        Ok(fields)
    }

    /// A verification from its hash's names and values, as HGETALL gives them (or
    /// `unjoin` splits them).
    fn parse<S: AsRef<str>>(fields: &[S]) -> Result<Verification, StoreError> {
        fn need<'v>(value: Option<&'v str>, name: &str) -> Result<&'v str, StoreError> {
            value.ok_or_else(|| corrupt(name))
        }
        fn number(value: Option<&str>, name: &str) -> Result<u64, StoreError> {
            need(value, name)?.parse().map_err(|_| corrupt(name))
        }
        // A field a fresh verification is stored without (see `ISSUE_LUA`): `default`.
        fn number_or(value: Option<&str>, name: &str, default: u64) -> Result<u64, StoreError> {
            value.map_or(Ok(default), |_| number(value, name))
        }
        let f = StoredFields::read(fields);
        let created = number(f.created, "created")?;
        let to = need(f.to, "to")?;
        let to = match f.region {
            Some(region) => Self::stored_number(to, region).ok_or_else(|| corrupt("to"))?,
            // Stored before the region was: parse the number again.
            None => PhoneNumber::from_e164(to).map_err(|_| corrupt("to"))?,
        };
        let voice = f.voice.unwrap_or("");
        let browser = f.browser.unwrap_or("");
        Ok(Verification {
            id: need(f.id, "id")?.to_string(),
            to,
            channel: Channel::from_name(need(f.channel, "channel")?)
                .ok_or_else(|| corrupt("channel"))?,
            status: Status::from_name(need(f.status, "status")?)
                .ok_or_else(|| corrupt("status"))?,
            created_at: from_millis(created),
            last_sent_at: from_millis(number_or(f.sent, "sent", created)?),
            expires_at: from_millis(number(f.expires, "expires")?),
            failed_checks: number_or(f.failed, "failed", 0)? as u32,
            send_attempts: Self::attempts(&f.attempts)?,
            checker: match need(f.hash, "hash")? {
                "" => Checker::Provider(
                    serde_json::from_str(need(f.owner, "owner")?).map_err(|_| corrupt("owner"))?,
                ),
                hash => Checker::Hash(CodeHash::from_hex(hash).ok_or_else(|| corrupt("hash"))?),
            },
            voice: if voice.is_empty() {
                None
            } else {
                Some(serde_json::from_str::<VoiceTicket>(voice).map_err(|_| corrupt("voice"))?)
            },
            browser: (!browser.is_empty()).then(|| browser.to_string()),
            locale: Locale::from_language(f.locale.unwrap_or("en")).unwrap_or_default(),
        })
    }

    /// The send attempts among a verification's fields, oldest first: those of the
    /// earlier layout's list `attempts`, then one per field `a<ms>.<seq>` in time and
    /// sequence.
    fn attempts(fields: &[(&str, &str)]) -> Result<Vec<SendAttempt>, StoreError> {
        let mut attempts = Vec::new();
        let mut own = Vec::new();
        for &(name, value) in fields {
            if name == "attempts" {
                // cjson writes an empty array as `{}`.
                if value != "{}" {
                    let listed: Vec<ListedAttempt> =
                        serde_json::from_str(value).map_err(|_| corrupt("attempts"))?;
                    attempts.extend(listed.into_iter().map(|a| SendAttempt {
                        channel: a.channel,
                        provider: a.provider,
                        at: from_millis(a.at),
                        delivery_status: a.delivery_status,
                        provider_ref: a.provider_ref,
                    }));
                }
            } else if let Some((at, seq)) = name
                .strip_prefix('a')
                .and_then(|rest| rest.split_once('.'))
                .and_then(|(at, seq)| Some((at.parse::<u64>().ok()?, seq.parse::<u64>().ok()?)))
            {
                let (channel, provider, delivery_status, provider_ref): StoredAttempt =
                    serde_json::from_str(value).map_err(|_| corrupt("attempt"))?;
                own.push((
                    (at, seq),
                    SendAttempt {
                        channel,
                        provider,
                        at: from_millis(at),
                        delivery_status,
                        provider_ref,
                    },
                ));
            }
        }
        own.sort_by_key(|(order, _)| *order);
        attempts.extend(own.into_iter().map(|(_, attempt)| attempt));
        Ok(attempts)
    }

    /// The field an attempt made `at` is kept in: its time in milliseconds, then this
    /// process's sequence, which orders attempts within one millisecond.
    fn attempt_field(at: SystemTime) -> String {
        let seq = ATTEMPT_SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let (mut ms, mut n) = (itoa::Buffer::new(), itoa::Buffer::new());
        ["a", ms.format(millis(at)), ".", n.format(seq)].concat()
    }

    /// A number as `issue_code` stored it: E.164 and its region (empty: none), both from
    /// a parse then. Taken as they are, without parsing again, but only in their shape.
    fn stored_number(e164: &str, region: &str) -> Option<PhoneNumber> {
        let region_shaped = region.len() <= 3
            && region
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        (e164_shaped(e164) && region_shaped).then(|| {
            PhoneNumber::from_stored(
                e164.to_string(),
                (!region.is_empty()).then(|| region.to_string()),
            )
        })
    }

    fn hash_hex(hash: &CodeHash) -> String {
        crate::code::to_hex(&hash.to_bytes())
    }
}

#[async_trait]
impl VerificationStore for RedisStore {
    async fn take_send_slot(
        &self,
        to: &PhoneNumber,
        ip: Option<IpAddr>,
        now: SystemTime,
        limits: &SendLimits,
        guard: Option<Guarded<'_>>,
    ) -> Result<SlotDecision, StoreError> {
        let (decision, _) = self.take_slot(to, ip, now, limits, guard, None).await?;
        Ok(decision)
    }

    async fn take_slot_and_issue(
        &self,
        fresh: Verification,
        ip: Option<IpAddr>,
        now: SystemTime,
        limits: &SendLimits,
        guard: Option<Guarded<'_>>,
    ) -> Result<StartDecision, StoreError> {
        let (decision, issued) = {
            let issue = self.issue_call(&fresh, now)?;
            self.take_slot(&fresh.to, ip, now, limits, guard, Some(&issue))
                .await?
        };
        if let Some(refused) = decision.refusal() {
            return Ok(refused);
        }
        let issued = match issued {
            Some(fields) => self.issued(fresh, fields).await?,
            None => self.issue_code(fresh, now).await?,
        };
        Ok(StartDecision::Issued(Box::new(issued)))
    }

    async fn record_approval(
        &self,
        prefix: &str,
        now: SystemTime,
        limits: &FraudLimits,
    ) -> Result<(), StoreError> {
        let now_ms = millis(now);
        let _: i64 = self
            .eval(
                Eval::new(&self.scripts.approve, &[self.guard_key("prefix", prefix)])
                    .arg(now_ms)
                    .arg(limits.window.as_millis() as u64)
                    .arg(slot_start(now_ms, limits.window)),
            )
            .await?;
        Ok(())
    }

    async fn issue_code(
        &self,
        fresh: Verification,
        now: SystemTime,
    ) -> Result<Verification, StoreError> {
        let fields: Vec<String> = {
            let issue = self.issue_call(&fresh, now)?;
            let mut invocation = Eval::new(
                &self.numbers(now).issue_code,
                &IssueCall::keys_after(&[], Some(&issue)),
            );
            IssueCall::append(Some(&issue), &mut invocation);
            self.eval(&invocation).await?
        };
        self.issued(fresh, fields).await
    }

    async fn add_send_attempt(
        &self,
        key: VerificationKey<'_>,
        attempt: SendAttempt,
    ) -> Result<(), StoreError> {
        let Some(key) = self.key_at(key) else {
            return Ok(());
        };
        let stored: StoredAttempt = (
            attempt.channel,
            attempt.provider,
            attempt.delivery_status,
            attempt.provider_ref,
        );
        let json = serde_json::to_string(&stored)
            .map_err(|e| StoreError::caused_by("cannot encode a send attempt", e))?;
        // No script: the field is written, and the hash given an expiry only if it had
        // none, in the past, so that a verification no longer kept is not made again (a
        // reader of the moment between finds no verification in it; see `get`).
        let mut pipe = redis::pipe();
        pipe.cmd("HSET")
            .arg(&key)
            .arg(Self::attempt_field(attempt.at))
            .arg(json)
            .ignore()
            .cmd("PEXPIREAT")
            .arg(&key)
            .arg(1)
            .arg("NX")
            .ignore();
        let _: () = self.pipeline(&pipe).await?;
        Ok(())
    }

    async fn check_code(
        &self,
        target: CheckTarget<'_>,
        candidate: &CodeHash,
        now: SystemTime,
        limits: &CheckLimits,
        _send_window: Duration,
        rebind: Option<&str>,
    ) -> Result<CheckDecision, StoreError> {
        let e164 = target.e164();
        if !e164_shaped(e164) {
            return Ok(CheckDecision::NotFound);
        }
        let mut keys = vec![self.number_key(e164)];
        // Without a verification's key, the script checks the number's current one.
        if let CheckTarget::Key(key) = target {
            let Some(key) = self.key_at(key) else {
                return Ok(CheckDecision::NotFound);
            };
            keys.push(key);
        }
        let mut invocation = Eval::new(&self.numbers(now).check_code, &keys);
        invocation
            .arg(Self::hash_hex(candidate))
            .arg(millis(now))
            .arg(limits.max_attempts)
            .arg(limits.lockout_failures)
            .arg(limits.lockout.as_millis() as u64)
            .arg(rebind.unwrap_or(""))
            .arg(millis(now + limits.lockout))
            .arg(self.verification_key(e164, ""));
        let (tag, detail, joined): (String, String, String) = self.eval(&invocation).await?;
        if tag == "notfound" {
            return Ok(CheckDecision::NotFound);
        }
        let verification = Self::parse(&Self::unjoin(&joined)?)?;
        Ok(match tag.as_str() {
            "delegated" => CheckDecision::Delegated(verification),
            "evaluated" => CheckDecision::Evaluated(
                verification,
                CheckOutcome {
                    valid: detail == "1",
                },
            ),
            "locked" => {
                let ms = detail.parse().unwrap_or(1000);
                CheckDecision::Refused(
                    verification,
                    CheckRefusal::Locked(RetryAfter(Duration::from_millis(ms))),
                )
            }
            _ => {
                let status = verification.status;
                CheckDecision::Refused(verification, CheckRefusal::NotPending(status))
            }
        })
    }

    async fn settle_check(
        &self,
        key: VerificationKey<'_>,
        verdict: Verdict,
        now: SystemTime,
        limits: &CheckLimits,
        _send_window: Duration,
        rebind: Option<&str>,
    ) -> Result<Option<Verification>, StoreError> {
        let e164 = key.e164;
        let Some(key) = self.key_at(key) else {
            return Ok(None);
        };
        let verdict = match verdict {
            Verdict::Approved => "approved",
            Verdict::Wrong => "wrong",
            Verdict::Expired => "expired",
            Verdict::Exhausted => "exhausted",
            Verdict::Unanswered => "unanswered",
        };
        let fields: Vec<String> = self
            .eval(
                Eval::new(
                    &self.numbers(now).settle_check,
                    &[key, self.number_key(e164)],
                )
                .arg(verdict)
                .arg(millis(now))
                .arg(limits.max_attempts)
                .arg(limits.lockout_failures)
                .arg(limits.lockout.as_millis() as u64)
                .arg(rebind.unwrap_or("")),
            )
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        Self::parse(&fields).map(Some)
    }

    async fn hand_over(
        &self,
        key: VerificationKey<'_>,
        check: ProviderCheck,
    ) -> Result<bool, StoreError> {
        let Some(key) = self.key_at(key) else {
            return Ok(false);
        };
        let owner = serde_json::to_string(&check)
            .map_err(|e| StoreError::caused_by("cannot encode a provider check", e))?;
        let handed: i64 = self
            .eval(Eval::new(&self.scripts.hand_over, &[key]).arg(owner))
            .await?;
        Ok(handed == 1)
    }

    async fn get(&self, id: &str) -> Result<Option<Verification>, StoreError> {
        let Some(key) = self.key_of(id).await? else {
            return Ok(None);
        };
        let fields: Vec<String> = self.command(redis::cmd("HGETALL").arg(key)).await?;
        // A hash without an id is no verification: an attempt appended the moment one
        // stopped being kept, until its expiry removes it.
        if !fields.chunks(2).any(|pair| pair[0] == "id") {
            return Ok(None);
        }
        Self::parse(&fields).map(Some)
    }

    /// From the id itself when this store made it; otherwise through the id → number
    /// index.
    async fn number_of(&self, id: &str) -> Result<Option<String>, StoreError> {
        if !id_shaped(id) {
            return Ok(None);
        }
        if let Some(number) = self.ids.open(id) {
            return Ok(Some(number));
        }
        self.command(redis::cmd("GET").arg(self.index_key(id)))
            .await
    }

    fn new_id(&self, to: &PhoneNumber) -> String {
        self.ids
            .seal(to.e164())
            .unwrap_or_else(|| crate::code::random_hex(16))
    }

    async fn current_for(&self, to: &PhoneNumber) -> Result<Option<String>, StoreError> {
        let now = SystemTime::now();
        self.eval(&Eval::new(
            &self.numbers(now).current,
            &[self.number_key(to.e164())],
        ))
        .await
    }

    async fn end_pending(
        &self,
        id: &str,
        status: Status,
        now: SystemTime,
    ) -> Result<Option<Verification>, StoreError> {
        let Some(key) = self.key_of(id).await? else {
            return Ok(None);
        };
        let fields: Vec<String> = self
            .eval(
                Eval::new(&self.scripts.end_pending, &[key])
                    .arg(millis(now))
                    .arg(status.as_str()),
            )
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        Self::parse(&fields).map(Some)
    }

    async fn set_delivery_status(
        &self,
        id: &str,
        provider: &str,
        provider_ref: Option<&str>,
        status: &str,
    ) -> Result<bool, StoreError> {
        let Some(key) = self.key_of(id).await? else {
            return Ok(false);
        };
        let found: i64 = self
            .eval(
                Eval::new(&self.scripts.set_delivery, &[key])
                    .arg(provider)
                    .arg(provider_ref.unwrap_or(""))
                    .arg(status),
            )
            .await?;
        Ok(found == 1)
    }

    async fn claim_idempotency_key(
        &self,
        key: &str,
        fingerprint: &str,
        now: SystemTime,
        ttl: Duration,
    ) -> Result<IdempotencyClaim, StoreError> {
        let reply: Vec<String> = self
            .eval(
                Eval::new(&self.scripts.claim_key, &[self.idempotency_key(key)])
                    .arg(fingerprint)
                    .arg(millis(now))
                    .arg(millis(now + ttl)),
            )
            .await?;
        Ok(match reply.first().map(String::as_str) {
            Some("claimed") => IdempotencyClaim::Claimed,
            Some("conflict") => IdempotencyClaim::Conflict,
            Some("replay") if reply.len() == 3 => IdempotencyClaim::Replay(StoredResponse {
                status: reply[1]
                    .parse()
                    .map_err(|_| corrupt("idempotency status"))?,
                body: reply[2].clone(),
            }),
            _ => IdempotencyClaim::InProgress,
        })
    }

    async fn complete_idempotency_key(
        &self,
        key: &str,
        response: StoredResponse,
    ) -> Result<(), StoreError> {
        let _: i64 = self
            .eval(
                Eval::new(&self.scripts.complete_key, &[self.idempotency_key(key)])
                    .arg(response.status)
                    .arg(response.body),
            )
            .await?;
        Ok(())
    }

    async fn release_idempotency_key(&self, key: &str) -> Result<(), StoreError> {
        let _: i64 = self
            .command(redis::cmd("DEL").arg(self.idempotency_key(key)))
            .await?;
        Ok(())
    }

    async fn put_record(
        &self,
        kind: &str,
        key: &str,
        value: &str,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        if !super::record_key_valid(key) {
            return Ok(());
        }
        let _: () = self
            .command(
                redis::cmd("SET")
                    .arg(self.record_key(kind, key))
                    .arg(value)
                    .arg("PXAT")
                    .arg(millis(expires_at).max(1)),
            )
            .await?;
        Ok(())
    }

    async fn get_record(
        &self,
        kind: &str,
        key: &str,
        _now: SystemTime,
    ) -> Result<Option<String>, StoreError> {
        if !super::record_key_valid(key) {
            return Ok(None);
        }
        self.command(redis::cmd("GET").arg(self.record_key(kind, key)))
            .await
    }

    async fn take_record(
        &self,
        kind: &str,
        key: &str,
        _now: SystemTime,
    ) -> Result<Option<String>, StoreError> {
        if !super::record_key_valid(key) {
            return Ok(None);
        }
        self.command(redis::cmd("GETDEL").arg(self.record_key(kind, key)))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let pong: String = self.command(&redis::cmd("PING")).await?;
        if pong == "PONG" {
            if self.layout_since.load(Ordering::Relaxed) == LAYOUT_UNKNOWN {
                self.read_layout().await?;
            }
            Ok(())
        } else {
            self.metrics.store_error();
            Err(StoreError::new(format!("unexpected PING answer {pong:?}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::RedisServer;

    async fn store(server: &RedisServer) -> RedisStore {
        RedisStore::connect(&server.url(), false, "base:", Arc::new(Metrics::default()))
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redis_store_passes_the_contract() {
        let Some(server) = RedisServer::start_or_skip().await else {
            return;
        };
        let base = store(&server).await;
        super::super::contract::run_all(|| {
            Box::new(base.with_prefix(&format!("c{}:", crate::code::random_hex(4))))
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn every_key_left_after_the_contract_has_a_ttl() {
        let Some(server) = RedisServer::start_or_skip().await else {
            return;
        };
        let base = store(&server).await;
        super::super::contract::run_all(|| {
            Box::new(base.with_prefix(&format!("t{}:", crate::code::random_hex(4))))
        })
        .await;
        assert!(
            server.key_count().await > 10,
            "the contract left state behind to check"
        );
        let keys = server.keys_without_ttl().await;
        assert!(keys.is_empty(), "keys without a TTL: {keys:?}");
    }

    /// A store that reads every number through `NUMBER_FOLD`, as one does until the
    /// layout's marker is read, or while keys of the earlier layout may live.
    fn folding(store: RedisStore) -> RedisStore {
        store.layout_since.store(LAYOUT_UNKNOWN, Ordering::Relaxed);
        store
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn redis_store_passes_the_contract_while_folding_the_earlier_layout() {
        let Some(server) = RedisServer::start_or_skip().await else {
            return;
        };
        let base = store(&server).await;
        assert!(
            !base.folding(SystemTime::now()),
            "a fresh redis never folds"
        );
        super::super::contract::run_all(|| {
            Box::new(folding(
                base.with_prefix(&format!("f{}:", crate::code::random_hex(4))),
            ))
        })
        .await;
        let keys = server.keys_without_ttl().await;
        assert!(keys.is_empty(), "keys without a TTL: {keys:?}");
    }

    /// When the layout began: 0 in a Redis that held nothing, else when the first store
    /// read the marker, which later stores keep; numbers fold until the earlier layout's
    /// keys have expired, and not after.
    #[tokio::test]
    async fn the_layout_marker_says_how_long_numbers_fold() {
        let Some(server) = RedisServer::start_or_skip().await else {
            return;
        };
        let first = store(&server).await;
        assert_eq!(first.layout_since.load(Ordering::Relaxed), 0);
        let metrics = || Arc::new(Metrics::default());
        let before = millis(SystemTime::now());
        let upgraded = RedisStore::connect(&server.url(), false, "upgraded:", metrics())
            .await
            .unwrap()
            .earlier_layout_lasted(Duration::from_secs(3600));
        let since = upgraded.layout_since.load(Ordering::Relaxed);
        assert!(
            since >= before && since <= millis(SystemTime::now()),
            "{since}"
        );
        let began = from_millis(since);
        assert!(upgraded.folding(began + Duration::from_secs(3599)));
        assert!(!upgraded.folding(began + Duration::from_secs(3601)));
        tokio::time::sleep(Duration::from_millis(5)).await;
        let again = RedisStore::connect(&server.url(), false, "upgraded:", metrics())
            .await
            .unwrap();
        assert_eq!(again.layout_since.load(Ordering::Relaxed), since);
        let ttl: i64 = again
            .command(redis::cmd("PTTL").arg("upgraded:layout"))
            .await
            .unwrap();
        assert!(ttl > 0, "the marker expires: {ttl}");
    }

    /// A number as the earlier layout kept it (`sendw`, `cur`, `fail`, `lock` keys) is
    /// folded into its hash on first use, keeping its cooldown, current verification,
    /// failures and lockout, and its keys are gone after.
    #[tokio::test]
    async fn a_number_of_the_earlier_layout_keeps_its_limits_and_verification() {
        let Some(server) = RedisServer::start_or_skip().await else {
            return;
        };
        let store = folding(store(&server).await.with_prefix("old:"));
        let limits = super::super::contract::CHECK;
        let now = SystemTime::now();
        let to = PhoneNumber::from_e164("+12015550100").unwrap();
        let v = store
            .issue_code(super::super::contract::fresh(&to, "123456", now), now)
            .await
            .unwrap();
        // The number as the earlier layout wrote it.
        let now_ms = millis(now);
        let base = "old:{+12015550100}:";
        let raw = |args: &[String]| {
            let mut cmd = redis::cmd(&args[0]);
            cmd.arg(&args[1..]);
            cmd
        };
        let keep = now_ms + 3_600_000;
        for args in [
            format!("DEL {base}n"),
            format!(
                "HSET {base}sendw last {} s{} 1",
                now_ms - 5000,
                now_ms - 5000
            ),
            format!("PEXPIREAT {base}sendw {}", now_ms + 600_000),
            format!("SET {base}cur {} PXAT {keep}", v.id),
            format!(
                "HSET {base}fail n {} until {keep}",
                limits.lockout_failures - 1
            ),
            format!("PEXPIREAT {base}fail {keep}"),
        ] {
            let args: Vec<String> = args.split(' ').map(String::from).collect();
            let _: redis::Value = store.command(&raw(&args)).await.unwrap();
        }
        assert_eq!(store.current_for(&to).await.unwrap(), Some(v.id.clone()));
        // The cooldown holds: the latest send was 5 s ago.
        let send = super::super::contract::SEND;
        let decision = store
            .take_send_slot(&to, None, now, &send, None)
            .await
            .unwrap();
        let SlotDecision::Refused(RetryAfter(wait)) = decision else {
            panic!("{decision:?}")
        };
        assert!(wait > Duration::from_secs(20), "{wait:?}");
        for legacy in ["sendw", "cur", "fail", "lock"] {
            let exists: i64 = store
                .command(redis::cmd("EXISTS").arg(format!("{base}{legacy}")))
                .await
                .unwrap();
            assert_eq!(exists, 0, "{legacy} was folded");
        }
        let expires: i64 = store
            .command(redis::cmd("PEXPIRETIME").arg(format!("{base}n")))
            .await
            .unwrap();
        assert_eq!(expires as u64, keep, "kept as long as the longest key was");
        // The check reaches the current verification, and the failures carried over
        // lock the number at this wrong code.
        let candidate = |code: &str| {
            let format = crate::code::CodeFormat {
                alphabet: crate::code::CodeAlphabet::Digits,
                length: 6,
            };
            crate::code::CodeHasher::new([9; 32]).hash(to.e164(), &format.parse(code).unwrap())
        };
        let window = Duration::from_secs(600);
        let check = |code: &'static str| {
            let candidate = candidate(code);
            let (store, to) = (&store, &to);
            async move {
                store
                    .check_code(
                        CheckTarget::Current(to),
                        &candidate,
                        now,
                        &limits,
                        window,
                        None,
                    )
                    .await
                    .unwrap()
            }
        };
        let CheckDecision::Evaluated(checked, outcome) = check("000000").await else {
            panic!("not evaluated")
        };
        assert_eq!((checked.id.as_str(), outcome.valid), (v.id.as_str(), false));
        let decision = check("123456").await;
        assert!(
            matches!(decision, CheckDecision::Refused(_, CheckRefusal::Locked(_))),
            "{decision:?}"
        );
        // A lock the earlier layout kept holds too.
        let other = PhoneNumber::from_e164("+12015550101").unwrap();
        let _: () = store
            .command(
                redis::cmd("SET")
                    .arg("old:{+12015550101}:lock")
                    .arg(now_ms + 60_000)
                    .arg("PXAT")
                    .arg(now_ms + 60_000),
            )
            .await
            .unwrap();
        let decision = store
            .take_send_slot(&other, None, now, &send, None)
            .await
            .unwrap();
        assert_eq!(decision, refused(60_000));
    }

    /// A verification the earlier layout stored keeps its attempts in the JSON list
    /// `attempts`: they read first, new ones append after them in their own fields, and a
    /// delivery report reaches the latest match of either. An attempt for a verification
    /// no longer kept leaves nothing behind.
    #[tokio::test]
    async fn attempts_of_the_earlier_layout_read_before_new_ones_and_take_reports() {
        let Some(server) = RedisServer::start_or_skip().await else {
            return;
        };
        let store = store(&server).await.with_prefix("listed:");
        let now = SystemTime::now();
        let to = PhoneNumber::from_e164("+12015550102").unwrap();
        let v = store
            .issue_code(super::super::contract::fresh(&to, "123456", now), now)
            .await
            .unwrap();
        let key = store.verification_key(to.e164(), &v.id);
        let listed = format!(
            r#"[{{"channel":"sms","provider":"twilio","at":{},"delivery_status":"sent","provider_ref":"SM1"}}]"#,
            millis(now) - 1000
        );
        let _: i64 = store
            .command(redis::cmd("HSET").arg(&key).arg("attempts").arg(&listed))
            .await
            .unwrap();
        let attempt = |provider: &str, reference: &str| SendAttempt {
            channel: Channel::Sms,
            provider: provider.into(),
            at: from_millis(millis(now)),
            delivery_status: Some("sent".into()),
            provider_ref: Some(reference.into()),
        };
        store
            .add_send_attempt(v.key(), attempt("telnyx", "T1"))
            .await
            .unwrap();
        let read = store.get(&v.id).await.unwrap().unwrap();
        let seen: Vec<_> = read
            .send_attempts
            .iter()
            .map(|a| (a.provider.as_str(), a.provider_ref.as_deref()))
            .collect();
        assert_eq!(seen, [("twilio", Some("SM1")), ("telnyx", Some("T1"))]);
        for (provider, reference, status) in [
            ("twilio", "SM1", "delivered"),
            ("telnyx", "T1", "undelivered"),
        ] {
            assert!(
                store
                    .set_delivery_status(&v.id, provider, Some(reference), status)
                    .await
                    .unwrap()
            );
        }
        let read = store.get(&v.id).await.unwrap().unwrap();
        let statuses: Vec<_> = read
            .send_attempts
            .iter()
            .map(|a| a.delivery_status.as_deref())
            .collect();
        assert_eq!(statuses, [Some("delivered"), Some("undelivered")]);
        // Gone from Redis: the attempt makes no hash of its own.
        let _: i64 = store.command(redis::cmd("DEL").arg(&key)).await.unwrap();
        store
            .add_send_attempt(v.key(), attempt("telnyx", "T2"))
            .await
            .unwrap();
        let exists: i64 = store.command(redis::cmd("EXISTS").arg(&key)).await.unwrap();
        assert_eq!(exists, 0);
        assert_eq!(store.get(&v.id).await.unwrap(), None);
    }

    /// A verification under an id the store made is found by id with no index entry,
    /// on this store and on another instance sharing the key, but not under another key;
    /// an id made elsewhere is still indexed.
    #[tokio::test]
    async fn ids_the_store_made_need_no_index_entry() {
        let Some(server) = RedisServer::start_or_skip().await else {
            return;
        };
        let store = store(&server)
            .await
            .with_prefix("ids:")
            .naming_ids_with([3; 16]);
        let now = SystemTime::now();
        let to = PhoneNumber::from_e164("+12015550103").unwrap();
        let mut fresh = super::super::contract::fresh(&to, "123456", now);
        fresh.id = store.new_id(&to);
        let ours = store.issue_code(fresh, now).await.unwrap();
        let index_exists = |id: String| {
            let store = &store;
            async move {
                let exists: i64 = store
                    .command(redis::cmd("EXISTS").arg(store.index_key(&id)))
                    .await
                    .unwrap();
                exists == 1
            }
        };
        assert!(!index_exists(ours.id.clone()).await);
        let other_instance = store.with_prefix("ids:");
        for store in [&store, &other_instance] {
            assert_eq!(store.get(&ours.id).await.unwrap().as_ref(), Some(&ours));
            assert_eq!(
                store.number_of(&ours.id).await.unwrap().as_deref(),
                Some(to.e164())
            );
        }
        let elsewhere = store.with_prefix("ids:").naming_ids_with([4; 16]);
        assert_eq!(elsewhere.get(&ours.id).await.unwrap(), None);
        // Given a new code, it keeps its id and still needs no entry.
        let again = store
            .issue_code(
                super::super::contract::fresh(&to, "654321", now + Duration::from_secs(1)),
                now + Duration::from_secs(1),
            )
            .await
            .unwrap();
        assert_eq!(again.id, ours.id);
        assert!(!index_exists(ours.id.clone()).await);
        // An id the caller made: indexed as before.
        let theirs = PhoneNumber::from_e164("+12015550104").unwrap();
        let made = super::super::contract::fresh(&theirs, "123456", now);
        let made = store.issue_code(made, now).await.unwrap();
        assert!(index_exists(made.id.clone()).await);
        assert_eq!(store.get(&made.id).await.unwrap().as_ref(), Some(&made));
    }

    #[test]
    fn a_joined_hash_splits_into_its_names_and_values_and_a_broken_one_is_an_error() {
        assert_eq!(RedisStore::unjoin("").unwrap(), Vec::<String>::new());
        assert_eq!(
            RedisStore::unjoin("id\0abc\0voice\0").unwrap(),
            ["id", "abc", "voice", ""]
        );
        assert!(RedisStore::unjoin("id\0abc\0status").is_err());
    }

    #[tokio::test]
    async fn a_fresh_verification_is_stored_without_its_defaults_and_reads_them() {
        let Some(server) = RedisServer::start_or_skip().await else {
            return;
        };
        let store = store(&server).await.with_prefix("defaults:");
        let now = SystemTime::now();
        async fn fields(store: &RedisStore, v: &Verification) -> Vec<String> {
            let key = store.verification_key(v.to.e164(), &v.id);
            let mut names: Vec<String> = store.command(redis::cmd("HKEYS").arg(key)).await.unwrap();
            names.sort();
            names
        }
        let bare = [
            "channel", "created", "expires", "hash", "id", "locale", "region", "status", "to",
        ];
        let to = PhoneNumber::from_e164("+12015550105").unwrap();
        let plain = store
            .issue_code(super::super::contract::fresh(&to, "123456", now), now)
            .await
            .unwrap();
        assert_eq!(fields(&store, &plain).await, bare);
        let read = store.get(&plain.id).await.unwrap().unwrap();
        assert_eq!(
            (read.last_sent_at, read.failed_checks),
            (read.created_at, 0)
        );
        assert_eq!(read, plain);
        // Given a new code, it is sent later than it was created.
        let later = now + Duration::from_secs(2);
        let again = store
            .issue_code(super::super::contract::fresh(&to, "654321", later), later)
            .await
            .unwrap();
        let read = store.get(&again.id).await.unwrap().unwrap();
        assert_eq!(read.created_at, plain.created_at);
        assert!(read.last_sent_at > read.created_at);
        // A browser (like a voice ticket) is stored when there is one.
        let bound = PhoneNumber::from_e164("+12015550106").unwrap();
        let mut fresh = super::super::contract::fresh(&bound, "123456", now);
        fresh.browser = Some("browser-1".into());
        let bound = store.issue_code(fresh, now).await.unwrap();
        let mut with_browser = bare.to_vec();
        with_browser.insert(0, "browser");
        assert_eq!(fields(&store, &bound).await, with_browser);
        assert_eq!(
            store
                .get(&bound.id)
                .await
                .unwrap()
                .unwrap()
                .browser
                .as_deref(),
            Some("browser-1")
        );
        // A field that is there but unreadable is still an error, not its default.
        let key = store.verification_key(plain.to.e164(), &plain.id);
        let _: () = store
            .command(redis::cmd("HSET").arg(&key).arg("failed").arg("many"))
            .await
            .unwrap();
        assert!(store.get(&plain.id).await.is_err());
    }

    #[tokio::test]
    async fn a_thread_keeps_one_connection_per_store_and_drops_a_dropped_stores() {
        let Some(server) = RedisServer::start_or_skip().await else {
            return;
        };
        let ours = || THREAD_CONNECTIONS.with_borrow(Vec::len);
        let before = ours();
        let first = store(&server).await;
        let copy = first.with_prefix("copy:");
        first.ping().await.unwrap();
        copy.ping().await.unwrap();
        assert_eq!(
            ours(),
            before + 1,
            "one connection for a store and its copies"
        );
        drop((first, copy));
        let second = store(&server).await;
        second.ping().await.unwrap();
        assert_eq!(ours(), before + 1, "the dropped store's connection is gone");
    }

    #[tokio::test]
    async fn a_stored_number_keeps_its_region_and_older_records_still_read() {
        let Some(server) = RedisServer::start_or_skip().await else {
            return;
        };
        let store = store(&server).await.with_prefix("region:");
        let to = PhoneNumber::from_e164("+442079460958").unwrap();
        let now = SystemTime::now();
        let fresh = super::super::contract::fresh(&to, "123456", now);
        let v = store.issue_code(fresh, now).await.unwrap();
        assert_eq!((v.to.e164(), v.to.region()), ("+442079460958", Some("GB")));
        let key = store.verification_key(to.e164(), &v.id);
        let edit = |args: &[&str]| {
            let mut cmd = redis::cmd(args[0]);
            cmd.arg(&key).arg(&args[1..]);
            cmd
        };
        // A verification stored before the region was: the number is parsed again.
        let _: i64 = store.command(&edit(&["HDEL", "region"])).await.unwrap();
        assert_eq!(store.get(&v.id).await.unwrap().unwrap().to, to);
        // A region no parse gives is not taken as it is.
        let _: i64 = store
            .command(&edit(&["HSET", "region", "G}B"]))
            .await
            .unwrap();
        assert!(store.get(&v.id).await.is_err());
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_a_store_error_not_a_hang() {
        let metrics = Arc::new(Metrics::default());
        let store = RedisStore::connect("redis://127.0.0.1:1", false, "x:", metrics.clone())
            .await
            .unwrap();
        let started = std::time::Instant::now();
        assert!(store.ping().await.is_err());
        assert!(store.get("0123456789abcdef0123456789abcdef").await.is_err());
        assert!(started.elapsed() < Duration::from_secs(6));
        // The start-up ping, then the two calls above.
        assert!(
            metrics
                .render()
                .contains("phone_verify_store_errors_total 3"),
            "{}",
            metrics.render()
        );
    }
}
