//! Whether the catalog's pinned packages are still in the Debian archive, for `kernel list`.
//!
//! The archive drops old builds (bookworm-security keeps only the newest of each line), so a
//! pin goes stale without anything failing until the next fetch falls back. `kernel list`
//! asks apt's local package lists once (`apt-cache madison` over every pinned name, no
//! network) and says per entry whether its pins are still there. Best effort: apt missing,
//! failing, slow (past [`QUERY_TIMEOUT`]) or with empty lists gives [`Presence::Unknown`],
//! never an error.

use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::apt::{find_tool, parse_madison};
use super::CatalogEntry;

/// Longest `apt-cache madison` may take (it reads local lists; normally well under a second).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether one catalog entry's pinned packages are in apt's lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// The image and every headers package at their pinned versions.
    Present,
    /// The image's pinned version left the archive (fetching falls back; re-pin).
    Gone,
    /// The image is there, but these headers packages' pinned versions are not.
    HeadersGone(Vec<String>),
    /// apt could not be asked (missing, failed, timed out, or its lists are empty).
    Unknown,
}

impl Presence {
    /// The word `kernel list` prints.
    pub fn label(&self) -> &'static str {
        match self {
            Presence::Present => "yes",
            Presence::Gone => "gone",
            Presence::HeadersGone(_) => "headers gone",
            Presence::Unknown => "unknown",
        }
    }
}

/// Every package name the entries pin (image and headers), deduplicated, in order.
pub fn pinned_names(entries: &[CatalogEntry]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for e in entries {
        for p in std::iter::once(&e.image).chain(&e.headers) {
            if !names.contains(&p.name) {
                names.push(p.name.clone());
            }
        }
    }
    names
}

/// Each entry's [`Presence`] (by id) given what apt lists: `available` holds the
/// `(name, version)` pairs `apt-cache madison` printed for the pinned names, or `None` when
/// apt could not be asked. An empty list means apt's lists were never fetched (every
/// pinned name has a version in a live archive), so it is `Unknown` too.
pub fn presence(
    entries: &[CatalogEntry],
    available: Option<&[(String, String)]>,
) -> HashMap<String, Presence> {
    let available = available.filter(|a| !a.is_empty());
    entries
        .iter()
        .map(|e| {
            let state = match available {
                None => Presence::Unknown,
                Some(a) => {
                    let has = |n: &str, v: &str| a.iter().any(|(an, av)| an == n && av == v);
                    if !has(&e.image.name, &e.image.version) {
                        Presence::Gone
                    } else {
                        let missing: Vec<String> = e
                            .headers
                            .iter()
                            .filter(|p| !has(&p.name, &p.version))
                            .map(|p| format!("{}={}", p.name, p.version))
                            .collect();
                        if missing.is_empty() {
                            Presence::Present
                        } else {
                            Presence::HeadersGone(missing)
                        }
                    }
                }
            };
            (e.id.clone(), state)
        })
        .collect()
}

/// Asks apt about every pinned package, bounded by `timeout`; `None` if apt could not
/// answer. Never fails.
pub fn query(entries: &[CatalogEntry], timeout: Duration) -> Option<Vec<(String, String)>> {
    let names = pinned_names(entries);
    if names.is_empty() {
        return Some(Vec::new());
    }
    let exe = find_tool("apt-cache", "apt").ok()?;
    let mut child = Command::new(exe)
        .arg("madison")
        .args(&names)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    // Read on a thread so a full pipe cannot stall the child past the deadline.
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let text = reader.join().ok()?.ok()?;
    // madison exits 0 even for unknown names; anything else is apt failing.
    status.filter(|s| s.success())?;
    Some(parse_madison(&text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Catalog;

    /// `apt-cache madison` as printed on a bookworm host after 6.12.118 replaced 6.12.117
    /// in bookworm-security (trimmed to three entries' packages).
    const MADISON: &str = "\
linux-image-6.12.118+deb12-amd64-unsigned | 6.12.118-1~deb12u1 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
linux-headers-6.12.118+deb12-amd64 | 6.12.118-1~deb12u1 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
linux-headers-6.12.118+deb12-common | 6.12.118-1~deb12u1 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
linux-kbuild-6.12.118+deb12 | 6.12.118-1~deb12u1 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
linux-image-6.1.0-56-amd64-unsigned |  6.1.192-2 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
linux-headers-6.1.0-56-amd64 |  6.1.192-2 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
linux-headers-6.1.0-56-common |  6.1.192-2 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
linux-kbuild-6.1 |  6.1.176-1 | http://deb.debian.org/debian bookworm/main amd64 Packages
";

    fn entries() -> Vec<CatalogEntry> {
        let c = Catalog::builtin().expect("built-in catalog");
        ["debian-6.12", "debian-6.12.117", "debian-6.1"]
            .iter()
            .map(|id| c.get(id).expect("listed").clone())
            .collect()
    }

    #[test]
    fn says_which_pins_left_the_archive() {
        let avail = parse_madison(MADISON);
        let got = presence(&entries(), Some(&avail));
        assert_eq!(got["debian-6.12"], Presence::Present);
        assert_eq!(got["debian-6.12.117"], Presence::Gone);
        // linux-kbuild-6.1 6.1.192-2 is not in this fixture: the image stays, its headers
        // set is incomplete.
        assert_eq!(
            got["debian-6.1"],
            Presence::HeadersGone(vec!["linux-kbuild-6.1=6.1.192-2".into()])
        );
        assert_eq!(got["debian-6.1"].label(), "headers gone");
    }

    #[test]
    fn without_apt_or_its_lists_everything_is_unknown() {
        for avail in [None, Some(&[][..])] {
            let got = presence(&entries(), avail);
            assert_eq!(got.len(), 3);
            assert!(got.values().all(|p| *p == Presence::Unknown), "{got:?}");
        }
        assert_eq!(Presence::Unknown.label(), "unknown");
    }

    #[test]
    fn asks_about_every_pinned_name_once() {
        let names = pinned_names(&Catalog::builtin().expect("catalog").kernels);
        assert!(names.contains(&"linux-image-6.12.117+deb12-amd64-unsigned".to_string()));
        // linux-kbuild-6.1 192-2 is pinned by three entries: asked once.
        assert_eq!(names.iter().filter(|n| *n == "linux-kbuild-6.1").count(), 1);
    }

    #[test]
    fn a_query_never_fails_the_listing() {
        // Whatever the host has (apt or not, lists or not), the answer is a value; a tiny
        // timeout either finishes or reports "unknown" rather than waiting.
        let e = entries();
        let started = Instant::now();
        let got = query(&e, Duration::from_millis(1));
        assert!(started.elapsed() < Duration::from_secs(5));
        let _ = presence(&e, got.as_deref());
    }
}
