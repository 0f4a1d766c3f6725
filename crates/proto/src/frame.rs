use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{de::DeserializeOwned, Serialize};

use crate::ProtoError;

/// Largest control frame accepted (payload, without the 4-byte length).
pub const MAX_FRAME_LEN: u32 = 64 * 1024;

/// Encode one control frame: `u32` big-endian payload length, then the postcard payload.
pub fn encode_frame<T: Serialize>(msg: &T) -> Bytes {
    // postcard into a Vec cannot fail for our message types (no maps with non-string keys, no
    // unsupported serde features); an error here would be a bug in this crate's types.
    let payload = postcard::to_stdvec(msg).unwrap_or_default();
    let mut out = BytesMut::with_capacity(4 + payload.len());
    out.put_u32(payload.len() as u32);
    out.put_slice(&payload);
    out.freeze()
}

/// Incremental decoder of control frames from arbitrary chunks.
///
/// It buffers at most one partial frame (≤ [`MAX_FRAME_LEN`] + 4 bytes). Bytes after a complete
/// frame stay available through [`FrameDecoder::take_rest`], which is how a transfer switches from
/// framed messages to raw data without copying.
#[derive(Default, Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    // Chunks handed in whole, not yet copied into `buf` (the common case: a chunk that holds a
    // whole frame and then raw data is split without copying the raw data).
    pending: Option<Bytes>,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add input.
    pub fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        match self.pending.take() {
            None if self.buf.is_empty() => self.pending = Some(chunk),
            None => self.buf.extend_from_slice(&chunk),
            Some(p) => {
                self.buf.extend_from_slice(&p);
                self.buf.extend_from_slice(&chunk);
            }
        }
    }

    /// Buffered bytes not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len() + self.pending.as_ref().map_or(0, |p| p.len())
    }

    /// Decode the next complete frame as `T`, if one is buffered.
    pub fn next_frame<T: DeserializeOwned>(
        &mut self,
        what: &'static str,
    ) -> Result<Option<T>, ProtoError> {
        if let Some(p) = self.pending.as_mut() {
            return match Self::split_frame(p)? {
                Some(payload) => {
                    if p.is_empty() {
                        self.pending = None;
                    }
                    decode(what, &payload).map(Some)
                }
                None => {
                    // Incomplete: fall back to accumulating.
                    if let Some(p) = self.pending.take() {
                        self.buf.extend_from_slice(&p);
                    }
                    Ok(None)
                }
            };
        }
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        check_len(len)?;
        let total = 4 + len as usize;
        if self.buf.len() < total {
            return Ok(None);
        }
        self.buf.advance(4);
        let payload = self.buf.split_to(len as usize);
        decode(what, &payload).map(Some)
    }

    fn split_frame(p: &mut Bytes) -> Result<Option<Bytes>, ProtoError> {
        if p.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
        check_len(len)?;
        if p.len() < 4 + len as usize {
            return Ok(None);
        }
        p.advance(4);
        Ok(Some(p.split_to(len as usize)))
    }

    /// Take every buffered byte out (raw data that followed the frames).
    pub fn take_rest(&mut self) -> Option<Bytes> {
        if let Some(p) = self.pending.take() {
            if self.buf.is_empty() {
                return Some(p);
            }
            self.buf.extend_from_slice(&p);
        }
        if self.buf.is_empty() {
            None
        } else {
            Some(self.buf.split().freeze())
        }
    }
}

fn check_len(len: u32) -> Result<(), ProtoError> {
    if len > MAX_FRAME_LEN {
        return Err(ProtoError::FrameTooLarge {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    Ok(())
}

fn decode<T: DeserializeOwned>(what: &'static str, payload: &[u8]) -> Result<T, ProtoError> {
    postcard::from_bytes(payload).map_err(|e| ProtoError::Decode {
        what,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InstanceRef, Offer, Request};

    fn offer() -> Request {
        Request::Offer(Offer {
            instance: InstanceRef {
                study_uid: "1.2.3".into(),
                sop_uid: "1.2.3.4".into(),
            },
            size: 1000,
            priority: 0,
            hash: None,
            facts: None,
        })
    }

    #[test]
    fn round_trip_in_every_split() {
        let f = encode_frame(&offer());
        let mut stream = f.to_vec();
        stream.extend_from_slice(b"RAWDATA");
        for cut in 0..stream.len() {
            let mut d = FrameDecoder::new();
            d.push(Bytes::copy_from_slice(&stream[..cut]));
            let first: Option<Request> = d.next_frame("request").unwrap();
            d.push(Bytes::copy_from_slice(&stream[cut..]));
            let msg = match first {
                Some(m) => m,
                None => d.next_frame("request").unwrap().unwrap(),
            };
            assert_eq!(msg, offer());
            assert_eq!(d.take_rest().unwrap(), Bytes::from_static(b"RAWDATA"));
        }
    }

    #[test]
    fn oversized_frame_is_refused_without_buffering_it() {
        let mut d = FrameDecoder::new();
        d.push(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
        let r: Result<Option<Request>, _> = d.next_frame("request");
        assert!(matches!(r, Err(ProtoError::FrameTooLarge { .. })));
    }

    #[test]
    fn garbage_payload_is_a_decode_error() {
        let mut d = FrameDecoder::new();
        d.push(Bytes::from_static(&[0, 0, 0, 3, 0xff, 0xff, 0xff]));
        let r: Result<Option<Request>, _> = d.next_frame("request");
        assert!(matches!(r, Err(ProtoError::Decode { .. })));
    }
}
