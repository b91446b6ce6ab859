//! Command line: `serve` (what the Functions host starts), `dev`, `sim` and `config`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::host::{self, Application, HostOptions};
use crate::telemetry;

/// Get locked-out Microsoft Entra ID users back in, safely.
#[derive(Debug, Parser)]
#[command(name = "mfa-recovery", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run as the Azure Functions custom handler (the default: what the host starts).
    Serve,
    /// Check the configuration from the environment and print it (no secrets are settings).
    Config,
    /// Run the whole function set locally against the simulated tenant.
    #[cfg(feature = "dev")]
    Dev(crate::dev::DevArgs),
    /// Run the simulated tenant alone.
    #[cfg(feature = "dev")]
    Sim(crate::dev::SimArgs),
}

/// Run the command line.
pub async fn run(cli: Cli) -> ExitCode {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Config => match Settings::from_env() {
            Ok(settings) => {
                println!("{settings:#?}");
                ExitCode::SUCCESS
            }
            Err(e) => config_error(&e),
        },
        #[cfg(feature = "dev")]
        Command::Dev(args) => report(crate::dev::run(args).await),
        #[cfg(feature = "dev")]
        Command::Sim(args) => report(crate::dev::run_sim(args).await),
    }
}

fn config_error(e: &crate::config::ConfigError) -> ExitCode {
    eprintln!("mfa-recovery: configuration error: {e}");
    eprintln!("See docs/configuration.md for every setting and its default.");
    ExitCode::from(2)
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mfa-recovery: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => return config_error(&e),
    };
    telemetry::init(settings.log_format);
    let app = match Application::build(settings, HostOptions::default()).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "start-up failed");
            return ExitCode::FAILURE;
        }
    };
    report(app.run_until_stopped(host::shutdown_signal()).await.map_err(Into::into))
}
