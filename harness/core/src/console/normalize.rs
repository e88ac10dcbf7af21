//! Signature normalizer: the free text that goes into a signature (a panic reason, the words
//! of a `BUG:` line, a lockdep headline) without the tokens that change from one run of the
//! same bug to the next.
//!
//! [`normalize_text`] removes, wherever they appear:
//! - **offsets** of symbols: `fast_dput+0x334/0x430` -> `fast_dput` (also `+0x334` alone);
//! - **addresses**: hex numbers of 12 or more digits, with or without `0x`
//!   (`ffff888119d8a000`, `0x0000000012345678`, hashed `%p` values), a `{...}` group glued to
//!   one (`ffff888119d8a000{i=0,n=file0}`, as `BUG: Dentry` prints) and `(____ptrval____)`;
//!   shorter hex numbers are kept: they are codes (`exitcode=0x00000009`), not places;
//! - **CPU numbers**: `on CPU#0`, `on cpu 1` and `on CPU 1` go, `CPU#1` becomes `CPU`,
//!   `CPU: 1` and `cpu 1` lose the number, `cpu=1`/`cpus=0-1` go;
//! - **PIDs**: `comm/5830` -> `comm` (also `kworker/0:1` -> `kworker`), `PID: 5830`,
//!   `pid 5830`, `pid=5830`, `task comm:5830` -> `task comm`;
//! - **line numbers**: `fs/dcache.c:829` -> `fs/dcache.c` (any `.c`, `.h`, `.S`, `.rs` file);
//! - **sizes**: `size 8`, `size=8`, `of size 8`, `8 bytes`, `len=8` lose the number.
//!
//! Whitespace is collapsed to single spaces. Identifiers (function and cache names such as
//! `kmalloc-192`) are never touched, so a signature built from function names passes through
//! unchanged; [`signature_noise`] says whether a signature still holds such a token.

/// Fewest hex digits a number needs to be taken for an address.
const MIN_ADDRESS_DIGITS: usize = 12;

fn is_number(w: &str) -> bool {
    !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit())
}

/// Is `w` (punctuation at its end ignored) a number, as in `cpu 1,`?
fn is_number_word(w: &str) -> bool {
    is_number(w.trim_end_matches([',', ':', ';', '.', ')', '!']))
}

/// The trailing punctuation of a word (kept when the word itself goes).
fn trailing_punct(w: &str) -> &str {
    let body = w.trim_end_matches([',', ':', ';', '.', ')', '!']);
    &w[body.len()..]
}

/// `CPU#1`, `CPU#1,`, `cpu#0:`, `CPU#0:more`: the text after the number, if `w` is one.
fn cpu_hash_tail(w: &str) -> Option<&str> {
    let rest = w.get(4..).filter(|_| w[..4].eq_ignore_ascii_case("cpu#"))?;
    let n = rest.bytes().take_while(u8::is_ascii_digit).count();
    (n > 0).then(|| &rest[n..])
}

/// `key=value` tokens whose value is noise: `pid=1`, `cpu=0`, `cpus=0-1`, `size=8`.
fn is_noise_assignment(w: &str) -> bool {
    let Some((key, value)) = w.split_once('=') else {
        return false;
    };
    let key = key.to_ascii_lowercase();
    matches!(
        key.as_str(),
        "pid" | "tid" | "cpu" | "cpus" | "size" | "len" | "length" | "node"
    ) && !value.is_empty()
        && value
            .trim_end_matches([',', ')'])
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b'x')
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'$'
}

