//! Differential test of the content model: extents of seeded patterns must agree with a
//! naive byte array for every write, punch, truncate and read of a decoded program.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use shmemfuzz_core::oracle::{pattern, Model};
use shmemfuzz_core::program::{Op, Program};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Program::arbitrary(&mut Unstructured::new(data)) else {
        return;
    };
    let mut model = Model::new(vec![true, false]);
    let mut naive: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for op in &p.ops {
        model.apply(op);
        match op {
            Op::Memfd { obj, size, .. }
            | Op::Tmpfs { obj, size, .. }
            | Op::Gem { obj, size, .. } => {
                naive.insert(obj.clone(), vec![0; *size as usize]);
            }
            Op::Ftruncate { obj, size } => {
                naive.get_mut(obj).expect("live").resize(*size as usize, 0)
            }
            Op::Write {
                obj,
                off,
                len,
                seed,
            } => {
                let b = naive.get_mut(obj).expect("live");
                let end = (off + len) as usize;
                if b.len() < end {
                    b.resize(end, 0);
                }
                pattern::fill(*seed, *off, &mut b[*off as usize..end]);
            }
            Op::Punch { obj, off, len } => {
                let b = naive.get_mut(obj).expect("live");
                let end = ((off + len) as usize).min(b.len());
                if (*off as usize) < end {
                    b[*off as usize..end].fill(0);
                }
            }
            Op::Check { obj, off, len } => {
                let b = &naive[obj];
                let lo = (*off as usize).min(b.len());
                let hi = ((off + len) as usize).min(b.len());
                assert_eq!(
                    model.expected_read(obj, *off, *len),
                    b[lo..hi].to_vec(),
                    "{op}"
                );
            }
            _ => {}
        }
    }
});
