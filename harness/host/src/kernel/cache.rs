//! [`KernelCache`]: downloads a catalog entry's Debian packages with `apt-get download`,
//! verifies their sha256, unpacks them with `dpkg-deb -x` and publishes the tree atomically.
//!
//! Layout under the cache root:
//! ```text
//! <root>/<id>-<image version>/            image: boot/vmlinuz-<release>, boot/config-<release>,
//!                                         lib/modules/<release>/ (+ modules.dep from depmod)
//! <root>/<id>-<headers version>-headers/  usr/src/linux-headers-<release>/ (Makefile points at
//!                                         the unpacked -common tree), usr/lib/linux-kbuild-*
//! <root>/*/.shmemfuzz-complete            marker, written last: no marker = not fetched;
//!                                         holds the release and the packages unpacked
//! <root>/.partial-*/                      work in progress (downloads and unpacking); renamed
//!                                         into place when complete, removed after a day if
//!                                         a killed run left it behind
//! ```
//! `<id>` is the catalog id; the versions are Debian package versions (the headers' equals the
//! image's), so a fallback after a pin left the archive lands in its own directory.

use std::path::{Path, PathBuf};

use super::store::{self, Marker};
use super::{apt, fallback, CatalogEntry, KernelError, Package};

/// Progress of a fetch, for a spinner; the module itself never prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchEvent {
    /// Downloading `package` (`name=version`).
    Downloading { package: String },
    /// Checking the sha256 of the package just downloaded.
    Verifying,
    /// Unpacking the packages (and running depmod).
    Unpacking,
    /// Fetched and published.
    Done,
    /// Already in the cache; nothing was downloaded.
    AlreadyCached,
}

/// A kernel unpacked in the cache, ready to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedKernel {
    /// Catalog id.
    pub id: String,
    /// `uname -r` (the catalog's, or the fallback's if the pin left the archive).
    pub release: String,
    /// `.../boot/vmlinuz-<release>`.
    pub bzimage: PathBuf,
    /// `.../lib/modules/<release>` (with modules.dep).
    pub modules_dir: PathBuf,
    /// `.../boot/config-<release>`.
    pub config: PathBuf,
}

/// The directory where fetched kernels live.
#[derive(Debug, Clone)]
pub struct KernelCache {
    root: PathBuf,
}

/// The packages one fetch unpacks together.
struct Plan {
    release: String,
    /// Version in the directory name: the image's, or linux-headers-<release>'s.
    key_version: String,
    packages: Vec<Package>,
}

