//! Unit tests of issue 20's triage: report formats of other kernel versions and
//! architectures, titles that name the function, lockdep, kmemleak, traps.

use super::tests::summary;
use super::*;

#[test]
fn new_warning_format_names_the_site_without_noise() {
    // syzkaller's pkg/report/testdata/linux/report/756 (6.18 format), trimmed.
    let text = "\
[  195.358969][ T5830] ------------[ cut here ]------------
[  195.364985][ T5830] WARNING: fs/dcache.c:829 at fast_dput+0x334/0x430, CPU#1: syz-executor/5830
[  195.373920][ T5830] Modules linked in:
[  195.378541][ T5830] CPU: 1 UID: 0 PID: 5830 Comm: syz-executor Not tainted syzkaller #0 PREEMPT(full)
[  195.398271][ T5830] RIP: 0010:fast_dput+0x334/0x430
[  195.428425][ T5830] Call Trace:
[  195.428434][ T5830]  <TASK>
[  195.428467][ T5830]  dput+0xe8/0x1a0
[  195.450810][ T5830]  ovl_stack_put+0x6a/0xa0
[  195.746308][ T5830]  </TASK>
[  195.746308][ T5830] ---[ end trace 0000000000000000 ]---
";
    let r = parse(text);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].title, "WARNING in fast_dput");
    assert_eq!(r[0].signature, "WARNING:fast_dput");
    // The site unnamed (`at 0x0`): the RIP names it.
    let r = parse(&text.replace("at fast_dput+0x334/0x430", "at 0x0"));
    assert_eq!(r[0].signature, "WARNING:fast_dput");
    // The oldest format.
    let r = parse("WARNING: at mm/shmem.c:12 shmem_x()\nCall Trace:\n---[ end trace 1 ]---\n");
    assert_eq!(r[0].title, "WARNING in shmem_x");
}

#[test]
fn a_warning_stays_open_through_the_panic_on_warn_that_prints_its_stack() {
    // Shaped after syzkaller's pkg/report/testdata/linux/report/140 (4.15): panic_on_warn
    // panics inside __warn(), before the registers and the trace.
    let text = "\
[  251.257471] WARNING: CPU: 0 PID: 5944 at lib/refcount.c:187 refcount_sub_and_test+0x167/0x1b0
[  251.266280] Kernel panic - not syncing: panic_on_warn set ...
[  251.266280] 
[  251.273637] CPU: 0 PID: 5944 Comm: syz-executor1 Not tainted 4.15.0-rc4+ #164
[  251.290229] Call Trace:
[  251.292883]  dump_stack+0x194/0x257
[  251.292883]  panic+0x1e4/0x41c
[  251.292883]  __warn+0x1dc/0x200
[  251.292883]  report_bug+0x211/0x2d0
[  251.292883]  fixup_bug.part.11+0x37/0x80
[  251.292883]  do_error_trap+0x2d7/0x3e0
[  251.292883]  invalid_op+0x22/0x40
[  251.292883] RIP: 0010:refcount_sub_and_test+0x167/0x1b0
[  251.292883]  refcount_dec_and_test+0x1a/0x20
[  251.292883]  sctp_wfree+0x12a/0x5a0
[  251.292883]  skb_release_head_state+0x124/0x260
[  251.300000] Dumping ftrace buffer:
[  251.300000]    (ftrace buffer empty)
[  251.300000] Kernel Offset: disabled
[  251.300000] Rebooting in 86400 seconds..
";
    let r = parse(text);
    assert_eq!(
        summary(&r),
        vec![
            (
                ReportKind::Warning,
                "WARNING in sctp_wfree".to_string(),
                "WARNING:sctp_wfree".to_string(),
                1
            ),
            (
                ReportKind::Panic,
                "Kernel panic - not syncing: panic_on_warn set ...".to_string(),
                "PANIC:panic_on_warn set ...".to_string(),
                2
            ),
        ]
    );
}

