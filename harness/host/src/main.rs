//! `shmemfuzz`: the command-line edge. Errors become messages and exit codes here:
//! 0 clean, 1 a finding (the kernel failed), 2 a harness or usage error, 3 (`bisect` only)
//! stopped by `--max-steps` with the bisection resumable (docs/bisect.md), 130 / 143
//! interrupted by SIGINT / SIGTERM (VMs ended, work directories removed; a second signal
//! exits at once: see `shmemfuzz::interrupt`).

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
    if let Err(e) = shmemfuzz::interrupt::install() {
        eprintln!("shmemfuzz: error: {}", shmemfuzz::error_chain(&e));
        return ExitCode::from(2);
    }
    let result = cli::dispatch(args);
    // An interruption decides the exit status whatever the command made of it: what it left
    // (bundles, corpus, bisection state) is complete, but the command did not finish.
    if let Some(i) = shmemfuzz::interrupt::requested() {
        if let Err(e) = &result {
            if !e
                .chain()
                .any(|c| c.is::<shmemfuzz::interrupt::Interrupted>())
            {
                eprintln!("shmemfuzz: error: {e:#}");
            }
        }
        eprintln!(
            "shmemfuzz: interrupted by {}: stopped; VMs ended, work directories removed",
            i.signal
        );
        return ExitCode::from(i.exit_code());
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("shmemfuzz: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
