//! Progress display: one indicatif spinner per long step, driven by the library's events.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use shmemfuzz::kernels::context::PrepareEvent;
use shmemfuzz::kernels::kbuild::KbuildEvent;
use shmemfuzz::kernels::kernel::FetchEvent;

pub fn spinner(msg: impl Into<String>) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.enable_steady_tick(Duration::from_millis(120));
    pb.set_message(msg.into());
    pb
}

/// A callback for kernel fetches that updates `pb`.
pub fn fetch_events(pb: &ProgressBar) -> impl Fn(FetchEvent) + '_ {
    move |ev| match ev {
        FetchEvent::Downloading { package } => pb.set_message(format!("downloading {package}")),
        FetchEvent::Verifying => pb.set_message("verifying sha256"),
        FetchEvent::Unpacking => pb.set_message("unpacking"),
        FetchEvent::Done => pb.set_message("fetched"),
        FetchEvent::AlreadyCached => pb.set_message("cached"),
    }
}

/// A callback for preparing a kernel (fetch or build, then the mock driver) that updates `pb`.
pub fn prepare_events(pb: &ProgressBar) -> impl Fn(PrepareEvent) + '_ {
    let fetch = fetch_events(pb);
    move |ev| match ev {
        PrepareEvent::Fetch(f) => fetch(f),
        PrepareEvent::Build(step) => pb.set_message(format!("building the kernel: {step}")),
        PrepareEvent::Module => pb.set_message("building the mock GMA500 driver"),
    }
}

/// A callback for kernel builds: the step, or make's latest output line.
pub fn kbuild_events(pb: &ProgressBar) -> impl Fn(KbuildEvent) + '_ {
    move |ev| match ev {
        KbuildEvent::Output { line } => pb.set_message(format!("building: {}", line.trim())),
        KbuildEvent::UpToDate => pb.set_message("up to date"),
        other => pb.set_message(format!("{other:?}")),
    }
}
