//! The Redis backend: state shared by any number of instances. Every decision is one
//! Lua script (atomic in Redis), every key has a TTL, and the keys of one number share
//! the hash tag `{+12015550123}` so scripts run on Redis Cluster and Valkey too.
//!
//! Keys (`p` is `store.key_prefix`):
//! `p{NUM}:v:ID` verification (hash) · `p{NUM}:cur` current id · `p{NUM}:sends` send
//! times (zset) · `p{NUM}:fail` consecutive failures · `p{NUM}:lock` lockout ·
//! `pvid:{ID}` id → number · `pip:{IP}` sends from an address (zset) · `pidem:{KEY}`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{FromRedisValue, Script, ScriptInvocation};
use serde::{Deserialize, Serialize};

use super::{
    CheckDecision, IdempotencyClaim, RETAIN_AFTER_EXPIRY, SlotDecision, StoreError, StoredResponse,
    VerificationStore,
};
use crate::code::CodeHash;
use crate::domain::rules::{CheckLimits, CheckOutcome, CheckRefusal, SendLimits};
use crate::domain::{Channel, RetryAfter, SendAttempt, Status, Verification, VoiceTicket};
use crate::metrics::Metrics;
use crate::phone::PhoneNumber;

/// No Redis call may hang a request longer than this.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

const TAKE_NUMBER_SLOT: &str = r#"
local now, cooldown, max, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local keep = math.max(window, cooldown)
local wait = 0
local locked_until = tonumber(redis.call('GET', KEYS[1]))
if locked_until and now < locked_until then wait = locked_until - now end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - keep)
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if #last == 2 and now < tonumber(last[2]) + cooldown then wait = math.max(wait, tonumber(last[2]) + cooldown - now) end
local recent = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. (now - window), '+inf', 'WITHSCORES')
local n = #recent / 2
if n >= max then wait = math.max(wait, tonumber(recent[(n - max) * 2 + 2]) + window - now) end
if wait > 0 then return wait end
redis.call('ZADD', KEYS[2], now, ARGV[5])
redis.call('PEXPIREAT', KEYS[2], now + keep)
return 0
"#;

const TAKE_IP_SLOT: &str = r#"
local now, max, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n >= max then
  local oldest = redis.call('ZRANGE', KEYS[1], n - max, n - max, 'WITHSCORES')
  return math.max(tonumber(oldest[2]) + window - now, 1)
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIREAT', KEYS[1], now + window)
return 0
"#;

const ISSUE_CODE: &str = r#"
local now, keep_until = tonumber(ARGV[2]), tonumber(ARGV[9])
local current = redis.call('GET', KEYS[1])
if current then
  local key = ARGV[1] .. current
  local status = redis.call('HGET', key, 'status')
  if status == 'pending' and now < tonumber(redis.call('HGET', key, 'expires')) then
    if (redis.call('HGET', key, 'browser') or '') == ARGV[11] then
      redis.call('HSET', key, 'hash', ARGV[5], 'channel', ARGV[6], 'sent', ARGV[7], 'expires', ARGV[8], 'voice', ARGV[10])
      redis.call('PEXPIREAT', key, keep_until)
      redis.call('PEXPIREAT', KEYS[1], keep_until)
      return redis.call('HGETALL', key)
    end
    redis.call('HSET', key, 'status', 'canceled', 'voice', '')
  end
end
redis.call('HSET', KEYS[2], 'id', ARGV[3], 'to', ARGV[4], 'hash', ARGV[5], 'channel', ARGV[6], 'created', ARGV[7],
  'sent', ARGV[7], 'expires', ARGV[8], 'voice', ARGV[10], 'status', 'pending', 'failed', 0, 'attempts', '[]',
  'browser', ARGV[11])
redis.call('PEXPIREAT', KEYS[2], keep_until)
redis.call('SET', KEYS[1], ARGV[3], 'PXAT', keep_until)
return redis.call('HGETALL', KEYS[2])
"#;

