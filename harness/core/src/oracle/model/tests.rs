use super::*;
use crate::program::parse;

fn run(text: &str) -> (Model, Vec<Expect>) {
    let p = parse(text).expect("valid program");
    let mut m = Model::new(vec![true, false]);
    let e = p.ops.iter().map(|op| m.apply(op)).collect();
    (m, e)
}

#[test]
fn writes_overlay_and_punch_zeroes() {
    let (m, _) = run("memfd a size=16K\nwrite a off=0 len=16K seed=1\nwrite a off=100 len=50 seed=2\npunch a off=8K len=4K\n");
    let got = m.expected_read("a", 0, 16384);
    let mut want = vec![0u8; 16384];
    pattern::fill(1, 0, &mut want);
    pattern::fill(2, 100, &mut want[100..150]);
    want[8192..12288].fill(0);
    assert_eq!(got, want);
}

#[test]
fn truncate_then_extend_reads_zero() {
    let (m, _) = run("memfd a size=8K\nwrite a off=0 len=8K seed=3\nftruncate a size=5000\nftruncate a size=8K\n");
    let got = m.expected_read("a", 0, 8192);
    assert!(got[5000..].iter().all(|&b| b == 0));
    assert_eq!(got[4999], pattern::byte(3, 4999));
}

#[test]
fn write_extends_size_and_read_clips() {
    let (m, _) = run("memfd a size=4K\nwrite a off=6000 len=100 seed=1\n");
    assert_eq!(m.objects["a"].size, 6100);
    assert_eq!(m.expected_read("a", 6000, 1000).len(), 100);
}

#[test]
fn private_writes_do_not_reach_the_file_and_dontneed_drops_them() {
    let (mut m, _) = run("memfd a size=8K\nwrite a off=0 len=8K seed=1\nmmap p a off=0 len=8K private\ntouch p off=10 len=20 write seed=9\n");
    assert_eq!(m.expected_read("a", 10, 1)[0], pattern::byte(1, 10));
    let TouchPlan::Read { expected } = m.touch_plan("p", 0, 8192, TouchMode::Read) else {
        panic!("not a read")
    };
    assert_eq!(expected[10], pattern::byte(9, 10));
    assert_eq!(expected[9], pattern::byte(1, 9));
    let advice = Op::Madvise {
        map: "p".into(),
        off: 0,
        len: 4096,
        advice: Advice::Dontneed,
    };
    assert_eq!(m.apply(&advice), Expect::Ok);
    let TouchPlan::Read { expected } = m.touch_plan("p", 0, 100, TouchMode::Read) else {
        panic!("not a read")
    };
    assert_eq!(expected[10], pattern::byte(1, 10));
}

#[test]
fn shared_touch_writes_the_file_clipped_at_eof() {
    let (m, e) = run(
        "memfd a size=5000\nmmap s a off=0 len=8K shared\ntouch s off=4090 len=4000 write seed=4\n",
    );
    assert_eq!(e[2], Expect::Ok);
    assert_eq!(m.objects["a"].size, 5000);
    assert_eq!(m.expected_read("a", 4090, 1)[0], pattern::byte(4, 4090));
}

#[test]
fn touch_past_eof_is_skipped() {
    let (_, e) =
        run("memfd a size=4K\nmmap s a off=0 len=8K shared\ntouch s off=4096 len=1 read\n");
    assert_eq!(e[2], Expect::Skip);
}

#[test]
fn remove_on_private_is_eacces_and_swap_state_is_tracked() {
    let (_, e) = run("memfd a size=4K\nmmap p a off=0 len=4K private\nmadvise p off=0 len=4K remove\nswapon swap0\nswapoff swap1\nswapon swap1 prio=3\nswapoff swap1\n");
    assert_eq!(e[2], Expect::Errno(errno::EACCES));
    assert_eq!(e[3], Expect::Errno(errno::EBUSY));
    assert_eq!(e[4], Expect::Errno(errno::EINVAL));
    assert_eq!(e[5], Expect::Ok);
    assert_eq!(e[6], Expect::OkOr(vec![errno::ENOMEM]));
}

