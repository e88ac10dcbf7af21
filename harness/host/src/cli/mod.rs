//! Subcommands: `fuzz` ([`fuzz_cmd`]), `kernel list|fetch|build` ([`kernel_cmd`]), `run`
//! ([`run_cmd`]), `replay`, `repro`, `minimize`, `export-c`, `corpus`, `bisect` ([`bisect_cmd`]),
//! `bench`, `report` ([`report_cmd`]), `data` (where the data files are). Progress goes
//! to stderr through indicatif; results to stdout.

mod bench_cmd;
mod bisect_cmd;
mod corpus_cmd;
mod export_cmd;
mod fuzz_cmd;
mod kernel_cmd;
mod limits;
mod minimize_cmd;
mod progress;
mod repeat_out;
mod replay_cmd;
mod report_cmd;
mod repro_cmd;
mod run_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// The exit statuses, shown under `--help` (and in README.md).
const EXIT_STATUS: &str = "Exit status: 0 clean; 1 a finding (the kernel failed); 2 a harness or \
usage error (not a finding); 3 `bisect` stopped by --max-steps (run it again to resume); \
130 / 143 interrupted by SIGINT (Ctrl-C) / SIGTERM: VMs ended, work directories removed, \
bundles, corpus and bisection state complete or absent (a second signal exits at once, \
without cleaning up).";

#[derive(Debug, Parser)]
#[command(
    name = "shmemfuzz",
    version,
    about = "Record/replay fuzzing of Linux shmem swap paths on real kernels under QEMU",
    after_help = EXIT_STATUS
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the catalog's kernels, fetch Debian's, or build one from a source tree.
    Kernel {
        #[command(subcommand)]
        command: KernelCommand,
    },
    /// Fuzz a kernel for a bounded time: libFuzzer workers guided by the kernel's coverage,
    /// one VM each; findings triaged into bundles by signature.
    Fuzz(fuzz_cmd::FuzzArgs),
    /// Boot a kernel, run a program, print each operation's result and the verdict.
    Run(run_cmd::RunArgs),
    /// Replay a bundle (or a program) on the same or another kernel, diffed per operation.
    Replay(replay_cmd::ReplayArgs),
    /// Replay crash files, corpus directories, programs or bundles; group findings by
    /// signature and write one bundle per distinct finding.
    Repro(repro_cmd::ReproArgs),
    /// Shrink a bundle's program to one that reproduces the same signature; writes a new bundle.
    Minimize(minimize_cmd::MinimizeArgs),
    /// Write a standalone C reproducer of a bundle or program that reports the violation itself.
    #[command(name = "export-c")]
    ExportC(export_cmd::ExportArgs),
    /// Between readable programs and fuzzer corpus files: encode seeds, decode inputs.
    Corpus {
        #[command(subcommand)]
        command: corpus_cmd::CorpusCommand,
    },
    /// Find the first bad git commit or Debian kernel version for a reproducer bundle.
    Bisect(bisect_cmd::BisectArgs),
    /// Write a campaign's report: DIR/report.html (plots over time, findings) and a page
    /// per finding under DIR/report/; static HTML, no external assets.
    Report(report_cmd::ReportArgs),
    /// Print the directory holding shmemfuzz's data files (kernels/known/, examples/, the
    /// catalog, fragments, patches, the mock driver's sources) on stdout, and where they come
    /// from on stderr: the source tree, or the copy built into this binary, written under the
    /// cache when asked for. E.g. `shmemfuzz run "$(shmemfuzz data)/examples/every-op.prog"`.
    Data,
    /// Benchmarks that print figures.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
