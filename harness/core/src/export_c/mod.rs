//! C reproducers: [`export`] turns a program into one standalone, readable C file that a
//! kernel developer can build with `gcc -static` and run as root in a guest with the mock
//! GMA500 driver loaded, with no part of shmemfuzz.
//!
//! Each operation becomes a commented step of `main()` making the system calls the guest
//! agent makes (`harness/agent/src/exec.rs`, `gem.rs`), and the program checks what the
//! model expects, itself:
//! - results: the model's [`Expect`] of each operation, decided here; the few that depend
//!   on earlier outcomes (swap devices on, GEM pins held) are tracked at run time as
//!   [`Model::observe`] does;
//! - data: every read is compared with the bytes the model expects, written into the C
//!   as pattern ranges (`PATTERN(lo, hi, seed)` / `ZEROS(lo, hi)` in file offsets) that
//!   regenerate them exactly with a C port of [`pattern::fill`];
//! - zones: after every step, PAGE_INFO of each DMA32-constrained object and the rule of
//!   [`crate::oracle::zones`], ported to C.
//!
//! It prints `VIOLATION: <signature>: <what>` for each violation (signatures as the host's
//! findings spell them) and ends with `OK` (exit 0) or `FAILED: <n> violations` (exit 1);
//! exit 2 means the guest is not set up for it. With [`ExportOptions::kselftest`] it is a
//! kselftest for `tools/testing/selftests/mm` instead: TAP 13, one test per operation plus
//! the taint check, exit `KSFT_PASS` / `KSFT_FAIL` / `KSFT_SKIP`.
//!
//! The file carries only the runtime helpers its steps use ([`pieces`]), then `main()`.
//!
//! [`guest_init_source`] is a tiny `/init` that runs such a reproducer in a throwaway guest.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::oracle::{pattern, Expect, Model, TouchPlan};
use crate::program::scope::Scope;
use crate::program::{text, Advice, MapKind, Op, Program, ThpMode, TouchMode};
use crate::protocol::errno;

/// File name of the mock driver's uapi header, as the reproducer includes it.
pub const UAPI_HEADER: &str = "gma500_mock_drm.h";

mod pieces;

const PATTERN_C: &str = include_str!("pattern.c");
const GUEST_INIT_C: &str = include_str!("guest_init.c");

/// The C port of [`pattern::fill`]: `pattern_fill(seed, off, buf, len)` (needs `<stdint.h>`
/// and `<stddef.h>`).
pub fn pattern_source() -> &'static str {
    PATTERN_C
}

/// A static `/init` for a throwaway guest: mounts, loads `/modules/*` in name order, waits
/// for `/dev/vda`, runs `/repro`, prints `REPRO-EXIT: <status>` and powers off.
pub fn guest_init_source() -> &'static str {
    GUEST_INIT_C
}

/// How to export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportOptions {
    /// The text of `gma500_mock_drm.h`, pasted into the file so that it compiles alone;
    /// `None` writes `#include "gma500_mock_drm.h"`.
    pub inline_uapi: Option<String>,
    /// Guest paths of the swap devices `swap0`, `swap1`, … (at least one).
    pub swap_devices: Vec<String>,
    /// The signature of the finding this reproduces; the header names it and the
    /// reproducer says at the end whether it saw it.
    pub signature: Option<String>,
    /// Where the program comes from (a file name), for the header.
    pub source: Option<String>,
    /// The kernel it was seen on (release, command line), for the header.
    pub kernel: Option<String>,
    /// Export the test-only operations (`corrupt`, `sysrq`) instead of refusing them.
    pub allow_test_ops: bool,
    /// Seconds an operation may take before the reproducer reports a hang (0: no limit).
    pub op_timeout_secs: u32,
    /// Write a kselftest (TAP 13, `KSFT_*` exit codes, skips when the guest lacks the mock
    /// driver or swap) instead of a plain reproducer.
    pub kselftest: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            inline_uapi: None,
            swap_devices: vec!["/dev/vda".into(), "/dev/vdb".into()],
            signature: None,
            source: None,
            kernel: None,
            allow_test_ops: false,
            op_timeout_secs: 120,
            kselftest: false,
        }
    }
}

/// Why a program could not be exported.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// The operation cannot be exported (or is not valid where it stands).
    #[error("op {index} `{op}`: {why}")]
    Op {
        index: usize,
        op: String,
        why: String,
    },
    #[error("export options: {0}")]
    Options(String),
}

