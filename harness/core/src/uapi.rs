//! The mock GMA500 driver's ioctl ABI, mirrored from its uapi header
//! `kernels/gma500_mock/include/uapi/gma500_mock_drm.h`, which stays the single source of
//! truth: read the header for what each ioctl does and which errors it returns.
//!
//! Types, fields and constants keep their C names so the two read side by side. The ioctl
//! numbers are computed as the header computes them (`DRM_IOWR(DRM_COMMAND_BASE + nr, type)`,
//! i.e. `_IOWR('d', 0x40 + nr, type)`) by the `_IOC` arithmetic below, written as `const fn`s
//! so this crate stays free of OS calls. A test compiles the header with gcc and compares
//! every struct size, field offset, ioctl number and constant.
#![allow(non_camel_case_types)]

use std::mem::size_of;

// ---------------------------------------------------------------------------------------------
// `_IOC` from <asm-generic/ioctl.h> (x86_64 uses the generic layout).

const IOC_NRBITS: u32 = 8;
const IOC_TYPEBITS: u32 = 8;
const IOC_SIZEBITS: u32 = 14;
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;

/// `_IOC_WRITE`: user space writes the argument.
pub const IOC_WRITE: u32 = 1;
/// `_IOC_READ`: user space reads the argument back.
pub const IOC_READ: u32 = 2;

/// `_IOC(dir, type, nr, size)`.
pub const fn ioc(dir: u32, ty: u8, nr: u32, size: usize) -> u64 {
    assert!(nr < 1 << IOC_NRBITS, "ioctl nr does not fit _IOC");
    assert!(
        size < 1 << IOC_SIZEBITS,
        "ioctl argument too large for _IOC"
    );
    ((dir << IOC_DIRSHIFT)
        | ((ty as u32) << IOC_TYPESHIFT)
        | (nr << IOC_NRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)) as u64
}

/// `_IOWR(type, nr, size)`.
pub const fn iowr(ty: u8, nr: u32, size: usize) -> u64 {
    ioc(IOC_READ | IOC_WRITE, ty, nr, size)
}

/// `GMA500_MOCK_IOWR(nr, T)`: `DRM_IOWR(DRM_COMMAND_BASE + nr, T)`.
pub const fn gma500_mock_iowr<T>(nr: u32) -> u64 {
    iowr(
        GMA500_MOCK_IOCTL_BASE,
        GMA500_MOCK_COMMAND_BASE + nr,
        size_of::<T>(),
    )
}

// ---------------------------------------------------------------------------------------------
// Ioctl numbers.

/// `DRM_IOCTL_BASE`.
pub const GMA500_MOCK_IOCTL_BASE: u8 = b'd';
/// `DRM_COMMAND_BASE`: the first driver-private DRM ioctl.
pub const GMA500_MOCK_COMMAND_BASE: u32 = 0x40;

pub const DRM_GMA500_MOCK_GEM_CREATE: u32 = 0x00;
pub const DRM_GMA500_MOCK_PIN: u32 = 0x01;
pub const DRM_GMA500_MOCK_UNPIN: u32 = 0x02;
pub const DRM_GMA500_MOCK_SHMEM_FD: u32 = 0x03;
pub const DRM_GMA500_MOCK_SET_DMA32: u32 = 0x04;
pub const DRM_GMA500_MOCK_PAGE_INFO: u32 = 0x05;

pub const DRM_IOCTL_GMA500_MOCK_GEM_CREATE: u64 =
    gma500_mock_iowr::<drm_gma500_mock_gem_create>(DRM_GMA500_MOCK_GEM_CREATE);
pub const DRM_IOCTL_GMA500_MOCK_PIN: u64 =
    gma500_mock_iowr::<drm_gma500_mock_pin>(DRM_GMA500_MOCK_PIN);
pub const DRM_IOCTL_GMA500_MOCK_UNPIN: u64 =
    gma500_mock_iowr::<drm_gma500_mock_pin>(DRM_GMA500_MOCK_UNPIN);
pub const DRM_IOCTL_GMA500_MOCK_SHMEM_FD: u64 =
    gma500_mock_iowr::<drm_gma500_mock_shmem_fd>(DRM_GMA500_MOCK_SHMEM_FD);
pub const DRM_IOCTL_GMA500_MOCK_SET_DMA32: u64 =
    gma500_mock_iowr::<drm_gma500_mock_set_dma32>(DRM_GMA500_MOCK_SET_DMA32);
pub const DRM_IOCTL_GMA500_MOCK_PAGE_INFO: u64 =
    gma500_mock_iowr::<drm_gma500_mock_page_info>(DRM_GMA500_MOCK_PAGE_INFO);

