//! The QEMU command line and the kernel command line, as pure functions of a [`VmConfig`].

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::{Accel, VmConfig};

/// The kernel arguments every VM boots with, before [`VmConfig::append`]. This is the one
/// place they are chosen; each is explained here.
///
/// - `console=ttyS0`: kernel messages go to the first serial port, which QEMU writes to its
///   stdout; the host captures it to `console.log` and scans it live.
/// - `loglevel=7`: every message but debug reaches the console. Not `quiet` (which is
///   `loglevel=4` and hides `KERN_WARNING` lines such as `WARNING: CPU: ...`), and not lower
///   than 7 because hung-task and sysrq-t/w stack dumps print at `KERN_INFO`.
/// - `panic=-1`: reboot at once on panic; with QEMU's `-no-reboot` that ends QEMU, so a
///   panicked guest does not sit there until its lifetime runs out. `oops=panic` is **not**
///   set: an oops is reported on the console and the guest goes on (the agent may still
///   report what it saw).
/// - `rdinit=/init`: the agent in the initramfs is PID 1.
/// - `rootfstype=ramfs`: the initramfs root is ramfs, not tmpfs, so the agent's own files do
///   not count as `Shmem` and the accounting oracle can be exact.
/// - `rcupdate.rcu_cpu_stall_timeout=300` (the kernel's maximum; Debian builds 21) and
///   `watchdog_thresh=60` (the maximum; soft lockups are reported after 2 x 60 s): under TCG
///   on shared host cores a vCPU can be descheduled for many seconds, which otherwise shows
///   up as RCU stalls and soft lockups that are not bugs.
/// - `nmi_watchdog=0`: the hard-lockup detector has the same problem (and under TCG there is
///   no PMU to drive it anyway); long irq-off sections still show up as RCU stalls.
/// - `sysrq_always_enabled`: Debian's default `kernel.sysrq=438` leaves out the process dumps
///   (`t`, `w`, ...) that the host asks for through the monitor when a guest hangs.
/// - `kasan_multi_shot`: report every KASAN error, not only the first one per boot. Kernels
///   without KASAN (Debian's) do not know it and pass it to `/init` as an extra argument.
/// - `pci=noacpi`: see below (boot time).
///
/// Left out on purpose: `nokaslr` (the guest is as the user would run it; a kernel booted
/// through PVH, see [`super::pvh`], has no KASLR anyway: the decompressor applies it),
/// `transparent_hugepage=` (the agent sets THP through sysfs), `quiet`.
pub const DEFAULT_KERNEL_ARGS: &[&str] = &[
    "console=ttyS0",
    "loglevel=7",
    "panic=-1",
    "rdinit=/init",
    "rootfstype=ramfs",
    "rcupdate.rcu_cpu_stall_timeout=300",
    "watchdog_thresh=60",
    "nmi_watchdog=0",
    // check_timer() counts timer ticks in a short window; on a loaded host under TCG it
    // misses them and the kernel panics "IO-APIC + timer doesn't work" (seen in a VM test
    // while a build ran beside it).
    "no_timer_check",
    "sysrq_always_enabled",
    "kasan_multi_shot",
    // PCI interrupts routed without ACPI (the BIOS's PIR table; virtio then uses MSI-X):
    // under TCG, routing each virtio-pci device's INTx link through the ACPI interpreter
    // took about 0.25 s, 0.75 s of src-6.1's 1.9 s to ready (`bench boot`: 0.97 s with it).
    "pci=noacpi",
    // CONFIG_PAGE_OWNER (self-built kernels' debug.config): a zone finding carries the
    // allocation stack of the first misplaced page. Ignored by kernels without it.
    "page_owner=on",
];

/// x86's `COMMAND_LINE_SIZE` is 2048 bytes including the NUL.
pub const KERNEL_CMDLINE_MAX: usize = 2047;

/// `sun_path` holds 108 bytes including the NUL.
pub const SOCKET_PATH_MAX: usize = 107;

/// Name of the virtio-serial port the guest agent opens (find it through
/// `/sys/class/virtio-ports/*/name`).
pub const AGENT_PORT_NAME: &str = "shmemfuzz.0";

/// File names inside [`VmConfig::workdir`].
pub const CONSOLE_LOG: &str = "console.log";
/// QEMU's own stderr (warnings and startup errors).
pub const QEMU_STDERR: &str = "qemu.stderr";
/// Unix socket the host listens on; QEMU connects to it for the agent channel.
pub const AGENT_SOCKET: &str = "agent.sock";
/// Unix socket QEMU listens on for QMP.
pub const QMP_SOCKET: &str = "qmp.sock";

/// Path of the agent channel socket for `cfg`.
pub fn agent_socket_path(cfg: &VmConfig) -> PathBuf {
    cfg.workdir.join(AGENT_SOCKET)
}