/// Which expected contents a read compares with: file bytes `lo..hi` hold the pattern of
/// `seed`, or zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seg {
    lo: u64,
    hi: u64,
    seed: Option<u32>,
}

/// The program's objects and mappings, in declaration order.
#[derive(Default)]
struct Names {
    /// Object name -> kind keyword.
    objects: BTreeMap<String, &'static str>,
    order: Vec<String>,
    /// Objects made by `memfd ... anon` (mapped by duplicating their first mapping).
    anon: std::collections::BTreeSet<String>,
    /// Mapping name -> (object, file offset, length).
    maps: Vec<(String, String, u64, u64)>,
    seeds: Vec<u32>,
    uses_drm: bool,
    uses_tmpfs: bool,
}

fn op_error(index: usize, op: &Op, why: impl Into<String>) -> ExportError {
    ExportError::Op {
        index,
        op: op.to_string(),
        why: why.into(),
    }
}

/// Writes the C reproducer of `program`.
pub fn export(program: &Program, opts: &ExportOptions) -> Result<String, ExportError> {
    if opts.swap_devices.is_empty() || opts.swap_devices.len() > usize::from(u8::MAX) {
        return Err(ExportError::Options(
            "give 1 to 255 swap devices (swap0 is turned on at start)".into(),
        ));
    }
    let names = collect(program, opts)?;
    let mut out = String::new();
    header(&mut out, program, opts, &names);
    preamble(&mut out, program, opts);
    if names.uses_drm {
        uapi(&mut out, opts);
    }
    let mut decls = String::new();
    declarations(&mut decls, &names);
    let mut main = String::new();
    main_fn(&mut main, program, opts, &names)?;
    let (types, helpers) = pieces::needed_by(&format!("{decls}{main}"));
    out.push('\n');
    out.push_str(&types);
    out.push_str(decls.trim_start_matches('\n'));
    out.push_str("\n/* ---- the helpers main() uses ---- */\n\n");
    out.push_str(&helpers);
    out.push_str(main.trim_start_matches('\n'));
    Ok(out)
}

/// The mock driver's uapi: pasted in, or included.
fn uapi(out: &mut String, opts: &ExportOptions) {
    match &opts.inline_uapi {
        Some(uapi) => {
            out.push_str("\n/* ---- ");
            out.push_str(UAPI_HEADER);
            out.push_str(", the mock driver's uapi (inlined) ---- */\n\n");
            out.push_str(uapi);
            if !uapi.ends_with('\n') {
                out.push('\n');
            }
        }
        None => {
            let _ = writeln!(out, "\n#include \"{UAPI_HEADER}\"");
        }
    }
}

/// Why `op` has no C form: threaded sections, delays and the program's own mounts are not
/// exported (the reproducer is single-threaded and uses the agent's tmpfs directory only).
fn not_exported(op: &Op) -> Option<String> {
    match op {
        Op::Threads
        | Op::Thread { .. }
        | Op::Join
        | Op::Delay { .. }
        | Op::Spin { .. }
        | Op::Mount { .. }
        | Op::Umount { .. }
        | Op::Tmpfs { on: Some(_), .. } => Some(
            "threaded sections, delays and program mounts have no C form; \
             replay the program with `shmemfuzz run` instead"
                .into(),
        ),
        _ => None,
    }
}

/// Checks every operation in scope and collects the names, seeds and devices used.
fn collect(program: &Program, opts: &ExportOptions) -> Result<Names, ExportError> {
    let mut scope = Scope::new(opts.swap_devices.len() as u8);
    let mut n = Names::default();
    for (i, op) in program.ops.iter().enumerate() {
        if let Some(why) = not_exported(op) {
            return Err(op_error(i, op, why));
        }
        if op.is_test_only() && !opts.allow_test_ops {
            return Err(op_error(
                i,
                op,
                format!(
                    "`{}` is a test-only operation: pass --allow-test-ops to export it",
                    op.keyword()
                ),
            ));
        }
        scope.apply(op).map_err(|e| {
            op_error(
                i,
                op,
                format!(
                    "not valid here with {} swap devices: {}",
                    opts.swap_devices.len(),
                    e.message
                ),
            )
        })?;
        match op {
            Op::Memfd { obj, .. } | Op::Tmpfs { obj, .. } | Op::Gem { obj, .. } => {
                let kind = match op {
                    Op::Memfd { .. } => "memfd",
                    Op::Tmpfs { .. } => "tmpfs",
                    _ => "gem",
                };
                n.objects.insert(obj.clone(), kind);
                n.order.push(obj.clone());
                if matches!(op, Op::Memfd { anon: true, .. }) {
                    n.anon.insert(obj.clone());
                }
            }
            Op::Mmap {
                map, obj, off, len, ..
            } => n.maps.push((map.clone(), obj.clone(), *off, *len)),
            Op::Write { seed, .. }
            | Op::Touch {
                mode: TouchMode::Write { seed },
                ..
            } if !n.seeds.contains(seed) => n.seeds.push(*seed),
            _ => {}
        }
        n.uses_tmpfs |= matches!(op, Op::Tmpfs { .. });
        n.uses_drm |= op.uses_drm();
    }
    Ok(n)
}

