//! `multipart/related` bodies (RFC 2046 §5.1, as STOW-RS sends them), read as they arrive and
//! without copying their data: a part's bytes are handed out as slices of the chunks the
//! body came in.
//!
//! ```text
//! [preamble] --boundary [LWSP] CRLF  headers CRLF  CRLF  data
//!            CRLF --boundary [LWSP] CRLF  headers …        data
//!            CRLF --boundary-- [epilogue]
//! ```
//!
//! A CT slice arrives as some thirty TLS records; a general-purpose parser gathers them into
//! one buffer of its own (a copy of every byte, and fresh pages for each part). Here the
//! data stays in the chunks hyper read it into. Only bytes that may begin a delimiter at the
//! end of a chunk (fewer than the delimiter's length) and the part headers are copied.
//! [`Multipart::chunks`] hands out every slice available at once, so a part costs the
//! spool writer as few hand-offs as a gathering parser's.
//!
//! The delimiter is CRLF `--` boundary; a boundary holds no CR or LF (RFC 2046 `bchars`), so a
//! delimiter can only start at a CR, which is what the search across chunks relies on.

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{FutureExt, Stream, StreamExt};

/// Most bytes of one part's header block.
pub const MAX_HEADERS: usize = 16 * 1024;
/// Most bytes of transport padding after a boundary.
const MAX_PADDING: usize = 256;
/// Most bytes [`Multipart::chunks`] hands out at once.
pub const MAX_BATCH: usize = 1 << 20;

/// Why a body could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MultipartError {
    #[error(
        "the boundary {0:?} is not a valid multipart boundary (1 to 200 characters, no CR or LF)"
    )]
    Boundary(String),
    #[error("reading the body failed: {0}")]
    Read(String),
    #[error("the body ends inside a part (no closing boundary)")]
    Truncated,
    #[error("a part's headers are longer than {MAX_HEADERS} bytes")]
    HeadersTooLong,
    #[error("a boundary line is followed by something other than CRLF or \"--\"")]
    BoundaryLine,
}

/// A part's headers (the ones STOW-RS needs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartHead {
    /// The `Content-Type` header, as sent.
    pub content_type: Option<String>,
}

impl PartHead {
    /// The media type without parameters, lowercase (`application/dicom`).
    pub fn essence(&self) -> Option<String> {
        self.content_type.as_deref().map(|t| {
            t.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before the first delimiter: bytes are dropped.
    Preamble,
    /// Right after a delimiter: `--` (the end) or padding and CRLF.
    BoundaryLine,
    /// A part's header block.
    Headers,
    /// A part's data.
    Data,
    /// After the closing delimiter (the epilogue is dropped), or after an error.
    Done,
}

/// A `multipart/related` body being read: [`next_part`](Multipart::next_part) for each part's
/// headers, then [`chunks`](Multipart::chunks) for its data.
pub struct Multipart<S> {
    body: S,
    ended: bool,
    /// CRLF `--` boundary.
    delim: Vec<u8>,
    state: State,
    /// The unread rest of the last chunk read.
    cur: Bytes,
    /// A possible start of the delimiter at the end of the last chunk (`Data`, `Preamble`).
    seam: BytesMut,
    /// The boundary line's rest, or the header block, so far.
    line: BytesMut,
    /// Header block: how much of CRLF CRLF was just seen (starts at 2: a block opens a line).
    crlf: u8,
}

impl<S> Multipart<S>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    pub fn new(body: S, boundary: &str) -> Result<Multipart<S>, MultipartError> {
        if boundary.is_empty()
            || boundary.len() > 200
            || boundary.bytes().any(|b| b == b'\r' || b == b'\n')
        {
            return Err(MultipartError::Boundary(boundary.to_string()));
        }
        let mut delim = b"\r\n--".to_vec();
        delim.extend_from_slice(boundary.as_bytes());
        Ok(Multipart {
            body,
            ended: false,
            delim,
            state: State::Preamble,
            cur: Bytes::new(),
            // The body's start counts as a line start: a first delimiter without CRLF.
            seam: BytesMut::from(&b"\r\n"[..]),
            line: BytesMut::new(),
            crlf: 2,
        })
    }

    /// The next chunk of the body into `cur`; false at its end.
    async fn fill(&mut self) -> Result<bool, MultipartError> {
        if self.ended {
            return Ok(false);
        }
        loop {
            match self.body.next().await {
                Some(Ok(c)) if c.is_empty() => continue,
                Some(Ok(c)) => {
                    self.cur = c;
                    return Ok(true);
                }
                Some(Err(e)) => {
                    self.state = State::Done;
                    return Err(MultipartError::Read(e.to_string()));
                }
                None => {
                    self.ended = true;
                    return Ok(false);
                }
            }
        }
    }

    /// The next part's headers; `None` after the closing delimiter (or a body without parts).
    /// The rest of the part before this one, if not read, is skipped.
    pub async fn next_part(&mut self) -> Result<Option<PartHead>, MultipartError> {
        let mut skipped = Vec::new();
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Data | State::Preamble => {
                    skipped.clear();
                    if !self.chunks(&mut skipped).await? {
                        continue;
                    }
                }
                State::BoundaryLine => {
                    if self.cur.is_empty() && !self.fill().await? {
                        self.state = State::Done;
                        return Err(MultipartError::Truncated);
                    }
                    self.boundary_line()?;
                }
                State::Headers => {
                    if self.cur.is_empty() && !self.fill().await? {
                        self.state = State::Done;
                        return Err(MultipartError::Truncated);
                    }
                    if let Some(head) = self.headers()? {
                        return Ok(Some(head));
                    }
                }
            }
        }
    }

