//! Building the mock GMA500 driver (`kernels/gma500_mock`) for one kernel, and caching the
//! `.ko`.
//!
//! [`build_mock_module`] copies the module's sources into a fresh directory, runs
//! `make -C <kernel build dir> M=<that dir> modules` with a time limit, and publishes the
//! directory atomically under a key that covers everything the result depends on:
//! ```text
//! <cache_dir>/modules/gma500_mock/<release>-<key>/       src/ (the M= dir: sources, objects,
//!                                                        gma500_mock.ko), build.log
//! <cache_dir>/modules/gma500_mock/<release>-<key>.failed.log   the log of a failed build
//! <cache_dir>/modules/gma500_mock/.partial-*/            work in progress (a killed build's
//!                                                        is removed after a day)
//! ```
//! `<key>` hashes the module's sources (`Kbuild`, `Makefile`, `*.c`, `*.h`; not
//! `selftest/`), the release, and the build dir's identity: its `.config`,
//! `include/config/kernel.release` and `Module.symvers` (the exported symbols' CRCs). A
//! rebuilt kernel tree with a changed config or exports gets a new module; a hit costs one
//! hash of those files and no make.
//!
//! The build needs `make` and the compiler the kernel was built with (its
//! `CONFIG_CC_VERSION_TEXT`, `gcc-12` for Debian's kernels); a missing one is named with its
//! Debian package. Module BTF is switched off (`CONFIG_DEBUG_INFO_BTF_MODULES=`): on 6.12 it
//! would need `pahole` and nothing here reads it.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::make::{make_command, run_logged};
use super::tools::{self, BUILD_TOOLS};
use super::KbuildError;
use crate::process::Tail;

/// The module file the build produces.
pub const MODULE_FILE: &str = "gma500_mock.ko";
/// How long one build may take (measured: 2–5 s; generous for a loaded CI machine).
pub const BUILD_LIMIT: Duration = Duration::from_secs(300);
/// Bump to invalidate every cached build (e.g. when the make command line changes).
const KEY_VERSION: &str = "gma500_mock build v1";

#[derive(Debug, thiserror::Error)]
pub enum ModBuildError {
    #[error("`{tool}` is needed to build the mock module: install the Debian package `{package}`")]
    ToolMissing { tool: String, package: String },
    #[error("{} is not a kernel build or headers directory (it has no Makefile and .config)", dir.display())]
    NotABuildDir { dir: PathBuf },
    #[error("{} holds no mock module source (no Kbuild)", dir.display())]
    NoSource { dir: PathBuf },
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("building the mock module against {} failed ({status}); log {}, ending:\n{tail}", kdir.display(), log.display())]
    BuildFailed {
        kdir: PathBuf,
        status: String,
        log: PathBuf,
        tail: String,
    },
    #[error("building the mock module against {} took longer than {limit:?}; log {}, ending:\n{tail}", kdir.display(), log.display())]
    Timeout {
        kdir: PathBuf,
        limit: Duration,
        log: PathBuf,
        tail: String,
    },
    #[error("make succeeded but wrote no {}", ko.display())]
    NoModule { ko: PathBuf },
    #[error(transparent)]
    Make(KbuildError),
}

impl ModBuildError {
    fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ModBuildError::Io {
            context: context.into(),
            source,
        }
    }

    /// The same error, pointing at the build log's kept copy.
    fn with_log(mut self, kept: PathBuf) -> Self {
        if let ModBuildError::BuildFailed { log, .. } | ModBuildError::Timeout { log, .. } =
            &mut self
        {
            *log = kept;
        }
        self
    }
}

