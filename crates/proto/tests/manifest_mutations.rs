//! The manifest decoders under seeded mutations (what `fuzz/fuzz_targets/manifest.rs` does with
//! libFuzzer, here on every test run): valid manifests and answers with bytes flipped, cut or
//! inserted, fed in random splits. Nothing panics; an assembled manifest never holds more than
//! it announced, nor more than the cap.

use bytes::Bytes;
use yilian_proto::{
    encode_manifest, encode_manifest_reply, FrameDecoder, ManifestAnswer, ManifestAssembler,
    ManifestPart, ManifestReply, Request,
};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    for _ in 0..1 + rng.below(4) {
        if bytes.is_empty() {
            break;
        }
        let i = rng.below(bytes.len());
        match rng.below(4) {
            0 => bytes[i] ^= 1 << rng.below(8),
            1 => bytes[i] = rng.next() as u8,
            2 => bytes.truncate(i),
            _ => bytes.insert(i, rng.next() as u8),
        }
    }
    bytes
}

fn feed(d: &mut FrameDecoder, rng: &mut Rng, bytes: &[u8]) {
    let cut = rng.below(bytes.len() + 1);
    d.push(Bytes::copy_from_slice(&bytes[..cut]));
    d.push(Bytes::copy_from_slice(&bytes[cut..]));
}

#[test]
fn mutated_manifests_and_answers_never_panic_nor_grow_past_their_cap() {
    let mut rng = Rng(0x5eed_1234_5678_9abc);
    let uids: Vec<String> = (0..2000).map(|i| format!("1.2.826.0.1.{i}")).collect();
    for round in 0..3000 {
        let n = 1 + rng.below(uids.len());
        let manifest: Vec<u8> = encode_manifest("1.2.3", &uids[..n])
            .iter()
            .flat_map(|f| f.to_vec())
            .collect();
        let bytes = mutate(&mut rng, manifest);
        let mut d = FrameDecoder::new();
        feed(&mut d, &mut rng, &bytes);
        let cap = 1 + rng.below(3000) as u32;
        if let Ok(Some(Request::Manifest(h))) = d.next_frame::<Request>("request") {
            let announced = h.instances;
            if let Ok(mut asm) = ManifestAssembler::new(h, cap) {
                while let Ok(Some(p)) = d.next_frame::<ManifestPart>("part") {
                    match asm.push(p) {
                        Ok(true) | Err(_) => break,
                        Ok(false) => {}
                    }
                }
                let (_, got) = asm.into_parts();
                assert!(got.len() as u32 <= announced.min(cap), "round {round}");
            }
        }

        let missing = &uids[..rng.below(n)];
        let answer: Vec<u8> = encode_manifest_reply(
            missing,
            &ManifestReply::Pending {
                missing: missing.len() as u32,
            },
        )
        .iter()
        .flat_map(|f| f.to_vec())
        .collect();
        let bytes = mutate(&mut rng, answer);
        let mut d = FrameDecoder::new();
        feed(&mut d, &mut rng, &bytes);
        let mut a = ManifestAnswer::default();
        while let Ok(Some(r)) = d.next_frame::<ManifestReply>("reply") {
            match a.push(r) {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) => {}
            }
        }
    }
}
