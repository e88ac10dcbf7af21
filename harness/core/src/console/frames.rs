//! Stack frames: parsing `func+0x12/0x34 [module]` lines and deciding which functions are
//! generic plumbing (reporting, locking, scheduling, allocation, entry code) rather than the
//! place a report should be named after.

/// One stack frame of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    /// Function name without offsets and compiler suffixes (`.cold`, `.constprop.0`, ...).
    pub func: &'a str,
    /// False for frames printed with a leading `?` (stale stack contents).
    pub reliable: bool,
    /// The frame sits between `<IRQ>`/`<NMI>` and its closing marker.
    pub irq: bool,
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'$'
}

/// Drop compiler-generated suffixes: `__handle_sysrq.cold` -> `__handle_sysrq`,
/// `__mutex_lock.constprop.0` -> `__mutex_lock`.
pub(crate) fn normalize(func: &str) -> &str {
    match func.find('.') {
        Some(0) | None => func,
        Some(i) => &func[..i],
    }
}

/// Skip `[<ffffffff81234567>] ` address groups (old x86 and some arm64 formats).
fn skip_addresses(mut t: &str) -> Option<&str> {
    while let Some(r) = t.strip_prefix("[<") {
        let end = r.find(">]")?;
        t = r[end + 2..].trim_start();
    }
    Some(t)
}

/// Does `rest` start with ` (file:line)` as `decode_stacktrace.sh` prints it (and not, say,
/// a lockdep lock name ` (&lock){+.+.}`)?
fn is_location_group(rest: &str) -> bool {
    let Some(inner) = rest.strip_prefix(" (") else {
        return false;
    };
    let Some((loc, _)) = inner.split_once(')') else {
        return false;
    };
    let Some((path, line)) = loc.split_once(':') else {
        return false;
    };
    !path.is_empty()
        && !path.contains(' ')
        && (path.contains('.') || path.contains('/'))
        && line.bytes().next().is_some_and(|b| b.is_ascii_digit())
}

/// Parse a symbol such as `func+0x12/0x34 [mod]` or `func (mm/shmem.c:123)` (the form
/// `decode_stacktrace.sh` produces) into the normalized function name.
pub(crate) fn symbol_func(sym: &str) -> Option<&str> {
    let end = sym
        .bytes()
        .position(|b| !is_ident_byte(b))
        .unwrap_or(sym.len());
    let name = &sym[..end];
    let rest = &sym[end..];
    let first = *name.as_bytes().first()?;
    if first.is_ascii_digit() || first == b'.' {
        return None;
    }
    let looks_like_frame = rest.starts_with("+0x") || is_location_group(rest);
    looks_like_frame.then(|| normalize(name))
}

/// Parse a call-trace line (`" ? func+0x1/0x2 [mod]"`); `None` for anything else.
pub(crate) fn parse_frame(line: &str) -> Option<(&str, bool)> {
    let mut t = line.trim_start();
    let mut reliable = true;
    if let Some(r) = t.strip_prefix("? ") {
        reliable = false;
        t = r;
    }
    t = skip_addresses(t)?;
    if let Some(r) = t.strip_prefix("? ") {
        reliable = false;
        t = r;
    }
    Some((symbol_func(t)?, reliable))
}

/// The kernel function of a `RIP: 0010:func+0x12/0x34 [mod]` line; `None` for user-space
/// RIPs (`RIP: 0033:0x43cf20`) and other lines.
pub(crate) fn parse_rip(line: &str) -> Option<&str> {
    let t = line.trim_start();
    if let Some(sym) = t.strip_prefix("IP: ") {
        // Old (4.x) page fault reports: "IP: [<ffffffff8158c2c5>] __call_rcu+0x2f5/0x9a0".
        return symbol_func(skip_addresses(sym.trim_start())?);
    }
    // arm64: "pc : __raw_readb+0x18/0x2c"; 32-bit arm: "PC is at func+0x4c/0x78".
    if let Some(sym) = t
        .strip_prefix("pc : ")
        .or_else(|| t.strip_prefix("PC is at "))
    {
        return symbol_func(skip_addresses(sym.trim_start())?);
    }
    let t = t.strip_prefix("RIP: ")?;
    let (_, sym) = t.split_once(':')?;
    let sym = skip_addresses(sym.trim_start())?;
    symbol_func(sym)
}