#[test]
fn kernel_bug_is_named_after_the_function_not_the_reporting_helper() {
    // Shaped after syzkaller's kernel BUG reports at net/core/skbuff.c (skb_panic).
    let text = "\
skbuff: skb_over_panic: text:ffffffff8a1c1f4b len:156 put:148 head:ffff888013d2e000 data:ffff888013d2e010 tail:0xac end:0x80 dev:<NULL>
------------[ cut here ]------------
kernel BUG at net/core/skbuff.c:105!
invalid opcode: 0000 [#1] PREEMPT SMP KASAN
CPU: 0 PID: 3607 Comm: syz-executor334 Not tainted 5.17.0-syzkaller #0
RIP: 0010:skb_panic+0x16c/0x16e
Call Trace:
 <TASK>
 skb_over_panic+0x2b/0x30
 skb_put.cold+0x24/0x24
 sctp_packet_transmit+0x1ab0/0x2010
 sctp_outq_flush+0x2a1/0x2b0
 </TASK>
---[ end trace 0000000000000000 ]---
";
    let r = parse(text);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].title, "kernel BUG in sctp_packet_transmit");
    assert_eq!(r[0].signature, "KERNEL_BUG:sctp_packet_transmit");
}

/// Circular dependency, trimmed from syzkaller's pkg/report/testdata/linux/report/747 (6.15):
/// longer than 40 lines before its stack, lock lines that look like frames.
fn circular(acquire: &str, held: &str) -> String {
    let mut s = format!(
        "\
======================================================
WARNING: possible circular locking dependency detected
6.15.0-rc7-dirty #2 Not tainted
------------------------------------------------------
syz.5.7376/24950 is trying to acquire lock:
ffff888106a71958 ({acquire}){{+.+.}}-{{4:4}}, at: blk_mq_update_nr_hw_queues+0x49a/0x1a10

but task is already holding lock:
ffff888106a71428 ({held}#55){{++++}}-{{0:0}}, at: nbd_start_device+0x16c/0xac0

which lock already depends on the new lock.

the existing dependency chain (in reverse order) is:

-> #1 ({held}#55){{++++}}-{{0:0}}:
"
    );
    for i in 0..40 {
        s.push_str(&format!("       chain_frame_{i}+0x1/0x2\n"));
    }
    s.push_str(
        "
other info that might help us debug this:

 *** DEADLOCK ***

1 lock held by syz.5.7376/24950:
 #0: ffffffff8f76e570 (cb_lock){++++}-{4:4}, at: genl_rcv+0x19/0x40

stack backtrace:
CPU: 0 UID: 0 PID: 24950 Comm: syz.5.7376 Not tainted 6.15.0-rc7-dirty #2 PREEMPT(full)
Call Trace:
 <TASK>
 dump_stack_lvl+0x116/0x1f0
 print_circular_bug+0x275/0x350
 check_noncircular+0x14c/0x170
 __lock_acquire+0x1390/0x1c90
 lock_acquire+0x175/0x360
 __mutex_lock+0x19a/0xb00
 blk_mq_update_nr_hw_queues+0x49a/0x1a10
 nbd_start_device+0x16c/0xac0
 </TASK>
unrelated line after the report
",
    );
    s
}

#[test]
fn lockdep_reports_are_read_by_their_structure() {
    let r = parse(&circular("&q->elevator_lock", "&q->q_usage_counter(io)"));
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        r[0].title,
        "WARNING: possible circular locking dependency detected in blk_mq_update_nr_hw_queues"
    );
    assert_eq!(
        r[0].signature,
        "WARNING:possible circular locking dependency detected:&q->elevator_lock:&q->q_usage_counter(io)"
    );
    assert!(r[0].text.ends_with("</TASK>"), "ends at the final stack");
    assert!(!r[0].truncated);
    // Other locks, another signature.
    let other = parse(&circular("&mm->mmap_lock", "&sb->s_type->i_mutex_key"));
    assert_ne!(other[0].signature, r[0].signature);

    // Before 4.15: a bracketed headline, no <TASK> markers.
    let old = "\
=====================================
[ BUG: bad unlock balance detected! ]
4.9.0+ #1 Not tainted
-------------------------------------
syz-executor/1234 is trying to release lock (sk_lock-AF_INET6) at:
[<ffffffff83a1c4a5>] ipmr_mfc_seq_stop+0xe1/0x130
but there are no more locks to release!

other info that might help us debug this:
no locks held by syz-executor/1234.

stack backtrace:
CPU: 1 PID: 1234 Comm: syz-executor Not tainted 4.9.0+ #1
 ffff8801c6b37898 ffffffff8234b3f2 ffffffff00000001 1ffff10038d66ea6
Call Trace:
 [<ffffffff8234b3f2>] dump_stack+0x292/0x398
 [<ffffffff8145ad1a>] print_unlock_imbalance_bug+0x17a/0x1a0
 [<ffffffff83a1c4a5>] ipmr_mfc_seq_stop+0xe1/0x130
 [<ffffffff81a1c4a5>] seq_read+0x56/0x70
next message
";
    let r = parse(old);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        r[0].title,
        "WARNING: bad unlock balance detected in ipmr_mfc_seq_stop"
    );
    assert_eq!(
        r[0].signature,
        "WARNING:bad unlock balance detected:ipmr_mfc_seq_stop"
    );
    assert!(r[0].text.ends_with("seq_read+0x56/0x70"));

    let key = "\
INFO: trying to register non-static key.
The code is fine but needs lockdep annotation, or maybe
you didn't initialize this object before use?
turning off the locking correctness validator.
CPU: 0 PID: 3 Comm: kworker/0:0 Not tainted 6.1.0 #1
Call Trace:
 <TASK>
 dump_stack_lvl+0x1/0x2
 register_lock_class+0x1/0x2
 __lock_acquire+0x1/0x2
 lock_acquire+0x1/0x2
 _raw_spin_lock_bh+0x1/0x2
 tun_flow_cleanup+0x1/0x2
 call_timer_fn+0x1/0x2
 </TASK>