/// Text made safe inside a C comment.
fn comment_safe(s: &str) -> String {
    s.replace("*/", "* /").replace("/*", "/ *")
}

/// A C string literal.
fn c_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            c => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "\\{b:03o}");
                }
            }
        }
    }
    out.push('"');
    out
}

fn header(out: &mut String, program: &Program, opts: &ExportOptions, names: &Names) {
    let title = match &opts.source {
        Some(s) => format!("shmemfuzz reproducer of {}", comment_safe(s)),
        None => "shmemfuzz reproducer".to_string(),
    };
    let _ = writeln!(out, "/*\n * {title}\n *");
    if let Some(sig) = &opts.signature {
        let _ = writeln!(out, " * Reproduces: {}", comment_safe(sig));
    }
    if let Some(k) = &opts.kernel {
        let _ = writeln!(out, " * Seen on: {}", comment_safe(k));
    }
    if opts.signature.is_some() || opts.kernel.is_some() {
        out.push_str(" *\n");
    }
    let _ = writeln!(
        out,
        " * The shmemfuzz program ({} operations), one step of main() each:\n *",
        program.ops.len()
    );
    for line in text::print(program).lines() {
        let line = comment_safe(line);
        if line.is_empty() {
            out.push_str(" *\n");
        } else {
            let _ = writeln!(out, " *   {line}");
        }
    }
    let zones = if names.uses_drm {
        " and, after every step,\n * the zone rule: a page of a DMA32-constrained object (PAGE_INFO of the mock\n * driver) may not be resident at or above 4 GiB once it was absent, swapped or moved"
    } else {
        ""
    };
    let _ = write!(
        out,
        " *\n * Each step makes the guest agent's system calls and checks what shmemfuzz's\n\
         \x20* model expects: the result, every byte read back (writes store a pattern\n\
         \x20* regenerated from seed and file offset: pattern_fill()){zones}.\n *\n"
    );
    let include_note = if !names.uses_drm {
        String::new()
    } else if opts.inline_uapi.is_some() {
        "\n *   (the mock driver's uapi is inlined below)".to_string()
    } else {
        format!("\n *   with {UAPI_HEADER} from kernels/gma500_mock/include/uapi/ beside it")
    };
    let build = if opts.kselftest {
        format!(
            " * Build: gcc -static -O2 -Wall -o repro repro.c{include_note}\n\
             \x20*   or in tools/testing/selftests/mm, where it includes ../kselftest.h.\n"
        )
    } else {
        format!(" * Build: gcc -static -O2 -o repro repro.c{include_note}\n")
    };
    out.push_str(&build);
    let drm = if names.uses_drm {
        "drm and the mock GMA500 driver\n * (kernels/gma500_mock) loaded, "
    } else {
        ""
    };
    let _ = write!(
        out,
        " * Run as root in a guest with {drm}swap devices {swaps} (mkswap'd;\n\
         \x20* {first} is turned on, the others off), cgroup2 on /sys/fs/cgroup, and 1 GiB\n\
         \x20* below and 1 GiB above 4 GiB (qemu -machine pc,max-ram-below-4g=1G -m 2G).\n\
         {output} */\n",
        swaps = opts.swap_devices.join(", "),
        first = opts.swap_devices[0],
        output = output_note(opts),
    );
}

/// The header's account of what it prints and its exit status.
fn output_note(opts: &ExportOptions) -> &'static str {
    if opts.kselftest {
        " * A kselftest: TAP 13, one test per operation and one that the kernel was not\n\
         \x20* tainted; exit KSFT_PASS, KSFT_FAIL, or KSFT_SKIP with the reason.\n"
    } else {
        " * It prints \"VIOLATION: <signature>: <what>\" for each violation and ends with\n\
         \x20* OK (exit 0) or FAILED (exit 1); exit 2: the guest is not set up for it.\n"
    }
}

