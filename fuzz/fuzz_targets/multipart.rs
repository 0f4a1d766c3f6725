//! STOW-RS bodies (`yilian_web::multipart`): arbitrary bytes as a `multipart/related` body with
//! a fixed boundary, read whole and in chunks of a size the first byte picks. Must never
//! panic, and both readings must give the same parts (headers and data) or the same error.
#![no_main]

use bytes::Bytes;
use futures_util::FutureExt;
use libfuzzer_sys::fuzz_target;
use yilian_web::multipart::{chunk_stream, collect_parts, MultipartError, PartHead};

fn read(chunks: Vec<Bytes>) -> Result<Vec<(PartHead, Vec<u8>)>, MultipartError> {
    collect_parts(chunk_stream(chunks), "b0undary")
        .now_or_never()
        .expect("a body in memory never waits")
}

fuzz_target!(|input: &[u8]| {
    let Some((&n, body)) = input.split_first() else { return };
    let whole = read(vec![Bytes::copy_from_slice(body)]);
    let size = usize::from(n).max(1);
    let chunked = read(body.chunks(size).map(Bytes::copy_from_slice).collect());
    assert_eq!(whole, chunked);
});
