//! Unit tests of the console parser as a whole (the golden files, real console captures, are
//! checked by `tests/console_golden.rs`).

use super::*;

/// A real Debian 6.1 WARNING (tests/golden/console/deb61_warning_taint.txt), trimmed.
const WARNING_61: &str = "\
[    2.102405] provoke: loading out-of-tree module taints kernel.\r
[    2.108431] ------------[ cut here ]------------\r
[    2.108549] WARNING: CPU: 0 PID: 1 at /tmp/cons/mod/b61/provoke.c:19 provoke_warn+0x5/0xc [provoke]\r
[    2.108910] Modules linked in: provoke(OE+)\r
[    2.109310] CPU: 0 PID: 1 Comm: init Tainted: G           OE      6.1.0-56-amd64 #1  Debian 6.1.192-2\r
[    2.109792] RIP: 0010:provoke_warn+0x5/0xc [provoke]\r
[    2.111666] Call Trace:\r
[    2.112150]  <TASK>\r
[    2.112302]  provoke_init+0x38/0x1000 [provoke]\r
[    2.112470]  ? 0xffffffffc0212000\r
[    2.112656]  do_one_initcall+0x59/0x220\r
[    2.120184]  </TASK>\r
[    2.120265] ---[ end trace 0000000000000000 ]---\r
";

/// A KASAN report in the syzkaller format (caller ids), trimmed from
/// tests/golden/console/syzkaller_kasan_uaf_btrfs_evict_inode.txt, with a multi-byte
/// character added to a comm to exercise UTF-8 splitting.
const KASAN: &str = "\
[  649.625993][ T6659] ==================================================================
[  649.634110][ T6659] BUG: KASAN: slab-use-after-free in xas_start+0x1ef/0x7b0
[  649.641348][ T6659] Read of size 8 at addr ffff888077ec2bf8 by task syz-exécutor.0/6659
[  649.671910][ T6659] Call Trace:
[  649.675200][ T6659]  <TASK>
[  649.720107][ T6659]  kasan_report+0x175/0x1b0
[  649.729084][ T6659]  xas_start+0x1ef/0x7b0
[  649.737620][ T6659]  find_lock_entries+0x265/0x10f0
[  649.779426][ T6659]  btrfs_evict_inode+0x208/0x1000
[  649.979660][ T6659]  </TASK>
[  649.982692][ T6659] 
[  650.058756][ T6659] Freed by task 14828:
[  650.063620][ T6659]  kasan_set_track+0x4f/0x70
[  650.078359][ T6659]  kmem_cache_free+0x292/0x500
[  650.083250][ T6659]  rcu_core+0xaaa/0x1740
[  650.093022][ T6659] 
[  650.095358][ T6659] Last potentially related work creation:
[  650.105894][ T6659]  kasan_save_stack+0x3f/0x60
[  650.115567][ T6659]  call_rcu+0x167/0xa70
[  650.116401][   T27] audit: type=1800 audit(1688479144.532:793): pid=14777
[  650.121036][ T6659]  btrfs_run_defrag_inodes+0xa90/0xe20
[  650.154543][ T6659] 
[  650.156976][ T6659] The buggy address belongs to the object at ffff888077ec2540
[  650.156976][ T6659]  which belongs to the cache btrfs_inode of size 2256
[  650.492129][ T6659] ==================================================================
[  650.524931][ T6659] Kernel panic - not syncing: KASAN: panic_on_warn set ...
[  650.532177][ T6659] CPU: 1 PID: 6659 Comm: syz-executor.0 Not tainted 6.4.0-syzkaller #0
";

pub(super) fn summary(reports: &[KernelReport]) -> Vec<(ReportKind, String, String, usize)> {
    reports
        .iter()
        .map(|r| (r.kind, r.title.clone(), r.signature.clone(), r.first_line))
        .collect()
}

fn feed_chunks(bytes: &[u8], sizes: impl Fn(usize) -> usize) -> Vec<KernelReport> {
    let mut s = ConsoleScanner::new();
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes(i).clamp(1, rest.len());
        out.extend(s.feed(&rest[..n]));
        rest = &rest[n..];
        i += 1;
    }
    out.extend(s.finish());
    out
}

