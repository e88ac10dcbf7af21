//! Console line clean-up: the printk prefixes that precede a kernel message.
//!
//! A console line may start with any of (in this order, each optional):
//! - a syslog level `<4>` (seen in `/dev/kmsg`-style dumps),
//! - a printk timestamp `[    1.234567]` (CONFIG_PRINTK_TIME),
//! - a caller id `[    T1]` (task) or `[  C0]` (CPU in interrupt context) (CONFIG_PRINTK_CALLER),
//!   printed right after the timestamp (`[  649.6][ T6659] `) or alone.
//!
//! [`strip_prefixes`] removes them and the single space that separates them from the
//! message, so that a stack frame line keeps its own indentation (`" dump_stack_lvl+0x44/0x5c"`).
//! Text that user space wrote to the console without a newline can precede a kernel line
//! (`"threads started[   10.93] INFO: task ..."`), and a kernel line can be interrupted by
//! another one: [`split_messages`] cuts a line at every timestamp after its start.

/// Is `inner` (the text between `[` and `]`) a timestamp such as `    1.234567`?
fn is_timestamp(inner: &str) -> bool {
    let t = inner.trim_start_matches(' ');
    let Some((secs, frac)) = t.split_once('.') else {
        return false;
    };
    !secs.is_empty()
        && secs.bytes().all(|b| b.is_ascii_digit())
        && !frac.is_empty()
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// Is `inner` exactly a printk timestamp (`%5lu.%06lu`)? Used inside a line, where a looser
/// match could cut a message that merely contains a bracketed number.
fn is_printk_timestamp(inner: &str) -> bool {
    is_timestamp(inner)
        && inner
            .split_once('.')
            .is_some_and(|(_, frac)| frac.len() == 6)
}

/// Is `inner` a printk caller id such as `    T1` or `  C0`?
fn is_caller(inner: &str) -> bool {
    let t = inner.trim_start_matches(' ');
    let mut b = t.bytes();
    matches!(b.next(), Some(b'T' | b'C')) && t.len() > 1 && b.all(|c| c.is_ascii_digit())
}

/// Longest bracket group we look at; printk prefixes are at most ~16 characters.
const MAX_GROUP: usize = 24;

/// If `s` starts with a `[...]` group accepted by `ok`, return the text after it.
fn strip_group(s: &str, ok: fn(&str) -> bool) -> Option<&str> {
    let rest = s.strip_prefix('[')?;
    let close = rest.bytes().take(MAX_GROUP).position(|b| b == b']')?;
    ok(&rest[..close]).then(|| &rest[close + 1..])
}

/// Strip the prefixes at the start of `s`; `None` if there was none.
fn strip_leading(s: &str) -> Option<&str> {
    let mut rest = s;
    let mut found = false;
    if let Some(r) = rest.strip_prefix('<') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        if (1..=3).contains(&digits) && r[digits..].starts_with('>') {
            rest = &r[digits + 1..];
            found = true;
        }
    }
    if let Some(r) = strip_group(rest, is_timestamp) {
        rest = r;
        found = true;
    }
    if let Some(r) = strip_group(rest, is_caller) {
        rest = r;
        found = true;
    }
    if !found {
        return None;
    }
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

/// Does `s` start with a printk timestamp group `[    1.234567]`?
fn starts_with_timestamp(s: &str) -> bool {
    strip_group(s, is_printk_timestamp).is_some()
}

/// Remove printk prefixes (syslog level, timestamp, caller id) from the start of a message.
pub(crate) fn strip_prefixes(msg: &str) -> &str {
    strip_leading(msg).unwrap_or(msg)
}

/// Split a console line into kernel messages, each with its printk prefixes stripped.
///
/// Usually a line is one message. When two messages were printed without a newline between
/// them (user-space output followed by a kernel line, or a kernel line interrupted by
/// another CPU's line), every timestamp after the start of the line begins a new message:
/// `"accessBUG: x[   76.4] BUG: unable to handle ..."` yields `"accessBUG: x"` and
/// `"BUG: unable to handle ..."`. Empty leading fragments are dropped.
pub(crate) fn split_messages(line: &str) -> Vec<&str> {
    let mut cuts = Vec::new();
    let head = strip_leading(line).map_or(0, |rest| line.len() - rest.len());
    // Never cut at 0: a message starting with a timestamp is one message.
    let mut from = if head > 0 {
        head
    } else {
        line.chars().next().map_or(0, char::len_utf8)
    };
    while let Some(pos) = line.get(from..).and_then(|rest| rest.find('[')) {
        let at = from + pos;
        if starts_with_timestamp(&line[at..]) {
            cuts.push(at);
        }
        from = at + 1;
    }
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut begin = 0;
    for end in cuts.into_iter().chain(std::iter::once(line.len())) {
        let piece = &line[begin..end];
        if begin > 0 || !piece.trim().is_empty() || end == line.len() {
            out.push(strip_prefixes(piece));
        }
        begin = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{split_messages, strip_prefixes};

    #[test]
    fn strips_timestamp_and_caller() {
        assert_eq!(
            strip_prefixes("[    1.234567] sysrq: Trigger a crash"),
            "sysrq: Trigger a crash"
        );
        assert_eq!(
            strip_prefixes("[  649.625993][ T6659] BUG: KASAN: x"),
            "BUG: KASAN: x"
        );
        assert_eq!(strip_prefixes("[  366.493841][    C0] BUG: x"), "BUG: x");
        assert_eq!(strip_prefixes("[    T1] hello"), "hello");
        assert_eq!(strip_prefixes("[  C0] hello"), "hello");
        assert_eq!(strip_prefixes("<4>[    2.0] hi"), "hi");
        assert_eq!(strip_prefixes("[ 1502.520319][T14140] x"), "x");
    }

    #[test]
    fn keeps_frame_indentation() {
        assert_eq!(strip_prefixes("[    2.1] ? foo+0x1/0x2"), "? foo+0x1/0x2");
        assert_eq!(
            strip_prefixes("[    2.1]  dump_stack+0x1/0x2"),
            " dump_stack+0x1/0x2"
        );
        assert_eq!(
            strip_prefixes("[  650.1][ T6659]  kasan_set_track+0x4f/0x70"),
            " kasan_set_track+0x4f/0x70"
        );
    }

    #[test]
    fn leaves_other_lines_alone() {
        assert_eq!(strip_prefixes("init: mode=crash"), "init: mode=crash");
        assert_eq!(
            strip_prefixes("[     79]     0    79 init"),
            "[     79]     0    79 init"
        );
        assert_eq!(strip_prefixes("[  pid  ]   uid"), "[  pid  ]   uid");
        assert_eq!(strip_prefixes(""), "");
        assert_eq!(strip_prefixes("["), "[");
        assert_eq!(strip_prefixes("[1.]x"), "[1.]x");
        assert_eq!(strip_prefixes("[a.5] x"), "[a.5] x");
    }

    #[test]
    fn splits_glued_messages() {
        assert_eq!(
            split_messages("threads started[   10.933362] INFO: task init:81 blocked"),
            vec!["threads started", "INFO: task init:81 blocked"]
        );
        assert_eq!(
            split_messages(
                "[   76.470085] a: vmalloc: failure[   76.471107] BUG: unable to handle"
            ),
            vec!["a: vmalloc: failure", "BUG: unable to handle"]
        );
        assert_eq!(split_messages("[    1.0] one message"), vec!["one message"]);
        assert_eq!(split_messages("<4>[    1.000000][ T1] one"), vec!["one"]);
        assert_eq!(split_messages("é[   10.933362] two"), vec!["é", "two"]);
        assert_eq!(split_messages(""), vec![""]);
        assert_eq!(
            split_messages("[   2.000] x [1.5] y [  3.000] z"),
            vec!["x [1.5] y [  3.000] z"]
        );
        assert_eq!(
            split_messages("[   1.000000] [   2.000000] z"),
            vec!["", "z"]
        );
    }
}
