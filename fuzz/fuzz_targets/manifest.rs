//! Manifests from an untrusted peer, both directions: the relay assembling a manifest's header
//! and parts, and a sender reading the relay's answer in pieces — arbitrary bytes in two
//! parts. Must never panic, and never hold more than the announced UIDs (bounded by the cap).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use yilian_proto::{
    FrameDecoder, ManifestAnswer, ManifestAssembler, ManifestPart, ManifestReply, Notice, Request,
};

fuzz_target!(|input: &[u8]| {
    let Some((&split, data)) = input.split_first() else { return };
    let cut = (split as usize).min(data.len());
    let (a, b) = data.split_at(cut);

    // The relay: a header, then parts, capped at 1,000 instances.
    let mut d = FrameDecoder::new();
    d.push(Bytes::copy_from_slice(a));
    d.push(Bytes::copy_from_slice(b));
    if let Ok(Some(Request::Manifest(h))) = d.next_frame::<Request>("request") {
        if let Ok(mut asm) = ManifestAssembler::new(h, 1000) {
            while let Ok(Some(part)) = d.next_frame::<ManifestPart>("part") {
                match asm.push(part) {
                    Ok(true) | Err(_) => break,
                    Ok(false) => {}
                }
            }
            let (_, uids) = asm.into_parts();
            assert!(uids.len() <= 1000);
        }
    }

    // The sender: reply pieces until the final one.
    let mut d = FrameDecoder::new();
    d.push(Bytes::copy_from_slice(data));
    let mut answer = ManifestAnswer::default();
    while let Ok(Some(r)) = d.next_frame::<ManifestReply>("reply") {
        match answer.push(r) {
            Ok(Some(_)) | Err(_) => break,
            Ok(None) => {}
        }
    }

    // A reader reading notices.
    let mut d = FrameDecoder::new();
    d.push(Bytes::copy_from_slice(data));
    while let Ok(Some(_)) = d.next_frame::<Notice>("notice") {}
});
