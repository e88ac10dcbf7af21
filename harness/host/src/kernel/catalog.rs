//! The kernel catalog (`kernels/catalog.toml`): which Debian kernel packages exist, pinned by
//! version and sha256, and which kernels the harness builds from Debian's source packages
//! (`[[source]]`: id, kernel line, config fragments). Parsing, validation and lookup; no I/O
//! beyond reading the file.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::KernelError;

/// The catalog shipped in the repository, embedded at build time.
pub const BUILTIN_CATALOG: &str = include_str!("../../../../kernels/catalog.toml");

/// All known kernels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// The entries, in file order (`[[kernel]]` tables).
    #[serde(rename = "kernel", default)]
    pub kernels: Vec<CatalogEntry>,
    /// Kernels built from source, in file order (`[[source]]` tables).
    #[serde(rename = "source", default)]
    pub sources: Vec<SourceEntry>,
}

/// A kernel the harness builds from `linux-source-<series>` with `kernels/configs/`
/// fragments and every patch of its series in `kernels/regressions/<series>/` (their
/// switches are off unless given on the kernel command line). The patched source tree is
/// shared; each fragment set has its own build directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceEntry {
    /// Name users type, e.g. `src-6.1-kasan`; built kernels are `<id>-<12 hex>`.
    pub id: String,
    /// Kernel line: `6.1` → package `linux-source-6.1`.
    pub series: String,
    /// Files under `kernels/configs/`, merged in order (`base.config` first).
    pub fragments: Vec<String>,
    /// The directory under `kernels/regressions/` whose `*.patch` files the tree carries;
    /// `None` means the one named like [`SourceEntry::series`]. See [`SourceEntry::patch_dir`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patches: Option<String>,
    /// One line for humans.
    #[serde(default)]
    pub description: String,
}

impl SourceEntry {
    /// The directory under `kernels/regressions/` holding this kernel's patch series: the
    /// `patches` key if given, else the series (`6.12` → `kernels/regressions/6.12/`). The
    /// planted switches are ported per kernel line, so each line has its own series.
    pub fn patch_dir(&self) -> &str {
        self.patches.as_deref().unwrap_or(&self.series)
    }
}

/// One pinned kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    /// Name users type, e.g. `debian-6.1`.
    pub id: String,
    /// `uname -r`, e.g. `6.1.0-56-amd64`.
    pub release: String,
    /// Whether this is the default kernel (exactly one entry is).
    #[serde(default)]
    pub default: bool,
    /// The `linux-image-<release>-unsigned` package.
    pub image: Package,
    /// linux-headers-<release>, linux-headers-<kver>-common, linux-kbuild-*.
    #[serde(default)]
    pub headers: Vec<Package>,
    /// One line for humans.
    #[serde(default)]
    pub description: String,
}

/// A Debian binary package pinned by version and the sha256 of its .deb.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// Lowercase hex sha256 of the .deb file.
    pub sha256: String,
}