    /// The part's data available now into `out` (at least one slice, unless the part ends
    /// here). `false` once the part's data is over: the next call to
    /// [`next_part`](Multipart::next_part) reads the next part.
    pub async fn chunks(&mut self, out: &mut Vec<Bytes>) -> Result<bool, MultipartError> {
        if !matches!(self.state, State::Data | State::Preamble) {
            return Ok(false);
        }
        let mut batch = 0;
        loop {
            if !self.cur.is_empty() {
                let before = out.len();
                let ended = self.data(out);
                batch += out[before..].iter().map(Bytes::len).sum::<usize>();
                if self.state == State::Preamble {
                    out.truncate(before);
                }
                if ended {
                    self.state = State::BoundaryLine;
                    return Ok(false);
                }
                if batch >= MAX_BATCH && !out.is_empty() {
                    return Ok(true);
                }
                continue;
            }
            // Nothing left of the chunk: take the next one, without waiting if some data is
            // already to be handed out.
            let next = if out.is_empty() {
                self.fill().await?
            } else {
                match self.fill().now_or_never() {
                    Some(r) => r?,
                    None => return Ok(true),
                }
            };
            if !next {
                let in_part = self.state == State::Data;
                self.state = State::Done;
                return if in_part {
                    Err(MultipartError::Truncated)
                } else {
                    // A body without any delimiter holds no part.
                    out.clear();
                    Ok(false)
                };
            }
        }
    }

    /// Hand out `cur`'s data up to the delimiter; true if the delimiter was found (and
    /// consumed).
    fn data(&mut self, out: &mut Vec<Bytes>) -> bool {
        let d = self.delim.len();
        if !self.seam.is_empty() {
            let k = self.seam.len();
            let need = d - k;
            let n = need.min(self.cur.len());
            if self.cur[..n] == self.delim[k..k + n] {
                if n == need {
                    self.cur.advance(n);
                    self.seam.clear();
                    return true;
                }
                // Still a possible delimiter; the chunk is used up.
                self.seam.extend_from_slice(&self.cur);
                self.cur = Bytes::new();
                return false;
            }
            // Not a delimiter: those bytes were data.
            out.push(std::mem::take(&mut self.seam).freeze());
        }
        if let Some(i) = memchr::memmem::find(&self.cur, &self.delim) {
            if i > 0 {
                out.push(self.cur.slice(..i));
            }
            self.cur.advance(i + d);
            return true;
        }
        // The longest end of the chunk that begins the delimiter is kept aside.
        let len = self.cur.len();
        let from = len.saturating_sub(d - 1);
        let keep = memchr::memchr_iter(b'\r', &self.cur[from..])
            .map(|j| from + j)
            .find(|&j| self.cur[j..] == self.delim[..len - j])
            .unwrap_or(len);
        if keep > 0 {
            out.push(self.cur.slice(..keep));
        }
        self.seam.extend_from_slice(&self.cur[keep..]);
        self.cur = Bytes::new();
        false
    }

