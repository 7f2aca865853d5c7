//! The `phone-verify` binary: parse the command line, read `.env`, load the
//! configuration, serve (or check the configuration, or probe a running instance).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use phone_verify::{config, startup::Application, telemetry};

/// Self-hosted phone verification: one-time codes by SMS or voice call.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file (default: $PHONE_VERIFY_CONFIG, else ./config.toml if present).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Environment file read before the environment, which wins over it (default: ./.env
    /// if present).
    #[arg(long, global = true, value_name = "PATH")]
    env_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration and exit (0: valid, 2: invalid).
    CheckConfig,
    /// Ask the instance this configuration describes for `/healthz` (0: healthy, 1: not),
    /// for container health checks.
    Healthcheck,
}

fn main() -> ExitCode {
    map_large_allocations();
    let cli = Cli::parse();
    let env_file = match read_env_file(cli.env_file) {
        Ok(path) => path,
        Err(error) => {
            eprintln!("phone-verify: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    let path = config::config_path(cli.config);
    let config = match config::load(path.as_ref().map(|(p, _)| p.as_path())) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("phone-verify: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Some(Command::CheckConfig) => {
            let mut sources: Vec<String> =
                path.iter().map(|(p, _)| p.display().to_string()).collect();
            sources.extend(env_file.iter().map(|p| p.display().to_string()));
            sources.push("environment".into());
            println!("configuration is valid ({})", sources.join(", "));
            return ExitCode::SUCCESS;
        }
        Some(Command::Healthcheck) => return healthcheck(config.bind),
        None => {}
    }
    telemetry::init(&config.settings.log);
    if let Some(path) = &env_file {
        tracing::info!(file = %path.display(), "read environment file");
    }
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::from(1)
        }
    }
}

/// Reads `--env-file PATH`, or `./.env` when present, into the environment, under what
/// the environment already holds: the file < the environment < the command line.
fn read_env_file(cli: Option<PathBuf>) -> Result<Option<PathBuf>, config::ConfigError> {
    let Some(path) = config::env_file_path(cli)? else {
        return Ok(None);
    };
    let vars = config::read_env_file(&path)?;
    for (name, value) in config::env_file_defaults(vars, |name| std::env::var_os(name).is_some()) {
        // SAFETY: nothing else runs yet: no thread has been started, and nothing reads
        // the environment concurrently.
        unsafe { std::env::set_var(name, value) };
    }
    Ok(Some(path))
}

/// `GET /healthz` on the configured address (a wildcard bind is asked on loopback).
fn healthcheck(bind: SocketAddr) -> ExitCode {
    let ip = match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let address = SocketAddr::new(ip, bind.port());
    let probe = || -> std::io::Result<bool> {
        let timeout = Duration::from_secs(3);
        let mut stream = TcpStream::connect_timeout(&address, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        write!(
            stream,
            "GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
        )?;
        let mut answer = Vec::new();
        stream.take(4096).read_to_end(&mut answer)?;
        Ok(answer.starts_with(b"HTTP/1.1 200"))
    };
    match probe() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("phone-verify: {address} answered /healthz with an error");
            ExitCode::from(1)
        }
        Err(error) => {
            eprintln!("phone-verify: {address} did not answer /healthz: {error}");
            ExitCode::from(1)
        }
    }
}

/// Large allocations (the memory store's tables) always get a mapping of their own, so a
/// table freed after a burst goes back to the system. glibc otherwise raises this
/// threshold each time such a block is freed; the next tables then land in its arenas,
/// which keep them resident after they are freed (measured in BENCHMARKS.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn map_large_allocations() {
    // SAFETY: sets an allocator parameter before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn map_large_allocations() {}

async fn serve(config: config::Config) -> anyhow::Result<()> {
    let public_url = config.settings.server.public_url.clone();
    let app = Application::build(config).await?;
    tracing::info!(%public_url, "listening on http://{}", app.address());
    if let Some(metrics) = app.metrics_address() {
        tracing::info!("metrics on http://{metrics}/metrics");
    }
    app.run_until_stopped().await?;
    tracing::info!("stopped");
    Ok(())
}
