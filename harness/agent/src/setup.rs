//! Boot-time setup, in order: mount the pseudo filesystems, load the modules the host listed
//! (dependencies first, `.ko.xz` handed to the kernel compressed), pin the VM settings that
//! steer reclaim and readahead, enable the memory controller, find the virtio-serial port
//! and the swap disks, and build the `Ready` message.
//!
//! The host writes `/etc/shmemfuzz/agent.conf` into the initramfs (`key=value` lines):
//! `modules=` (comma-separated `.ko` paths in load order), `swap_devices=`, `port=`.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::mount::{mount, MsFlags};
use shmemfuzz_core::protocol::{AgentMsg, GuestSettings, PROTOCOL_VERSION};
use shmemfuzz_core::zoneinfo;

use crate::sys::{read_trimmed, write_file};

/// Where the agent mounts the tmpfs that programs' tmpfs files live on.
pub const TMPFS_DIR: &str = "/run/shmemfuzz";
/// How long devices (port, disks) may take to appear after their modules load.
const DEVICE_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("mounting {what} on {target}: {errno}")]
    Mount {
        what: &'static str,
        target: &'static str,
        errno: nix::errno::Errno,
    },
    #[error("reading the agent config {path}: {source}")]
    Config {
        path: &'static str,
        source: std::io::Error,
    },
    #[error("loading module {path}: {errno}")]
    Module {
        path: String,
        errno: nix::errno::Errno,
    },
    #[error("{what} did not appear within {secs} s: is its driver loaded?")]
    Timeout { what: String, secs: u64 },
    #[error("swap media: {0}")]
    SwapMedia(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// The booted guest: the channel to the host and what the agent reports about itself.
#[derive(Debug)]
pub struct Guest {
    pub port: File,
    pub ready: AgentMsg,
    /// `/dev/vda`, `/dev/vdb`, … in the order of the host's disks.
    pub swap_paths: Vec<String>,
    /// Kprobes on the mm functions, where the kernel has kprobe events; installed at the
    /// first program, not at boot (registering them is slow under TCG on 6.12).
    pub probes: std::cell::OnceCell<Option<crate::coverage::Probes>>,
    /// The KCOV buffer every program's child traces into, where the kernel has KCOV (opened
    /// at the first program; debugfs mounted then).
    pub kcov: std::cell::OnceCell<Option<crate::kcov::Buffer>>,
}

pub fn boot() -> Result<Guest, SetupError> {
    mount_all()?;
    let conf = read_config()?;
    let mut loaded = Vec::new();
    for path in conf.modules.iter() {
        load_module(path)?;
        loaded.push(
            Path::new(path)
                .file_name()
                .map_or(path.clone(), |f| f.to_string_lossy().into_owned()),
        );
    }
    let settings = pin_settings();
    let _ = write_file("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
    let port = open_port(&conf.port)?;
    let disks: Vec<String> = (0..conf.swap_devices)
        .map(|i| format!("/dev/vd{}", (b'a' + i) as char))
        .collect();
    for p in &disks {
        wait_for(p, || Path::new(p).exists())?;
    }
    let swap_paths = crate::swapdev::prepare(crate::swapdev::media()?, &disks)?;
    let mut settings = settings;
    settings.swap_rotational = swap_paths
        .iter()
        .map(|p| {
            read_trimmed(&format!(
                "/sys/block/{}/queue/rotational",
                p.trim_start_matches("/dev/")
            ))
        })
        .collect();
    let uname = nix::sys::utsname::uname().map_err(|e| SetupError::Io {
        what: "uname".into(),
        source: e.into(),
    })?;
    let zones = zoneinfo::parse(&fs::read_to_string("/proc/zoneinfo").unwrap_or_default());
    let uptime: f64 = read_trimmed("/proc/uptime")
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    let ready = AgentMsg::Ready {
        protocol: PROTOCOL_VERSION,
        release: uname.release().to_string_lossy().into_owned(),
        version: uname.version().to_string_lossy().into_owned(),
        zones,
        swap_devices: swap_paths.clone(),
        taint: crate::sys::taint(),
        settings,
        modules: loaded,
        boot_ms: (uptime * 1000.0) as u64,
    };
    Ok(Guest {
        port,
        ready,
        swap_paths,
        probes: std::cell::OnceCell::new(),
        kcov: std::cell::OnceCell::new(),
    })
}

fn mount_all() -> Result<(), SetupError> {
    let none: Option<&str> = None;
    let table: [(
        &'static str,
        &'static str,
        &'static str,
        MsFlags,
        Option<&str>,
    ); 5] = [
        (
            "proc",
            "/proc",
            "proc",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None,
        ),
        (
            "sysfs",
            "/sys",
            "sysfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None,
        ),
        ("devtmpfs", "/dev", "devtmpfs", MsFlags::MS_NOSUID, None),
        (
            "cgroup2",
            "/sys/fs/cgroup",
            "cgroup2",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            // Moving a task into a cgroup (every program's child does) otherwise waits for an
            // RCU grace period: 8–10 ms of every execution under TCG (Linux >= 6.0; older
            // kernels refuse the option and get the mount without it, below).
            Some("favordynmods"),
        ),
        (
            "tmpfs",
            TMPFS_DIR,
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0755"),
        ),
    ];
    for (what, target, fstype, flags, data) in table {
        let _ = fs::create_dir_all(target);
        let mounted = match mount(Some(what), target, Some(fstype), flags, data.or(none)) {
            Err(nix::errno::Errno::EINVAL) if data.is_some() => {
                mount(Some(what), target, Some(fstype), flags, none)
            }
            other => other,
        };
        match mounted {
            Ok(()) | Err(nix::errno::Errno::EBUSY) => {}
            Err(errno) => {
                return Err(SetupError::Mount {
                    what,
                    target,
                    errno,
                })
            }
        }
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Config {
    modules: Vec<String>,
    swap_devices: u8,
    port: String,
}

fn read_config() -> Result<Config, SetupError> {
    const PATH: &str = "/etc/shmemfuzz/agent.conf";
    let text =
        fs::read_to_string(PATH).map_err(|source| SetupError::Config { path: PATH, source })?;
    let mut c = Config {
        port: "shmemfuzz.0".into(),
        ..Config::default()
    };
    for line in text.lines() {
        match line.split_once('=') {
            Some(("modules", v)) => {
                c.modules = v
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            Some(("swap_devices", v)) => c.swap_devices = v.trim().parse().unwrap_or(0),
            Some(("port", v)) => c.port = v.trim().to_string(),
            _ => {}
        }
    }
    Ok(c)
}

/// `MODULE_INIT_COMPRESSED_FILE`: the kernel decompresses the image itself (6.12's `.ko.xz`).
const MODULE_INIT_COMPRESSED_FILE: libc::c_uint = 4;

fn load_module(path: &str) -> Result<(), SetupError> {
    let f = File::open(path).map_err(|e| SetupError::Module {
        path: path.into(),
        errno: crate::sys::io_errno(e),
    })?;
    let flags = if path.ends_with(".xz") || path.ends_with(".zst") || path.ends_with(".gz") {
        MODULE_INIT_COMPRESSED_FILE
    } else {
        0
    };
    let params = CString::default();
    // nix's finit_module has no flag for compressed images, so call the syscall directly.
    // SAFETY: the fd is open for the duration of the call and `params` is a valid C string.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            std::os::fd::AsRawFd::as_raw_fd(&f.as_fd()),
            params.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    match nix::errno::Errno::last() {
        nix::errno::Errno::EEXIST => Ok(()),
        errno => Err(SetupError::Module {
            path: path.into(),
            errno,
        }),
    }
}

/// Pins the settings that steer reclaim and readahead, and reads back what the kernel has.
fn pin_settings() -> GuestSettings {
    let pins = [
        ("/proc/sys/vm/page-cluster", "3"),
        ("/proc/sys/vm/swappiness", "60"),
        ("/proc/sys/kernel/sysrq", "1"),
        ("/sys/kernel/mm/transparent_hugepage/enabled", "never"),
        ("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "deny"),
        ("/sys/module/zswap/parameters/enabled", "N"),
    ];
    for (path, value) in pins {
        let _ = write_file(path, value);
    }
    GuestSettings {
        page_cluster: read_trimmed("/proc/sys/vm/page-cluster"),
        swappiness: read_trimmed("/proc/sys/vm/swappiness"),
        shmem_enabled: read_trimmed("/sys/kernel/mm/transparent_hugepage/shmem_enabled"),
        thp_enabled: read_trimmed("/sys/kernel/mm/transparent_hugepage/enabled"),
        lru_gen: read_trimmed("/sys/kernel/mm/lru_gen/enabled"),
        zswap: read_trimmed("/sys/module/zswap/parameters/enabled"),
        swap_rotational: Vec::new(),
    }
}

pub fn wait_for(what: &str, ready: impl Fn() -> bool) -> Result<(), SetupError> {
    let start = Instant::now();
    while !ready() {
        if start.elapsed() > DEVICE_WAIT {
            return Err(SetupError::Timeout {
                what: what.into(),
                secs: DEVICE_WAIT.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Finds the virtio-serial port named `name` and opens it.
fn open_port(name: &str) -> Result<File, SetupError> {
    let find = || -> Option<String> {
        fs::read_dir("/sys/class/virtio-ports")
            .ok()?
            .flatten()
            .find_map(|e| {
                let n = fs::read_to_string(e.path().join("name")).ok()?;
                (n.trim() == name).then(|| format!("/dev/{}", e.file_name().to_string_lossy()))
            })
    };
    let what = format!("virtio-serial port `{name}`");
    wait_for(&what, || find().is_some_and(|p| Path::new(&p).exists()))?;
    let path = find().unwrap_or_default();
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|source| SetupError::Io { what: path, source })
}