const ADD_ATTEMPT: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local list = cjson.decode(redis.call('HGET', KEYS[1], 'attempts'))
table.insert(list, cjson.decode(ARGV[1]))
redis.call('HSET', KEYS[1], 'attempts', cjson.encode(list))
return 1
"#;

const SET_DELIVERY: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local list = cjson.decode(redis.call('HGET', KEYS[1], 'attempts'))
local found = nil
if ARGV[2] ~= '' then
  for i = #list, 1, -1 do
    if list[i].provider == ARGV[1] and list[i].provider_ref == ARGV[2] then found = i break end
  end
end
if not found then
  for i = #list, 1, -1 do
    if list[i].provider == ARGV[1] then found = i break end
  end
end
if not found then return 0 end
list[found].delivery_status = ARGV[3]
redis.call('HSET', KEYS[1], 'attempts', cjson.encode(list))
return 1
"#;

const END_PENDING: &str = r#"
if redis.call('HGET', KEYS[1], 'status') ~= 'pending' then return {} end
if tonumber(ARGV[1]) >= tonumber(redis.call('HGET', KEYS[1], 'expires')) then return {} end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'voice', '')
return redis.call('HGETALL', KEYS[1])
"#;

const CHECK_CODE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return {'notfound', '', {}} end
local now = tonumber(ARGV[2])
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'pending' and now >= tonumber(redis.call('HGET', KEYS[1], 'expires')) then
  status = 'expired'
  redis.call('HSET', KEYS[1], 'status', status, 'voice', '')
end
if status ~= 'pending' then return {'notpending', status, redis.call('HGETALL', KEYS[1])} end
local locked_until = tonumber(redis.call('GET', KEYS[3]))
if locked_until and now < locked_until then return {'locked', tostring(locked_until - now), redis.call('HGETALL', KEYS[1])} end
if redis.call('HGET', KEYS[1], 'hash') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'status', 'approved', 'voice', '')
  if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'browser', ARGV[6]) end
  redis.call('DEL', KEYS[2])
  return {'evaluated', '1', redis.call('HGETALL', KEYS[1])}
end
local failed = redis.call('HINCRBY', KEYS[1], 'failed', 1)
if failed >= tonumber(ARGV[3]) then redis.call('HSET', KEYS[1], 'status', 'max_attempts_reached', 'voice', '') end
local lockout = tonumber(ARGV[5])
local forget_at = tonumber(redis.call('HGET', KEYS[2], 'until'))
if forget_at and now >= forget_at then redis.call('DEL', KEYS[2]) end
local failures = redis.call('HINCRBY', KEYS[2], 'n', 1)
redis.call('HSET', KEYS[2], 'until', now + lockout)
redis.call('PEXPIREAT', KEYS[2], now + lockout)
if failures >= tonumber(ARGV[4]) then
  redis.call('SET', KEYS[3], now + lockout, 'PXAT', now + lockout)
  redis.call('DEL', KEYS[2])
end
return {'evaluated', '0', redis.call('HGETALL', KEYS[1])}
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

/// One connection, to a single Redis or a cluster; both reconnect by themselves.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

struct Scripts {
    take_number_slot: Script,
    take_ip_slot: Script,
    issue_code: Script,
    add_attempt: Script,
    set_delivery: Script,
    end_pending: Script,
    check_code: Script,
    claim_key: Script,
    complete_key: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            take_number_slot: Script::new(TAKE_NUMBER_SLOT),
            take_ip_slot: Script::new(TAKE_IP_SLOT),
            issue_code: Script::new(ISSUE_CODE),
            add_attempt: Script::new(ADD_ATTEMPT),
            set_delivery: Script::new(SET_DELIVERY),
            end_pending: Script::new(END_PENDING),
            check_code: Script::new(CHECK_CODE),
            claim_key: Script::new(CLAIM_KEY),
            complete_key: Script::new(COMPLETE_KEY),
        }
    }
}

/// Verification state in Redis.
pub struct RedisStore {
    connection: Connection,
    prefix: String,
    scripts: Scripts,
    metrics: Arc<Metrics>,
}

