//! Which kernel text belongs to mm/: address ranges from a build tree, to keep KCOV PCs to
//! the code this tool is about.
//!
//! KCOV instruments the whole kernel (`CONFIG_KCOV_INSTRUMENT_ALL`), and kallsyms does not
//! say which file a function came from. The build tree does: `nm` over `mm/built-in.a` (a
//! thin archive of every object under mm/) names mm's functions, and `System.map` gives
//! every text symbol's address; an mm function spans from its address to the next text
//! symbol's. A static function whose name also exists outside mm/ brings both ranges in: a
//! few stray PCs, never a missed one.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long `nm` of `mm/built-in.a` may take (well under a second).
const NM_LIMIT: Duration = Duration::from_secs(120);

/// Why mm/ text ranges could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MmTextError {
    #[error("cannot read {path} (is {dir} a kernel build directory?)", dir = .path.parent().map(|p| p.display().to_string()).unwrap_or_default())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("running nm on {path}: {why} (install binutils)")]
    Nm { path: PathBuf, why: String },
    #[error("{path} names no mm/ function: not a build of this tree?")]
    Empty { path: PathBuf },
}

/// Sorted, disjoint `[start, end)` ranges of mm/ text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MmText {
    ranges: Vec<(u64, u64)>,
}

fn is_text(kind: &str) -> bool {
    matches!(kind, "t" | "T" | "w" | "W")
}

impl MmText {
    /// Ranges of the kernel built in `build_dir` (`make O=` directory).
    pub fn from_build_dir(build_dir: &Path) -> Result<MmText, MmTextError> {
        let map_path = build_dir.join("System.map");
        let map = std::fs::read_to_string(&map_path).map_err(|source| MmTextError::Read {
            path: map_path.clone(),
            source,
        })?;
        let archive = build_dir.join("mm/built-in.a");
        if !archive.is_file() {
            return Err(MmTextError::Read {
                path: archive,
                source: std::io::ErrorKind::NotFound.into(),
            });
        }
        let mut cmd = Command::new("nm");
        cmd.arg("--defined-only")
            .arg(&archive)
            .current_dir(build_dir);
        let nm = crate::process::output(cmd, NM_LIMIT).map_err(|e| MmTextError::Nm {
            path: archive.clone(),
            why: e.to_string(),
        })?;
        if !nm.status.success() {
            return Err(MmTextError::Nm {
                path: archive,
                why: String::from_utf8_lossy(&nm.stderr).trim().to_string(),
            });
        }
        let text = Self::parse(&map, &String::from_utf8_lossy(&nm.stdout));
        if text.ranges.is_empty() {
            return Err(MmTextError::Empty { path: archive });
        }
        Ok(text)
    }

    /// Ranges from `System.map` text and `nm` output over mm/'s objects.
    pub fn parse(system_map: &str, mm_nm: &str) -> MmText {
        let mm: HashSet<&str> = mm_nm
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let (_, kind, name) = (f.next()?, f.next()?, f.next()?);
                is_text(kind).then_some(name)
            })
            .collect();
        let mut symbols: Vec<(u64, bool)> = system_map
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let (addr, kind, name) = (f.next()?, f.next()?, f.next()?);
                let addr = u64::from_str_radix(addr, 16).ok()?;
                is_text(kind).then(|| (addr, mm.contains(name)))
            })
            .collect();
        symbols.sort_unstable();
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        for pair in symbols.windows(2) {
            let ((start, in_mm), (end, _)) = (pair[0], pair[1]);
            if !in_mm || start == end {
                continue;
            }
            match ranges.last_mut() {
                Some(last) if last.1 == start => last.1 = end,
                _ => ranges.push((start, end)),
            }
        }
        MmText { ranges }
    }

    pub fn contains(&self, pc: u64) -> bool {
        let i = self.ranges.partition_point(|r| r.1 <= pc);
        self.ranges.get(i).is_some_and(|r| r.0 <= pc)
    }

    /// Bytes of mm/ text.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|r| r.1 - r.0).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}