// ---------------------------------------------------------------------------------------------
// Limits and flags.

/// Largest GEM object in bytes.
pub const GMA500_MOCK_MAX_OBJECT_SIZE: u64 = 1 << 32;
/// Most entries one PAGE_INFO call fills.
pub const GMA500_MOCK_PAGE_INFO_MAX: u32 = 65536;

/// `drm_gma500_mock_gem_create.flags`: pin the object at creation.
pub const GMA500_MOCK_CREATE_PINNED: u32 = 1 << 0;
/// `drm_gma500_mock_shmem_fd.flags`: the new descriptor is close-on-exec.
pub const GMA500_MOCK_FD_CLOEXEC: u32 = 1 << 0;

/// `drm_gma500_mock_page.state`: a hole.
pub const GMA500_MOCK_PAGE_ABSENT: u32 = 0;
/// `drm_gma500_mock_page.state`: a page in the page cache.
pub const GMA500_MOCK_PAGE_RESIDENT: u32 = 1;
/// `drm_gma500_mock_page.state`: a swap entry (a swap-cache copy is not visible).
pub const GMA500_MOCK_PAGE_SWAPPED: u32 = 2;

/// `drm_gma500_mock_page.zone` of a page that is not resident.
pub const GMA500_MOCK_ZONE_NONE: u32 = 0;
pub const GMA500_MOCK_ZONE_DMA: u32 = 1;
pub const GMA500_MOCK_ZONE_DMA32: u32 = 2;
pub const GMA500_MOCK_ZONE_NORMAL: u32 = 3;
pub const GMA500_MOCK_ZONE_MOVABLE: u32 = 4;
/// Any other zone (e.g. `ZONE_DEVICE`).
pub const GMA500_MOCK_ZONE_OTHER: u32 = 5;

/// `drm_gma500_mock_page.flags`: held by a PIN of this driver.
pub const GMA500_MOCK_PAGE_PINNED: u32 = 1 << 0;
/// Held by a GEM mmap of this driver (until the object's last GEM mapping goes).
pub const GMA500_MOCK_PAGE_GEM_MAPPED: u32 = 1 << 1;
/// `folio_maybe_dma_pinned()`.
pub const GMA500_MOCK_PAGE_DMA_PINNED: u32 = 1 << 2;
pub const GMA500_MOCK_PAGE_DIRTY: u32 = 1 << 3;
pub const GMA500_MOCK_PAGE_WRITEBACK: u32 = 1 << 4;
pub const GMA500_MOCK_PAGE_SWAPCACHE: u32 = 1 << 5;
pub const GMA500_MOCK_PAGE_LRU: u32 = 1 << 6;
pub const GMA500_MOCK_PAGE_UNEVICTABLE: u32 = 1 << 7;
/// In a user page table (rmap), e.g. through a shared mapping of the shmem file.
pub const GMA500_MOCK_PAGE_MAPPED: u32 = 1 << 8;
/// The first page of its folio (always set for a page of an order-0 folio).
pub const GMA500_MOCK_PAGE_HEAD: u32 = 1 << 9;

/// `drm_gma500_mock_page_info.mapping_flags`: the gfp mask has `__GFP_DMA32`.
pub const GMA500_MOCK_MAPPING_DMA32: u32 = 1 << 0;
/// The gfp mask has `__GFP_DMA`.
pub const GMA500_MOCK_MAPPING_DMA: u32 = 1 << 1;
pub const GMA500_MOCK_MAPPING_UNEVICTABLE: u32 = 1 << 2;
/// The file backs a live GEM object of this driver.
pub const GMA500_MOCK_MAPPING_GEM: u32 = 1 << 3;

// ---------------------------------------------------------------------------------------------
// Argument structs.

/// GEM_CREATE.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct drm_gma500_mock_gem_create {
    pub size: u64,
    pub flags: u32,
    pub handle: u32,
}

/// PIN and UNPIN.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct drm_gma500_mock_pin {
    pub handle: u32,
    pub pin_count: u32,
}

/// SHMEM_FD.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct drm_gma500_mock_shmem_fd {
    pub handle: u32,
    pub flags: u32,
    pub fd: i32,
    pub pad: u32,
}

/// SET_DMA32.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct drm_gma500_mock_set_dma32 {
    pub fd: i32,
    pub flags: u32,
}