#[test]
fn truncate_drops_private_copies_past_the_end() {
    let (m, _) = run("memfd a size=8K\nmmap p a off=0 len=8K private\ntouch p off=4096 len=10 write seed=2\nftruncate a size=4K\nftruncate a size=8K\n");
    let TouchPlan::Read { expected } = m.touch_plan("p", 4096, 10, TouchMode::Read) else {
        panic!("not a read")
    };
    assert!(expected.iter().all(|&b| b == 0));
}

#[test]
fn a_refused_swapoff_of_a_device_that_is_off_leaves_it_off() {
    // Found by `repro` on random fuzzer inputs: the model used to turn the device back on.
    let p = parse("swapoff swap1\nswapoff swap1\nswapon swap1\n").expect("valid");
    let mut m = Model::new(vec![true, false]);
    for (op, got) in p.ops.iter().zip([
        OpResult::Errno(errno::EINVAL),
        OpResult::Errno(errno::EINVAL),
        OpResult::Ok,
    ]) {
        let want = m.apply(op);
        assert!(
            want.allows(&got),
            "{op}: model expects {want}, kernel said {got}"
        );
        m.observe(op, &got);
    }
    let off = Op::Swapoff { dev: 0 };
    m.apply(&off);
    m.observe(&off, &OpResult::Errno(errno::ENOMEM));
    assert!(m.swap_on[0], "ENOMEM leaves the device on");
}

#[test]
fn umount_is_busy_while_a_file_on_it_is_open_or_mapped() {
    let p = crate::program::parse(
        "mount f0\ntmpfs t0 size=8K on=f0\nwrite t0 off=0 len=8K seed=3\nmmap v0 t0 off=0 len=8K shared\n\
         umount f0\nclose t0\numount f0\nmunmap v0\numount f0\n",
    )
    .expect("parses");
    let mut m = Model::new(vec![true]);
    let got: Vec<Expect> = p.ops.iter().map(|op| m.apply(op)).collect();
    let busy = Expect::Errno(errno::EBUSY);
    assert_eq!(got[4], busy, "open and mapped");
    assert_eq!(got[6], busy, "still mapped");
    assert_eq!(got[8], Expect::Ok);
    assert!(!m.objects.contains_key("t0"), "its files went with it");
}

#[test]
fn a_threaded_section_is_modelled_in_program_order() {
    let p = crate::program::parse(
        "memfd m0 size=8K\nwrite m0 off=0 len=8K seed=1\nthreads\nthread a\n  swapoff swap0\n\
         thread b\n  check m0 off=0 len=8K\n  close m0\njoin\nswapon swap0\n",
    )
    .expect("parses");
    let mut m = Model::new(vec![true]);
    let got: Vec<Expect> = p.ops.iter().map(|op| m.apply(op)).collect();
    assert_eq!(got[4], Expect::OkOr(vec![errno::ENOMEM]), "swapoff races");
    assert_eq!(got[6], Expect::Ok);
    assert_eq!(got[9], Expect::Ok, "swap0 is off after the join");
}

#[test]
fn a_detached_unmount_succeeds_and_open_files_keep_their_data() {
    let p = crate::program::parse(
        "mount f0\ntmpfs t0 size=8K on=f0\ntmpfs t1 size=8K on=f0\nwrite t0 off=0 len=8K seed=3\n\
         close t1\numount f0 detach\ncheck t0 off=0 len=8K\n",
    )
    .expect("parses");
    let mut m = Model::new(vec![true]);
    let got: Vec<Expect> = p.ops.iter().map(|op| m.apply(op)).collect();
    assert_eq!(got[5], Expect::Ok);
    assert!(!m.objects.contains_key("t1"), "closed: gone with the mount");
    assert_eq!(m.expected_read("t0", 0, 8192).len(), 8192, "open: kept");
}

/// `online` of a block holding soft-offlined pages is refused on 6.12 (EHWPOISON): a normal
/// outcome, as a Debian 6.12 campaign met it; an errno no kernel gives stays a finding.
#[test]
fn online_may_find_a_block_with_poisoned_pages() {
    use crate::protocol::{errno, OpResult};
    let (_, e) = run("online\n");
    assert!(e[0].allows(&OpResult::Errno(errno::EHWPOISON)));
    assert!(!e[0].allows(&OpResult::Errno(errno::EFAULT)));
    assert_eq!(errno::name(errno::EHWPOISON), "EHWPOISON");
}
