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
    }
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
