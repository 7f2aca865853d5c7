//! The use cases shared by every front end (pages, JSON API, Twilio-compatible API,
//! tutorial routes): the one place that uses the store and the channels together. The
//! rules themselves are pure functions in `domain::rules`.
//!
//! - `policy`: the configured rules and the texts a code travels in;
//! - `usecases`: start, check, read, cancel, approve;
//! - `delivery`: sending through the channel's providers, with failover;
//! - `callbacks`: call instructions and delivery reports from providers;
//! - `idempotency`: replaying the answer to a repeated start.

use std::sync::Arc;
use std::time::SystemTime;

use crate::channels::Channels;
use crate::code::{CodeHasher, CodeSealer};
use crate::domain::{RetryAfter, Status, Verification};
use crate::metrics::Metrics;
use crate::store::VerificationStore;

/// Why the store could not decide (the `Store` variant of the errors below).
pub use crate::store::StoreError;

pub mod callbacks;
mod delivery;
pub mod idempotency;
pub mod policy;
pub mod usecases;

pub use policy::Policy;
pub use usecases::Requester;

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
    /// The provider that owns the verification's code could not be asked to check it.
    #[error("the provider that checks this code is unavailable")]
    ProviderUnavailable,
    #[error("the number's prefix is blocked by the fraud guard")]
    FraudBlocked,
    #[error("the day's budget is spent")]
    SpendLimitReached(RetryAfter),
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

    /// Whether calls go through a provider that fetches instructions from us.
    pub fn calls_fetch_instructions(&self) -> bool {
        self.channels.calls_fetch_instructions()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::channels::Provider;
    use crate::channels::{Call, DeliveryError, Receipt, Sms};
    use crate::code::{CodeHasher, CodeSealer};
    use crate::config::{ProviderName, VerificationSettings};
    use crate::phone::PhoneNumber;
    use crate::store::memory::TokenStorage;
    use std::net::IpAddr;
    use std::sync::Mutex;

    /// A provider that answers from a script and remembers what it was asked to send.
    pub(crate) struct Scripted {
        name: ProviderName,
        answer: Result<Receipt, DeliveryError>,
        pub(crate) sent: Mutex<Vec<String>>,
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

    pub(crate) fn scripted(
        name: ProviderName,
        answer: Result<Receipt, DeliveryError>,
    ) -> Arc<Scripted> {
        Arc::new(Scripted {
            name,
            answer,
            sent: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn verifier(providers: Vec<Arc<Scripted>>) -> Verifier {
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

    pub(crate) fn to() -> PhoneNumber {
        PhoneNumber::from_e164("+12015550123").unwrap()
    }

    pub(crate) const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    pub(crate) fn policy() -> Policy {
        Policy::from_settings(
            &VerificationSettings::default(),
            "https://verify.example.com",
        )
    }
}