/// A send attempt as stored (times in milliseconds, readable from Lua).
#[derive(Serialize, Deserialize)]
struct StoredAttempt {
    channel: Channel,
    provider: String,
    at: u64,
    delivery_status: Option<String>,
    provider_ref: Option<String>,
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::new(format!("unreadable {what} in redis"))
}

impl RedisStore {
    /// Connects (a cluster when `cluster`), pings once, and keeps reconnecting by itself.
    /// An unreachable Redis at start-up is logged; requests get 503 until it answers.
    pub async fn connect(
        url: &str,
        cluster: bool,
        prefix: &str,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let connection = if cluster {
            let client = redis::cluster::ClusterClient::builder(url.split(',').map(str::trim))
                .connection_timeout(Duration::from_secs(1))
                .response_timeout(CALL_TIMEOUT)
                .retries(1)
                .build()?;
            Connection::Cluster(client.get_async_connection().await?)
        } else {
            let client = redis::Client::open(url)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(1)))
                .set_response_timeout(Some(CALL_TIMEOUT))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_secs(2));
            Connection::Single(client.get_connection_manager_lazy(config)?)
        };
        let store = Self {
            connection,
            prefix: prefix.to_string(),
            scripts: Scripts::new(),
            metrics,
        };
        match store.ping().await {
            Ok(()) => tracing::info!(cluster, "redis store connected"),
            Err(e) => {
                tracing::error!(error = %e, "redis is not reachable yet; requests get 503 until it is")
            }
        }
        Ok(store)
    }

    /// The same connection under another key prefix (tests give each case its own).
    pub fn with_prefix(&self, prefix: &str) -> Self {
        Self {
            connection: self.connection.clone(),
            prefix: prefix.to_string(),
            scripts: Scripts::new(),
            metrics: self.metrics.clone(),
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

    async fn run<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let call = async {
            match self.connection.clone() {
                Connection::Single(mut c) => invocation.invoke_async(&mut c).await,
                Connection::Cluster(mut c) => invocation.invoke_async(&mut c).await,
            }
        };
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.failed(e)),
            Err(_) => Err(self.timed_out()),
        }
    }

    async fn command<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        async fn query<C: ConnectionLike, T: FromRedisValue>(
            mut c: C,
            cmd: &redis::Cmd,
        ) -> redis::RedisResult<T> {
            cmd.query_async(&mut c).await
        }
        let call = async {
            match self.connection.clone() {
                Connection::Single(c) => query(c, cmd).await,
                Connection::Cluster(c) => query(c, cmd).await,
            }
        };
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.failed(e)),
            Err(_) => Err(self.timed_out()),
        }
    }

    fn number_key(&self, e164: &str, suffix: &str) -> String {
        format!("{}{{{e164}}}:{suffix}", self.prefix)
    }

    fn verification_key(&self, e164: &str, id: &str) -> String {
        self.number_key(e164, &format!("v:{id}"))
    }

    fn index_key(&self, id: &str) -> String {
        format!("{}vid:{{{id}}}", self.prefix)
    }

    /// The number verification `id` belongs to, through the id → number index.
    async fn number_of(&self, id: &str) -> Result<Option<String>, StoreError> {
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(None);
        }
        self.command(redis::cmd("GET").arg(self.index_key(id)))
            .await
    }

    /// The key of verification `id`, through the id → number index.
    async fn key_of(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .number_of(id)
            .await?
            .map(|number| self.verification_key(&number, id)))
    }

    fn parse(fields: Vec<String>) -> Result<Verification, StoreError> {
        let get = |name: &str| {
            fields
                .chunks(2)
                .find(|pair| pair[0] == name)
                .and_then(|pair| pair.get(1))
                .map(String::as_str)
                .ok_or_else(|| corrupt(name))
        };
        let number = |name: &str| get(name)?.parse::<u64>().map_err(|_| corrupt(name));
        let parse_enum = |name: &str| get(name).map(|v| serde_json::Value::String(v.to_string()));
        let attempts_json = get("attempts")?;
        // cjson writes an empty array as `{}`.
        let attempts: Vec<StoredAttempt> = if attempts_json == "{}" {
            Vec::new()
        } else {
            serde_json::from_str(attempts_json).map_err(|_| corrupt("attempts"))?
        };
        let voice = get("voice").unwrap_or("");
        let browser = get("browser").unwrap_or("");
        Ok(Verification {
            id: get("id")?.to_string(),
            to: PhoneNumber::from_e164(get("to")?).map_err(|_| corrupt("to"))?,
            channel: serde_json::from_value(parse_enum("channel")?)
                .map_err(|_| corrupt("channel"))?,
            status: serde_json::from_value(parse_enum("status")?).map_err(|_| corrupt("status"))?,
            created_at: from_millis(number("created")?),
            last_sent_at: from_millis(number("sent")?),
            expires_at: from_millis(number("expires")?),
            failed_checks: number("failed")? as u32,
            send_attempts: attempts
                .into_iter()
                .map(|a| SendAttempt {
                    channel: a.channel,
                    provider: a.provider,
                    at: from_millis(a.at),
                    delivery_status: a.delivery_status,
                    provider_ref: a.provider_ref,
                })
                .collect(),
            code_hash: serde_json::from_value(serde_json::Value::String(get("hash")?.to_string()))
                .map_err(|_| corrupt("hash"))?,
            voice: if voice.is_empty() {
                None
            } else {
                Some(serde_json::from_str::<VoiceTicket>(voice).map_err(|_| corrupt("voice"))?)
            },
            browser: (!browser.is_empty()).then(|| browser.to_string()),
        })
    }

    fn hash_hex(hash: &CodeHash) -> String {
        serde_json::to_value(hash)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    }
}

