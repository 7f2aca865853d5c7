//! What every HTTP provider client shares: one reqwest client with a timeout, and the
//! mapping of transport failures and HTTP statuses onto `DeliveryError`.

use std::time::Duration;

use super::DeliveryError;

/// A client for one provider, built once at start-up.
pub fn client(timeout_secs: u64) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(timeout_secs.max(1)))
        .connect_timeout(Duration::from_secs(timeout_secs.clamp(1, 5)))
        .user_agent(concat!("phone-verify/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// A provider's answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Sends `request`; timeouts and connection failures mean "try the next provider".
pub async fn execute(request: reqwest::RequestBuilder) -> Result<Answer, DeliveryError> {
    let response = request.send().await.map_err(|e| {
        DeliveryError::Unavailable(if e.is_timeout() {
            "timed out".to_string()
        } else if e.is_connect() {
            "connection failed".to_string()
        } else {
            format!("request failed: {}", e.without_url())
        })
    })?;
    let status = response.status().as_u16();
    let body = response.text().await.map_err(|e| {
        DeliveryError::Unavailable(format!("reading the answer failed: {}", e.without_url()))
    })?;
    Ok(Answer { status, body })
}

/// Maps a refused request: 429 and 5xx are worth another provider, 401/403 are our
/// credentials, a rejection of the number stops, anything else is a plain rejection.
pub fn classify(status: u16, code: &str, message: &str, number_rejected: bool) -> DeliveryError {
    let detail = format!("HTTP {status}, code {code}: {}", redact_numbers(message));
    match status {
        429 | 500..=599 => DeliveryError::Unavailable(detail),
        401 | 403 => DeliveryError::Unauthorized(detail),
        _ if number_rejected => DeliveryError::InvalidNumber(detail),
        _ => DeliveryError::Rejected(detail),
    }
}

/// Provider messages quote the number ("The 'To' number 5551234567 is not valid",
/// "+1 201-555-0123 is unreachable"); logs must not. A run of digits and the separators
/// people write numbers with (space, `-`, `.`, `/`, parentheses), optionally after `+`,
/// holding six or more digits becomes `[number]`. The result is cut to 300 characters.
pub fn redact_numbers(message: &str) -> String {
    const SEPARATORS: &str = " -./()";
    let chars: Vec<char> = message.chars().collect();
    let mut out = String::with_capacity(message.len());
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i].is_ascii_digit()
            || (matches!(chars[i], '+' | '(')
                && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()));
        if !starts {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let mut end = i + 1;
        while end < chars.len() && (chars[end].is_ascii_digit() || SEPARATORS.contains(chars[end]))
        {
            end += 1;
        }
        // Separators after the last digit belong to the text around it.
        while end > i && !chars[end - 1].is_ascii_digit() && chars[end - 1] != ')' {
            end -= 1;
        }
        let run = &chars[i..end];
        if run.iter().filter(|c| c.is_ascii_digit()).count() >= 6 {
            out.push_str("[number]");
        } else {
            out.extend(run);
        }
        i = end;
    }
    out.chars().take(300).collect()
}

/// Joins a base URL and a path without doubling or dropping the slash.
pub fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_provider_messages_are_redacted() {
        assert_eq!(
            redact_numbers("The 'To' number +15551234567 is not a valid phone number."),
            "The 'To' number [number] is not a valid phone number."
        );
        assert_eq!(
            redact_numbers("error 21211 at 10:30"),
            "error 21211 at 10:30"
        );
        for written in [
            "+1 201-555-0123",
            "(201) 555-0123",
            "201.555.0123",
            "+44 7400 123456",
            "2015550123",
        ] {
            assert_eq!(
                redact_numbers(&format!("Number {written} is unreachable.")),
                "Number [number] is unreachable.",
                "{written}"
            );
        }
        assert_eq!(
            redact_numbers("codes 21211 and 21614, HTTP 400."),
            "codes 21211 and 21614, HTTP 400."
        );
        assert_eq!(redact_numbers(&"x".repeat(500)).len(), 300);
    }

    #[test]
    fn statuses_are_classified_for_failover() {
        assert!(matches!(
            classify(503, "", "", false),
            DeliveryError::Unavailable(_)
        ));
        assert!(matches!(
            classify(429, "20429", "", false),
            DeliveryError::Unavailable(_)
        ));
        assert!(matches!(
            classify(401, "20003", "", false),
            DeliveryError::Unauthorized(_)
        ));
        assert!(matches!(
            classify(400, "21211", "", true),
            DeliveryError::InvalidNumber(_)
        ));
        assert!(matches!(
            classify(400, "21606", "", false),
            DeliveryError::Rejected(_)
        ));
        assert!(classify(400, "21606", "", false).try_next());
        assert!(!classify(400, "21211", "", true).try_next());
    }
}