enum KernelCommand {
    /// The kernels in kernels/catalog.toml and whether each is in the cache.
    List,
    /// Download, verify and unpack a kernel (idempotent).
    Fetch {
        /// Catalog id, e.g. debian-6.1.
        id: String,
        /// Also fetch the headers packages (to build out-of-tree modules).
        #[arg(long)]
        headers: bool,
    },
    /// Build a kernel source tree (or a git revision of it) out of tree with
    /// kernels/configs/base.config and register it as a kernel the other commands accept.
    Build(kernel_cmd::BuildArgs),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Cold boot-to-agent-ready beside the floor (init powers off at once), same kernel.
    Boot {
        /// The kernel to boot (a catalog id or a built kernel; default: the catalog's default).
        #[arg(long)]
        kernel: Option<String>,
        /// Boots each way (floor and ready), alternating.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
        runs: u32,
        /// vCPUs of the guest.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
        smp: u32,
        /// Extra kernel arguments (repeatable), to measure what one changes.
        #[arg(long)]
        append: Vec<String>,
    },
    /// Executions per second of a program through the harness beside a static C loop doing
    /// the same syscalls in the same guest (the floor), and their ratio.
    Exec {
        /// The kernel to run on (a catalog id or a built kernel; default: the catalog's default).
        #[arg(long)]
        kernel: Option<String>,
        /// The program (default: examples/bench-reference.prog, 15 operations).
        #[arg(long)]
        program: Option<PathBuf>,
        /// Rounds, alternating harness and floor.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
        rounds: u32,
        /// Executions per round, each way.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100000))]
        runs: u32,
        /// vCPUs of the guest (the program's operations run on CPU 0 either way).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
        smp: u32,
        /// Extra kernel arguments (repeatable), to measure what one changes.
        #[arg(long)]
        append: Vec<String>,
    },
    /// Executions per second of a fixed corpus of fuzzer-generated programs (bench/corpus/)
    /// through one worker, and where the time goes: figures that compare across commits.
    Corpus {
        /// The kernel to run on (a catalog id or a built kernel; default: the catalog's default).
        #[arg(long)]
        kernel: Option<String>,
        /// The corpus: a directory of .prog files (default: bench/corpus).
        dir: Option<PathBuf>,
        /// Passes over the corpus.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
        rounds: u32,
        /// Instead of measuring: write N programs the fuzzer's decoder makes (covering every
        /// operation kind) into DIR, from --seed. This is how bench/corpus was made.
        #[arg(long, value_name = "N")]
        generate: Option<usize>,
        /// The seed of --generate.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Recovery after a kernel report: cold boot-to-ready beside restoring the snapshot of a
    /// ready guest, per kernel, in one run (each restore follows a run that panicked).
    Recover {
        /// Kernels to measure, each as `ID` or `ID:ARG,ARG` (kernel arguments).
        #[arg(long = "kernel", default_values_t = ["debian-6.1".to_string(), "src-6.1-kasan".to_string()])]
        kernels: Vec<String>,
        /// Cold boots and restores per kernel.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
        runs: u32,
        /// vCPUs of each guest.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
        smp: u32,
    },
    /// Time from a cold start to the first zone finding on a kernel with a planted
    /// regression: campaigns from an empty corpus and from the seeds, median of each.
    Find {
        /// Default: src-6.1 with `--append shmem.planted_no_replace=1`.
        #[arg(long, default_value = "src-6.1")]
        kernel: String,
        /// Extra kernel arguments (repeatable): the planted switch the benchmark looks for.
        #[arg(long, default_value = "shmem.planted_no_replace=1")]
        append: Vec<String>,
        /// Campaigns each way.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
        runs: u32,
        /// Give up on one campaign after this long.
        #[arg(long, default_value = "10m", value_parser = limits::duration)]
        limit: std::time::Duration,
        /// The seed corpus (default: fuzz/corpus/shmem_ops).
        #[arg(long)]
        seeds: Option<PathBuf>,
        /// Skip the empty-corpus campaigns, or the seeded ones.
        #[arg(long, value_parser = ["both", "empty", "seeded"], default_value = "both")]
        corpus: String,
        /// The finding to time: a signature pattern, a prefix unless it has `*` for any run
        /// of characters (`kernel:KASAN:use-after-free` for the planted swapoff/eviction
        /// race, `zone:*:large` for a large folio replaced into the wrong zone). A campaign
        /// runs until a finding matches; others are listed with their times.
        #[arg(long, default_value = "zone:")]
        signature: String,
        /// vCPUs of the worker's guest (`--smp 2` for races: both cores on a 2-core machine).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
        smp: u32,
    },
}

/// Shared `--workdir` handling: a given directory is kept, a temporary one is removed. A
/// given directory is made absolute (QEMU is handed socket and image paths inside it, and a
/// relative one broke the agent's socket) and created if missing.
pub(crate) fn workdir(
    given: Option<PathBuf>,
) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    match given {
        Some(d) => {
            std::fs::create_dir_all(&d).with_context(|| {
                format!("creating the work directory {} (--workdir)", d.display())
            })?;
            let d = std::path::absolute(&d)
                .with_context(|| format!("making --workdir {} absolute", d.display()))?;
            Ok((d, None))
        }
        None => {
            let t = tempfile::Builder::new().prefix("shmemfuzz-").tempdir()?;
            Ok((t.path().to_path_buf(), Some(t)))
        }
    }
}

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Kernel {
            command: KernelCommand::List,
        } => kernel_cmd::list(),
        Command::Kernel {
            command: KernelCommand::Fetch { id, headers },
        } => kernel_cmd::fetch(&id, headers),
        Command::Kernel {
            command: KernelCommand::Build(args),
        } => kernel_cmd::build(args),
        Command::Fuzz(args) => fuzz_cmd::fuzz(args),
        Command::Bisect(args) => bisect_cmd::bisect(args),
        Command::Report(args) => report_cmd::report(args),
        Command::Run(args) => run_cmd::run(args),
        Command::Replay(args) => replay_cmd::replay(args),
        Command::Minimize(args) => minimize_cmd::minimize(args),
        Command::Repro(args) => repro_cmd::repro(args),
        Command::ExportC(args) => export_cmd::export_c(args),
        Command::Corpus { command } => corpus_cmd::corpus(command),
        Command::Data => {
            let ctx = shmemfuzz::kernels::context::Context::new()?;
            let dir = ctx.data_dir()?;
            eprintln!("{}", ctx.describe());
            println!("{}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            command:
                BenchCommand::Boot {
                    kernel,
                    runs,
                    smp,
                    append,
                },
        } => bench_cmd::boot(kernel.as_deref(), runs, smp, &append),
        Command::Bench {
            command: BenchCommand::Recover { kernels, runs, smp },
        } => bench_cmd::recover(&kernels, runs, smp),
        Command::Bench {
            command:
                BenchCommand::Corpus {
                    kernel,
                    dir,
                    rounds,
                    generate,
                    seed,
                },
        } => bench_cmd::corpus(kernel.as_deref(), dir, rounds, generate, seed),
        Command::Bench {
            command:
                BenchCommand::Exec {
                    kernel,
                    program,
                    rounds,
                    runs,
                    smp,
                    append,
                },
        } => bench_cmd::exec(kernel.as_deref(), program, rounds, runs, smp, append),
        Command::Bench {
            command:
                BenchCommand::Find {
                    kernel,
                    append,
                    runs,
                    limit,
                    seeds,
                    corpus,
                    signature,
                    smp,
                },
        } => bench_cmd::find(
            &kernel,
            append,
            bench_cmd::FindPlan {
                runs,
                limit,
                seeds,
                corpus,
                signature: shmemfuzz::fuzzing::sigpattern::SignaturePattern::new(signature),
                smp,
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    /// Every command and every argument of the CLI has help text (clap's own `--help` and
    /// `--version` aside): the help is the reference a user reads first.
    #[test]
    fn every_command_and_argument_has_help() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                let sub_path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(sub_path.clone());
                }
                walk(sub, &sub_path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "shmemfuzz", &mut missing);
        assert!(missing.is_empty(), "without help text: {missing:?}");
    }

    /// A relative `--workdir` comes back absolute and created.
    #[test]
    fn a_relative_workdir_is_made_absolute_and_created() {
        let base = tempfile::tempdir().expect("a temporary directory");
        let rel = std::path::Path::new("target/tmp/shmemfuzz-workdir-test").join(
            base.path()
                .file_name()
                .expect("a temporary directory has a name"),
        );
        let (dir, temp) = super::workdir(Some(rel.clone())).expect("a work directory");
        assert!(temp.is_none(), "a given directory is kept");
        assert!(dir.is_absolute(), "{}", dir.display());
        assert!(dir.is_dir());
        assert!(dir.ends_with(&rel));
        std::fs::remove_dir_all(&dir).expect("removed");
    }
}