#[async_trait]
impl VerificationStore for RedisStore {
    async fn take_send_slot(
        &self,
        to: &PhoneNumber,
        ip: IpAddr,
        now: SystemTime,
        limits: &SendLimits,
    ) -> Result<SlotDecision, StoreError> {
        let now_ms = millis(now);
        let token = crate::code::random_hex(8);
        let ip_key = format!("{}ip:{{{ip}}}", self.prefix);
        // Two atomic steps, because an address and a number live in different cluster
        // slots: take the address's slot, then the number's; give the first back if the
        // second is refused. Nothing is ever over-granted.
        let ip_wait: u64 = self
            .run(
                self.scripts
                    .take_ip_slot
                    .key(&ip_key)
                    .arg(now_ms)
                    .arg(limits.max_per_ip)
                    .arg(limits.ip_window.as_millis() as u64)
                    .arg(&token),
            )
            .await?;
        if ip_wait > 0 {
            return Ok(SlotDecision::Refused(RetryAfter(Duration::from_millis(
                ip_wait,
            ))));
        }
        let e164 = to.e164();
        let number_wait: u64 = self
            .run(
                self.scripts
                    .take_number_slot
                    .key(self.number_key(e164, "lock"))
                    .key(self.number_key(e164, "sends"))
                    .arg(now_ms)
                    .arg(limits.cooldown.as_millis() as u64)
                    .arg(limits.max_per_number)
                    .arg(limits.number_window.as_millis() as u64)
                    .arg(&token),
            )
            .await?;
        if number_wait > 0 {
            let _: i64 = self
                .command(redis::cmd("ZREM").arg(&ip_key).arg(&token))
                .await?;
            return Ok(SlotDecision::Refused(RetryAfter(Duration::from_millis(
                number_wait,
            ))));
        }
        Ok(SlotDecision::Granted)
    }

