//! `mfa-recovery`: see `lib.rs` for the layout.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // First: the TLS roots load beside the whole start (src/tls.rs), ready for the first recovery.
    mfa_recovery::tls::warm_early();
    let cli = mfa_recovery::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mfa-recovery: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(mfa_recovery::cli::run(cli))
}