impl Catalog {
    /// Reads and validates a catalog file.
    pub fn load(path: &Path) -> Result<Self, KernelError> {
        let text = std::fs::read_to_string(path).map_err(|source| KernelError::CatalogRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The catalog embedded in the binary ([`BUILTIN_CATALOG`]).
    pub fn builtin() -> Result<Self, KernelError> {
        Self::parse(BUILTIN_CATALOG, "kernels/catalog.toml (built in)")
    }

    /// Parses and validates catalog text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, KernelError> {
        let catalog: Catalog = toml::from_str(text).map_err(|e| KernelError::CatalogParse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        catalog
            .validate()
            .map_err(|reason| KernelError::CatalogInvalid {
                origin: origin.to_string(),
                reason,
            })?;
        Ok(catalog)
    }

    fn validate(&self) -> Result<(), String> {
        if self.kernels.is_empty() {
            return Err("it lists no kernels (add a [[kernel]] table)".into());
        }
        let mut ids = HashSet::new();
        for e in &self.kernels {
            if e.id.trim().is_empty() {
                return Err("an entry has an empty id".into());
            }
            if !ids.insert(e.id.as_str()) {
                return Err(format!("id `{}` appears twice", e.id));
            }
            if e.release.trim().is_empty() {
                return Err(format!("`{}` has an empty release", e.id));
            }
            if !e.image.name.contains(&e.release) {
                return Err(format!(
                    "`{}`: image package `{}` does not contain its release `{}`",
                    e.id, e.image.name, e.release
                ));
            }
            for p in std::iter::once(&e.image).chain(&e.headers) {
                if p.name.is_empty() || p.version.is_empty() {
                    return Err(format!(
                        "`{}` has a package with an empty name or version",
                        e.id
                    ));
                }
                let hex_ok = p.sha256.len() == 64
                    && p.sha256
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                if !hex_ok {
                    return Err(format!(
                        "`{}`: sha256 of {} is not 64 lowercase hex digits: `{}`",
                        e.id, p.name, p.sha256
                    ));
                }
            }
        }
        for s in &self.sources {
            if !ids.insert(s.id.as_str()) {
                return Err(format!("id `{}` appears twice", s.id));
            }
            if !s.id.starts_with("src-") || s.series.trim().is_empty() {
                return Err(format!(
                    "source kernel `{}`: ids start with `src-` and name a series",
                    s.id
                ));
            }
            let dir = s.patch_dir();
            if dir.is_empty() || dir.contains('/') || dir.starts_with('.') {
                return Err(format!(
                    "source kernel `{}`: its patch series `{dir}` must name one directory \
                     under kernels/regressions/",
                    s.id
                ));
            }
            if s.fragments.first().map(String::as_str) != Some("base.config") {
                return Err(format!(
                    "source kernel `{}`: its fragments start with base.config",
                    s.id
                ));
            }
        }
        match self.kernels.iter().filter(|e| e.default).count() {
            1 => Ok(()),
            0 => Err("no entry has `default = true`".into()),
            n => Err(format!(
                "{n} entries have `default = true`; exactly one may"
            )),
        }
    }

    /// The entry marked `default = true`.
    ///
    /// # Panics
    /// If the catalog has no entries at all; [`Catalog::load`] and [`Catalog::parse`] reject
    /// such a catalog. A hand-built catalog without a default yields its first entry.
    pub fn default_entry(&self) -> &CatalogEntry {
        self.kernels
            .iter()
            .find(|e| e.default)
            .or_else(|| self.kernels.first())
            .expect("kernel catalog is empty")
    }

    /// The entry with this id.
    pub fn get(&self, id: &str) -> Result<&CatalogEntry, KernelError> {
        self.kernels
            .iter()
            .find(|e| e.id == id)
            .ok_or_else(|| KernelError::UnknownKernel {
                id: id.to_string(),
                known: self.ids().join(", "),
            })
    }

    /// All ids, in file order (source kernels last).
    pub fn ids(&self) -> Vec<&str> {
        self.kernels
            .iter()
            .map(|e| e.id.as_str())
            .chain(self.sources.iter().map(|s| s.id.as_str()))
            .collect()
    }

    /// The source kernel called `id`.
    pub fn source(&self, id: &str) -> Option<&SourceEntry> {
        self.sources.iter().find(|s| s.id == id)
    }

    /// The source kernel a built id (`src-6.1-kasan-0123456789ab`) was built as: the longest
    /// id followed by `-<12 hex>`.
    pub fn source_of_built(&self, built: &str) -> Option<&SourceEntry> {
        self.sources
            .iter()
            .filter(|s| {
                built
                    .strip_prefix(s.id.as_str())
                    .and_then(|r| r.strip_prefix('-'))
                    .is_some_and(|h| h.len() == 12 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            })
            .max_by_key(|s| s.id.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "530631662c9ad84758eca2d7609cf40623309afd4bccbeb563f33e9c7f220bdf";

    fn entry(id: &str, default: bool) -> String {
        format!(
            "[[kernel]]\nid = \"{id}\"\ndefault = {default}\nrelease = \"6.1.0-56-amd64\"\n\
             image = {{ name = \"linux-image-6.1.0-56-amd64-unsigned\", version = \"6.1.192-2\", \
             sha256 = \"{SHA}\" }}\n"
        )
    }

    #[test]
    fn builtin_catalog_parses_and_pins_both_lines() {
        let c = Catalog::builtin().expect("built-in catalog");
        let d = c.default_entry();
        assert_eq!(d.id, "debian-6.1");
        assert_eq!(d.release, "6.1.0-56-amd64");
        assert_eq!(d.headers.len(), 3);
        let e = c.get("debian-6.12").expect("6.12 entry");
        assert_eq!(e.image.version, "6.12.118-1~deb12u1");
        assert!(!e.default);
        for id in [
            "debian-6.12.117",
            "debian-6.1.0-47",
            "debian-6.1.0-50",
            "debian-6.1.0-53",
            "debian-6.1.0-55",
        ] {
            assert!(c.get(id).is_ok(), "{id}");
        }
        assert!(c.kernels.iter().all(|e| !e.release.contains("cloud")));
        let kasan = c
            .source("src-6.1-kasan")
            .expect("the KASAN kernel is listed");
        assert_eq!(kasan.series, "6.1");
        assert!(kasan.fragments.contains(&"kasan.config".to_string()));
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kernels/configs");
        for s in &c.sources {
            for f in &s.fragments {
                assert!(root.join(f).is_file(), "{}: {f}", s.id);
            }
        }
    }

    #[test]
    fn source_kernels_take_the_patch_series_of_their_line() {
        let c = Catalog::builtin().expect("built-in catalog");
        for (id, series) in [
            ("src-6.1", "6.1"),
            ("src-6.1-kasan", "6.1"),
            ("src-6.12", "6.12"),
            ("src-6.12-kasan", "6.12"),
        ] {
            let s = c.source(id).expect("listed");
            assert_eq!((s.series.as_str(), s.patch_dir()), (series, series), "{id}");
        }
        // The 6.12 pair uses the 6.1 pair's fragments.
        let frags = |id: &str| c.source(id).expect("listed").fragments.clone();
        assert_eq!(frags("src-6.12"), frags("src-6.1"));
        assert_eq!(frags("src-6.12-kasan"), frags("src-6.1-kasan"));
        // An explicit `patches =` names another directory.
        let text = entry("a", true)
            + "[[source]]\nid = \"src-x\"\nseries = \"6.12\"\npatches = \"6.12-extra\"\n\
               fragments = [\"base.config\"]\n";
        let c = Catalog::parse(&text, "t").expect("parse");
        assert_eq!(c.source("src-x").expect("listed").patch_dir(), "6.12-extra");
        for bad in ["../6.1", "6.1/x", "", ".hidden"] {
            let text = entry("a", true)
                + &format!(
                    "[[source]]\nid = \"src-x\"\nseries = \"6.1\"\npatches = \"{bad}\"\n\
                     fragments = [\"base.config\"]\n"
                );
            let err = Catalog::parse(&text, "t").expect_err(bad);
            assert!(err.to_string().contains("one directory"), "{bad}: {err}");
        }
    }

    #[test]
    fn built_ids_name_their_source_kernel() {
        let c = Catalog::builtin().expect("built-in catalog");
        let of = |id: &str| c.source_of_built(id).map(|s| s.id.as_str());
        assert_eq!(of("src-6.1-0123456789ab"), Some("src-6.1"));
        assert_eq!(of("src-6.1-kasan-0123456789ab"), Some("src-6.1-kasan"));
        assert_eq!(of("src-6.12-0123456789ab"), Some("src-6.12"));
        assert_eq!(of("src-6.12-kasan-0123456789ab"), Some("src-6.12-kasan"));
        assert_eq!(of("src-6.1-kasan"), None, "not a built id");
        assert_eq!(of("src-6.1"), None);
        assert_eq!(of("debian-6.1"), None);
        assert_eq!(of("src-6.1-kasan-xyz"), None);
        assert!(c.ids().contains(&"src-6.1-kasan"));
    }

    #[test]
    fn source_entries_are_checked() {
        let src = |id: &str, frags: &str| {
            format!("[[source]]\nid = \"{id}\"\nseries = \"6.1\"\nfragments = [{frags}]\n")
        };
        let ok = entry("a", true) + &src("src-x", "\"base.config\"");
        assert!(Catalog::parse(&ok, "t").is_ok());
        let no_base = entry("a", true) + &src("src-x", "\"kasan.config\"");
        let err = Catalog::parse(&no_base, "t").expect_err("base first");
        assert!(err.to_string().contains("start with base.config"), "{err}");
        let clash = entry("src-x", true) + &src("src-x", "\"base.config\"");
        let err = Catalog::parse(&clash, "t").expect_err("duplicate id");
        assert!(err.to_string().contains("appears twice"), "{err}");
    }

    #[test]
    fn unknown_id_lists_known_ones() {
        let c = Catalog::parse(&(entry("a", true) + &entry("b", false)), "t").expect("parse");
        let msg = c.get("foo").expect_err("unknown").to_string();
        assert_eq!(msg, "unknown kernel `foo`; known: a, b");
    }

    #[test]
    fn rejects_zero_or_two_defaults_and_duplicates() {
        let two = Catalog::parse(&(entry("a", true) + &entry("b", true)), "t");
        assert!(two.expect_err("two").to_string().contains("2 entries"));
        let none = Catalog::parse(&entry("a", false), "t");
        assert!(none.expect_err("none").to_string().contains("no entry"));
        let dup = Catalog::parse(&(entry("a", true) + &entry("a", false)), "t");
        assert!(dup.expect_err("dup").to_string().contains("appears twice"));
        let empty = Catalog::parse("", "t");
        assert!(empty.expect_err("empty").to_string().contains("no kernels"));
    }

    #[test]
    fn rejects_bad_hash_typos_and_mismatched_release() {
        let bad_hash = entry("a", true).replace(SHA, "abc");
        let err = Catalog::parse(&bad_hash, "t").expect_err("hash");
        assert!(err.to_string().contains("not 64 lowercase hex"), "{err}");
        let typo = entry("a", true).replace("release", "relase");
        let err = Catalog::parse(&typo, "cat.toml").expect_err("typo");
        assert!(matches!(err, KernelError::CatalogParse { .. }), "{err}");
        assert!(err.to_string().contains("cat.toml"), "{err}");
        let other = entry("a", true).replace("release = \"6.1.0-56", "release = \"6.1.0-55");
        let err = Catalog::parse(&other, "t").expect_err("release");
        assert!(
            err.to_string().contains("does not contain its release"),
            "{err}"
        );
    }

    #[test]
    fn load_reports_missing_file() {
        let err = Catalog::load(Path::new("/nonexistent/catalog.toml")).expect_err("missing");
        assert!(err
            .to_string()
            .starts_with("cannot read kernel catalog /nonexistent/catalog.toml"));
    }
}
