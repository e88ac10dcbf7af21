//! The campaign benchmark: a fixed corpus of fuzzer-generated programs (`bench/corpus/`,
//! checked in as program text so that a change to the byte decoder does not change what is
//! measured) run through one worker's [`Runner`], as a campaign would run them, with
//! executions per second and where the time goes. Live campaign rates depend on what the
//! fuzzer happens to generate; this does not, so figures compare across commits.
//!
//! [`generate`] is how the corpus was made: the fuzzer's own decoder on seeded random
//! bytes, first keeping programs that add an operation kind not yet covered, then filling up
//! with whatever the decoder makes.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use arbitrary::{Arbitrary, Unstructured};
use shmemfuzz_core::program::gen::{OpKind, GEN_MAX_LEN};
use shmemfuzz_core::program::Program;

use crate::session::runner::Runner;
use crate::session::SessionError;

/// Why the corpus could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CorpusBenchError {
    #[error("reading the bench corpus {path}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("the bench corpus {0} holds no .prog file")]
    Empty(std::path::PathBuf),
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// `count` programs the fuzzer's decoder makes from random bytes drawn from `seed`, chosen
/// to cover every operation kind the decoder can produce.
pub fn generate(seed: u64, count: usize) -> Vec<Program> {
    let mut rng = SplitMix(seed);
    let mut covered = BTreeSet::new();
    let mut chosen = Vec::new();
    let mut fill = Vec::new();
    // Enough attempts that every kind shows up many times over.
    for _ in 0..count * 200 {
        if chosen.len() >= count {
            break;
        }
        let len = (rng.next() as usize % GEN_MAX_LEN) + 1;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let Ok(p) = Program::arbitrary_take_rest(Unstructured::new(&bytes)) else {
            continue;
        };
        if p.ops.len() < 2 {
            continue;
        }
        let kinds: BTreeSet<String> = p
            .ops
            .iter()
            .filter_map(OpKind::of)
            .map(|k| format!("{k:?}"))
            .collect();
        if kinds.iter().any(|k| !covered.contains(k)) {
            covered.extend(kinds);
            chosen.push(p);
        } else if fill.len() < count {
            fill.push(p);
        }
    }
    let missing = count.saturating_sub(chosen.len());
    chosen.extend(fill.into_iter().take(missing));
    chosen
}

/// The operation kinds `programs` use, by name.
pub fn kinds(programs: &[Program]) -> BTreeSet<String> {
    programs
        .iter()
        .flat_map(|p| &p.ops)
        .filter_map(OpKind::of)
        .map(|k| format!("{k:?}"))
        .collect()
}

/// The `.prog` files of `dir`, in name order.
pub fn read_corpus(dir: &Path) -> Result<Vec<(String, Program)>, CorpusBenchError> {
    let read = |path: &Path| CorpusBenchError::Read {
        path: path.to_path_buf(),
        source: std::io::Error::other("unreadable"),
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|source| CorpusBenchError::Read {
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "prog"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(CorpusBenchError::Empty(dir.to_path_buf()));
    }
    files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).map_err(|_| read(path))?;
            let program =
                shmemfuzz_core::program::parse(&text).map_err(|e| CorpusBenchError::Parse {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok((name, program))
        })
        .collect()
}

/// What [`run_corpus`] measured.
#[derive(Clone, Debug, Default)]
pub struct CorpusFigures {
    pub executions: u64,
    /// Wall time of every execution, guest replacements included.
    pub secs: f64,
    /// Milliseconds per phase, summed over all executions (agent phases, the operations
    /// themselves, the host's share, replacing dead guests).
    pub phases: Vec<(String, f64)>,
    /// Executions with a finding, by first signature.
    pub findings: Vec<(String, String)>,
    pub boots: u32,
    pub restores: u32,
}

impl CorpusFigures {
    pub fn per_sec(&self) -> f64 {
        self.executions as f64 / self.secs.max(1e-9)
    }

    fn add(&mut self, name: &str, ms: f64) {
        match self.phases.iter_mut().find(|(n, _)| n == name) {
            Some((_, total)) => *total += ms,
            None => self.phases.push((name.to_string(), ms)),
        }
    }
}

/// Runs every program of `corpus` `rounds` times through `runner` (whose first guest is
/// booted before the clock starts); `progress` hears each execution.
pub fn run_corpus(
    runner: &mut Runner,
    corpus: &[(String, Program)],
    rounds: u32,
    progress: &dyn Fn(u64, &str),
) -> Result<CorpusFigures, CorpusBenchError> {
    runner.session()?;
    let (boots0, restores0) = (runner.boots(), runner.restores());
    let mut figs = CorpusFigures::default();
    let started = Instant::now();
    for _ in 0..rounds {
        for (name, program) in corpus {
            let replacing = Instant::now();
            runner.session()?;
            let replace_ms = replacing.elapsed().as_secs_f64() * 1e3;
            figs.add("host: replacing a dead guest (restore or boot)", replace_ms);
            let t = Instant::now();
            let out = runner.run(program, &mut |_| {})?;
            let wall = t.elapsed().as_secs_f64() * 1e3;
            figs.executions += 1;
            let accounted =
                super::add_agent_phases(out.teardown.as_ref(), &mut |name, ms| figs.add(name, ms));
            figs.add(
                "host: protocol, judging, console (and runs cut short)",
                (wall - accounted).max(0.0),
            );
            if let Some(f) = out.verdict.findings.first() {
                figs.findings.push((name.clone(), f.signature.clone()));
            }
            progress(figs.executions, name);
        }
    }
    figs.secs = started.elapsed().as_secs_f64();
    figs.boots = runner.boots() - boots0;
    figs.restores = runner.restores() - restores0;
    Ok(figs)
}

/// A small, well-known PRNG (splitmix64): the corpus must be reproducible from its seed,
/// and this is all the randomness it needs (no dependency for eight lines).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_corpus_is_reproducible_and_covers_every_kind_it_can() {
        let a = generate(7, 100);
        let b = generate(7, 100);
        assert_eq!(a.len(), 100);
        assert_eq!(
            a.iter().map(ToString::to_string).collect::<Vec<_>>(),
            b.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "same seed, same corpus"
        );
        let covered = kinds(&a);
        let missing: Vec<String> = selectable().difference(&covered).cloned().collect();
        assert!(
            missing.is_empty(),
            "kinds missing from the corpus: {missing:?}"
        );
    }

    /// Every kind the decoder's op byte can select.
    fn selectable() -> BTreeSet<String> {
        use shmemfuzz_core::program::gen::{EXT_TABLE, OP_TABLE};
        OP_TABLE
            .iter()
            .chain(EXT_TABLE.iter())
            .map(|k| format!("{k:?}"))
            .collect()
    }

    #[test]
    fn the_checked_in_corpus_parses_and_covers_every_kind() {
        let dir = crate::kernels::context::source_root().join("bench/corpus");
        let corpus = read_corpus(&dir).expect("bench/corpus is checked in");
        assert!(corpus.len() >= 90, "{} programs", corpus.len());
        let programs: Vec<Program> = corpus.into_iter().map(|(_, p)| p).collect();
        let covered = kinds(&programs);
        let missing: Vec<String> = selectable().difference(&covered).cloned().collect();
        assert!(missing.is_empty(), "kinds missing: {missing:?}");
    }
}
