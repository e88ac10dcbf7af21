//! `shmemfuzz`: the command-line edge. Errors become messages and exit codes here:
//! 0 clean, 1 a finding (the kernel failed), 2 a harness or usage error, 3 (`bisect` only)
//! stopped by `--max-steps` with the bisection resumable (docs/bisect.md).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SHMEMFUZZ_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli::dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("shmemfuzz: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
