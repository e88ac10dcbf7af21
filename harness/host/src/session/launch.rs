//! Getting a session to its agent's `Ready`: a cold boot ([`Session::boot`]), a snapshot of
//! a ready guest ([`Session::snapshot`]), and a restore from one ([`Session::restore`]; see
//! [`crate::session::snapshot`] for the mechanism and why).

use std::path::Path;
use std::sync::mpsc;
use std::time::Instant;

use shmemfuzz_core::zoneinfo;

use super::{
    spawn_agent_reader, spawn_console_forwarder, GuestInfo, Session, SessionError, SessionOptions,
};
use crate::guest;
use crate::guest::vm::{DiskSpec, Machine, VmConfig};
use crate::kernels::kernel::FetchedKernel;
use crate::session::console::GuestConsole;
use crate::session::snapshot::{Fingerprint, Snapshot};
use shmemfuzz_core::swap::SwapMedia;

impl Session {
    /// Builds the initramfs and swap images under `opts.workdir`, boots `kernel`, and waits
    /// (bounded) for the agent's `Ready`, checking the protocol and the memory layout.
    pub fn boot(kernel: &FetchedKernel, opts: &SessionOptions) -> Result<Session, SessionError> {
        create_workdir(opts)?;
        let initramfs = opts.workdir.join("initramfs.cpio");
        let media = SwapMedia::of_args(opts.append.iter().map(String::as_str))
            .map_err(guest::GuestError::SwapMedia)?;
        guest::build_initramfs(
            kernel,
            opts.swap_devices,
            media,
            &opts.modules,
            &opts.executables,
            &initramfs,
        )?;
        let cfg = vm_config(kernel, opts, &initramfs)?;
        let started = Instant::now();
        let mut s = Session::start(cfg, opts)?;
        s.info = s.wait_ready(opts.boot_timeout, started)?;
        zoneinfo::check_layout(&s.info.zones)?;
        zoneinfo::check_nodes(&s.info.zones, u32::from(opts.memory.nodes))?;
        Ok(s)
    }

    /// Saves this guest under `dir` (which must exist) and lets it go on. Only a guest that
    /// has run nothing yet: a snapshot is the state at `Ready`, so every restore starts where
    /// a cold boot would have. `opts` must be the options it was booted with.
    pub fn snapshot(&self, dir: &Path, opts: &SessionOptions) -> Result<Snapshot, SessionError> {
        if self.next_id != 1 || self.dead {
            return Err(SessionError::Agent(
                "a snapshot is taken of a freshly booted guest, before its first run".into(),
            ));
        }
        let cfg = self.machine.config();
        let fingerprint = Fingerprint::of(cfg, &opts.workdir, opts.swap_size, &inputs(opts))?;
        let initramfs = dir.join("initramfs.cpio");
        std::fs::copy(&cfg.initramfs, &initramfs)
            .map_err(|e| SessionError::Workdir(initramfs.clone(), e))?;
        let state = dir.join("state");
        let started = Instant::now();
        let bytes = self.machine.save_state(&state, opts.waits.snapshot_save)?;
        let save_ms = started.elapsed().as_millis() as u64;
        self.machine.resume()?;
        Ok(Snapshot {
            state,
            initramfs,
            info: self.info.clone(),
            fingerprint,
            bytes,
            save_ms,
        })
    }

    /// A guest resumed from `snapshot` in `opts.workdir` (fresh swap images), refused if the
    /// kernel, agent, modules or settings differ from the snapshot's. `ready_after_ms` in
    /// its info is the restore's wall time.
    pub fn restore(
        kernel: &FetchedKernel,
        opts: &SessionOptions,
        snapshot: &Snapshot,
    ) -> Result<Session, SessionError> {
        create_workdir(opts)?;
        let mut cfg = vm_config(kernel, opts, &snapshot.initramfs)?;
        cfg.incoming = Some(snapshot.state.clone());
        snapshot.check(&Fingerprint::of(
            &cfg,
            &opts.workdir,
            opts.swap_size,
            &inputs(opts),
        )?)?;
        let started = Instant::now();
        let mut s = Session::start(cfg, opts)?;
        s.machine.wait_incoming(opts.boot_timeout)?;
        s.info = GuestInfo {
            ready_after_ms: started.elapsed().as_millis() as u64,
            ..snapshot.info.clone()
        };
        Ok(s)
    }

    /// Launches QEMU for `cfg` and wires the agent channel and the console to the session's
    /// event queue; the guest is not ready yet.
    fn start(cfg: VmConfig, opts: &SessionOptions) -> Result<Session, SessionError> {
        let machine = Machine::launch(cfg)?;
        let chan = machine.connect_channel(opts.waits.channel)?;
        let (tx, events) = mpsc::channel();
        spawn_agent_reader(
            chan.try_clone()
                .map_err(|e| SessionError::Agent(format!("cloning the channel: {e}")))?,
            tx.clone(),
        );
        if let Some(console) = machine.take_console_receiver() {
            spawn_console_forwarder(console, tx);
        }
        Ok(Session {
            machine,
            chan,
            events,
            console: GuestConsole::new(),
            info: GuestInfo::placeholder(),
            next_id: 1,
            opts: opts.clone(),
            dead: false,
        })
    }
}

/// The files a session adds to the kernel's initramfs.
fn inputs(opts: &SessionOptions) -> Vec<std::path::PathBuf> {
    opts.modules
        .iter()
        .chain(&opts.executables)
        .cloned()
        .collect()
}

fn create_workdir(opts: &SessionOptions) -> Result<(), SessionError> {
    std::fs::create_dir_all(&opts.workdir)
        .map_err(|e| SessionError::Workdir(opts.workdir.clone(), e))
}

/// The VM of a session: `kernel` with `initramfs`, fresh swap images in `opts.workdir`.
fn vm_config(
    kernel: &FetchedKernel,
    opts: &SessionOptions,
    initramfs: &Path,
) -> Result<VmConfig, SessionError> {
    let disks = guest::create_swap_images(&opts.workdir, opts.swap_devices, opts.swap_size)?;
    let mut cfg = VmConfig::new(
        crate::guest::vm::pvh::boot_image(&kernel.bzimage),
        initramfs.to_path_buf(),
        opts.workdir.join("vm"),
    );
    cfg.lifetime = opts.lifetime;
    cfg.append = opts.append.clone();
    cfg.accel = opts.accel;
    cfg.smp = opts.smp;
    cfg.memory = opts.memory;
    cfg.disks = disks.into_iter().map(DiskSpec::new).collect();
    Ok(cfg)
}
