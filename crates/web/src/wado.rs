//! WADO-RS retrieve (PS3.18 §10.4): a study, a series or an instance as
//! `multipart/related; type="application/dicom"`, the **stored bytes** of each instance.
//!
//! What a reader may retrieve is what it may search: the instances routed to it
//! (`Store::instances_for`, the rule C-MOVE and C-GET use). A study, series or instance that is
//! not the reader's is 404, audited like a found one.
//!
//! Instances are sent as stored (`transfer-syntax=*`): each part's `Content-Type` names its
//! transfer syntax, read from the file meta in the part's first chunk. A request for specific
//! transfer syntaxes is served when every instance it retrieves is stored in one of them (read
//! from each file's meta first: [`stored_syntax`]); otherwise, since nothing is transcoded,
//! 406, naming what is stored and saying to ask with `transfer-syntax=*`. A request that names
//! none gets the stored bytes too (as most origin servers do; PS3.18's default would be
//! Explicit VR Little Endian).
//!
//! The body streams from the spool in [`CHUNK`] pieces through hyper's backpressure: memory
//! per response stays at a chunk or two whatever the study's size (a 2 GiB instance included).

use std::collections::VecDeque;
use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;

/// Bytes read from a file at a time.
pub const CHUNK: usize = 256 * 1024;
/// A part's first read: most instances (a CT slice is ≈ 0.5 MiB) are read whole in it, in
/// one trip to the blocking pool.
pub const FIRST_READ: usize = 1024 * 1024;

/// What the client's `Accept` allows for a retrieve.
#[derive(Debug, PartialEq, Eq)]
pub enum Wanted {
    /// Instances as stored.
    AsStored,
    /// Only these transfer syntaxes: served as stored when every instance is stored in one of
    /// them, otherwise answered 406 with the text.
    Syntaxes(Vec<String>, String),
    /// Only `multipart/related` of something other than `application/dicom`, or a single-part
    /// `application/dicom` (answered 406 with this text).
    NotServed(String),
}

/// Read the `Accept` header of a retrieve.
pub fn wanted(accept: Option<&str>) -> Wanted {
    let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
        return Wanted::AsStored;
    };
    let mut refused = Vec::new();
    let mut syntaxes = Vec::new();
    for range in accept.split(',') {
        let mut params = range.split(';').map(str::trim);
        let media = params.next().unwrap_or("").to_ascii_lowercase();
        let mut kind = None;
        let mut syntax = None;
        for p in params {
            if let Some((k, v)) = p.split_once('=') {
                let v = v.trim().trim_matches('"');
                match k.trim().to_ascii_lowercase().as_str() {
                    "type" => kind = Some(v.to_ascii_lowercase()),
                    "transfer-syntax" => syntax = Some(v.to_string()),
                    _ => {}
                }
            }
        }
        match media.as_str() {
            "*/*" | "multipart/*" => return Wanted::AsStored,
            "multipart/related" => {
                if kind.as_deref().is_some_and(|k| k != "application/dicom") {
                    refused.push(format!("{range:?}"));
                    continue;
                }
                match syntax {
                    None => return Wanted::AsStored,
                    Some(ts) if ts == "*" => return Wanted::AsStored,
                    Some(ts) => {
                        refused.push(format!("transfer syntax {ts}"));
                        syntaxes.push(ts);
                    }
                }
            }
            _ => refused.push(format!("{media:?}")),
        }
    }
    let why = format!(
        "this relay sends instances as stored, as multipart/related; type=\"application/dicom\"; ask with transfer-syntax=* (not {})",
        refused.join(", ")
    );
    if syntaxes.is_empty() {
        Wanted::NotServed(why)
    } else {
        Wanted::Syntaxes(syntaxes, why)
    }
}

/// The transfer syntax a stored file is in, from its file meta (`None`: it has none that reads).
pub fn stored_syntax(path: &std::path::Path) -> std::io::Result<Option<String>> {
    use std::io::Read;
    // A file meta is a few hundred bytes: the first 4 KiB hold it, but for an unusual one
    // (long private elements) up to 64 KiB are read.
    let mut file = std::fs::File::open(path)?;
    let mut head = Vec::new();
    for limit in [4 * 1024, 64 * 1024] {
        let want = limit - head.len() as u64;
        let got = (&mut file).take(want).read_to_end(&mut head)?;
        let ts = transfer_syntax(&head);
        if ts.is_some() || (got as u64) < want {
            return Ok(ts);
        }
    }
    Ok(None)
}

