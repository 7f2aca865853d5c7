//! The `phone-verify` binary: parse the command line, load the configuration, serve.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use phone_verify::{config, startup::Application, telemetry};

/// Self-hosted phone verification: one-time codes by SMS or voice call.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file (default: $PHONE_VERIFY_CONFIG, else ./config.toml if present).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration and exit (0: valid, 2: invalid).
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let path = config::config_path(cli.config);
    let config = match config::load(path.as_ref().map(|(p, _)| p.as_path())) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("phone-verify: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::CheckConfig) = cli.command {
        let source = path.map_or("defaults and environment".into(), |(p, _)| {
            p.display().to_string()
        });
        println!("configuration is valid ({source})");
        return ExitCode::SUCCESS;
    }
    telemetry::init(&config.settings.log);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::from(1)
        }
    }
}

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
