//! What a compressed frame says about itself, checked before any decoder sees it.
//!
//! The decoders (dicom-rs's RLE adapter, jpeg-decoder, openjp2) size their buffers from the
//! codestream's own header: a crafted frame that claims 4 billion RLE segments or a
//! 60,000 × 60,000 JPEG 2000 image makes them allocate gigabytes, and an allocation that fails
//! aborts the whole relay. So the header is read here first, and the frame is refused unless
//! it describes what the DICOM header does: at most [`Rows`] × [`Columns`] (with a little
//! slack for JPEG's block padding), a sane number of components and tiles, an RLE header of
//! at most 15 segments that lie inside the fragment (PS3.5 Annex G).
//!
//! [`Rows`]: https://dicom.innolitics.com/ciods/ct-image/image-pixel/00280010
//! [`Columns`]: https://dicom.innolitics.com/ciods/ct-image/image-pixel/00280011

/// Why a compressed frame is refused before decoding.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the compressed frame is malformed or does not match the header: {0}")]
pub struct Mismatch(pub String);

fn bad(text: impl Into<String>) -> Mismatch {
    Mismatch(text.into())
}

/// The compression family of a transfer syntax, as far as this check goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Jpeg,
    Jpeg2000,
    Rle,
    /// Anything else: not checked here (the renderer refuses what it cannot decode).
    Other,
}

pub fn family(transfer_syntax: &str) -> Family {
    match transfer_syntax {
        "1.2.840.10008.1.2.4.50"
        | "1.2.840.10008.1.2.4.51"
        | "1.2.840.10008.1.2.4.57"
        | "1.2.840.10008.1.2.4.70" => Family::Jpeg,
        "1.2.840.10008.1.2.4.90"
        | "1.2.840.10008.1.2.4.91"
        | "1.2.840.10008.1.2.4.92"
        | "1.2.840.10008.1.2.4.93"
        | "1.2.840.10008.1.2.4.201"
        | "1.2.840.10008.1.2.4.202"
        | "1.2.840.10008.1.2.4.203" => Family::Jpeg2000,
        "1.2.840.10008.1.2.5" => Family::Rle,
        _ => Family::Other,
    }
}

/// Most tiles a JPEG 2000 frame may have (each costs the decoder a structure).
const MAX_TILES: u64 = 1 << 16;
/// Most components (samples per pixel) any frame may have.
const MAX_COMPONENTS: u16 = 4;

/// Check the first fragment of a compressed frame against the DICOM header's size.
pub fn check(family: Family, fragment: &[u8], rows: u32, columns: u32) -> Result<(), Mismatch> {
    match family {
        Family::Rle => rle(fragment),
        Family::Jpeg => {
            let (w, h, c) = jpeg_size(fragment)?;
            // Blocks pad an image to a multiple of 8 or 16; the frame is never larger.
            fits(w, h, columns, rows, 16)?;
            components(c)
        }
        Family::Jpeg2000 => {
            let siz = j2k_size(fragment)?;
            fits(siz.width, siz.height, columns, rows, 0)?;
            components(siz.components)?;
            if siz.tiles > MAX_TILES {
                return Err(bad(format!("{} tiles", siz.tiles)));
            }
            Ok(())
        }
        Family::Other => Ok(()),
    }
}

fn fits(w: u64, h: u64, columns: u32, rows: u32, slack: u64) -> Result<(), Mismatch> {
    if w == 0 || h == 0 || w > u64::from(columns) + slack || h > u64::from(rows) + slack {
        return Err(bad(format!(
            "it claims {w} × {h} pixels, the header {columns} × {rows}"
        )));
    }
    Ok(())
}

fn components(c: u16) -> Result<(), Mismatch> {
    if c == 0 || c > MAX_COMPONENTS {
        return Err(bad(format!("{c} components")));
    }
    Ok(())
}