/// A small deterministic generator (xorshift64*), so the tests need no extra crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn same_reports_whatever_the_chunking() {
    let mut console = Vec::new();
    console.extend_from_slice(b"noise \xff\xfe invalid utf-8\n");
    console.extend_from_slice(WARNING_61.as_bytes());
    console.extend_from_slice("user text with ü → and more\n".as_bytes());
    console.extend_from_slice(KASAN.as_bytes());
    console.extend_from_slice(b"tail without newline: sysrq: Trigger a crash");
    let whole = parse_bytes(&console);
    assert_eq!(
        summary(&whole),
        vec![
            (
                ReportKind::Taint,
                "provoke: loading out-of-tree module taints kernel.".to_string(),
                "TAINT:loading out-of-tree module taints kernel.".to_string(),
                2
            ),
            (
                ReportKind::Warning,
                "WARNING in provoke_warn".to_string(),
                "WARNING:provoke_warn".to_string(),
                4
            ),
            (
                ReportKind::Kasan,
                "KASAN: slab-use-after-free Read in find_lock_entries".to_string(),
                "KASAN:use-after-free:btrfs_inode:free:btrfs_run_defrag_inodes".to_string(),
                17
            ),
            (
                ReportKind::Panic,
                "Kernel panic - not syncing: KASAN: panic_on_warn set ...".to_string(),
                "PANIC:KASAN: panic_on_warn set ...".to_string(),
                41
            ),
        ]
    );
    for size in 1..=17 {
        assert_eq!(feed_chunks(&console, |_| size), whole, "chunks of {size}");
    }
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for round in 0..50 {
        let splits: Vec<usize> = (0..console.len()).map(|_| 1 + rng.below(40)).collect();
        assert_eq!(
            feed_chunks(&console, |i| splits[i % splits.len()]),
            whole,
            "round {round}"
        );
    }
}

#[test]
fn utf8_sequence_split_across_chunks() {
    let text = "[    1.0] BUG: Bad rss-counter state mm:00000000 type:MM_SWAPENTS val:-1 é\n";
    let bytes = text.as_bytes();
    let cut = text.find('é').expect("é") + 1; // inside the two-byte sequence
    let mut s = ConsoleScanner::new();
    let mut got = s.feed(&bytes[..cut]);
    got.extend(s.feed(&bytes[cut..]));
    assert_eq!(got, parse(text));
    assert!(got[0].text.ends_with('é'));
    assert_eq!(got[0].signature, "BUG:Bad rss-counter state:MM_SWAPENTS");
}

