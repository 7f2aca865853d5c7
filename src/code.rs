//! One-time codes: generation from the OS CSPRNG, the format people type them in,
//! and the keyed hash that is the only form a code is ever stored in.

use std::fmt;

use hmac::{KeyInit, Mac};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The characters a code is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodeAlphabet {
    /// `0-9`.
    Digits,
    /// `0-9A-F`, accepted in either case (the Telnyx tutorial's codes).
    Hex,
}

impl CodeAlphabet {
    const fn symbols(self) -> &'static [u8] {
        match self {
            Self::Digits => b"0123456789",
            Self::Hex => b"0123456789ABCDEF",
        }
    }

    /// Lengths allowed in configuration: at least 20 bits, at most what fits a text field.
    pub const fn length_bounds(self) -> (usize, usize) {
        match self {
            Self::Digits => (6, 12),
            Self::Hex => (5, 16),
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Digits => "digits",
            Self::Hex => "hex",
        }
    }
}

/// How codes look: alphabet and length, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeFormat {
    pub alphabet: CodeAlphabet,
    pub length: usize,
}

/// A code in plaintext: generated for delivery or typed by a person. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Code(String);

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code(***)")
    }
}

impl Code {
    /// The code as it is sent to the phone.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Why typed input cannot be a code. `Display` is written for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("Enter the code we sent you.")]
    Empty,
    #[error("The code is {length} {what}, with no spaces.")]
    WrongShape { length: usize, what: &'static str },
}

impl CodeFormat {
    /// A fresh code, each symbol drawn uniformly from the alphabet by the OS CSPRNG.
    pub fn generate(&self) -> Code {
        let symbols = self.alphabet.symbols();
        // The thread's CSPRNG (ChaCha12, seeded and periodically reseeded from the OS):
        // as unpredictable as the OS source, without a system call per symbol.
        let mut rng = rand::rng();
        let code = (0..self.length)
            .map(|_| char::from(symbols[rng.random_range(0..symbols.len())]))
            .collect();
        Code(code)
    }

    /// What `parse` accepts, as an ECMA-262 regular expression (for the OpenAPI document).
    pub fn pattern(&self) -> String {
        let symbols = match self.alphabet {
            CodeAlphabet::Digits => "0-9",
            CodeAlphabet::Hex => "0-9A-Fa-f",
        };
        format!("^\\s*[{symbols}]{{{}}}\\s*$", self.length)
    }

    /// Parses typed input: surrounding whitespace is forgiven, anything else must match exactly.
    pub fn parse(&self, raw: &str) -> Result<Code, CodeError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(CodeError::Empty);
        }
        let normalized = raw.to_ascii_uppercase();
        let fits = normalized.len() == self.length
            && normalized
                .bytes()
                .all(|b| self.alphabet.symbols().contains(&b));
        if !fits {
            return Err(CodeError::WrongShape {
                length: self.length,
                what: match self.alphabet {
                    CodeAlphabet::Digits => "digits",
                    CodeAlphabet::Hex => "characters (0-9, A-F)",
                },
            });
        }
        Ok(Code(normalized))
    }
}

/// HMAC-SHA256 of a code, bound to the number it was sent to.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeHash(#[serde(with = "hex_bytes")] [u8; 32]);

impl fmt::Debug for CodeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeHash(..)")
    }
}

impl CodeHash {
    /// Constant-time equality, so timing says nothing about how much of a guess was right.
    pub fn matches(&self, other: &CodeHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// The hash's bytes, for a store's own layout.
    pub(crate) fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// A hash a store kept with `to_bytes`.
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A hash a store kept as 64 hex characters (either case), or `None`.
    pub(crate) fn from_hex(text: &str) -> Option<Self> {
        hex_bytes::decode_32(text).map(Self)
    }
}

/// Hashes codes under a key derived from `server.secret`.
#[derive(Clone)]
pub struct CodeHasher {
    key: [u8; 32],
}

impl CodeHasher {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// The hash of `code` as sent to `number` (E.164): the same code for another number differs.
    pub fn hash(&self, number: &str, code: &Code) -> CodeHash {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(number.as_bytes());
        mac.update(b"\0");
        mac.update(code.0.as_bytes());
        CodeHash(mac.finalize().into_bytes().into())
    }
}

/// Encrypts codes for the short time a voice provider may fetch them (SignalWire and
/// Plivo read call instructions from our URL when the call is answered). AES-256-GCM with
/// a random nonce; nothing else ever holds a code in recoverable form.
#[derive(Clone)]
pub struct CodeSealer {
    cipher: aes_gcm::Aes256Gcm,
}

impl CodeSealer {
    pub fn new(key: [u8; 32]) -> Self {
        use aes_gcm::KeyInit as _;
        Self {
            cipher: aes_gcm::Aes256Gcm::new(&key.into()),
        }
    }

