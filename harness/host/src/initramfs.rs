//! Initramfs assembly: an uncompressed "newc" cpio archive, written in Rust.
//!
//! The archive is left **uncompressed** on purpose: the guest runs under TCG, where the
//! kernel's decompressors are slow, and the host has the page cache to spare.
//!
//! # Why a hand-written writer
//! The newc format (`070701` magic, thirteen 8-digit hex fields, name, 4-byte padding, data,
//! 4-byte padding, `TRAILER!!!`) is fixed since the 1990s and takes about sixty lines to
//! write. Writing it here keeps full control over what the kernel's unpacker
//! (`init/initramfs.c`) sees and keeps the image reproducible: every entry gets a unique inode
//! number and `nlink` 1 (the kernel treats entries with `nlink >= 2` and a repeated inode
//! number as hard links), owner root, and mtime 0, so the same inputs give the same bytes.
//! A crate would add a dependency for less control than that.
//!
//! # Usage
//! ```no_run
//! use shmemfuzz::initramfs::InitramfsBuilder;
//! # fn main() -> Result<(), shmemfuzz::initramfs::InitramfsError> {
//! let mut b = InitramfsBuilder::new();
//! b.file_from_path("/init", "target/agent", 0o755)?
//!     .char_device("/dev/console", 5, 1, 0o600)?
//!     .file("/etc/shmemfuzz.conf", b"x=1\n".to_vec(), 0o644)?
//!     .symlink("/sbin/init", "/init")?;
//! b.write_to("initramfs.cpio")?;
//! # Ok(()) }
//! ```
//! Parent directories are created implicitly (mode 0755) and always precede their children
//! in the archive, as the kernel's unpacker requires.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Errors from building or writing an initramfs.
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    /// The archive path is empty, contains `..`, or a NUL byte.
    #[error("invalid path in initramfs: {path:?} ({reason})")]
    InvalidPath {
        /// The path as given.
        path: PathBuf,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Two entries claim the same path (directories may be re-declared to change their mode).
    #[error("initramfs path {path:?} added twice (as {existing} and as {new})")]
    Duplicate {
        /// The archive path.
        path: PathBuf,
        /// Kind of the entry already present.
        existing: &'static str,
        /// Kind of the entry being added.
        new: &'static str,
    },
    /// A parent of the path is already in the archive as something other than a directory.
    #[error("initramfs path {path:?}: parent {parent:?} is a {kind}, not a directory")]
    ParentNotDir {
        /// The path being added.
        path: PathBuf,
        /// The conflicting parent.
        parent: PathBuf,
        /// Kind of the conflicting parent entry.
        kind: &'static str,
    },
    /// newc stores sizes in 32 bits.
    #[error("initramfs entry {path:?} is {size} bytes; newc cpio allows at most 4 GiB - 1")]
    TooLarge {
        /// The archive path.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
    },
    /// Reading a source file or writing the archive failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A source file changed size while it was being copied into the archive.
    #[error("source file {source_path:?} changed size while being archived ({expected} -> {actual} bytes)")]
    SourceChanged {
        /// The host file.
        source_path: PathBuf,
        /// Size when the header was written.
        expected: u64,
        /// Bytes actually read.
        actual: u64,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> InitramfsError {
    let context = context.into();
    move |source| InitramfsError::Io { context, source }
}

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFBLK: u32 = 0o060_000;
const PERM_MASK: u32 = 0o7777;
const TRAILER: &str = "TRAILER!!!";

#[derive(Debug, Clone)]
enum Body {
    Dir,
    Bytes(Vec<u8>),
    HostFile(PathBuf),
    Symlink(PathBuf),
    Device { block: bool, major: u32, minor: u32 },
}

impl Body {
    fn kind(&self) -> &'static str {
        match self {
            Body::Dir => "directory",
            Body::Bytes(_) | Body::HostFile(_) => "file",
            Body::Symlink(_) => "symlink",
            Body::Device { block: true, .. } => "block device",
            Body::Device { block: false, .. } => "character device",
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    path: PathBuf,
    perm: u32,
    body: Body,
}

/// Builds a newc cpio archive for use as an initramfs.
///
/// Paths are archive paths; a leading `/` or `./` is ignored. Entries are written in the
/// order they were added, each implicit parent directory just before its first child.
#[derive(Debug, Clone, Default)]
pub struct InitramfsBuilder {
    entries: Vec<Entry>,
    index: HashMap<PathBuf, usize>,
}

impl InitramfsBuilder {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a directory. Re-declaring an existing directory (also an implicit one) only
    /// changes its mode.
    pub fn dir(&mut self, path: impl AsRef<Path>, mode: u32) -> Result<&mut Self, InitramfsError> {
        let path = normalize(path.as_ref())?;
        self.make_parents(&path)?;
        if let Some(&i) = self.index.get(&path) {
            let e = &mut self.entries[i];
            if !matches!(e.body, Body::Dir) {
                return Err(InitramfsError::Duplicate {
                    path,
                    existing: e.body.kind(),
                    new: "directory",
                });
            }
            e.perm = mode & PERM_MASK;
            return Ok(self);
        }
        self.push(path, mode, Body::Dir);
        Ok(self)
    }

    /// Adds a regular file with the given contents.
    pub fn file(
        &mut self,
        path: impl AsRef<Path>,
        contents: impl Into<Vec<u8>>,
        mode: u32,
    ) -> Result<&mut Self, InitramfsError> {
        let contents = contents.into();
        let path = normalize(path.as_ref())?;
        if contents.len() as u64 > u64::from(u32::MAX) {
            return Err(InitramfsError::TooLarge {
                path,
                size: contents.len() as u64,
            });
        }
        self.add_leaf(path, mode, Body::Bytes(contents))
    }

    /// Adds a regular file whose contents are read from `source` on the host when the archive
    /// is written (large files such as kernel modules are streamed, not held in memory).
    /// `source` must exist now.
    pub fn file_from_path(
        &mut self,
        path: impl AsRef<Path>,
        source: impl AsRef<Path>,
        mode: u32,
    ) -> Result<&mut Self, InitramfsError> {
        let source = source.as_ref().to_path_buf();
        let path = normalize(path.as_ref())?;
        let meta = std::fs::metadata(&source).map_err(io_err(format!(
            "initramfs source file {}",
            source.display()
        )))?;
        if !meta.is_file() {
            return Err(InitramfsError::Io {
                context: format!("initramfs source {}", source.display()),
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            });
        }
        if meta.len() > u64::from(u32::MAX) {
            return Err(InitramfsError::TooLarge {
                path,
                size: meta.len(),
            });
        }
        self.add_leaf(path, mode, Body::HostFile(source))
    }

    /// Adds a symbolic link `path` -> `target` (the target is stored verbatim).
    pub fn symlink(
        &mut self,
        path: impl AsRef<Path>,
        target: impl AsRef<Path>,
    ) -> Result<&mut Self, InitramfsError> {
        let path = normalize(path.as_ref())?;
        let target = target.as_ref().to_path_buf();
        if target.as_os_str().is_empty() || target.as_os_str().as_bytes().contains(&0) {
            return Err(InitramfsError::InvalidPath {
                path: target,
                reason: "symlink target is empty or contains NUL",
            });
        }
        self.add_leaf(path, 0o777, Body::Symlink(target))
    }

    /// Adds a character device node (e.g. `/dev/console`, 5:1, so that the kernel can give
    /// `/init` its standard streams before devtmpfs is mounted).
    pub fn char_device(
        &mut self,
        path: impl AsRef<Path>,
        major: u32,
        minor: u32,
        mode: u32,
    ) -> Result<&mut Self, InitramfsError> {
        let path = normalize(path.as_ref())?;
        self.add_leaf(
            path,
            mode,
            Body::Device {
                block: false,
                major,
                minor,
            },
        )
    }

    /// Whether the archive has an entry at `path` (implicit directories included).
    pub fn contains(&self, path: impl AsRef<Path>) -> bool {
        normalize(path.as_ref()).is_ok_and(|p| self.index.contains_key(&p))
    }

    /// Number of entries (the trailer not counted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes the archive to `w`; returns the number of bytes written.
    pub fn write_archive<W: Write>(&self, w: W) -> Result<u64, InitramfsError> {
        let mut w = CountingWriter { inner: w, count: 0 };
        let ctx = "writing initramfs archive";
        for (i, e) in self.entries.iter().enumerate() {
            // Inode 0 is avoided; the trailer uses it.
            let ino = i as u32 + 1;
            let name = e.path.as_os_str().as_bytes();
            match &e.body {
                Body::Dir => {
                    write_header(&mut w, ino, S_IFDIR | e.perm, 2, 0, (0, 0), name)
                        .map_err(io_err(ctx))?;
                }
                Body::Bytes(data) => {
                    write_header(
                        &mut w,
                        ino,
                        S_IFREG | e.perm,
                        1,
                        data.len() as u32,
                        (0, 0),
                        name,
                    )
                    .map_err(io_err(ctx))?;
                    w.write_all(data).map_err(io_err(ctx))?;
                    pad4(&mut w).map_err(io_err(ctx))?;
                }
                Body::HostFile(src) => {
                    let what = format!("reading initramfs source {}", src.display());
                    let f = File::open(src).map_err(io_err(what.clone()))?;
                    let size = f.metadata().map_err(io_err(what.clone()))?.len();
                    let size32 = u32::try_from(size).map_err(|_| InitramfsError::TooLarge {
                        path: e.path.clone(),
                        size,
                    })?;
                    write_header(&mut w, ino, S_IFREG | e.perm, 1, size32, (0, 0), name)
                        .map_err(io_err(ctx))?;
                    // Copy exactly `size` bytes; a file that shrank or grew is an error
                    // (a short copy would shift every later entry).
                    let copied = io::copy(&mut f.take(size), &mut w).map_err(io_err(what))?;
                    if copied != size {
                        return Err(InitramfsError::SourceChanged {
                            source_path: src.clone(),
                            expected: size,
                            actual: copied,
                        });
                    }
                    pad4(&mut w).map_err(io_err(ctx))?;
                }
                Body::Symlink(target) => {
                    let t = target.as_os_str().as_bytes();
                    write_header(
                        &mut w,
                        ino,
                        S_IFLNK | 0o777,
                        1,
                        t.len() as u32,
                        (0, 0),
                        name,
                    )
                    .map_err(io_err(ctx))?;
                    w.write_all(t).map_err(io_err(ctx))?;
                    pad4(&mut w).map_err(io_err(ctx))?;
                }
                Body::Device {
                    block,
                    major,
                    minor,
                } => {
                    let ty = if *block { S_IFBLK } else { S_IFCHR };
                    write_header(&mut w, ino, ty | e.perm, 1, 0, (*major, *minor), name)
                        .map_err(io_err(ctx))?;
                }
            }
        }
        write_header(&mut w, 0, 0, 1, 0, (0, 0), TRAILER.as_bytes()).map_err(io_err(ctx))?;
        w.flush().map_err(io_err(ctx))?;
        Ok(w.count)
    }

    /// Writes the archive to a file at `dest` (via a temporary file in the same directory
    /// and a rename, so a reader never sees a half-written image). Returns its size.
    pub fn write_to(&self, dest: impl AsRef<Path>) -> Result<u64, InitramfsError> {
        let dest = dest.as_ref();
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let ctx = format!("writing initramfs {}", dest.display());
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err(ctx.clone()))?;
        let mut bw = BufWriter::with_capacity(1 << 20, tmp.as_file());
        let n = self.write_archive(&mut bw)?;
        bw.flush().map_err(io_err(ctx.clone()))?;
        drop(bw);
        tmp.persist(dest)
            .map_err(|e| io_err(ctx.clone())(e.error))?;
        Ok(n)
    }

    fn push(&mut self, path: PathBuf, mode: u32, body: Body) {
        self.index.insert(path.clone(), self.entries.len());
        self.entries.push(Entry {
            path,
            perm: mode & PERM_MASK,
            body,
        });
    }

    fn add_leaf(
        &mut self,
        path: PathBuf,
        mode: u32,
        body: Body,
    ) -> Result<&mut Self, InitramfsError> {
        self.make_parents(&path)?;
        if let Some(&i) = self.index.get(&path) {
            return Err(InitramfsError::Duplicate {
                path,
                existing: self.entries[i].body.kind(),
                new: body.kind(),
            });
        }
        self.push(path, mode, body);
        Ok(self)
    }

    /// Creates every missing ancestor of `path` (mode 0755), outermost first.
    fn make_parents(&mut self, path: &Path) -> Result<(), InitramfsError> {
        let mut ancestors: Vec<&Path> = path
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .collect();
        ancestors.reverse();
        for a in ancestors {
            match self.index.get(a) {
                Some(&i) => {
                    let e = &self.entries[i];
                    if !matches!(e.body, Body::Dir) {
                        return Err(InitramfsError::ParentNotDir {
                            path: path.to_path_buf(),
                            parent: a.to_path_buf(),
                            kind: e.body.kind(),
                        });
                    }
                }
                None => self.push(a.to_path_buf(), 0o755, Body::Dir),
            }
        }
        Ok(())
    }
}

/// Turns `/a//b/./c` into `a/b/c`; rejects `..`, NUL and the empty path.
fn normalize(path: &Path) -> Result<PathBuf, InitramfsError> {
    let invalid = |reason| InitramfsError::InvalidPath {
        path: path.to_path_buf(),
        reason,
    };
    if path.as_os_str().as_bytes().contains(&0) {
        return Err(invalid("contains a NUL byte"));
    }
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(s) => out.push(s),
            Component::ParentDir => return Err(invalid("contains `..`")),
            Component::Prefix(_) => return Err(invalid("has a prefix")),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(invalid("names the archive root"));
    }
    Ok(out)
}

/// One newc header plus the NUL-terminated name and padding to a 4-byte boundary.
fn write_header<W: Write>(
    w: &mut CountingWriter<W>,
    ino: u32,
    mode: u32,
    nlink: u32,
    filesize: u32,
    (rdevmajor, rdevminor): (u32, u32),
    name: &[u8],
) -> io::Result<()> {
    let namesize = u32::try_from(name.len() + 1)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name too long"))?;
    let fields: [u32; 13] = [
        ino, mode, 0, // uid
        0, // gid
        nlink, 0, // mtime
        filesize, 0, // devmajor
        0, // devminor
        rdevmajor, rdevminor, namesize, 0, // check
    ];
    let mut hdr = String::with_capacity(110);
    hdr.push_str("070701");
    for f in fields {
        hdr.push_str(&format!("{f:08X}"));
    }
    w.write_all(hdr.as_bytes())?;
    w.write_all(name)?;
    w.write_all(&[0])?;
    pad4(w)
}

fn pad4<W: Write>(w: &mut CountingWriter<W>) -> io::Result<()> {
    let pad = (4 - (w.count % 4) as usize) % 4;
    w.write_all(&[0u8; 3][..pad])
}

struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// How long a cpio of a few files may take.
    const LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

    /// A parsed newc entry.
    #[derive(Debug, PartialEq, Eq)]
    struct Parsed {
        name: String,
        ino: u32,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        data: Vec<u8>,
    }

    /// Minimal independent newc reader: checks magic, alignment and the trailer.
    fn parse(buf: &[u8]) -> Vec<Parsed> {
        let mut out = Vec::new();
        let mut off = 0usize;
        let align = |x: usize| (x + 3) & !3;
        loop {
            assert_eq!(off % 4, 0, "header misaligned at {off}");
            let hdr = &buf[off..off + 110];
            assert_eq!(&hdr[..6], b"070701", "bad magic at {off}");
            let field = |i: usize| {
                let s = std::str::from_utf8(&hdr[6 + 8 * i..14 + 8 * i]).expect("ascii");
                u32::from_str_radix(s, 16).expect("hex")
            };
            let namesize = field(11) as usize;
            let filesize = field(6) as usize;
            let name_end = off + 110 + namesize;
            assert_eq!(buf[name_end - 1], 0, "name not NUL-terminated");
            let name = String::from_utf8(buf[off + 110..name_end - 1].to_vec()).expect("utf8");
            let data_start = align(name_end);
            assert!(
                buf[name_end..data_start].iter().all(|&b| b == 0),
                "padding not zero"
            );
            let data = buf[data_start..data_start + filesize].to_vec();
            off = align(data_start + filesize);
            if name == TRAILER {
                assert_eq!(off, buf.len(), "bytes after trailer");
                return out;
            }
            out.push(Parsed {
                name,
                ino: field(0),
                mode: field(1),
                nlink: field(4),
                rdev: (field(9), field(10)),
                data,
            });
        }
    }

    fn sample(dir: &Path) -> InitramfsBuilder {
        let src = dir.join("src.bin");
        std::fs::write(&src, b"0123456789abc").expect("write src");
        let mut b = InitramfsBuilder::new();
        b.file("/init", b"#!hello".to_vec(), 0o755)
            .expect("init")
            .file_from_path("lib/modules/6.1.0/kernel/x.ko", &src, 0o644)
            .expect("ko")
            .char_device("/dev/console", 5, 1, 0o600)
            .expect("console")
            .symlink("sbin/init", "/init")
            .expect("symlink")
            .dir("/lib", 0o700)
            .expect("redeclare dir")
            .dir("empty/dir", 0o755)
            .expect("dir");
        b
    }

    #[test]
    fn round_trip() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let b = sample(tmp.path());
        let mut buf = Vec::new();
        let n = b.write_archive(&mut buf).expect("write");
        assert_eq!(n as usize, buf.len());
        assert_eq!(buf.len() % 4, 0);
        let entries = parse(&buf);
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "init",
                "lib",
                "lib/modules",
                "lib/modules/6.1.0",
                "lib/modules/6.1.0/kernel",
                "lib/modules/6.1.0/kernel/x.ko",
                "dev",
                "dev/console",
                "sbin",
                "sbin/init",
                "empty",
                "empty/dir",
            ]
        );
        let get = |n: &str| entries.iter().find(|e| e.name == n).expect(n);
        assert_eq!(get("init").mode, 0o100755);
        assert_eq!(get("init").data, b"#!hello");
        assert_eq!(get("lib").mode, 0o040700);
        assert_eq!(get("lib/modules").mode, 0o040755);
        assert_eq!(get("lib/modules/6.1.0/kernel/x.ko").data, b"0123456789abc");
        assert_eq!(get("dev/console").mode, 0o020600);
        assert_eq!(get("dev/console").rdev, (5, 1));
        assert_eq!(get("sbin/init").mode, 0o120777);
        assert_eq!(get("sbin/init").data, b"/init");
        // Unique inodes, nlink 1 for non-directories: no accidental hard links.
        let mut inos: Vec<u32> = entries.iter().map(|e| e.ino).collect();
        inos.sort_unstable();
        inos.dedup();
        assert_eq!(inos.len(), entries.len());
        for e in &entries {
            let want = if e.mode & 0o170_000 == S_IFDIR { 2 } else { 1 };
            assert_eq!(e.nlink, want, "{}", e.name);
        }
        // Deterministic.
        let mut again = Vec::new();
        b.write_archive(&mut again).expect("write again");
        assert_eq!(buf, again);
    }

    #[test]
    fn empty_archive_is_just_the_trailer() {
        let mut buf = Vec::new();
        InitramfsBuilder::new()
            .write_archive(&mut buf)
            .expect("write");
        assert!(parse(&buf).is_empty());
    }

    #[test]
    fn rejects_bad_paths_and_conflicts() {
        let mut b = InitramfsBuilder::new();
        assert!(matches!(
            b.file("../x", Vec::new(), 0o644),
            Err(InitramfsError::InvalidPath { .. })
        ));
        assert!(matches!(
            b.dir("/", 0o755),
            Err(InitramfsError::InvalidPath { .. })
        ));
        b.file("a/b", Vec::new(), 0o644).expect("a/b");
        assert!(matches!(
            b.file("/a/b", Vec::new(), 0o644),
            Err(InitramfsError::Duplicate { .. })
        ));
        assert!(matches!(
            b.file("a/b/c", Vec::new(), 0o644),
            Err(InitramfsError::ParentNotDir { .. })
        ));
        assert!(matches!(
            b.dir("a/b", 0o755),
            Err(InitramfsError::Duplicate { .. })
        ));
        assert!(matches!(
            b.file_from_path("x", "/nonexistent/shmemfuzz-file", 0o644),
            Err(InitramfsError::Io { .. })
        ));
        assert!(b.contains("/a") && b.contains("a/b") && !b.contains("a/c"));
    }

    #[test]
    fn write_to_file_and_cpio_lists_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let b = sample(tmp.path());
        let out = tmp.path().join("out/initramfs.cpio");
        std::fs::create_dir_all(out.parent().expect("parent")).expect("mkdir");
        let n = b.write_to(&out).expect("write_to");
        let bytes = std::fs::read(&out).expect("read back");
        assert_eq!(bytes.len() as u64, n);
        assert_eq!(parse(&bytes).len(), b.len());

        // `cpio` is installed by ci/setup.sh: a missing one fails the test, never skips it.
        let mut cmd = Command::new("cpio");
        cmd.args(["-t", "--quiet", "-F"]).arg(&out);
        let listed = crate::process::output(cmd, LIMIT)
            .unwrap_or_else(|e| panic!("running cpio (apt-get install -y cpio): {e}"));
        assert!(
            listed.status.success(),
            "cpio -t failed: {}",
            String::from_utf8_lossy(&listed.stderr)
        );
        let names: Vec<String> = String::from_utf8_lossy(&listed.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        let ours: Vec<String> = parse(&bytes).into_iter().map(|e| e.name).collect();
        assert_eq!(names, ours);

        // Extract it too, and compare contents.
        let x = tmp.path().join("x");
        std::fs::create_dir(&x).expect("mkdir x");
        let mut cmd = Command::new("cpio");
        cmd.args(["-i", "--quiet", "--no-absolute-filenames", "-d", "-F"])
            .arg(&out)
            // Not dev/console: mknod needs root.
            .args(["lib/modules/6.1.0/kernel/x.ko", "sbin/init"])
            .current_dir(&x);
        let st = crate::process::output(cmd, LIMIT).expect("cpio -i");
        assert!(st.status.success());
        assert_eq!(
            std::fs::read(x.join("lib/modules/6.1.0/kernel/x.ko")).expect("ko"),
            b"0123456789abc"
        );
        assert_eq!(
            std::fs::read_link(x.join("sbin/init")).expect("link"),
            Path::new("/init")
        );
    }
}
