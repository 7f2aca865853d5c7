//! Verification ids that name their number, for a store that keeps each verification
//! under its number: such a store finds a verification by id without an index entry.
//!
//! An id is one AES-128 block (32 hex characters, the shape of any other id): a tag, the
//! number's digits and 40 random bits, encrypted under a key derived from
//! `server.secret`. Without the key an id says nothing about its number and cannot be made
//! for a chosen one; any other id (one made before, or by a caller) opens to nothing, with
//! the tag's 32 bits and the number's range making a false opening about 1 in 2^38.

use aes_gcm::aes::Aes128;
use aes_gcm::aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit, generic_array::GenericArray};
use rand::RngExt as _;

/// The first four bytes of every sealed id's block.
const TAG: [u8; 4] = *b"pv\x01n";

/// E.164 allows at most 15 digits.
const NUMBERS: u64 = 1_000_000_000_000_000;

/// Seals numbers into ids, and opens them.
#[derive(Clone)]
pub struct IdSealer {
    cipher: Aes128,
}

impl IdSealer {
    pub fn new(key: [u8; 16]) -> Self {
        Self {
            cipher: Aes128::new(&key.into()),
        }
    }

    /// A fresh id naming `e164` (`+` and up to 15 digits), or `None` for anything else.
    pub fn seal(&self, e164: &str) -> Option<String> {
        if !super::e164_shaped(e164) {
            return None;
        }
        let number: u64 = e164[1..].parse().ok()?;
        let mut block = [0u8; 16];
        block[..4].copy_from_slice(&TAG);
        block[4..11].copy_from_slice(&number.to_be_bytes()[1..]);
        rand::rng().fill(&mut block[11..]);
        let mut block = GenericArray::from(block);
        self.cipher.encrypt_block(&mut block);
        Some(crate::code::to_hex(&block))
    }

    /// The number (E.164) `id` names, when this key sealed it.
    pub fn open(&self, id: &str) -> Option<String> {
        if id.len() != 32 {
            return None;
        }
        let bytes: [u8; 16] = crate::code::from_hex(id)?.try_into().ok()?;
        let mut block = GenericArray::from(bytes);
        self.cipher.decrypt_block(&mut block);
        if block[..4] != TAG {
            return None;
        }
        let mut number = [0u8; 8];
        number[1..].copy_from_slice(&block[4..11]);
        let number = u64::from_be_bytes(number);
        (1..NUMBERS)
            .contains(&number)
            .then(|| ["+", itoa::Buffer::new().format(number)].concat())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_opens_to_its_number_under_its_key_only() {
        let sealer = IdSealer::new([7; 16]);
        let id = sealer.seal("+12015550123").unwrap();
        assert_eq!(id.len(), 32);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(sealer.open(&id).as_deref(), Some("+12015550123"));
        assert_eq!(IdSealer::new([8; 16]).open(&id), None, "another key");
        // Every id is new, and says nothing of the number in the clear.
        let again = sealer.seal("+12015550123").unwrap();
        assert_ne!(id, again);
        assert!(!id.contains("2015550123"));
        // The longest and shortest numbers E.164 allows.
        for number in ["+999999999999999", "+1"] {
            let id = sealer.seal(number).unwrap();
            assert_eq!(sealer.open(&id).as_deref(), Some(number));
        }
    }

    #[test]
    fn other_ids_and_other_text_open_to_nothing() {
        let sealer = IdSealer::new([7; 16]);
        for _ in 0..10_000 {
            assert_eq!(sealer.open(&crate::code::random_hex(16)), None);
        }
        for text in ["", "nope", "0123", &"g".repeat(32), &"0".repeat(33)] {
            assert_eq!(sealer.open(text), None, "{text:?}");
        }
        for number in ["12015550123", "+", "+1234567890123456", "+1201x", "+-1"] {
            assert_eq!(sealer.seal(number), None, "{number:?}");
        }
    }
}
