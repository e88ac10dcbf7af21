//! Running many programs on one kernel, surviving the guest: a [`Runner`] keeps one booted
//! [`Session`] and starts a fresh one when the last run killed it (a panic, a hang, a stuck
//! operation), so replay, repro, minimization and campaigns go on and lose nothing already
//! found. A fresh guest is restored from the snapshot the runner took of its first guest
//! at `Ready` ([`crate::snapshot`]), not booted cold, unless [`SessionOptions::snapshots`]
//! is off or restoring failed once (then every guest boots cold, and a warning says why). A
//! guest past half its lifetime ([`SessionOptions::lifetime`], the hard bound QEMU is killed
//! at) is replaced before the next run, so a long repetition never runs into that bound.

use std::path::PathBuf;
use std::time::Instant;

use shmemfuzz_core::program::Program;
use shmemfuzz_core::protocol::OpRecord;

use crate::bundle::{BundleContents, BundleError, HitCount};
use crate::context::PreparedKernel;
use crate::session::{GuestInfo, RunOutcome, Session, SessionError, SessionOptions};
use crate::snapshot::Snapshot;

/// What the repetition loops ([`crate::reproduce`]) need of a runner: run a program on a
/// live guest (replacing one that died), and drop the current guest so the next run starts
/// on a fresh one. [`Runner`] is the real one; tests script their own.
pub trait ProgramRunner {
    fn run(
        &mut self,
        program: &Program,
        on_record: &mut dyn FnMut(&OpRecord),
    ) -> Result<RunOutcome, SessionError>;

    /// Ends the current guest, if any; the next run gets a fresh one.
    fn replace_guest(&mut self);
}

impl ProgramRunner for Runner {
    fn run(
        &mut self,
        program: &Program,
        on_record: &mut dyn FnMut(&OpRecord),
    ) -> Result<RunOutcome, SessionError> {
        Runner::run(self, program, on_record)
    }

    fn replace_guest(&mut self) {
        self.shutdown();
    }
}

/// The guest a run happened on, kept after the guest is gone (for bundles).
#[derive(Clone, Debug)]
pub struct LastGuest {
    pub info: GuestInfo,
    pub qemu: String,
    /// Its console file (it stays until the runner's work directory is removed).
    pub console: PathBuf,
    /// The options it was booted with.
    pub options: SessionOptions,
}

/// One kernel, one VM at a time, rebooted on demand.
#[derive(Debug)]
pub struct Runner {
    kernel: PreparedKernel,
    template: SessionOptions,
    /// The booted guest, the options it was booted with, and when.
    session: Option<(Session, SessionOptions, Instant)>,
    /// Guests started so far (names their work directories).
    guests: u32,
    boots: u32,
    restores: u32,
    /// The first guest's state at `Ready`; `None` before it, and for good once taking or
    /// restoring one failed.
    snapshot: Option<Snapshot>,
    snapshots_failed: bool,
    last: Option<LastGuest>,
}

impl Runner {
    /// `template.workdir` is the parent of each boot's own work directory; the mock module
    /// of `kernel` is added to `template.modules`.
    pub fn new(kernel: PreparedKernel, mut template: SessionOptions) -> Self {
        if !template.modules.contains(&kernel.mock_module) {
            template.modules.push(kernel.mock_module.clone());
        }
        Runner {
            kernel,
            template,
            session: None,
            guests: 0,
            boots: 0,
            restores: 0,
            snapshot: None,
            snapshots_failed: false,
            last: None,
        }
    }

    pub fn kernel(&self) -> &PreparedKernel {
        &self.kernel
    }

    /// How many times a guest was booted cold so far.
    pub fn boots(&self) -> u32 {
        self.boots
    }

    /// How many guests were restored from the snapshot so far.
    pub fn restores(&self) -> u32 {
        self.restores
    }

