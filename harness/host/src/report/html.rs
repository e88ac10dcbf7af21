//! HTML helpers: escaping (everything that came from a guest, a file or a signature goes
//! through [`esc`]) and the page shell with its inline style (no external assets, no script).

use std::fmt::Write as _;

/// `text` with `& < > " '` escaped, for element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters a console may hold (escape sequences) are shown, not sent.
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;max-width:84em;color:#222}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.5em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}\
td.n{text-align:right}pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.85em}\
.plots{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}.absent{color:#888;font-style:italic}\
.mono{font-family:monospace}";

/// A whole page: `title` (escaped here) and `body` (already HTML).
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n",
        esc(title)
    )
}

/// `<pre>` of `text`, escaped.
pub fn pre(text: &str) -> String {
    format!("<pre>{}</pre>", esc(text))
}

/// What a missing part says.
pub fn absent(what: &str) -> String {
    format!("<p class=\"absent\">{}: not present</p>", esc(what))
}

/// A table row of cells (already HTML).
pub fn row(cells: &[String]) -> String {
    let mut s = String::from("<tr>");
    for c in cells {
        let _ = write!(s, "<td>{c}</td>");
    }
    s.push_str("</tr>\n");
    s
}

/// A table: header names (plain text) and rows from [`row`].
pub fn table(head: &[&str], rows: &str) -> String {
    let mut s = String::from("<table><tr>");
    for h in head {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    let _ = write!(s, "</tr>\n{rows}</table>");
    s
}

/// `minutes:seconds` of a duration in ms.
pub fn mmss(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}", s / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup_from_a_guest() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(esc("a\u{1b}[0mb\n"), "a\\x1b[0mb\n");
        assert_eq!(mmss(61_999), "1:01");
    }
}
