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

/// Provider messages quote the number ("The 'To' number 5551234567 is not valid");
/// logs must not, so runs of six or more digits become `[number]`.
pub fn redact_numbers(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.chars().filter(char::is_ascii_digit).count() >= 6 {
            out.push_str("[number]");
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in message.chars() {
        if c.is_ascii_digit() || (c == '+' && digits.is_empty()) {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
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
