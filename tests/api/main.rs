//! End-to-end tests of the function app: the host contract, invocations, the built binary and
//! `mfa-recovery dev`.

mod approval;
mod architecture;
mod audit;
mod auth;
mod azurite;
mod binary;
mod confirm;
mod connector;
mod console;
mod cost;
mod defaults_agree;
mod dev_command;
mod docs_agree;
mod doctor;
mod export;
mod graph_client;
mod guardrails;
mod helpers;
mod host_contract;
mod infra;
mod intake;
mod intake_attacks;
mod intake_azurite;
mod invocations;
mod openapi;
mod permissions;
mod properties;
mod recipes;
mod reset;
mod sentinel;
mod sweep;
mod tap;
mod verification;
mod webhooks;
mod witness;
