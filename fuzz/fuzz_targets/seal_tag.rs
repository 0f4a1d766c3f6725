//! A sealed upload's tag, read back from its file's extended attribute at start
//! (`yilian_ingest::seal_tag`): arbitrary bytes (a damaged attribute) must give an error or a
//! tag, never a panic, and a compact tag that reads must write back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use yilian_ingest::seal_tag::{decode, encode};

fuzz_target!(|input: &[u8]| {
    if let Ok(tag) = decode(input) {
        let again = encode(&tag);
        assert_eq!(decode(&again).as_ref(), Ok(&tag));
        if input.first() == Some(&1) {
            assert_eq!(again, input);
        }
    }
});
