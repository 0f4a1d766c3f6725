//! A hostile client: raw QUIC and yilian/1 frames with a valid alliance certificate, for what
//! the normal client never does (declare another site's study, offer and reset in a loop,
//! leave an accepted upload idle, open streams the relay never accepts, squat a UID).
//!
//! It speaks the protocol's frames directly (`yilian_proto`), so every test states exactly
//! what crosses the wire.

use bytes::Bytes;
use std::time::Duration;
use yilian_proto::{
    encode_frame, encode_manifest, FrameDecoder, Hash, InstanceRef, ManifestAnswer,
    ManifestOutcome, ManifestReply, Offer, Reply,
};

use super::Pki;

/// How long the kit waits for an answer before calling it silence (a guard, not a timing
/// assertion: answers come within milliseconds on loopback).
pub const ANSWER: Duration = Duration::from_secs(20);

/// A connection to the relay at `addr` as `identity`.
pub struct Hostile {
    pub conn: quinn::Connection,
    _endpoint: quinn::Endpoint,
}

/// One upload stream opened by hand.
pub struct RawUpload {
    pub send: quinn::SendStream,
    pub recv: quinn::RecvStream,
    dec: FrameDecoder,
}

impl Hostile {
    pub async fn connect(addr: &str, pki: &Pki, identity: &str) -> Result<Hostile, String> {
        let tls = yilian_transport::TlsFiles {
            cert: pki.cert(identity),
            key: pki.key(identity),
            ca: pki.ca_path(),
        }
        .load()
        .map_err(|e| e.to_string())?;
        let ep =
            yilian_transport::client_endpoint(&tls, &yilian_transport::Tuning::default(), false)
                .map_err(|e| e.to_string())?;
        let (conn, _) = yilian_transport::connect(&ep, addr)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Hostile {
            conn,
            _endpoint: ep,
        })
    }

    /// Open a stream and send an offer for `(study, sop)` of `size` bytes.
    pub async fn offer(
        &self,
        study: &str,
        sop: &str,
        size: u64,
        hash: Option<Hash>,
        urgent: bool,
    ) -> RawUpload {
        let (mut send, recv) = self.conn.open_bi().await.expect("open a stream");
        let offer = yilian_proto::Request::Offer(Offer {
            instance: InstanceRef {
                study_uid: study.into(),
                sop_uid: sop.into(),
            },
            size,
            priority: u8::from(urgent),
            hash,
            facts: None,
        });
        send.write_all(&encode_frame(&offer))
            .await
            .expect("write the offer");
        RawUpload {
            send,
            recv,
            dec: FrameDecoder::new(),
        }
    }

    /// Send a manifest (in pieces) and read the whole answer.
    pub async fn manifest(&self, study: &str, sops: &[String]) -> ManifestOutcome {
        let (mut send, mut recv) = self.conn.open_bi().await.expect("open a stream");
        for f in encode_manifest(study, sops) {
            send.write_all(&f).await.expect("write the manifest");
        }
        send.finish().expect("finish");
        let mut d = FrameDecoder::new();
        let mut answer = ManifestAnswer::default();
        loop {
            while let Some(r) = d.next_frame::<ManifestReply>("reply").expect("a reply") {
                if let Some(o) = answer.push(r).expect("a consistent answer") {
                    return o;
                }
            }
            let chunk = tokio::time::timeout(ANSWER, recv.read_chunk(65536, true))
                .await
                .expect("an answer in time")
                .expect("readable");
            d.push(chunk.expect("not the end yet").bytes);
        }
    }
}

impl RawUpload {
    /// The next reply, or `None` if none comes within `wait` (or the stream ended).
    pub async fn reply_within(&mut self, wait: Duration) -> Option<Reply> {
        loop {
            if let Ok(Some(r)) = self.dec.next_frame::<Reply>("reply") {
                return Some(r);
            }
            match tokio::time::timeout(wait, self.recv.read_chunk(65536, true)).await {
                Ok(Ok(Some(c))) => self.dec.push(c.bytes),
                _ => return None,
            }
        }
    }

    /// The next reply (panics if none comes: the relay must always answer).
    pub async fn reply(&mut self) -> Reply {
        self.reply_within(ANSWER)
            .await
            .expect("the relay answered the offer")
    }

    /// The first reply that is not a checkpoint.
    pub async fn verdict(&mut self) -> Reply {
        loop {
            match self.reply().await {
                Reply::Checkpoint { .. } => continue,
                r => return r,
            }
        }
    }

    /// Raw bytes on the stream.
    pub async fn write(&mut self, bytes: &[u8]) {
        // The relay may have refused and stopped the stream: its reply says why.
        let _ = self.send.write_all(bytes).await;
    }

    /// All of `bytes` from `offset`, then Finish with their hash.
    pub async fn send_rest(&mut self, bytes: &[u8], offset: u64) {
        self.write(&bytes[offset as usize..]).await;
        let hash = *blake3::hash(bytes).as_bytes();
        self.write(&encode_frame(&yilian_proto::Finish { hash }))
            .await;
    }

    /// Abandon the stream (RESET_STREAM and STOP_SENDING), as a killed sender would.
    pub fn reset(mut self) {
        let _ = self.send.reset(7u32.into());
        let _ = self.recv.stop(7u32.into());
    }
}

/// An accepting reply's offset.
pub fn accepted(r: &Reply) -> Option<u64> {
    match r {
        Reply::Accept { offset } => Some(*offset),
        _ => None,
    }
}

/// The bytes of a small, valid DICOM file generated for `(study, sop)`.
pub fn tiny_dicom(dir: &std::path::Path, study: &str, seed: u64) -> (String, Bytes) {
    let mut spec = yilian_testkit::StudySpec::new("CT", seed);
    spec.study_uid = study.to_string();
    std::fs::create_dir_all(dir).expect("folder");
    let g = yilian_testkit::ct_series(dir, &spec, 1, 16, 16, seed).expect("a file");
    let bytes = std::fs::read(&g[0].path).expect("read it back");
    (g[0].sop_instance_uid.clone(), Bytes::from(bytes))
}
