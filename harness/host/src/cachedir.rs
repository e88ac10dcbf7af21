//! Conventions shared by every cache the host keeps (kernels, kernel builds, module builds):
//! work in progress lives in `.partial-*` directories next to the published ones and is
//! renamed into place when complete; leftovers of killed runs are swept after a day.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The root of every cache the host keeps: `$SHMEMFUZZ_CACHE` if set, else
/// `<workspace>/.cache`. Kernels live in `kernels/`, kernel sources and builds in `src/` and
/// `build/`, module builds in `modules/`, the accelerator verdicts in `accel/`.
pub fn cache_root(workspace: &Path) -> PathBuf {
    match std::env::var_os("SHMEMFUZZ_CACHE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace.join(".cache"),
    }
}

/// Prefix of a cache's work-in-progress directories.
const PARTIAL_PREFIX: &str = ".partial-";
/// Age after which a work-in-progress directory is taken to be abandoned.
const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Removes `.partial-*` directories under `root` left by runs killed more than a day ago;
/// errors are ignored (another process may be sweeping too).
pub(crate) fn remove_stale_partials(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let is_partial = e.file_name().to_string_lossy().starts_with(PARTIAL_PREFIX);
        let age = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok());
        if is_partial && age.is_some_and(|a| a > STALE_AFTER) {
            tracing::debug!(path = %e.path().display(), "removing an abandoned work directory");
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A new work-in-progress directory in `root` (`.partial-*`, removed when dropped), after
/// sweeping abandoned ones; `Err` is a sentence naming `root`.
pub(crate) fn work_dir(root: &Path) -> Result<tempfile::TempDir, (String, std::io::Error)> {
    remove_stale_partials(root);
    tempfile::Builder::new()
        .prefix(PARTIAL_PREFIX)
        .tempdir_in(root)
        .map_err(|e| {
            (
                format!("cannot create a work directory in {}", root.display()),
                e,
            )
        })
}
