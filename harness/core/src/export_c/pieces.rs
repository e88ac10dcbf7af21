//! The C runtime of a reproducer, in pieces: `runtime_decl.c`, `runtime.c` and `moving.c` are
//! cut at marker lines
//!
//! ```text
//! /* piece: NAME [provides: IDENT...] [needs: PIECE...] */
//! ```
//!
//! into named pieces (from the marker to the next; text before the first marker is the file's
//! own comment and is dropped). A reproducer carries the pieces whose name or provided
//! identifiers its generated code names (comments and string literals aside), with everything
//! they need, transitively, in file order: each piece comes after what it needs, so no
//! forward declarations are needed and `-Wall -Werror` catches both a missing piece (an
//! undeclared name) and an extra one (an unused static function).

use std::collections::BTreeSet;

const RUNTIME_DECL_C: &str = include_str!("runtime_decl.c");
const RUNTIME_C: &str = include_str!("runtime.c");
const MOVING_C: &str = include_str!("moving.c");
const PATTERN_C: &str = include_str!("pattern.c");

const MARKER: &str = "/* piece: ";

/// One piece of the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Piece {
    pub name: String,
    /// Identifiers besides `name` whose use needs this piece (macros, aliases).
    pub provides: Vec<String>,
    /// Pieces this one uses.
    pub needs: Vec<String>,
    /// The C text, without the marker line, trimmed of blank lines at both ends.
    pub text: String,
}

/// Every piece, in file order (`runtime_decl.c`, `runtime.c` with `pattern.c` spliced in,
/// `moving.c`).
pub(super) fn all() -> Vec<Piece> {
    let runtime = RUNTIME_C.replace("/* @pattern.c@ */\n", PATTERN_C);
    let mut out = Vec::new();
    for src in [RUNTIME_DECL_C, runtime.as_str(), MOVING_C] {
        out.extend(parse(src));
    }
    out
}

/// The pieces of one file.
fn parse(src: &str) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::new();
    let mut body = String::new();
    let flush = |out: &mut Vec<Piece>, body: &mut String| {
        if let Some(last) = out.last_mut() {
            last.text = body.trim_matches('\n').to_string();
        }
        body.clear();
    };
    for line in src.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix(MARKER) {
            flush(&mut out, &mut body);
            out.push(marker(rest.trim_end().trim_end_matches("*/")));
        } else {
            body.push_str(line);
        }
    }
    flush(&mut out, &mut body);
    out
}

/// `NAME [provides: ...] [needs: ...]`.
fn marker(spec: &str) -> Piece {
    let mut words = spec.split_whitespace();
    let name = words.next().unwrap_or_default().to_string();
    let (mut provides, mut needs) = (Vec::new(), Vec::new());
    let mut into = &mut provides;
    for w in words {
        match w {
            "provides:" => into = &mut provides,
            "needs:" => into = &mut needs,
            w => into.push(w.to_string()),
        }
    }
    Piece {
        name,
        provides,
        needs,
        text: String::new(),
    }
}

/// The identifiers of C `code`, outside comments, string and character literals.
pub(super) fn identifiers(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = code.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = code[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                i = code[i..].find('\n').map_or(b.len(), |e| i + e);
            }
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.insert(code[start..i].to_string());
            }
            c if c.is_ascii_digit() => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// Which of `pieces` code that names `used` needs: the pieces it names and, transitively,
/// what they need. `false` for the others.
pub(super) fn select(pieces: &[Piece], used: &BTreeSet<String>) -> Vec<bool> {
    let mut take: Vec<bool> = pieces
        .iter()
        .map(|p| used.contains(&p.name) || p.provides.iter().any(|n| used.contains(n)))
        .collect();
    let mut todo: Vec<usize> = (0..pieces.len()).filter(|&i| take[i]).collect();
    while let Some(i) = todo.pop() {
        for need in &pieces[i].needs {
            if let Some(j) = pieces.iter().position(|p| &p.name == need) {
                if !take[j] {
                    take[j] = true;
                    todo.push(j);
                }
            }
        }
    }
    take
}

/// The text of the pieces `code` needs, in file order, a blank line apart: the types and
/// constants (`runtime_decl.c`, which the program's declarations use) and the functions.
pub(super) fn needed_by(code: &str) -> (String, String) {
    let pieces = all();
    let types = parse(RUNTIME_DECL_C).len();
    let take = select(&pieces, &identifiers(code));
    let (mut head, mut body) = (String::new(), String::new());
    for (i, p) in pieces.iter().enumerate().filter(|&(i, _)| take[i]) {
        let out = if i < types { &mut head } else { &mut body };
        out.push_str(&p.text);
        out.push_str("\n\n");
    }
    (head, body)
}
