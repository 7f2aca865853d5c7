//! Requests providers make to us: the instructions a call reads (`/voice/{call_id}`,
//! for providers that fetch them) and signed delivery reports (`/webhooks/{provider}`).

use crate::channels::SignatureCheck;

/// A request a provider made to us, as the web layer received it.
pub use crate::channels::Inbound;
use crate::code::credential_matches;
use crate::domain::{Status, Verification, VoiceTicket};

use super::{CallbackError, Verifier};

/// The id in `/voice/{call_id}`: the verification's id, then its voice ticket's secret,
/// so only a provider told the URL can fetch what the call says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallId {
    verification_id: String,
    secret: String,
}

/// Verification ids are 32 hex characters.
const ID_LEN: usize = 32;

impl CallId {
    /// The call id of `verification`'s `ticket`.
    pub fn of(verification: &Verification, ticket: &VoiceTicket) -> Self {
        Self {
            verification_id: verification.id.clone(),
            secret: ticket.secret.clone(),
        }
    }

    /// Reads the path segment `/voice/{call_id}` carries.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.len() <= ID_LEN || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let (id, secret) = raw.split_at(ID_LEN);
        Some(Self {
            verification_id: id.to_string(),
            secret: secret.to_string(),
        })
    }

    /// `{base}/voice/{call_id}?provider={provider}`: where the provider fetches the call.
    pub fn url(&self, base: &str, provider: &str) -> String {
        format!(
            "{base}/voice/{}{}?provider={provider}",
            self.verification_id, self.secret
        )
    }
}

impl Verifier {
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
        let call_id = CallId::parse(call_id).ok_or(CallbackError::NotFound)?;
        let verification = self
            .store
            .get(&call_id.verification_id)
            .await?
            .ok_or(CallbackError::NotFound)?;
        let ticket = verification
            .voice
            .as_ref()
            .filter(|t| credential_matches(&t.secret, &call_id.secret))
            .filter(|_| verification.status_at(self.clock.now()) == Status::Pending)
            .ok_or(CallbackError::NotFound)?;
        let code = self
            .sealer
            .open(&ticket.sealed_code, &ticket.secret)
            .ok_or(CallbackError::NotFound)?;
        Ok(provider.call_document(&self.policy.call_script(&code, verification.locale)))
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_id_builds_and_parses_the_same_url() {
        let id = CallId {
            verification_id: "0123456789abcdef0123456789abcdef".into(),
            secret: "fedcba9876543210fedcba9876543210".into(),
        };
        let url = id.url("https://v.example.com", "plivo");
        assert_eq!(
            url,
            "https://v.example.com/voice/0123456789abcdef0123456789abcdeffedcba9876543210fedcba9876543210?provider=plivo"
        );
        let segment = url
            .strip_prefix("https://v.example.com/voice/")
            .and_then(|rest| rest.split('?').next())
            .unwrap();
        assert_eq!(CallId::parse(segment), Some(id));
    }

    #[test]
    fn malformed_call_ids_are_refused() {
        for raw in [
            "",
            "0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef/../x",
            "0123456789abcdef0123456789abcdefé",
            "0123456789abcdef0123456789abcdefzz",
        ] {
            assert_eq!(CallId::parse(raw), None, "{raw:?}");
        }
    }
}
