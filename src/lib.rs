//! mfa-recovery: an Azure Functions custom handler that gets a locked-out Microsoft Entra ID
//! user back in without opening a door for an attacker.
//!
//! # Layout
//!
//! ```text
//! main.rs       thin: parse the command line and run it
//! cli.rs        serve (what the host starts), dev, sim, config
//! config.rs     Settings from the environment (docs/configuration.md)
//! telemetry.rs  tracing: JSON lines under a host, readable lines in a terminal
//! audit/        the hash-chained audit trail (blob or directory)
//! auth/         caller authentication: Entra tokens, roles, signed webhooks
//! recovery/     the domain: TAP rules, guardrails, the issue procedure
//! delivery/     SMS (ACS) and email (Graph sendMail) to addresses of record
//! secrets.rs    connector secrets from Key Vault, cached
//! azure.rs      the managed identity credential and Azure SDK seams
//! graph/        Microsoft Graph client (managed identity, retries, OData quoting)
//! host/         the custom-handler protocol: router, envelopes, invocation context, ApiError
//! dev.rs        `mfa-recovery dev`: the function set on the simulated tenant (feature `dev`)
//! ```
//!
//! The simulated tenant is the `mfa-recovery-sim` crate (`sim/`), compiled in only with the
//! `dev` feature; the package deployed to Azure is built without it.

pub mod app;
pub mod audit;
pub mod auth;
pub mod azure;
pub mod cli;
pub mod config;
pub mod delivery;
#[cfg(feature = "dev")]
pub mod dev;
pub mod graph;
pub mod host;
pub mod intake;
pub mod itsm;
pub mod recovery;
pub mod secrets;
pub mod storage;
pub mod sweep;
pub mod telemetry;
pub mod vocab;
