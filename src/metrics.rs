//! Prometheus metrics, kept in memory per process and rendered as text: verifications
//! started, checks, sends per provider and outcome, provider latency, store errors.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the provider latency histogram.
const BUCKETS: [f64; 10] = [
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    f64::INFINITY,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Inner {
    /// metric → label string → value.
    counters: BTreeMap<&'static str, BTreeMap<String, u64>>,
    latency: BTreeMap<String, Histogram>,
    /// Estimated spend in millionths, by label string.
    spend: BTreeMap<String, u64>,
}

/// The process's metrics.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// `name="value",…`: a series' label string, joined without `format!` on every count.
fn labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(64);
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        out.push_str(value);
        out.push('"');
    }
    out
}

/// Adds `by` to the series `labels` of `map`; a new series keeps the string.
fn bump(map: &mut BTreeMap<String, u64>, labels: String, by: u64) {
    match map.get_mut(&labels) {
        Some(value) => *value += by,
        None => {
            map.insert(labels, by);
        }
    }
}

impl Metrics {
    fn add(&self, name: &'static str, pairs: &[(&str, &str)]) {
        let labels = labels(pairs);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        bump(inner.counters.entry(name).or_default(), labels, 1);
    }

    /// A verification started (a code was sent) on `channel`.
    pub fn verification_started(&self, channel: &str) {
        self.add(
            "phone_verify_verifications_started_total",
            &[("channel", channel)],
        );
    }

    /// A check ended with `result` (`valid`, `invalid`, `not_pending`, `locked`,
    /// `not_found`, `provider_unavailable`).
    pub fn check(&self, result: &str) {
        self.add("phone_verify_checks_total", &[("result", result)]);
    }

    /// A send through `provider` ended with `outcome`, after `elapsed`.
    pub fn send(&self, provider: &str, outcome: &str, elapsed: Duration) {
        self.add(
            "phone_verify_sends_total",
            &[("provider", provider), ("outcome", outcome)],
        );
        self.observe(provider, elapsed);
    }

    /// A provider that owns its codes was asked to check one: `answered` or `unanswered`.
    pub fn provider_check(&self, provider: &str, outcome: &str, elapsed: Duration) {
        self.add(
            "phone_verify_provider_checks_total",
            &[("provider", provider), ("outcome", outcome)],
        );
        self.observe(provider, elapsed);
    }

    /// A provider request's latency.
    fn observe(&self, provider: &str, elapsed: Duration) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !inner.latency.contains_key(provider) {
            inner
                .latency
                .insert(provider.to_string(), Histogram::default());
        }
        let histogram = inner.latency.get_mut(provider).expect("inserted above");
        let secs = elapsed.as_secs_f64();
        for (bound, count) in BUCKETS.iter().zip(histogram.counts.iter_mut()) {
            if secs <= *bound {
                *count += 1;
            }
        }
        histogram.sum += secs;
        histogram.count += 1;
    }

    /// A start refused by the fraud guard, by destination country.
    pub fn fraud_block(&self, country: &str) {
        self.add("phone_verify_fraud_blocks_total", &[("country", country)]);
    }

    /// The estimated cost of one send, in millionths of the budget's currency.
    pub fn estimated_spend(&self, country: &str, channel: &str, micros: u64) {
        let labels = labels(&[("country", country), ("channel", channel)]);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        bump(&mut inner.spend, labels, micros);
    }

    /// A store call failed (unreachable, timed out, unreadable).
    pub fn store_error(&self) {
        self.add("phone_verify_store_errors_total", &[]);
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        let families = [
            (
                "phone_verify_verifications_started_total",
                "Verifications started, by channel.",
            ),
            ("phone_verify_checks_total", "Code checks, by result."),
            (
                "phone_verify_sends_total",
                "Delivery attempts, by provider and outcome.",
            ),
            (
                "phone_verify_provider_checks_total",
                "Checks asked of providers that own their codes, by provider and outcome.",
            ),
            (
                "phone_verify_store_errors_total",
                "Store calls that failed.",
            ),
            (
                "phone_verify_fraud_blocks_total",
                "Starts refused by the fraud guard, by destination country.",
            ),
        ];
        for (name, help) in families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let series = inner.counters.get(name);
            for (labels, value) in series.into_iter().flatten() {
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {value}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {value}");
                }
            }
            if series.is_none() && name == "phone_verify_store_errors_total" {
                let _ = writeln!(out, "{name} 0");
            }
        }
        let name = "phone_verify_estimated_spend_total";
        let _ = writeln!(
            out,
            "# HELP {name} Estimated cost of the sends this instance made, by country and channel.\n# TYPE {name} counter"
        );
        for (labels, micros) in &inner.spend {
            let _ = writeln!(out, "{name}{{{labels}}} {}", *micros as f64 / 1_000_000.0);
        }
        let name = "phone_verify_provider_request_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time taken by provider requests.\n# TYPE {name} histogram"
        );
        for (provider, h) in &inner.latency {
            for (bound, count) in BUCKETS.iter().zip(h.counts) {
                let le = if bound.is_infinite() {
                    "+Inf".to_string()
                } else {
                    bound.to_string()
                };
                let _ = writeln!(
                    out,
                    "{name}_bucket{{provider=\"{provider}\",le=\"{le}\"}} {count}"
                );
            }
            let _ = writeln!(out, "{name}_sum{{provider=\"{provider}\"}} {}", h.sum);
            let _ = writeln!(out, "{name}_count{{provider=\"{provider}\"}} {}", h.count);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_in_prometheus_text() {
        let m = Metrics::default();
        m.verification_started("sms");
        m.verification_started("sms");
        m.check("valid");
        m.send("twilio", "sent", Duration::from_millis(300));
        m.store_error();
        m.estimated_spend("US", "sms", 7_500);
        m.estimated_spend("US", "sms", 7_500);
        m.fraud_block("LV");
        let text = m.render();
        assert!(
            text.contains(
                "phone_verify_estimated_spend_total{country=\"US\",channel=\"sms\"} 0.015"
            ),
            "{text}"
        );
        assert!(text.contains("phone_verify_fraud_blocks_total{country=\"LV\"} 1"));
        assert!(
            text.contains("phone_verify_verifications_started_total{channel=\"sms\"} 2"),
            "{text}"
        );
        assert!(text.contains("phone_verify_checks_total{result=\"valid\"} 1"));
        assert!(text.contains("phone_verify_sends_total{provider=\"twilio\",outcome=\"sent\"} 1"));
        assert!(text.contains("phone_verify_store_errors_total 1"));
        assert!(text.contains(
            "phone_verify_provider_request_seconds_bucket{provider=\"twilio\",le=\"0.25\"} 0"
        ));
        assert!(text.contains(
            "phone_verify_provider_request_seconds_bucket{provider=\"twilio\",le=\"0.5\"} 1"
        ));
        assert!(text.contains(
            "phone_verify_provider_request_seconds_bucket{provider=\"twilio\",le=\"+Inf\"} 1"
        ));
        assert!(
            text.contains("phone_verify_provider_request_seconds_count{provider=\"twilio\"} 1")
        );
        assert!(text.contains("# TYPE phone_verify_provider_request_seconds histogram"));
    }
}
