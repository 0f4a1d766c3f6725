//! WADO-RS frames (PS3.18 §10.4.1.1.3): the pixel data of chosen frames, as stored.
//!
//! Where each frame lies is computed from the file without decoding anything:
//! * **native** pixel data (a defined length): frame *i* is the *i*-th equal slice of the value
//!   (`length / Number of Frames`);
//! * **encapsulated** pixel data (fragments): the item headers are read (the fragment data is
//!   seeked over), then a frame is the fragments the Basic Offset Table gives it, or one
//!   fragment per frame when there are as many fragments as frames, or every fragment for a
//!   single frame. Anything else cannot be split without decoding: refused with why.
//!
//! A frame is a list of byte ranges of the stored file; the answer streams them
//! (`wado::file_range`). Deflated files are refused (their pixel data lies inside the
//! compressed stream).

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Byte ranges of the stored file: (offset, length).
pub type Ranges = Vec<(u64, u64)>;

/// Where each frame's bytes lie in the stored file: (offset, length) ranges per frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameMap {
    pub frames: Vec<Vec<(u64, u64)>>,
    /// The part's media type: `application/octet-stream` for native pixel data, else the
    /// compressed format's (`image/jpeg`, …).
    pub media_type: &'static str,
    /// The stored transfer syntax.
    pub transfer_syntax: String,
}

/// Why the frames of an instance cannot be given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FramesError {
    #[error("the instance has no pixel data")]
    NoPixelData,
    #[error("frame {asked} does not exist: the instance has {frames} frame(s)")]
    NoSuchFrame { asked: u32, frames: u32 },
    #[error("the frames of a deflated instance are not served (retrieve the instance instead)")]
    Deflated,
    #[error("the pixel data cannot be split into frames without decoding it: {0}")]
    Unsplittable(String),
    #[error("the stored file cannot be read: {0}")]
    Read(String),
}

const DEFLATED: &str = "1.2.840.10008.1.2.1.99";
const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const SEQUENCE_END: (u16, u16) = (0xFFFE, 0xE0DD);
/// Most fragments read (a multi-frame ultrasound has a few thousand).
const MAX_FRAGMENTS: usize = 1 << 20;

/// The media type of compressed pixel data in a transfer syntax (PS3.18 Table 8.7.3-2).
pub fn media_type(transfer_syntax: &str) -> &'static str {
    match transfer_syntax {
        "1.2.840.10008.1.2.4.50"
        | "1.2.840.10008.1.2.4.51"
        | "1.2.840.10008.1.2.4.57"
        | "1.2.840.10008.1.2.4.70" => "image/jpeg",
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => "image/jls",
        "1.2.840.10008.1.2.4.90" | "1.2.840.10008.1.2.4.91" => "image/jp2",
        "1.2.840.10008.1.2.4.92" | "1.2.840.10008.1.2.4.93" => "image/jpx",
        "1.2.840.10008.1.2.5" => "image/dicom-rle",
        "1.2.840.10008.1.2.4.100"
        | "1.2.840.10008.1.2.4.101"
        | "1.2.840.10008.1.2.4.102"
        | "1.2.840.10008.1.2.4.103"
        | "1.2.840.10008.1.2.4.104"
        | "1.2.840.10008.1.2.4.105"
        | "1.2.840.10008.1.2.4.106" => "video/mp4",
        _ => "application/octet-stream",
    }
}

/// The frame map of the stored file at `path`.
pub fn map(path: &Path) -> Result<FrameMap, FramesError> {
    let meta = yilian_dicom::inspect_file(path).map_err(|e| FramesError::Read(e.to_string()))?;
    if meta.transfer_syntax == DEFLATED {
        return Err(FramesError::Deflated);
    }
    let pixels = meta.pixel_data.ok_or(FramesError::NoPixelData)?;
    let frames = meta.number_of_frames.unwrap_or(1).max(1);
    let ts = meta.transfer_syntax.clone();
    match pixels.length {
        Some(len) => {
            let each = len / u64::from(frames);
            if each == 0 {
                return Err(FramesError::Unsplittable(format!(
                    "{len} bytes for {frames} frames"
                )));
            }
            Ok(FrameMap {
                frames: (0..u64::from(frames))
                    .map(|i| vec![(pixels.value_offset + i * each, each)])
                    .collect(),
                media_type: "application/octet-stream",
                transfer_syntax: ts,
            })
        }
        None => {
            let mut file =
                std::fs::File::open(path).map_err(|e| FramesError::Read(e.to_string()))?;
            let (bot, fragments) = fragments(&mut file, pixels.value_offset)?;
            Ok(FrameMap {
                frames: split(&bot, &fragments, frames)?,
                media_type: media_type(&ts),
                transfer_syntax: ts,
            })
        }
    }
}