    /// After a delimiter: `--` ends the body; transport padding then CRLF opens headers.
    fn boundary_line(&mut self) -> Result<(), MultipartError> {
        while !self.cur.is_empty() {
            let b = self.cur[0];
            self.cur.advance(1);
            self.line.extend_from_slice(&[b]);
            let l = &self.line[..];
            if l == b"-" || l == b"\r" {
                continue;
            }
            if l == b"--" {
                self.line.clear();
                self.state = State::Done;
                self.drain();
                return Ok(());
            }
            if l.ends_with(b"\r\n") && l[..l.len() - 2].iter().all(|&c| c == b' ' || c == b'\t') {
                self.line.clear();
                self.crlf = 2;
                self.state = State::Headers;
                return Ok(());
            }
            let padding = l.iter().all(|&c| c == b' ' || c == b'\t')
                || (l.ends_with(b"\r")
                    && l[..l.len() - 1].iter().all(|&c| c == b' ' || c == b'\t'));
            if !padding || l.len() > MAX_PADDING {
                self.state = State::Done;
                return Err(MultipartError::BoundaryLine);
            }
        }
        Ok(())
    }

    /// The header block up to its empty line; the part's head once it is complete.
    fn headers(&mut self) -> Result<Option<PartHead>, MultipartError> {
        let mut end = None;
        for (i, &b) in self.cur.iter().enumerate() {
            self.crlf = match (self.crlf, b) {
                (0 | 2, b'\r') => self.crlf + 1,
                (1 | 3, b'\n') => self.crlf + 1,
                (_, b'\r') => 1,
                _ => 0,
            };
            if self.crlf == 4 {
                end = Some(i + 1);
                break;
            }
            if self.line.len() + i >= MAX_HEADERS {
                self.state = State::Done;
                return Err(MultipartError::HeadersTooLong);
            }
        }
        let Some(end) = end else {
            self.line.extend_from_slice(&self.cur);
            self.cur = Bytes::new();
            return Ok(None);
        };
        self.line.extend_from_slice(&self.cur[..end]);
        self.cur.advance(end);
        let block = std::mem::take(&mut self.line);
        self.state = State::Data;
        Ok(Some(parse_headers(&block)))
    }

    /// After the closing delimiter: what is left of the chunk is the epilogue.
    fn drain(&mut self) {
        self.cur = Bytes::new();
        self.seam.clear();
    }

    /// Read the rest of the body (the epilogue), so that the connection can carry the next
    /// request.
    pub async fn finish(&mut self) {
        while let Ok(true) = self.fill().await {
            self.cur = Bytes::new();
        }
    }
}

fn parse_headers(block: &[u8]) -> PartHead {
    let mut head = PartHead::default();
    for line in block.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.trim_ascii().eq_ignore_ascii_case(b"content-type") {
            head.content_type = Some(String::from_utf8_lossy(value.trim_ascii()).into_owned());
        }
    }
    head
}

/// A stream of `chunks` in order (tests and fuzzing).
pub fn chunk_stream(
    chunks: Vec<Bytes>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
    futures_util::stream::iter(chunks.into_iter().map(Ok))
}