fn preamble(out: &mut String, program: &Program, opts: &ExportOptions) {
    out.push_str(
        "#define _GNU_SOURCE\n\
         #include <errno.h>\n\
         #include <fcntl.h>\n\
         #include <sched.h>\n\
         #include <signal.h>\n\
         #include <stdarg.h>\n\
         #include <stddef.h>\n\
         #include <stdint.h>\n\
         #include <stdio.h>\n\
         #include <stdlib.h>\n\
         #include <string.h>\n\
         #include <unistd.h>\n\
         #include <linux/falloc.h>\n\
         #include <sys/ioctl.h>\n\
         #include <sys/mman.h>\n\
         #include <sys/mount.h>\n\
         #include <sys/stat.h>\n\
         #include <sys/swap.h>\n\
         #include <sys/syscall.h>\n",
    );
    out.push_str(&report_macros(program, opts));
    let devs: Vec<String> = opts.swap_devices.iter().map(|d| c_string(d)).collect();
    let sig = opts.signature.as_deref().unwrap_or("");
    let _ = write!(
        out,
        r#"
/* ---- the guest it expects ---- */

/* swap0, swap1, ... of the program */
static const char *const swap_dev[] = {{ {devs} }};
#define N_SWAP {n_swap}
#define CGROUP "/sys/fs/cgroup/repro"		/* its memory cgroup */
#define TMPFS_DIR "/run/shmemfuzz-repro"	/* a tmpfs it mounts for its tmpfs files */
#define OP_TIMEOUT {timeout}			/* seconds before an operation counts as hung */
#define EXPECTED_SIGNATURE {sig}
"#,
        devs = devs.join(", "),
        n_swap = devs.len(),
        timeout = opts.op_timeout_secs,
        sig = c_string(sig),
    );
}

/// How it reports: plain lines and exit 0/1/2, or TAP 13 and the kselftest exit codes.
fn report_macros(program: &Program, opts: &ExportOptions) -> String {
    if !opts.kselftest {
        return "\n/* ---- how it reports: plain lines, exit 0, 1, or 2 (not set up) ---- */\n\
                #define TAP 0\n#define NOTE \"\"\n#define EXIT_OK 0\n#define EXIT_FAIL 1\n\
                #define EXIT_SETUP 2\n#define N_TESTS 0\n"
            .into();
    }
    format!(
        r##"
/* ---- how it reports: a kselftest (TAP 13) ---- */

#if !defined(SHMEMFUZZ_STANDALONE) && __has_include("../kselftest.h")
#include "../kselftest.h"	/* in tools/testing/selftests/mm */
#else
#define KSFT_PASS 0
#define KSFT_FAIL 1
#define KSFT_SKIP 4
#endif
#define TAP 1
#define NOTE "# "		/* before every line that is not TAP's own */
#define EXIT_OK KSFT_PASS
#define EXIT_FAIL KSFT_FAIL
#define EXIT_SETUP KSFT_SKIP	/* with "1..0 # SKIP <reason>" */
#define N_TESTS {}		/* one per operation, and the taint check */
"##,
        program.ops.len() + 1
    )
}

fn declarations(out: &mut String, names: &Names) {
    out.push_str("\n/* ---- the program's objects and mappings ---- */\n\n");
    for obj in &names.order {
        let kind = names.objects[obj];
        let extra = if kind == "gem" {
            ", .constrained = 1 /* GFP_KERNEL | __GFP_DMA32 from creation */"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "static struct obj obj_{obj} = {{ .name = \"{obj}\", .kind = \"{kind}\", .fd = -1{extra} }};"
        );
    }
    for (map, obj, off, len) in &names.maps {
        let _ = writeln!(
            out,
            "static struct map map_{map} = {{ .name = \"{map}\", .obj = &obj_{obj}, .file_off = {off:#x}, .len = {len:#x} }};"
        );
    }
    if !names.uses_drm {
        return;
    }
    let mut sorted: Vec<&String> = names.order.iter().collect();
    sorted.sort();
    let list: Vec<String> = sorted
        .iter()
        .map(|o| format!("&obj_{o}, "))
        .chain(std::iter::once("NULL".to_string()))
        .collect();
    let _ = writeln!(
        out,
        "/* every object, by name */\nstatic struct obj *const objects[] = {{ {} }};",
        list.concat()
    );
}