    async fn issue_code(
        &self,
        fresh: Verification,
        now: SystemTime,
    ) -> Result<Verification, StoreError> {
        let e164 = fresh.to.e164().to_string();
        let keep_until = millis(fresh.expires_at + RETAIN_AFTER_EXPIRY);
        let voice = match &fresh.voice {
            Some(ticket) => serde_json::to_string(ticket)
                .map_err(|e| StoreError::caused_by("cannot encode a voice ticket", e))?,
            None => String::new(),
        };
        let fields: Vec<String> = self
            .run(
                self.scripts
                    .issue_code
                    .key(self.number_key(&e164, "cur"))
                    .key(self.verification_key(&e164, &fresh.id))
                    .arg(self.number_key(&e164, "v:"))
                    .arg(millis(now))
                    .arg(&fresh.id)
                    .arg(&e164)
                    .arg(Self::hash_hex(&fresh.code_hash))
                    .arg(fresh.channel.as_str())
                    .arg(millis(fresh.last_sent_at))
                    .arg(millis(fresh.expires_at))
                    .arg(keep_until)
                    .arg(voice)
                    .arg(fresh.browser.as_deref().unwrap_or("")),
            )
            .await?;
        let stored = Self::parse(fields)?;
        let _: () = self
            .command(
                redis::cmd("SET")
                    .arg(self.index_key(&stored.id))
                    .arg(&e164)
                    .arg("PXAT")
                    .arg(keep_until),
            )
            .await?;
        Ok(stored)
    }

    async fn add_send_attempt(&self, id: &str, attempt: SendAttempt) -> Result<(), StoreError> {
        let Some(key) = self.key_of(id).await? else {
            return Ok(());
        };
        let stored = StoredAttempt {
            channel: attempt.channel,
            provider: attempt.provider,
            at: millis(attempt.at),
            delivery_status: attempt.delivery_status,
            provider_ref: attempt.provider_ref,
        };
        let json = serde_json::to_string(&stored)
            .map_err(|e| StoreError::caused_by("cannot encode a send attempt", e))?;
        let _: i64 = self
            .run(self.scripts.add_attempt.key(key).arg(json))
            .await?;
        Ok(())
    }

    async fn check_code(
        &self,
        id: &str,
        candidate: &CodeHash,
        now: SystemTime,
        limits: &CheckLimits,
        _send_window: Duration,
        rebind: Option<&str>,
    ) -> Result<CheckDecision, StoreError> {
        let Some(e164) = self.number_of(id).await? else {
            return Ok(CheckDecision::NotFound);
        };
        let key = self.verification_key(&e164, id);
        let (tag, detail, fields): (String, String, Vec<String>) = self
            .run(
                self.scripts
                    .check_code
                    .key(&key)
                    .key(self.number_key(&e164, "fail"))
                    .key(self.number_key(&e164, "lock"))
                    .arg(Self::hash_hex(candidate))
                    .arg(millis(now))
                    .arg(limits.max_attempts)
                    .arg(limits.lockout_failures)
                    .arg(limits.lockout.as_millis() as u64)
                    .arg(rebind.unwrap_or("")),
            )
            .await?;
        if tag == "notfound" {
            return Ok(CheckDecision::NotFound);
        }
        let verification = Self::parse(fields)?;
        Ok(match tag.as_str() {
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

    async fn get(&self, id: &str) -> Result<Option<Verification>, StoreError> {
        let Some(key) = self.key_of(id).await? else {
            return Ok(None);
        };
        let fields: Vec<String> = self.command(redis::cmd("HGETALL").arg(key)).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        Self::parse(fields).map(Some)
    }

    async fn current_for(&self, to: &PhoneNumber) -> Result<Option<String>, StoreError> {
        self.command(redis::cmd("GET").arg(self.number_key(to.e164(), "cur")))
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
            .run(
                self.scripts
                    .end_pending
                    .key(key)
                    .arg(millis(now))
                    .arg(status.as_str()),
            )
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        Self::parse(fields).map(Some)
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
            .run(
                self.scripts
                    .set_delivery
                    .key(key)
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
            .run(
                self.scripts
                    .claim_key
                    .key(format!("{}idem:{{{key}}}", self.prefix))
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
            .run(
                self.scripts
                    .complete_key
                    .key(format!("{}idem:{{{key}}}", self.prefix))
                    .arg(response.status)
                    .arg(response.body),
            )
            .await?;
        Ok(())
    }

    async fn release_idempotency_key(&self, key: &str) -> Result<(), StoreError> {
        let _: i64 = self
            .command(redis::cmd("DEL").arg(format!("{}idem:{{{key}}}", self.prefix)))
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let pong: String = self.command(&redis::cmd("PING")).await?;
        if pong == "PONG" {
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
