//! The use cases every front end shares: start (or resend), check, read, cancel, approve.

use std::net::IpAddr;

use crate::code::Code;
use crate::domain::guard::GuardRefusal;
use crate::domain::rules::{self, CheckRefusal};
use crate::domain::{Channel, Checker, Status, Verdict, Verification, VoiceTicket};
use crate::i18n::Locale;
use crate::phone::PhoneNumber;
use crate::store::{CheckDecision, CheckTarget, Guarded, StartDecision, VerificationKey};

use super::{CheckResult, StoreError, Verifier, VerifyError};

/// Who asks for a code: the address per-IP limits count (when there is one: the pages
/// and the tutorial routes know the client's; the APIs only the one their caller vouches
/// for), and, on the hosted pages, the browser session the verification is bound to.
#[derive(Debug, Clone, Default)]
pub struct Requester {
    pub ip: Option<IpAddr>,
    /// The binding of the browser session (see `web::session`), or `None` for the APIs.
    pub browser: Option<String>,
    /// The language they asked for; `None`: `verification.default_locale`.
    pub locale: Option<Locale>,
}

impl Requester {
    /// A request made for a person at `ip`, outside any browser session.
    pub fn from_ip(ip: IpAddr) -> Self {
        Self {
            ip: Some(ip),
            browser: None,
            locale: None,
        }
    }
}

impl Verifier {
    /// Sends a new code to `to` by `channel` for `requester`. A pending verification of
    /// the number started by the same browser (or, for the APIs, by none) gets the new
    /// code; otherwise a new one starts and replaces it. A test number gets its fixed
    /// code and nothing is sent; the fraud guard and the budget never count it.
    #[tracing::instrument(name = "start verification", skip_all, fields(to = %to.masked(), channel = channel.as_str()))]
    pub async fn start(
        &self,
        to: &PhoneNumber,
        channel: Channel,
        requester: &Requester,
    ) -> Result<Verification, VerifyError> {
        if !self.policy.country_allowed(to) {
            tracing::info!(region = to.region().unwrap_or("?"), "country not allowed");
            return Err(VerifyError::CountryNotAllowed);
        }
        let now = self.clock.now();
        let test_code = self.policy.test_code(to).cloned();
        let code = test_code
            .clone()
            .unwrap_or_else(|| self.policy.format.generate());
        let fresh = Verification {
            id: self.store.new_id(to),
            to: to.clone(),
            channel,
            status: Status::Pending,
            created_at: now,
            last_sent_at: now,
            expires_at: now + self.policy.ttl,
            failed_checks: 0,
            send_attempts: Vec::new(),
            checker: Checker::Hash(self.hasher.hash(to.e164(), &code)),
            voice: self.voice_ticket(channel, &code),
            browser: requester.browser.clone(),
            locale: requester.locale.unwrap_or(self.policy.default_locale),
        };
        let verification = self
            .take_slot_and_issue(fresh, requester, test_code.is_some(), now)
            .await?;
        if test_code.is_some() {
            return self.deliver_nowhere(verification).await;
        }
        self.deliver(verification, &code).await
    }