fn u16_be(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn u32_be(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// PS3.5 G.3.1: a 64-byte header, the number of segments (1–15), then their offsets, each
/// inside the fragment.
fn rle(f: &[u8]) -> Result<(), Mismatch> {
    if f.len() < 64 {
        return Err(bad("an RLE frame shorter than its 64-byte header"));
    }
    let le = |at: usize| u32::from_le_bytes([f[at], f[at + 1], f[at + 2], f[at + 3]]);
    let segments = le(0);
    if !(1..=15).contains(&segments) {
        return Err(bad(format!("{segments} RLE segments (1 to 15 exist)")));
    }
    for i in 1..=segments as usize {
        let offset = le(4 * i) as usize;
        if offset < 64 || offset >= f.len() {
            return Err(bad(format!("RLE segment {i} starts outside the frame")));
        }
    }
    Ok(())
}

/// Width, height and components from a JPEG's first SOF marker.
fn jpeg_size(f: &[u8]) -> Result<(u64, u64, u16), Mismatch> {
    if u16_be(f, 0) != Some(0xFFD8) {
        return Err(bad("a JPEG frame without its start-of-image marker"));
    }
    let mut at = 2;
    loop {
        // Fill bytes (0xFF) may precede a marker.
        while f.get(at) == Some(&0xFF) && f.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let marker = u16_be(f, at).ok_or_else(|| bad("a JPEG frame without a frame header"))?;
        if marker >> 8 != 0xFF {
            return Err(bad("a JPEG frame whose markers are malformed"));
        }
        let len = usize::from(u16_be(f, at + 2).ok_or_else(|| bad("a JPEG frame cut short"))?);
        let sof =
            matches!(marker, 0xFFC0..=0xFFC3 | 0xFFC5..=0xFFC7 | 0xFFC9..=0xFFCB | 0xFFCD..=0xFFCF);
        if sof {
            let h = u16_be(f, at + 5).ok_or_else(|| bad("a JPEG frame header cut short"))?;
            let w = u16_be(f, at + 7).ok_or_else(|| bad("a JPEG frame header cut short"))?;
            let c = *f
                .get(at + 9)
                .ok_or_else(|| bad("a JPEG frame header cut short"))?;
            return Ok((u64::from(w), u64::from(h), u16::from(c)));
        }
        if marker == 0xFFDA || marker == 0xFFD9 || len < 2 {
            return Err(bad("a JPEG frame without a frame header before its data"));
        }
        at += 2 + len;
    }
}

/// What a JPEG 2000 SIZ marker says.
struct Siz {
    width: u64,
    height: u64,
    components: u16,
    tiles: u64,
}

/// The SIZ marker of a JPEG 2000 codestream (or of the codestream box of a JP2 file).
fn j2k_size(f: &[u8]) -> Result<Siz, Mismatch> {
    let stream = if f.get(4..8) == Some(b"jP  ") {
        // JP2 boxes: length (4), type (4); the codestream is in "jp2c".
        let mut at = 0;
        loop {
            let len = u32_be(f, at).ok_or_else(|| bad("a JP2 frame without a codestream"))?;
            let kind = f
                .get(at + 4..at + 8)
                .ok_or_else(|| bad("a JP2 box cut short"))?;
            if kind == b"jp2c" {
                break &f[at + 8..];
            }
            if len < 8 {
                return Err(bad("a JP2 box of length below 8"));
            }
            at += len as usize;
        }
    } else {
        f
    };
    if u16_be(stream, 0) != Some(0xFF4F) || u16_be(stream, 2) != Some(0xFF51) {
        return Err(bad(
            "a JPEG 2000 frame that does not begin with SOC and SIZ",
        ));
    }
    let field = |at: usize| {
        u32_be(stream, at)
            .map(u64::from)
            .ok_or_else(|| bad("a JPEG 2000 SIZ marker cut short"))
    };
    // SIZ: marker (2) Lsiz (2) Rsiz (2) Xsiz Ysiz XOsiz YOsiz XTsiz YTsiz XTOsiz YTOsiz (4 each)
    // Csiz (2).
    let (xsiz, ysiz, xo, yo) = (field(8)?, field(12)?, field(16)?, field(20)?);
    let (xt, yt, xto, yto) = (field(24)?, field(28)?, field(32)?, field(36)?);
    let components = u16_be(stream, 40).ok_or_else(|| bad("a JPEG 2000 SIZ marker cut short"))?;
    if xo >= xsiz || yo >= ysiz || xt == 0 || yt == 0 || xto > xo || yto > yo {
        return Err(bad("a JPEG 2000 SIZ marker with an impossible geometry"));
    }
    let tiles = (xsiz - xto).div_ceil(xt) * (ysiz - yto).div_ceil(yt);
    Ok(Siz {
        width: xsiz - xo,
        height: ysiz - yo,
        components,
        tiles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rle_frame(segments: u32, offsets: &[u32], len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[0..4].copy_from_slice(&segments.to_le_bytes());
        for (i, o) in offsets.iter().enumerate() {
            f[4 + 4 * i..8 + 4 * i].copy_from_slice(&o.to_le_bytes());
        }
        f
    }

    #[test]
    fn rle_headers_must_be_sane() {
        assert!(check(Family::Rle, &rle_frame(1, &[64], 100), 10, 10).is_ok());
        assert!(check(Family::Rle, &rle_frame(3, &[64, 70, 80], 100), 10, 10).is_ok());
        for bad in [
            rle_frame(0, &[], 100),
            rle_frame(16, &[64; 15], 100),
            rle_frame(0x4000_0000, &[64], 100),
            rle_frame(2, &[64, 500], 100),
            rle_frame(1, &[10], 100),
            vec![1, 0, 0, 0],
        ] {
            assert!(
                check(Family::Rle, &bad, 10, 10).is_err(),
                "{:?}",
                &bad[..8.min(bad.len())]
            );
        }
    }

    fn jpeg(w: u16, h: u16, c: u8) -> Vec<u8> {
        let mut f = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0]; // SOI, APP0 of 2 bytes
        f.extend([0xFF, 0xC0, 0, 11, 8]);
        f.extend(h.to_be_bytes());
        f.extend(w.to_be_bytes());
        f.extend([c, 1, 0x11, 0]);
        f.extend([0xFF, 0xDA, 0, 2]);
        f
    }

    #[test]
    fn a_jpeg_must_fit_the_header() {
        assert!(check(Family::Jpeg, &jpeg(512, 512, 1), 512, 512).is_ok());
        assert!(
            check(Family::Jpeg, &jpeg(520, 512, 3), 512, 512).is_ok(),
            "block padding"
        );
        assert!(check(Family::Jpeg, &jpeg(60000, 60000, 1), 512, 512).is_err());
        assert!(check(Family::Jpeg, &jpeg(512, 0, 1), 512, 512).is_err());
        assert!(check(Family::Jpeg, &jpeg(512, 512, 200), 512, 512).is_err());
        assert!(check(Family::Jpeg, &[0xFF, 0xD8, 0xFF, 0xDA, 0, 2], 512, 512).is_err());
        assert!(check(Family::Jpeg, b"not a jpeg", 512, 512).is_err());
    }

    fn j2k(w: u32, h: u32, tile: u32, c: u16) -> Vec<u8> {
        let mut f = vec![0xFF, 0x4F, 0xFF, 0x51, 0, 41, 0, 0];
        for v in [w, h, 0, 0, tile, tile, 0, 0] {
            f.extend(v.to_be_bytes());
        }
        f.extend(c.to_be_bytes());
        f
    }

    #[test]
    fn a_jpeg_2000_must_fit_the_header() {
        assert!(check(Family::Jpeg2000, &j2k(512, 512, 512, 1), 512, 512).is_ok());
        assert!(check(Family::Jpeg2000, &j2k(60000, 60000, 512, 1), 512, 512).is_err());
        assert!(
            check(Family::Jpeg2000, &j2k(512, 512, 1, 1), 512, 512).is_err(),
            "tiles"
        );
        assert!(check(Family::Jpeg2000, &j2k(512, 512, 0, 1), 512, 512).is_err());
        assert!(check(Family::Jpeg2000, &j2k(512, 512, 512, 0), 512, 512).is_err());
        // In a JP2 file: the codestream box.
        let mut jp2 = vec![0, 0, 0, 12];
        jp2.extend(b"jP  \r\n\x87\n");
        let cs = j2k(256, 256, 256, 3);
        jp2.extend(((cs.len() + 8) as u32).to_be_bytes());
        jp2.extend(b"jp2c");
        jp2.extend(&cs);
        assert!(check(Family::Jpeg2000, &jp2, 256, 256).is_ok());
        assert!(check(Family::Jpeg2000, &jp2, 128, 128).is_err());
    }
}