/// Path of the QMP socket for `cfg`.
pub fn qmp_socket_path(cfg: &VmConfig) -> PathBuf {
    cfg.workdir.join(QMP_SOCKET)
}

/// The kernel command line: [`DEFAULT_KERNEL_ARGS`] then [`VmConfig::append`], space-separated.
pub fn kernel_cmdline(cfg: &VmConfig) -> String {
    DEFAULT_KERNEL_ARGS
        .iter()
        .copied()
        .chain(cfg.append.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Escapes a value for QEMU's `key=value,...` option syntax (a comma is written `,,`).
fn opt_value(p: &Path) -> OsString {
    let mut out = Vec::with_capacity(p.as_os_str().len());
    for &b in p.as_os_str().as_bytes() {
        out.push(b);
        if b == b',' {
            out.push(b',');
        }
    }
    OsString::from_vec(out)
}

fn opt(parts: &[&OsStr]) -> OsString {
    let mut s = OsString::new();
    for p in parts {
        s.push(p);
    }
    s
}

/// The arguments after the QEMU binary for `cfg` (the binary itself not included).
///
/// Devices, in order:
/// - serial console `ttyS0` on QEMU's stdout (`-chardev stdio,signal=off`; stdin is
///   `/dev/null`, so nothing reaches the guest that way);
/// - `virtio-serial-pci` with one `virtserialport` named [`AGENT_PORT_NAME`], whose chardev
///   is a unix socket **client**: the host listens first and QEMU connects while it starts.
///   The channel is therefore connected before the guest boots, so nothing the agent writes
///   is dropped (QEMU discards output for a disconnected socket chardev), the host never
///   polls for a socket file to appear, and a QEMU that cannot connect fails at once;
/// - QMP on a unix socket where QEMU is the server (`server=on,wait=off`): the host connects
///   per command (`human-monitor-command` gives HMP commands like `sendkey` with clean,
///   JSON-framed replies);
/// - one `virtio-blk-pci` per disk, raw, `cache=unsafe` (the images are scratch swap space),
///   serial `sfz<i>`.
///
/// `-nodefaults` removes the default NIC, VGA, parallel port, floppy and CD-ROM; `-nic none`
/// states the absence of networking explicitly.
pub fn qemu_args(cfg: &VmConfig) -> Vec<OsString> {
    fn strs(a: &mut Vec<OsString>, items: &[&str]) {
        a.extend(items.iter().map(OsString::from));
    }
    let mut a: Vec<OsString> = Vec::new();
    strs(
        &mut a,
        &[
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
            "-nic",
            "none",
            "-name",
            "shmemfuzz",
        ],
    );
    let machine = format!("pc,max-ram-below-4g={}M", cfg.memory.below_4g_mib);
    let mem = format!("{}M", cfg.memory.total_mib);
    strs(&mut a, &["-machine", &machine, "-m", &mem]);
    if cfg.memory.nodes == 2 {
        // Node 0 takes the first below_4g_mib of RAM (all of it below 4 GiB), node 1 the rest
        // (all of it above 4 GiB): QEMU's SRAT splits the nodes around the PCI hole.
        let below = cfg.memory.below_4g_mib;
        let above = cfg.memory.above_4g_mib();
        for (id, size) in [(0, below), (1, above)] {
            let obj = format!("memory-backend-ram,id=ram{id},size={size}M");
            let node = format!("node,nodeid={id},memdev=ram{id}");
            strs(&mut a, &["-object", &obj, "-numa", &node]);
        }
    }
    strs(&mut a, &accel_args(cfg.accel));
    strs(&mut a, &["-smp", &cfg.smp.to_string()]);

    // Console: ttyS0 on stdout.
    strs(
        &mut a,
        &[
            "-chardev",
            "stdio,id=con,signal=off",
            "-serial",
            "chardev:con",
        ],
    );

    // Agent channel: QEMU is the socket client of the host's listener.
    strs(
        &mut a,
        &["-device", "virtio-serial-pci,id=vser", "-chardev"],
    );
    a.push(opt(&[
        OsStr::new("socket,id=agent,path="),
        &opt_value(&agent_socket_path(cfg)),
    ]));
    strs(
        &mut a,
        &[
            "-device",
            &format!("virtserialport,bus=vser.0,chardev=agent,name={AGENT_PORT_NAME}"),
        ],
    );

    // QMP: QEMU is the server.
    strs(&mut a, &["-chardev"]);
    a.push(opt(&[
        OsStr::new("socket,id=qmp,server=on,wait=off,path="),
        &opt_value(&qmp_socket_path(cfg)),
    ]));
    strs(&mut a, &["-mon", "chardev=qmp,mode=control"]);

    // Disks.
    for (i, d) in cfg.disks.iter().enumerate() {
        let ro = if d.read_only { ",readonly=on" } else { "" };
        strs(&mut a, &["-drive"]);
        a.push(opt(&[
            OsStr::new(&format!(
                "if=none,id=disk{i},format=raw,cache=unsafe{ro},file="
            )),
            &opt_value(&d.path),
        ]));
        strs(
            &mut a,
            &[
                "-device",
                &format!("virtio-blk-pci,drive=disk{i},serial=sfz{i}"),
            ],
        );
    }

    // Kernel. -kernel and -initrd take plain file names (no option syntax).
    strs(&mut a, &["-kernel"]);
    a.push(cfg.kernel.clone().into_os_string());
    strs(&mut a, &["-initrd"]);
    a.push(cfg.initramfs.clone().into_os_string());
    strs(&mut a, &["-append", &kernel_cmdline(cfg)]);
    if let Some(state) = &cfg.incoming {
        strs(&mut a, &["-incoming", &incoming_uri(state)]);
    }
    a
}

/// The `-incoming` URI reading a saved migration stream from `state` (QEMU runs the command
/// with `/bin/sh -c`; [`VmConfig::validate`] refused paths with quotes).
pub fn incoming_uri(state: &Path) -> String {
    format!("exec:cat '{}'", state.display())
}

/// The `migrate` URI writing a migration stream to `state` (quoted as in [`incoming_uri`]).
pub fn outgoing_uri(state: &Path) -> String {
    format!("exec:cat > '{}'", state.display())
}

/// The CPU model under TCG: every feature TCG emulates except ERMS and FSRM. With them the
/// kernel clears and copies pages with `rep stosb`/`rep movsb`, which TCG runs a byte per
/// iteration; without them it uses the 8-byte forms. Measured with `bench exec` on Debian 6.1
/// (docs/testing.md, "TCG settings"): 16.9 executions/s against 15.2 with plain `max`, the
/// operations themselves 15 ms against 21 ms. `qemu64` is faster still (17.7) but lacks
/// `pdpe1gb`, without which there are no 1 GiB hugetlb pages (`--topology hugetlb`).
pub const TCG_CPU: &str = "max,erms=off,fsrm=off";

/// `-accel tcg -cpu` [`TCG_CPU`] or `-accel kvm -cpu host`.
pub fn accel_args(accel: Accel) -> [&'static str; 4] {
    match accel {
        Accel::Tcg => ["-accel", "tcg", "-cpu", TCG_CPU],
        Accel::Kvm => ["-accel", "kvm", "-cpu", "host"],
    }
}

/// Renders arguments as a shell-pasteable line (for logs and bundles).
pub fn shell_quote(program: &OsStr, args: &[OsString]) -> String {
    std::iter::once(program)
        .chain(args.iter().map(OsString::as_os_str))
        .map(|s| {
            let s = s.to_string_lossy();
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_=,.:/+@%".contains(c))
            {
                s.into_owned()
            } else {
                format!("'{}'", s.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::super::{DiskSpec, MemoryLayout};
    use super::*;
    use std::time::Duration;

    fn cfg() -> VmConfig {
        VmConfig::new("/k/vmlinuz", "/k/initrd.cpio", "/w")
    }

    fn strs(cfg: &VmConfig) -> Vec<String> {
        qemu_args(cfg)
            .into_iter()
            .map(|s| s.into_string().expect("utf8"))
            .collect()
    }

    /// The value following each occurrence of `flag`.
    fn values(args: &[String], flag: &str) -> Vec<String> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].clone())
            .collect()
    }

    #[test]
    fn flag_table() {
        let mut kvm = cfg();
        kvm.accel = Accel::Kvm;
        kvm.smp = 2;
        let mut big = cfg();
        big.memory = MemoryLayout {
            total_mib: 6144,
            below_4g_mib: 3072,
            nodes: 1,
        };
        // (config, flag, expected values of that flag)
        let table: Vec<(VmConfig, &str, Vec<&str>)> = vec![
            (cfg(), "-machine", vec!["pc,max-ram-below-4g=1024M"]),
            (cfg(), "-m", vec!["2048M"]),
            (cfg(), "-accel", vec!["tcg"]),
            (cfg(), "-cpu", vec!["max,erms=off,fsrm=off"]),
            (cfg(), "-smp", vec!["1"]),
            (cfg(), "-nic", vec!["none"]),
            (cfg(), "-netdev", vec![]),
            (cfg(), "-net", vec![]),
            (cfg(), "-display", vec!["none"]),
            (cfg(), "-kernel", vec!["/k/vmlinuz"]),
            (cfg(), "-initrd", vec!["/k/initrd.cpio"]),
            (cfg(), "-drive", vec![]),
            (cfg(), "-serial", vec!["chardev:con"]),
            (cfg(), "-mon", vec!["chardev=qmp,mode=control"]),
            (
                cfg(),
                "-chardev",
                vec![
                    "stdio,id=con,signal=off",
                    "socket,id=agent,path=/w/agent.sock",
                    "socket,id=qmp,server=on,wait=off,path=/w/qmp.sock",
                ],
            ),
            (
                cfg(),
                "-device",
                vec![
                    "virtio-serial-pci,id=vser",
                    "virtserialport,bus=vser.0,chardev=agent,name=shmemfuzz.0",
                ],
            ),
            (kvm.clone(), "-accel", vec!["kvm"]),
            (kvm.clone(), "-cpu", vec!["host"]),
            (kvm, "-smp", vec!["2"]),
            (big.clone(), "-machine", vec!["pc,max-ram-below-4g=3072M"]),
            (big, "-m", vec!["6144M"]),
        ];
        for (c, flag, want) in table {
            assert_eq!(values(&strs(&c), flag), want, "flag {flag}");
        }
    }

    #[test]
    fn fixed_flags_present() {
        let a = strs(&cfg());
        for f in ["-nodefaults", "-no-user-config", "-no-reboot"] {
            assert_eq!(a.iter().filter(|x| *x == f).count(), 1, "{f}");
        }
        assert!(!a
            .iter()
            .any(|x| x.contains("netdev") || x.contains("e1000")));
    }

    #[test]
    fn disks() {
        let mut c = cfg();
        c.disks = vec![
            DiskSpec::new("/d/swap0.img"),
            DiskSpec {
                path: "/d/odd,name.img".into(),
                read_only: true,
            },
        ];
        let a = strs(&c);
        assert_eq!(
            values(&a, "-drive"),
            [
                "if=none,id=disk0,format=raw,cache=unsafe,file=/d/swap0.img",
                "if=none,id=disk1,format=raw,cache=unsafe,readonly=on,file=/d/odd,,name.img",
            ]
        );
        let dev = values(&a, "-device");
        assert!(dev.contains(&"virtio-blk-pci,drive=disk0,serial=sfz0".to_string()));
        assert!(dev.contains(&"virtio-blk-pci,drive=disk1,serial=sfz1".to_string()));
    }

    #[test]
    fn append_string() {
        let mut c = cfg();
        assert_eq!(
            values(&strs(&c), "-append"),
            [DEFAULT_KERNEL_ARGS.join(" ")]
        );
        c.append = vec!["shmemfuzz.seed=7".into(), "loglevel=8".into()];
        let ap = values(&strs(&c), "-append").remove(0);
        assert!(ap.starts_with("console=ttyS0 "));
        assert!(ap.ends_with(" shmemfuzz.seed=7 loglevel=8"));
        for must in [
            "panic=-1",
            "rdinit=/init",
            "rootfstype=ramfs",
            "rcupdate.rcu_cpu_stall_timeout=300",
            "watchdog_thresh=60",
        ] {
            assert!(ap.split(' ').any(|w| w == must), "{must} missing");
        }
        for never in ["oops=panic", "quiet", "nokaslr", "transparent_hugepage"] {
            assert!(!ap.contains(never), "{never} present");
        }
    }

    #[test]
    fn validation() {
        let ok = cfg();
        ok.validate().expect("default config is valid");
        type Mutate = fn(&mut VmConfig);
        let cases: Vec<(&str, Mutate)> = vec![
            ("no normal zone", |c| {
                c.memory = MemoryLayout {
                    total_mib: 1024,
                    below_4g_mib: 1024,
                    nodes: 1,
                }
            }),
            ("below 4g too small", |c| c.memory.below_4g_mib = 64),
            ("below 4g above pci hole", |c| {
                c.memory = MemoryLayout {
                    total_mib: 8192,
                    below_4g_mib: 4000,
                    nodes: 1,
                }
            }),
            ("smp 0", |c| c.smp = 0),
            ("zero lifetime", |c| c.lifetime = Duration::ZERO),
            ("arg with space", |c| c.append = vec!["a b".into()]),
            ("empty arg", |c| c.append = vec![String::new()]),
            ("long socket path", |c| {
                c.workdir = PathBuf::from(format!("/{}", "x".repeat(120)))
            }),
            ("long cmdline", |c| c.append = vec!["x".repeat(3000)]),
        ];
        for (name, f) in cases {
            let mut c = cfg();
            f(&mut c);
            assert!(c.validate().is_err(), "{name} accepted");
        }
    }

    #[test]
    fn shell_quoting() {
        let s = shell_quote(
            OsStr::new("qemu"),
            &["-append".into(), "a b".into(), "it's".into()],
        );
        assert_eq!(s, r"qemu -append 'a b' 'it'\''s'");
    }
}