";
    let r = parse(key);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        r[0].title,
        "WARNING: trying to register non-static key in tun_flow_cleanup"
    );
}

#[test]
fn kmemleak_report() {
    // syzkaller's pkg/report/testdata/linux/report/151 (4.15), trimmed; `BUG: memory leak`
    // is syzkaller's own line, the rest the kernel's /sys/kernel/debug/kmemleak.
    let text = "\
BUG: memory leak
unreferenced object 0xffff88007658a9e0 (size 944):
  comm \"syz-executor1\", pid 4094, jiffies 4294767514 (age 15.374s)
  hex dump (first 32 bytes):
    24 81 04 00 00 00 00 00 00 00 00 00 00 00 00 00  $...............
  backtrace:
    [<000000005b8e4771>] kmem_cache_alloc+0x1c0/0x3c0
    [<0000000017059910>] alloc_inode+0x133/0x190
    [<00000000ba068e0d>] new_inode_pseudo+0x69/0x1a0
    [<00000000b7bf3701>] new_inode+0x1c/0x40
    [<000000009423fcb4>] debugfs_get_inode+0x19/0x120

unreferenced object 0xffff88007c996480 (size 96):
  comm \"syz-executor1\", pid 4094, jiffies 4294767514 (age 15.374s)
  backtrace (crc c9a1c131):
    kmemleak_alloc_recursive include/linux/kmemleak.h:44 [inline]
    __kmalloc_cache_noprof+0x42f/0x5e0 mm/slub.c:5719
    kzalloc_noprof include/linux/slab.h:1094 [inline]
    lookup_or_create_module_kobject+0x57/0x110 kernel/params.c:764
    module_add_driver+0x13c/0x1e0 drivers/base/module.c:46
next line
";
    let r = parse(text);
    assert_eq!(
        summary(&r),
        vec![
            (
                ReportKind::MemoryLeak,
                "memory leak in new_inode_pseudo".to_string(),
                "MEMORY_LEAK:new_inode_pseudo".to_string(),
                1
            ),
            (
                ReportKind::MemoryLeak,
                "memory leak in lookup_or_create_module_kobject".to_string(),
                "MEMORY_LEAK:lookup_or_create_module_kobject".to_string(),
                13
            ),
        ]
    );
    assert_eq!(r[0].text.lines().count(), 11);
    assert!(r[0].is_finding);
}

