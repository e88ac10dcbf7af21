//! Running many programs on one kernel, surviving the guest: a [`Runner`] keeps one booted
//! [`Session`] and boots a fresh one when the last run killed it (a panic, a hang, a stuck
//! operation), so replay, repro and minimization go on and lose nothing already found.

use std::path::PathBuf;

use shmemfuzz_core::program::Program;
use shmemfuzz_core::protocol::OpRecord;

use crate::context::PreparedKernel;
use crate::session::{RunOutcome, Session, SessionError, SessionOptions};

/// One kernel, one VM at a time, rebooted on demand.
#[derive(Debug)]
pub struct Runner {
    kernel: PreparedKernel,
    template: SessionOptions,
    session: Option<Session>,
    boots: u32,
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
            boots: 0,
        }
    }

    pub fn kernel(&self) -> &PreparedKernel {
        &self.kernel
    }

    /// How many times a guest was booted so far.
    pub fn boots(&self) -> u32 {
        self.boots
    }

    /// The booted session, booting one if there is none.
    pub fn session(&mut self) -> Result<&mut Session, SessionError> {
        if self.session.is_none() {
            let mut opts = self.template.clone();
            opts.workdir = self.workdir(self.boots);
            self.boots += 1;
            self.session = Some(Session::boot(&self.kernel.kernel, &opts)?);
        }
        self.session
            .as_mut()
            .ok_or_else(|| SessionError::Agent("no session".into()))
    }

    fn workdir(&self, boot: u32) -> PathBuf {
        self.template.workdir.join(format!("boot{boot}"))
    }

    /// Runs `program`; if the guest did not survive it, the next run boots a new one.
    pub fn run(
        &mut self,
        program: &Program,
        on_record: &mut dyn FnMut(&OpRecord),
    ) -> Result<RunOutcome, SessionError> {
        let session = self.session()?;
        let result = session.run(program, on_record);
        let dead = match &result {
            Ok(out) => !out.vm_alive,
            Err(_) => true,
        };
        if dead {
            if let Some(s) = self.session.take() {
                s.shutdown();
            }
        }
        result
    }

    /// Powers the current guest off, if any.
    pub fn shutdown(&mut self) {
        if let Some(s) = self.session.take() {
            s.shutdown();
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.shutdown();
    }
}
