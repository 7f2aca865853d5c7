//! How providers sign the requests they make to us, as pure functions: Twilio and
//! SignalWire HMAC-SHA1, Plivo V2/V3 HMAC-SHA256, Telnyx Ed25519. The tests check each
//! against the providers' own published examples.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{KeyInit, Mac};
use sha2::Digest;

use crate::code::{constant_time_eq, to_hex as hex};

type HmacSha1 = hmac::Hmac<sha1::Sha1>;
type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn hmac_sha1(key: &str, message: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha1::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha256(key: &str, message: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Twilio's signature (also SignalWire's cXML scheme): base64 HMAC-SHA1 of the URL followed
/// by each parameter name and value, names sorted byte-wise, distinct values sorted.
pub fn twilio_signature(key: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut message = url.to_string();
    for (name, value) in sorted {
        message.push_str(name);
        message.push_str(value);
    }
    BASE64.encode(hmac_sha1(key, message.as_bytes()))
}

/// The URL as signed, with and without the scheme's default port: providers are
/// inconsistent about it, so their SDKs try both. A non-default port is kept.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return variants;
    };
    let default = match scheme {
        "https" => "443",
        "http" => "80",
        _ => return variants,
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()) && !authority.ends_with(']'));
    if !has_port {
        variants.push(format!("{scheme}://{authority}:{default}{tail}"));
    } else if let Some(host) = authority.strip_suffix(&format!(":{default}")) {
        variants.push(format!("{scheme}://{host}{tail}"));
    }
    variants
}

/// Checks an `X-Twilio-Signature` (or SignalWire's cXML `X-SignalWire-Signature`).
/// Form requests sign their fields; JSON requests carry `bodySHA256` in the query instead.
pub fn twilio_valid(
    key: &str,
    url: &str,
    form: &[(String, String)],
    body: &[u8],
    header: &str,
) -> bool {
    let body_hash = url::Url::parse(url).ok().and_then(|u| {
        u.query_pairs()
            .find(|(k, _)| k == "bodySHA256")
            .map(|(_, v)| v.into_owned())
    });
    let params: &[(String, String)] = match &body_hash {
        Some(expected) => {
            if !constant_time_eq(&hex(&sha2::Sha256::digest(body)), expected) {
                return false;
            }
            &[]
        }
        None => form,
    };
    url_variants(url)
        .iter()
        .any(|candidate| constant_time_eq(&twilio_signature(key, candidate, params), header))
}

/// SignalWire's signature for JSON bodies: hex HMAC-SHA1 of the URL and the raw body.
pub fn signalwire_json_signature(key: &str, url: &str, body: &[u8]) -> String {
    hex(&hmac_sha1(key, &[url.as_bytes(), body].concat()))
}

/// Checks an `X-SignalWire-Signature`: the JSON scheme, then the cXML (Twilio) scheme.
pub fn signalwire_valid(
    key: &str,
    url: &str,
    form: &[(String, String)],
    body: &[u8],
    header: &str,
) -> bool {
    url_variants(url)
        .iter()
        .any(|candidate| constant_time_eq(&signalwire_json_signature(key, candidate, body), header))
        || twilio_valid(key, url, form, body, header)
}

/// Plivo's V3 signature over the URL, the request's parameters and a nonce.
pub fn plivo_v3_signature(
    token: &str,
    url: &str,
    nonce: &str,
    method: &str,
    params: &[(String, String)],
) -> String {
    let parsed = url::Url::parse(url).ok();
    let base = parsed.as_ref().map_or(url.to_string(), |u| {
        let mut base = u.clone();
        base.set_query(None);
        base.set_fragment(None);
        base.to_string()
    });
    let mut query: Vec<(String, String)> = parsed
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default();
    let mut body: Vec<(String, String)> = params.to_vec();
    let joined = |pairs: &mut Vec<(String, String)>, sep: &str, eq: &str| {
        pairs.sort();
        pairs
            .iter()
            .map(|(k, v)| format!("{k}{eq}{v}"))
            .collect::<Vec<_>>()
            .join(sep)
    };
    let signed_url = if method.eq_ignore_ascii_case("GET") {
        query.append(&mut body);
        if query.is_empty() {
            base
        } else {
            format!("{base}?{}", joined(&mut query, "&", "="))
        }
    } else if !query.is_empty() {
        let mut url = format!("{base}?{}", joined(&mut query, "&", "="));
        if !body.is_empty() {
            url = format!("{url}.{}", joined(&mut body, "", ""));
        }
        url
    } else if body.is_empty() {
        base
    } else {
        format!("{base}?{}", joined(&mut body, "", ""))
    };
    BASE64.encode(hmac_sha256(
        token,
        format!("{signed_url}.{nonce}").as_bytes(),
    ))
}

