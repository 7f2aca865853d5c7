//! Delivery: a code goes to the providers of the verification's channel, in order, until
//! one accepts it. "Try elsewhere" failures (5xx, 429, timeouts, our credentials refused)
//! move on to the next provider; "this number is wrong" stops. Every try is recorded on
//! the verification; when none succeeds, the verification is `failed`.

use crate::channels::{Call, CallScript, DeliveryError, OwnedStart, Provider, Receipt, Sms};
use crate::code::Code;
use crate::domain::{Channel, Checker, ProviderCheck, SendAttempt, Status, Verification};

use super::callbacks::CallId;
use super::{Verifier, VerifyError};

/// What a code is sent as, built once per send: the SMS body and the call's words.
struct Message {
    body: String,
    script: CallScript,
}

/// The name an outcome has in metrics.
fn outcome(result: &Result<Receipt, DeliveryError>) -> &'static str {
    match result {
        Ok(_) => "sent",
        Err(DeliveryError::Unavailable(_)) => "unavailable",
        Err(DeliveryError::Unauthorized(_)) => "unauthorized",
        Err(DeliveryError::InvalidNumber(_)) => "invalid_number",
        Err(DeliveryError::Rejected(_)) => "rejected",
    }
}

impl Verifier {
    /// Tries each provider of the verification's channel until one accepts.
    pub(super) async fn deliver(
        &self,
        mut verification: Verification,
        code: &Code,
    ) -> Result<Verification, VerifyError> {
        let message = Message {
            body: self.policy.sms_body(code, verification.locale),
            script: self.policy.call_script(code, verification.locale),
        };
        for provider in self.channels.for_channel(verification.channel) {
            let result = self
                .send_through(provider.as_ref(), &verification, &message, code)
                .await;
            let name = provider.name().as_str();
            let attempt = SendAttempt {
                channel: verification.channel,
                provider: name.to_string(),
                at: self.clock.now(),
                delivery_status: Some(if result.is_ok() { "sent" } else { "failed" }.into()),
                provider_ref: result.as_ref().ok().and_then(|r| r.provider_ref.clone()),
            };
            self.store
                .add_send_attempt(verification.key(), attempt.clone())
                .await?;
            match result {
                Ok(receipt) => {
                    if provider.owner().is_some() {
                        self.hand_over(&mut verification, name, receipt).await?;
                    }
                    verification.send_attempts.push(attempt);
                    self.metrics
                        .verification_started(verification.channel.as_str());
                    tracing::info!(provider = name, id = %verification.id, "code sent");
                    return Ok(verification);
                }
                Err(error) => {
                    log_failure(name, &error);
                    if !error.try_next() {
                        return self.fail(&verification, VerifyError::NumberRejected).await;
                    }
                }
            }
        }
        self.fail(&verification, VerifyError::DeliveryFailed).await
    }

    /// A test number's "delivery": nothing goes to any provider; the attempt names the
    /// provider `test`.
    pub(super) async fn deliver_nowhere(
        &self,
        mut verification: Verification,
    ) -> Result<Verification, VerifyError> {
        let attempt = SendAttempt {
            channel: verification.channel,
            provider: "test".into(),
            at: self.clock.now(),
            delivery_status: Some("sent".into()),
            provider_ref: None,
        };
        self.store
            .add_send_attempt(verification.key(), attempt.clone())
            .await?;
        verification.send_attempts.push(attempt);
        tracing::info!(id = %verification.id, "test number: code kept, nothing sent");
        Ok(verification)
    }

    /// One try through one provider, measured.
    async fn send_through(
        &self,
        provider: &dyn Provider,
        verification: &Verification,
        message: &Message,
        code: &Code,
    ) -> Result<Receipt, DeliveryError> {
        let name = provider.name().as_str();
        let base = self.policy.callback_base.as_deref();
        let callback = base.map(|b| format!("{b}/webhooks/{name}?v={}", verification.id));
        let started = std::time::Instant::now();
        if let Some(owner) = provider.owner() {
            let start = OwnedStart {
                to: &verification.to,
                channel: verification.channel,
                locale: verification.locale,
                app_name: &self.policy.app_name,
                ttl_secs: self.policy.ttl.as_secs(),
                code_length: self.policy.format.length,
                max_attempts: self.policy.check.max_attempts,
            };
            let result = owner
                .start_verification(&start)
                .await
                .map(|reference| Receipt {
                    provider_ref: Some(reference),
                });
            self.metrics.send(name, outcome(&result), started.elapsed());
            return result;
        }
        let result = match verification.channel {
            Channel::Sms => {
                let sms = Sms {
                    to: &verification.to,
                    body: &message.body,
                    code,
                    status_callback: callback.as_deref(),
                };
                provider.send_sms(&sms).await
            }
            Channel::Call => {
                let answer_url = base
                    .zip(verification.voice.as_ref())
                    .map(|(b, ticket)| CallId::of(verification, ticket).url(b, name));
                let call = Call {
                    to: &verification.to,
                    script: &message.script,
                    code,
                    answer_url: answer_url.as_deref(),
                    status_callback: callback.as_deref(),
                };
                provider.place_call(&call).await
            }
        };
        self.metrics.send(name, outcome(&result), started.elapsed());
        result
    }

    /// Gives the verification's code to the provider that generated and sent it: from now
    /// on its checks go there, and we keep no code.
    async fn hand_over(
        &self,
        verification: &mut Verification,
        provider: &str,
        receipt: Receipt,
    ) -> Result<(), VerifyError> {
        let check = ProviderCheck {
            provider: provider.to_string(),
            reference: receipt.provider_ref.unwrap_or_default(),
        };
        self.store
            .hand_over(verification.key(), check.clone())
            .await?;
        verification.checker = Checker::Provider(check);
        verification.voice = None;
        Ok(())
    }

    /// Ends a verification no provider could deliver, and says why.
    async fn fail(
        &self,
        verification: &Verification,
        error: VerifyError,
    ) -> Result<Verification, VerifyError> {
        self.store
            .end_pending(&verification.id, Status::Failed, self.clock.now())
            .await?;
        Err(error)
    }
}

fn log_failure(provider: &str, error: &DeliveryError) {
    match error {
        DeliveryError::Unauthorized(_) => {
            tracing::error!(provider, %error, "provider refused our credentials; check its configuration")
        }
        _ => tracing::warn!(provider, %error, "send failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ProviderName, VerificationSettings};
    use crate::verification::Policy;
    use crate::verification::tests::{IP, scripted, to, verifier};
    use crate::verification::usecases::Requester;

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
            .start(&to(), Channel::Sms, &Requester::from_ip(IP))
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
            .start(&to(), Channel::Sms, &Requester::from_ip(IP))
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
            .start(&to(), Channel::Call, &Requester::from_ip(IP))
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
        let _ = verifier
            .start(&to(), Channel::Sms, &Requester::from_ip(IP))
            .await;
        let first = verifier.store().current_for(&to()).await.unwrap().unwrap();
        let _ = verifier
            .start(&to(), Channel::Sms, &Requester::from_ip(IP))
            .await;
        let second = verifier.store().current_for(&to()).await.unwrap().unwrap();
        assert_ne!(first, second);
    }
}
