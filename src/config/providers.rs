//! What each delivery provider needs from its section before it can be named in
//! `channels.sms` or `channels.call`.

use base64::Engine as _;

use super::{ConfigError, ProviderName, Settings};

/// Checks that `provider`, named under `key`, has what it needs in `settings`.
pub(super) fn check_provider(
    provider: ProviderName,
    settings: &Settings,
    key: &str,
) -> Result<(), ConfigError> {
    let p = &settings.providers;
    let missing = |section: &str, field: &str| {
        ConfigError::new(
            format!("providers.{section}.{field}"),
            format!("is required because {key} names {section}"),
        )
    };
    let require = |section: &str, fields: &[(&str, bool)]| -> Result<(), ConfigError> {
        match fields.iter().find(|(_, empty)| *empty) {
            Some((field, _)) => Err(missing(section, field)),
            None => Ok(()),
        }
    };
    match provider {
        ProviderName::Console => Ok(()),
        ProviderName::Twilio => {
            let s = p
                .twilio
                .as_ref()
                .ok_or_else(|| missing("twilio", "account_sid"))?;
            require(
                "twilio",
                &[
                    ("account_sid", s.account_sid.is_empty()),
                    ("auth_token", s.auth_token.is_empty()),
                    ("from", s.from.is_empty()),
                ],
            )
        }
        ProviderName::Signalwire => {
            let s = p
                .signalwire
                .as_ref()
                .ok_or_else(|| missing("signalwire", "project_id"))?;
            require(
                "signalwire",
                &[
                    ("project_id", s.project_id.is_empty()),
                    ("api_token", s.api_token.is_empty()),
                    ("space_url", s.space_url.is_empty()),
                    ("from", s.from.is_empty()),
                ],
            )
        }
        ProviderName::Plivo => {
            let s = p
                .plivo
                .as_ref()
                .ok_or_else(|| missing("plivo", "auth_id"))?;
            require(
                "plivo",
                &[
                    ("auth_id", s.auth_id.is_empty()),
                    ("auth_token", s.auth_token.is_empty()),
                    ("from", s.from.is_empty()),
                ],
            )
        }
        ProviderName::Telnyx => {
            let s = p
                .telnyx
                .as_ref()
                .ok_or_else(|| missing("telnyx", "api_key"))?;
            require(
                "telnyx",
                &[
                    ("api_key", s.api_key.is_empty()),
                    ("from", s.from.is_empty()),
                ],
            )?;
            if key == "channels.call" {
                require(
                    "telnyx",
                    &[
                        ("texml_application_id", s.texml_application_id.is_empty()),
                        ("account_sid", s.account_sid.is_empty()),
                    ],
                )?;
            }
            Ok(())
        }
        ProviderName::PlivoPhlo => {
            let s = p
                .plivo_phlo
                .as_ref()
                .ok_or_else(|| missing("plivo_phlo", "auth_id"))?;
            require(
                "plivo_phlo",
                &[
                    ("auth_id", s.auth_id.is_empty()),
                    ("auth_token", s.auth_token.is_empty()),
                    ("phlo_id", s.phlo_id.is_empty()),
                    ("from", s.from.is_empty()),
                ],
            )
        }
        ProviderName::TwilioVerify => {
            let s = p
                .twilio_verify
                .as_ref()
                .ok_or_else(|| missing("twilio_verify", "account_sid"))?;
            require(
                "twilio_verify",
                &[
                    ("account_sid", s.account_sid.is_empty()),
                    ("auth_token", s.auth_token.is_empty()),
                    ("service_sid", s.service_sid.is_empty()),
                ],
            )?;
            if !s.service_sid.starts_with("VA") {
                return Err(ConfigError::new(
                    "providers.twilio_verify.service_sid",
                    "must be the SID of a Verify service (VA followed by 32 hex digits)",
                ));
            }
            Ok(())
        }
        ProviderName::TelnyxVerify => {
            let s = p
                .telnyx_verify
                .as_ref()
                .ok_or_else(|| missing("telnyx_verify", "api_key"))?;
            require(
                "telnyx_verify",
                &[
                    ("api_key", s.api_key.is_empty()),
                    ("verify_profile_id", s.verify_profile_id.is_empty()),
                ],
            )
        }
        ProviderName::PlivoVerify => {
            let s = p
                .plivo_verify
                .as_ref()
                .ok_or_else(|| missing("plivo_verify", "auth_id"))?;
            require(
                "plivo_verify",
                &[
                    ("auth_id", s.auth_id.is_empty()),
                    ("auth_token", s.auth_token.is_empty()),
                ],
            )
        }
        ProviderName::SignalwireMfa => {
            let s = p
                .signalwire_mfa
                .as_ref()
                .ok_or_else(|| missing("signalwire_mfa", "project_id"))?;
            require(
                "signalwire_mfa",
                &[
                    ("project_id", s.project_id.is_empty()),
                    ("api_token", s.api_token.is_empty()),
                    ("space_url", s.space_url.is_empty()),
                ],
            )
        }
    }
}

/// A provider that generates its own codes sends digits of a length set in its console:
/// the pages and APIs read codes by `verification.code_alphabet` and `code_length`, so
/// those must describe what the provider sends.
pub(super) fn check_owned_codes(settings: &Settings) -> Result<(), ConfigError> {
    let v = &settings.verification;
    let channels = &settings.channels;
    for owner in channels
        .sms
        .iter()
        .chain(&channels.call)
        .filter(|p| p.owns_codes())
    {
        if v.code_alphabet != crate::code::CodeAlphabet::Digits {
            return Err(ConfigError::new(
                "verification.code_alphabet",
                format!(
                    "must be \"digits\" because the channels name {}, which sends numeric codes",
                    owner.as_str()
                ),
            ));
        }
        let (min, max) = match owner {
            ProviderName::SignalwireMfa => (4, 20),
            ProviderName::PlivoVerify => (4, 8),
            _ => (4, 10),
        };
        if !(min..=max).contains(&v.code_length) {
            return Err(ConfigError::new(
                "verification.code_length",
                format!(
                    "must be between {min} and {max} because the channels name {}",
                    owner.as_str()
                ),
            ));
        }
    }
    Ok(())
}

/// Whether `public_key_b64` is a usable Ed25519 public key (base64 of 32 bytes), as the
/// Telnyx portal shows it.
pub(super) fn telnyx_public_key_valid(public_key_b64: &str) -> bool {
    base64::engine::general_purpose::STANDARD
        .decode(public_key_b64.trim())
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .is_some_and(|k| ed25519_dalek::VerifyingKey::from_bytes(&k).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telnyx_public_keys_must_be_ed25519_keys() {
        assert!(telnyx_public_key_valid(
            "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
        ));
        for bad in [
            "",
            "not a key",
            "AAAA",
            "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHUR",
        ] {
            assert!(!telnyx_public_key_valid(bad), "{bad}");
        }
    }

    #[test]
    fn a_named_provider_needs_its_credentials() {
        let mut settings = Settings::default();
        let error = check_provider(ProviderName::Twilio, &settings, "channels.sms").unwrap_err();
        assert_eq!(error.key, "providers.twilio.account_sid");
        settings.providers.twilio = Some(super::super::TwilioSettings {
            account_sid: "AC1".into(),
            auth_token: super::super::Secret::new("token"),
            ..Default::default()
        });
        let error = check_provider(ProviderName::Twilio, &settings, "channels.sms").unwrap_err();
        assert_eq!(error.key, "providers.twilio.from");
        assert!(check_provider(ProviderName::Console, &settings, "channels.sms").is_ok());
    }
}
