//! The real [`Probe`]s: kernels built from git revisions ([`GitKernels`]) or Debian kernel
//! packages ([`DebianKernels`]), each replaying the bundle's program in QEMU with the
//! bundle's session options ([`Replayer`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use shmemfuzz_core::program::Program;

use super::{BisectError, Build, Probe, Replay};
use crate::bundle::BundleContents;
use crate::context::{Context, ContextError, PreparedKernel};
use crate::kbuild::{build_src, KbuildError, KbuildEvent, SrcBuild};
use crate::reproduce::replay_counting;
use crate::runner::Runner;
use crate::session::{SessionError, SessionOptions};

/// Replays a bundle's program on the kernel last made ready.
#[derive(Debug)]
pub struct Replayer {
    program: Program,
    target: String,
    bundle: BundleContents,
    /// Keep the bundle's kernel arguments (false: boot without them).
    pub keep_append: bool,
    /// Parent of each replay's work directory.
    workdir: PathBuf,
    kernel: Option<PreparedKernel>,
}

impl Replayer {
    /// `bundle` must be about a signature (checked by the caller).
    pub fn new(bundle: BundleContents, workdir: &Path) -> Self {
        Replayer {
            program: bundle.program.clone(),
            target: bundle.signature.clone().unwrap_or_default(),
            bundle,
            keep_append: true,
            workdir: workdir.to_path_buf(),
            kernel: None,
        }
    }

    fn set_kernel(&mut self, k: PreparedKernel) {
        self.kernel = Some(k);
    }

    fn replay(&mut self, ctx: &Context, rev: &str, runs: u32) -> Result<Replay, BisectError> {
        let Some(kernel) = self.kernel.clone() else {
            return Ok(Replay::NoBoot {
                reason: format!("{rev} was not built"),
            });
        };
        let accel = ctx.accel(&kernel.kernel.bzimage)?;
        let dir = self.workdir.join("replay");
        let _ = std::fs::remove_dir_all(&dir);
        let mut opts = SessionOptions::new(dir.clone(), accel);
        self.bundle.apply_to(&mut opts);
        if !self.keep_append {
            opts.append.clear();
        }
        let mut runner = Runner::new(kernel, opts);
        let result = replay_counting(
            &mut runner,
            &self.program,
            Some(&self.target),
            runs,
            &mut |_, _, _, _| {},
        );
        runner.shutdown();
        drop(runner);
        let _ = std::fs::remove_dir_all(&dir);
        match result {
            Ok(t) => Ok(Replay::Ran(t)),
            Err(SessionError::Interrupted(i)) => Err(i.into()),
            // A kernel that does not boot, panics at boot or hangs the agent says nothing
            // about the bug: a skip, with the reason.
            Err(e) => Ok(Replay::NoBoot {
                reason: format!("{e:#}"),
            }),
        }
    }
}

/// Git revisions of a kernel repository, built in shmemfuzz's worktree of it.
pub struct GitKernels<'a> {
    pub ctx: &'a Context,
    pub repo: PathBuf,
    pub fragments: Vec<PathBuf>,
    pub jobs: u32,
    pub timeout: Duration,
    pub replayer: Replayer,
    pub progress: &'a dyn Fn(KbuildEvent),
}

impl std::fmt::Debug for GitKernels<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitKernels")
            .field("repo", &self.repo)
            .finish_non_exhaustive()
    }
}

impl Probe for GitKernels<'_> {
    fn build(&mut self, rev: &str) -> Result<Build, BisectError> {
        self.replayer.kernel = None;
        let spec = SrcBuild {
            src: self.repo.clone(),
            rev: Some(rev.to_string()),
            fragments: self.fragments.clone(),
            jobs: self.jobs,
            timeout: self.timeout,
        };
        let built = match build_src(&self.ctx.cache_dir, &spec, self.progress) {
            Ok(b) => b,
            // The commit does not build (compile error, config that does not resolve): skip.
            Err(e @ KbuildError::ConfigMismatch { .. }) => {
                return Ok(Build::Failed {
                    reason: crate::error_chain(&e),
                })
            }
            Err(KbuildError::MakeFailed {
                command, log, tail, ..
            }) => {
                // The tail often holds only the warnings that followed the error.
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let last_make = text.rfind("\n$ make").map_or(text.as_str(), |i| &text[i..]);
                let error = last_make
                    .lines()
                    .find(|l| l.contains(": error:") || l.contains(": fatal error:"))
                    .unwrap_or("");
                return Ok(Build::Failed {
                    reason: format!(
                        "{error}\n`{command}` failed (log: {})\n{tail}",
                        log.display()
                    ),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let r = &built.registered;
        match self.ctx.prepare_tree(None, Some(&r.build_dir)) {
            Ok(mut k) => {
                k.kernel.id = r.id.clone();
                self.replayer.set_kernel(k);
                Ok(Build::Image {
                    sha256: r.bzimage_sha256.clone(),
                })
            }
            Err(ContextError::Module(e)) => Ok(Build::Failed {
                reason: format!(
                    "the mock GMA500 driver does not build against it: {}",
                    crate::error_chain(&e)
                ),
            }),
            Err(e) => Err(e.into()),
        }
    }

    fn replay(&mut self, rev: &str, runs: u32) -> Result<Replay, BisectError> {
        self.replayer.replay(self.ctx, rev, runs)
    }
}

/// Debian kernel packages of the catalog (fetched, with the mock driver built against their
/// headers).
#[derive(Debug)]
pub struct DebianKernels<'a> {
    pub ctx: &'a Context,
    pub replayer: Replayer,
}

impl Probe for DebianKernels<'_> {
    fn build(&mut self, rev: &str) -> Result<Build, BisectError> {
        self.replayer.kernel = None;
        let k = match self.ctx.prepare(Some(rev), &|_| {}) {
            Ok(k) => k,
            Err(ContextError::Module(e)) => {
                return Ok(Build::Failed {
                    reason: format!(
                        "the mock GMA500 driver does not build for it: {}",
                        crate::error_chain(&e)
                    ),
                })
            }
            Err(e) => return Err(e.into()),
        };
        let image = &k.kernel.bzimage;
        let sha256 = crate::files::file_sha256(image)
            .map_err(|e| BisectError::io(format!("cannot read {}", image.display()), e))?;
        self.replayer.set_kernel(k);
        Ok(Build::Image { sha256 })
    }

    fn replay(&mut self, rev: &str, runs: u32) -> Result<Replay, BisectError> {
        self.replayer.replay(self.ctx, rev, runs)
    }
}
