//! The ID tokens' signing key: a P-256 key, either configured (`oidc.signing_key`, PKCS#8
//! PEM) or derived from `server.secret` with HKDF, so every instance sharing the secret
//! signs with the same key. Signing and the JWK (with its RFC 7638 thumbprint as `kid`)
//! come from `jsonwebtoken`; the key itself from RustCrypto's `p256`.

use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey as _;
use serde::Serialize;

/// What HKDF expands the secret into; changing it changes every deployment's key.
const DERIVATION_LABEL: &[u8] = b"phone-verify oidc signing key v1";

/// The key ID tokens are signed with, and its public half as a JWK.
pub struct SigningKey {
    encoding: EncodingKey,
    jwk: Jwk,
    kid: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(kid={})", self.kid)
    }
}

impl SigningKey {
    /// The configured key.
    pub fn from_secret_key(key: &p256::SecretKey) -> anyhow::Result<Self> {
        let der = key.to_pkcs8_der()?;
        let encoding = EncodingKey::from_ec_der(der.as_bytes());
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256)?;
        let kid = jwk.thumbprint(ThumbprintHash::SHA256);
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
        Ok(Self { encoding, jwk, kid })
    }

    /// The key derived from `secret`: HKDF-SHA256 with a fixed label, retried with a
    /// counter in the (vanishingly rare) case the bytes are not a valid P-256 scalar.
    pub fn derive(secret: &[u8]) -> anyhow::Result<Self> {
        let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"phone-verify"), secret);
        for counter in 0u8..=255 {
            let mut bytes = [0u8; 32];
            hkdf.expand_multi_info(&[DERIVATION_LABEL, &[counter]], &mut bytes)
                .map_err(|e| anyhow::anyhow!("hkdf: {e}"))?;
            if let Ok(key) = p256::SecretKey::from_slice(&bytes) {
                return Self::from_secret_key(&key);
            }
        }
        anyhow::bail!("no P-256 key could be derived from server.secret")
    }

    /// `kid`: the JWK's RFC 7638 thumbprint.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key, for `/oidc/jwks.json`.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// A compact JWS (ES256) of `claims`, with `kid` in its header.
    pub fn sign(&self, claims: &impl Serialize) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".into());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn the_derived_key_is_the_same_for_the_same_secret_and_differs_otherwise() {
        let a = SigningKey::derive(b"0123456789abcdef0123456789abcdef").unwrap();
        let b = SigningKey::derive(b"0123456789abcdef0123456789abcdef").unwrap();
        let c = SigningKey::derive(b"another secret, just as long ....").unwrap();
        assert_eq!(a.kid(), b.kid());
        assert_ne!(a.kid(), c.kid());
        assert_eq!(a.kid().len(), 43, "base64url of a SHA-256");
    }

    #[test]
    fn a_signed_token_verifies_with_the_published_jwk() {
        let key = SigningKey::derive(b"0123456789abcdef0123456789abcdef").unwrap();
        let token = key
            .sign(&serde_json::json!({"sub": "x", "aud": "app", "exp": 4_000_000_000u64}))
            .unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some(key.kid()));
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&["app"]);
        let decoding = DecodingKey::from_jwk(key.jwk()).unwrap();
        let data =
            jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
        assert_eq!(data.claims["sub"], "x");
        let other = SigningKey::derive(b"another secret, just as long ....").unwrap();
        let wrong = DecodingKey::from_jwk(other.jwk()).unwrap();
        assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &wrong, &validation).is_err());
    }

    #[test]
    fn a_configured_pem_key_is_used_as_it_is() {
        use p256::pkcs8::{DecodePrivateKey as _, LineEnding};
        let key = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let parsed = p256::SecretKey::from_pkcs8_pem(&pem).unwrap();
        let a = SigningKey::from_secret_key(&parsed).unwrap();
        let b = SigningKey::from_secret_key(&key).unwrap();
        assert_eq!(a.kid(), b.kid());
    }
}
