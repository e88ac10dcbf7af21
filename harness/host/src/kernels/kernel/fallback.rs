//! Choosing a replacement when a pinned package version has left the Debian archive. Pure
//! functions over "what apt can download" (`(name, version)` pairs from `apt-cache madison`).
//!
//! Rules:
//! - the image falls back to the newest `linux-image-*` of the same *line*: same major.minor,
//!   same `+debNN` suffix, same flavour (`amd64` never becomes `cloud-amd64`);
//! - each headers package follows the chosen image (its name is rewritten to the new kernel
//!   version) and takes the version equal to the wanted one, else the nearest newer, else the
//!   newest (`linux-kbuild-6.1` only exists in a few versions).
//!
//! A [`Package`] returned with an empty `sha256` is not the catalog's pin: its hash must be
//! taken from apt (`apt-cache show`).

use std::cmp::Ordering;

use super::debver;
use super::{CatalogEntry, Package};

/// Splits a release like `6.1.0-56-amd64` or `6.12.117+deb12-rt-amd64` into the kernel version
/// (`6.1.0-56`, `6.12.117+deb12`) and the flavour (`amd64`, `rt-amd64`).
pub(crate) fn split_release(release: &str) -> Option<(&str, &str)> {
    let b = release.as_bytes();
    let digits = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut i = 0;
    for part in 0..3 {
        let end = digits(i);
        if end == i {
            return None;
        }
        i = end;
        if part < 2 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
    }
    // Optional Debian ABI number: `-56` (only if another `-` with the flavour follows).
    if b.get(i) == Some(&b'-') {
        let end = digits(i + 1);
        if end > i + 1 && b.get(end) == Some(&b'-') {
            i = end;
        }
    }
    // Optional `+debNN` suffix.
    if b.get(i) == Some(&b'+') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_alphanumeric) {
            i += 1;
        }
    }
    let flavour = release.get(i..)?.strip_prefix('-')?;
    (!flavour.is_empty()).then(|| (&release[..i], flavour))
}

/// `(major.minor, +suffix, flavour)` of a release.
fn line_key(release: &str) -> Option<(&str, &str, &str)> {
    let (kver, flavour) = split_release(release)?;
    let upstream_end = kver.find(['-', '+']).unwrap_or(kver.len());
    let upstream = &kver[..upstream_end];
    let majmin = &upstream[..upstream.rfind('.')?];
    let suffix = kver.find('+').map_or("", |p| &kver[p..]);
    Some((majmin, suffix, flavour))
}

/// Whether two releases belong to the same line.
pub(crate) fn same_line(a: &str, b: &str) -> bool {
    matches!((line_key(a), line_key(b)), (Some(x), Some(y)) if x == y)
}

/// The `major.minor.` prefix of a release (`6.1.`), to list candidate package names.
pub(crate) fn name_prefix(entry: &CatalogEntry) -> String {
    let at = entry.image.name.find(&entry.release).unwrap_or(0);
    let majmin = line_key(&entry.release).map_or("", |k| k.0);
    format!("{}{majmin}.", &entry.image.name[..at])
}

/// The release a candidate image package name carries, if it has the pinned name's shape.
pub(crate) fn candidate_release<'a>(entry: &CatalogEntry, name: &'a str) -> Option<&'a str> {
    let at = entry.image.name.find(&entry.release)?;
    let (prefix, suffix) = (
        &entry.image.name[..at],
        &entry.image.name[at + entry.release.len()..],
    );
    let rel = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    same_line(rel, &entry.release).then_some(rel)
}

/// The image to fetch: the pin if apt still has it, else the newest image of the same line.
/// Returns the package and its release.
pub(crate) fn plan_image(
    entry: &CatalogEntry,
    available: &[(String, String)],
) -> Option<(Package, String)> {
    let pinned = &entry.image;
    if available
        .iter()
        .any(|(n, v)| *n == pinned.name && *v == pinned.version)
    {
        return Some((pinned.clone(), entry.release.clone()));
    }
    let (name, version, release) = available
        .iter()
        .filter_map(|(n, v)| Some((n, v, candidate_release(entry, n)?)))
        .max_by(|a, b| debver::compare(a.1, b.1).then_with(|| a.0.cmp(b.0)))?;
    let pkg = Package {
        name: name.clone(),
        version: version.clone(),
        sha256: String::new(),
    };
    Some((pkg, release.to_string()))
}

