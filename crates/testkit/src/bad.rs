//! Bad inputs for rejection tests: not DICOM at all, cut short, lying about a length.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::rng::Rng;

/// Writes a file that is not DICOM: a small JPEG/JFIF-looking file (SOI, APP0 "JFIF", noise,
/// EOI), 2 KiB, no "DICM" at offset 128 — what a user might drop into an upload by mistake.
/// Returns `path`.
pub fn not_dicom(path: &Path) -> io::Result<PathBuf> {
    let mut bytes = Vec::with_capacity(2048);
    bytes.extend_from_slice(&[0xFF, 0xD8]); // SOI
    bytes.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x10]); // APP0, length 16
    bytes.extend_from_slice(b"JFIF\0");
    bytes.extend_from_slice(&[0x01, 0x01, 0x00, 0x00, 0x48, 0x00, 0x48, 0x00, 0x00]);
    let mut noise = vec![0u8; 2048 - bytes.len() - 2];
    Rng::new(0x4A50_4547, 0).fill_masked(&mut noise, u64::MAX);
    // Keep the noise free of markers so the file still looks like one JPEG.
    for b in &mut noise {
        if *b == 0xFF {
            *b = 0xFE;
        }
    }
    bytes.extend_from_slice(&noise);
    bytes.extend_from_slice(&[0xFF, 0xD9]); // EOI
    fs::write(path, &bytes)?;
    Ok(path.to_owned())
}

/// Copies the first `keep_bytes` bytes of `src` to `dst` (streaming) and returns `dst`.
/// Use [`crate::Generated::pixel_data_offset`] to cut inside the pixel data.
///
/// Errors with `InvalidInput` if `keep_bytes` is not shorter than `src`: the copy would not be
/// truncated.
pub fn truncated_copy(src: &Path, dst: &Path, keep_bytes: u64) -> io::Result<PathBuf> {
    let input = File::open(src)?;
    let len = input.metadata()?.len();
    if keep_bytes >= len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "cannot truncate {} ({len} bytes) to {keep_bytes} bytes",
                src.display()
            ),
        ));
    }
    let mut output = File::create(dst)?;
    let copied = io::copy(&mut input.take(keep_bytes), &mut output)?;
    if copied != keep_bytes {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{} shrank while being copied", src.display()),
        ));
    }
    output.flush()?;
    Ok(dst.to_owned())
}

/// Copies the DICOM file `src` (Explicit VR Little Endian, as the generators write) to `dst`
/// and corrupts the length of the first data set element after the file meta: it becomes odd
/// (illegal in DICOM) and huge (0xFFFF for a 2-byte length, 0xFFFFFFF1 for a 4-byte one), so a
/// parser that trusts it reads past the element into the rest of the file, or past its end.
/// Returns `dst`.
///
/// In files from this crate the first element is Specific Character Set (0008,0005).
pub fn corrupt_length(src: &Path, dst: &Path) -> io::Result<PathBuf> {
    fs::copy(src, dst)?;
    let mut file = OpenOptions::new().read(true).write(true).open(dst)?;
    let invalid = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is not an Explicit VR Little Endian DICOM file: {what}",
                src.display()
            ),
        )
    };

    let mut head = [0u8; 144];
    file.read_exact(&mut head)
        .map_err(|_| invalid("shorter than preamble and meta group length"))?;
    if &head[128..132] != b"DICM" {
        return Err(invalid("no DICM prefix"));
    }
    if head[132..136] != [0x02, 0x00, 0x00, 0x00] || &head[136..138] != b"UL" {
        return Err(invalid("no File Meta Information Group Length"));
    }
    let group_length = u32::from_le_bytes([head[140], head[141], head[142], head[143]]);
    let element_start = 144 + u64::from(group_length);

    let mut element = [0u8; 12];
    file.seek(SeekFrom::Start(element_start))?;
    file.read_exact(&mut element)
        .map_err(|_| invalid("no data set after the file meta"))?;
    let vr = [element[4], element[5]];
    if !vr.iter().all(u8::is_ascii_uppercase) {
        return Err(invalid("first data set element has no explicit VR"));
    }
    let long_form: &[&[u8; 2]] = &[
        b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV",
    ];
    if long_form.contains(&&vr) {
        file.seek(SeekFrom::Start(element_start + 8))?;
        file.write_all(&0xFFFF_FFF1_u32.to_le_bytes())?;
    } else {
        file.seek(SeekFrom::Start(element_start + 6))?;
        file.write_all(&0xFFFF_u16.to_le_bytes())?;
    }
    file.flush()?;
    Ok(dst.to_owned())
}