#[test]
fn prefixes_do_not_change_the_result() {
    let bare: Vec<&str> = WARNING_61
        .lines()
        .map(|l| line::strip_prefixes(l.trim_end_matches('\r')))
        .collect();
    let variants = [
        WARNING_61.to_string(),
        bare.join("\n"),
        bare.iter()
            .map(|l| format!("[    T1] {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
        bare.iter()
            .map(|l| format!("[  C0] {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
        bare.iter()
            .map(|l| format!("[ 1502.520319][T14140] {l}"))
            .collect::<Vec<_>>()
            .join("\r\n"),
        bare.iter()
            .map(|l| format!("<4>[    2.000000] {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
    ];
    let want = parse(&variants[1]);
    assert_eq!(want.len(), 2);
    assert_eq!(want[1].text.lines().next(), Some("WARNING: CPU: 0 PID: 1 at /tmp/cons/mod/b61/provoke.c:19 provoke_warn+0x5/0xc [provoke]"));
    assert_eq!(
        want[1].text.lines().nth(6),
        Some(" provoke_init+0x38/0x1000 [provoke]")
    );
    for v in &variants {
        assert_eq!(parse(v), want, "variant {v:?}");
    }
}

#[test]
fn open_report_is_emitted_by_finish() {
    let mut s = ConsoleScanner::new();
    let r = s.feed(
        b"[    7.0] rcu: INFO: rcu_preempt self-detected stall on CPU\n[    7.1] Call Trace:\n",
    );
    assert!(r.is_empty());
    assert!(s.in_report());
    let r = s.finish();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, ReportKind::RcuStall);
    assert_eq!(r[0].signature, "RCU_STALL:unknown");
    assert!(!s.in_report());
    assert!(s.finish().is_empty());
    assert_eq!(s.lines_seen(), 2);
}

#[test]
fn report_is_returned_as_soon_as_it_ends() {
    let mut s = ConsoleScanner::new();
    let mut n = 0;
    for line in WARNING_61.lines() {
        n += s.feed(format!("{line}\n").as_bytes()).len();
    }
    assert_eq!(n, 2);
    assert!(!s.in_report());
}

#[test]
fn body_is_bounded() {
    let mut text =
        String::from("WARNING: CPU: 0 PID: 1 at mm/shmem.c:1 shmem_foo+0x1/0x2\nCall Trace:\n");
    for i in 0..1000 {
        text.push_str(&format!(" frame_{i}+0x1/0x2\n"));
    }
    text.push_str("---[ end trace 0000000000000000 ]---\n");
    let mut s = ConsoleScanner::new();
    let r = s.feed(text.as_bytes());
    assert_eq!(r.len(), 1, "emitted when the bound is hit, not at the end");
    assert!(r[0].truncated);
    assert_eq!(r[0].text.lines().count(), MAX_BODY_LINES);
    assert_eq!(r[0].title, "WARNING in shmem_foo");
    assert!(s.finish().is_empty());
}

#[test]
fn stackless_report_does_not_swallow_the_console() {
    let mut text = String::from(
        "BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 33s!\n",
    );
    for i in 0..100 {
        text.push_str(&format!("unrelated line {i}\n"));
    }
    let r = parse(&text);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].title, "BUG: workqueue lockup");
    assert!(r[0].text.lines().count() <= MAX_LINES_WITHOUT_TRACE);
}

#[test]
fn number_of_reports_is_bounded() {
    let one = "vmstat_refresh: nr_shmem -1\n".repeat(100);
    let mut s = ConsoleScanner::new();
    let r = s.feed(one.as_bytes());
    assert_eq!(r.len(), MAX_REPORTS_PER_SIGNATURE as usize);
    assert_eq!(s.suppressed(), 100 - u64::from(MAX_REPORTS_PER_SIGNATURE));

    let many: String = (0..3000)
        .map(|i| format!("vmstat_refresh: nr_x{i} -1\n"))
        .collect();
    let mut s = ConsoleScanner::new();
    let mut n = s.feed(many.as_bytes()).len();
    n += s.finish().len();
    assert_eq!(n, MAX_REPORTS);
    assert_eq!(s.suppressed(), 3000 - MAX_REPORTS as u64);
}

#[test]
fn long_lines_are_cut() {
    let mut s = ConsoleScanner::new();
    let long = vec![b'x'; 2 * MAX_LINE_BYTES + 100];
    assert!(s.feed(&long).is_empty());
    assert_eq!(s.lines_seen(), 2);
    s.finish();
    assert_eq!(s.lines_seen(), 3);
    // A report line cut in pieces still starts a report, and line numbers count pieces.
    let mut text = "y".repeat(MAX_LINE_BYTES);
    text.push_str("sysrq: Show Memory\n");
    let r = parse(&text);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].first_line, 2);
}

#[test]
fn never_panics_on_garbage() {
    const TOKENS: &[&str] = &[
        "BUG: KASAN: ",
        "slab-use-after-free in ",
        "BUG: KFENCE: ",
        "WARNING: CPU: 0 PID: 1 at ",
        " at ",
        "kernel BUG at ",
        "Oops: ",
        "general protection fault",
        "[#1]",
        "RIP: 0010:",
        "RIP: ",
        "+0x",
        "/0x",
        " (",
        ":",
        ": ",
        "Call Trace:",
        "<IRQ>",
        "</IRQ>",
        "</TASK>",
        "Freed by task 1:",
        "Freed in ",
        "Allocated in ",
        "Last potentially related work creation:",
        "which belongs to the cache ",
        "kfence-#1: cache=",
        "(in kfence-#1):",
        "==================================================",
        "---[ end trace 0 ]---",
        "Kernel panic - not syncing",
        "Kernel Offset:",
        "INFO: task a:1 blocked for more than 5 seconds.",
        "rcu: INFO: rcu_preempt self-detected stall",
        "BUG: soft lockup",
        "BUG: Bad page state",
        "BUG: Bad rss-counter state",
        "BUG ",
        "BUG: ",
        " (Tainted: G): ",
        "vmstat_refresh: ",
        " -",
        "list_del corruption",
        "Unused swap offset entry ",
        "Out of memory: Killed process 1 (",
        ")",
        "taints kernel.",
        "sysrq: ",
        "UBSAN: ",
        "Tainted: ",
        "[",
        "]",
        "[    1.000000]",
        "[ T1]",
        "[<ffffffff81000000>] ",
        "? ",
        "\n",
        "\r\n",
        " ",
        "é",
        "\u{fffd}",
        // Formats added for issue 20.
        "WARNING: fs/dcache.c:829 at ",
        ", CPU#1: syz/5830",
        "WARNING: possible circular locking dependency detected",
        "[ BUG: bad unlock balance detected! ]",
        "INFO: trying to register non-static key.",
        " is trying to acquire lock:",
        "but task is already holding lock:",
        "ffff888106a71958 (&q->lock#5){+.+.}-{4:4}, at: ",
        "-> #1 (",
        "stack backtrace:",
        "is trying to release lock (",
        "BUG: memory leak",
        "unreferenced object 0xffff88007658a9e0 (size 944):",
        "  backtrace:",
        "divide error: 0000 [#1]",
        "PANIC: double fault, error_code: 0x0",
        "Unable to handle kernel NULL pointer dereference at virtual address 0",
        "Internal error: Oops: 96000006 [#1]",
        "pc : ",
        "Call trace:",
        "unregister_netdevice: waiting for lo to become free",
        "BUG: Dentry ffff888119d8a000{i=0,n=file0}  still in use (1)",
        "Kernel panic - not syncing: panic_on_warn set ...",
        "WARNING: the mand mount option is being deprecated",
        "<TASK>",
        "CPU#",
        "on CPU#0",
        "+0x1/0x2",
    ];
    let mut rng = Rng(42);
    for _ in 0..2000 {
        let mut bytes = Vec::new();
        for _ in 0..rng.below(60) {
            if rng.below(8) == 0 {
                bytes.push(rng.next() as u8);
            } else {
                bytes.extend_from_slice(TOKENS[rng.below(TOKENS.len())].as_bytes());
            }
        }
        let whole = parse_bytes(&bytes);
        let size = 1 + rng.below(9);
        assert_eq!(feed_chunks(&bytes, |_| size), whole);
        for r in &whole {
            assert!(!r.title.is_empty(), "{r:?}");
            assert!(r.signature.starts_with(r.kind.tag()));
            assert_eq!(signature_noise(&r.signature), None, "{r:?}");
            assert!(r.text.lines().count() <= MAX_BODY_LINES);
        }
    }
}

#[test]
fn oops_banner_continues_the_report_and_panic_is_separate() {
    let text = "\
BUG: kernel NULL pointer dereference, address: 0000000000000000
#PF: supervisor write access in kernel mode
Oops: Oops: 0002 [#1] PREEMPT SMP NOPTI
RIP: 0010:provoke_null+0x5/0x10 [provoke]
Call Trace:
 <TASK>
 provoke_init+0x102/0xff0 [provoke]
 </TASK>
---[ end trace 0000000000000000 ]---
Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009
Kernel Offset: 0x21e00000 from 0xffffffff81000000
";
    let r = parse(text);
    assert_eq!(
        summary(&r),
        vec![
            (
                ReportKind::Oops,
                "BUG: kernel NULL pointer dereference in provoke_null".to_string(),
                "OOPS:provoke_null".to_string(),
                1
            ),
            (
                ReportKind::Panic,
                "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009"
                    .to_string(),
                "PANIC:Attempted to kill init! exitcode=0x00000009".to_string(),
                10
            ),
        ]
    );
    // A second banner is a new oops.
    let twice = "Oops: 0000 [#1] SMP\nRIP: 0010:a_fn+0x1/0x2\nCall Trace:\nOops: 0000 [#2] SMP\nRIP: 0010:b_fn+0x1/0x2\n";
    let r = parse(twice);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].title, "Oops in a_fn");
    assert_eq!(r[1].title, "Oops in b_fn");
}