fn advice_c(a: Advice) -> &'static str {
    match a {
        Advice::Pageout => "MADV_PAGEOUT",
        Advice::Cold => "MADV_COLD",
        Advice::Willneed => "MADV_WILLNEED",
        Advice::Dontneed => "MADV_DONTNEED",
        Advice::Remove => "MADV_REMOVE",
        Advice::Collapse => "MADV_COLLAPSE",
        Advice::Hugepage => "MADV_HUGEPAGE",
        Advice::Nohugepage => "MADV_NOHUGEPAGE",
        Advice::SoftOffline => "MADV_SOFT_OFFLINE",
    }
}

/// The C name of an errno the model names.
fn errno_c(index: usize, op: &Op, e: i32) -> Result<&'static str, ExportError> {
    match errno::name(e) {
        "E?" => Err(op_error(
            index,
            op,
            format!("the model expects errno {e}, which has no name here"),
        )),
        name => Ok(name),
    }
}

/// The statement checking `err` against the model's static expectation.
fn expect_c(index: usize, op: &Op, expect: &Expect) -> Result<String, ExportError> {
    Ok(match expect {
        Expect::Ok => "expect_ok(err);".into(),
        Expect::OkOr(v) if v.len() == 1 => {
            format!("expect_ok_or(err, {});", errno_c(index, op, v[0])?)
        }
        Expect::OkOr(v) => {
            let names = v
                .iter()
                .map(|e| errno_c(index, op, *e))
                .collect::<Result<Vec<_>, _>>()?;
            format!(
                "expect_ok_or_any(err, ((const int[]){{ {}, 0 }}), \"ok or {}\");",
                names.join(", "),
                names.join("/")
            )
        }
        Expect::Errno(e) => format!("expect_errno(err, {});", errno_c(index, op, *e)?),
        Expect::Skip => "skipped();".into(),
    })
}

/// The lines of a `static const struct seg want[]` table.
fn seg_table(segs: &[Seg]) -> String {
    let mut s = String::from("\t\tstatic const struct seg want[] = {\n");
    for g in segs {
        match g.seed {
            Some(seed) => {
                let _ = writeln!(s, "\t\t\tPATTERN({:#x}, {:#x}, {seed}),", g.lo, g.hi);
            }
            None => {
                let _ = writeln!(s, "\t\t\tZEROS({:#x}, {:#x}),", g.lo, g.hi);
            }
        }
    }
    s.push_str("\t\t};\n\n");
    s
}

fn main_fn(
    out: &mut String,
    program: &Program,
    opts: &ExportOptions,
    names: &Names,
) -> Result<(), ExportError> {
    let swap_on = crate::program::initial_swap_state(opts.swap_devices.len());
    let mut model = Model::new(swap_on);
    let mut body = String::new();
    let mut uses_err = false;
    for (i, op) in program.ops.iter().enumerate() {
        let notes: Vec<String> = program
            .notes_before(i)
            .iter()
            .map(|n| n.trim_start_matches('#').trim().to_string())
            .filter(|n| !n.is_empty())
            .map(|n| comment_safe(&n))
            .collect();
        match notes.as_slice() {
            [] => {}
            [one] => {
                let _ = writeln!(body, "\t/* {one} */");
            }
            many => {
                body.push_str("\t/*\n");
                for n in many {
                    let _ = writeln!(body, "\t * {n}");
                }
                body.push_str("\t */\n");
            }
        }
        let text = op.to_string();
        let _ = writeln!(body, "\t/* op {i}: {text} */");
        let _ = writeln!(
            body,
            "\tstep({i}, \"{}\", \"{}\", \"{text}\");",
            op.keyword(),
            op.action_word()
        );
        let code = step_code(i, op, &model, names)?;
        uses_err |= code.call.contains("err =");
        body.push_str(&code.call);
        let expect = model.apply(op);
        match code.dynamic {
            Some(check) => body.push_str(&check),
            None => {
                let _ = writeln!(body, "\t{}", expect_c(i, op, &expect)?);
            }
        }
        let also = match op {
            Op::Zonecheck { obj } => format!("&obj_{obj}"),
            _ => "NULL".into(),
        };
        if names.uses_drm {
            let _ = writeln!(body, "\tend_step({also});\n");
        } else {
            body.push_str("\tend_op();\n\n");
        }
    }
    out.push_str("\n/* ---- the program: one step per operation ---- */\n\nint main(void)\n{\n");
    if uses_err {
        out.push_str("\tint err;\n\n");
    }
    out.push_str("\tsetup();\n");
    if names.uses_tmpfs {
        out.push_str("\tsetup_tmpfs();\n");
    }
    if names.uses_drm {
        // The zones, and a note when nothing lies above 4 GiB (nothing can break the rule).
        out.push_str("\tsetup_card();\n\tprint_zones();\n");
    }
    out.push_str("\tbegin();\n\n");
    out.push_str(&body);
    out.push_str("\treturn finish();\n}\n");
    Ok(())
}