    /// Takes a send slot (the number's and the address's limits, then, except for test
    /// numbers, the guard's) and, when it is granted, issues `fresh`'s code.
    async fn take_slot_and_issue(
        &self,
        fresh: Verification,
        requester: &Requester,
        test_number: bool,
        now: std::time::SystemTime,
    ) -> Result<Verification, VerifyError> {
        let (to, channel) = (&fresh.to, fresh.channel);
        let ip = requester
            .ip
            .map(|ip| rules::ip_bucket(ip, self.policy.ipv6_prefix_len));
        let facts = (!test_number).then(|| self.policy.send_facts(to, channel));
        let guard = facts
            .as_ref()
            .filter(|_| self.policy.guarded())
            .map(|facts| Guarded {
                facts,
                limits: &self.policy.guard,
            });
        let decision = self
            .store
            .take_slot_and_issue(fresh, ip, now, &self.policy.send, guard)
            .await?;
        let refusal = match decision {
            StartDecision::Issued(verification) => {
                if let Some(facts) = &facts {
                    self.metrics.estimated_spend(
                        &facts.country,
                        channel.as_str(),
                        facts.cost_micros,
                    );
                }
                return Ok(*verification);
            }
            StartDecision::Refused(wait)
            | StartDecision::Guarded(GuardRefusal::CountryCapped(wait)) => {
                tracing::info!(retry_after = wait.secs(), "send refused by limits");
                VerifyError::RateLimited(wait)
            }
            StartDecision::Guarded(GuardRefusal::FraudBlocked { newly }) => {
                let facts = facts.as_ref().expect("the guard saw facts");
                let prefix = masked_prefix(&facts.prefix);
                if newly {
                    tracing::warn!(%prefix, country = %facts.country, "fraud guard: prefix blocked for low conversion");
                } else {
                    tracing::info!(%prefix, country = %facts.country, "fraud guard: start to a blocked prefix refused");
                }
                self.metrics.fraud_block(&facts.country);
                VerifyError::FraudBlocked
            }
            StartDecision::Guarded(GuardRefusal::SpendLimit(wait)) => {
                tracing::warn!(
                    retry_after = wait.secs(),
                    "daily budget reached: start refused"
                );
                VerifyError::SpendLimitReached(wait)
            }
        };
        Err(refusal)
    }

    /// For a call whose provider fetches its words from us: the ticket it fetches them
    /// with (the code sealed until the verification ends).
    fn voice_ticket(&self, channel: Channel, code: &Code) -> Option<VoiceTicket> {
        let fetched = channel == Channel::Call
            && self.channels.calls_fetch_instructions()
            && self.policy.callback_base.is_some();
        fetched.then(|| {
            let secret = crate::code::random_hex(16);
            VoiceTicket {
                sealed_code: self.sealer.seal(code, &secret),
                secret,
            }
        })
    }

    /// Checks `code` against verification `id`.
    pub async fn check(&self, id: &str, code: &Code) -> Result<CheckResult, VerifyError> {
        let e164 = self
            .store
            .number_of(id)
            .await?
            .ok_or(VerifyError::NotFound)?;
        self.check_key(VerificationKey { id, e164: &e164 }.into(), code, None)
            .await
    }

    /// Checks `code` against `verification`, already read by the caller. When the code is
    /// right and `rebind` is given, the verification is bound to that browser session
    /// instead, in the same atomic step (the pages renew the session on success).
    pub async fn check_verification(
        &self,
        verification: &Verification,
        code: &Code,
        rebind: Option<&str>,
    ) -> Result<CheckResult, VerifyError> {
        self.check_key(verification.key().into(), code, rebind)
            .await
    }

    /// Checks `code` against the verification `target` names. Its number never changes,
    /// so the hash is bound to it without reading the verification first.
    #[tracing::instrument(name = "check code", skip_all)]
    async fn check_key(
        &self,
        target: CheckTarget<'_>,
        code: &Code,
        rebind: Option<&str>,
    ) -> Result<CheckResult, VerifyError> {
        let candidate = self.hasher.hash(target.e164(), code);
        let decision = self
            .store
            .check_code(
                target,
                &candidate,
                self.clock.now(),
                &self.policy.check,
                self.policy.send.number_window,
                rebind,
            )
            .await?;
        let verification = match decision {
            CheckDecision::Delegated(verification) => {
                return self.ask_owner(verification, code, rebind).await;
            }
            CheckDecision::NotFound => {
                self.metrics.check("not_found");
                return Err(VerifyError::NotFound);
            }
            CheckDecision::Refused(_, CheckRefusal::Locked(wait)) => {
                self.metrics.check("locked");
                return Err(VerifyError::Locked(wait));
            }
            CheckDecision::Refused(_, CheckRefusal::NotPending(status)) => {
                self.metrics.check("not_pending");
                return Err(VerifyError::NotPending(status));
            }
            CheckDecision::Evaluated(verification, outcome) => {
                self.metrics
                    .check(if outcome.valid { "valid" } else { "invalid" });
                verification
            }
        };
        self.checked(verification).await
    }

    /// The result of a check that was decided: the verification as it now stands.
    async fn checked(&self, verification: Verification) -> Result<CheckResult, VerifyError> {
        let valid = verification.status == Status::Approved;
        tracing::info!(to = %verification.to.masked(), valid, status = verification.status.as_str(), "code checked");
        if valid {
            self.count_approval(&verification).await;
        }
        Ok(CheckResult {
            attempts_remaining: verification.attempts_remaining(self.policy.check.max_attempts),
            valid,
            verification,
        })
    }

