//! `shmemfuzz kernel list` and `shmemfuzz kernel fetch <id>`.

use std::process::ExitCode;

use shmemfuzz::context::Context;

use super::progress::{fetch_events, spinner};

pub fn list() -> anyhow::Result<ExitCode> {
    let ctx = Context::new()?;
    println!(
        "{:<18} {:<26} {:<22} {:<8} description",
        "id", "release", "version", "cached"
    );
    for e in &ctx.catalog.kernels {
        let id = if e.default {
            format!("{} *", e.id)
        } else {
            e.id.clone()
        };
        let cached = if ctx.cache.is_fetched(e) { "yes" } else { "no" };
        println!(
            "{id:<18} {:<26} {:<22} {cached:<8} {}",
            e.release, e.image.version, e.description
        );
    }
    for (id, series) in shmemfuzz::context::SOURCE_KERNELS {
        println!("{id:<18} {:<26} {:<22} {:<8} built from Debian's linux-source-{series} + kernels/configs + kernels/regressions", "-", "-", "-");
    }
    println!("(* the default kernel)");
    Ok(ExitCode::SUCCESS)
}

pub fn fetch(id: &str, headers: bool) -> anyhow::Result<ExitCode> {
    let ctx = Context::new()?;
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