/// `wanted` if listed, else the nearest newer version, else the newest.
pub(crate) fn choose_version<'a>(wanted: &str, versions: &[&'a str]) -> Option<&'a str> {
    if let Some(v) = versions.iter().find(|v| **v == wanted) {
        return Some(v);
    }
    let newer = versions
        .iter()
        .filter(|v| debver::compare(v, wanted) == Ordering::Greater)
        .min_by(|a, b| debver::compare(a, b));
    newer
        .or_else(|| versions.iter().max_by(|a, b| debver::compare(a, b)))
        .copied()
}

/// The headers packages matching the planned image (`release`, `image_version`). Errors with
/// the `(name, version)` that apt has no version of at all.
pub(crate) fn plan_headers(
    entry: &CatalogEntry,
    release: &str,
    image_version: &str,
    available: &[(String, String)],
) -> Result<Vec<Package>, (String, String)> {
    let old_kver = split_release(&entry.release).map_or(entry.release.as_str(), |s| s.0);
    let new_kver = split_release(release).map_or(release, |s| s.0);
    let image_kept = release == entry.release && image_version == entry.image.version;
    entry
        .headers
        .iter()
        .map(|pin| {
            let name = pin.name.replacen(old_kver, new_kver, 1);
            let versions: Vec<&str> = available
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
                .collect();
            let wanted = if image_kept {
                &pin.version
            } else {
                image_version
            };
            if name == pin.name && versions.contains(&pin.version.as_str()) && image_kept {
                return Ok(pin.clone());
            }
            match choose_version(wanted, &versions) {
                Some(v) => Ok(Package {
                    name: name.clone(),
                    version: v.to_string(),
                    sha256: String::new(),
                }),
                None => Err((name, wanted.to_string())),
            }
        })
        .collect()
}