/// Whether every instance is stored in one of the `accepted` transfer syntaxes; `Err` names
/// one that is not, with its stored syntax (for the 406's text).
pub fn all_stored_in(
    files: &[std::path::PathBuf],
    accepted: &[String],
) -> std::io::Result<Result<(), String>> {
    for f in files {
        let stored = stored_syntax(f)?;
        if !stored.as_ref().is_some_and(|ts| accepted.contains(ts)) {
            return Ok(Err(stored.unwrap_or_else(|| "none readable".into())));
        }
    }
    Ok(Ok(()))
}

/// A fresh multipart boundary.
pub fn boundary() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = blake3::hash(&nanos.to_le_bytes());
    format!("yilian-{}", &n.to_hex()[..32])
}

/// The transfer syntax in a file's first bytes (its file meta), if it has one.
pub fn transfer_syntax(first: &[u8]) -> Option<String> {
    const PREAMBLE: usize = 128;
    if first.len() < PREAMBLE + 4 || &first[PREAMBLE..PREAMBLE + 4] != b"DICM" {
        return None;
    }
    // Group 0002 is Explicit VR Little Endian: tag, VR, then a 2-byte length (4 after 2
    // reserved bytes for OB/OW/UN/SQ/UT/UC/UR).
    let mut pos = PREAMBLE + 4;
    while pos + 8 <= first.len() {
        let group = u16::from_le_bytes([first[pos], first[pos + 1]]);
        let element = u16::from_le_bytes([first[pos + 2], first[pos + 3]]);
        if group != 0x0002 {
            return None;
        }
        let vr = &first[pos + 4..pos + 6];
        let (len, header) = if matches!(vr, b"OB" | b"OW" | b"UN" | b"SQ" | b"UT" | b"UC" | b"UR") {
            let b = first.get(pos + 8..pos + 12)?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)
        } else {
            (
                usize::from(u16::from_le_bytes([first[pos + 6], first[pos + 7]])),
                8,
            )
        };
        let value = first.get(pos + header..pos + header + len)?;
        if element == 0x0010 {
            let ts = String::from_utf8_lossy(value)
                .trim_end_matches(['\0', ' '])
                .to_string();
            return yilian_proto::valid_uid(&ts).then_some(ts);
        }
        pos += header + len;
    }
    None
}

/// A file opened and its first [`FIRST_READ`] bytes read, on the blocking pool.
type FirstRead = tokio::task::JoinHandle<std::io::Result<(std::fs::File, Vec<u8>)>>;

/// The body of a multipart retrieve: each file in turn, read in chunks.
///
/// While a part is sent, the next file is opened and its first read made on the blocking pool
/// (one file ahead, so at most [`FIRST_READ`] more bytes held): a series of small instances
/// then goes out without a pause between parts while a thread fetches the next.
pub struct Parts {
    files: VecDeque<PathBuf>,
    boundary: String,
    current: Option<tokio::fs::File>,
    /// A piece read ahead (a part's first chunk, read with its header).
    pending: Option<Bytes>,
    /// The first read of `files.front()`, under way.
    ahead: Option<FirstRead>,
    closed: bool,
}

impl Parts {
    pub fn new(files: Vec<PathBuf>, boundary: String) -> Parts {
        Parts {
            files: files.into(),
            boundary,
            current: None,
            pending: None,
            ahead: None,
            closed: false,
        }
    }

    /// The next piece of the body; `None` after the closing boundary.
    pub async fn next(&mut self) -> Option<std::io::Result<Bytes>> {
        if let Some(piece) = self.pending.take() {
            return Some(Ok(piece));
        }
        if let Some(file) = self.current.as_mut() {
            return Some(match read_chunk(file, CHUNK).await {
                Ok(c) if c.is_empty() => {
                    self.current = None;
                    Ok(Bytes::from_static(b"\r\n"))
                }
                other => other,
            });
        }
        let Some(path) = self.files.pop_front() else {
            if self.closed {
                return None;
            }
            self.closed = true;
            return Some(Ok(Bytes::from(format!("--{}--\r\n", self.boundary))));
        };
        let read = match self.ahead.take() {
            Some(read) => read,
            None => first_read(path.clone()),
        };
        self.ahead = self.files.front().cloned().map(first_read);
        Some(self.open(&path, read).await)
    }

