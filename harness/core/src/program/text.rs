//! The program text format: one operation a line, documented in `docs/program-format.md`.
//!
//! ```text
//! # a comment line
//! memfd m0 size=1M
//! write m0 off=0 len=1M seed=7
//! mmap v0 m0 off=0 len=1M shared
//! madvise v0 off=0 len=1M pageout
//! check m0 off=0 len=1M
//! ```
//!
//! [`print`] writes the canonical form; `parse(print(p)) == p` for every valid program, and a
//! program written in canonical form prints back byte for byte (comments and blank lines
//! included). Errors carry the 1-based line and column of the offending token.

use std::fmt;

use super::scope::{Scope, ScopeError};
use super::{
    Advice, MapKind, MbindFlags, Op, Program, ThpMode, TouchMode, DEFAULT_SWAP_DEVICES, MAX_OPS,
};

/// A malformed program: where and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {col}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Parses a program for a VM with the default swap devices.
pub fn parse(text: &str) -> Result<Program, ParseError> {
    parse_with(text, DEFAULT_SWAP_DEVICES)
}

/// Parses a program for a VM with `swap_devices` swap disks.
pub fn parse_with(text: &str, swap_devices: u8) -> Result<Program, ParseError> {
    let mut program = Program::default();
    let mut pending_notes = Vec::new();
    let mut scope = Scope::new(swap_devices);
    let mut section_line = 0;
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            pending_notes.push(trimmed.to_string());
            continue;
        }
        if program.ops.len() == MAX_OPS {
            return Err(ParseError {
                line: line_no,
                col: 1,
                message: format!("more than {MAX_OPS} operations"),
            });
        }
        let tokens = tokenize(line);
        let op = parse_op(&tokens).map_err(|e| e.at(line_no))?;
        scope
            .apply(&op)
            .map_err(|e| scope_error(e, &tokens, line_no))?;
        if op == Op::Threads {
            section_line = line_no;
        }
        program.notes.resize(program.ops.len(), Vec::new());
        program.notes.push(std::mem::take(&mut pending_notes));
        program.ops.push(op);
    }
    scope.finish().map_err(|e| ParseError {
        line: section_line,
        col: 1,
        message: e.message,
    })?;
    if !pending_notes.is_empty() {
        program.notes.resize(program.ops.len(), Vec::new());
        program.notes.push(pending_notes);
    }
    trim_notes(&mut program.notes);
    Ok(program)
}

/// Drops trailing empty note lists so that equal programs compare equal however they were built.
pub(crate) fn trim_notes(notes: &mut Vec<Vec<String>>) {
    while notes.last().is_some_and(Vec::is_empty) {
        notes.pop();
    }
}

/// How far the operations of a `thread` block (and their comments) are indented.
const THREAD_INDENT: &str = "  ";

/// Writes the canonical text form.
pub fn print(program: &Program) -> String {
    let mut out = String::new();
    let mut in_thread = false;
    for (i, op) in program.ops.iter().enumerate() {
        let indented = in_thread && !matches!(op, Op::Thread { .. } | Op::Join);
        for note in program.notes_before(i) {
            if indented && !note.is_empty() {
                out.push_str(THREAD_INDENT);
            }
            out.push_str(note);
            out.push('\n');
        }
        if indented {
            out.push_str(THREAD_INDENT);
        }
        out.push_str(&op.to_string());
        out.push('\n');
        match op {
            Op::Thread { .. } => in_thread = true,
            Op::Join => in_thread = false,
            _ => {}
        }
    }
    for note in program.notes_before(program.ops.len()) {
        out.push_str(note);
        out.push('\n');
    }
    out
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&print(self))
    }
}