struct StepCode {
    /// The statements performing the operation (setting `err`).
    call: String,
    /// The check when the expectation depends on earlier outcomes; else the model's.
    dynamic: Option<String>,
}

fn step_code(i: usize, op: &Op, model: &Model, names: &Names) -> Result<StepCode, ExportError> {
    let mut dynamic = None;
    let call = match op {
        Op::Memfd {
            obj,
            size,
            anon: true,
        } => format!("\terr = anon_create(&obj_{obj}, {size:#x});\n"),
        Op::Memfd { obj, size, .. } => format!(
            "\tobj_{obj}.fd = memfd_create(\"shmemfuzz-{obj}\", MFD_CLOEXEC);\n\
             \terr = obj_{obj}.fd < 0 ? errno : SYS(ftruncate(obj_{obj}.fd, {size:#x}));\n"
        ),
        Op::Tmpfs { obj, size, .. } => format!(
            "\tobj_{obj}.fd = open(TMPFS_DIR \"/{obj}\", O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);\n\
             \terr = obj_{obj}.fd < 0 ? errno : SYS(ftruncate(obj_{obj}.fd, {size:#x}));\n"
        ),
        Op::Ftruncate { obj, size } => {
            format!("\terr = SYS(ftruncate(obj_{obj}.fd, {size:#x}));\n")
        }
        Op::Write {
            obj,
            off,
            len,
            seed,
        } => format!("\terr = write_pattern(obj_{obj}.fd, {off:#x}, {len:#x}, {seed});\n"),
        Op::Corrupt {
            obj,
            off,
            len,
            seed,
        } => format!(
            "\t/* test only: written behind the model's back, so a later read must differ */\n\
             \terr = write_pattern(obj_{obj}.fd, {off:#x}, {len:#x}, {seed});\n"
        ),
        Op::Check { obj, off, len } => {
            let expected = model.expected_read(obj, *off, *len);
            if expected.is_empty() {
                format!(
                    "\t/* the range lies past end-of-file: nothing may be read */\n\
                     \terr = check_file(&obj_{obj}, {off:#x}, {len:#x}, NULL, 0);\n"
                )
            } else {
                let segs = segments(&expected, *off, &names.seeds)
                    .ok_or_else(|| op_error(i, op, "internal: no pattern explains the model's bytes"))?;
                let mut s = String::from("\t{\n");
                s.push_str(&seg_table(&segs));
                let _ = writeln!(
                    s,
                    "\t\terr = check_file(&obj_{obj}, {off:#x}, {len:#x}, want, ARRAY_SIZE(want));\n\t}}"
                );
                s
            }
        }
        Op::Punch { obj, off, len } => format!(
            "\terr = SYS(fallocate(obj_{obj}.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, {off:#x}, {len:#x}));\n"
        ),
        Op::Mmap {
            map,
            obj,
            off,
            len,
            kind,
        } => match kind {
            MapKind::Gem => format!("\terr = gem_mmap(&map_{map});\n"),
            MapKind::Shared | MapKind::Private if names.anon.contains(obj) => format!(
                "\terr = anon_map(&map_{map}, {});\n",
                u8::from(*kind == MapKind::Shared)
            ),
            MapKind::Shared | MapKind::Private => {
                let flag = if *kind == MapKind::Shared {
                    "MAP_SHARED"
                } else {
                    "MAP_PRIVATE"
                };
                format!(
                    "\tmap_{map}.addr = mmap(NULL, {len:#x}, PROT_READ | PROT_WRITE, {flag}, obj_{obj}.fd, {off:#x});\n\
                     \terr = mapped(&map_{map});\n"
                )
            }
        },
        Op::Munmap { map } => format!("\terr = unmap(&map_{map});\n"),
        Op::Touch {
            map,
            off,
            len,
            mode,
        } => match model.touch_plan(map, *off, *len, *mode) {
            TouchPlan::Skip => "\t/* not performed: a page of the range starts at or past end-of-file, so the\n\t * access would raise SIGBUS (the model expects it skipped) */\n".to_string(),
            TouchPlan::Write { len: n, seed } => {
                let clip = if n < *len {
                    format!("\t/* only the {n:#x} bytes below end-of-file are written */\n")
                } else {
                    String::new()
                };
                format!("{clip}\terr = touch_write(&map_{map}, {off:#x}, {n:#x}, {seed});\n")
            }
            TouchPlan::Read { expected } => {
                let file_lo = model.maps.get(map).map_or(0, |m| m.off) + off;
                let segs = segments(&expected, file_lo, &names.seeds)
                    .ok_or_else(|| op_error(i, op, "internal: no pattern explains the model's bytes"))?;
                let mut s = String::from("\t{\n");
                s.push_str(&seg_table(&segs));
                let _ = writeln!(
                    s,
                    "\t\terr = touch_read(&map_{map}, {off:#x}, {len:#x}, want, ARRAY_SIZE(want));\n\t}}"
                );
                s
            }
        },
        Op::Madvise {
            map,
            off,
            len,
            advice,
        } => format!(
            "\terr = advise(&map_{map}, {off:#x}, {len:#x}, {});\n",
            advice_c(*advice)
        ),
        Op::Reclaim { bytes } => {
            format!("\terr = write_file(CGROUP \"/memory.reclaim\", \"{bytes}\");\n")
        }
        Op::Swapon { dev, prio } => {
            let flags = match prio {
                Some(p) if *p >= 0 => format!("SWAP_FLAG_PREFER | {p}"),
                _ => "0".into(),
            };
            dynamic = Some(format!("\texpect_swapon({dev}, err);\n"));
            format!("\terr = SYS(swapon(swap_dev[{dev}], {flags}));\n")
        }
        Op::Swapoff { dev } => {
            dynamic = Some(format!("\texpect_swapoff({dev}, err);\n"));
            format!("\terr = SYS(swapoff(swap_dev[{dev}]));\n")
        }
        Op::Unlink { obj } => format!("\terr = SYS(unlink(TMPFS_DIR \"/{obj}\"));\n"),
        Op::Close { obj } => format!("\terr = close_obj(&obj_{obj});\n"),
        Op::Gem { obj, size, pinned } => {
            if *pinned {
                dynamic = Some(format!("\texpect_gem_pinned(&obj_{obj}, err);\n"));
            }
            let flags = if *pinned { "GEM_PINNED" } else { "0" };
            format!("\terr = gem_create(&obj_{obj}, {size:#x}, {flags});\n")
        }
        Op::Dma32 { obj } => format!("\terr = set_dma32(&obj_{obj});\n"),
        Op::Pin { obj } => {
            dynamic = Some(format!("\texpect_pin(&obj_{obj}, err);\n"));
            format!("\terr = gem_pin(&obj_{obj});\n")
        }
        Op::Unpin { obj } => {
            dynamic = Some(format!("\texpect_unpin(&obj_{obj}, err);\n"));
            format!("\terr = gem_unpin(&obj_{obj});\n")
        }
        Op::Zonecheck { obj } => format!(
            "\terr = obj_{obj}.fd < 0 ? EBADF : 0;\t/* end_step() reads all its pages */\n"
        ),
        // The copy keeps every descriptor and mapping of the program: enough to keep the
        // object's pages alive after the program, which is what the test wants.
        Op::Hold { .. } => "\terr = hold_forever();\n".to_string(),
        Op::Sysrq { key } => format!(
            "\terr = write_file(\"/proc/sysrq-trigger\", {});\n",
            c_string(&key.to_string())
        ),
        Op::Thp {
            mode,
            size: Some(s),
        } => format!(
            "\terr = set_thp_size({}, \"{}\");\n",
            s >> 10,
            mode.keyword()
        ),
        Op::Thp { mode, size: None } => format!(
            "\terr = set_thp(\"{}\", {});\n",
            mode.keyword(),
            u8::from(!matches!(mode, ThpMode::Never | ThpMode::Deny))
        ),
        Op::Khugepaged => "\terr = khugepaged_pass();\n".to_string(),
        Op::Compact => "\terr = write_file(\"/proc/sys/vm/compact_memory\", \"1\");\n".to_string(),
        Op::Mbind {
            map,
            off,
            len,
            node,
            flags,
        } => {
            let mut f: Vec<&str> = flags
                .words()
                .map(|w| match w {
                    "move" => "MPOL_MF_MOVE_",
                    "move-all" => "MPOL_MF_MOVE_ALL_",
                    _ => "MPOL_MF_STRICT_",
                })
                .collect();
            if f.is_empty() {
                f.push("0");
            }
            format!(
                "\terr = do_mbind(&map_{map}, {off:#x}, {len:#x}, {node}, {});\n",
                f.join(" | ")
            )
        }
        Op::MovePages {
            map,
            off,
            len,
            node,
        } => format!("\terr = do_move_pages(&map_{map}, {off:#x}, {len:#x}, {node});\n"),
        Op::MigratePages { from, to } => format!("\terr = do_migrate_pages({from}, {to});\n"),
        Op::Offline { obj, page } => format!("\terr = offline_block(&obj_{obj}, {page});\n"),
        Op::Online => "\terr = online_all();\n".to_string(),
        Op::Hugetlb { size_kb, count } => format!("\terr = hugetlb_pool({size_kb}, {count});\n"),
        Op::Threads
        | Op::Thread { .. }
        | Op::Join
        | Op::Delay { .. }
        | Op::Spin { .. }
        | Op::Mount { .. }
        | Op::Umount { .. } => unreachable!("refused by collect (not_exported)"),
    };
    Ok(StepCode { call, dynamic })
}

