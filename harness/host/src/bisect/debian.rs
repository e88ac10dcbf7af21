//! The Debian axis: the catalog's kernels of one line (`6.1.0-<abi>-amd64`, or the 6.12
//! `+deb12` builds) between two versions, oldest first. A bound is a catalog id
//! (`debian-6.1.0-53`), a release (`6.1.0-53-amd64` or `6.1.0-53`) or a package version
//! (`6.1.187-1`).

use std::cmp::Ordering;

use super::{BisectError, Rev};
use crate::kernel::debver::compare;
use crate::kernel::{Catalog, CatalogEntry};

/// The catalog entry a bound names.
fn resolve<'a>(catalog: &'a Catalog, bound: &str) -> Result<&'a CatalogEntry, BisectError> {
    catalog
        .kernels
        .iter()
        .find(|e| {
            e.id == bound
                || e.release == bound
                || e.release == format!("{bound}-amd64")
                || e.image.version == bound
        })
        .ok_or_else(|| {
            BisectError::Versions(format!(
                "`{bound}` is not a kernel of the catalog (kernels/catalog.toml): give an id, a \
                 release or a package version that `shmemfuzz kernel list` shows"
            ))
        })
}

/// The line a release belongs to: its text with the ABI or patch level taken out
/// (`6.1.0-53-amd64` → `6.1.0--amd64`, `6.12.117+deb12-amd64` → `6.12.+deb12-amd64`).
fn line_of(release: &str) -> String {
    match release.split_once('-') {
        // 6.1.0-53-amd64: the ABI is the second field.
        Some((base, rest)) if !base.contains('+') => {
            let flavour = rest.split_once('-').map_or("", |(_, f)| f);
            format!("{base}--{flavour}")
        }
        // 6.12.117+deb12-amd64: the patch level is the third number.
        _ => {
            let (ver, tail) = release.split_once('+').unwrap_or((release, ""));
            let mm: Vec<&str> = ver.splitn(3, '.').take(2).collect();
            format!("{}.+{tail}", mm.join("."))
        }
    }
}

/// The kernels of `FIRST..LAST` (both included), oldest first.
pub fn debian_range(catalog: &Catalog, spec: &str) -> Result<Vec<Rev>, BisectError> {
    let (first, last) = spec.split_once("..").ok_or_else(|| {
        BisectError::Versions(format!(
            "`{spec}` is not a range: write FIRST..LAST, e.g. 6.1.0-53..6.1.0-56"
        ))
    })?;
    let (a, b) = (resolve(catalog, first)?, resolve(catalog, last)?);
    let line = line_of(&a.release);
    if line_of(&b.release) != line {
        return Err(BisectError::Versions(format!(
            "{} and {} are different kernel lines: bisect within one line",
            a.release, b.release
        )));
    }
    if compare(&a.image.version, &b.image.version) != Ordering::Less {
        return Err(BisectError::Versions(format!(
            "{} ({}) is not older than {} ({}): FIRST is the good, older one",
            a.id, a.image.version, b.id, b.image.version
        )));
    }
    let mut entries: Vec<&CatalogEntry> = catalog
        .kernels
        .iter()
        .filter(|e| line_of(&e.release) == line)
        .filter(|e| {
            compare(&e.image.version, &a.image.version) != Ordering::Less
                && compare(&e.image.version, &b.image.version) != Ordering::Greater
        })
        .collect();
    entries.sort_by(|x, y| compare(&x.image.version, &y.image.version));
    Ok(entries
        .into_iter()
        .map(|e| Rev {
            rev: e.id.clone(),
            label: format!("{} ({})", e.release, e.image.version),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_the_catalog_in_version_order() {
        let c = Catalog::builtin().expect("catalog");
        let r = debian_range(&c, "6.1.0-53..debian-6.1").expect("range");
        let ids: Vec<&str> = r.iter().map(|x| x.rev.as_str()).collect();
        assert_eq!(
            ids,
            [
                "debian-6.1.0-53",
                "debian-6.1.0-54",
                "debian-6.1.0-55",
                "debian-6.1"
            ]
        );
        assert!(
            r[0].label.starts_with("6.1.0-53-amd64 (6.1.187-1)"),
            "{}",
            r[0].label
        );
        let r = debian_range(&c, "6.1.170-3..6.1.0-50-amd64").expect("range");
        assert_eq!(r.len(), 2);
        let r = debian_range(&c, "debian-6.12.107..debian-6.12").expect("range");
        // 107, 111, 113, 115, 117 and 118 (debian-6.12).
        assert_eq!(r.len(), 6);
        for bad in [
            "6.1.0-56..6.1.0-53",
            "6.1.0-53..debian-6.12",
            "6.1.0-99..6.1.0-53",
            "6.1.0-53",
        ] {
            assert!(debian_range(&c, bad).is_err(), "{bad}");
        }
    }
}
