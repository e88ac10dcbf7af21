//! `shmemfuzz report DIR`: a campaign's output directory as a static HTML page
//! ([`shmemfuzz::report`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The campaign's output directory (`shmemfuzz fuzz --out`, default fuzz/findings).
    dir: PathBuf,
}

pub fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let page = shmemfuzz::report::write(&args.dir)?;
    println!("{}", page.display());
    Ok(ExitCode::SUCCESS)
}