impl KernelCache {
    /// A cache rooted at `root` (created on first fetch).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        KernelCache { root: root.into() }
    }

    /// `kernels/` under the [`crate::cachedir::cache_root`] of `workspace`.
    pub fn default_root(workspace: &Path) -> PathBuf {
        crate::cachedir::cache_root(workspace).join("kernels")
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the entry's pinned image is completely unpacked (so [`Self::fetch`] needs no
    /// network). A fallback version fetched in place of a vanished pin does not count.
    pub fn is_fetched(&self, entry: &CatalogEntry) -> bool {
        let dir = self
            .root
            .join(store::dir_name(&entry.id, &entry.image.version, false));
        store::read_marker(&dir).is_some()
    }

    /// Fetches (or finds in the cache) the kernel image package of `entry`.
    pub fn fetch(
        &self,
        entry: &CatalogEntry,
        progress: &dyn Fn(FetchEvent),
    ) -> Result<FetchedKernel, KernelError> {
        let (dir, marker) = self.obtain(entry, false, progress)?;
        let release = marker.release;
        Ok(FetchedKernel {
            id: entry.id.clone(),
            bzimage: dir.join("boot").join(format!("vmlinuz-{release}")),
            config: dir.join("boot").join(format!("config-{release}")),
            modules_dir: dir.join("lib/modules").join(&release),
            release,
        })
    }

    /// Fetches (or finds) the headers packages of `entry` and returns the unpacked
    /// `.../usr/src/linux-headers-<release>` directory, ready for
    /// `make -C <dir> M=<module dir> modules`.
    pub fn fetch_headers(
        &self,
        entry: &CatalogEntry,
        progress: &dyn Fn(FetchEvent),
    ) -> Result<PathBuf, KernelError> {
        if entry.headers.is_empty() {
            return Err(KernelError::CatalogInvalid {
                origin: "the kernel catalog".into(),
                reason: format!("`{}` lists no headers packages", entry.id),
            });
        }
        let (dir, marker) = self.obtain(entry, true, progress)?;
        // Re-pointing is a no-op unless the cache directory was moved since the fetch.
        store::fix_headers_makefile(&dir, &dir, &marker.release)
    }

    /// The complete directory for `entry` (image or headers), fetching it if needed.
    fn obtain(
        &self,
        entry: &CatalogEntry,
        headers: bool,
        progress: &dyn Fn(FetchEvent),
    ) -> Result<(PathBuf, Marker), KernelError> {
        std::fs::create_dir_all(&self.root).map_err(|e| {
            KernelError::io(
                format!("cannot create kernel cache {}", self.root.display()),
                e,
            )
        })?;
        let root = self
            .root
            .canonicalize()
            .map_err(|e| KernelError::io(format!("cannot resolve {}", self.root.display()), e))?;
        crate::cachedir::remove_stale_partials(&root);

        let pins = if headers {
            &entry.headers[..]
        } else {
            std::slice::from_ref(&entry.image)
        };
        let pinned = Plan {
            release: entry.release.clone(),
            key_version: key_version(pins, &entry.image),
            packages: pins.to_vec(),
        };
        let cached = |plan: &Plan| {
            let dest = root.join(store::dir_name(&entry.id, &plan.key_version, headers));
            let marker = store::read_marker(&dest);
            (dest, marker)
        };
        let mut plan = pinned;
        let (mut dest, mut marker) = cached(&plan);
        if marker.is_none() {
            // Ask apt (locally, ~0.5 s) whether every pin is still downloadable; if one is
            // gone, fall back before downloading anything.
            let names: Vec<String> = plan.packages.iter().map(|p| p.name.clone()).collect();
            let available = apt::madison(&names)?;
            let listed = |p: &Package| {
                available
                    .iter()
                    .any(|(n, v)| *n == p.name && *v == p.version)
            };
            if !plan.packages.iter().all(listed) {
                plan = resolve_fallback(entry, headers)?;
                for (pin, p) in pins.iter().zip(&plan.packages).filter(|(pin, p)| pin != p) {
                    tracing::warn!(
                        kernel = %entry.id,
                        "using {} {} instead of the pinned {} {}: a pinned version left the \
                         archive (update kernels/catalog.toml)",
                        p.name, p.version, pin.name, pin.version
                    );
                }
                (dest, marker) = cached(&plan);
            }
        }
        if let Some(marker) = marker {
            progress(FetchEvent::AlreadyCached);
            return Ok((dest, marker));
        }
        for p in plan.packages.iter_mut().filter(|p| p.sha256.is_empty()) {
            p.sha256 = apt::archive_sha256(&p.name, &p.version)?;
        }
        let work = crate::cachedir::work_dir(&root).map_err(|(why, e)| KernelError::io(why, e))?;
        let debs = download_all(&plan, work.path(), progress)?;
        let marker = unpack(&plan, &debs, work.path(), &dest, headers, progress)?;
        progress(FetchEvent::Done);
        Ok((dest, marker))
    }
}

