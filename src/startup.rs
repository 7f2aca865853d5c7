//! Assembly: builds the state from settings, binds the listener and runs the server.
//! The only module that knows every other one.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::BoxBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;

use crate::channels::Channels;
use crate::code::{CodeHasher, CodeSealer, derive_key};
use crate::config::{Config, StoreBackend};
use crate::metrics::Metrics;
use crate::oidc::SigningKey;
use crate::store::VerificationStore;
use crate::store::memory::TokenStorage;
use crate::store::redis::RedisStore;
use crate::verification::{Policy, SystemClock, Verifier};
use crate::web::deadline::{self, RequestTimeout};
use crate::web::session::SessionConfig;
use crate::web::{self as routes, AppState, Listeners, headers, pages};

/// A bound, ready-to-run server.
pub struct Application {
    address: std::net::SocketAddr,
    metrics_address: Option<std::net::SocketAddr>,
    server: Server,
}

impl Application {
    /// Builds the state and binds `server.bind` (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let state = web::Data::new(build_state(&config).await?);
        let settings = &config.settings;
        let listener = TcpListener::bind(config.bind)
            .with_context(|| format!("cannot listen on {}", config.bind))?;
        let address = listener.local_addr()?;
        let metrics_listener = config
            .metrics_bind
            .map(|bind| {
                TcpListener::bind(bind)
                    .with_context(|| format!("cannot listen on {bind} (server.metrics_bind)"))
            })
            .transpose()?;
        let metrics_address = metrics_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        let listeners = Listeners {
            metrics: metrics_address,
        };
        let static_dir = settings.server.static_dir.clone();
        let optional = routes::OptionalRoutes {
            oidc: config.oidc.is_some(),
            twilio_compat: settings.twilio_compat.enabled,
            signalwire: settings.compat.signalwire_routes,
            plivo: settings.compat.plivo_routes,
        };
        if !static_dir.is_dir() {
            tracing::warn!(dir = %static_dir.display(), "server.static_dir does not exist; pages will have no styles");
        }
        let timeout = Duration::from_secs(settings.server.request_timeout_secs);
        let server = HttpServer::new(move || {
            let static_dir = static_dir.clone();
            App::new()
                .app_data(state.clone())
                .app_data(RequestTimeout(timeout))
                .app_data(listeners)
                .wrap(from_fn(pages::render_errors))
                .wrap(from_fn(headers::split_listeners))
                .wrap(from_fn(deadline::bound_requests))
                .wrap(from_fn(headers::security_headers))
                .wrap(from_fn(log_request))
                .configure(move |cfg| routes::configure(cfg, &static_dir, optional))
        })
        .client_request_timeout(timeout)
        .max_connections(settings.server.max_connections)
        .on_connect(move |connection, data| deadline::watch(connection, data, timeout))
        .shutdown_timeout(10)
        .listen(listener)?;
        let server = match metrics_listener {
            Some(metrics) => server.listen(metrics)?,
            None => server,
        }
        .run();
        Ok(Self {
            address,
            metrics_address,
            server,
        })
    }

    /// Where `/metrics` is served, when `server.metrics_bind` gives it its own address.
    pub fn metrics_address(&self) -> Option<std::net::SocketAddr> {
        self.metrics_address
    }

    /// The address actually bound (with the real port when `server.bind` asked for 0).
    pub fn address(&self) -> std::net::SocketAddr {
        self.address
    }

    /// Serves until SIGTERM or Ctrl-C, then finishes in-flight requests and returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// The key Redis stores seal numbers into verification ids with (see `store::ids`).
fn redis_id_key(secret: &[u8]) -> [u8; 16] {
    let key = derive_key(secret, "phone-verify redis verification ids");
    key[..16].try_into().expect("16 of the 32 bytes")
}

