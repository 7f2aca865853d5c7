//! Black-box tests: the real binary on a random port, driven over HTTP.

mod abuse;
mod browser;
mod chrome;
mod config;
mod deploy;
mod docker;
mod flow;
mod helpers;
mod json_api;
mod limits;
mod locales;
mod oidc;
mod owned;
mod providers;
mod redis;
mod security;
mod seed_compat;
mod slow_clients;
mod twilio_compat;