/// One page index of a shmem file, as PAGE_INFO saw it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct drm_gma500_mock_page {
    pub pfn: u64,
    pub swap_offset: u64,
    pub state: u32,
    pub zone: u32,
    pub flags: u32,
    pub swap_type: u32,
    pub folio_order: u32,
    pub pad: u32,
}

/// PAGE_INFO; `pages` is a user pointer to `count` [`drm_gma500_mock_page`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct drm_gma500_mock_page_info {
    pub fd: i32,
    pub count: u32,
    pub first_index: u64,
    pub pages: u64,
    pub size: u64,
    pub mapping_flags: u32,
    pub pad: u32,
}

/// The name of a `GMA500_MOCK_ZONE_*` value, as `/proc/zoneinfo` spells the zone.
pub fn zone_name(zone: u32) -> &'static str {
    match zone {
        GMA500_MOCK_ZONE_NONE => "none",
        GMA500_MOCK_ZONE_DMA => "DMA",
        GMA500_MOCK_ZONE_DMA32 => "DMA32",
        GMA500_MOCK_ZONE_NORMAL => "Normal",
        GMA500_MOCK_ZONE_MOVABLE => "Movable",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::mem::offset_of;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// `(name, value)` of everything the header defines that this file mirrors: struct sizes
    /// (`sizeof <struct>`), field offsets (`offsetof <struct>.<field>`) and constants.
    fn rust_side() -> Vec<(String, u64)> {
        let mut out = Vec::new();
        macro_rules! layout {
            ($($t:ident { $($f:ident),* })*) => {$(
                out.push((format!("sizeof {}", stringify!($t)), size_of::<$t>() as u64));
                $(out.push((
                    format!("offsetof {}.{}", stringify!($t), stringify!($f)),
                    offset_of!($t, $f) as u64,
                ));)*
            )*};
        }
        macro_rules! consts {
            ($($c:ident),* $(,)?) => {$(out.push((format!("const {}", stringify!($c)), $c as u64));)*};
        }
        layout! {
            drm_gma500_mock_gem_create { size, flags, handle }
            drm_gma500_mock_pin { handle, pin_count }
            drm_gma500_mock_shmem_fd { handle, flags, fd, pad }
            drm_gma500_mock_set_dma32 { fd, flags }
            drm_gma500_mock_page { pfn, swap_offset, state, zone, flags, swap_type, folio_order, pad }
            drm_gma500_mock_page_info { fd, count, first_index, pages, size, mapping_flags, pad }
        }
        consts!(
            GMA500_MOCK_IOCTL_BASE,
            GMA500_MOCK_COMMAND_BASE,
            DRM_GMA500_MOCK_GEM_CREATE,
            DRM_GMA500_MOCK_PIN,
            DRM_GMA500_MOCK_UNPIN,
            DRM_GMA500_MOCK_SHMEM_FD,
            DRM_GMA500_MOCK_SET_DMA32,
            DRM_GMA500_MOCK_PAGE_INFO,
            DRM_IOCTL_GMA500_MOCK_GEM_CREATE,
            DRM_IOCTL_GMA500_MOCK_PIN,
            DRM_IOCTL_GMA500_MOCK_UNPIN,
            DRM_IOCTL_GMA500_MOCK_SHMEM_FD,
            DRM_IOCTL_GMA500_MOCK_SET_DMA32,
            DRM_IOCTL_GMA500_MOCK_PAGE_INFO,
            GMA500_MOCK_MAX_OBJECT_SIZE,
            GMA500_MOCK_PAGE_INFO_MAX,
            GMA500_MOCK_CREATE_PINNED,
            GMA500_MOCK_FD_CLOEXEC,
            GMA500_MOCK_PAGE_ABSENT,
            GMA500_MOCK_PAGE_RESIDENT,
            GMA500_MOCK_PAGE_SWAPPED,
            GMA500_MOCK_ZONE_NONE,
            GMA500_MOCK_ZONE_DMA,
            GMA500_MOCK_ZONE_DMA32,
            GMA500_MOCK_ZONE_NORMAL,
            GMA500_MOCK_ZONE_MOVABLE,
            GMA500_MOCK_ZONE_OTHER,
            GMA500_MOCK_PAGE_PINNED,
            GMA500_MOCK_PAGE_GEM_MAPPED,
            GMA500_MOCK_PAGE_DMA_PINNED,
            GMA500_MOCK_PAGE_DIRTY,
            GMA500_MOCK_PAGE_WRITEBACK,
            GMA500_MOCK_PAGE_SWAPCACHE,
            GMA500_MOCK_PAGE_LRU,
            GMA500_MOCK_PAGE_UNEVICTABLE,
            GMA500_MOCK_PAGE_MAPPED,
            GMA500_MOCK_PAGE_HEAD,
            GMA500_MOCK_MAPPING_DMA32,
            GMA500_MOCK_MAPPING_DMA,
            GMA500_MOCK_MAPPING_UNEVICTABLE,
            GMA500_MOCK_MAPPING_GEM,
        );
        out
    }

    fn header_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kernels/gma500_mock/include/uapi")
    }

    /// A C program printing, for every name of `rust_side()`, the value the header gives.
    fn c_program(names: &[(String, u64)]) -> String {
        let mut c = String::from(
            "#include <stddef.h>\n#include <stdio.h>\n#include \"gma500_mock_drm.h\"\n\
             int main(void)\n{\n",
        );
        for (name, _) in names {
            let (kind, what) = name.split_once(' ').expect("kind and name");
            let expr = match kind {
                "sizeof" => format!("sizeof(struct {what})"),
                "offsetof" => {
                    let (s, f) = what.split_once('.').expect("struct.field");
                    format!("offsetof(struct {s}, {f})")
                }
                _ => format!("(unsigned long long)({what})"),
            };
            c += &format!("\tprintf(\"{name} %llu\\n\", (unsigned long long){expr});\n");
        }
        c + "\treturn 0;\n}\n"
    }

    /// Compiles and runs `program` against the header; returns `name -> value`.
    fn c_side(program: &str) -> BTreeMap<String, u64> {
        let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".into());
        let dir = std::env::temp_dir().join(format!(
            "shmemfuzz-uapi-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (src, exe) = (dir.join("layout.c"), dir.join("layout"));
        std::fs::write(&src, program).expect("write layout.c");
        let out = match Command::new(&cc)
            .args(["-std=gnu11", "-Wall", "-Werror", "-I"])
            .arg(header_dir())
            .arg(&src)
            .arg("-o")
            .arg(&exe)
            .output()
        {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "`{cc}` not found: install the Debian package `gcc` (this test compiles the \
                 driver's uapi header to check the Rust mirror against it)"
            ),
            Err(e) => panic!("cannot run `{cc}`: {e}"),
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("linux/ioctl.h") && !stderr.contains("linux/types.h"),
            "the kernel's uapi headers are missing: install the Debian package \
             `linux-libc-dev`\n{stderr}"
        );
        assert!(
            out.status.success(),
            "compiling the uapi header failed:\n{stderr}"
        );
        let run = Command::new(&exe).output().expect("run the layout program");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(run.status.success(), "the layout program failed");
        String::from_utf8_lossy(&run.stdout)
            .lines()
            .map(|l| {
                let (name, value) = l.rsplit_once(' ').expect("name value");
                (name.to_string(), value.parse().expect("a number"))
            })
            .collect()
    }

    #[test]
    fn mirror_matches_the_c_header() {
        let rust = rust_side();
        let c = c_side(&c_program(&rust));
        let wrong: Vec<String> = rust
            .iter()
            .filter(|(name, value)| c.get(name) != Some(value))
            .map(|(name, value)| format!("{name}: Rust {value}, C {:?}", c.get(name)))
            .collect();
        assert!(
            wrong.is_empty(),
            "the Rust mirror differs from the header:\n{}",
            wrong.join("\n")
        );
        assert_eq!(c.len(), rust.len());
    }

    #[test]
    fn structs_are_padded_to_eight_bytes() {
        for (name, size) in rust_side().iter().filter(|(n, _)| n.starts_with("sizeof")) {
            assert_eq!(size % 8, 0, "{name} is {size} bytes");
        }
    }

    #[test]
    fn ioc_arithmetic_matches_known_drm_numbers() {
        // From <drm/drm.h>: DRM_IOCTL_VERSION = DRM_IOWR(0x00, struct drm_version) (64 bytes
        // on x86_64) and DRM_IOCTL_MODE_CREATE_DUMB = DRM_IOWR(0xB2, 32 bytes).
        assert_eq!(iowr(b'd', 0x00, 64), 0xc040_6400);
        assert_eq!(iowr(b'd', 0xb2, 32), 0xc020_64b2);
        assert_eq!(DRM_IOCTL_GMA500_MOCK_GEM_CREATE, 0xc010_6440);
    }

    #[test]
    fn zone_names() {
        assert_eq!(zone_name(GMA500_MOCK_ZONE_DMA32), "DMA32");
        assert_eq!(zone_name(GMA500_MOCK_ZONE_NORMAL), "Normal");
        assert_eq!(zone_name(99), "other");
    }
}
