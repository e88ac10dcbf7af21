//! `shmemfuzz export-c BUNDLE|PROGRAM [-o FILE] [--kselftest]`: a standalone, readable C
//! reproducer that reports the violation itself when run in a guest, or the same as a
//! kselftest for `tools/testing/selftests/mm` (see `shmemfuzz_core::export_c`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use shmemfuzz::files::outfile;
use shmemfuzz_core::export_c::{export, ExportOptions};

use shmemfuzz::kernels::data::MOCK_UAPI_HEADER as UAPI_TEXT;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A bundle directory or a program file.
    input: PathBuf,
    /// Write the C file here (default: stdout). Never the input or a file inside the input
    /// bundle; an existing file only with --force.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Replace an existing output file.
    #[arg(long, requires = "output")]
    force: bool,
    /// `#include "gma500_mock_drm.h"` instead of pasting the header in.
    #[arg(long)]
    include_uapi: bool,
    /// Accept the test-only operations (`corrupt`, `sysrq`).
    #[arg(long)]
    allow_test_ops: bool,
    /// Write a kselftest for tools/testing/selftests/mm: TAP 13 output, exit KSFT_PASS (0),
    /// KSFT_FAIL (1), or KSFT_SKIP (4) with the reason when the guest lacks the mock driver
    /// or swap.
    #[arg(long)]
    kselftest: bool,
}

pub fn export_c(args: ExportArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.output {
        // Before any work: a refused output costs nothing.
        outfile::check(path, &[&args.input], args.force)?;
    }
    let (program, bundle) = super::replay_cmd::load(&args.input)?;
    let recorded = bundle.as_ref().map(|b| &b.contents);
    let opts = ExportOptions {
        inline_uapi: (!args.include_uapi).then(|| UAPI_TEXT.to_string()),
        signature: recorded.and_then(|c| c.signature.clone()),
        source: Some(args.input.display().to_string()),
        kernel: recorded.map(|c| {
            let mut k = format!("{} ({})", c.kernel.id, c.kernel.release);
            if !c.append.is_empty() {
                k.push_str(", booted with ");
                k.push_str(&c.append.join(" "));
            }
            k
        }),
        allow_test_ops: args.allow_test_ops,
        kselftest: args.kselftest,
        ..ExportOptions::default()
    };
    let c = export(&program, &opts)?;
    match &args.output {
        Some(path) => {
            outfile::write_new(path, &[&args.input], args.force, c.as_bytes())?;
            let kind = if args.kselftest {
                "kselftest"
            } else {
                "reproducer"
            };
            eprintln!(
                "wrote the {kind} {} (build: gcc -static -O2 -Wall -o repro {})",
                path.display(),
                path.display()
            );
        }
        None => print!("{c}"),
    }
    Ok(ExitCode::SUCCESS)
}
