//! [`BisectError`]: why a bisection could not go on. A commit that does not build, a kernel
//! that does not boot or an unrelated crash are *not* errors: they are skipped steps.

use std::io;
use std::path::PathBuf;

use crate::bundle::BundleError;
use crate::context::ContextError;
use crate::kbuild::KbuildError;
use crate::kernel::KernelError;
use crate::session::SessionError;
use crate::vm::VmError;

#[derive(Debug, thiserror::Error)]
pub enum BisectError {
    /// A git command failed.
    #[error("`{command}` failed: {output}")]
    Git { command: String, output: String },
    /// The range holds no commit to test.
    #[error("no commits in {good}..{bad}{}: check the order of --good and --bad (the good one is the older)", paths_note(paths))]
    EmptyRange {
        good: String,
        bad: String,
        paths: Vec<String>,
    },
    /// The state file in the work directory belongs to another bisection.
    #[error(
        "{path} belongs to another bisection ({what} differs): give another --workdir, or \
         --restart to throw that one away"
    )]
    StateMismatch { path: PathBuf, what: String },
    /// The state file cannot be read or written.
    #[error("bisection state {path}: {message}")]
    State { path: PathBuf, message: String },
    /// The reproducer bundle cannot drive a bisection.
    #[error("{path}: {message}")]
    Repro { path: PathBuf, message: String },
    /// A Debian version range names versions the catalog does not have.
    #[error("{0}")]
    Versions(String),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Build(#[from] KbuildError),
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Vm(#[from] VmError),
    /// The bisection was interrupted; the step in progress was not recorded.
    #[error("the bisection stopped; the step in progress was not recorded")]
    Interrupted(#[from] crate::interrupt::Interrupted),
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

fn paths_note(paths: &[String]) -> String {
    if paths.is_empty() {
        String::new()
    } else {
        format!(" touching {}", paths.join(" "))
    }
}

impl BisectError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        BisectError::Io {
            context: context.into(),
            source,
        }
    }
}
