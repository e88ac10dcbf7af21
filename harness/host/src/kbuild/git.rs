//! The git operations self-built kernels and bisection need, by running the `git` binary:
//! it is what users already have and trust, it handles every repository layout and object
//! format (worktrees, alternates, partial clones), and it is what a user would type to check
//! our work. (A crate such as gix or git2 would add a large dependency for five commands.)
//!
//! Builds of a revision never touch the user's checkout: they check it out in a separate
//! `git worktree` (detached HEAD) owned by shmemfuzz.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::tools::run_error;
use super::KbuildError;
use crate::process::{self, TOOL_LIMIT};

/// Variables through which a calling git (a hook, `rebase --exec`) would point every git we
/// run at its own repository instead of `dir`: running the tests under `git rebase --exec`
/// once rewrote the calling repository's config this way.
const GIT_LOCATION_VARS: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
];

/// Runs `git -C dir args` (at most [`TOOL_LIMIT`]) and returns its stdout (trimmed), or the
/// failure with git's stderr.
pub fn git(dir: &Path, args: &[&str]) -> Result<String, KbuildError> {
    let mut cmd = Command::new("git");
    for var in GIT_LOCATION_VARS {
        cmd.env_remove(var);
    }
    cmd.arg("-C")
        .arg(dir)
        .args(args)
        .env("LC_ALL", "C")
        .env("GIT_TERMINAL_PROMPT", "0");
    let out = process::output(cmd, TOOL_LIMIT).map_err(|e| run_error(("git", "git"), e))?;
    if !out.status.success() {
        return Err(KbuildError::ToolFailed {
            command: format!("git -C {} {}", dir.display(), args.join(" ")),
            status: out.status.to_string(),
            output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Whether `dir` is inside a git work tree.
pub fn is_repo(dir: &Path) -> bool {
    git(dir, &["rev-parse", "--is-inside-work-tree"]).is_ok_and(|s| s == "true")
}

/// The full commit id `rev` names.
pub fn commit(repo: &Path, rev: &str) -> Result<String, KbuildError> {
    git(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ],
    )
    .map_err(|_| KbuildError::ToolFailed {
        command: format!("git -C {} rev-parse {rev}", repo.display()),
        status: "no such commit".into(),
        output: format!("`{rev}` does not name a commit in {}", repo.display()),
    })
}

/// `HEAD` of the checkout `dir` and whether its tracked files differ from it.
pub fn head(dir: &Path) -> Result<(String, bool), KbuildError> {
    let commit = commit(dir, "HEAD")?;
    let dirty = !git(dir, &["status", "--porcelain", "--untracked-files=no"])?.is_empty();
    Ok((commit, dirty))
}

/// The repository's shared git directory (the same for all its worktrees), absolute.
pub fn common_dir(repo: &Path) -> Result<PathBuf, KbuildError> {
    let d = PathBuf::from(git(repo, &["rev-parse", "--git-common-dir"])?);
    let d = if d.is_absolute() { d } else { repo.join(d) };
    d.canonicalize()
        .map_err(|e| KbuildError::io(format!("cannot resolve {}", d.display()), e))
}

/// The commits of `good..bad` (those touching `paths` when given), oldest first, each with
/// its subject; topological order with merges flattened (`--ancestry-path`: only commits
/// that descend from `good`). `good` must be an ancestor of `bad`.
pub fn range(
    repo: &Path,
    good: &str,
    bad: &str,
    paths: &[String],
) -> Result<Vec<(String, String)>, KbuildError> {
    if git(repo, &["merge-base", "--is-ancestor", good, bad]).is_err() {
        return Err(KbuildError::ToolFailed {
            command: format!(
                "git -C {} merge-base --is-ancestor {good} {bad}",
                repo.display()
            ),
            status: "not an ancestor".into(),
            output: format!(
                "{good} is not an ancestor of {bad}: the good revision must be the older one"
            ),
        });
    }
    let spec = format!("{good}..{bad}");
    let mut args = vec![
        "log",
        "--reverse",
        "--topo-order",
        "--ancestry-path",
        "--format=%H%x09%s",
        spec.as_str(),
        "--",
    ];
    args.extend(paths.iter().map(String::as_str));
    let text = git(repo, &args)?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(c, s)| (c.to_string(), s.to_string()))
        .collect())
}

/// The subject line of `rev`.
pub fn subject(repo: &Path, rev: &str) -> Result<String, KbuildError> {
    git(repo, &["log", "-1", "--format=%s", rev])
}

/// Makes sure `dir` is a worktree of `repo` (adding it, detached, if missing) and checks out
/// `commit` there, discarding anything changed in it. Only files that differ between the
/// two commits are rewritten, so make rebuilds only what the commits changed.
pub fn checkout_in_worktree(repo: &Path, dir: &Path, commit: &str) -> Result<(), KbuildError> {
    if !dir.join(".git").exists() {
        if dir.exists() {
            std::fs::remove_dir_all(dir)
                .map_err(|e| KbuildError::io(format!("cannot remove {}", dir.display()), e))?;
        }
        // A stale registration (the directory was deleted) would make `worktree add` refuse.
        git(repo, &["worktree", "prune"])?;
        let d = dir.to_string_lossy();
        git(
            repo,
            &["worktree", "add", "--detach", "--force", &d, commit],
        )?;
        return Ok(());
    }
    git(dir, &["checkout", "--quiet", "--detach", "--force", commit])?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A repository in `dir` with one file and `n` commits changing it; their ids, oldest first.
    pub(crate) fn repo_with_commits(dir: &Path, n: usize) -> Vec<String> {
        let run = |args: &[&str]| git(dir, args).unwrap_or_else(|e| panic!("{e}"));
        run(&["init", "-q", "-b", "main"]);
        run(&["config", "user.name", "t"]);
        run(&["config", "user.email", "t@example.invalid"]);
        let mut ids = Vec::new();
        for i in 0..n {
            std::fs::write(dir.join("f.c"), format!("int x = {i};\n")).expect("write");
            std::fs::write(dir.join(format!("other{}.txt", i % 2)), format!("{i}\n"))
                .expect("write");
            run(&["add", "-A"]);
            run(&["commit", "-q", "-m", &format!("commit {i}")]);
            ids.push(run(&["rev-parse", "HEAD"]));
        }
        ids
    }

    #[test]
    fn ranges_are_oldest_first_and_filter_by_path() {
        let d = tempfile::tempdir().expect("tempdir");
        let ids = repo_with_commits(d.path(), 5);
        let r = range(d.path(), &ids[0], &ids[4], &[]).expect("range");
        let got: Vec<&str> = r.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(
            got,
            [&ids[1], &ids[2], &ids[3], &ids[4]].map(String::as_str)
        );
        assert_eq!(r[0].1, "commit 1");
        let only = range(d.path(), &ids[0], &ids[4], &["other0.txt".into()]).expect("range");
        assert_eq!(
            only.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>(),
            [ids[2].clone(), ids[4].clone()]
        );
        let e = range(d.path(), &ids[4], &ids[0], &[]).expect_err("reversed");
        assert!(e.to_string().contains("must be the older one"), "{e}");
        assert!(commit(d.path(), "nope").is_err());
        assert_eq!(subject(d.path(), &ids[2]).expect("subject"), "commit 2");
    }

    #[test]
    fn a_worktree_checks_out_any_commit_and_leaves_the_checkout_alone() {
        let d = tempfile::tempdir().expect("tempdir");
        let repo = d.path().join("repo");
        std::fs::create_dir(&repo).expect("mkdir");
        let ids = repo_with_commits(&repo, 3);
        let wt = d.path().join("wt");
        checkout_in_worktree(&repo, &wt, &ids[0]).expect("add");
        assert_eq!(
            std::fs::read_to_string(wt.join("f.c")).expect("read"),
            "int x = 0;\n"
        );
        std::fs::write(wt.join("f.c"), "scribbled").expect("write");
        checkout_in_worktree(&repo, &wt, &ids[1]).expect("checkout");
        assert_eq!(
            std::fs::read_to_string(wt.join("f.c")).expect("read"),
            "int x = 1;\n"
        );
        assert_eq!(head(&repo).expect("head"), (ids[2].clone(), false));
        std::fs::write(repo.join("f.c"), "dirty").expect("write");
        assert!(head(&repo).expect("head").1);
        assert_eq!(
            common_dir(&wt).expect("common"),
            common_dir(&repo).expect("common")
        );
    }
}