/// The folio sizes a `thp MODE size=S` may name (`hugepages-<size>kB` exists on 6.12 x86-64
/// for 16K to 2M; a size the guest lacks is ENOENT there).
const THP_SIZE_MIN: u64 = 8 << 10;
const THP_SIZE_MAX: u64 = 2 << 20;

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kw = self.keyword();
        match self {
            Op::Memfd {
                obj,
                size,
                anon: true,
            } => write!(f, "{kw} {obj} size={} anon", Size(*size)),
            Op::Memfd { obj, size, .. } | Op::Ftruncate { obj, size } => {
                write!(f, "{kw} {obj} size={}", Size(*size))
            }
            Op::Tmpfs { obj, size, on } => {
                write!(f, "{kw} {obj} size={}", Size(*size))?;
                match on {
                    Some(m) => write!(f, " on={m}"),
                    None => Ok(()),
                }
            }
            Op::Threads | Op::Join => write!(f, "{kw}"),
            Op::Thread { name } => write!(f, "{kw} {name}"),
            Op::Delay { micros, upto } => {
                write!(f, "{kw} {}", Micros(*micros))?;
                match upto {
                    Some(hi) => write!(f, "..{}", Micros(*hi)),
                    None => Ok(()),
                }
            }
            Op::Spin { iters, upto } => {
                write!(f, "{kw} {iters}")?;
                match upto {
                    Some(hi) => write!(f, "..{hi}"),
                    None => Ok(()),
                }
            }
            Op::Mount { mnt, huge } => {
                write!(f, "{kw} {mnt}")?;
                match huge {
                    Some(h) => write!(f, " huge={}", h.keyword()),
                    None => Ok(()),
                }
            }
            Op::Umount { mnt, detach } => {
                let detach = if *detach { " detach" } else { "" };
                write!(f, "{kw} {mnt}{detach}")
            }
            Op::Write {
                obj,
                off,
                len,
                seed,
            }
            | Op::Corrupt {
                obj,
                off,
                len,
                seed,
            } => {
                write!(
                    f,
                    "{kw} {obj} off={} len={} seed={seed}",
                    Size(*off),
                    Size(*len)
                )
            }
            Op::Check { obj, off, len } | Op::Punch { obj, off, len } => {
                write!(f, "{kw} {obj} off={} len={}", Size(*off), Size(*len))
            }
            Op::Mmap {
                map,
                obj,
                off,
                len,
                kind,
            } => {
                let kind = kind.keyword();
                write!(
                    f,
                    "{kw} {map} {obj} off={} len={} {kind}",
                    Size(*off),
                    Size(*len)
                )
            }
            Op::Gem { obj, size, pinned } => {
                let pin = if *pinned { " pinned" } else { "" };
                write!(f, "{kw} {obj} size={}{pin}", Size(*size))
            }
            Op::Munmap { map } => write!(f, "{kw} {map}"),
            Op::Touch {
                map,
                off,
                len,
                mode,
            } => {
                write!(f, "{kw} {map} off={} len={} ", Size(*off), Size(*len))?;
                match mode {
                    TouchMode::Read => write!(f, "read"),
                    TouchMode::Write { seed } => write!(f, "write seed={seed}"),
                }
            }
            Op::Madvise {
                map,
                off,
                len,
                advice,
            } => {
                write!(
                    f,
                    "{kw} {map} off={} len={} {}",
                    Size(*off),
                    Size(*len),
                    advice.keyword()
                )
            }
            Op::Reclaim { bytes } => write!(f, "{kw} {}", Size(*bytes)),
            Op::Swapon { dev, prio } => {
                write!(f, "{kw} swap{dev}")?;
                match prio {
                    Some(p) => write!(f, " prio={p}"),
                    None => Ok(()),
                }
            }
            Op::Swapoff { dev } => write!(f, "{kw} swap{dev}"),
            Op::Unlink { obj }
            | Op::Close { obj }
            | Op::Dma32 { obj }
            | Op::Pin { obj }
            | Op::Unpin { obj }
            | Op::Zonecheck { obj }
            | Op::Hold { obj } => write!(f, "{kw} {obj}"),
            Op::Sysrq { key } => write!(f, "{kw} {key}"),
            Op::Thp { mode, size: None } => write!(f, "{kw} {}", mode.keyword()),
            Op::Thp {
                mode,
                size: Some(s),
            } => write!(f, "{kw} {} size={}", mode.keyword(), Size(*s)),
            Op::Khugepaged | Op::Compact | Op::Online => write!(f, "{kw}"),
            Op::Mbind {
                map,
                off,
                len,
                node,
                flags,
            } => {
                write!(
                    f,
                    "{kw} {map} off={} len={} node={node}",
                    Size(*off),
                    Size(*len)
                )?;
                flags.words().try_for_each(|w| write!(f, " {w}"))
            }
            Op::MovePages {
                map,
                off,
                len,
                node,
            } => write!(
                f,
                "{kw} {map} off={} len={} node={node}",
                Size(*off),
                Size(*len)
            ),
            Op::MigratePages { from, to } => write!(f, "{kw} from={from} to={to}"),
            Op::Offline { obj, page } => write!(f, "{kw} {obj} page={page}"),
            Op::Hugetlb { size_kb, count } => {
                write!(f, "{kw} {} count={count}", Size(u64::from(*size_kb) << 10))
            }
        }
    }
}

