//! `PhoneNumber`: a number parsed by libphonenumber rules and kept in E.164 form.
//! Raw input stops here; everything past the handlers takes a `PhoneNumber`.

use std::fmt;
use std::str::FromStr;

use phonenumber::country;

mod plan;

/// Longest input we even try to parse; real numbers with formatting are far shorter.
const MAX_INPUT_CHARS: usize = 32;

/// A phone number in E.164 form (`+12015550123`). Only `parse` builds one.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber {
    e164: String,
    region: Option<String>,
}

/// Why input is not a usable phone number. `Display` is written for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("Enter your phone number.")]
    Empty,
    #[error("A phone number has only digits, spaces, and + ( ) - . characters.")]
    Malformed,
    #[error("That number is too short.")]
    TooShort,
    #[error("That number is too long.")]
    TooLong,
    #[error(
        "That is not a valid phone number. Check it, and include the country code (+44…) if it is not a {0} number."
    )]
    Invalid(String),
}

/// Parses an ISO 3166 alpha-2 code known to libphonenumber (`"US"`, `"gb"`).
pub fn parse_region(raw: &str) -> Option<country::Id> {
    country::Id::from_str(&raw.to_ascii_uppercase()).ok()
}

impl PhoneNumber {
    /// Parses what a person typed; national numbers are read in `default_region`.
    pub fn parse(raw: &str, default_region: country::Id) -> Result<Self, PhoneError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(PhoneError::Empty);
        }
        if raw.chars().count() > MAX_INPUT_CHARS {
            return Err(PhoneError::TooLong);
        }
        // ASCII only: libphonenumber would accept other scripts' digits and vanity letters,
        // which people almost never mean and which would make two spellings of one number.
        if !raw
            .chars()
            .all(|c| c.is_ascii_digit() || " +()-./".contains(c))
            || raw[1..].contains('+')
        {
            return Err(PhoneError::Malformed);
        }
        let digits = raw.chars().filter(char::is_ascii_digit).count();
        if digits < 5 {
            return Err(PhoneError::TooShort);
        }
        if digits > 17 {
            return Err(PhoneError::TooLong);
        }
        let invalid = || PhoneError::Invalid(default_region.as_ref().to_string());
        let number = match phonenumber::parse(Some(default_region), raw) {
            Ok(number) => number,
            Err(
                phonenumber::ParseError::TooShortNsn | phonenumber::ParseError::TooShortAfterIdd,
            ) => {
                return Err(PhoneError::TooShort);
            }
            Err(phonenumber::ParseError::TooLong) => return Err(PhoneError::TooLong),
            Err(_) => return Err(invalid()),
        };
        let code = number.code().value();
        // The national number as written (with any leading zeros Italy's numbers keep);
        // the E.164 text and the plan's lookup key are joined without `format!`.
        let national = number.national().to_string();
        if !plan::is_valid(code, &national) {
            return Err(invalid());
        }
        let mut code_text = itoa::Buffer::new();
        let e164 = ["+", code_text.format(code), &national].concat();
        if e164.len() > 16 {
            return Err(PhoneError::TooLong);
        }
        let mut value = itoa::Buffer::new();
        let region = plan::region(code, value.format(number.national().value()))
            .map(|id| id.as_ref().to_string());
        Ok(Self { e164, region })
    }

    /// Rebuilds a number from the parts of one `parse` built earlier and a store kept:
    /// no parsing, so the caller must only pass what `e164` and `region` returned.
    pub(crate) fn from_stored(e164: String, region: Option<String>) -> Self {
        Self { e164, region }
    }

    /// Rebuilds a number that was stored in E.164 form by `parse` earlier.
    pub fn from_e164(e164: &str) -> Result<Self, PhoneError> {
        if !e164.starts_with('+') {
            return Err(PhoneError::Malformed);
        }
        Self::parse(e164, country::Id::US)
    }

    /// The E.164 form, for providers and storage. Never for logs: use `masked`.
    pub fn e164(&self) -> &str {
        &self.e164
    }

    /// The ISO 3166 region the number belongs to, when it has one (`"US"`).
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// For logs and pages: the country code and area, then the last two digits (`+1201*****23`).
    pub fn masked(&self) -> String {
        let digits = &self.e164[1..];
        let tail = 2;
        let head = 4.min(digits.len().saturating_sub(tail + 4));
        let hidden = digits.len() - head - tail;
        format!(
            "+{}{}{}",
            &digits[..head],
            "*".repeat(hidden),
            &digits[digits.len() - tail..]
        )
    }
}

/// Debug is masked so a number never lands in a log through `{:?}`.
impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

impl serde::Serialize for PhoneNumber {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.e164)
    }
}

impl<'de> serde::Deserialize<'de> for PhoneNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::from_e164(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(raw: &str) -> Result<PhoneNumber, PhoneError> {
        PhoneNumber::parse(raw, country::Id::US)
    }

    #[test]
    fn national_and_international_forms_give_the_same_e164() {
        for raw in [
            "+12015550123",
            "(201) 555-0123",
            "201.555.0123",
            " +1 201 555 0123 ",
            "1-201-555-0123",
        ] {
            assert_eq!(
                us(raw).map(|p| p.e164().to_string()),
                Ok("+12015550123".into()),
                "{raw}"
            );
        }
    }

    #[test]
    fn numbers_of_other_countries_keep_their_region() {
        let uk = us("+44 7400 123456").unwrap();
        assert_eq!(uk.e164(), "+447400123456");
        assert_eq!(uk.region(), Some("GB"));
        let national = PhoneNumber::parse("07400 123456", country::Id::GB).unwrap();
        assert_eq!(national.e164(), "+447400123456");
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        let cases = [
            ("", PhoneError::Empty),
            ("   ", PhoneError::Empty),
            ("call me", PhoneError::Malformed),
            ("+1 201 555 CALL", PhoneError::Malformed),
            ("٢٠١٥٥٥٠١٢٣", PhoneError::Malformed),
            ("+1+2015550123", PhoneError::Malformed),
            ("123", PhoneError::TooShort),
            ("+1 201", PhoneError::TooShort),
            ("+1201555012345678901", PhoneError::TooLong),
            (&"9".repeat(500), PhoneError::TooLong),
            ("+1 011 555 0123", PhoneError::Invalid("US".into())),
            ("+999 123 456 789", PhoneError::Invalid("US".into())),
        ];
        for (raw, expected) in cases {
            assert_eq!(us(raw), Err(expected), "{raw:?}");
        }
    }

    #[test]
    fn masked_keeps_country_area_and_last_two_digits() {
        assert_eq!(us("+12015550123").unwrap().masked(), "+1201*****23");
        assert_eq!(us("+447400123456").unwrap().masked(), "+4474******56");
    }

    #[test]
    fn debug_output_is_masked() {
        assert_eq!(
            format!("{:?}", us("+12015550123").unwrap()),
            "PhoneNumber(+1201*****23)"
        );
    }

    #[test]
    fn regions_parse_case_insensitively() {
        assert!(parse_region("gb").is_some());
        assert!(parse_region("XX").is_none());
        assert!(parse_region("").is_none());
    }
}