/// The Basic Offset Table and the fragments (offset in the file, length) of encapsulated
/// pixel data whose items begin at `offset`.
fn fragments<R: Read + Seek>(r: &mut R, offset: u64) -> Result<(Vec<u32>, Ranges), FramesError> {
    let bad = |what: &str| FramesError::Unsplittable(what.to_string());
    let io = |e: std::io::Error| FramesError::Read(e.to_string());
    // Every item must lie inside the stream: a length read from the file never sizes an
    // allocation or a range beyond it (a crafted 4 GB table length, found by fuzzing).
    let end = r.seek(SeekFrom::End(0)).map_err(io)?;
    let mut pos = offset;
    let mut header = [0u8; 8];
    let mut bot = Vec::new();
    let mut out = Vec::new();
    let mut first = true;
    loop {
        r.seek(SeekFrom::Start(pos)).map_err(io)?;
        r.read_exact(&mut header)
            .map_err(|_| bad("the fragments end early"))?;
        let tag = (
            u16::from_le_bytes([header[0], header[1]]),
            u16::from_le_bytes([header[2], header[3]]),
        );
        let len = u64::from(u32::from_le_bytes([
            header[4], header[5], header[6], header[7],
        ]));
        if tag == SEQUENCE_END {
            break;
        }
        if tag != ITEM || len == 0xFFFF_FFFF {
            return Err(bad("an item of the pixel data is malformed"));
        }
        if pos + 8 + len > end {
            return Err(bad(
                "an item of the pixel data runs past the end of the file",
            ));
        }
        if first {
            first = false;
            if len % 4 != 0 {
                return Err(bad(
                    "the Basic Offset Table's length is not a multiple of 4",
                ));
            }
            let mut table = vec![0u8; usize::try_from(len).map_err(|_| bad("huge table"))?];
            r.read_exact(&mut table)
                .map_err(|_| bad("the Basic Offset Table ends early"))?;
            bot = table
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
        } else {
            if out.len() == MAX_FRAGMENTS {
                return Err(bad("too many fragments"));
            }
            out.push((pos + 8, len));
        }
        pos += 8 + len;
    }
    Ok((bot, out))
}

/// The fragments of each frame.
fn split(
    bot: &[u32],
    fragments: &[(u64, u64)],
    frames: u32,
) -> Result<Vec<Vec<(u64, u64)>>, FramesError> {
    let n = frames as usize;
    if fragments.is_empty() {
        return Err(FramesError::Unsplittable("no fragments".into()));
    }
    if bot.len() == n {
        // Offsets are from the first fragment's item header.
        let base = fragments[0].0 - 8;
        let mut out = vec![Vec::new(); n];
        for &(off, len) in fragments {
            let rel = off - 8 - base;
            let frame = bot
                .iter()
                .rposition(|&b| u64::from(b) <= rel)
                .ok_or_else(|| {
                    FramesError::Unsplittable(
                        "the Basic Offset Table disagrees with the fragments".into(),
                    )
                })?;
            out[frame].push((off, len));
        }
        if out.iter().any(Vec::is_empty) {
            return Err(FramesError::Unsplittable(
                "the Basic Offset Table names a frame without fragments".into(),
            ));
        }
        return Ok(out);
    }
    if fragments.len() == n {
        return Ok(fragments.iter().map(|f| vec![*f]).collect());
    }
    if n == 1 {
        return Ok(vec![fragments.to_vec()]);
    }
    Err(FramesError::Unsplittable(format!(
        "{} fragments for {n} frames and no Basic Offset Table",
        fragments.len()
    )))
}