    /// The snapshot fresh guests are restored from, once taken.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// The booted session, starting one if there is none.
    pub fn session(&mut self) -> Result<&mut Session, SessionError> {
        let old = self
            .session
            .as_ref()
            .is_some_and(|(_, o, booted)| booted.elapsed() > o.lifetime / 2);
        if old {
            self.shutdown();
        }
        if self.session.is_none() {
            let mut opts = self.template.clone();
            opts.workdir = self.template.workdir.join(format!("guest{}", self.guests));
            self.guests += 1;
            let s = match self.restore(&opts) {
                Some(s) => s,
                None => self.boot(&opts)?,
            };
            self.session = Some((s, opts, Instant::now()));
        }
        match self.session.as_mut() {
            Some((s, _, _)) => Ok(s),
            None => Err(SessionError::Agent("no session".into())),
        }
    }

    /// A guest restored from the snapshot, if there is one and it restores.
    fn restore(&mut self, opts: &SessionOptions) -> Option<Session> {
        let snapshot = self.snapshot.as_ref()?;
        match Session::restore(&self.kernel.kernel, opts, snapshot) {
            Ok(s) => {
                self.restores += 1;
                Some(s)
            }
            Err(e) => {
                tracing::warn!(
                    "restoring the guest snapshot failed, booting cold from now on: {}",
                    crate::error_chain(&e)
                );
                self.snapshot = None;
                self.snapshots_failed = true;
                None
            }
        }
    }

    /// A cold boot; the first one also takes the snapshot later guests are restored from.
    fn boot(&mut self, opts: &SessionOptions) -> Result<Session, SessionError> {
        self.boots += 1;
        let s = Session::boot(&self.kernel.kernel, opts)?;
        if !opts.snapshots || self.snapshots_failed || self.snapshot.is_some() {
            return Ok(s);
        }
        let dir = self.template.workdir.join("snapshot");
        let taken = std::fs::create_dir_all(&dir)
            .map_err(|e| SessionError::Workdir(dir.clone(), e))
            .and_then(|()| s.snapshot(&dir, opts));
        match taken {
            Ok(snapshot) => {
                tracing::debug!(
                    bytes = snapshot.bytes,
                    ms = snapshot.save_ms,
                    "saved the ready guest"
                );
                self.snapshot = Some(snapshot);
                Ok(s)
            }
            Err(e) => {
                // The guest may be left stopped: start over without snapshots.
                tracing::warn!(
                    "saving the guest snapshot failed, booting cold from now on: {}",
                    crate::error_chain(&e)
                );
                self.snapshots_failed = true;
                s.shutdown();
                let _ = std::fs::remove_dir_all(&dir);
                self.boots += 1;
                Session::boot(&self.kernel.kernel, opts)
            }
        }
    }

    /// Runs `program`; if the guest did not survive it, the next run boots a new one.
    pub fn run(
        &mut self,
        program: &Program,
        on_record: &mut dyn FnMut(&OpRecord),
    ) -> Result<RunOutcome, SessionError> {
        self.session()?;
        let Some((session, options, _)) = self.session.as_mut() else {
            return Err(SessionError::Agent("no session".into()));
        };
        let result = session.run(program, on_record);
        self.last = Some(LastGuest {
            info: session.info.clone(),
            qemu: session.command_line(),
            console: session.console_path().to_path_buf(),
            options: options.clone(),
        });
        if result.as_ref().map_or(true, |out| !out.vm_alive) {
            self.shutdown();
        }
        result
    }

    /// The last run as a bundle about `signature`, counting `hits` (its program and outcome
    /// are the caller's; the guest, console and options are the runner's).
    pub fn bundle_last_run(
        &self,
        program: &Program,
        outcome: &RunOutcome,
        signature: Option<String>,
        hits: HitCount,
    ) -> Result<BundleContents, BundleError> {
        let last = self.last.as_ref().ok_or_else(|| BundleError::Invalid {
            path: self.template.workdir.clone(),
            message: "no run to record: nothing ran yet".into(),
        })?;
        let contents = BundleContents::from_run(
            program,
            outcome,
            &self.kernel.kernel,
            &last.info,
            last.qemu.clone(),
            &last.console,
            &last.options,
        )?
        .about(signature);
        Ok(BundleContents { hits, ..contents })
    }

    /// The guest of the last run.
    pub fn last_guest(&self) -> Option<&LastGuest> {
        self.last.as_ref()
    }

    /// Powers the current guest off, if any.
    pub fn shutdown(&mut self) {
        if let Some((s, _, _)) = self.session.take() {
            s.shutdown();
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.shutdown();
    }
}