/// Plivo's V2 signature: the URL without its query, then the nonce.
pub fn plivo_v2_signature(token: &str, url: &str, nonce: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    BASE64.encode(hmac_sha256(token, format!("{base}{nonce}").as_bytes()))
}

/// Whether any of the comma-separated signatures in `header` equals `expected`.
pub fn any_matches(header: &str, expected: &str) -> bool {
    header
        .split(',')
        .any(|candidate| constant_time_eq(candidate.trim(), expected))
}

/// How far a Telnyx timestamp may be from our clock.
pub const TELNYX_TOLERANCE_SECS: i64 = 300;

/// Checks Telnyx's Ed25519 signature over `"{timestamp}|{body}"`, within the tolerance.
pub fn telnyx_valid(
    public_key_b64: &str,
    timestamp: &str,
    body: &[u8],
    signature_b64: &str,
    now_unix: i64,
) -> bool {
    let Ok(sent_at) = timestamp.trim().parse::<i64>() else {
        return false;
    };
    if (now_unix - sent_at).abs() > TELNYX_TOLERANCE_SECS {
        return false;
    }
    let key = BASE64
        .decode(public_key_b64.trim())
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k).ok());
    let signature = BASE64
        .decode(signature_b64.trim())
        .ok()
        .and_then(|s| <[u8; 64]>::try_from(s).ok());
    let (Some(key), Some(signature)) = (key, signature) else {
        return false;
    };
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&key) else {
        return false;
    };
    let message = [timestamp.trim().as_bytes(), b"|", body].concat();
    key.verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(raw: &[(&str, &str)]) -> Vec<(String, String)> {
        raw.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn twilio_params() -> Vec<(String, String)> {
        pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
            ("Caller", "+14158675309"),
        ])
    }

    const TWILIO_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    #[test]
    fn twilio_vectors() {
        assert_eq!(
            twilio_signature("12345", TWILIO_URL, &twilio_params()),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        let cases = [
            (
                "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                "kvajT1Ptam85bY51eRf/AJRuM3w=",
            ),
            (
                "http://mycompany.com:80/myapp.php?foo=1&bar=2",
                "0ZXoZLH/DfblKGATFgpif+LLRf4=",
            ),
            (
                "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
                "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(
                twilio_signature("12345", url, &twilio_params()),
                expected,
                "{url}"
            );
        }
        let repeated = pairs(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_eq!(
            twilio_signature("12345", TWILIO_URL, &repeated),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
    }

    #[test]
    fn twilio_validation_accepts_either_port_form() {
        let params = twilio_params();
        assert!(twilio_valid(
            "12345",
            TWILIO_URL,
            &params,
            b"",
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        // Signed with :443, received without it.
        assert!(twilio_valid(
            "12345",
            TWILIO_URL,
            &params,
            b"",
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        ));
        // Signed without, received with.
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert!(twilio_valid(
            "12345",
            with_port,
            &params,
            b"",
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn twilio_validation_refuses_tampering() {
        let mut params = twilio_params();
        let good = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert!(
            !twilio_valid("54321", TWILIO_URL, &params, b"", good),
            "other key"
        );
        assert!(
            !twilio_valid(
                "12345",
                "https://mycompany.com/other.php?foo=1&bar=2",
                &params,
                b"",
                good
            ),
            "other URL"
        );
        params[1].1 = "9999".into();
        assert!(
            !twilio_valid("12345", TWILIO_URL, &params, b"", good),
            "changed field"
        );
        assert!(
            !twilio_valid("12345", TWILIO_URL, &twilio_params(), b"", ""),
            "missing"
        );
    }

    #[test]
    fn twilio_json_bodies_are_checked_by_their_hash() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        let body = br#"{"property": "value", "boolean": true}"#;
        assert!(twilio_valid(
            "12345",
            url,
            &[],
            body,
            "a9nBmqA0ju/hNViExpshrM61xv4="
        ));
        assert!(!twilio_valid(
            "12345",
            url,
            &[],
            br#"{"property": "other", "boolean": true}"#,
            "a9nBmqA0ju/hNViExpshrM61xv4="
        ));
    }

    #[test]
    fn signalwire_vectors() {
        let body = br#"{"event":"call.state","params":{"call_id":"abc-123","state":"answered"}}"#;
        assert_eq!(
            signalwire_json_signature(
                "PSKtest1234567890abcdef",
                "https://example.ngrok.io/webhook",
                body
            ),
            "c3c08c1fefaf9ee198a100d5906765a6f394bf0f"
        );
        assert!(signalwire_valid(
            "PSKtest1234567890abcdef",
            "https://example.ngrok.io/webhook",
            &[],
            body,
            "c3c08c1fefaf9ee198a100d5906765a6f394bf0f"
        ));
        assert!(!signalwire_valid(
            "PSKtest1234567890abcdef",
            "https://example.ngrok.io/webhook",
            &[],
            b"{}",
            "c3c08c1fefaf9ee198a100d5906765a6f394bf0f"
        ));
        // The cXML scheme is Twilio's.
        assert!(signalwire_valid(
            "12345",
            TWILIO_URL,
            &twilio_params(),
            b"",
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        let url = "https://example.ngrok.io/webhook?bodySHA256=69f3cbfc18e386ef8236cb7008cd5a54b7fed637a8cb3373b5a1591d7f0fd5f4";
        assert!(signalwire_valid(
            "PSKtest1234567890abcdef",
            url,
            &[],
            br#"{"event":"call.state"}"#,
            "dfO9ek8mxyFtn2nMz24plPmPfIY="
        ));
    }

    #[test]
    fn signalwire_ruby_vector() {
        let body = r#"{"call":{"call_id":"b5d63b2e-f75b-4dc8-b6d4-269b635f96c0","node_id":"fa3570ae-f8bd-42c2-83f4-9950d906c91b@us-west","segment_id":"b5d63b2e-f75b-4dc8-b6d4-269b635f96c0","call_state":"created","direction":"inbound","type":"phone","from":"+12135877632","to":"+12089806814","from_number":"+12135877632","to_number":"+12089806814","project_id":"4b7ae78a-d02e-4889-a63b-08b156d5916e","space_id":"62615f44-2a34-4235-b38b-76b5a1de6ef8"},"vars":{}}"#;
        let url = "https://81f2-2-45-18-191.ngrok-free.app/";
        let expected = "b18500437ebb010220ddd770cbe6fd531ea0ba0d";
        assert_eq!(
            signalwire_json_signature("PSK_7TruNcSNTxp4zNrykMj4EPzF", url, body.as_bytes()),
            expected
        );
    }

    fn plivo_params() -> Vec<(String, String)> {
        let uuid = "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36";
        pairs(&[
            ("Direction", "outbound"),
            ("From", "19792014278"),
            ("ALegUUID", uuid),
            ("CallStatus", "in-progress"),
            ("BillRate", "0.002"),
            ("ParentAuthID", "MANWVLYTK4ZWU1YTY4QA"),
            (
                "To",
                "sip:PlivoSignature382029104058171078704104@phone-qa.voice.plivodev.com",
            ),
            ("ALegRequestUUID", uuid),
            ("CallUUID", uuid),
            ("RequestUUID", uuid),
            (
                "SIP-H-To",
                "<sip:PlivoSignature382029104058171078704104@52.9.11.55;transport=udp>;tag=1",
            ),
            ("SessionStart", "2020-04-08 11:34:33.238707"),
            ("Event", "StartApp"),
        ])
    }

    #[test]
    fn plivo_v3_vectors() {
        let token = "Y2Q2ZDgxZmY5YWRiOTI5YmQ1Njg0MTAxZWIyOTc4";
        let nonce = "31627761595286130198";
        let with_query =
            "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml/?a=b&c=d";
        let without = "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml";
        let cases = [
            (
                with_query,
                "POST",
                "k7Pusd4OxCIjR5IfA9iedDNu/h/gbdYqdzG/MiYtd1c=",
            ),
            (
                with_query,
                "GET",
                "UBq8jAtd32wR8EK9VgxbBn4n5rpI/l1H9iN4WfSEHFQ=",
            ),
            (
                without,
                "POST",
                "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0=",
            ),
            (
                without,
                "GET",
                "i/MQsaQSAd6fiKhOh2qeeeLHZ9faldADSb3/7+Akfbc=",
            ),
        ];
        for (url, method, expected) in cases {
            assert_eq!(
                plivo_v3_signature(token, url, nonce, method, &plivo_params()),
                expected,
                "{method} {url}"
            );
        }
        assert!(any_matches(
            "bogus,k7Pusd4OxCIjR5IfA9iedDNu/h/gbdYqdzG/MiYtd1c=",
            "k7Pusd4OxCIjR5IfA9iedDNu/h/gbdYqdzG/MiYtd1c="
        ));
        let mut tampered = plivo_params();
        tampered[3].1 = "completed".into();
        assert_ne!(
            plivo_v3_signature(token, without, nonce, "POST", &tampered),
            "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0="
        );
    }

    #[test]
    fn plivo_v1_vector_is_the_twilio_scheme() {
        let params = pairs(&[
            ("CallUUID", "97ceeb52-58b6-11e1-86da-77300b68f8bb"),
            ("Duration", "300"),
        ]);
        assert_eq!(
            twilio_signature("MAXXXXXXXXXXXXXXXXXX", "http://foo.com/answer/", &params),
            "EJEt0ELanhr8hjMPIJnLNLex0dE="
        );
    }

    #[test]
    fn plivo_v2_vector() {
        assert_eq!(
            plivo_v2_signature("my_auth_token", "https://answer.url", "12345"),
            "ehV3IKhLysWBxC1sy8INm0qGoQYdYsHwuoKjsX7FsXc="
        );
        assert_eq!(
            plivo_v2_signature("my_auth_token", "https://answer.url?x=1", "12345"),
            "ehV3IKhLysWBxC1sy8INm0qGoQYdYsHwuoKjsX7FsXc=",
            "V2 signs the URL without its query"
        );
    }

    const TELNYX_KEY: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    const TELNYX_BODY: &str = r#"{"data":{"event_type":"message.finalized","id":"0ccc7b54-4df3-4bca-a65a-3da1ecc777f0","occurred_at":"2023-11-14T22:13:20.000Z","payload":{"id":"40385f64-5717-4562-b3fc-2c963f66afa6","to":[{"phone_number":"+18665550001","status":"delivered"}]},"record_type":"event"},"meta":{"attempt":1,"delivered_to":"https://example.com/hooks"}}"#;
    const TELNYX_SIG: &str =
        "2StYra0hTv84L32RzUzLjpwy1h0ub5DPQnQsfMSH/bW2ocdpjxAn1WyjOAAtq1nvO9NQXqa4Ueoj2z6nZWJeDQ==";

    #[test]
    fn telnyx_vector_verifies_within_the_tolerance() {
        assert!(telnyx_valid(
            TELNYX_KEY,
            "1700000000",
            TELNYX_BODY.as_bytes(),
            TELNYX_SIG,
            1_700_000_000
        ));
        assert!(telnyx_valid(
            TELNYX_KEY,
            "1700000000",
            TELNYX_BODY.as_bytes(),
            TELNYX_SIG,
            1_700_000_300
        ));
    }

    #[test]
    fn telnyx_stale_or_tampered_requests_are_refused() {
        assert!(
            !telnyx_valid(
                TELNYX_KEY,
                "1700000000",
                TELNYX_BODY.as_bytes(),
                TELNYX_SIG,
                1_700_000_301
            ),
            "stale"
        );
        assert!(
            !telnyx_valid(
                TELNYX_KEY,
                "1700000000",
                TELNYX_BODY.as_bytes(),
                TELNYX_SIG,
                1_699_999_699
            ),
            "future"
        );
        let tampered = TELNYX_BODY.replace("delivered\"}", "failed\"}");
        assert!(
            !telnyx_valid(
                TELNYX_KEY,
                "1700000000",
                tampered.as_bytes(),
                TELNYX_SIG,
                1_700_000_000
            ),
            "body"
        );
        assert!(
            !telnyx_valid(
                TELNYX_KEY,
                "1700000001",
                TELNYX_BODY.as_bytes(),
                TELNYX_SIG,
                1_700_000_000
            ),
            "timestamp"
        );
        assert!(
            !telnyx_valid(
                TELNYX_KEY,
                "1700000000",
                TELNYX_BODY.as_bytes(),
                "",
                1_700_000_000
            ),
            "missing"
        );
        assert!(!telnyx_valid(
            "not base64",
            "1700000000",
            TELNYX_BODY.as_bytes(),
            TELNYX_SIG,
            1_700_000_000
        ));
    }
}