    /// `nonce || ciphertext`, hex-encoded, bound to `context` (the verification id).
    pub fn seal(&self, code: &Code, context: &str) -> String {
        use aes_gcm::aead::{Aead, Payload};
        let mut nonce = [0u8; 12];
        rand::rand_core::UnwrapErr(rand::rngs::SysRng).fill(&mut nonce[..]);
        let sealed = self
            .cipher
            .encrypt(
                (&nonce).into(),
                Payload {
                    msg: code.0.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of a short code cannot fail");
        hex_bytes::encode(&[&nonce[..], &sealed].concat())
    }

    /// The code sealed by `seal` with the same `context`, or `None` if it was tampered with.
    pub fn open(&self, sealed: &str, context: &str) -> Option<Code> {
        use aes_gcm::aead::{Aead, Payload};
        let bytes = hex_bytes::decode(sealed)?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let plain = self
            .cipher
            .decrypt(
                nonce.into(),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .ok()?;
        String::from_utf8(plain).ok().map(Code)
    }
}

/// Derives an independent 32-byte key for one purpose from the master secret.
pub fn derive_key(secret: &[u8], purpose: &str) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().into()
}

/// `n` random bytes from the OS CSPRNG, hex-encoded (ids, CSRF tokens).
pub fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    let mut buf = vec![0u8; bytes];
    rng.fill(&mut buf[..]);
    hex_bytes::encode(&buf)
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    hex_bytes::encode(bytes)
}

/// The bytes of hex text (either case), or `None` when it is not hex.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    hex_bytes::decode(text)
}

/// Constant-time comparison of two strings (tokens, keys).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Whether `presented` is the credential `configured`, in constant time. Fails closed:
/// an empty configured credential matches nothing, not even an empty one.
pub fn credential_matches(configured: &str, presented: &str) -> bool {
    !configured.is_empty() & constant_time_eq(configured, presented)
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn encode(bytes: &[u8]) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            text.push(DIGITS[usize::from(b >> 4)] as char);
            text.push(DIGITS[usize::from(b & 0xf)] as char);
        }
        text
    }

    pub fn decode(raw: &str) -> Option<Vec<u8>> {
        if !raw.len().is_multiple_of(2) || !raw.is_ascii() {
            return None;
        }
        (0..raw.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&raw[i..i + 2], 16).ok())
            .collect()
    }

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&encode(bytes))
    }

    /// Exactly 32 bytes of hex text, without allocating.
    pub fn decode_32(raw: &str) -> Option<[u8; 32]> {
        let raw = raw.as_bytes();
        if raw.len() != 64 {
            return None;
        }
        let digit = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(raw.chunks_exact(2)) {
            *byte = digit(pair[0])? << 4 | digit(pair[1])?;
        }
        Some(out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
        let raw = String::deserialize(deserializer)?;
        decode_32(&raw).ok_or_else(|| serde::de::Error::custom("expected 64 hex characters"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGITS: CodeFormat = CodeFormat {
        alphabet: CodeAlphabet::Digits,
        length: 6,
    };
    const HEX: CodeFormat = CodeFormat {
        alphabet: CodeAlphabet::Hex,
        length: 6,
    };

    #[test]
    fn generated_codes_have_the_configured_shape() {
        for format in [
            DIGITS,
            HEX,
            CodeFormat {
                alphabet: CodeAlphabet::Digits,
                length: 8,
            },
        ] {
            for _ in 0..200 {
                let code = format.generate();
                assert_eq!(format.parse(code.expose()), Ok(code.clone()));
            }
        }
    }

    #[test]
    fn generated_digits_are_uniform_including_leading_zeros() {
        // 60,000 symbols: each digit expected 6,000 times; chi-square with 9 degrees of
        // freedom stays under 27.9 with probability 0.999 for a uniform source.
        let mut counts = [0u32; 10];
        for _ in 0..10_000 {
            for b in DIGITS.generate().expose().bytes() {
                counts[usize::from(b - b'0')] += 1;
            }
        }
        let expected = 6_000.0;
        let chi: f64 = counts
            .iter()
            .map(|&c| (f64::from(c) - expected).powi(2) / expected)
            .sum();
        assert!(chi < 27.9, "chi-square {chi} for {counts:?}");
    }

    #[test]
    fn hex_codes_are_checked_case_insensitively() {
        assert_eq!(HEX.parse("a1b2c3"), HEX.parse("A1B2C3"));
        assert!(HEX.parse("a1b2c3").is_ok());
    }

    #[test]
    fn malformed_codes_are_refused() {
        let long = "1".repeat(500);
        for raw in [
            "12345",
            "1234567",
            "12a456",
            "123 456",
            "١٢٣٤٥٦",
            "12345６",
            &long,
        ] {
            assert!(
                matches!(DIGITS.parse(raw), Err(CodeError::WrongShape { .. })),
                "{raw:?}"
            );
        }
        assert_eq!(DIGITS.parse("  "), Err(CodeError::Empty));
        assert!(HEX.parse("12345G").is_err());
    }

    #[test]
    fn the_pattern_says_what_parse_accepts() {
        assert_eq!(DIGITS.pattern(), "^\\s*[0-9]{6}\\s*$");
        assert_eq!(HEX.pattern(), "^\\s*[0-9A-Fa-f]{6}\\s*$");
    }

    #[test]
    fn surrounding_whitespace_is_forgiven() {
        assert_eq!(DIGITS.parse(" 123456\n").unwrap().expose(), "123456");
    }

    #[test]
    fn hashes_bind_the_code_to_its_number_and_key() {
        let hasher = CodeHasher::new([7; 32]);
        let code = DIGITS.parse("123456").unwrap();
        let a = hasher.hash("+12015550123", &code);
        assert!(a.matches(&hasher.hash("+12015550123", &code)));
        assert!(!a.matches(&hasher.hash("+12015550124", &code)));
        assert!(!a.matches(&CodeHasher::new([8; 32]).hash("+12015550123", &code)));
        assert!(!a.matches(&hasher.hash("+12015550123", &DIGITS.parse("123457").unwrap())));
    }

    #[test]
    fn sealed_codes_open_only_with_the_same_key_and_context() {
        let sealer = CodeSealer::new([4; 32]);
        let code = DIGITS.parse("123456").unwrap();
        let sealed = sealer.seal(&code, "v1");
        assert!(!sealed.contains("123456"));
        assert_eq!(sealer.open(&sealed, "v1"), Some(code.clone()));
        assert_eq!(
            sealer.open(&sealed, "v2"),
            None,
            "bound to its verification"
        );
        assert_eq!(CodeSealer::new([5; 32]).open(&sealed, "v1"), None);
        let mut tampered = sealed.clone();
        tampered.replace_range(30..32, if &sealed[30..32] == "00" { "01" } else { "00" });
        assert_eq!(sealer.open(&tampered, "v1"), None);
        assert_ne!(sealer.seal(&code, "v1"), sealed, "random nonce");
    }

    #[test]
    fn an_empty_configured_credential_matches_nothing() {
        assert!(!credential_matches("", ""));
        assert!(!credential_matches("", "x"));
        assert!(!credential_matches("secret", ""));
        assert!(!credential_matches("secret", "secreT"));
        assert!(credential_matches("secret", "secret"));
    }

    #[test]
    fn code_debug_output_hides_the_code() {
        assert_eq!(
            format!("{:?}", DIGITS.parse("123456").unwrap()),
            "Code(***)"
        );
    }

    #[test]
    fn hashes_round_trip_through_serde() {
        let hash = CodeHasher::new([1; 32]).hash("+1", &DIGITS.parse("000000").unwrap());
        let json = serde_json::to_string(&hash).unwrap();
        assert!(hash.matches(&serde_json::from_str(&json).unwrap()));
    }
}
