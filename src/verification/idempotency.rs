//! Idempotent starts: a client that sends a start again with the same `Idempotency-Key`
//! and the same body gets the first answer again, and nothing is sent twice. Keys are
//! scoped per caller (two API keys never share one), remembered for 24 hours, and only
//! final answers are kept: a 429 or a 5xx did no work, so the client may retry.

use std::time::Duration;

use sha2::Digest;

use crate::code::to_hex;
use crate::store::IdempotencyClaim;

pub use crate::store::StoredResponse;

use super::{Verifier, VerifyError};

/// How long a key and its answer are remembered.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Longest key accepted.
const MAX_KEY_CHARS: usize = 255;

/// A client's key for one request, scoped to the caller and fingerprinted by the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    scoped: String,
    fingerprint: String,
}

/// The `Idempotency-Key` header was empty, too long or not visible text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Idempotency-Key must be 1 to 255 visible characters")]
pub struct InvalidKey;

impl IdempotencyKey {
    /// The key `raw` sent by the caller authenticated as `caller` with `body`.
    pub fn new(caller: &str, raw: &[u8], body: &[u8]) -> Result<Self, InvalidKey> {
        let raw = std::str::from_utf8(raw).map_err(|_| InvalidKey)?;
        if raw.is_empty()
            || raw.chars().count() > MAX_KEY_CHARS
            || !raw.chars().all(|c| c.is_ascii_graphic() || c == ' ')
        {
            return Err(InvalidKey);
        }
        let caller = to_hex(&sha2::Sha256::digest(caller.as_bytes())[..8]);
        Ok(Self {
            scoped: format!("{caller}:{raw}"),
            fingerprint: to_hex(&sha2::Sha256::digest(body)),
        })
    }
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new: do the work, then `finish_idempotent`.
    Fresh,
    /// The same request was answered before: answer the same.
    Replay(StoredResponse),
    /// The key was used for a different request.
    Conflict,
    /// The same request is being handled right now.
    InProgress,
}

/// Whether an answer with `status` is kept for replays.
pub fn is_final(status: u16) -> bool {
    status < 500 && status != 429
}

impl Verifier {
    /// Claims `key` for its request.
    pub async fn claim_idempotent(&self, key: &IdempotencyKey) -> Result<Claim, VerifyError> {
        let claim = self
            .store
            .claim_idempotency_key(
                &key.scoped,
                &key.fingerprint,
                self.clock.now(),
                REPLAY_WINDOW,
            )
            .await?;
        Ok(match claim {
            IdempotencyClaim::Claimed => Claim::Fresh,
            IdempotencyClaim::Replay(response) => Claim::Replay(response),
            IdempotencyClaim::Conflict => Claim::Conflict,
            IdempotencyClaim::InProgress => Claim::InProgress,
        })
    }

    /// Keeps `response` for replays of a claimed key when it is final; otherwise frees
    /// the key so the request can be retried.
    pub async fn finish_idempotent(
        &self,
        key: &IdempotencyKey,
        response: StoredResponse,
    ) -> Result<(), VerifyError> {
        if is_final(response.status) {
            self.store
                .complete_idempotency_key(&key.scoped, response)
                .await?;
        } else {
            self.store.release_idempotency_key(&key.scoped).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verification::tests::verifier;

    fn stored(status: u16, body: &str) -> StoredResponse {
        StoredResponse {
            status,
            body: body.into(),
        }
    }

    #[test]
    fn keys_are_scoped_per_caller_and_fingerprinted_by_body() {
        let a = IdempotencyKey::new("key-a", b"order-1", b"{}").unwrap();
        let b = IdempotencyKey::new("key-b", b"order-1", b"{}").unwrap();
        assert_ne!(a.scoped, b.scoped, "two callers never share a key");
        assert!(!a.scoped.contains("key-a"), "the API key is not stored");
        let other_body = IdempotencyKey::new("key-a", b"order-1", b"{\"to\":1}").unwrap();
        assert_eq!(other_body.scoped, a.scoped);
        assert_ne!(other_body.fingerprint, a.fingerprint);
    }

    #[test]
    fn malformed_keys_are_refused() {
        let long = "k".repeat(256);
        for raw in [&b""[..], b"\x00x", b"tab\tkey", long.as_bytes(), b"\xff"] {
            assert_eq!(
                IdempotencyKey::new("c", raw, b""),
                Err(InvalidKey),
                "{raw:?}"
            );
        }
        assert!(IdempotencyKey::new("c", "k".repeat(255).as_bytes(), b"").is_ok());
    }

    #[test]
    fn only_answers_that_did_the_work_are_final() {
        for status in [200, 201, 400, 403, 404, 422] {
            assert!(is_final(status), "{status}");
        }
        for status in [429, 500, 502, 503] {
            assert!(!is_final(status), "{status}");
        }
    }

    #[tokio::test]
    async fn a_final_answer_is_replayed_and_a_retryable_one_frees_the_key() {
        let verifier = verifier(Vec::new());
        let key = IdempotencyKey::new("c", b"k1", b"body").unwrap();
        assert_eq!(verifier.claim_idempotent(&key).await.unwrap(), Claim::Fresh);
        assert_eq!(
            verifier.claim_idempotent(&key).await.unwrap(),
            Claim::InProgress
        );
        verifier
            .finish_idempotent(&key, stored(201, "first"))
            .await
            .unwrap();
        assert_eq!(
            verifier.claim_idempotent(&key).await.unwrap(),
            Claim::Replay(stored(201, "first"))
        );
        let conflicting = IdempotencyKey::new("c", b"k1", b"other body").unwrap();
        assert_eq!(
            verifier.claim_idempotent(&conflicting).await.unwrap(),
            Claim::Conflict
        );
        let retryable = IdempotencyKey::new("c", b"k2", b"body").unwrap();
        verifier.claim_idempotent(&retryable).await.unwrap();
        verifier
            .finish_idempotent(&retryable, stored(503, "down"))
            .await
            .unwrap();
        assert_eq!(
            verifier.claim_idempotent(&retryable).await.unwrap(),
            Claim::Fresh,
            "a 503 did no work: the key is free again"
        );
    }
}