#[test]
fn kasan_signature_uses_cache_and_free_stack() {
    let report = |access: &str, cache: &str, free: &str| {
        format!(
            "==================================================================\n\
             BUG: KASAN: slab-use-after-free in {access}+0x1/0x2\n\
             Write of size 4 at addr ffff888012acfc20 by task swapoff/1\n\
             Call Trace:\n <TASK>\n kasan_report+0x96/0xd0\n {access}+0x1/0x2\n shmem_unuse+0x10/0x20\n </TASK>\n\n\
             Freed by task 0:\n kasan_save_stack+0x1/0x2\n kmem_cache_free+0x1/0x2\n {free}+0x1/0x2\n rcu_core+0x1/0x2\n\n\
             The buggy address belongs to the object at ffff888012acfa00\n which belongs to the cache {cache} of size 768\n\
             ==================================================================\n"
        )
    };
    let a = parse(&report(
        "shmem_unuse_inode",
        "shmem_inode_cache",
        "i_callback",
    ));
    let b = parse(&report("xas_load", "shmem_inode_cache", "i_callback"));
    assert_eq!(
        a[0].title,
        "KASAN: slab-use-after-free Write in shmem_unuse_inode"
    );
    assert_eq!(
        b[0].title,
        "KASAN: slab-use-after-free Write in shmem_unuse"
    );
    assert_eq!(
        a[0].signature,
        "KASAN:use-after-free:shmem_inode_cache:free:i_callback"
    );
    assert_eq!(
        a[0].signature, b[0].signature,
        "same object and free site, different access"
    );
    let c = parse(&report("foo", "kmalloc-rnd-05-192", "kfree"));
    assert_eq!(
        c[0].signature,
        "KASAN:use-after-free:kmalloc-192:access:foo"
    );
}

