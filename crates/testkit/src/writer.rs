//! Streaming DICOM Part 10 writer: the header (preamble, file meta, data set without Pixel Data)
//! is encoded by dicom-object into memory, then Pixel Data is streamed with an explicit length,
//! hashing everything with BLAKE3 on the way. Memory stays flat whatever the pixel size.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use dicom_core::VR;
use dicom_dictionary_std::uids;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;

use crate::spec::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};

/// Size of the write buffer, and of the pieces hashed at once.
pub(crate) const CHUNK: usize = 1 << 20;

/// Largest Pixel Data value length we write: even, below the undefined length 0xFFFFFFFF.
pub(crate) const MAX_PIXEL_LEN: u64 = 0xFFFF_FFFE;

/// What was written.
pub(crate) struct Written {
    pub path: PathBuf,
    pub size: u64,
    pub blake3: [u8; 32],
    pub pixel_data_offset: u64,
}

pub(crate) struct Part10Writer {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    hasher: blake3::Hasher,
    written: u64,
    pixel_data_offset: Option<u64>,
    pixels_left: u64,
    pad: bool,
}

impl Part10Writer {
    /// Creates `path` and writes preamble, file meta (Explicit VR Little Endian) and `dataset`,
    /// which must not contain Pixel Data.
    pub(crate) fn create(path: &Path, dataset: InMemDicomObject) -> io::Result<Self> {
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
            .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
            .implementation_version_name(IMPLEMENTATION_VERSION_NAME);
        let object = dataset.with_meta(meta).map_err(io::Error::other)?;
        let mut header = Vec::with_capacity(4096);
        object.write_all(&mut header).map_err(io::Error::other)?;

        let mut writer = Part10Writer {
            path: path.to_owned(),
            file: File::create(path)?,
            buf: Vec::with_capacity(CHUNK),
            hasher: blake3::Hasher::new(),
            written: 0,
            pixel_data_offset: None,
            pixels_left: 0,
            pad: false,
        };
        writer.put(&header)?;
        Ok(writer)
    }

    /// Writes the Pixel Data (7FE0,0010) element header for `len` bytes of pixel values with an
    /// explicit 4-byte length (`len` rounded up to even; an odd `len` gets one zero pad byte
    /// at [`Part10Writer::finish`]). `vr` is OB or OW.
    pub(crate) fn begin_pixel_data(&mut self, vr: VR, len: u64) -> io::Result<()> {
        let code: &[u8; 2] = match vr {
            VR::OB => b"OB",
            VR::OW => b"OW",
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("Pixel Data VR must be OB or OW, not {other:?}"),
                ))
            }
        };
        let padded = len + (len % 2);
        let Ok(length) = u32::try_from(padded) else {
            return Err(too_large(len));
        };
        if padded > MAX_PIXEL_LEN {
            return Err(too_large(len));
        }
        let mut element = [0u8; 12];
        element[..4].copy_from_slice(&[0xE0, 0x7F, 0x10, 0x00]);
        element[4..6].copy_from_slice(code);
        // bytes 6..8: reserved, zero
        element[8..].copy_from_slice(&length.to_le_bytes());
        self.put(&element)?;
        self.pixel_data_offset = Some(self.written);
        self.pixels_left = len;
        self.pad = len % 2 == 1;
        Ok(())
    }

    /// Writes pixel value bytes (no more than announced).
    pub(crate) fn pixels(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.len() as u64 > self.pixels_left {
            return Err(io::Error::other(
                "testkit bug: more pixel bytes than announced",
            ));
        }
        self.pixels_left -= bytes.len() as u64;
        self.put(bytes)
    }

    /// Pads, flushes and returns size and hash.
    pub(crate) fn finish(mut self) -> io::Result<Written> {
        if self.pixels_left != 0 {
            return Err(io::Error::other(format!(
                "testkit bug: {} announced pixel bytes were not written",
                self.pixels_left
            )));
        }
        if self.pad {
            self.put(&[0])?;
        }
        self.flush_buf()?;
        self.file.flush()?;
        Ok(Written {
            path: self.path,
            size: self.written,
            blake3: *self.hasher.finalize().as_bytes(),
            pixel_data_offset: self.pixel_data_offset.unwrap_or(self.written),
        })
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.written += bytes.len() as u64;
        if self.buf.len() + bytes.len() > CHUNK {
            self.flush_buf()?;
        }
        if bytes.len() >= CHUNK {
            self.hasher.update(bytes);
            self.file.write_all(bytes)
        } else {
            self.buf.extend_from_slice(bytes);
            Ok(())
        }
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.hasher.update(&self.buf);
            self.file.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

fn too_large(len: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{len} bytes of pixel data do not fit one explicit-length Pixel Data element \
             (at most {MAX_PIXEL_LEN} bytes)"
        ),
    )
}