/// Every part of `body`, each whole in memory, or the first error (tests and fuzzing; the
/// relay never holds a part whole). Checks on the way that no slice handed out is empty and
/// that a batch stops once it holds [`MAX_BATCH`] bytes.
pub async fn collect_parts<S>(
    body: S,
    boundary: &str,
) -> Result<Vec<(PartHead, Vec<u8>)>, MultipartError>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    let mut m = Multipart::new(body, boundary)?;
    let mut parts = Vec::new();
    while let Some(head) = m.next_part().await? {
        let mut data = Vec::new();
        let mut got = Vec::new();
        loop {
            let more = m.chunks(&mut got).await?;
            let n: usize = got.iter().map(Bytes::len).sum();
            let last = got.last().map_or(0, Bytes::len);
            assert!(n - last < MAX_BATCH, "a batch of {n} bytes");
            for c in got.drain(..) {
                assert!(!c.is_empty(), "an empty slice handed out");
                data.extend_from_slice(&c);
            }
            if !more {
                break;
            }
        }
        parts.push((head, data));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use yilian_testkit::Rng;

    const BOUNDARY: &str = "yilian-b0undary";

    /// One part as written into a body, and as it must be read back.
    struct Part {
        content_type: Option<String>,
        data: Vec<u8>,
    }

    /// Bytes rich in what delimiters are made of, so that near-misses are common.
    fn tricky(rng: &mut Rng, len: usize) -> Vec<u8> {
        let alphabet = b"\r\n-yilian-b0undary\r\n--x";
        let delim = format!("\r\n--{BOUNDARY}");
        loop {
            let v: Vec<u8> = (0..len)
                .map(|_| {
                    if rng.chance(700) {
                        alphabet[rng.below(alphabet.len() as u64) as usize]
                    } else {
                        rng.below(256) as u8
                    }
                })
                .collect();
            // A near-miss: the delimiter minus its last byte, somewhere.
            let mut v = v;
            if len > delim.len() && rng.chance(500) {
                let at = rng.below((len - delim.len()) as u64) as usize;
                v[at..at + delim.len() - 1].copy_from_slice(&delim.as_bytes()[..delim.len() - 1]);
            }
            if memchr::memmem::find(&v, delim.as_bytes()).is_none() {
                return v;
            }
        }
    }

    fn body(rng: &mut Rng, parts: &[Part], preamble: bool, close: bool) -> Vec<u8> {
        let mut b = Vec::new();
        if preamble {
            b.extend_from_slice(b"This is a preamble.\r\n-- not a boundary\r\n");
        }
        for (i, p) in parts.iter().enumerate() {
            if i > 0 || preamble {
                b.extend_from_slice(b"\r\n");
            }
            b.extend_from_slice(format!("--{BOUNDARY}").as_bytes());
            for _ in 0..rng.below(3) {
                b.push(if rng.chance(500) { b' ' } else { b'\t' });
            }
            b.extend_from_slice(b"\r\n");
            if rng.chance(500) {
                b.extend_from_slice(b"Content-Location: x\r\n");
            }
            if let Some(t) = &p.content_type {
                let name = ["Content-Type", "content-type", "CONTENT-TYPE"][rng.below(3) as usize];
                b.extend_from_slice(format!("{name}:  {t}\r\n").as_bytes());
            }
            b.extend_from_slice(b"\r\n");
            b.extend_from_slice(&p.data);
        }
        if close {
            b.extend_from_slice(format!("\r\n--{BOUNDARY}--").as_bytes());
            if rng.chance(500) {
                b.extend_from_slice(b"\r\nan epilogue\r\n");
            }
        }
        b
    }

    fn split(rng: &mut Rng, body: &[u8]) -> Vec<Bytes> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < body.len() {
            let n = match rng.below(4) {
                0 => 1 + rng.below(4) as usize,
                1 => 1 + rng.below(40) as usize,
                2 => 1 + rng.below(2000) as usize,
                _ => 1 + rng.below(70_000) as usize,
            }
            .min(body.len() - at);
            out.push(Bytes::copy_from_slice(&body[at..at + n]));
            at += n;
        }
        out
    }

    async fn read_all(chunks: Vec<Bytes>) -> Result<Vec<(PartHead, Vec<u8>)>, MultipartError> {
        collect_parts(chunk_stream(chunks), BOUNDARY).await
    }

    /// Seeded bodies (tricky data full of near-delimiters, padding after boundaries, any
    /// header case, preambles and epilogues) in seeded chunk splits: every part reads back
    /// exactly; without the closing delimiter the last part is an error.
    #[tokio::test]
    async fn parts_read_back_exactly_however_the_body_is_cut() {
        for seed in 0..400u64 {
            let mut rng = Rng::new(seed, 3);
            let parts: Vec<Part> = (0..rng.below(5))
                .map(|_| {
                    let len = match rng.below(3) {
                        0 => rng.below(8) as usize,
                        1 => rng.below(300) as usize,
                        _ => rng.below(20_000) as usize,
                    };
                    Part {
                        content_type: rng
                            .chance(800)
                            .then(|| "application/dicom; transfer-syntax=*".to_string()),
                        data: tricky(&mut rng, len),
                    }
                })
                .collect();
            let (preamble, close) = (rng.chance(300), !rng.chance(100));
            let b = body(&mut rng, &parts, preamble, close);
            let got = read_all(split(&mut rng, &b)).await;
            if !close && !parts.is_empty() {
                assert_eq!(got, Err(MultipartError::Truncated), "seed {seed}");
                continue;
            }
            let got = got.unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            assert_eq!(got.len(), parts.len(), "seed {seed}");
            for (i, ((head, data), p)) in got.iter().zip(&parts).enumerate() {
                assert_eq!(head.content_type, p.content_type, "seed {seed} part {i}");
                assert!(*data == p.data, "seed {seed} part {i}: data differ");
            }
        }
    }

    /// A body whose chunks are not all there yet: the stream answers "not yet" at seeded
    /// moments (waking its reader), as a socket does. Whatever the moments, every part
    /// reads back exactly: handing out what is there and coming back later loses nothing.
    #[tokio::test]
    async fn a_body_that_is_not_all_there_yet_reads_back_the_same() {
        struct Stutter {
            chunks: std::collections::VecDeque<Bytes>,
            rng: Rng,
        }
        impl Stream for Stutter {
            type Item = Result<Bytes, std::io::Error>;
            fn poll_next(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Self::Item>> {
                if self.rng.chance(400) {
                    cx.waker().wake_by_ref();
                    return std::task::Poll::Pending;
                }
                std::task::Poll::Ready(self.chunks.pop_front().map(Ok))
            }
        }
        for seed in 0..300u64 {
            let mut rng = Rng::new(seed, 5);
            let parts: Vec<Part> = (0..1 + rng.below(4))
                .map(|_| {
                    let len = rng.below(30_000) as usize;
                    Part {
                        content_type: Some("application/dicom".into()),
                        data: tricky(&mut rng, len),
                    }
                })
                .collect();
            let preamble = rng.chance(300);
            let b = body(&mut rng, &parts, preamble, true);
            let body = Stutter {
                chunks: split(&mut rng, &b).into(),
                rng: Rng::new(seed, 6),
            };
            let got = collect_parts(body, BOUNDARY)
                .await
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            assert_eq!(got.len(), parts.len(), "seed {seed}");
            for (i, ((_, data), p)) in got.iter().zip(&parts).enumerate() {
                assert!(*data == p.data, "seed {seed} part {i}: data differ");
            }
        }
    }

    /// A part that arrives in one chunk is handed out as slices of that chunk: no copy.
    #[tokio::test]
    async fn a_part_in_one_chunk_is_handed_out_without_a_copy() {
        let data = vec![0x5Au8; 600_000];
        let b = Bytes::from(body(
            &mut Rng::new(1, 1),
            &[Part {
                content_type: Some("application/dicom".into()),
                data: data.clone(),
            }],
            false,
            true,
        ));
        let range = b.as_ptr() as usize..b.as_ptr() as usize + b.len();
        let mut m = Multipart::new(chunk_stream(vec![b.clone()]), BOUNDARY).unwrap();
        let head = m.next_part().await.unwrap().unwrap();
        assert_eq!(head.essence().as_deref(), Some("application/dicom"));
        let mut got = Vec::new();
        assert!(!m.chunks(&mut got).await.unwrap());
        assert_eq!(got.len(), 1);
        assert!(
            range.contains(&(got[0].as_ptr() as usize)),
            "the data was copied"
        );
        assert_eq!(got[0], data);
        assert_eq!(m.next_part().await.unwrap(), None);
    }

    /// Arbitrary bytes made of boundary pieces, CRLFs, dashes and noise: read whole and in
    /// seeded chunks, the same parts or the same error (what the `multipart` fuzz target
    /// checks, here on every test run).
    #[tokio::test]
    async fn any_bytes_read_the_same_whole_and_in_chunks() {
        let pieces: [&[u8]; 8] = [
            b"--yilian-b0undary",
            b"\r\n",
            b"--",
            b" ",
            b"Content-Type: application/dicom",
            b"\r\n\r\n",
            b"\r",
            b"x",
        ];
        for seed in 0..3000u64 {
            let mut rng = Rng::new(seed, 9);
            let mut b = Vec::new();
            for _ in 0..rng.below(40) {
                if rng.chance(850) {
                    b.extend_from_slice(pieces[rng.below(8) as usize]);
                } else {
                    b.push(rng.below(256) as u8);
                }
            }
            let whole = read_all(vec![Bytes::copy_from_slice(&b)]).await;
            let chunked = read_all(split(&mut rng, &b)).await;
            assert_eq!(
                whole,
                chunked,
                "seed {seed}: {:?}",
                String::from_utf8_lossy(&b)
            );
        }
    }

    #[tokio::test]
    async fn malformed_bodies_are_errors_with_a_reason() {
        let bad = |s: &str| vec![Bytes::copy_from_slice(s.as_bytes())];
        // Something other than CRLF or "--" after a boundary.
        let r = read_all(bad(&format!("--{BOUNDARY}x\r\n\r\ndata\r\n--{BOUNDARY}--"))).await;
        assert_eq!(r, Err(MultipartError::BoundaryLine));
        // Headers that never end.
        let long = format!("--{BOUNDARY}\r\nX: {}", "a".repeat(MAX_HEADERS + 10));
        assert_eq!(
            read_all(bad(&long)).await,
            Err(MultipartError::HeadersTooLong)
        );
        // The body ends inside a part's headers, or its data.
        let cut = format!("--{BOUNDARY}\r\nContent-Type: application/dicom\r\n");
        assert_eq!(read_all(bad(&cut)).await, Err(MultipartError::Truncated));
        let cut = format!("--{BOUNDARY}\r\n\r\nsome data");
        assert_eq!(read_all(bad(&cut)).await, Err(MultipartError::Truncated));
        // No delimiter at all: no part.
        assert_eq!(read_all(bad("just text")).await, Ok(Vec::new()));
        assert_eq!(read_all(Vec::new()).await, Ok(Vec::new()));
        // Boundaries that cannot be.
        for b in ["", "a\r\nb", &"x".repeat(201)] {
            assert!(
                Multipart::new(chunk_stream(Vec::new()), b).is_err(),
                "{b:?}"
            );
        }
        // A read error of the body is passed on.
        let failing = futures_util::stream::iter(vec![
            Ok(Bytes::from(format!("--{BOUNDARY}\r\n\r\nab"))),
            Err(std::io::Error::other("connection reset")),
        ]);
        let mut m = Multipart::new(failing, BOUNDARY).unwrap();
        assert!(m.next_part().await.unwrap().is_some());
        let mut got = Vec::new();
        let r = m.chunks(&mut got).await;
        let r = match r {
            Ok(true) => m.chunks(&mut got).await,
            other => other,
        };
        assert!(
            matches!(r, Err(MultipartError::Read(ref e)) if e.contains("reset")),
            "{r:?}"
        );
    }
}
