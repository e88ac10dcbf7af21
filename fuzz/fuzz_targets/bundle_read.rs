//! Reading a bundle never panics or hangs, whatever its files hold. The input is split on
//! `\0\0` into the manifest and the files it covers; when the manifest is a JSON object,
//! its `files` map is given the true sha256 of each part, so that the fuzzer gets past the
//! integrity check to the parsers behind it (records, outcome, program, consistency).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use shmemfuzz::bundle::{files, Bundle};

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("shmemfuzz-fuzz-bundle-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("a scratch directory");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0).filter(|p| !p.is_empty());
    let manifest = parts.next().unwrap_or_default();
    let dir = dir();
    let mut hashes = serde_json::Map::new();
    for name in files::CHECKED {
        let bytes = parts.next().unwrap_or_default();
        std::fs::write(dir.join(name), bytes).expect("scratch write");
        hashes.insert(
            name.to_string(),
            serde_json::Value::String(hex::encode(Sha256::digest(bytes))),
        );
    }
    let manifest = match serde_json::from_slice::<serde_json::Value>(manifest) {
        Ok(serde_json::Value::Object(mut m)) => {
            m.insert("files".into(), serde_json::Value::Object(hashes));
            serde_json::to_vec(&m).expect("re-serializes")
        }
        _ => manifest.to_vec(),
    };
    std::fs::write(dir.join(files::MANIFEST), manifest).expect("scratch write");
    let _ = Bundle::read(dir);
});