/// Generic functions: never used to name a report when a more specific frame exists.
/// An entry ending in `*` is a prefix.
const GENERIC: &[&str] = &[
    // Reporting machinery.
    "dump_stack*",
    "show_stack",
    "show_regs",
    "__show_regs",
    "show_trace_log_lvl",
    "print_report",
    "print_address_description*",
    "kasan_*",
    "__kasan_*",
    "____kasan_*",
    "kfence_*",
    "__kfence_*",
    "__asan_*",
    "kmsan_*",
    "__msan_*",
    "kcsan_*",
    "__tsan_*",
    "ubsan_*",
    "__ubsan_*",
    "handle_overflow",
    "check_memory_region",
    "panic",
    "vpanic",
    "__warn*",
    "warn_slowpath*",
    "report_bug",
    "handle_bug",
    "do_trap",
    "do_error_trap",
    "die",
    "__die*",
    "oops_end",
    "page_fault_oops",
    "kernelmode_fixup_or_oops",
    "__bad_area_nosemaphore",
    "bad_area_nosemaphore",
    "do_user_addr_fault",
    "exc_*",
    "asm_exc_*",
    "asm_sysvec_*",
    "asm_common_interrupt",
    "sysvec_*",
    "__sysvec_*",
    "common_interrupt",
    "bad_page",
    "free_page_is_bad*",
    "check_free_page",
    "check_new_page*",
    "check_bytes_and_report",
    "check_object",
    "alloc_debug_processing",
    "free_debug_processing",
    "object_err",
    "slab_err",
    "print_trailer",
    "refcount_warn_saturate",
    // Helpers that only report what their caller got wrong.
    "skb_panic",
    "skb_over_panic",
    "skb_under_panic",
    // Functions that check what their caller passed (a BUG_ON/WARN_ON on an argument or
    // object state): the caller is the one to name.
    "skb_pull",
    "__skb_pull",
    "__reiserfs_panic",
    "reiserfs_panic",
    "assertfail",
    "btrfs_assertfail",
    "__check_heap_object",
    "__phys_addr",
    "__virt_to_phys",
    "folio_unlock",
    "unlock_page",
    "__flush_work",
    "flush_work",
    "rollback_registered_many",
    "sysfs_remove_group",
    "sysfs_warn_dup",
    "ref_tracker_*",
    "free_large_kmalloc",
    "ida_free",
    "drop_nlink",
    "cleanup_srcu_struct",
    "devres_release_all",
    "add_uevent_var",
    "memdup_user*",
    "mark_buffer_dirty",
    "warn_bogus_irq_restore",
    "__seqprop_assert",
    "__alloc_frozen_pages*",
    "alloc_frozen_pages*",
    "alloc_page_interleave",
    // skb_put()/skb_push() only check the length their caller asks for.
    "skb_put",
    "__skb_put",
    "skb_push",
    "__skb_push",
    "fortify_panic",
    "__fortify_panic",
    "__fortify_report",
    "__fortify_*",
    "__warn_printk",
    "__report_bad_irq",
    "check_flush_dependency",
    "lockdep_rcu_suspicious",
    "print_usage_bug",
    "print_circular_bug*",
    "print_deadlock_bug",
    "print_bad_irq_dependency",
    "print_irq_inversion_bug",
    "print_unlock_imbalance_bug",
    "print_lock_contention_bug",
    "print_freed_lock_bug",
    "print_held_locks_bug",
    "debug_show_held_locks",
    "lockdep_print_held_locks",
    "mark_lock*",
    "mark_usage",
    "validate_chain",
    "check_prev_add",
    "check_prevs_add",
    "check_noncircular",
    "check_irq_usage",
    "check_deadlock",
    "__lock_release",
    "lock_acquired",
    "lock_contended",
    "ex_handler_*",
    "fixup_bug",
    "do_int3*",
    "fixup_exception",
    "vmalloc_fault",
    "spurious_kernel_fault",
    "do_page_fault",
    "__do_page_fault",
    "do_kern_addr_fault",
    "page_fault",
    "async_page_fault",
    "do_divide_error",
    "do_invalid_op",
    "do_double_fault",
    "do_general_protection",
    "invalid_op",
    "divide_error",
    "double_fault",
    "general_protection",
    "error_entry",
    "error_exit",
    "save_stack*",
    "__save_stack_trace",
    "save_stack_trace*",
    "stack_trace_save*",
    "arch_stack_walk",
    "set_track*",
    "kmemleak_*",
    "create_object*",
    "__create_object",
    "trace_hardirqs_*",
    "memcg_slab_post_alloc_hook",
    "might_alloc",
    "fs_reclaim_acquire",
    "fs_reclaim_release",
    "__fs_reclaim_acquire",
    // arm64 and other architectures' stack-walk and trap frames.
    "dump_backtrace*",
    "arm64_*",
    "__arm64_*",
    "el0_*",
    "el1_*",
    "el0t_*",
    "el1h_*",
    "__do_kernel_fault",
    "do_mem_abort",
    "do_translation_fault",
    "do_bad_area",
    "__do_user_fault",
    "do_el0_svc",
    "el0_svc_common",
    "invoke_syscall",
    "bug_handler",
    "brk_handler",
    "call_break_hook",
    "do_debug_exception",
    "arm_notify_die",
    "do_undefinstr",
    "walk_stackframe",
    "__dump_stack",
    "show_stack_*",
    "die_kernel_fault",
    "__die_kernel_fault",
    "handle_exception",
    // I/O accessors (the bug is their caller's address).
    "__raw_read*",
    "__raw_write*",
    "logic_in*",
    "logic_out*",
    "__show_trace",
    "__sanitizer_*",
    "should_fail*",
    "__should_fail*",
    "perf_trace_*",
    "debug_object*",
    "debug_print_object",
    "debug_check_no_locks_freed",
    "work_is_static_object",
    "timer_is_static_object",
    "check_preemption_disabled",
    "debug_smp_processor_id",
    "__this_cpu_preempt_check",
    "__might_sleep",
    "___might_sleep",
    "__might_resched",
    "__might_fault",
    "might_fault",
    "sched_show_task",
    "dump_cpu_task",
    "__virt_addr_valid",
    "unwind_*",
    "__unwind_*",
    "read_word_at_a_time",
    "string",
    "hex_string",
    "vsnprintf",
    "snprintf",
    "sprintf",
    "scnprintf",
    "vscnprintf",
    "console_unlock",
    "vprintk*",
    "_printk",
    "printk",
    "warn_alloc",
    "usercopy_warn",
    "usercopy_abort",
    "__check_object_size",
    "check_heap_object",
    "__x86_indirect_thunk*",
    "__x86_return_thunk",
    "msan_*",
    // NMI backtraces, timers and softirqs (watchdogs print from there).
    "nmi_*",
    "default_do_nmi",
    "end_repeat_nmi",
    "arch_trigger_cpumask_backtrace",
    "trigger_*",
    "watchdog_timer_fn",
    "local_apic_timer_interrupt",
    "smp_apic_timer_interrupt",
    "apic_timer_interrupt",
    "__local_bh_enable_ip",
    "_local_bh_enable",
    "local_bh_enable",
    "update_process_times",
    "hrtimer_*",
    "__hrtimer_*",
    "tick_*",
    "irq_exit*",
    "__irq_exit*",
    "__do_softirq",
    "handle_softirqs",
    "do_softirq",
    "run_ksoftirqd",
    "smpboot_thread_fn",
    "rcu_*",
    "__rcu_*",
    "call_rcu*",
    "kvfree_call_rcu",
    "kfree_rcu*",
    "print_cpu_stall",
    "check_cpu_stall",
    // Scheduling and sleeping locks (hung tasks).
    "__schedule",
    "schedule",
    "schedule_timeout*",
    "schedule_preempt_disabled",
    "schedule_hrtimeout*",
    "io_schedule*",
    "finish_task_switch*",
    "__switch_to*",
    "context_switch",
    "call_rwsem_*",
    "__wait_rcu_gp",
    "console_lock",
    "__srcu_*",
    "preempt_schedule*",
    "__cond_resched",
    "_cond_resched",
    "__mutex_*",
    "mutex_lock*",
    "rt_mutex_*",
    "rwsem_*",
    "down",
    "down_read*",
    "down_write*",
    "__down*",
    "wait_for_completion*",
    "__wait_for_common",
    "wait_for_common*",
    "do_wait_for_common",
    "bit_wait*",
    "__wait_on_bit*",
    "out_of_line_wait_on_bit*",
    "folio_wait_bit*",
    "__wait_on_buffer",
    "wait_on_page_bit*",
    "__lock_page*",
    "__folio_lock*",
    "folio_lock*",
    // Spinning locks and atomics.
    "_raw_spin_*",
    "_raw_read_*",
    "_raw_write_*",
    "raw_spin_*",
    "do_raw_spin_*",
    "queued_spin_lock_slowpath",
    "native_queued_spin_lock_slowpath",
    "__pv_queued_spin_lock_slowpath",
    "lock_acquire*",
    "lock_release",
    "__lock_acquire",
    "lockdep_*",
    "lock_is_held*",
    "debug_lockdep_rcu_enabled",
    "register_lock_class",
    "look_up_lock_class",
    "lock_downgrade",
    "mutex_remove_waiter",
    "finish_wait",
    "prepare_to_wait*",
    "atomic_*",
    "atomic64_*",
    "arch_atomic*",
    "refcount_*",
    "__refcount_*",
    "kref_*",
    "delay_tsc",
    "__const_udelay",
    "__udelay",
    "__delay",
    // Data structure helpers.
    "__list_add_valid*",
    "__list_del_entry_valid*",
    "__list_del_entry",
    "list_del",
    "list_del_init",
    "list_add",
    "list_add_tail",
    "list_move",
    "list_move_tail",
    "xas_*",
    "xa_*",
    "__xa_*",
    "memcpy*",
    "__memcpy*",
    "memset*",
    "__memset*",
    "memmove*",
    "__memmove*",
    "memcmp",
    "strlen",
    "strnlen",
    "strcmp",
    "strncmp",
    "strcpy",
    "strncpy",
    "strscpy*",
    "copy_user_*",
    "_copy_to_user",
    "_copy_from_user",
    "copy_to_user",
    "copy_from_user",
    "rep_movs*",
    "rep_stos*",
    // Allocation and freeing.
    "kmalloc*",
    "__kmalloc*",
    "kzalloc*",
    "kvmalloc*",
    "__kvmalloc*",
    "krealloc*",
    "kfree",
    "kvfree",
    "kfree_sensitive",
    "kzfree",
    "kmem_cache_alloc*",
    "kmem_cache_free*",
    "__kmem_cache_*",
    "slab_*",
    "__slab_*",
    "___slab_*",
    "do_slab_free",
    "get_partial_node",
    "alloc_slab_page",
    "allocate_slab",
    "new_slab",
    "alloc_pages*",
    "__alloc_pages*",
    "get_page_from_freelist",
    "free_pages*",
    "__free_pages*",
    "free_unref_*",
    "free_pcp*",
    "free_the_page",
    "__free_one_page",
    "free_one_page",
    "__folio_put",
    "folio_put",
    "put_page",
    "release_pages",
    "folios_put*",
    // Entry code, kthreads, workqueues, idle.
    "entry_SYSCALL*",
    "do_syscall_*",
    "x64_sys_call",
    "syscall_exit*",
    "exit_to_user_mode*",
    "ret_from_fork*",
    "kthread",
    "worker_thread",
    "process_one_work",
    "process_scheduled_works",
    "do_idle",
    "default_idle*",
    "cpu_startup_entry",
    "start_secondary",
    "secondary_startup*",
    "arch_cpu_idle",
    "cpuidle_*",
    "native_safe_halt",
    "pv_native_safe_halt",
];