#[test]
fn oom_kill_is_an_event() {
    let r = parse(
        "Memory cgroup out of memory: Killed process 4242 (prog) total-vm:1kB, anon-rss:0kB\n",
    );
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, ReportKind::OomKill);
    assert!(!r[0].is_finding);
    assert_eq!(
        r[0].title,
        "Memory cgroup out of memory: Killed process (prog)"
    );
    assert_eq!(r[0].signature, "OOM_KILL:memcg:prog");
}

#[test]
fn swap_entry_errors_are_findings() {
    let r = parse("[   10.0] swap_info_get: Unused swap offset entry 00000123\n");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, ReportKind::Bug);
    assert_eq!(r[0].title, "swap_info_get: Unused swap offset entry");
    assert_eq!(r[0].signature, "BUG:swap_info_get:Unused swap offset entry");
}

#[test]
fn taint_flag_parsing() {
    let set = |s: &str| s.chars().collect::<BTreeSet<char>>();
    assert_eq!(
        taint_flags("CPU: 0 PID: 1 Comm: init Tainted: G    B   O E      6.1.0-56-amd64 #1"),
        Some(set("BOE"))
    );
    assert_eq!(
        taint_flags(
            "CPU: 0 UID: 0 PID: 1 Comm: init Tainted: G           OEL     6.12.117+deb12-amd64 #1"
        ),
        Some(set("OEL"))
    );
    assert_eq!(
        taint_flags("Tainted: [B]=BAD_PAGE, [O]=OOT_MODULE, [E]=UNSIGNED_MODULE"),
        Some(set("BOE"))
    );
    assert_eq!(
        taint_flags("Tainted: P           O      5.10.0 #1"),
        Some(set("PO"))
    );
    assert_eq!(
        taint_flags("CPU: 0 PID: 1 Comm: init Not tainted 6.1.0-56-amd64 #1"),
        Some(set(""))
    );
    assert_eq!(
        taint_flags("      Not tainted 6.1.0-56-amd64 #1 Debian 6.1.192-2"),
        Some(set(""))
    );
    assert_eq!(taint_flags("sysrq: Show Memory"), None);
    let r = parse(WARNING_61);
    assert_eq!(r[1].taint(), Some(set("OE")));
}

#[test]
fn kinds_round_trip_through_tags() {
    for k in ReportKind::ALL {
        assert_eq!(ReportKind::from_tag(k.tag()), Some(k));
        assert_eq!(k.to_string(), k.tag());
    }
    assert_eq!(ReportKind::from_tag("nope"), None);
    let findings: Vec<ReportKind> = ReportKind::ALL
        .into_iter()
        .filter(|k| !k.is_finding())
        .collect();
    assert_eq!(
        findings,
        vec![ReportKind::OomKill, ReportKind::Taint, ReportKind::Sysrq]
    );
}

