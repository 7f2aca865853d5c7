//! The use cases, start, check, get and cancel, shared by every front end (pages,
//! JSON API, Twilio-compatible API). The one place that uses the store and the
//! channels together; the rules themselves are pure functions in `domain::rules`.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use phonenumber::country;

use crate::channels::{
    Call, CallScript, Channels, DeliveryError, Inbound, Receipt, SignatureCheck, Sms,
};
use crate::code::{Code, CodeFormat, CodeHasher, CodeSealer, credential_matches};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::phone::PhoneNumber;
use crate::store::{
    CheckDecision, IdempotencyClaim, SlotDecision, StoreError, StoredResponse, VerificationStore,
};

use crate::domain::rules::{self, CheckLimits, CheckRefusal, SendLimits};
use crate::domain::{Channel, RetryAfter, SendAttempt, Status, Verification, VoiceTicket};

/// The source of "now": the system clock in service, anything in tests.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;
}

/// The operating system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Why a use case did not do what was asked. `Display` is for logs; front ends choose
/// their own words from the variant.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("country not allowed")]
    CountryNotAllowed,
    #[error("send limit reached")]
    RateLimited(RetryAfter),
    #[error("number locked after consecutive failures")]
    Locked(RetryAfter),
    #[error("no such verification")]
    NotFound,
    #[error("verification is {}", .0.as_str())]
    NotPending(Status),
    #[error("the provider rejected the number")]
    NumberRejected,
    #[error("every provider failed")]
    DeliveryFailed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a request from a provider (status callback, call instructions) was refused.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("signature missing or invalid")]
    Forbidden,
    #[error("nothing to answer")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The configured rules, in the types the rules take.
#[derive(Debug, Clone)]
pub struct Policy {
    pub format: CodeFormat,
    pub ttl: Duration,
    pub send: SendLimits,
    pub check: CheckLimits,
    /// IPv6 clients are counted per network of this many leading bits.
    pub ipv6_prefix_len: u8,
    pub default_region: country::Id,
    /// Upper-case ISO 3166 codes; `None`: every country.
    pub allowed_countries: Option<BTreeSet<String>>,
    pub app_name: String,
    pub sms_template: String,
    /// For the origin-bound last line of SMS bodies (`@HOST #CODE`).
    pub host: String,
    /// `server.public_url` without a trailing slash, when providers can reach it (not
    /// loopback): the base of status callback and call instruction URLs.
    pub callback_base: Option<String>,
}

impl Policy {
    /// The policy of a validated configuration.
    pub fn new(config: &Config) -> Self {
        let v = &config.settings.verification;
        let secs = Duration::from_secs;
        Self {
            format: CodeFormat {
                alphabet: v.code_alphabet,
                length: v.code_length,
            },
            ttl: secs(v.ttl_secs),
            send: SendLimits {
                cooldown: secs(v.resend_cooldown_secs),
                max_per_number: v.max_sends_per_number,
                number_window: secs(v.send_window_secs),
                max_per_ip: v.max_sends_per_ip,
                ip_window: secs(v.ip_window_secs),
            },
            check: CheckLimits {
                max_attempts: v.max_check_attempts,
                lockout_failures: v.lockout_failures,
                lockout: secs(v.lockout_secs),
            },
            ipv6_prefix_len: v.ipv6_prefix_len,
            default_region: config.default_region,
            allowed_countries: config.allowed_countries.clone(),
            app_name: v.app_name.clone(),
            sms_template: v.sms_template.clone(),
            host: config.public_url.host().to_string(),
            callback_base: config.public_url.callback_base().map(str::to_owned),
        }
    }

    /// The policy of `v` behind `public_url`, both valid (tests build policies this way).
    #[cfg(test)]
    pub fn from_settings(v: &crate::config::VerificationSettings, public_url: &str) -> Self {
        let mut settings = crate::config::Settings {
            verification: v.clone(),
            ..Default::default()
        };
        settings.server.public_url = public_url.to_string();
        Self::new(&Config::parse(settings).expect("valid test settings"))
    }

    fn country_allowed(&self, to: &PhoneNumber) -> bool {
        match &self.allowed_countries {
            None => true,
            Some(allowed) => to.region().is_some_and(|r| allowed.contains(r)),
        }
    }