    /// The part header of the file at `path` (its first chunk, read to learn the transfer
    /// syntax, follows as the next piece; the bytes are not copied).
    async fn open(&mut self, path: &std::path::Path, read: FirstRead) -> std::io::Result<Bytes> {
        let opened = read
            .await
            .map_err(std::io::Error::other)?
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let (file, mut first) = opened;
        let content_type = match transfer_syntax(&first) {
            Some(ts) => format!("application/dicom; transfer-syntax={ts}"),
            None => "application/dicom".to_string(),
        };
        if first.len() < FIRST_READ {
            // The whole file: the part ends after it.
            first.extend_from_slice(b"\r\n");
            self.pending = Some(Bytes::from(first));
        } else {
            self.pending = Some(Bytes::from(first));
            self.current = Some(tokio::fs::File::from_std(file));
        }
        Ok(Bytes::from(format!(
            "--{}\r\nContent-Type: {content_type}\r\n\r\n",
            self.boundary
        )))
    }
}

/// Open the file at `path` and read its first [`FIRST_READ`] bytes, in one trip to the
/// blocking pool (a CT slice is one chunk or two: every trip is a thread hand-off, and they
/// were a quarter of the relay's time retrieving a CT series).
fn first_read(path: PathBuf) -> FirstRead {
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut file = std::fs::File::open(&path)?;
        let size = file.metadata()?.len();
        // Sized to what is read (and the part's closing CRLF), so that a small instance
        // neither holds a 1 MiB buffer nor is copied to end its part.
        let want = usize::try_from(size).map_or(FIRST_READ, |s| s.min(FIRST_READ));
        let mut first = Vec::with_capacity(want + 2);
        (&mut file)
            .take(FIRST_READ as u64)
            .read_to_end(&mut first)?;
        Ok((file, first))
    })
}

/// The value of query parameter `name` (the first one given), as the request has it.
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The one range of a `Range: bytes=…` header within a file of `size` bytes, as (start,
/// length); `None` when it cannot be satisfied. Several ranges: only the first is served.
pub fn byte_range(header: &str, size: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let first = spec.split(',').next()?.trim();
    let (a, b) = first.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        // The last `b` bytes.
        let n: u64 = b.parse().ok()?;
        if n == 0 {
            return None;
        }
        (size.saturating_sub(n), size.checked_sub(1)?)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            size.checked_sub(1)?
        } else {
            b.parse::<u64>().ok()?.min(size.checked_sub(1)?)
        };
        (start, end)
    };
    (start <= end && start < size).then(|| (start, end - start + 1))
}

/// `len` bytes of the file at `path` from `start`, in chunks.
pub fn file_range(
    path: PathBuf,
    start: u64,
    len: u64,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> {
    futures_util::stream::unfold(
        (None::<tokio::fs::File>, path, start, len),
        |(file, path, start, left)| async move {
            if left == 0 {
                return None;
            }
            let mut file = match file {
                Some(f) => f,
                None => {
                    let opened = async {
                        use tokio::io::AsyncSeekExt;
                        let mut f = tokio::fs::File::open(&path).await?;
                        f.seek(std::io::SeekFrom::Start(start)).await?;
                        Ok::<_, std::io::Error>(f)
                    };
                    match opened.await {
                        Ok(f) => f,
                        Err(e) => return Some((Err(e), (None, path, start, 0))),
                    }
                }
            };
            let want = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
            match read_chunk(&mut file, want).await {
                Ok(c) if c.is_empty() => Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the stored file is shorter than its index says",
                    )),
                    (None, path, start, 0),
                )),
                Ok(c) => {
                    let left = left - c.len() as u64;
                    Some((Ok(c), (Some(file), path, start, left)))
                }
                Err(e) => Some((Err(e), (None, path, start, 0))),
            }
        },
    )
}

