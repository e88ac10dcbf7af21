//! Tests of [`KernelCache`]: the cache-hit path offline, and (ignored by default) real
//! downloads of the default kernel and its headers from the Debian archive.

use std::cell::RefCell;
use std::path::Path;

use super::store::{self, Marker};
use super::{apt, module_load_order, Catalog, FetchEvent, KernelCache};

#[test]
fn default_root_is_a_kernels_dir() {
    // Only reads the variable; whichever way it is set, the shape holds.
    let r = KernelCache::default_root(Path::new("/repo"));
    assert!(r.ends_with("kernels"), "{}", r.display());
}

#[test]
fn cached_tree_is_found_without_tools_and_half_trees_are_not() {
    let entry = Catalog::builtin().expect("catalog").default_entry().clone();
    let root = tempfile::tempdir().expect("tempdir");
    let cache = KernelCache::new(root.path());
    let dir = root
        .path()
        .join(store::dir_name(&entry.id, &entry.image.version, false));
    std::fs::create_dir_all(dir.join("boot")).expect("mkdir");
    assert!(!cache.is_fetched(&entry), "no marker: not fetched");
    let marker = Marker {
        release: entry.release.clone(),
        packages: vec![entry.image.clone()],
    };
    std::fs::write(
        dir.join(store::MARKER),
        toml::to_string(&marker).expect("toml"),
    )
    .expect("write");
    assert!(cache.is_fetched(&entry));
    let events = RefCell::new(Vec::new());
    let k = cache
        .fetch(&entry, &|e| events.borrow_mut().push(e))
        .expect("cached");
    assert_eq!(events.into_inner(), [FetchEvent::AlreadyCached]);
    let canon = dir.canonicalize().expect("canon");
    assert_eq!(k.bzimage, canon.join("boot/vmlinuz-6.1.0-56-amd64"));
    assert_eq!(k.modules_dir, canon.join("lib/modules/6.1.0-56-amd64"));
}

#[test]
#[ignore = "downloads ~70 MB"]
fn fetches_debian_6_1_and_orders_modules() {
    let catalog = Catalog::builtin().expect("catalog");
    let entry = catalog.get("debian-6.1").expect("entry");
    let root = tempfile::tempdir().expect("tempdir");
    let cache = KernelCache::new(root.path());
    let events = RefCell::new(Vec::new());
    let k = cache
        .fetch(entry, &|e| events.borrow_mut().push(e))
        .expect("fetch");
    assert!(k.bzimage.is_file() && k.config.is_file(), "{k:?}");
    assert_eq!(events.borrow().last(), Some(&FetchEvent::Done));
    assert!(cache.is_fetched(entry));
    let again = cache
        .fetch(entry, &|e| assert_eq!(e, FetchEvent::AlreadyCached))
        .expect("again");
    assert_eq!(again, k);
    let order = module_load_order(
        &k.modules_dir,
        &["virtio_blk", "virtio_pci", "virtio_console", "drm"],
    )
    .expect("order");
    let pos = |m: &str| {
        order
            .iter()
            .position(|p| {
                p.file_name()
                    .is_some_and(|f| f == format!("{m}.ko").as_str())
            })
            .unwrap_or_else(|| panic!("{m} missing from {order:?}"))
    };
    assert!(pos("virtio_ring") < pos("virtio"));
    assert!(pos("virtio_pci_modern_dev") < pos("virtio_pci"));
    assert!(pos("virtio") < pos("virtio_blk"));
    assert!(order.iter().all(|p| p.is_file()));

    // A pin that left the archive falls back to the newest of its line: here that is the
    // same package we already have, so apt-cache is consulted but nothing is downloaded.
    let mut vanished = entry.clone();
    vanished.image.version = "6.1.192-1".into();
    let fell_back = cache.fetch(&vanished, &|e| assert_eq!(e, FetchEvent::AlreadyCached));
    assert!(fell_back.expect("fallback").release.starts_with("6.1.0-"));
}

#[test]
#[ignore = "downloads ~14 MB and needs gcc-12, make, libelf-dev"]
fn fetched_headers_build_a_module() {
    let catalog = Catalog::builtin().expect("catalog");
    let entry = catalog.get("debian-6.1").expect("entry");
    let root = tempfile::tempdir().expect("tempdir");
    let cache = KernelCache::new(root.path());
    let hdir = cache.fetch_headers(entry, &|_| ()).expect("headers");
    assert!(
        hdir.ends_with("usr/src/linux-headers-6.1.0-56-amd64"),
        "{}",
        hdir.display()
    );
    let m = tempfile::tempdir().expect("tempdir");
    std::fs::write(m.path().join("Kbuild"), "obj-m := hello.o\n").expect("kbuild");
    let src = "#include <linux/module.h>\nstatic int __init h(void) { return 0; }\n\
               module_init(h);\nMODULE_LICENSE(\"GPL\");\n";
    std::fs::write(m.path().join("hello.c"), src).expect("src");
    let mut make = std::process::Command::new("make");
    make.arg("-C")
        .arg(&hdir)
        .arg(format!("M={}", m.path().display()))
        .arg("modules");
    let out = crate::process::output(make, std::time::Duration::from_secs(300)).expect("make");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && m.path().join("hello.ko").is_file(),
        "{log}"
    );

    // Pins that left the archive: the image's falls back to the newest of its line (the
    // same 6.1.0-56 build here), the headers follow it and kbuild takes the nearest newer
    // version, so the cached tree is found again without downloading.
    let mut vanished = entry.clone();
    vanished.image.version = "6.1.192-1".into();
    vanished.headers[2].version = "6.1.192-1".into();
    let pinned_kbuild = &entry.headers[2];
    let sha = apt::archive_sha256(&pinned_kbuild.name, &pinned_kbuild.version).expect("sha");
    assert_eq!(sha, pinned_kbuild.sha256);
    let again = cache.fetch_headers(&vanished, &|e| assert_eq!(e, FetchEvent::AlreadyCached));
    assert_eq!(again.expect("fallback"), hdir);
}