/// Is `func` generic plumbing (see [`GENERIC`])?
pub(crate) fn is_generic(func: &str) -> bool {
    GENERIC.iter().any(|pat| match pat.strip_suffix('*') {
        Some(prefix) => func.starts_with(prefix),
        None => func == *pat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(
            parse_frame(" dump_stack_lvl+0x44/0x5c"),
            Some(("dump_stack_lvl", true))
        );
        assert_eq!(
            parse_frame(" ? _printk+0x68/0x83"),
            Some(("_printk", false))
        );
        assert_eq!(
            parse_frame(" __handle_sysrq.cold+0x44/0x11c"),
            Some(("__handle_sysrq", true))
        );
        assert_eq!(
            parse_frame(" provoke_warn+0x5/0xc [provoke]"),
            Some(("provoke_warn", true))
        );
        assert_eq!(
            parse_frame("dump_stack_lvl (lib/dump_stack.c:107) "),
            Some(("dump_stack_lvl", true))
        );
        assert_eq!(
            parse_frame(" [<ffffffff81234567>] ? foo+0x1/0x2"),
            Some(("foo", false))
        );
        assert_eq!(parse_frame(" ? 0xffffffffc0212000"), None);
        assert_eq!(parse_frame("Modules linked in: provoke(OE+)"), None);
        assert_eq!(parse_frame("Call Trace:"), None);
        assert_eq!(parse_frame(" <TASK>"), None);
        assert_eq!(parse_frame("page: refcount:0 mapcount:1"), None);
        assert_eq!(parse_frame(""), None);
        assert_eq!(parse_frame(" [<ffff"), None);
    }

    #[test]
    fn rip() {
        assert_eq!(
            parse_rip("RIP: 0010:provoke_warn+0x5/0xc [provoke]"),
            Some("provoke_warn")
        );
        assert_eq!(parse_rip("RIP: 0033:0x43cf20"), None);
        assert_eq!(
            parse_rip("RIP: 0010:__list_del_entry_valid.cold+0x31/0x47"),
            Some("__list_del_entry_valid")
        );
        assert_eq!(
            parse_rip("RSP: 0018:ff535bfbc00139e8 EFLAGS: 00000246"),
            None
        );
    }

    #[test]
    fn generic() {
        assert!(is_generic("__schedule"));
        assert!(is_generic("schedule_timeout_uninterruptible"));
        assert!(is_generic("kasan_report"));
        assert!(is_generic("xas_start"));
        assert!(!is_generic("shmem_unuse"));
        assert!(!is_generic("schedulefoo"));
        assert!(!is_generic("i_callback"));
        assert!(!is_generic("__fdget_pos"));
    }
}