/// Whether `accept` allows frames stored as `media_type` in `transfer_syntax`: any type with
/// `transfer-syntax=*`, the stored media type, or anything when no Accept is given.
pub fn frames_wanted(
    accept: Option<&str>,
    media_type: &str,
    transfer_syntax: &str,
) -> Result<(), String> {
    let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(());
    };
    for range in accept.split(',') {
        let mut params = range.split(';').map(str::trim);
        let media = params.next().unwrap_or("").to_ascii_lowercase();
        let (mut kind, mut syntax) = (None, None);
        for p in params {
            if let Some((k, v)) = p.split_once('=') {
                let v = v.trim().trim_matches('"').to_string();
                match k.trim().to_ascii_lowercase().as_str() {
                    "type" => kind = Some(v.to_ascii_lowercase()),
                    "transfer-syntax" => syntax = Some(v),
                    _ => {}
                }
            }
        }
        let kind = match media.as_str() {
            "*/*" | "multipart/*" => return Ok(()),
            "multipart/related" => kind,
            other => Some(other.to_string()),
        };
        let syntax_ok = match syntax.as_deref() {
            None => true,
            Some(s) => s == "*" || s == transfer_syntax,
        };
        let kind_ok = kind
            .as_deref()
            .is_none_or(|k| k == media_type || k == "*/*");
        if syntax.as_deref() == Some("*") || (kind_ok && syntax_ok) {
            return Ok(());
        }
    }
    Err(format!(
        "the frames are stored as {media_type} in transfer syntax {transfer_syntax} and sent as stored; ask for that, or with transfer-syntax=*"
    ))
}