/// A duration in microseconds printed in the largest exact unit (`5ms`, `200us`, `0us`).
struct Micros(u32);

impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            m if m > 0 && m % 1000 == 0 => write!(f, "{}ms", m / 1000),
            m => write!(f, "{m}us"),
        }
    }
}

/// `A..B` → (A, Some(B)); `A` → (A, None), each side parsed by `one`.
fn range_of<T>(v: &str, one: impl Fn(&str) -> Option<T>) -> Option<(T, Option<T>)> {
    match v.split_once("..") {
        Some((lo, hi)) => Some((one(lo)?, Some(one(hi)?))),
        None => Some((one(v)?, None)),
    }
}

/// A byte count printed with the largest binary suffix that divides it exactly.
#[derive(Clone, Copy, Debug)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        for (shift, suffix) in [(30, 'G'), (20, 'M'), (10, 'K')] {
            if v != 0 && v % (1 << shift) == 0 {
                return write!(f, "{}{suffix}", v >> shift);
            }
        }
        write!(f, "{v}")
    }
}

/// Parses a duration `200us` or `5ms` into microseconds.
pub fn parse_duration(s: &str) -> Option<u32> {
    let (digits, scale) = match (s.strip_suffix("us"), s.strip_suffix("ms")) {
        (Some(d), _) => (d, 1),
        (_, Some(d)) => (d, 1000),
        _ => return None,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u32>().ok()?.checked_mul(scale)
}

/// Parses `123`, `0x1000`, `4K`, `2M`, `1G` (binary suffixes).
pub fn parse_size(s: &str) -> Option<u64> {
    let (digits, shift) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 10),
        b'M' | b'm' => (&s[..s.len() - 1], 20),
        b'G' | b'g' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    let v = match digits.strip_prefix("0x") {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u64::from_str_radix(hex, 16).ok()?
        }
        Some(_) => return None,
        None if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            digits.parse().ok()?
        }
        None => return None,
    };
    v.checked_mul(1u64 << shift)
}

/// Does either side of `A..B` (or `v` itself) satisfy `f`?
fn range_side_matches(v: &str, f: impl Fn(&str) -> bool) -> bool {
    match v.split_once("..") {
        Some((lo, hi)) => f(lo) || f(hi),
        None => f(v),
    }
}

