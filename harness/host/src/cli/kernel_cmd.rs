//! `shmemfuzz kernel list`, `shmemfuzz kernel fetch <id>` and `shmemfuzz kernel build --src
//! DIR` (any tree or git revision, registered as `tree-<commit>-<config>`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use shmemfuzz::context::Context;
use shmemfuzz::kbuild::{build_src, default_jobs, SrcBuild};
use shmemfuzz::kernel::archive;

use super::progress::{fetch_events, kbuild_events, spinner};

pub fn list() -> anyhow::Result<ExitCode> {
    let ctx = Context::new()?;
    // Whether each pin is still in apt's lists: local, bounded, "unknown" without apt.
    let available = archive::query(&ctx.catalog.kernels, archive::QUERY_TIMEOUT);
    let presence = archive::presence(&ctx.catalog.kernels, available.as_deref());
    println!(
        "{:<18} {:<26} {:<22} {:<8} {:<12} description",
        "id", "release", "version", "cached", "archive"
    );
    for e in &ctx.catalog.kernels {
        let id = if e.default {
            format!("{} *", e.id)
        } else {
            e.id.clone()
        };
        let cached = if ctx.cache.is_fetched(e) { "yes" } else { "no" };
        let in_archive = presence
            .get(&e.id)
            .map_or("unknown", archive::Presence::label);
        println!(
            "{id:<18} {:<26} {:<22} {cached:<8} {in_archive:<12} {}",
            e.release, e.image.version, e.description
        );
    }
    for k in &ctx.catalog.sources {
        println!(
            "{:<18} {:<26} {:<22} {:<8} {:<12} linux-source-{} + {} + kernels/regressions/{}: {}",
            k.id,
            "-",
            "-",
            "-",
            "-",
            k.series,
            k.fragments.join(" + "),
            k.patch_dir(),
            k.description
        );
    }
    for r in shmemfuzz::kbuild::registered(&ctx.cache_dir) {
        println!(
            "{:<18} {:<26} {:<22} {:<8} {:<12} `kernel build` of {}",
            r.id,
            r.release,
            "-",
            "built",
            "-",
            r.source.display()
        );
    }
    for e in &ctx.catalog.kernels {
        if let Some(archive::Presence::HeadersGone(missing)) = presence.get(&e.id) {
            println!("{}: not in the archive: {}", e.id, missing.join(", "));
        }
    }
    println!("(* the default kernel; archive: whether apt's lists still hold the pinned versions — \"gone\": fetching falls back to the newest of the line, re-pin in kernels/catalog.toml)");
    Ok(ExitCode::SUCCESS)
}

pub fn fetch(id: &str, headers: bool) -> anyhow::Result<ExitCode> {
    let ctx = Context::new()?;
    if ctx.catalog.source(id).is_some() {
        // A `[[source]]` kernel: "fetching" it is building it (cached after the first time),
        // with its mock driver, as any command that runs it would.
        let pb = spinner(format!(
            "building {id} (minutes the first time; cached after)"
        ));
        let prepared = ctx.prepare(Some(id), &super::progress::prepare_events(&pb))?;
        pb.finish_and_clear();
        let k = &prepared.kernel;
        println!("{id}: {} at {}", k.release, k.bzimage.display());
        return Ok(ExitCode::SUCCESS);
    }
    let entry = ctx.catalog.get(id)?;
    let pb = spinner(format!("fetching {id}"));
    let k = ctx.cache.fetch(entry, &fetch_events(&pb))?;
    if headers {
        let dir = ctx.cache.fetch_headers(entry, &fetch_events(&pb))?;
        pb.finish_and_clear();
        println!("headers: {}", dir.display());
    } else {
        pb.finish_and_clear();
    }
    println!("{id}: {} at {}", k.release, k.bzimage.display());
    Ok(ExitCode::SUCCESS)
}

/// `shmemfuzz kernel build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The kernel source tree (a git checkout or an unpacked tarball).
    #[arg(long)]
    src: PathBuf,
    /// Build this git revision (in a worktree shmemfuzz owns) instead of the tree as it is.
    #[arg(long)]
    rev: Option<String>,
    /// Config fragments merged after kernels/configs/base.config, in order (repeatable),
    /// e.g. kernels/configs/debug.config.
    #[arg(long = "config", value_name = "FRAGMENT")]
    configs: Vec<PathBuf>,
    /// make -j (default: CPUs + 1).
    #[arg(short = 'j', long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    jobs: Option<u32>,
    /// Wall-time limit of the build, in seconds.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=604800))]
    timeout: u64,
}

/// base.config, then the user's fragments.
pub(super) fn fragments(ctx: &Context, extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut f = vec![ctx.root.join("kernels/configs/base.config")];
    f.extend(extra.iter().cloned());
    f
}

pub fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let ctx = Context::new()?;
    let spec = SrcBuild {
        src: args.src.clone(),
        rev: args.rev.clone(),
        fragments: fragments(&ctx, &args.configs),
        jobs: args.jobs.unwrap_or_else(default_jobs),
        timeout: Duration::from_secs(args.timeout),
    };
    let pb = spinner(format!("building {}", args.src.display()));
    let built = build_src(&ctx.cache_dir, &spec, &kbuild_events(&pb))?;
    pb.set_message("building the mock GMA500 driver against the tree");
    let r = &built.registered;
    ctx.mock_module_for_tree(&r.build_dir, &r.release)?;
    pb.finish_and_clear();
    println!("kernel {}", r.id);
    println!("  release     {}", r.release);
    if let Some(c) = &r.commit {
        println!(
            "  commit      {c}{}",
            if r.dirty {
                " (with uncommitted changes)"
            } else {
                ""
            }
        );
    }
    println!("  config hash {}", r.config_hash);
    println!("  build dir   {}", r.build_dir.display());
    println!(
        "  bzImage     {} (sha256 {})",
        built.output.bzimage.display(),
        r.bzimage_sha256
    );
    println!(
        "  built in {:.0} s{}",
        built.build_secs,
        if built.output.ran_make {
            ""
        } else {
            " (up to date)"
        }
    );
    println!("use it with: shmemfuzz run PROGRAM --kernel {}", r.id);
    Ok(ExitCode::SUCCESS)
}