/// The multipart body of frames: each frame's byte ranges of the file at `path` as one part.
pub fn frame_parts(
    path: PathBuf,
    frames: Vec<Vec<(u64, u64)>>,
    boundary: String,
    part_type: String,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> {
    use futures_util::stream::{self, StreamExt};
    let close = Bytes::from(format!("--{boundary}--\r\n"));
    let parts = frames.into_iter().map(move |ranges| {
        let head = Bytes::from(format!("--{boundary}\r\nContent-Type: {part_type}\r\n\r\n"));
        let path = path.clone();
        let data = stream::iter(ranges)
            .map(move |(start, len)| file_range(path.clone(), start, len))
            .flatten();
        stream::once(async move { Ok(head) })
            .chain(data)
            .chain(stream::once(async { Ok(Bytes::from_static(b"\r\n")) }))
    });
    stream::iter(parts)
        .flatten()
        .chain(stream::once(async move { Ok(close) }))
}

/// Up to `max` bytes from `file` (fewer only at its end; empty at its end), read into a fresh
/// buffer that is handed on as is: no zero-filling, no copy.
async fn read_chunk(file: &mut tokio::fs::File, max: usize) -> std::io::Result<Bytes> {
    let mut buf = BytesMut::with_capacity(max);
    while buf.len() < max {
        // Never past `max` (the buffer's capacity may be larger).
        let rest = (max - buf.len()) as u64;
        if (&mut *file).take(rest).read_buf(&mut buf).await? == 0 {
            break;
        }
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_are_read_as_ps3_18_says() {
        assert_eq!(wanted(None), Wanted::AsStored);
        assert_eq!(wanted(Some("*/*")), Wanted::AsStored);
        assert_eq!(
            wanted(Some("multipart/related; type=\"application/dicom\"")),
            Wanted::AsStored
        );
        assert_eq!(
            wanted(Some(
                "multipart/related; type=\"application/dicom\"; transfer-syntax=*"
            )),
            Wanted::AsStored
        );
        match wanted(Some(
            "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.4.50, multipart/related; type=\"application/dicom\"; transfer-syntax=\"1.2.840.10008.1.2.1\"",
        )) {
            Wanted::Syntaxes(ts, why) => {
                assert_eq!(ts, ["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.1"]);
                assert!(why.contains("transfer-syntax=*"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            wanted(Some("application/dicom")),
            Wanted::NotServed(_)
        ));
        assert!(matches!(
            wanted(Some("multipart/related; type=\"application/octet-stream\"")),
            Wanted::NotServed(_)
        ));
        // One acceptable range among several is enough.
        assert_eq!(
            wanted(Some(
                "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.3, multipart/related; type=\"application/dicom\"; transfer-syntax=*"
            )),
            Wanted::AsStored
        );
    }

    #[test]
    fn byte_ranges_follow_rfc_9110() {
        assert_eq!(byte_range("bytes=0-99", 1000), Some((0, 100)));
        assert_eq!(byte_range("bytes=900-", 1000), Some((900, 100)));
        assert_eq!(byte_range("bytes=-100", 1000), Some((900, 100)));
        assert_eq!(byte_range("bytes=990-5000", 1000), Some((990, 10)));
        assert_eq!(byte_range("bytes=0-0,5-9", 1000), Some((0, 1)));
        for bad in [
            "bytes=1000-",
            "bytes=5-1",
            "bytes=-0",
            "items=0-1",
            "bytes=a-b",
            "bytes=-",
        ] {
            assert_eq!(byte_range(bad, 1000), None, "{bad}");
        }
        assert_eq!(byte_range("bytes=0-", 0), None);
    }

    #[tokio::test]
    async fn a_file_range_streams_exactly_its_bytes() {
        use futures_util::StreamExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        let data: Vec<u8> = (0..CHUNK * 2 + 7).map(|i| (i % 251) as u8).collect();
        std::fs::write(&f, &data).unwrap();
        for (start, len) in [(0, data.len()), (5, CHUNK + 3), (data.len() - 1, 1)] {
            let got: Vec<u8> = file_range(f.clone(), start as u64, len as u64)
                .map(|c| c.unwrap())
                .collect::<Vec<_>>()
                .await
                .concat();
            assert_eq!(got, &data[start..start + len]);
        }
    }

    #[test]
    fn the_transfer_syntax_is_read_from_the_file_meta() {
        let mut f = vec![0u8; 128];
        f.extend_from_slice(b"DICM");
        // (0002,0001) OB 00\01, then (0002,0010) UI.
        f.extend_from_slice(&[0x02, 0, 0x01, 0, b'O', b'B', 0, 0, 2, 0, 0, 0, 0, 1]);
        let ts = b"1.2.840.10008.1.2.1\0";
        f.extend_from_slice(&[0x02, 0, 0x10, 0, b'U', b'I', ts.len() as u8, 0]);
        f.extend_from_slice(ts);
        assert_eq!(transfer_syntax(&f).as_deref(), Some("1.2.840.10008.1.2.1"));
        assert_eq!(transfer_syntax(&f[..140]), None, "cut short");
        assert_eq!(transfer_syntax(b"not dicom"), None);
    }

    #[test]
    fn a_stored_files_syntax_is_read_past_a_long_meta_element() {
        let dir = tempfile::tempdir().unwrap();
        let ts = b"1.2.840.10008.1.2.1\0";
        for (name, version_len) in [("short", 2usize), ("long", 6000)] {
            let mut f = vec![0u8; 128];
            f.extend_from_slice(b"DICM");
            // (0002,0001) OB of `version_len` bytes, then (0002,0010) UI, then data.
            f.extend_from_slice(&[0x02, 0, 0x01, 0, b'O', b'B', 0, 0]);
            f.extend_from_slice(&(version_len as u32).to_le_bytes());
            f.extend(std::iter::repeat_n(1u8, version_len));
            f.extend_from_slice(&[0x02, 0, 0x10, 0, b'U', b'I', ts.len() as u8, 0]);
            f.extend_from_slice(ts);
            f.extend(std::iter::repeat_n(7u8, 100_000));
            let path = dir.path().join(name);
            std::fs::write(&path, &f).unwrap();
            assert_eq!(
                stored_syntax(&path).unwrap().as_deref(),
                Some("1.2.840.10008.1.2.1"),
                "{name}"
            );
        }
        let short = dir.path().join("not-dicom");
        std::fs::write(&short, b"not dicom").unwrap();
        assert_eq!(stored_syntax(&short).unwrap(), None);
    }

    #[tokio::test]
    async fn parts_frame_every_file_and_close() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, b"AAAA").unwrap();
        // Larger than the first read: the rest follows in chunks.
        let big: Vec<u8> = (0..FIRST_READ + CHUNK + 10).map(|i| i as u8).collect();
        std::fs::write(&b, &big).unwrap();
        let mut parts = Parts::new(vec![a, b], "XB".into());
        let mut body = Vec::new();
        let mut pieces = 0;
        while let Some(piece) = parts.next().await {
            let piece = piece.unwrap();
            assert!(piece.len() <= FIRST_READ + 2, "bounded pieces");
            body.extend_from_slice(&piece);
            pieces += 1;
        }
        assert!(pieces >= 6, "the big file came in several pieces: {pieces}");
        let mut want = b"--XB\r\nContent-Type: application/dicom\r\n\r\nAAAA\r\n".to_vec();
        want.extend_from_slice(b"--XB\r\nContent-Type: application/dicom\r\n\r\n");
        want.extend_from_slice(&big);
        want.extend_from_slice(b"\r\n--XB--\r\n");
        assert_eq!(body, want);
    }
}
