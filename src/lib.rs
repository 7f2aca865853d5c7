//! phone-verify: a self-hosted phone verification service. See README.md.

pub mod channels;
pub mod code;
pub mod config;
pub mod domain;
pub mod i18n;
pub mod metrics;
pub mod oidc;
pub mod phone;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod testing;
pub mod verification;
pub mod web;