/// Remove symbol offsets (`+0x12/0x34`, `+0x12`) from a word.
fn strip_offsets(w: &str) -> String {
    let b = w.as_bytes();
    let mut out = String::with_capacity(w.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+' && w[i + 1..].starts_with("0x") {
            let mut j = i + 3;
            while j < b.len() && b[j].is_ascii_hexdigit() {
                j += 1;
            }
            if w[j..].starts_with("/0x") {
                j += 3;
                while j < b.len() && b[j].is_ascii_hexdigit() {
                    j += 1;
                }
            }
            if j > i + 3 {
                i = j;
                continue;
            }
        }
        let c = w[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Remove addresses (hex runs of [`MIN_ADDRESS_DIGITS`] or more not inside an identifier)
/// and a `{...}` group glued to one.
fn strip_addresses(w: &str) -> String {
    let b = w.as_bytes();
    let mut out = String::with_capacity(w.len());
    let mut i = 0;
    while i < b.len() {
        let boundary = i == 0 || !is_ident(b[i - 1]);
        if boundary && b[i].is_ascii_hexdigit() {
            let start = i;
            let mut j = if w[i..].starts_with("0x") { i + 2 } else { i };
            let digits_from = j;
            while j < b.len() && b[j].is_ascii_hexdigit() {
                j += 1;
            }
            let ends_clean = j == b.len() || !(b[j].is_ascii_alphanumeric() || b[j] == b'_');
            if j - digits_from >= MIN_ADDRESS_DIGITS && ends_clean {
                if b.get(j) == Some(&b'{') {
                    if let Some(close) = w[j..].find('}') {
                        j += close + 1;
                    }
                }
                i = j;
                continue;
            }
            out.push_str(&w[start..j.max(start + 1)]);
            i = j.max(start + 1);
            continue;
        }
        let c = w[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out.replace("(____ptrval____)", "").replace("(ptrval)", "")
}

/// `fs/dcache.c:829` -> `fs/dcache.c`, `a.h:1:2` -> `a.h`.
fn strip_line_number(w: &str) -> String {
    for ext in [".c:", ".h:", ".S:", ".rs:"] {
        if let Some(pos) = w.find(ext) {
            let after = pos + ext.len();
            let digits = w[after..]
                .bytes()
                .take_while(|b| b.is_ascii_digit() || *b == b':')
                .count();
            if digits > 0 && w.as_bytes()[after].is_ascii_digit() {
                let mut s = w[..after - 1].to_string();
                s.push_str(&w[after + digits..]);
                return strip_line_number(&s);
            }
        }
    }
    w.to_string()
}

/// `comm/5830` -> `comm`, `kworker/0:1` -> `kworker`, `swapper/0` -> `swapper`, and
/// `comm:5830` -> `comm` (when the word is not a file or symbol).
fn strip_pid_suffix(w: &str) -> String {
    let punct = trailing_punct(w);
    let body = &w[..w.len() - punct.len()];
    if let Some((name, tail)) = body.rsplit_once('/') {
        let pidlike = !tail.is_empty()
            && tail.bytes().any(|b| b.is_ascii_digit())
            && tail
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b':' | b'u' | b'H' | b'-' | b'/'));
        if pidlike && !name.is_empty() {
            return strip_pid_suffix(&format!("{name}{punct}"));
        }
    }
    if let Some((name, tail)) = body.rsplit_once(':') {
        if is_number(tail) && !name.is_empty() && !name.contains('/') {
            return format!("{name}{punct}");
        }
    }
    w.to_string()
}

/// Normalize one word (no whitespace inside).
fn normalize_word(w: &str) -> String {
    if let Some(tail) = cpu_hash_tail(w) {
        return format!("{}{}", &w[..3], normalize_word(tail));
    }
    if is_noise_assignment(w) {
        return String::new();
    }
    let w = strip_offsets(w);
    let w = strip_addresses(&w);
    let w = strip_line_number(&w);
    strip_pid_suffix(&w)
}

/// The free text of a signature with addresses, PIDs, CPU numbers, offsets, sizes and line
/// numbers removed (see the module documentation).
pub fn normalize_text(s: &str) -> String {
    let words: Vec<&str> = s.split_whitespace().collect();
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let next = words.get(i + 1).copied().unwrap_or("");
        let lower = w.to_ascii_lowercase();
        // "on CPU#0", "on cpu 1", "on CPU 1": the whole phrase goes.
        if lower == "on" {
            if let Some(tail) = cpu_hash_tail(next) {
                push_punct(&mut out, &normalize_word(tail));
                i += 2;
                continue;
            }
            if next.eq_ignore_ascii_case("cpu")
                && words.get(i + 2).is_some_and(|n| is_number_word(n))
            {
                push_punct(&mut out, trailing_punct(words[i + 2]));
                i += 3;
                continue;
            }
        }
        // "CPU: 1", "cpu 1", "PID: 5830", "pid 5830", "size 8", "len 8": keep the word.
        if matches!(
            lower.as_str(),
            "cpu" | "cpu:" | "pid" | "pid:" | "tid" | "size" | "size:" | "len" | "len:"
        ) && is_number_word(next)
        {
            out.push(format!("{w}{}", trailing_punct(next)));
            i += 2;
            continue;
        }
        // "8 bytes": the number goes.
        if is_number(w) && next.starts_with("byte") {
            i += 1;
            continue;
        }
        let n = normalize_word(w);
        if !n.is_empty() {
            out.push(n);
        }
        i += 1;
    }
    out.retain(|w| !w.is_empty());
    let mut s = out.join(" ");
    // Punctuation left alone by a removed token ("at ," from "at 0xffff..., CPU").
    for (from, to) in [(" ,", ","), (" :", ":"), (" ( )", ""), (" ()", "")] {
        while s.contains(from) {
            s = s.replace(from, to);
        }
    }
    s.trim().to_string()
}

/// Attach punctuation left by a removed phrase to the previous word.
fn push_punct(out: &mut Vec<String>, punct: &str) {
    if punct.is_empty() {
        return;
    }
    match out.last_mut() {
        Some(last) => last.push_str(punct),
        None => out.push(punct.to_string()),
    }
}

/// Does `signature` still hold a token that [`normalize_text`] would remove? Returns the
/// normalized form when it does (a check for tests and measurements; the parser normalizes
/// every signature it builds).
pub fn signature_noise(signature: &str) -> Option<String> {
    let collapsed = signature.split_whitespace().collect::<Vec<_>>().join(" ");
    let normalized = normalize_text(signature);
    (normalized != collapsed).then_some(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn n(s: &str, want: &str) {
        assert_eq!(normalize_text(s), want, "{s:?}");
    }

    #[test]
    fn offsets() {
        n(
            "corrupted in: fast_dput+0x334/0x430",
            "corrupted in: fast_dput",
        );
        n(
            "stack is corrupted in: __lock_acquire+0x7ea/0x7f0",
            "stack is corrupted in: __lock_acquire",
        );
        n("x+0x12", "x");
        n("a+b", "a+b");
    }

    #[test]
    fn addresses() {
        n("Dentry ffff888119d8a000{i=0,n=file0}", "Dentry");
        n(
            "key ffff88809a1b2c30 has not been registered",
            "key has not been registered",
        );
        n("at 0x0000000012345678 bad", "at bad");
        n("regs at (____ptrval____) in x", "regs at in x");
        n("exitcode=0x00000009", "exitcode=0x00000009");
        n("kmalloc-192", "kmalloc-192");
        n("deadbeefdeadbeef_func", "deadbeefdeadbeef_func");
    }

    #[test]
    fn cpus() {
        n(
            "spinlock lockup suspected on CPU#0, syz/123",
            "spinlock lockup suspected, syz",
        );
        n("hard LOCKUP on cpu 1", "hard LOCKUP");
        n("stall on CPU 3", "stall");
        n("CPU#1: comm", "CPU: comm");
        n("CPU: 1 PID: 5830 Comm: x", "CPU: PID: Comm: x");
        n("pool cpus=0 node=0 flags=0x0", "pool flags=0x0");
        n(
            "BUG:rwlock bad magic on CPU#0:do_raw_write_lock",
            "BUG:rwlock bad magic:do_raw_write_lock",
        );
        n("x CPU#12:f", "x CPU:f");
    }

    #[test]
    fn pids() {
        n("syz-executor/5830", "syz-executor");
        n("kworker/u4:2", "kworker");
        n("swapper/0:1", "swapper");
        n("task syz:1234 blocked", "task syz blocked");
        n("pid 7 pid=8", "pid");
        n("and/or", "and/or");
    }

    #[test]
    fn line_numbers_and_sizes() {
        n("WARNING at fs/dcache.c:829", "WARNING at fs/dcache.c");
        n("include/linux/a.h:12:3 x", "include/linux/a.h x");
        n("read of size 8 of 16 bytes len=4", "read of size of bytes");
        n("size: 4096.", "size:.");
    }

    #[test]
    fn noise_detection() {
        assert_eq!(
            signature_noise("KASAN:use-after-free:shmem_inode_cache:free:i_callback"),
            None
        );
        assert_eq!(
            signature_noise("PANIC:Attempted to kill init! exitcode=0x00000009"),
            None
        );
        assert_eq!(signature_noise("TAINT:module verification failed: signature and/or required key missing - tainting kernel"), None);
        assert!(signature_noise("BUG:Dentry ffff888119d8a000").is_some());
        assert!(signature_noise("WARNING:fs/dcache.c:829").is_some());
    }
}