/// Digits (decimal, or hex after `0x`) that do not fit: the number is well formed but too large.
fn overflows(digits: &str) -> bool {
    match digits.strip_prefix("0x") {
        Some(hex) => !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// Why `{prefix}{v}` is not a size: too large, or not one at all.
fn size_error(prefix: &str, v: &str) -> String {
    let digits = v.strip_suffix(['K', 'k', 'M', 'm', 'G', 'g']).unwrap_or(v);
    if overflows(digits) {
        format!(
            "`{prefix}{}` is too large: a size is at most 2^64-1 bytes",
            Shown(v)
        )
    } else {
        format!(
            "`{prefix}{}` is not a size (e.g. 4096, 0x1000, 4K, 2M, 1G)",
            Shown(v)
        )
    }
}

/// Why `v` is not a delay: a well-formed duration too large for 32 bits of microseconds, or not
/// a duration at all.
fn duration_error(v: &str) -> String {
    let too_large = |s: &str| {
        let digits = s.strip_suffix("us").or_else(|| s.strip_suffix("ms"));
        digits.is_some_and(|d| {
            !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) && parse_duration(s).is_none()
        })
    };
    if range_side_matches(v, too_large) {
        format!(
            "`{}` is too large: a delay is at most {}",
            Shown(v),
            Micros(super::MAX_DELAY_US)
        )
    } else {
        format!(
            "`{}` is not a duration or a range of them (e.g. 200us, 5ms, 0us..100ms)",
            Shown(v)
        )
    }
}

/// How many characters of a token a message shows before an ellipsis.
const SHOWN_CHARS: usize = 48;

/// A token as a message shows it: invisible characters (controls such as NUL, a byte-order
/// mark, zero-width and direction marks) escaped as `\u{…}`, and a long token cut after
/// [`SHOWN_CHARS`] characters with an ellipsis.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.chars().enumerate() {
            if i == SHOWN_CHARS {
                return write!(f, "… ({} characters)", self.0.chars().count());
            }
            let invisible = c.is_control()
                || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}');
            if invisible {
                write!(f, "{}", c.escape_unicode())?;
            } else {
                f.write_fmt(format_args!("{c}"))?;
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
struct Token<'a> {
    text: &'a str,
    col: usize,
}

/// Splits a line at whitespace; each token's column is counted in characters from 1. The
/// column is carried along (never recounted from the line start), so this is linear in the
/// line's length however many tokens it has.
fn tokenize(line: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    // (byte offset, column) of the token being read.
    let mut start: Option<(usize, usize)> = None;
    let ends = line
        .char_indices()
        .chain(std::iter::once((line.len(), ' ')));
    for (col0, (i, c)) in ends.enumerate() {
        match (c.is_whitespace(), start) {
            (true, Some((s, col))) => {
                out.push(Token {
                    text: &line[s..i],
                    col,
                });
                start = None;
            }
            (false, None) => start = Some((i, col0 + 1)),
            _ => {}
        }
    }
    out
}

/// An error inside one line, before the line number is known.
struct LineError {
    col: usize,
    message: String,
}

impl LineError {
    fn at(self, line: usize) -> ParseError {
        ParseError {
            line,
            col: self.col,
            message: self.message,
        }
    }
}