/// The header package names to ask apt about once the image is planned.
pub(crate) fn header_names(entry: &CatalogEntry, release: &str) -> Vec<String> {
    let old_kver = split_release(&entry.release).map_or(entry.release.as_str(), |s| s.0);
    let new_kver = split_release(release).map_or(release, |s| s.0);
    entry
        .headers
        .iter()
        .map(|p| p.name.replacen(old_kver, new_kver, 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::kernel::Catalog;

    fn avail(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn entry(id: &str) -> CatalogEntry {
        Catalog::builtin()
            .expect("catalog")
            .get(id)
            .expect("entry")
            .clone()
    }

    #[test]
    fn splits_releases() {
        assert_eq!(split_release("6.1.0-56-amd64"), Some(("6.1.0-56", "amd64")));
        assert_eq!(
            split_release("6.1.0-56-cloud-amd64"),
            Some(("6.1.0-56", "cloud-amd64"))
        );
        assert_eq!(
            split_release("6.12.117+deb12-rt-amd64"),
            Some(("6.12.117+deb12", "rt-amd64"))
        );
        assert_eq!(
            split_release("6.1.0-56-686-pae"),
            Some(("6.1.0-56", "686-pae"))
        );
        assert_eq!(split_release("6.1.0"), None);
        assert_eq!(split_release("amd64"), None);
        assert!(same_line("6.1.0-47-amd64", "6.1.0-57-amd64"));
        assert!(!same_line("6.1.0-47-amd64", "6.1.0-57-cloud-amd64"));
        assert!(!same_line("6.12.117+deb12-amd64", "6.12.38+deb13-amd64"));
        assert!(!same_line("6.1.0-47-amd64", "6.12.117+deb12-amd64"));
        assert_eq!(name_prefix(&entry("debian-6.12")), "linux-image-6.12.");
    }

    #[test]
    fn keeps_pin_when_present() {
        let e = entry("debian-6.1");
        let a = avail(&[
            ("linux-image-6.1.0-56-amd64-unsigned", "6.1.192-2"),
            ("linux-image-6.1.0-57-amd64-unsigned", "6.1.195-1"),
        ]);
        let (pkg, rel) = plan_image(&e, &a).expect("plan");
        assert_eq!(pkg, e.image);
        assert_eq!(rel, "6.1.0-56-amd64");
    }

    #[test]
    fn vanished_image_falls_back_to_newest_of_same_line() {
        let e = entry("debian-6.1");
        let a = avail(&[
            ("linux-image-6.1.0-55-amd64-unsigned", "6.1.192-1"),
            ("linux-image-6.1.0-58-amd64-unsigned", "6.1.199-1"),
            ("linux-image-6.1.0-57-amd64-unsigned", "6.1.195-1"),
            ("linux-image-6.1.0-59-cloud-amd64-unsigned", "6.1.200-1"),
            ("linux-image-6.1.0-59-amd64", "6.1.200-1"),
            (
                "linux-image-6.12.117+deb12-amd64-unsigned",
                "6.12.117-1~deb12u1",
            ),
        ]);
        let (pkg, rel) = plan_image(&e, &a).expect("plan");
        assert_eq!(pkg.name, "linux-image-6.1.0-58-amd64-unsigned");
        assert_eq!(pkg.version, "6.1.199-1");
        assert!(pkg.sha256.is_empty(), "hash must come from apt");
        assert_eq!(rel, "6.1.0-58-amd64");
        assert!(plan_image(
            &e,
            &avail(&[("linux-image-6.1.0-9-cloud-amd64-unsigned", "1")])
        )
        .is_none());
    }

    #[test]
    fn headers_follow_the_fallback_image() {
        let e = entry("debian-6.1");
        assert_eq!(
            header_names(&e, "6.1.0-58-amd64"),
            [
                "linux-headers-6.1.0-58-amd64",
                "linux-headers-6.1.0-58-common",
                "linux-kbuild-6.1"
            ]
        );
        let a = avail(&[
            ("linux-headers-6.1.0-58-amd64", "6.1.199-1"),
            ("linux-headers-6.1.0-58-common", "6.1.199-1"),
            ("linux-kbuild-6.1", "6.1.176-1"),
            ("linux-kbuild-6.1", "6.1.199-1"),
            ("linux-kbuild-6.1", "6.1.201-1"),
        ]);
        let h = plan_headers(&e, "6.1.0-58-amd64", "6.1.199-1", &a).expect("headers");
        assert!(
            h.iter()
                .all(|p| p.version == "6.1.199-1" && p.sha256.is_empty()),
            "{h:?}"
        );
        let missing = plan_headers(&e, "6.1.0-59-amd64", "6.1.200-1", &a).expect_err("missing");
        assert_eq!(missing.0, "linux-headers-6.1.0-59-amd64");
    }

    #[test]
    fn kept_pins_keep_their_hashes_and_kbuild_takes_nearest_newer() {
        let e = entry("debian-6.1.0-47");
        let mut a = avail(&[
            ("linux-headers-6.1.0-47-amd64", "6.1.170-3"),
            ("linux-headers-6.1.0-47-common", "6.1.170-3"),
            ("linux-kbuild-6.1", "6.1.192-2"),
            ("linux-kbuild-6.1", "6.1.176-1"),
        ]);
        let h = plan_headers(&e, &e.release, &e.image.version, &a).expect("headers");
        assert_eq!(h, e.headers, "all pins present: unchanged");
        a.retain(|(_, v)| v != "6.1.176-1");
        let h = plan_headers(&e, &e.release, &e.image.version, &a).expect("headers");
        assert_eq!(h[..2], e.headers[..2]);
        assert_eq!(
            (h[2].version.as_str(), h[2].sha256.as_str()),
            ("6.1.192-2", "")
        );
    }

    #[test]
    fn chooses_exact_then_nearest_newer_then_newest() {
        let v = ["6.1.176-1", "6.1.192-2", "6.1.187-1"];
        assert_eq!(choose_version("6.1.187-1", &v), Some("6.1.187-1"));
        assert_eq!(choose_version("6.1.170-3", &v), Some("6.1.176-1"));
        assert_eq!(choose_version("6.1.177-1", &v), Some("6.1.187-1"));
        assert_eq!(choose_version("6.1.200-1", &v), Some("6.1.192-2"));
        assert_eq!(choose_version("6.1.200-1", &[]), None);
    }
}
