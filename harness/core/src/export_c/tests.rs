use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::program::parse;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn uapi_dir() -> PathBuf {
    root().join("kernels/gma500_mock/include/uapi")
}

fn uapi_text() -> String {
    std::fs::read_to_string(uapi_dir().join(UAPI_HEADER)).expect("the uapi header")
}

fn examples() -> Vec<(String, Program)> {
    let mut out: Vec<(String, Program)> = std::fs::read_dir(root().join("examples"))
        .expect("examples/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "prog"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read example");
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let prog = parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, prog)
        })
        // Threaded sections and program mounts have no C form (see `not_exported`).
        .filter(|(_, prog)| prog.ops.iter().all(|op| not_exported(op).is_none()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 6, "examples found: {}", out.len());
    out
}

fn inline_opts() -> ExportOptions {
    ExportOptions {
        inline_uapi: Some(uapi_text()),
        ..ExportOptions::default()
    }
}

/// A scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("shmemfuzz-export-c-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "gcc".into())
}

/// Compiles `source` with `args`; panics with the compiler's output on failure.
fn compile(dir: &Path, name: &str, source: &str, args: &[&str]) -> PathBuf {
    let (src, exe) = (dir.join(format!("{name}.c")), dir.join(name));
    std::fs::write(&src, source).expect("write the C file");
    let out = match Command::new(cc())
        .args(args)
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{}` not found: install the Debian package `gcc` (this test compiles the exported \
             reproducers)",
            cc()
        ),
        Err(e) => panic!("cannot run `{}`: {e}", cc()),
    };
    assert!(
        out.status.success(),
        "{name}.c does not compile ({}):\n{}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

#[test]
fn every_example_has_one_step_comment_per_operation() {
    for (name, prog) in examples() {
        let c = export(&prog, &ExportOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (i, op) in prog.ops.iter().enumerate() {
            let comment = format!("\t/* op {i}: {op} */\n");
            assert_eq!(
                c.matches(&comment).count(),
                1,
                "{name}: no single step comment {comment:?}"
            );
            assert!(c.contains(&format!("\tstep({i}, \"{}\"", op.keyword())));
        }
        assert!(!c.contains(&format!("/* op {}:", prog.ops.len())), "{name}");
        let uses_drm = prog.ops.iter().any(|op| op.uses_drm());
        assert_eq!(
            c.contains("#include \"gma500_mock_drm.h\""),
            uses_drm,
            "{name}: the uapi header exactly when the program uses the driver"
        );
        assert!(c.contains("gcc -static -O2 -o repro repro.c"), "{name}");
    }
}

#[test]
fn every_example_compiles_static_with_warnings_as_errors() {
    let dir = scratch("examples");
    for (name, prog) in examples() {
        let stem = name.trim_end_matches(".prog").replace('-', "_");
        let mut opts = inline_opts();
        opts.source = Some(name.clone());
        opts.signature = Some("zone:memfd:touch:Normal".into());
        let c = export(&prog, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            !c.contains("#include \"gma500_mock_drm.h\""),
            "{name}: inlined"
        );
        compile(
            &dir,
            &stem,
            &c,
            &["-static", "-O2", "-Wall", "-Wextra", "-Werror"],
        );
        // And with the header next to it instead of inlined.
        let c = export(&prog, &ExportOptions::default()).expect("export");
        let include = format!("-I{}", uapi_dir().display());
        compile(
            &dir,
            &format!("{stem}_inc"),
            &c,
            &["-O2", "-Wall", "-Werror", &include],
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn c_pattern_matches_rust_pattern_fill() {
    let cases: &[(u32, u64, usize)] = &[
        (0, 0, 64),
        (1, 0, 37),
        (1, 1, 37),
        (42, 7, 20),
        (42, 4095, 9),
        (9, 1 << 33, 17),
        (u32::MAX, (1 << 40) + 3, 29),
        (123_456_789, 0x3_0da4, 300),
    ];
    let mut c = String::from("#include <stddef.h>\n#include <stdint.h>\n#include <stdio.h>\n\n");
    c.push_str(pattern_source());
    c.push_str("\nint main(void)\n{\n\tunsigned char buf[512];\n\tsize_t i;\n\n");
    for (seed, off, len) in cases {
        let _ = write!(
            c,
            "\tpattern_fill({seed}U, {off}ULL, buf, {len});\n\
             \tfor (i = 0; i < {len}; i++)\n\t\tprintf(\"%02x\", buf[i]);\n\tprintf(\"\\n\");\n"
        );
    }
    c.push_str("\treturn 0;\n}\n");
    let dir = scratch("pattern");
    let exe = compile(&dir, "pattern", &c, &["-O2", "-Wall", "-Wextra", "-Werror"]);
    let run = Command::new(&exe)
        .output()
        .expect("run the pattern program");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(run.status.success());
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), cases.len());
    for ((seed, off, len), line) in cases.iter().zip(lines) {
        let mut buf = vec![0u8; *len];
        pattern::fill(*seed, *off, &mut buf);
        let want: String = buf.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(line, want, "seed {seed} off {off} len {len}");
    }
}

fn model_bytes(writes: &[(u64, u64, u32)], size: u64) -> Vec<u8> {
    let mut o = crate::oracle::model::ObjectModel::new(size);
    for &(off, len, seed) in writes {
        o.write(off, len, seed);
    }
    let mut buf = vec![0u8; size as usize];
    o.fill(0, &mut buf);
    buf
}

#[test]
fn segments_follow_the_writes() {
    let bytes = model_bytes(
        &[(0, 8192, 1), (100, 200_000, 2), (300_000, 4096, 1)],
        400_000,
    );
    let segs = segments(&bytes, 0, &[1, 2]).expect("explained");
    let plain: Vec<(u64, u64, Option<u32>)> = segs.iter().map(|s| (s.lo, s.hi, s.seed)).collect();
    assert_eq!(
        plain,
        vec![
            (0, 100, Some(1)),
            (100, 200_100, Some(2)),
            (200_100, 300_000, None),
            (300_000, 304_096, Some(1)),
            (304_096, 400_000, None),
        ]
    );
    // An offset base and a range that starts inside a write.
    let segs = segments(&bytes[150..9000], 150, &[2, 1]).expect("explained");
    assert_eq!(segs.len(), 1);
    assert_eq!((segs[0].lo, segs[0].hi, segs[0].seed), (150, 9000, Some(2)));
    // Bytes no seed explains.
    assert_eq!(segments(&[7, 7, 7], 0, &[1]), None);
}

#[test]
fn segment_boundaries_are_put_at_the_most_aligned_offset() {
    // Whatever the seeds, the boundary between two writes lands where the writes meet, even
    // when the neighbouring pattern bytes happen to agree with the other seed's.
    for seed in 1..200u32 {
        let bytes = model_bytes(&[(0, 4096, seed), (4096, 4096, seed + 1000)], 8192);
        let segs = segments(&bytes, 0, &[seed, seed + 1000]).expect("explained");
        assert_eq!(segs.len(), 2, "seed {seed}");
        assert_eq!(segs[0].hi, 4096, "seed {seed}");
    }
}

fn prog(text: &str) -> Program {
    parse(text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn private_mappings_and_truncation_are_exported_from_the_model() {
    let p = prog(
        "tmpfs t0 size=64K\nwrite t0 off=0 len=64K seed=1\nmmap p0 t0 off=0 len=64K private\n\
         touch p0 off=4K len=4K write seed=2\nwrite t0 off=0 len=64K seed=3\n\
         touch p0 off=0 len=12K read\nftruncate t0 size=6000\ntouch p0 off=0 len=8K read\n\
         touch p0 off=0 len=12K read\ncheck t0 off=0 len=64K\n",
    );
    let c = export(&p, &ExportOptions::default()).expect("export");
    // The private copy of page 1 keeps seed 2; the file's pages show seed 3.
    assert!(c.contains(
        "\t\t\tPATTERN(0x0, 0x1000, 3),\n\t\t\tPATTERN(0x1000, 0x2000, 2),\n\t\t\tPATTERN(0x2000, 0x3000, 3),\n"
    ));
    // After truncation to 6000 bytes: the tail of page 1 reads zero; page 2 would fault.
    assert!(c.contains("\t\t\tPATTERN(0x0, 0x1000, 3),\n\t\t\tPATTERN(0x1000, 0x2000, 2),\n\t\t};\n\n\t\terr = touch_read(&map_p0, 0x0, 0x2000"));
    assert!(c.contains("raise SIGBUS (the model expects it skipped) */\n\tskipped();"));
    // check: clipped at end-of-file.
    assert!(c.contains(
        "\t\t\tPATTERN(0x0, 0x1770, 3),\n\t\t};\n\n\t\terr = check_file(&obj_t0, 0x0, 0x10000"
    ));
    assert!(c.contains("\tsetup_tmpfs();\n"));
    assert!(!c.contains("setup_card();"));
    assert!(c.contains("\tend_op();\n"));
}

#[test]
fn expectations_follow_the_model_and_earlier_outcomes() {
    let p = prog(
        "gem g0 size=64K pinned\nmmap vg g0 off=0 len=64K gem\nmadvise vg off=0 len=64K pageout\n\
         madvise vg off=0 len=64K remove\nunpin g0\nunpin g0\npin g0\nreclaim 1M\n\
         swapon swap0\nswapon swap1 prio=3\nswapoff swap1\nmemfd m0 size=4K\ndma32 m0\n\
         zonecheck m0\nclose g0\n",
    );
    let c = export(&p, &ExportOptions::default()).expect("export");
    for want in [
        "\terr = gem_create(&obj_g0, 0x10000, GEM_PINNED);\n\texpect_gem_pinned(&obj_g0, err);\n",
        "\terr = gem_mmap(&map_vg);\n\texpect_ok(err);\n",
        "MADV_PAGEOUT);\n\texpect_errno(err, EINVAL);\n",
        "MADV_REMOVE);\n\texpect_errno(err, ENODEV);\n",
        "\terr = gem_unpin(&obj_g0);\n\texpect_unpin(&obj_g0, err);\n",
        "\terr = gem_pin(&obj_g0);\n\texpect_pin(&obj_g0, err);\n",
        "\terr = write_file(CGROUP \"/memory.reclaim\", \"1048576\");\n\texpect_ok_or(err, EAGAIN);\n",
        "\terr = SYS(swapon(swap_dev[0], 0));\n\texpect_swapon(0, err);\n",
        "\terr = SYS(swapon(swap_dev[1], SWAP_FLAG_PREFER | 3));\n\texpect_swapon(1, err);\n",
        "\terr = SYS(swapoff(swap_dev[1]));\n\texpect_swapoff(1, err);\n",
        "\terr = set_dma32(&obj_m0);\n",
        "\tend_step(&obj_m0);\n",
        "\terr = close_obj(&obj_g0);\n",
        "static struct obj *const objects[] = { &obj_g0, &obj_m0, NULL };",
        ".kind = \"gem\", .fd = -1, .constrained = 1",
        "\tsetup_card();\n",
    ] {
        assert!(c.contains(want), "missing {want:?}");
    }
    let dir = scratch("expectations");
    let opts = inline_opts();
    compile(
        &dir,
        "expectations",
        &export(&p, &opts).expect("export"),
        &["-static", "-O2", "-Wall", "-Wextra", "-Werror"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn test_only_operations_need_permission_and_swap_devices_must_exist() {
    let p = prog("memfd m0 size=4K\ncorrupt m0 off=0 len=4K seed=9\nsysrq w\n");
    let err = export(&p, &ExportOptions::default()).expect_err("refused");
    assert_eq!(
        err,
        ExportError::Op {
            index: 1,
            op: "corrupt m0 off=0 len=4K seed=9".into(),
            why: "`corrupt` is a test-only operation: pass --allow-test-ops to export it".into(),
        }
    );
    let opts = ExportOptions {
        allow_test_ops: true,
        ..inline_opts()
    };
    let c = export(&p, &opts).expect("allowed");
    assert!(c.contains("\terr = write_file(\"/proc/sysrq-trigger\", \"w\");\n"));
    let dir = scratch("testops");
    compile(&dir, "testops", &c, &["-O2", "-Wall", "-Werror"]);
    let _ = std::fs::remove_dir_all(&dir);

    let p = prog("swapon swap1\n");
    let one = ExportOptions {
        swap_devices: vec!["/dev/vda".into()],
        ..ExportOptions::default()
    };
    let err = export(&p, &one).expect_err("no swap1");
    assert!(
        matches!(&err, ExportError::Op { index: 0, op, .. } if op == "swapon swap1"),
        "{err}"
    );
    let none = ExportOptions {
        swap_devices: Vec::new(),
        ..ExportOptions::default()
    };
    assert!(matches!(export(&p, &none), Err(ExportError::Options(_))));
}

#[test]
fn header_names_the_signature_and_is_comment_safe() {
    let mut p = prog("memfd m0 size=4K\ncheck m0 off=0 len=4K\n");
    p.notes = vec![vec!["# tricky */ comment /* here".into()]];
    let opts = ExportOptions {
        signature: Some("zone:memfd:touch:Normal".into()),
        source: Some("x.prog".into()),
        kernel: Some("6.1.192-shmemfuzz, shmem.planted_no_replace=1".into()),
        ..ExportOptions::default()
    };
    let c = export(&p, &opts).expect("export");
    assert!(c.starts_with("/*\n * shmemfuzz reproducer of x.prog\n"));
    assert!(c.contains(" * Reproduces: zone:memfd:touch:Normal\n"));
    assert!(c.contains("#define EXPECTED_SIGNATURE \"zone:memfd:touch:Normal\"\n"));
    assert!(c.contains("tricky * / comment / * here"));
    assert!(!c.contains("tricky */"));
    // An empty program still compiles.
    let dir = scratch("header");
    compile(
        &dir,
        "empty",
        &export(&Program::default(), &inline_opts()).expect("export"),
        &["-O2", "-Wall", "-Wextra", "-Werror"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn c_strings_are_escaped() {
    assert_eq!(c_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
    assert_eq!(c_string("é"), "\"\\303\\251\"");
}

#[test]
fn the_guest_init_compiles_static() {
    let dir = scratch("init");
    compile(
        &dir,
        "init",
        guest_init_source(),
        &["-static", "-O2", "-Wall", "-Wextra", "-Werror"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn threaded_programs_are_refused_with_the_operation() {
    let prog = parse("memfd m0 size=4K\nthreads\nthread a\n  close m0\njoin\n").expect("valid");
    let e = export(&prog, &ExportOptions::default()).expect_err("refused");
    let text = e.to_string();
    assert!(
        text.contains("op 1 `threads`") && text.contains("no C form"),
        "{text}"
    );
    let prog = parse("mount f0\n").expect("valid");
    assert!(export(&prog, &ExportOptions::default()).is_err());
}

#[test]
fn pieces_are_named_once_and_need_only_earlier_pieces() {
    let all = pieces::all();
    assert!(all.len() > 30, "{} pieces", all.len());
    for (i, p) in all.iter().enumerate() {
        assert!(!p.text.trim().is_empty(), "piece {} is empty", p.name);
        assert_eq!(
            all.iter().filter(|q| q.name == p.name).count(),
            1,
            "piece {} named twice",
            p.name
        );
        for need in &p.needs {
            let j = all.iter().position(|q| &q.name == need);
            assert!(
                j.is_some_and(|j| j < i),
                "piece {} needs {need}, which is not a piece before it",
                p.name
            );
        }
    }
}

#[test]
fn identifiers_skip_comments_and_strings() {
    let ids = pieces::identifiers("a /* zones */ b(\"card \\\" x\", 'c') // core\n0x1f _d9");
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(ids, ["_d9", "a", "b"]);
}

/// Programs beyond the examples, together using every operation kind the C form has.
fn extra_programs() -> Vec<(String, Program)> {
    vec![
        ("empty".into(), Program::default()),
        (
            "memfd-only".into(),
            prog("memfd m0 size=4K\nwrite m0 off=0 len=4K seed=1\ncheck m0 off=0 len=4K\n"),
        ),
        (
            "test-ops".into(),
            prog("memfd m0 size=4K\ncorrupt m0 off=0 len=4K seed=9\nsysrq w\nhold m0\n"),
        ),
        (
            "errnos".into(),
            prog(
                "gem g0 size=64K pinned\nmmap vg g0 off=0 len=64K gem\nunpin g0\nunpin g0\n\
                 pin g0\nswapon swap1 prio=3\nswapoff swap1\ntmpfs t0 size=8K\nunlink t0\n\
                 mmap p0 t0 off=0 len=8K private\nftruncate t0 size=100\n\
                 touch p0 off=4K len=4K read\npunch t0 off=0 len=4K\n\
                 madvise p0 off=0 len=8K nohugepage\nmunmap p0\nclose g0\n",
            ),
        ),
    ]
}

/// Exports with `opts` (test-only operations allowed), panicking with the program's name.
fn export_named(name: &str, p: &Program, opts: &ExportOptions) -> String {
    let opts = ExportOptions {
        allow_test_ops: true,
        ..opts.clone()
    };
    export(p, &opts).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_piece_is_compiled_by_some_program() {
    // The compile tests see every piece: a piece with an incomplete `needs:` fails them with
    // an undeclared name, one pulled in without a use with an unused function.
    let all = pieces::all();
    let mut seen = vec![false; all.len()];
    for (name, p) in examples().into_iter().chain(extra_programs()) {
        let c = export_named(&name, &p, &ExportOptions::default());
        for (i, piece) in all.iter().enumerate() {
            seen[i] |= c.contains(&piece.text);
        }
    }
    let unseen: Vec<&str> = all
        .iter()
        .zip(&seen)
        .filter(|(_, s)| !**s)
        .map(|(p, _)| p.name.as_str())
        .collect();
    assert!(unseen.is_empty(), "pieces no program uses: {unseen:?}");
}

#[test]
fn extra_programs_compile_in_both_forms_with_warnings_as_errors() {
    let dir = scratch("extra");
    for (name, p) in extra_programs() {
        for kselftest in [false, true] {
            let opts = ExportOptions {
                kselftest,
                ..inline_opts()
            };
            let c = export_named(&name, &p, &opts);
            let stem = format!("{}_{}", name.replace('-', "_"), u8::from(kselftest));
            compile(&dir, &stem, &c, &["-O2", "-Wall", "-Wextra", "-Werror"]);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reproducers_carry_only_what_they_use() {
    let p = prog("memfd m0 size=4K\nwrite m0 off=0 len=4K seed=1\ncheck m0 off=0 len=4K\n");
    let c = export(&p, &inline_opts()).expect("export");
    for absent in [
        "gma500_mock_drm.h",
        "open_card",
        "zone_step",
        "touch_read",
        "khugepaged_pass",
        "objects[]",
        "#pragma GCC diagnostic",
    ] {
        assert!(
            !c.contains(absent),
            "{absent} in a memfd-only reproducer:\n{c}"
        );
    }
    for present in [
        "static int write_pattern(",
        "static int check_file(",
        "static void pattern_fill(",
        "\tend_op();\n",
    ] {
        assert!(c.contains(present), "{present} missing");
    }
    // main() comes last, after every helper it calls.
    let main_at = c.find("int main(void)").expect("main");
    assert!(c.rfind("\nstatic ").is_some_and(|s| s < main_at));
    // A 7-operation program: 647 lines, from 1538 when the whole runtime was pasted in.
    let lines = export(&example_named("pageout-roundtrip.prog"), &inline_opts())
        .expect("export")
        .lines()
        .count();
    assert!(lines < 700, "pageout-roundtrip exports to {lines} lines");
}

fn example_named(file: &str) -> Program {
    examples()
        .into_iter()
        .find(|(n, _)| n == file)
        .map(|(_, p)| p)
        .unwrap_or_else(|| panic!("no example {file}"))
}

/// `tools/testing/selftests/kselftest.h` of a kernel source tree in the shmemfuzz cache, if
/// there is one.
fn cached_kselftest_h() -> Option<PathBuf> {
    let cache = PathBuf::from(std::env::var_os("SHMEMFUZZ_CACHE")?);
    std::fs::read_dir(cache.join("src"))
        .ok()?
        .flatten()
        .map(|e| e.path().join("tools/testing/selftests/kselftest.h"))
        .find(|p| p.is_file())
}

#[test]
fn every_example_compiles_as_a_kselftest_standalone_and_in_tree() {
    let dir = scratch("kselftest");
    let in_tree = cached_kselftest_h().map(|h| {
        let mm = dir.join("selftests/mm");
        std::fs::create_dir_all(&mm).expect("mm/");
        std::fs::copy(&h, dir.join("selftests/kselftest.h")).expect("kselftest.h");
        mm
    });
    if in_tree.is_none() {
        eprintln!("no kernel source in $SHMEMFUZZ_CACHE/src: the in-tree build is not tried");
    }
    for (name, p) in examples() {
        let stem = name.trim_end_matches(".prog").replace('-', "_");
        let opts = ExportOptions {
            kselftest: true,
            signature: Some("zone:memfd:touch:Normal".into()),
            ..inline_opts()
        };
        let c = export(&p, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(c.contains(&format!("#define N_TESTS {}\t", p.ops.len() + 1)));
        assert!(c.contains("#include \"../kselftest.h\""));
        compile(
            &dir,
            &stem,
            &c,
            &["-static", "-O2", "-Wall", "-Wextra", "-Werror"],
        );
        if let Some(mm) = &in_tree {
            compile(mm, &stem, &c, &["-O2", "-Wall", "-Werror", "-c"]);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_kselftest_skips_with_the_reason_when_not_set_up() {
    // Run as nobody, it must skip before touching anything ("run this as root").
    let dir = scratch("skip");
    let p = prog("memfd m0 size=4K\nclose m0\n");
    let opts = ExportOptions {
        kselftest: true,
        ..inline_opts()
    };
    let exe = compile(&dir, "skip", &export(&p, &opts).expect("export"), &["-O2"]);
    let run = match Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&exe)
        .output()
    {
        Ok(run) => run,
        Err(e) => {
            eprintln!("setpriv not available ({e}): not run");
            return;
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    let out = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(4), "KSFT_SKIP:\n{out}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "TAP version 13",
            "1..0 # SKIP run this as root: Operation not permitted"
        ],
        "{out}"
    );
}