    /// The SMS text: the template, a blank line, then `@HOST #CODE` with no newline after.
    pub fn sms_body(&self, code: &Code) -> String {
        let minutes = self.ttl.as_secs().div_ceil(60).to_string();
        let text = self
            .sms_template
            .replace("{app_name}", &self.app_name)
            .replace("{minutes}", &minutes)
            .replace("{code}", code.expose());
        format!("{text}\n\n@{} #{}", self.host, code.expose())
    }

    /// What a call says.
    pub fn call_script(&self, code: &Code) -> CallScript {
        CallScript {
            intro: format!("Your {} code is", self.app_name),
            symbols: code.expose().chars().map(String::from).collect(),
        }
    }

    /// The number of minutes a code lives, for pages.
    pub fn ttl_minutes(&self) -> u64 {
        self.ttl.as_secs().div_ceil(60)
    }
}

/// The result of an evaluated check.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub verification: Verification,
    pub valid: bool,
    pub attempts_remaining: u32,
}

/// Runs the use cases against one store and one set of channels.
pub struct Verifier {
    store: Arc<dyn VerificationStore>,
    channels: Channels,
    hasher: CodeHasher,
    sealer: CodeSealer,
    clock: Arc<dyn Clock>,
    policy: Policy,
    metrics: Arc<Metrics>,
}

/// The parts of a `call_id`: the verification's id, then the ticket's secret.
const ID_LEN: usize = 32;