#[test]
fn ubsan_report() {
    // Trimmed from syzkaller's pkg/report/testdata/linux/report/520.
    let text = "\
[  175.967267][T13309] ================================================================================
[  175.968362][T13309] UBSAN: array-index-out-of-bounds in /src/linux/arch/x86/kernel/uprobes.c:263
[  175.969802][T13309] index 4 is out of range for type 'insn_byte_t [4]'
[  175.973306][T13309] Call Trace:
[  175.973685][T13309]  dump_stack+0x14b/0x18f
[  175.974290][T13309]  ubsan_epilogue+0xb/0x5a
[  175.974921][T13309]  __ubsan_handle_out_of_bounds.cold+0x62/0x6c
[  175.975740][T13309]  arch_uprobe_analyze_insn+0x91b/0xa40
[  175.976517][T13309]  ? branch_post_xol_op+0x120/0x120
[  175.978833][T13309]  uprobe_mmap+0x5ef/0xf70
[  175.990000][T13309] ================================================================================
";
    let r = parse(text);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, ReportKind::Bug);
    assert_eq!(
        r[0].title,
        "UBSAN: array-index-out-of-bounds in arch_uprobe_analyze_insn"
    );
    assert_eq!(
        r[0].signature,
        "BUG:UBSAN array-index-out-of-bounds:arch_uprobe_analyze_insn"
    );
    assert_eq!(r[0].text.lines().count(), 10);
}

#[test]
fn hard_lockup_skips_nmi_frames() {
    // Shaped after kernel/watchdog*.c: the message, then the registers and stack of the
    // interrupted context, the NMI handler's own frames inside <NMI>.
    let text = "\
NMI watchdog: Watchdog detected hard LOCKUP on cpu 1
Modules linked in:
CPU: 1 PID: 77 Comm: swapoff Not tainted 6.1.0 #1
RIP: 0010:native_queued_spin_lock_slowpath+0x5b/0x2a0
Call Trace:
 <NMI>
 watchdog_overflow_callback+0x60/0x70
 </NMI>
 <TASK>
 _raw_spin_lock+0x29/0x30
 shmem_unuse+0x40/0x200
 try_to_unuse+0x50/0x700
 </TASK>
";
    let r = parse(text);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].kind, ReportKind::HardLockup);
    assert_eq!(r[0].title, "watchdog: hard LOCKUP in shmem_unuse");
    assert_eq!(r[0].signature, "HARD_LOCKUP:shmem_unuse");
}

#[test]
fn old_irq_marker_before_frame() {
    let text = "\
BUG: sleeping function called from invalid context at mm/slab.h:1
Call Trace:
 <IRQ>  [<ffffffff81b2e7d9>] dump_stack+0x45/0x6c
 [<ffffffff81bcb87d>] ___might_sleep+0xd/0x40
 [<ffffffff82680a4a>] ip_idents_reserve+0x9a/0xd0
 <EOI>  [<ffffffff826835e9>] __ip_select_ident+0xc9/0x160
 </TASK>
";
    let r = parse(text);
    assert_eq!(
        r[0].title,
        "BUG: sleeping function called from invalid context in ip_idents_reserve"
    );
}

/// A use-after-free in a loop: whole reports, then one cut off by the end of the console
/// (the VM was ended). The cut-off copy lacks the cache line and is a write where the whole
/// ones were reads: it must not add a second signature. Alone, a cut-off report counts.
#[test]
fn a_report_cut_off_by_the_end_of_the_console_is_dropped_when_a_whole_one_of_its_kind_was_seen() {
    let report = |cache_line: bool| {
        let access = if cache_line { "Read" } else { "Write" };
        let mut r = format!(
            "==================================================================\n\
             BUG: KASAN: use-after-free in shmem_unuse+0x457/0x4b0\n\
             {access} of size 8 at addr ffff8881000f9058 by task init/37\n\
             Call Trace:\n <TASK>\n shmem_unuse+0x457/0x4b0\n </TASK>\n\n\
             Freed by task 0:\n kmem_cache_free+0xed/0x560\n i_callback+0x3f/0x70\n\n",
        );
        if cache_line {
            r.push_str(
                "The buggy address belongs to the object at ffff8881000f8ff0\n \
                 which belongs to the cache shmem_inode_cache of size 696\n\
                 ==================================================================\n",
            );
        }
        r
    };
    let whole = report(true);
    let text = format!("{whole}{whole}{}", report(false));
    let sigs: Vec<String> = parse(&text).into_iter().map(|r| r.signature).collect();
    assert_eq!(
        sigs,
        vec!["KASAN:use-after-free:shmem_inode_cache:free:i_callback"; 2],
        "{sigs:?}"
    );
    let mut scanner = ConsoleScanner::new();
    scanner.feed(text.as_bytes());
    scanner.finish();
    assert_eq!(scanner.suppressed(), 1);
    // Alone, the cut-off report is all there is: it is kept.
    let alone = parse(&report(false));
    assert_eq!(alone.len(), 1);
    assert_eq!(alone[0].signature, "KASAN:use-after-free:-:free:i_callback");
}