    /// Asks the provider that owns `verification`'s code for its verdict on `code` (our
    /// rules have reserved the attempt), and settles the attempt with it. A provider that
    /// cannot be asked costs the person nothing: the attempt is given back, and the
    /// answer is `ProviderUnavailable`.
    async fn ask_owner(
        &self,
        verification: Verification,
        code: &Code,
        rebind: Option<&str>,
    ) -> Result<CheckResult, VerifyError> {
        let Checker::Provider(check) = &verification.checker else {
            return Err(StoreError::new("a delegated check of a code we hold").into());
        };
        let verdict = match self.channels.find(&check.provider).and_then(|p| p.owner()) {
            None => {
                tracing::error!(provider = %check.provider, "a verification was handed to a provider that is no longer configured; its codes cannot be checked");
                Verdict::Unanswered
            }
            Some(owner) => {
                let started = std::time::Instant::now();
                let verdict = owner
                    .check_code(&check.reference, &verification.to, code)
                    .await;
                self.metrics.provider_check(
                    &check.provider,
                    if verdict.is_ok() {
                        "answered"
                    } else {
                        "unanswered"
                    },
                    started.elapsed(),
                );
                verdict.unwrap_or_else(|error| {
                    tracing::warn!(provider = %check.provider, %error, "the provider could not check a code");
                    Verdict::Unanswered
                })
            }
        };
        let settled = self
            .store
            .settle_check(
                verification.key(),
                verdict,
                self.clock.now(),
                &self.policy.check,
                self.policy.send.number_window,
                rebind,
            )
            .await?
            .ok_or(VerifyError::NotFound)?;
        self.metrics.check(match verdict {
            Verdict::Approved => "valid",
            Verdict::Wrong | Verdict::Exhausted => "invalid",
            Verdict::Expired => "not_pending",
            Verdict::Unanswered => "provider_unavailable",
        });
        match verdict {
            Verdict::Unanswered => Err(VerifyError::ProviderUnavailable),
            Verdict::Expired => Err(VerifyError::NotPending(settled.status)),
            Verdict::Approved if settled.status != Status::Approved => {
                Err(VerifyError::NotPending(settled.status))
            }
            Verdict::Approved | Verdict::Wrong | Verdict::Exhausted => self.checked(settled).await,
        }
    }

    /// Checks `code` against the number's pending verification.
    pub async fn check_number(
        &self,
        to: &PhoneNumber,
        code: &Code,
    ) -> Result<CheckResult, VerifyError> {
        self.check_key(CheckTarget::Current(to), code, None).await
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
        let verification = self.end(id, Status::Approved).await?;
        self.count_approval(&verification).await;
        Ok(verification)
    }

    /// Tells the fraud guard a code sent to this number's prefix was used. Test numbers
    /// are never counted. A store failure here costs the guard one approval, not the
    /// person their verification, so it is logged and not returned.
    async fn count_approval(&self, verification: &Verification) {
        let Some(fraud) = &self.policy.guard.fraud else {
            return;
        };
        if self.policy.test_code(&verification.to).is_some() {
            return;
        }
        let prefix = self
            .policy
            .send_facts(&verification.to, verification.channel)
            .prefix;
        if let Err(e) = self
            .store
            .record_approval(&prefix, self.clock.now(), fraud)
            .await
        {
            tracing::warn!(error = %e, "could not count an approval for the fraud guard");
        }
    }

    async fn end(&self, id: &str, status: Status) -> Result<Verification, VerifyError> {
        match self.store.end_pending(id, status, self.clock.now()).await? {
            Some(verification) => Ok(verification),
            None => Err(VerifyError::NotPending(self.get(id).await?.status)),
        }
    }
}

/// A prefix for logs: the country code and first digits, the rest hidden (`+120****`).
fn masked_prefix(prefix: &str) -> String {
    let shown: String = prefix.chars().take(4).collect();
    let hidden = prefix.chars().count().saturating_sub(4);
    format!("{shown}{}", "*".repeat(hidden))
}
