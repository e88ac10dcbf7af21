//! Config fragments: parsing, merging (later fragments win), the merged text that
//! `KCONFIG_ALLCONFIG` reads, and checking that the resolved `.config` has what they ask for.
//!
//! Only `CONFIG_X=value` and `# CONFIG_X is not set` lines count; comments and blank lines
//! do not, so editing a fragment's comments changes neither the hash nor the build dir.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::KbuildError;

/// The assignments of a set of fragments, merged: symbol (`CONFIG_X`) → value (`y`, `m`,
/// `"str"`, `64`, or `n` for "is not set"), in first-seen order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fragments {
    order: Vec<String>,
    values: BTreeMap<String, String>,
}

impl Fragments {
    /// Reads and merges fragment files; later files override earlier ones.
    pub(crate) fn load(paths: &[PathBuf]) -> Result<Self, KbuildError> {
        let mut merged = Fragments::default();
        for p in paths {
            let text = std::fs::read_to_string(p).map_err(|e| {
                KbuildError::io(format!("cannot read config fragment {}", p.display()), e)
            })?;
            merged.add(p, &text)?;
        }
        Ok(merged)
    }

    /// Adds the assignments of one fragment (`path` is for error messages).
    pub(crate) fn add(&mut self, path: &Path, text: &str) -> Result<(), KbuildError> {
        for (i, raw) in text.lines().enumerate() {
            let Some((sym, value)) = parse_line(raw).map_err(|()| KbuildError::FragmentSyntax {
                path: path.to_path_buf(),
                line: i + 1,
                text: raw.trim().to_string(),
            })?
            else {
                continue;
            };
            if self.values.insert(sym.clone(), value).is_none() {
                self.order.push(sym);
            }
        }
        Ok(())
    }

    /// The merged fragment as kconfig reads it (`KCONFIG_ALLCONFIG=`).
    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        for sym in &self.order {
            match self.values[sym].as_str() {
                "n" => out.push_str(&format!("# {sym} is not set\n")),
                v => out.push_str(&format!("{sym}={v}\n")),
            }
        }
        out
    }

    /// sha256 (hex) of `base` (the make target the fragments are merged onto) and the
    /// merged assignments: what decides the resolved config for a given source.
    pub(crate) fn hash(&self, base: &str) -> String {
        let mut h = Sha256::new();
        h.update(base.as_bytes());
        h.update(b"\n");
        h.update(self.text().as_bytes());
        hex::encode(h.finalize())
    }

    /// Every asked-for assignment the resolved config does not have, as
    /// `CONFIG_X=want (got value)`.
    pub(crate) fn mismatches(&self, resolved: &BTreeMap<String, String>) -> Vec<String> {
        self.order
            .iter()
            .filter_map(|sym| {
                let want = &self.values[sym];
                let got = resolved.get(sym).map_or("n", String::as_str);
                (want != got).then(|| format!("{sym}={want} (got {got})"))
            })
            .collect()
    }
}

/// One fragment or .config line: `Ok(Some((sym, value)))` for an assignment, `Ok(None)` for a
/// comment or blank line, `Err(())` for anything else.
fn parse_line(raw: &str) -> Result<Option<(String, String)>, ()> {
    let line = raw.trim();
    if let Some(rest) = line.strip_prefix('#') {
        let unset = rest
            .trim()
            .strip_suffix(" is not set")
            .filter(|s| is_symbol(s));
        return Ok(unset.map(|s| (s.to_string(), "n".to_string())));
    }
    if line.is_empty() {
        return Ok(None);
    }
    match line.split_once('=') {
        Some((sym, value)) if is_symbol(sym) && !value.is_empty() => {
            Ok(Some((sym.to_string(), value.to_string())))
        }
        _ => Err(()),
    }
}

fn is_symbol(s: &str) -> bool {
    s.strip_prefix("CONFIG_").is_some_and(|name| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// A resolved `.config`: symbol → value (`n` for "is not set"; absent symbols are off too).
pub(crate) fn parse_config(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| parse_line(l).ok().flatten())
        .collect()
}

/// sha256 (hex) of a resolved `.config`, ignoring its comment lines (the header names the
/// kernel version and the compiler, which say nothing about the options).
pub(crate) fn config_hash(text: &str) -> String {
    let mut h = Sha256::new();
    for (sym, value) in parse_config(text) {
        h.update(format!("{sym}={value}\n").as_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(texts: &[&str]) -> Fragments {
        let mut f = Fragments::default();
        for (i, t) in texts.iter().enumerate() {
            f.add(Path::new(&format!("f{i}.config")), t).expect("valid");
        }
        f
    }

    #[test]
    fn merges_later_wins_keeping_first_order() {
        let f = frag(&[
            "# comment\nCONFIG_A=y\n\nCONFIG_B=m\n# CONFIG_C is not set\n",
            "CONFIG_B=y\nCONFIG_S=\"-x\"\n",
        ]);
        assert_eq!(
            f.text(),
            "CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\nCONFIG_S=\"-x\"\n"
        );
    }

    #[test]
    fn comments_do_not_change_the_hash() {
        let a = frag(&["CONFIG_A=y\n"]);
        let b = frag(&["# why A\nCONFIG_A=y\n\n"]);
        assert_eq!(a.hash("allnoconfig"), b.hash("allnoconfig"));
        assert_ne!(a.hash("allnoconfig"), a.hash("defconfig"));
        assert_ne!(
            a.hash("allnoconfig"),
            frag(&["CONFIG_A=m\n"]).hash("allnoconfig")
        );
    }

    #[test]
    fn rejects_lines_that_are_not_kconfig() {
        let mut f = Fragments::default();
        let err = f
            .add(Path::new("base.config"), "CONFIG_A=y\nDRM=y\n")
            .expect_err("bad line");
        assert!(
            matches!(&err, KbuildError::FragmentSyntax { line: 2, text, .. } if text == "DRM=y"),
            "{err}"
        );
        assert!(f.add(Path::new("x"), "CONFIG_A=\n").is_err());
    }

    #[test]
    fn finds_what_did_not_survive_olddefconfig() {
        let f = frag(&["CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\nCONFIG_D=\"s\"\n"]);
        let resolved = parse_config(
            "#\n# Automatically generated file; DO NOT EDIT.\nCONFIG_A=y\nCONFIG_C=m\n\
             # CONFIG_E is not set\nCONFIG_D=\"s\"\n",
        );
        assert_eq!(f.mismatches(&resolved), vec!["CONFIG_C=y (got m)"]);
        let g = frag(&["CONFIG_MISSING=y\n"]);
        assert_eq!(g.mismatches(&resolved), vec!["CONFIG_MISSING=y (got n)"]);
    }

    #[test]
    fn config_hash_ignores_the_header() {
        let a = "#\n# Linux/x86 6.1.192 Kernel Configuration\n#\nCONFIG_A=y\n";
        let b = "#\n# Linux/x86 6.1.193 Kernel Configuration\n# CONFIG_CC_VERSION=x\nCONFIG_A=y\n";
        assert_eq!(config_hash(a), config_hash(b));
        assert_ne!(config_hash(a), config_hash("CONFIG_A=m\n"));
    }
}
