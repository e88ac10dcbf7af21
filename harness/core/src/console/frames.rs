//! Stack frames: parsing `func+0x12/0x34 [module]` lines (which functions are generic
//! plumbing is [`super::generic`]'s business).

pub(crate) use super::generic::is_generic;

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
}