fn scope_error(e: ScopeError, tokens: &[Token<'_>], line: usize) -> ParseError {
    // Positional arguments are matched by role; keyed ones by `key=`.
    let col = e
        .arg
        .and_then(|arg| {
            let positional = match (tokens[0].text, arg) {
                ("mmap", "map") => Some(1),
                ("mmap", "obj") => Some(2),
                (
                    _,
                    "obj" | "map" | "dev" | "key" | "bytes" | "name" | "mnt" | "micros" | "iters",
                ) => Some(1),
                _ => None,
            };
            match positional {
                Some(i) => tokens.get(i).map(|t| t.col),
                // Point at the value of `key=value`, as the parser's own errors do.
                None => tokens
                    .iter()
                    .find(|t| t.text.split_once('=').is_some_and(|(k, _)| k == arg))
                    .map(|t| t.col + arg.len() + 1),
            }
        })
        .unwrap_or(1);
    ParseError {
        line,
        col,
        message: e.message,
    }
}

/// Cursor over one line's tokens after the keyword.
struct Args<'a, 'b> {
    keyword: &'a Token<'b>,
    rest: Vec<Option<&'a Token<'b>>>,
    /// Index in `rest` just past the last positional token taken (positionals are taken in
    /// order, so none is left before it).
    positional: usize,
    /// Column just past the line's last token (where a missing argument would go).
    end: usize,
}

impl<'a, 'b> Args<'a, 'b> {
    fn new(tokens: &'a [Token<'b>]) -> Self {
        let end = tokens.last().map_or(1, |t| t.col + t.text.chars().count());
        Args {
            keyword: &tokens[0],
            rest: tokens[1..].iter().map(Some).collect(),
            positional: 0,
            end,
        }
    }

    fn end_col(&self) -> usize {
        self.end
    }

    /// The next positional (non `key=value`) token.
    fn positional(&mut self, what: &str) -> Result<&'b str, LineError> {
        let kw = self.keyword.text;
        match self.next_positional_index() {
            Some(i) => {
                self.positional = i + 1;
                let t = self.rest[i].take().map_or("", |t| t.text);
                Ok(t)
            }
            None => Err(LineError {
                col: self.end_col(),
                message: format!("`{kw}` needs {what}"),
            }),
        }
    }

    fn name(&mut self, what: &str) -> Result<String, LineError> {
        let col = self.next_positional_col();
        let name = self.positional(what)?;
        check_name(name).map_err(|message| LineError { col, message })?;
        Ok(name.to_string())
    }

    /// Where in `rest` the next positional token is.
    fn next_positional_index(&self) -> Option<usize> {
        self.rest
            .get(self.positional..)?
            .iter()
            .position(|t| t.is_some_and(|t| !t.text.contains('=')))
            .map(|i| i + self.positional)
    }

    fn has_positional(&self) -> bool {
        self.next_positional_index().is_some()
    }

    fn next_positional_col(&self) -> usize {
        self.next_positional_index()
            .and_then(|i| self.rest[i])
            .map_or(self.end_col(), |t| t.col)
    }

    fn keyed(&mut self, key: &str) -> Result<Option<(&'b str, usize)>, LineError> {
        let mut found = None;
        for slot in self.rest.iter_mut() {
            if let Some(t) = slot {
                if let Some((k, v)) = t.text.split_once('=') {
                    if k == key {
                        if found.is_some() {
                            return Err(LineError {
                                col: t.col,
                                message: format!("`{key}=` given twice"),
                            });
                        }
                        found = Some((v, t.col + k.len() + 1));
                        *slot = None;
                    }
                }
            }
        }
        Ok(found)
    }

    fn required(&mut self, key: &str) -> Result<(&'b str, usize), LineError> {
        let kw = self.keyword.text;
        self.keyed(key)?.ok_or_else(|| LineError {
            col: self.end_col(),
            message: format!("`{kw}` needs `{key}=`"),
        })
    }

    fn size(&mut self, key: &str) -> Result<u64, LineError> {
        let (v, col) = self.required(key)?;
        parse_size(v).ok_or_else(|| LineError {
            col,
            message: size_error(&format!("{key}="), v),
        })
    }

    /// A decimal integer: digits, and a `-` for a signed type; no `+`.
    fn number<T: std::str::FromStr<Err = std::num::ParseIntError>>(
        v: &str,
        col: usize,
        key: &str,
        kind: &str,
    ) -> Result<T, LineError> {
        let v_shown = Shown(v);
        let err = |message| LineError { col, message };
        if v.starts_with('+') {
            return Err(err(format!("`{key}={v_shown}` is not {kind}: no `+` sign")));
        }
        v.parse()
            .map_err(|e: std::num::ParseIntError| match e.kind() {
                std::num::IntErrorKind::PosOverflow => {
                    err(format!("`{key}={v_shown}` is too large for {kind}"))
                }
                std::num::IntErrorKind::NegOverflow => {
                    err(format!("`{key}={v_shown}` is too small for {kind}"))
                }
                _ => err(format!("`{key}={v_shown}` is not {kind}")),
            })
    }

    fn seed(&mut self) -> Result<u32, LineError> {
        let (v, col) = self.required("seed")?;
        Self::number(v, col, "seed", "a 32-bit unsigned number")
    }

    fn finish(self) -> Result<(), LineError> {
        match self.rest.iter().flatten().next() {
            Some(t) => Err(LineError {
                col: t.col,
                message: format!("unexpected `{}` for `{}`", Shown(t.text), self.keyword.text),
            }),
            None => Ok(()),
        }
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= 16
        && name.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok && name.starts_with("swap") && name[4..].bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{name}` is reserved for swap devices"));
    }
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a name: use [a-z][a-z0-9_]*, at most 16 characters",
            Shown(name)
        ))
    }
}

fn swap_dev(args: &mut Args<'_, '_>) -> Result<u8, LineError> {
    let col = args.next_positional_col();
    let name = args.positional("a swap device (swap0, swap1, …)")?;
    name.strip_prefix("swap")
        .and_then(|n| {
            if n.len() <= 3 && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                n.parse().ok()
            } else {
                None
            }
        })
        .ok_or_else(|| LineError {
            col,
            message: format!("`{}` is not a swap device (swap0, swap1, …)", Shown(name)),
        })
}

fn one_of<T: Copy>(
    args: &mut Args<'_, '_>,
    what: &str,
    choices: &[(&str, T)],
) -> Result<T, LineError> {
    let col = args.next_positional_col();
    let word = args.positional(what)?;
    choices
        .iter()
        .find(|(k, _)| *k == word)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(k, _)| *k).collect();
            LineError {
                col,
                message: format!("`{}` is not {what} ({})", Shown(word), names.join(", ")),
            }
        })
}

fn parse_op(tokens: &[Token<'_>]) -> Result<Op, LineError> {
    let mut a = Args::new(tokens);
    let kw = tokens[0].text;
    let op = match kw {
        "memfd" | "tmpfs" | "ftruncate" => {
            let obj = a.name("an object name")?;
            let size = a.size("size")?;
            match kw {
                "memfd" => {
                    let anon = a.rest.iter().flatten().any(|t| t.text == "anon");
                    if anon {
                        one_of(&mut a, "a memfd flag", &[("anon", ())])?;
                    }
                    Op::Memfd { obj, size, anon }
                }
                "tmpfs" => {
                    let on = match a.keyed("on")? {
                        Some((m, col)) => {
                            check_name(m).map_err(|message| LineError { col, message })?;
                            Some(m.to_string())
                        }
                        None => None,
                    };
                    Op::Tmpfs { obj, size, on }
                }
                _ => Op::Ftruncate { obj, size },
            }
        }
        "write" | "corrupt" => {
            let obj = a.name("an object name")?;
            let (off, len, seed) = (a.size("off")?, a.size("len")?, a.seed()?);
            if kw == "write" {
                Op::Write { obj, off, len, seed }
            } else {
                Op::Corrupt { obj, off, len, seed }
            }
        }
        "check" | "punch" => {
            let obj = a.name("an object name")?;
            let (off, len) = (a.size("off")?, a.size("len")?);
            if kw == "check" {
                Op::Check { obj, off, len }
            } else {
                Op::Punch { obj, off, len }
            }
        }
        "mmap" => {
            let map = a.name("a mapping name")?;
            let obj = a.name("an object name")?;
            let (off, len) = (a.size("off")?, a.size("len")?);
            let choices: Vec<(&str, MapKind)> = MapKind::ALL.iter().map(|k| (k.keyword(), *k)).collect();
            let kind = one_of(&mut a, "a mapping kind", &choices)?;
            Op::Mmap { map, obj, off, len, kind }
        }
        "gem" => {
            let obj = a.name("an object name")?;
            let size = a.size("size")?;
            let pinned = a.rest.iter().flatten().any(|t| t.text == "pinned");
            if pinned {
                one_of(&mut a, "a GEM flag", &[("pinned", ())])?;
            }
            Op::Gem { obj, size, pinned }
        }
        "munmap" => Op::Munmap { map: a.name("a mapping name")? },
        "touch" => {
            let map = a.name("a mapping name")?;
            let (off, len) = (a.size("off")?, a.size("len")?);
            let write = one_of(&mut a, "an access mode", &[("read", false), ("write", true)])?;
            let mode = if write { TouchMode::Write { seed: a.seed()? } } else { TouchMode::Read };
            Op::Touch { map, off, len, mode }
        }
        "madvise" => {
            let map = a.name("a mapping name")?;
            let (off, len) = (a.size("off")?, a.size("len")?);
            let choices: Vec<(&str, Advice)> = Advice::ALL.iter().map(|adv| (adv.keyword(), *adv)).collect();
            let advice = one_of(&mut a, "an advice", &choices)?;
            Op::Madvise { map, off, len, advice }
        }
        "reclaim" => {
            let col = a.next_positional_col();
            let v = a.positional("a byte count")?;
            let bytes = parse_size(v).ok_or_else(|| LineError { col, message: size_error("", v) })?;
            Op::Reclaim { bytes }
        }
        "swapon" => {
            let dev = swap_dev(&mut a)?;
            let prio = match a.keyed("prio")? {
                Some((v, col)) => Some(Args::number(v, col, "prio", "a priority from -1 to 32767")?),
                None => None,
            };
            if prio.is_some_and(|p: i16| p < -1) {
                return Err(LineError { col: tokens.last().map_or(1, |t| t.col), message: "prio must be -1 or more".into() });
            }
            Op::Swapon { dev, prio }
        }
        "swapoff" => Op::Swapoff { dev: swap_dev(&mut a)? },
        "unlink" => Op::Unlink { obj: a.name("an object name")? },
        "close" => Op::Close { obj: a.name("an object name")? },
        "dma32" => Op::Dma32 { obj: a.name("an object name")? },
        "pin" => Op::Pin { obj: a.name("an object name")? },
        "unpin" => Op::Unpin { obj: a.name("an object name")? },
        "zonecheck" => Op::Zonecheck { obj: a.name("an object name")? },
        "hold" => Op::Hold { obj: a.name("an object name")? },
        "threads" => Op::Threads,
        "join" => Op::Join,
        "thread" => Op::Thread { name: a.name("a thread name")? },
        "mount" => {
            let mnt = a.name("a mount name")?;
            let huge = match a.keyed("huge")? {
                Some((v, col)) => Some(
                    ThpMode::ALL
                        .into_iter()
                        .find(|m| m.keyword() == v)
                        .ok_or_else(|| LineError { col, message: format!("`huge={}` is not never, always, within_size or advise", Shown(v)) })?,
                ),
                None => None,
            };
            Op::Mount { mnt, huge }
        }
        "umount" => {
            let mnt = a.name("a mount name")?;
            let detach = a.rest.iter().flatten().any(|t| t.text == "detach");
            if detach {
                one_of(&mut a, "an unmount flag", &[("detach", ())])?;
            }
            Op::Umount { mnt, detach }
        }
        "delay" => {
            let col = a.next_positional_col();
            let v = a.positional("a duration (e.g. 200us, 5ms, 0us..100ms)")?;
            let (micros, upto) = range_of(v, parse_duration).ok_or_else(|| LineError { col, message: duration_error(v) })?;
            Op::Delay { micros, upto }
        }
        "spin" => {
            let col = a.next_positional_col();
            let v = a.positional("an iteration count")?;
            let digits = |s: &str| (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u32>().ok()).flatten();
            let (iters, upto) = range_of(v, digits).ok_or_else(|| {
                let too_large = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u32>().is_err();
                let message = if range_side_matches(v, too_large) {
                    format!("`{}` is too large: a spin is at most {} iterations", Shown(v), super::MAX_SPIN)
                } else {
                    format!("`{}` is not an iteration count or a range of them (e.g. 1000..50000)", Shown(v))
                };
                LineError { col, message }
            })?;
            Op::Spin { iters, upto }
        }
        "sysrq" => {
            let col = a.next_positional_col();
            let k = a.positional("a sysrq key")?;
            let mut chars = k.chars();
            match (chars.next(), chars.next()) {
                (Some(key), None) => Op::Sysrq { key },
                _ => return Err(LineError { col, message: format!("`{}` is not a single sysrq key", Shown(k)) }),
            }
        }
        "thp" => {
            let choices: Vec<(&str, ThpMode)> = ThpMode::ALL.iter().map(|m| (m.keyword(), *m)).collect();
            let mode = one_of(&mut a, "a shmem THP mode", &choices)?;
            let size = match a.keyed("size")? {
                Some((v, col)) => {
                    let s = parse_size(v).ok_or_else(|| LineError {
                        col,
                        message: size_error("size=", v),
                    })?;
                    if !s.is_power_of_two() || !(THP_SIZE_MIN..=THP_SIZE_MAX).contains(&s) {
                        return Err(LineError {
                            col,
                            message: format!("`size={}`: a per-size THP setting takes a power of two from 8K to 2M", Shown(v)),
                        });
                    }
                    Some(s)
                }
                None => None,
            };
            Op::Thp { mode, size }
        }
        "khugepaged" => Op::Khugepaged,
        "compact" => Op::Compact,
        "online" => Op::Online,
        "mbind" | "move-pages" => {
            let map = a.name("a mapping name")?;
            let (off, len) = (a.size("off")?, a.size("len")?);
            let (v, col) = a.required("node")?;
            let node = Args::number(v, col, "node", "a node number")?;
            if kw == "move-pages" {
                Op::MovePages { map, off, len, node }
            } else {
                let mut flags = MbindFlags::default();
                while a.has_positional() {
                    let choices: Vec<(&str, u8)> = MbindFlags::WORDS.to_vec();
                    flags.0 |= one_of(&mut a, "an mbind flag", &choices)?;
                }
                Op::Mbind { map, off, len, node, flags }
            }
        }
        "migrate-pages" => {
            let (v, col) = a.required("from")?;
            let from = Args::number(v, col, "from", "a node number")?;
            let (v, col) = a.required("to")?;
            let to = Args::number(v, col, "to", "a node number")?;
            Op::MigratePages { from, to }
        }
        "offline" => {
            let obj = a.name("an object name")?;
            let (v, col) = a.required("page")?;
            Op::Offline { obj, page: Args::number(v, col, "page", "a page index")? }
        }
        "hugetlb" => {
            let col = a.next_positional_col();
            let v = a.positional("a huge page size (2M or 1G)")?;
            let size_kb = parse_size(v)
                .map(|b| b >> 10)
                .and_then(|kb| u32::try_from(kb).ok())
                .filter(|kb| super::HUGETLB_SIZES_KB.contains(kb))
                .ok_or_else(|| LineError { col, message: format!("`{}` is not a huge page size (2M or 1G)", Shown(v)) })?;
            let (v, col) = a.required("count")?;
            Op::Hugetlb { size_kb, count: Args::number(v, col, "count", "a page count")? }
        }
        other => {
            return Err(LineError {
                col: tokens[0].col,
                message: format!(
                    "unknown operation `{}` (known: memfd, tmpfs, ftruncate, write, check, punch, mmap, munmap, \
                     touch, madvise, reclaim, swapon, swapoff, unlink, close, gem, dma32, pin, unpin, zonecheck, \
                     threads, thread, join, delay, spin, mount, umount, thp, khugepaged, compact, mbind, \
                     move-pages, migrate-pages, offline, online, hugetlb, corrupt, sysrq)",
                    Shown(other)
                ),
            })
        }
    };
    a.finish()?;
    Ok(op)
}

#[cfg(test)]
mod tests;
