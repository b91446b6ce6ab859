//! mfa-recovery: an Azure Functions custom handler that gets a locked-out Microsoft Entra ID
//! user back in without opening a door for an attacker.
//!
//! The code map, the allowed imports between modules and the invariants are in
//! `ARCHITECTURE.md` at the repository root (`tests/api/architecture.rs` holds the code to it).
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
pub mod doctor;
pub mod graph;
pub mod host;
pub mod intake;
pub mod itsm;
pub mod monitor;
pub mod recovery;
pub mod secrets;
pub mod storage;
pub mod sweep;
pub mod telemetry;
pub mod tls;
pub mod vocab;