/// Downloads and verifies every package of the plan into `work`.
fn download_all(
    plan: &Plan,
    work: &Path,
    progress: &dyn Fn(FetchEvent),
) -> Result<Vec<PathBuf>, KernelError> {
    let mut debs = Vec::new();
    for (i, p) in plan.packages.iter().enumerate() {
        let dir = work.join(format!("deb{i}"));
        std::fs::create_dir(&dir)
            .map_err(|e| KernelError::io(format!("cannot create {}", dir.display()), e))?;
        progress(FetchEvent::Downloading {
            package: format!("{}={}", p.name, p.version),
        });
        let deb = match apt::download(&p.name, &p.version, &dir)? {
            apt::Download::Ok(deb) => deb,
            apt::Download::NotInArchive => {
                return Err(KernelError::NotInArchive {
                    package: p.name.clone(),
                    version: p.version.clone(),
                })
            }
        };
        progress(FetchEvent::Verifying);
        let actual = crate::files::file_sha256(&deb)
            .map_err(|e| KernelError::io(format!("cannot read {}", deb.display()), e))?;
        if actual != p.sha256 {
            return Err(KernelError::HashMismatch {
                file: deb.file_name().map(PathBuf::from).unwrap_or(deb.clone()),
                expected: p.sha256.clone(),
                actual,
            });
        }
        debs.push(deb);
    }
    Ok(debs)
}

/// Unpacks the debs into `work/tree`, checks and completes the tree, and publishes it at
/// `dest`.
fn unpack(
    plan: &Plan,
    debs: &[PathBuf],
    work: &Path,
    dest: &Path,
    headers: bool,
    progress: &dyn Fn(FetchEvent),
) -> Result<Marker, KernelError> {
    progress(FetchEvent::Unpacking);
    let tree = work.join("tree");
    std::fs::create_dir(&tree)
        .map_err(|e| KernelError::io(format!("cannot create {}", tree.display()), e))?;
    for deb in debs {
        apt::extract(deb, &tree)?;
    }
    let release = &plan.release;
    if headers {
        store::fix_headers_makefile(&tree, dest, release)?;
    } else {
        let what = plan
            .packages
            .first()
            .map_or("the image package", |p| p.name.as_str());
        store::require(tree.join("boot").join(format!("vmlinuz-{release}")), what)?;
        store::require(tree.join("boot").join(format!("config-{release}")), what)?;
        store::require(tree.join("lib/modules").join(release), what)?;
        // dpkg-deb -x skips the postinst that runs depmod: do it here, once.
        apt::depmod(&tree, release)?;
    }
    let marker = Marker {
        release: release.clone(),
        packages: plan.packages.clone(),
    };
    store::publish(&tree, dest, &marker)
}

/// The plan after a pinned version turned out to be gone (see [`fallback`]), with empty
/// hashes for the replacements (looked up in apt's lists only if they are downloaded).
fn resolve_fallback(entry: &CatalogEntry, headers: bool) -> Result<Plan, KernelError> {
    let not_found =
        |(package, version): (String, String)| KernelError::NotInArchive { package, version };
    let mut names: Vec<String> = apt::pkgnames(&fallback::name_prefix(entry))?
        .into_iter()
        .filter(|n| fallback::candidate_release(entry, n).is_some())
        .collect();
    if !names.contains(&entry.image.name) {
        names.push(entry.image.name.clone());
    }
    let available = apt::madison(&names)?;
    let (image, release) = fallback::plan_image(entry, &available)
        .ok_or_else(|| not_found((entry.image.name.clone(), entry.image.version.clone())))?;
    let packages = if headers {
        let available = apt::madison(&fallback::header_names(entry, &release))?;
        fallback::plan_headers(entry, &release, &image.version, &available).map_err(not_found)?
    } else {
        vec![image.clone()]
    };
    Ok(Plan {
        release,
        key_version: key_version(&packages, &image),
        packages,
    })
}

/// The version naming a cache directory: the first package's (linux-image-* or
/// linux-headers-<release>), or the image's if there are no headers.
fn key_version(packages: &[Package], image: &Package) -> String {
    packages.first().unwrap_or(image).version.clone()
}