#[test]
fn x86_traps() {
    // syzkaller's pkg/report/testdata/linux/report/49 (4.9), trimmed.
    let divide = "\
divide error: 0000 [#1] SMP DEBUG_PAGEALLOC KASAN
Modules linked in:
CPU: 1 PID: 0 Comm: swapper/1 Not tainted 4.9.0+ #1
RIP: 0010:[<ffffffff8575b41c>]  [<ffffffff8575b41c>] snd_hrtimer_callback+0x1bc/0x3c0
Call Trace:
 <IRQ>
 [<ffffffff815b4b5e>] __hrtimer_run_queues+0x36e/0xf20
 <EOI>
---[ end trace 1 ]---
";
    let r = parse(divide);
    assert_eq!(r[0].title, "divide error in snd_hrtimer_callback");
    assert_eq!(r[0].signature, "OOPS:snd_hrtimer_callback");
    let r = parse(&divide.replace("divide error:", "divide_error:"));
    assert_eq!(r[0].title, "divide error in snd_hrtimer_callback");

    // A double fault prints registers, no call trace, then panics.
    let double = "\
PANIC: double fault, error_code: 0x0
CPU: 0 PID: 2 Comm: kthreadd Not tainted 4.16.0+ #1
RIP: 0010:shmem_recursive_fn+0x10/0x20
RSP: 0018:ffffc90000c07fa8 EFLAGS: 00010082
Kernel panic - not syncing: Machine halted.
CPU: 0 PID: 2 Comm: kthreadd Not tainted 4.16.0+ #1
Call Trace:
 <#DF>
 dump_stack+0x1/0x2
 panic+0x1/0x2
 df_debug+0x1/0x2
 do_double_fault+0x1/0x2
 double_fault+0x1/0x2
Kernel Offset: disabled
";
    let r = parse(double);
    assert_eq!(
        summary(&r),
        vec![
            (
                ReportKind::Oops,
                "double fault in shmem_recursive_fn".to_string(),
                "OOPS:shmem_recursive_fn".to_string(),
                1
            ),
            (
                ReportKind::Panic,
                "Kernel panic - not syncing: Machine halted.".to_string(),
                "PANIC:Machine halted.".to_string(),
                5
            ),
        ]
    );

    let ud = "invalid opcode: 0000 [#1] SMP\nRIP: 0010:shmem_x+0x1/0x2\nCall Trace:\n shmem_y+0x1/0x2\n---[ end trace 0 ]---\n";
    assert_eq!(parse(ud)[0].title, "invalid opcode in shmem_x");
}

#[test]
fn arm64_oopses() {
    // Shaped after arch/arm64/mm/fault.c (die_kernel_fault) and syzkaller's
    // pkg/report/testdata/linux/report/524.
    let text = "\
Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008
Mem abort info:
  ESR = 0x96000006
Internal error: Oops: 96000006 [#1] PREEMPT SMP
Modules linked in:
CPU: 0 PID: 1 Comm: swapper/0 Not tainted 5.9.0 #11
pc : shmem_unuse+0x18/0x2c
lr : try_to_unuse+0x50/0x13c
sp : ffff0000401f7c40
Call trace:
 shmem_unuse+0x18/0x2c
 try_to_unuse+0x50/0x13c
 __arm64_sys_swapoff+0x1/0x2
 el0_svc_common+0x1/0x2
Code: 910003fd f9000bf3 aa0003f3 97932e41 (08dffe60)
---[ end trace ec5638d8e916ae8b ]---
Kernel panic - not syncing: Oops: Fatal exception
";
    let r = parse(text);
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!(
        r[0].title,
        "Unable to handle kernel NULL pointer dereference in shmem_unuse"
    );
    assert_eq!(r[0].signature, "OOPS:shmem_unuse");
    assert_eq!(r[1].kind, ReportKind::Panic);

    let internal = "\
Internal error: synchronous external abort: 96000010 [#1] PREEMPT SMP
pc : __raw_readb+0x18/0x2c
Call trace:
 __raw_readb+0x18/0x2c
 logic_inb+0x50/0x13c
 ns558_init+0x17c/0x63c
---[ end trace ec5638d8e916ae8b ]---
";
    assert_eq!(parse(internal)[0].title, "Internal error in ns558_init");

    // arm64 BUG(): the banner continues the kernel BUG report.
    let bug = "\
kernel BUG at mm/shmem.c:1234!
Internal error: Oops - BUG: 00000000f2000800 [#1] PREEMPT SMP
pc : shmem_x+0x1/0x2
Call trace:
 shmem_x+0x1/0x2
---[ end trace 0 ]---
";
    let r = parse(bug);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].title, "kernel BUG in shmem_x");
}

#[test]
fn unregister_netdevice_hang() {
    let text = "\
unregister_netdevice: waiting for lo to become free. Usage count = 5
unregister_netdevice: waiting for syz_tun to become free. Usage count = 1
";
    let r = parse(text);
    assert_eq!(r.len(), 2);
    assert_eq!(
        r[0].title,
        "unregister_netdevice: waiting for DEV to become free"
    );
    assert_eq!(r[0].signature, r[1].signature);
    assert_eq!(
        r[0].signature,
        "BUG:unregister_netdevice: waiting for DEV to become free"
    );
}