/// The frame numbers (1-based) of a `frames/{list}` path, each checked against `frames`.
pub fn parse_list(list: &str, frames: u32) -> Result<Vec<u32>, FramesError> {
    let mut out = Vec::new();
    for item in list.split(',') {
        let asked: u32 = item
            .trim()
            .parse()
            .map_err(|_| FramesError::NoSuchFrame { asked: 0, frames })?;
        if asked == 0 || asked > frames {
            return Err(FramesError::NoSuchFrame { asked, frames });
        }
        out.push(asked);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn item(data: &[u8]) -> Vec<u8> {
        let mut v = vec![0xFE, 0xFF, 0x00, 0xE0];
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    fn encapsulated(bot: &[u32], frags: &[&[u8]]) -> Vec<u8> {
        let table: Vec<u8> = bot.iter().flat_map(|b| b.to_le_bytes()).collect();
        let mut v = item(&table);
        for f in frags {
            v.extend(item(f));
        }
        v.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        v
    }

    fn frames_of(bytes: &[u8], n: u32) -> Result<Vec<Vec<u8>>, FramesError> {
        let (bot, frags) = fragments(&mut Cursor::new(bytes), 0)?;
        Ok(split(&bot, &frags, n)?
            .into_iter()
            .map(|ranges| {
                ranges
                    .iter()
                    .flat_map(|&(o, l)| bytes[o as usize..(o + l) as usize].to_vec())
                    .collect()
            })
            .collect())
    }

    #[test]
    fn fragments_become_frames_by_table_by_count_or_all_in_one() {
        // One fragment per frame, no table.
        let b = encapsulated(&[], &[b"AA", b"BBBB"]);
        assert_eq!(
            frames_of(&b, 2).unwrap(),
            vec![b"AA".to_vec(), b"BBBB".to_vec()]
        );
        // A table: frame 1 has two fragments (offsets count item headers: 8 + 2 + 8 + 2).
        let b = encapsulated(&[0, 20], &[b"AA", b"aa", b"BBBB"]);
        assert_eq!(
            frames_of(&b, 2).unwrap(),
            vec![b"AAaa".to_vec(), b"BBBB".to_vec()]
        );
        // One frame in several fragments.
        let b = encapsulated(&[], &[b"AA", b"aa"]);
        assert_eq!(frames_of(&b, 1).unwrap(), vec![b"AAaa".to_vec()]);
        // Ambiguous: three fragments, two frames, no table.
        let b = encapsulated(&[], &[b"A", b"B", b"C"]);
        assert!(matches!(
            frames_of(&b, 2),
            Err(FramesError::Unsplittable(_))
        ));
        // Cut short.
        let b = encapsulated(&[], &[b"AA"]);
        assert!(frames_of(&b[..b.len() - 10], 1).is_err());
        // A table or a fragment that claims more than the file holds: refused before anything
        // of that size is allocated.
        for at in [4, 16] {
            let mut b = encapsulated(&[0], &[b"AA"]);
            b[at..at + 4].copy_from_slice(&0xD000_0000u32.to_le_bytes());
            assert!(
                matches!(frames_of(&b, 1), Err(FramesError::Unsplittable(ref w)) if w.contains("past the end")),
                "{at}"
            );
        }
    }

    #[test]
    fn frame_lists_are_checked() {
        assert_eq!(parse_list("1,3", 3).unwrap(), vec![1, 3]);
        for bad in ["0", "4", "x", "1,,2", ""] {
            assert!(parse_list(bad, 3).is_err(), "{bad}");
        }
    }

    #[test]
    fn media_types_follow_the_transfer_syntax() {
        assert_eq!(media_type("1.2.840.10008.1.2.4.50"), "image/jpeg");
        assert_eq!(media_type("1.2.840.10008.1.2.5"), "image/dicom-rle");
        assert_eq!(media_type("1.2.840.10008.1.2.4.90"), "image/jp2");
        assert_eq!(
            media_type("1.2.840.10008.1.2.1"),
            "application/octet-stream"
        );
    }
}