/// Splits `expected` (the bytes at file offsets `base..`) into ranges of one pattern seed
/// (among `seeds`) or zeros, each as long as possible; where two ranges could meet at any of
/// several offsets (their bytes agree there), at the most aligned one. `None` if some byte
/// fits no candidate. The ranges regenerate `expected` exactly (checked).
fn segments(expected: &[u8], base: u64, seeds: &[u32]) -> Option<Vec<Seg>> {
    let candidates: Vec<Option<u32>> = std::iter::once(None)
        .chain(seeds.iter().copied().map(Some))
        .collect();
    let byte_of = |c: Option<u32>, pos: usize| c.map_or(0, |s| pattern::byte(s, base + pos as u64));
    let mut segs: Vec<Seg> = Vec::new();
    let mut pos = 0usize;
    while pos < expected.len() {
        let (best, run) = candidates
            .iter()
            .map(|&c| (c, run_len(expected, base, pos, c)))
            .fold((None, 0), |acc, x| if x.1 > acc.1 { x } else { acc });
        if run == 0 {
            return None;
        }
        let mut start = pos;
        if let Some(last) = segs.last_mut() {
            let last_lo = (last.lo - base) as usize;
            let mut q = pos;
            while q > last_lo + 1 && byte_of(best, q - 1) == expected[q - 1] {
                q -= 1;
            }
            start = (q..=pos)
                .max_by_key(|&b| (base + b as u64).trailing_zeros())
                .unwrap_or(pos);
            last.hi = base + start as u64;
        }
        segs.push(Seg {
            lo: base + start as u64,
            hi: base + (pos + run) as u64,
            seed: best,
        });
        pos += run;
    }
    let mut again = vec![0u8; expected.len()];
    for g in &segs {
        let r = (g.lo - base) as usize..(g.hi - base) as usize;
        if let Some(seed) = g.seed {
            pattern::fill(seed, g.lo, &mut again[r]);
        }
    }
    (again == expected).then_some(segs)
}

/// How many bytes of `expected` from `pos` on the candidate (a seed, or zeros) explains.
fn run_len(expected: &[u8], base: u64, pos: usize, cand: Option<u32>) -> usize {
    let mut buf = vec![0u8; 1 << 16];
    let (mut n, mut chunk) = (0usize, 64usize);
    while pos + n < expected.len() {
        let c = chunk.min(expected.len() - pos - n);
        let gen = &mut buf[..c];
        match cand {
            Some(seed) => pattern::fill(seed, base + (pos + n) as u64, gen),
            None => gen.fill(0),
        }
        let want = &expected[pos + n..pos + n + c];
        if let Some(k) = want.iter().zip(gen.iter()).position(|(a, b)| a != b) {
            return n + k;
        }
        n += c;
        chunk = (chunk * 2).min(buf.len());
    }
    n
}

#[cfg(test)]
mod tests;