impl Verifier {
    pub fn new(
        store: Arc<dyn VerificationStore>,
        channels: Channels,
        hasher: CodeHasher,
        sealer: CodeSealer,
        clock: Arc<dyn Clock>,
        policy: Policy,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            channels,
            hasher,
            sealer,
            clock,
            policy,
            metrics,
        }
    }

    /// The metrics this verifier records.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Now, by the verifier's clock.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Whether the store answers (readiness).
    pub async fn ready(&self) -> Result<(), VerifyError> {
        Ok(self.store.ping().await?)
    }

    #[cfg(test)]
    fn store(&self) -> &Arc<dyn VerificationStore> {
        &self.store
    }

    /// Sends a new code to `to` by `channel`, for a client at `client_ip` (and, on the
    /// hosted pages, for the browser session `browser`). A pending verification of the
    /// number started by the same browser (or, for the APIs, without one) gets the new
    /// code; otherwise a new one starts and replaces it.
    #[tracing::instrument(name = "start verification", skip_all, fields(to = %to.masked(), channel = channel.as_str()))]
    pub async fn start(
        &self,
        to: &PhoneNumber,
        channel: Channel,
        client_ip: IpAddr,
        browser: Option<&str>,
    ) -> Result<Verification, VerifyError> {
        if !self.policy.country_allowed(to) {
            tracing::info!(region = to.region().unwrap_or("?"), "country not allowed");
            return Err(VerifyError::CountryNotAllowed);
        }
        let now = self.clock.now();
        let client = rules::ip_bucket(client_ip, self.policy.ipv6_prefix_len);
        match self
            .store
            .take_send_slot(to, client, now, &self.policy.send)
            .await?
        {
            SlotDecision::Granted => {}
            SlotDecision::Refused(wait) => {
                tracing::info!(retry_after = wait.secs(), "send refused by limits");
                return Err(VerifyError::RateLimited(wait));
            }
        }
        let code = self.policy.format.generate();
        let voice = (channel == Channel::Call
            && self.channels.calls_fetch_instructions()
            && self.policy.callback_base.is_some())
        .then(|| {
            let secret = crate::code::random_hex(16);
            VoiceTicket {
                sealed_code: self.sealer.seal(&code, &secret),
                secret,
            }
        });
        let fresh = Verification {
            id: crate::code::random_hex(16),
            to: to.clone(),
            channel,
            status: Status::Pending,
            created_at: now,
            last_sent_at: now,
            expires_at: now + self.policy.ttl,
            failed_checks: 0,
            send_attempts: Vec::new(),
            code_hash: self.hasher.hash(to.e164(), &code),
            voice,
            browser: browser.map(str::to_owned),
        };
        let verification = self.store.issue_code(fresh, now).await?;
        self.deliver(verification, &code).await
    }

    /// Tries each provider of the verification's channel until one accepts.
    async fn deliver(
        &self,
        mut verification: Verification,
        code: &Code,
    ) -> Result<Verification, VerifyError> {
        let channel = verification.channel;
        let mut number_rejected = false;
        let body = self.policy.sms_body(code);
        let script = self.policy.call_script(code);
        let base = self.policy.callback_base.as_deref();
        for provider in self.channels.for_channel(channel) {
            let name = provider.name().as_str();
            let callback = base.map(|b| format!("{b}/webhooks/{name}?v={}", verification.id));
            let answer_url = base.zip(verification.voice.as_ref()).map(|(b, ticket)| {
                format!(
                    "{b}/voice/{}{}?provider={name}",
                    verification.id, ticket.secret
                )
            });
            let to = &verification.to;
            let started = std::time::Instant::now();
            let result = match channel {
                Channel::Sms => {
                    let sms = Sms {
                        to,
                        body: &body,
                        status_callback: callback.as_deref(),
                    };
                    provider.send_sms(&sms).await
                }
                Channel::Call => {
                    let call = Call {
                        to,
                        script: &script,
                        answer_url: answer_url.as_deref(),
                        status_callback: callback.as_deref(),
                    };
                    provider.place_call(&call).await
                }
            };
            let outcome = match &result {
                Ok(_) => "sent",
                Err(DeliveryError::Unavailable(_)) => "unavailable",
                Err(DeliveryError::Unauthorized(_)) => "unauthorized",
                Err(DeliveryError::InvalidNumber(_)) => "invalid_number",
                Err(DeliveryError::Rejected(_)) => "rejected",
            };
            self.metrics.send(name, outcome, started.elapsed());
            let attempt = |delivery_status: &str, receipt: Receipt| SendAttempt {
                channel,
                provider: name.to_string(),
                at: self.clock.now(),
                delivery_status: Some(delivery_status.to_string()),
                provider_ref: receipt.provider_ref,
            };
            match result {
                Ok(receipt) => {
                    let attempt = attempt("sent", receipt);
                    self.store
                        .add_send_attempt(&verification.id, attempt.clone())
                        .await?;
                    verification.send_attempts.push(attempt);
                    self.metrics.verification_started(channel.as_str());
                    tracing::info!(provider = name, id = %verification.id, "code sent");
                    return Ok(verification);
                }
                Err(error) => {
                    let attempt = attempt("failed", Receipt::default());
                    self.store
                        .add_send_attempt(&verification.id, attempt)
                        .await?;
                    match &error {
                        DeliveryError::Unauthorized(_) => {
                            tracing::error!(provider = name, %error, "provider refused our credentials; check its configuration")
                        }
                        _ => tracing::warn!(provider = name, %error, "send failed"),
                    }
                    if !error.try_next() {
                        number_rejected = true;
                        break;
                    }
                }
            }
        }
        self.store
            .end_pending(&verification.id, Status::Failed, self.clock.now())
            .await?;
        Err(if number_rejected {
            VerifyError::NumberRejected
        } else {
            VerifyError::DeliveryFailed
        })
    }

    /// Checks `code` against verification `id`.
    #[tracing::instrument(name = "check code", skip_all)]
    pub async fn check(&self, id: &str, code: &Code) -> Result<CheckResult, VerifyError> {
        let verification = self.store.get(id).await?.ok_or(VerifyError::NotFound)?;
        self.check_verification(&verification, code, None).await
    }

    /// Checks `code` against `verification`, already read by the caller (its number never
    /// changes, so the hash is bound to it without reading the verification again). When
    /// the code is right and `rebind` is given, the verification is bound to that browser
    /// session instead, in the same atomic step (the pages renew the session on success).
    pub async fn check_verification(
        &self,
        verification: &Verification,
        code: &Code,
        rebind: Option<&str>,
    ) -> Result<CheckResult, VerifyError> {
        let candidate = self.hasher.hash(verification.to.e164(), code);
        let now = self.clock.now();
        let decision = self
            .store
            .check_code(
                &verification.id,
                &candidate,
                now,
                &self.policy.check,
                self.policy.send.number_window,
                rebind,
            )
            .await?;
        let max = self.policy.check.max_attempts;
        self.metrics.check(match &decision {
            CheckDecision::NotFound => "not_found",
            CheckDecision::Refused(_, CheckRefusal::Locked(_)) => "locked",
            CheckDecision::Refused(_, CheckRefusal::NotPending(_)) => "not_pending",
            CheckDecision::Evaluated(_, outcome) if outcome.valid => "valid",
            CheckDecision::Evaluated(..) => "invalid",
        });
        match decision {
            CheckDecision::NotFound => Err(VerifyError::NotFound),
            CheckDecision::Refused(_, CheckRefusal::Locked(wait)) => Err(VerifyError::Locked(wait)),
            CheckDecision::Refused(_, CheckRefusal::NotPending(status)) => {
                Err(VerifyError::NotPending(status))
            }
            CheckDecision::Evaluated(verification, outcome) => {
                tracing::info!(to = %verification.to.masked(), valid = outcome.valid, status = verification.status.as_str(), "code checked");
                Ok(CheckResult {
                    attempts_remaining: verification.attempts_remaining(max),
                    valid: outcome.valid,
                    verification,
                })
            }
        }
    }

    /// Checks `code` against the number's pending verification.
    pub async fn check_number(
        &self,
        to: &PhoneNumber,
        code: &Code,
    ) -> Result<CheckResult, VerifyError> {
        let id = self
            .store
            .current_for(to)
            .await?
            .ok_or(VerifyError::NotFound)?;
        self.check(&id, code).await
    }

    /// The verification with this id, its status as of now.
    pub async fn get(&self, id: &str) -> Result<Verification, VerifyError> {
        let mut verification = self.store.get(id).await?.ok_or(VerifyError::NotFound)?;
        verification.status = verification.status_at(self.clock.now());
        Ok(verification)
    }

    /// Ends a pending verification as canceled.
    pub async fn cancel(&self, id: &str) -> Result<Verification, VerifyError> {
        self.end(id, Status::Canceled).await
    }

    /// Approves a pending verification without a code (the Twilio API allows it).
    pub async fn approve(&self, id: &str) -> Result<Verification, VerifyError> {
        self.end(id, Status::Approved).await
    }

    async fn end(&self, id: &str, status: Status) -> Result<Verification, VerifyError> {
        match self.store.end_pending(id, status, self.clock.now()).await? {
            Some(verification) => Ok(verification),
            None => Err(VerifyError::NotPending(self.get(id).await?.status)),
        }
    }

    /// Claims an idempotency key for a request with this fingerprint, for 24 hours.
    pub async fn claim_idempotency_key(
        &self,
        key: &str,
        fingerprint: &str,
    ) -> Result<IdempotencyClaim, VerifyError> {
        const DAY: Duration = Duration::from_secs(24 * 3600);
        Ok(self
            .store
            .claim_idempotency_key(key, fingerprint, self.clock.now(), DAY)
            .await?)
    }

    /// Keeps `response` for replays of a claimed key, or, with `None`, frees the key so
    /// the request can be retried.
    pub async fn finish_idempotency_key(
        &self,
        key: &str,
        response: Option<StoredResponse>,
    ) -> Result<(), VerifyError> {
        match response {
            Some(response) => self.store.complete_idempotency_key(key, response).await?,
            None => self.store.release_idempotency_key(key).await?,
        }
        Ok(())
    }

    /// The call instructions for `call_id`, as `provider` expects them, while the
    /// verification is pending. The request must carry the provider's valid signature
    /// whenever we hold the provider's signing secret.
    pub async fn call_document(
        &self,
        call_id: &str,
        provider: &str,
        request: &Inbound<'_>,
    ) -> Result<String, CallbackError> {
        let provider = self
            .channels
            .find(provider)
            .filter(|p| p.fetches_call_instructions())
            .ok_or(CallbackError::NotFound)?;
        if provider.check_signature(request) == SignatureCheck::Invalid {
            tracing::warn!(
                provider = provider.name().as_str(),
                "call instructions requested without a valid signature"
            );
            return Err(CallbackError::Forbidden);
        }
        if call_id.len() <= ID_LEN || !call_id.is_ascii() {
            return Err(CallbackError::NotFound);
        }
        let (id, secret) = call_id.split_at(ID_LEN);
        let verification = self.store.get(id).await?.ok_or(CallbackError::NotFound)?;
        let ticket = verification
            .voice
            .as_ref()
            .filter(|t| credential_matches(&t.secret, secret))
            .filter(|_| verification.status_at(self.clock.now()) == Status::Pending)
            .ok_or(CallbackError::NotFound)?;
        let code = self
            .sealer
            .open(&ticket.sealed_code, &ticket.secret)
            .ok_or(CallbackError::NotFound)?;
        Ok(provider.call_document(&self.policy.call_script(&code)))
    }

    /// Records a provider's signed delivery report on verification `id`. Reports never
    /// change whether a verification is approved.
    pub async fn record_delivery(
        &self,
        provider: &str,
        id: &str,
        request: &Inbound<'_>,
    ) -> Result<(), CallbackError> {
        let provider = self
            .channels
            .find(provider)
            .ok_or(CallbackError::NotFound)?;
        let name = provider.name().as_str();
        if provider.check_signature(request) != SignatureCheck::Valid {
            tracing::warn!(
                provider = name,
                "status callback refused: signature missing, invalid, or no secret configured"
            );
            return Err(CallbackError::Forbidden);
        }
        let update = provider
            .status_update(request)
            .ok_or(CallbackError::NotFound)?;
        let found = self
            .store
            .set_delivery_status(id, name, update.provider_ref.as_deref(), update.status)
            .await?;
        tracing::info!(
            provider = name,
            status = update.status,
            found,
            "delivery status"
        );
        if found {
            Ok(())
        } else {
            Err(CallbackError::NotFound)
        }
    }

    /// Whether calls go through a provider that fetches instructions from us.
    pub fn calls_fetch_instructions(&self) -> bool {
        self.channels.calls_fetch_instructions()
    }

    /// Whether any channel prints codes to the console.
    pub fn uses_console(&self) -> bool {
        self.channels.uses_console()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::Provider;
    use crate::code::CodeAlphabet;
    use crate::config::{ProviderName, VerificationSettings};
    use crate::store::memory::TokenStorage;
    use std::sync::Mutex;

    /// A provider that answers from a script and remembers what it was asked to send.
    struct Scripted {
        name: ProviderName,
        answer: Result<Receipt, DeliveryError>,
        sent: Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl Provider for Scripted {
        fn name(&self) -> ProviderName {
            self.name
        }
        async fn send_sms(&self, sms: &Sms<'_>) -> Result<Receipt, DeliveryError> {
            self.sent.lock().unwrap().push(sms.to.e164().to_string());
            self.answer.clone()
        }
        async fn place_call(&self, call: &Call<'_>) -> Result<Receipt, DeliveryError> {
            self.sent.lock().unwrap().push(call.to.e164().to_string());
            self.answer.clone()
        }
    }

    fn scripted(name: ProviderName, answer: Result<Receipt, DeliveryError>) -> Arc<Scripted> {
        Arc::new(Scripted {
            name,
            answer,
            sent: Mutex::new(Vec::new()),
        })
    }

    fn verifier(providers: Vec<Arc<Scripted>>) -> Verifier {
        let providers: Vec<Arc<dyn Provider>> = providers
            .into_iter()
            .map(|p| p as Arc<dyn Provider>)
            .collect();
        Verifier::new(
            Arc::new(TokenStorage::new()),
            Channels::new(providers.clone(), providers),
            CodeHasher::new([5; 32]),
            CodeSealer::new([6; 32]),
            Arc::new(SystemClock),
            policy(),
            Arc::new(Metrics::default()),
        )
    }

    fn to() -> PhoneNumber {
        PhoneNumber::from_e164("+12015550123").unwrap()
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[tokio::test]
    async fn a_failing_provider_fails_over_to_the_next() {
        let down = scripted(
            ProviderName::Twilio,
            Err(DeliveryError::Unavailable("503".into())),
        );
        let up = scripted(
            ProviderName::Plivo,
            Ok(Receipt {
                provider_ref: Some("uuid-1".into()),
            }),
        );
        let v = verifier(vec![down.clone(), up.clone()])
            .start(&to(), Channel::Sms, IP, None)
            .await
            .unwrap();
        assert_eq!(v.status, Status::Pending);
        let attempts: Vec<_> = v
            .send_attempts
            .iter()
            .map(|a| (a.provider.as_str(), a.delivery_status.as_deref()))
            .collect();
        assert_eq!(attempts, [("plivo", Some("sent"))]);
        assert_eq!(down.sent.lock().unwrap().len(), 1);
        assert_eq!(up.sent.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_rejected_number_stops_without_failover_and_fails_the_verification() {
        let rejects = scripted(
            ProviderName::Twilio,
            Err(DeliveryError::InvalidNumber("21211".into())),
        );
        let next = scripted(ProviderName::Plivo, Ok(Receipt::default()));
        let verifier = verifier(vec![rejects, next.clone()]);
        let error = verifier
            .start(&to(), Channel::Sms, IP, None)
            .await
            .unwrap_err();
        assert!(matches!(error, VerifyError::NumberRejected), "{error:?}");
        assert!(next.sent.lock().unwrap().is_empty(), "no failover");
        let id = verifier.store().current_for(&to()).await.unwrap().unwrap();
        assert_eq!(verifier.get(&id).await.unwrap().status, Status::Failed);
    }

    #[tokio::test]
    async fn when_every_provider_fails_the_verification_is_failed_and_keeps_its_attempts() {
        let a = scripted(
            ProviderName::Twilio,
            Err(DeliveryError::Unauthorized("20003".into())),
        );
        let b = scripted(
            ProviderName::Telnyx,
            Err(DeliveryError::Unavailable("timeout".into())),
        );
        let verifier = verifier(vec![a, b]);
        let error = verifier
            .start(&to(), Channel::Call, IP, None)
            .await
            .unwrap_err();
        assert!(matches!(error, VerifyError::DeliveryFailed), "{error:?}");
        let id = verifier.store().current_for(&to()).await.unwrap().unwrap();
        let v = verifier.get(&id).await.unwrap();
        assert_eq!(v.status, Status::Failed);
        let providers: Vec<_> = v
            .send_attempts
            .iter()
            .map(|a| a.provider.as_str())
            .collect();
        assert_eq!(providers, ["twilio", "telnyx"]);
        assert!(
            v.send_attempts
                .iter()
                .all(|a| a.delivery_status.as_deref() == Some("failed"))
        );
    }

    #[tokio::test]
    async fn a_new_start_after_a_failure_creates_a_new_verification() {
        let flaky = scripted(
            ProviderName::Twilio,
            Err(DeliveryError::Unavailable("503".into())),
        );
        let mut settings = VerificationSettings {
            resend_cooldown_secs: 0,
            ..Default::default()
        };
        settings.max_sends_per_number = 10;
        let mut verifier = verifier(vec![flaky]);
        verifier.policy = Policy::from_settings(&settings, "http://h");
        let _ = verifier.start(&to(), Channel::Sms, IP, None).await;
        let first = verifier.store().current_for(&to()).await.unwrap().unwrap();
        let _ = verifier.start(&to(), Channel::Sms, IP, None).await;
        let second = verifier.store().current_for(&to()).await.unwrap().unwrap();
        assert_ne!(first, second);
    }

    fn policy() -> Policy {
        Policy::from_settings(
            &VerificationSettings::default(),
            "https://verify.example.com",
        )
    }

    #[test]
    fn sms_bodies_end_with_the_origin_bound_line_and_no_newline() {
        let p = policy();
        let code = p.format.parse("012345").unwrap();
        let body = p.sms_body(&code);
        assert_eq!(
            body,
            "Your phone-verify code is 012345. It expires in 10 minutes.\n\n@verify.example.com #012345"
        );
    }

    #[test]
    fn calls_read_the_code_symbol_by_symbol_twice() {
        let mut p = policy();
        p.format.alphabet = CodeAlphabet::Hex;
        let text = p.call_script(&p.format.parse("1a2b3c").unwrap()).text();
        assert_eq!(
            text,
            "Your phone-verify code is 1, A, 2, B, 3, C. Your phone-verify code is 1, A, 2, B, 3, C."
        );
    }

    #[test]
    fn the_sms_host_is_the_public_host_without_scheme_port_or_path() {
        let p = Policy::from_settings(
            &VerificationSettings::default(),
            "https://verify.example.com:8443/path",
        );
        assert_eq!(p.host, "verify.example.com");
    }

    #[test]
    fn callbacks_are_requested_only_when_providers_can_reach_us() {
        let settings = VerificationSettings::default();
        assert_eq!(
            Policy::from_settings(&settings, "https://v.example.com/")
                .callback_base
                .as_deref(),
            Some("https://v.example.com")
        );
        for local in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
        ] {
            assert_eq!(
                Policy::from_settings(&settings, local).callback_base,
                None,
                "{local}"
            );
        }
    }

    #[test]
    fn allowed_countries_restrict_by_region() {
        let settings = VerificationSettings {
            allowed_countries: vec!["us".into(), "CA".into()],
            ..Default::default()
        };
        let p = Policy::from_settings(&settings, "http://h");
        assert!(p.country_allowed(&PhoneNumber::from_e164("+12015550123").unwrap()));
        assert!(!p.country_allowed(&PhoneNumber::from_e164("+447400123456").unwrap()));
        assert!(policy().country_allowed(&PhoneNumber::from_e164("+447400123456").unwrap()));
    }
}
