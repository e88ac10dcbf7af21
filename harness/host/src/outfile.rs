//! Writing an output file the user named: never over an input, never over an existing file
//! unless asked (`--force`), and atomically (a temporary file in the same directory renamed
//! into place, so a reader never sees half of it and a failed write leaves the old file).

use std::io;
use std::path::{Path, PathBuf};

/// Why an output file was not written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("refusing to write {output}: it is the input {input}; name another output file")]
    IsInput { output: PathBuf, input: PathBuf },
    #[error(
        "refusing to write {output}: it is inside the input bundle {input}; \
         name a file outside it"
    )]
    InsideInput { output: PathBuf, input: PathBuf },
    #[error("refusing to overwrite {0}: it exists; pass --force to replace it")]
    Exists(PathBuf),
    #[error("writing {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// `path` made absolute and resolved as far as it exists (the file itself may not).
fn resolved(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (abs.parent(), abs.file_name()) {
        (Some(dir), Some(name)) => resolved(dir).join(name),
        _ => abs,
    }
}

/// Checks that writing `output` would neither replace nor land inside any of `inputs` (files
/// or bundle directories), and that it does not exist unless `force`.
pub fn check(output: &Path, inputs: &[&Path], force: bool) -> Result<(), OutputError> {
    check_not_input(output, inputs)?;
    // symlink_metadata: a dangling symlink is an existing output too.
    if !force && output.symlink_metadata().is_ok() {
        return Err(OutputError::Exists(output.to_path_buf()));
    }
    Ok(())
}

/// Checks that writing `output` would neither replace nor land inside any of `inputs`.
pub fn check_not_input(output: &Path, inputs: &[&Path]) -> Result<(), OutputError> {
    let out = resolved(output);
    for input in inputs {
        let inp = resolved(input);
        if out == inp {
            return Err(OutputError::IsInput {
                output: output.to_path_buf(),
                input: input.to_path_buf(),
            });
        }
        if inp.is_dir() && out.starts_with(&inp) {
            return Err(OutputError::InsideInput {
                output: output.to_path_buf(),
                input: input.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename
/// ([`crate::files::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    crate::files::write_atomic(path, bytes).map_err(|source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// [`check`] then [`write_atomic`].
pub fn write_new(
    output: &Path,
    inputs: &[&Path],
    force: bool,
    bytes: &[u8],
) -> Result<(), OutputError> {
    check(output, inputs, force)?;
    write_atomic(output, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_existing_files_and_bundle_contents_are_refused() {
        let wd = tempfile::tempdir().expect("tempdir");
        let prog = wd.path().join("a.prog");
        std::fs::write(&prog, "x").expect("write");
        let bundle = wd.path().join("b");
        std::fs::create_dir(&bundle).expect("mkdir");
        // The same file by another spelling.
        let other = wd.path().join("b/../a.prog");
        let e = check(&other, &[&prog], true).expect_err("the input itself");
        assert!(matches!(e, OutputError::IsInput { .. }), "{e}");
        let e = check(&bundle.join("program.prog"), &[&bundle], true).expect_err("inside");
        assert!(matches!(e, OutputError::InsideInput { .. }), "{e}");
        let out = wd.path().join("out.c");
        check(&out, &[&prog, &bundle], false).expect("a new file is fine");
        write_new(&out, &[&prog], false, b"one").expect("written");
        let e = write_new(&out, &[&prog], false, b"two").expect_err("exists");
        assert!(e.to_string().contains("--force"), "{e}");
        write_new(&out, &[&prog], true, b"two").expect("--force replaces it");
        assert_eq!(std::fs::read(&out).expect("read"), b"two");
        assert_eq!(std::fs::read(&prog).expect("read"), b"x");
    }
}