/// The `.ko` of the mock driver in `src` built against `kernel_build_dir` (an unpacked
/// headers dir or a kernel build tree) for `release`, from the cache under `cache_dir` or
/// built now.
pub fn build_mock_module(
    src: &Path,
    kernel_build_dir: &Path,
    cache_dir: &Path,
    release: &str,
) -> Result<PathBuf, ModBuildError> {
    let kdir = kernel_build_dir;
    if !kdir.join("Makefile").is_file() || !kdir.join(".config").is_file() {
        return Err(ModBuildError::NotABuildDir {
            dir: kdir.to_path_buf(),
        });
    }
    let files = source_files(src)?;
    let key = cache_key(src, &files, kdir, release)?;
    let root = cache_dir.join("modules").join("gma500_mock");
    fs::create_dir_all(&root)
        .map_err(|e| ModBuildError::io(format!("cannot create {}", root.display()), e))?;
    // Plain paths in make's command line and in the paths returned.
    let root = root
        .canonicalize()
        .map_err(|e| ModBuildError::io(format!("cannot resolve {}", root.display()), e))?;
    let name = format!("{release}-{}", &key[..16]);
    let dest = root.join(&name);
    let ko = dest.join("src").join(MODULE_FILE);
    if ko.is_file() {
        return Ok(ko);
    }

    require_tools(kdir)?;
    let work = crate::cachedir::work_dir(&root).map_err(|(why, e)| ModBuildError::io(why, e))?;
    let build_src = work.path().join("src");
    for rel in &files {
        let to = build_src.join(rel);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| ModBuildError::io(format!("cannot create {}", parent.display()), e))?;
        }
        fs::copy(src.join(rel), &to).map_err(|e| {
            ModBuildError::io(format!("cannot copy {}", src.join(rel).display()), e)
        })?;
    }

    let log = work.path().join("build.log");
    if let Err(err) = run_make(kdir, &build_src, &log, BUILD_LIMIT) {
        // The work dir goes away: keep its log where the error says it is.
        let kept = root.join(format!("{name}.failed.log"));
        let _ = fs::copy(&log, &kept);
        return Err(err.with_log(kept));
    }
    if !build_src.join(MODULE_FILE).is_file() {
        return Err(ModBuildError::NoModule {
            ko: build_src.join(MODULE_FILE),
        });
    }
    let work = work.keep();
    if let Err(e) = fs::rename(&work, &dest) {
        // Another build of the same key won the race: use its result.
        let _ = fs::remove_dir_all(&work);
        if !ko.is_file() {
            return Err(ModBuildError::io(
                format!("cannot publish the module build at {}", dest.display()),
                e,
            ));
        }
    }
    Ok(ko)
}

