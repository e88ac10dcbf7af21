//! `shmemfuzz corpus add|show`: between readable programs and libFuzzer corpus files.
//!
//! A corpus file is the fuzzer's input: 16-byte operation records
//! (`shmemfuzz_core::program::gen`). `add` encodes programs into a corpus directory (seeds);
//! `show` decodes corpus files, crash files or whole directories back into program text.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use arbitrary::{Arbitrary, Unstructured};
use clap::Subcommand;
use sha2::{Digest, Sha256};
use shmemfuzz::bounded;
use shmemfuzz::context::Context;
use shmemfuzz_core::program::{self, gen::encode, Program};

#[derive(Debug, Subcommand)]
pub enum CorpusCommand {
    /// Encode programs into corpus files (named by their content's hash) in a directory.
    Add {
        /// Program files (text).
        #[arg(required = true)]
        programs: Vec<PathBuf>,
        /// The corpus directory (default: fuzz/corpus/shmem_ops).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Print the program each corpus file (or each file of a directory) decodes to.
    Show {
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
}

pub fn corpus(cmd: CorpusCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CorpusCommand::Add { programs, dir } => {
            let dir = match dir {
                Some(d) => d,
                None => Context::new()?.root.join("fuzz/corpus/shmem_ops"),
            };
            add(&programs, &dir)
        }
        CorpusCommand::Show { inputs } => show(&inputs),
    }
}

/// Encodes every program first and writes only when all of them encode: a bad program among
/// good ones leaves the corpus as it was (each file is written atomically).
fn add(programs: &[PathBuf], dir: &Path) -> anyhow::Result<ExitCode> {
    let mut encoded = Vec::new();
    let mut problems = Vec::new();
    for path in programs {
        match encode_program(path) {
            Ok((bytes, ops)) => encoded.push((path, bytes, ops)),
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("{p}");
        }
        anyhow::bail!(
            "{} of {} program(s) cannot be added: nothing was written to {}",
            problems.len(),
            programs.len(),
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (path, bytes, ops) in encoded {
        let name = hex::encode(&Sha256::digest(&bytes)[..20]);
        let dest = dir.join(&name);
        shmemfuzz::outfile::write_atomic(&dest, &bytes)?;
        println!(
            "{} -> {} ({ops} operations)",
            path.display(),
            dest.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A program file's corpus encoding and its operation count.
fn encode_program(path: &Path) -> anyhow::Result<(Vec<u8>, usize)> {
    let text = bounded::read_text(path, bounded::PROGRAM_MAX)?;
    let p = program::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let bytes = encode(&p).map_err(|e| {
        anyhow::anyhow!(
            "{}: not a fuzzer input ({e}); the decoder makes at most {} operations of at most {} KiB objects (larger only in race sections, as they make them)",
            path.display(),
            program::gen::GEN_MAX_OPS,
            program::gen::GEN_MAX_PAGES * 4
        )
    })?;
    Ok((bytes, p.ops.len()))
}

fn show(inputs: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("listing {}", input.display()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(input.clone());
        }
    }
    let mut out = std::io::stdout().lock();
    for file in files {
        let bytes = bounded::read(&file, bounded::INPUT_MAX)?;
        // Every byte string decodes (the decoder cannot fail on content), so no error path
        // beyond reading the file.
        let p = Program::arbitrary_take_rest(Unstructured::new(&bytes)).unwrap_or_default();
        let shown = writeln!(
            out,
            "# {} ({} bytes, {} operations)\n{p}",
            file.display(),
            bytes.len(),
            p.ops.len()
        );
        if shown.is_err() {
            break; // stdout closed (a pager quit): nothing more to show
        }
    }
    Ok(ExitCode::SUCCESS)
}