/// Builds the shared state: keys, store, channels, verifier.
pub async fn build_state(config: &Config) -> anyhow::Result<AppState> {
    let settings = &config.settings;
    let secret = if settings.server.secret.is_empty() {
        tracing::warn!(
            "server.secret is empty: using a random secret for this process; sessions and codes \
             do not survive a restart, and several instances would not agree"
        );
        crate::code::random_hex(32).into_bytes()
    } else {
        settings.server.secret.expose().as_bytes().to_vec()
    };
    let metrics = Arc::new(Metrics::default());
    let retain_ended = Duration::from_secs(settings.verification.retain_ended_secs);
    let policy = Policy::new(config);
    // The longest the earlier Redis layout kept any of a number's keys.
    let earlier_layout_lasted = [
        policy.ttl + retain_ended,
        policy.send.number_window,
        policy.send.cooldown,
        policy.check.lockout,
    ]
    .into_iter()
    .max()
    .unwrap_or_default();
    let store: Arc<dyn VerificationStore> = match settings.store.backend {
        StoreBackend::Memory => Arc::new(TokenStorage::new().retaining(retain_ended)),
        StoreBackend::Redis => Arc::new(
            RedisStore::connect(
                &settings.store.redis_url,
                settings.store.redis_cluster,
                config.key_prefix.as_str(),
                metrics.clone(),
            )
            .await
            .context("cannot set up the redis store")?
            .retaining(retain_ended)
            .earlier_layout_lasted(earlier_layout_lasted)
            .naming_ids_with(redis_id_key(&secret)),
        ),
    };
    let channels = Channels::from_settings(settings)?;
    if channels.uses_console() {
        tracing::warn!(
            "the console provider prints codes to standard output: for development only"
        );
    }
    if !config.test_numbers.is_empty() {
        tracing::warn!(
            count = config.test_numbers.len(),
            "verification.test_numbers is set: these numbers take a fixed code and are never \
             sent anything; keep them out of production unless an app review needs them"
        );
    }
    let clock: Arc<dyn crate::verification::Clock> = Arc::new(SystemClock);
    let session_ttl = Duration::from_secs(settings.server.session_ttl_secs);
    let oidc = match &config.oidc {
        Some(oidc) => {
            let key = match &oidc.signing_key {
                Some(key) => SigningKey::from_secret_key(key)?,
                None => SigningKey::derive(&secret)?,
            };
            tracing::info!(issuer = %oidc.issuer, kid = key.kid(), "OpenID Connect provider on");
            Some(crate::oidc::Provider::new(
                oidc,
                key,
                derive_key(&secret, "phone-verify oidc subject"),
                session_ttl,
                store.clone(),
                clock.clone(),
            ))
        }
        None => None,
    };
    let verifier = Verifier::new(
        store,
        channels,
        CodeHasher::new(derive_key(&secret, "phone-verify code hash")),
        CodeSealer::new(derive_key(&secret, "phone-verify voice tickets")),
        clock,
        policy,
        metrics,
    );
    if channels_need_public_url(&verifier) {
        tracing::warn!(
            "SignalWire and Plivo calls fetch their instructions from server.public_url, \
             which is a loopback address: set it to an address the provider can reach"
        );
    }
    let https = config.public_url.is_https();
    Ok(AppState {
        verifier,
        public_origin: config.public_url.origin().to_string(),
        api_keys: settings.api.keys.clone(),
        twilio_compat: settings.twilio_compat.enabled.then(|| {
            routes::twilio_compat::TwilioCompat {
                account_sid: settings.twilio_compat.account_sid.clone(),
                auth_token: settings.twilio_compat.auth_token.clone(),
                service_sid: settings.twilio_compat.service_sid.clone(),
            }
        }),
        sessions: SessionConfig::new(
            derive_key(&secret, "phone-verify cookies"),
            derive_key(&secret, "phone-verify browser binding"),
            https,
            session_ttl,
        ),
        trusted_proxies: config.trusted_proxies.clone(),
        hsts: https,
        metrics_token: (!settings.server.metrics_token.is_empty())
            .then(|| settings.server.metrics_token.clone()),
        oidc,
    })
}

fn channels_need_public_url(verifier: &Verifier) -> bool {
    verifier.calls_fetch_instructions() && verifier.policy().callback_base.is_none()
}

/// One log line per request: method, route pattern (never the raw path: no numbers or
/// codes in logs), status and duration.
async fn log_request(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let res = next.call(req).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "(unmatched)".into());
    tracing::info!(
        method,
        route,
        status = res.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    Ok(res)
}