/// The module's source files, relative to `src`, sorted: `Kbuild`, `Makefile`, `*.c` and
/// `*.h`, in any directory but `selftest/` and hidden ones.
pub fn source_files(src: &Path) -> Result<Vec<PathBuf>, ModBuildError> {
    if !src.join("Kbuild").is_file() {
        return Err(ModBuildError::NoSource {
            dir: src.to_path_buf(),
        });
    }
    let mut out = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        let dir = src.join(&rel);
        let entries = fs::read_dir(&dir)
            .map_err(|e| ModBuildError::io(format!("cannot read {}", dir.display()), e))?;
        for entry in entries {
            let entry = entry
                .map_err(|e| ModBuildError::io(format!("cannot read {}", dir.display()), e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = rel.join(&name);
            let kind = entry
                .file_type()
                .map_err(|e| ModBuildError::io(format!("cannot stat {}", path.display()), e))?;
            if name.starts_with('.') {
                continue;
            }
            if kind.is_dir() {
                if name != "selftest" {
                    dirs.push(path);
                }
            } else if name == "Kbuild"
                || name == "Makefile"
                || ((name.ends_with(".c") || name.ends_with(".h")) && !name.ends_with(".mod.c"))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Hex sha256 of the sources, the release and the build dir's identity (see the module doc).
pub fn cache_key(
    src: &Path,
    files: &[PathBuf],
    kdir: &Path,
    release: &str,
) -> Result<String, ModBuildError> {
    let mut h = Sha256::new();
    let mut field = |label: &str, bytes: &[u8]| {
        h.update(label.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field("version", KEY_VERSION.as_bytes());
    field("release", release.as_bytes());
    for rel in files {
        let path = src.join(rel);
        let bytes = fs::read(&path)
            .map_err(|e| ModBuildError::io(format!("cannot read {}", path.display()), e))?;
        field("file", rel.to_string_lossy().as_bytes());
        field("contents", &bytes);
    }
    for id in [".config", "include/config/kernel.release", "Module.symvers"] {
        let path = kdir.join(id);
        match fs::read(&path) {
            Ok(bytes) => field(id, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => field(id, b"<missing>"),
            Err(e) => {
                return Err(ModBuildError::io(
                    format!("cannot read {}", path.display()),
                    e,
                ))
            }
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// The compiler kbuild will use, from the kernel's `CONFIG_CC_VERSION_TEXT` (e.g. `gcc-12`,
/// `x86_64-linux-gnu-gcc-12`), and its Debian package; `None` if it is not a gcc.
pub fn kernel_compiler(config: &str) -> Option<(String, String)> {
    let text = config
        .lines()
        .find_map(|l| l.strip_prefix("CONFIG_CC_VERSION_TEXT="))?
        .trim_matches('"');
    let cc = text.split_whitespace().next()?;
    let bare = cc.strip_prefix("x86_64-linux-gnu-").unwrap_or(cc);
    (bare == "gcc" || bare.starts_with("gcc-")).then(|| (cc.to_string(), bare.to_string()))
}

fn require_tools(kdir: &Path) -> Result<(), ModBuildError> {
    let missing = |tool: &str, package: &str| ModBuildError::ToolMissing {
        tool: tool.into(),
        package: package.into(),
    };
    tools::find(BUILD_TOOLS[0]).map_err(|_| missing("make", "make"))?;
    let config = fs::read_to_string(kdir.join(".config")).unwrap_or_default();
    match kernel_compiler(&config) {
        Some((cc, package)) if crate::process::find_program(&cc).is_none() => {
            Err(missing(&cc, &package))
        }
        _ => Ok(()),
    }
}

/// What a failed build's log says is missing on the host, if it names a known tool.
pub fn missing_tool_in_log(log: &str) -> Option<(String, String)> {
    const PATTERNS: &[(&str, &str, &str)] = &[
        ("libelf.so.1", "libelf", "libelf1"),
        ("gelf.h: No such file", "libelf headers", "libelf-dev"),
        ("libelf.h: No such file", "libelf headers", "libelf-dev"),
        ("please install libelf-dev", "libelf headers", "libelf-dev"),
        ("pahole: not found", "pahole", "dwarves"),
    ];
    for line in log.lines() {
        if let Some((_, tool, package)) = PATTERNS.iter().find(|(p, _, _)| line.contains(p)) {
            return Some((tool.to_string(), package.to_string()));
        }
        // `/bin/sh: 1: gcc-12: not found` or `make: gcc-12: No such file or directory`.
        for cc in line.split([' ', ':']).filter(|w| w.contains("gcc")) {
            if line.contains(&format!("{cc}: not found"))
                || line.contains(&format!("{cc}: No such file or directory"))
            {
                let bare = cc.strip_prefix("x86_64-linux-gnu-").unwrap_or(cc);
                return Some((cc.to_string(), bare.to_string()));
            }
        }
    }
    None
}

/// `make -C kdir M=build_src modules` with kbuild's make runner ([`run_logged`]), output in
/// `log`, stopped at `limit`.
fn run_make(
    kdir: &Path,
    build_src: &Path,
    log_path: &Path,
    limit: Duration,
) -> Result<(), ModBuildError> {
    let args = [
        "-C".to_string(),
        kdir.display().to_string(),
        format!("M={}", build_src.display()),
        "CONFIG_DEBUG_INFO_BTF_MODULES=".to_string(),
        "modules".to_string(),
    ];
    let make = || -> Result<(), KbuildError> {
        let mut cmd = make_command()?;
        cmd.args(&args);
        let shown = format!("make {}", args.join(" "));
        run_logged(
            cmd,
            &shown,
            log_path,
            Instant::now() + limit,
            limit,
            &|_| {},
        )
    };
    let text = || fs::read_to_string(log_path).unwrap_or_default();
    let missing_in_log = || {
        missing_tool_in_log(&text())
            .map(|(tool, package)| ModBuildError::ToolMissing { tool, package })
    };
    match make() {
        Ok(()) => Ok(()),
        Err(KbuildError::Timeout { .. }) => Err(ModBuildError::Timeout {
            kdir: kdir.to_path_buf(),
            limit,
            log: log_path.to_path_buf(),
            tail: Tail::of(&text(), TAIL_LINES),
        }),
        // A tool the log names missing explains a failure better than make's status.
        Err(KbuildError::MakeFailed { status, tail, .. }) => Err(missing_in_log().unwrap_or_else(
            || ModBuildError::BuildFailed {
                kdir: kdir.to_path_buf(),
                status,
                log: log_path.to_path_buf(),
                tail,
            },
        )),
        Err(KbuildError::HeaderMissing {
            header, package, ..
        }) => Err(
            missing_in_log().unwrap_or_else(|| ModBuildError::ToolMissing {
                tool: header.into(),
                package: package.into(),
            }),
        ),
        Err(KbuildError::ToolMissing { tool, package }) => Err(ModBuildError::ToolMissing {
            tool: tool.into(),
            package: package.into(),
        }),
        Err(e) => Err(ModBuildError::Make(e)),
    }
}

/// How many lines of make's output a timeout shows.
const TAIL_LINES: usize = 30;

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    }

    /// A module source and a fake build dir, in a temp dir.
    fn fixture() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let t = tempfile::tempdir().expect("tempdir");
        let src = t.path().join("gma500_mock");
        write(&src.join("Kbuild"), "obj-m := m.o\n");
        write(&src.join("Makefile"), "all:\n");
        write(&src.join("m.c"), "int x;\n");
        write(&src.join("include/uapi/m.h"), "#define M 1\n");
        write(&src.join("selftest/selftest.c"), "int main(void) {}\n");
        write(&src.join("m.o"), "object");
        write(&src.join(".m.o.cmd"), "cmd");
        let kdir = t.path().join("kdir");
        write(&kdir.join("Makefile"), "include x\n");
        write(
            &kdir.join(".config"),
            "CONFIG_CC_VERSION_TEXT=\"gcc-12 (Debian 12.2.0-14) 12.2.0\"\n",
        );
        write(
            &kdir.join("Module.symvers"),
            "0x1\tfoo\tvmlinux\tEXPORT_SYMBOL\t\n",
        );
        (t, src, kdir)
    }

    fn key(src: &Path, kdir: &Path, release: &str) -> String {
        let files = source_files(src).expect("sources");
        cache_key(src, &files, kdir, release).expect("key")
    }

    #[test]
    fn source_files_are_the_module_sources_only() {
        let (_t, src, _) = fixture();
        let files = source_files(&src).expect("sources");
        let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(names, ["Kbuild", "Makefile", "include/uapi/m.h", "m.c"]);
    }

    #[test]
    fn cache_key_covers_sources_release_and_build_dir() {
        let (_t, src, kdir) = fixture();
        let base = key(&src, &kdir, "6.1.0-56-amd64");
        assert_eq!(base, key(&src, &kdir, "6.1.0-56-amd64"), "stable");
        assert_eq!(base.len(), 64);

        // Build products and the selftest do not count.
        write(&src.join("m.ko"), "module");
        write(&src.join("selftest/run.sh"), "echo\n");
        assert_eq!(base, key(&src, &kdir, "6.1.0-56-amd64"));

        assert_ne!(base, key(&src, &kdir, "6.1.0-55-amd64"), "release");
        write(&src.join("m.c"), "int y;\n");
        let edited = key(&src, &kdir, "6.1.0-56-amd64");
        assert_ne!(base, edited, "a source edit");
        write(&src.join("include/uapi/m.h"), "#define M 2\n");
        let header = key(&src, &kdir, "6.1.0-56-amd64");
        assert_ne!(edited, header, "a header edit");
        write(
            &kdir.join("Module.symvers"),
            "0x2\tfoo\tvmlinux\tEXPORT_SYMBOL\t\n",
        );
        let symvers = key(&src, &kdir, "6.1.0-56-amd64");
        assert_ne!(header, symvers, "the kernel's exports");
        write(&kdir.join(".config"), "CONFIG_DEBUG_VM=y\n");
        assert_ne!(
            symvers,
            key(&src, &kdir, "6.1.0-56-amd64"),
            "the kernel's config"
        );
    }

    #[test]
    fn bad_directories_are_named() {
        let (t, src, kdir) = fixture();
        let cache = t.path().join("cache");
        let err = build_mock_module(&src, &src, &cache, "r").expect_err("not a build dir");
        assert!(matches!(err, ModBuildError::NotABuildDir { .. }), "{err}");
        let err = build_mock_module(&kdir, &kdir, &cache, "r").expect_err("no source");
        assert!(matches!(err, ModBuildError::NoSource { .. }), "{err}");
    }

    #[test]
    fn compiler_and_missing_tools_name_debian_packages() {
        let debian61 = "CONFIG_CC_VERSION_TEXT=\"gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0\"";
        assert_eq!(
            kernel_compiler(debian61),
            Some(("gcc-12".into(), "gcc-12".into()))
        );
        let debian612 =
            "X=1\nCONFIG_CC_VERSION_TEXT=\"x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14) 12.2.0\"";
        assert_eq!(
            kernel_compiler(debian612),
            Some(("x86_64-linux-gnu-gcc-12".into(), "gcc-12".into()))
        );
        assert_eq!(
            kernel_compiler("CONFIG_CC_VERSION_TEXT=\"Debian clang 16\""),
            None
        );

        let log = "  CC [M]  /w/src/m.o\n/bin/sh: 1: gcc-12: not found\nmake[2]: *** Error 127";
        assert_eq!(
            missing_tool_in_log(log),
            Some(("gcc-12".into(), "gcc-12".into()))
        );
        let log = "objtool: error while loading shared libraries: libelf.so.1: cannot open";
        assert_eq!(
            missing_tool_in_log(log),
            Some(("libelf".into(), "libelf1".into()))
        );
        assert_eq!(missing_tool_in_log("m.c:1:5: error: expected ';'"), None);

        let err = ModBuildError::ToolMissing {
            tool: "gcc-12".into(),
            package: "gcc-12".into(),
        };
        assert!(err.to_string().contains("Debian package `gcc-12`"), "{err}");
    }

    /// Builds the real module against Debian's 6.1 and 6.12 headers (downloads them on first
    /// use), then checks that a second call is a cache hit.
    #[test]
    #[ignore = "downloads kernel headers and runs make (about 10 s once cached)"]
    fn builds_against_debian_headers() {
        let ctx = crate::context::Context::new().expect("context");
        let cache = tempfile::tempdir().expect("tempdir");
        let src = ctx.root.join("kernels/gma500_mock");
        for id in ["debian-6.1", "debian-6.12"] {
            let entry = ctx.catalog.get(id).expect("catalog entry");
            let headers = ctx.cache.fetch_headers(entry, &|_| {}).expect("headers");
            // The release of the headers fetched (a fallback's if the pin left the archive).
            let release = headers
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("linux-headers-"))
                .expect("a linux-headers-<release> dir")
                .to_string();
            let ko = build_mock_module(&src, &headers, cache.path(), &release)
                .unwrap_or_else(|e| panic!("{id}: {e}"));
            let bytes = fs::read(&ko).expect("read .ko");
            let vermagic = format!("vermagic={release} ");
            assert!(
                bytes
                    .windows(vermagic.len())
                    .any(|w| w == vermagic.as_bytes()),
                "{id}: {} lacks {vermagic}",
                ko.display()
            );
            let started = Instant::now();
            let again =
                build_mock_module(&src, &headers, cache.path(), &release).expect("cache hit");
            assert_eq!(again, ko);
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "a hit runs no make"
            );
        }
    }

    /// A compile error comes back with the compiler's message and the log kept.
    #[test]
    #[ignore = "downloads kernel headers and runs make"]
    fn compile_errors_show_the_compiler_output() {
        let ctx = crate::context::Context::new().expect("context");
        let entry = ctx.catalog.get("debian-6.1").expect("catalog entry");
        let headers = ctx.cache.fetch_headers(entry, &|_| {}).expect("headers");
        let t = tempfile::tempdir().expect("tempdir");
        let src = t.path().join("gma500_mock");
        let real = ctx.root.join("kernels/gma500_mock");
        for rel in source_files(&real).expect("sources") {
            write(
                &src.join(&rel),
                &fs::read_to_string(real.join(&rel)).expect("read"),
            );
        }
        let c = src.join("gma500_mock_drv.c");
        let text = fs::read_to_string(&c).expect("read") + "\nint broken(void) { return }\n";
        write(&c, &text);
        let err = build_mock_module(&src, &headers, &t.path().join("cache"), &entry.release)
            .expect_err("a syntax error");
        let ModBuildError::BuildFailed { tail, log, .. } = &err else {
            panic!("{err}");
        };
        assert!(tail.contains("error:"), "{tail}");
        assert!(log.is_file(), "{}", log.display());
    }
}