#[test]
fn old_kasan_free_stacks_skip_save_stack() {
    // 4.x KASAN: the free stack starts with save_stack/kasan_slab_free.
    let report = |free: &str| {
        format!(
            "==================================================================\n\
             BUG: KASAN: use-after-free in remove_wait_queue+0x1/0x2 at addr ffff8801\n\
             Read of size 8 by task syz/1\n\
             Call Trace:\n remove_wait_queue+0x1/0x2\n ep_unregister_pollwait+0x1/0x2\n\n\
             Freed by task 3:\n save_stack_trace+0x16/0x20\n save_stack+0x43/0xd0\n \
             kasan_slab_free+0x71/0xc0\n kfree+0xca/0x250\n {free}+0x1/0x2\n\n\
             The buggy address belongs to the object at ffff8801\n which belongs to the cache kmalloc-512 of size 512\n\
             ==================================================================\n"
        )
    };
    let a = parse(&report("binder_thread_dec_tmpref"));
    let b = parse(&report("other_release"));
    assert_eq!(
        a[0].signature,
        "KASAN:use-after-free:kmalloc-512:free:binder_thread_dec_tmpref"
    );
    assert_ne!(a[0].signature, b[0].signature);
}

#[test]
fn signatures_of_noisy_first_lines() {
    let sig = |text: &str| {
        parse(text)
            .into_iter()
            .map(|r| r.signature)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        sig("BUG: Dentry ffff888119d8a000{i=0,n=file0}  still in use (1) [unmount of tmpfs tmpfs]\nCall Trace:\n umount_check+0x1/0x2\n shrink_dcache_for_umount+0x1/0x2\n</TASK>\n"),
        vec!["BUG:Dentry still in use:shrink_dcache_for_umount"]
    );
    assert_eq!(
        sig("Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: __lock_acquire+0x7ea/0x7f0\nKernel Offset: disabled\n"),
        vec!["PANIC:stack-protector: Kernel stack is corrupted in: __lock_acquire"]
    );
    assert_eq!(
        sig("BUG: spinlock lockup suspected on CPU#0, syz-executor/1234\nCall Trace:\n spin_dump+0x1/0x2\n do_raw_spin_lock+0x1/0x2\n shmem_x+0x1/0x2\n</TASK>\n"),
        vec!["BUG:spinlock lockup suspected:shmem_x"]
    );
    assert_eq!(
        sig("Kernel panic - not syncing: Watchdog detected hard LOCKUP on cpu 1\nKernel Offset: disabled\n"),
        vec!["PANIC:Watchdog detected hard LOCKUP"]
    );
}

#[test]
fn dentry_still_in_use_takes_the_warning_that_follows() {
    // syzkaller's pkg/report/testdata/linux/report/624 (5.10), trimmed.
    let text = "\
BUG: Dentry ffff888119d8a000{i=0,n=.index}  still in use (1) [unmount of ramfs ramfs]
------------[ cut here ]------------
WARNING: CPU: 0 PID: 367 at fs/dcache.c:1616 umount_check+0x18d/0x1d0
RIP: 0010:umount_check+0x18d/0x1d0
Call Trace:
 d_walk+0x309/0x540
 shrink_dcache_for_umount+0x8e/0x1b0
---[ end trace 1 ]---
";
    let r = parse(text);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].title, "BUG: Dentry still in use in d_walk");
    assert_eq!(r[0].signature, "BUG:Dentry still in use:d_walk");
}

#[test]
fn vfs_errors_and_tasks_that_cannot_die() {
    let r = parse("VFS: Busy inodes after unmount of tmpfs. Self-destruct in 5 seconds.  Have a nice day...\nVFS: Close: file count is 0\n");
    let sigs: Vec<&str> = r.iter().map(|r| r.signature.as_str()).collect();
    assert_eq!(
        sigs,
        vec![
            "BUG:VFS: Busy inodes after unmount",
            "BUG:VFS: Close: file count is 0"
        ]
    );
    let r = parse("INFO: task syz-executor.4:21128 can't die for more than 143 seconds.\nCall Trace:\n <TASK>\n __schedule+0x1/0x2\n p9_client_rpc+0x1/0x2\n </TASK>\n");
    assert_eq!(r[0].kind, ReportKind::HungTask);
    assert_eq!(r[0].title, "INFO: task can't die in p9_client_rpc");
    assert_eq!(r[0].signature, "HUNG_TASK:can't die:p9_client_rpc");
}
