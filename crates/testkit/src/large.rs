//! One very large instance (up to ~4 GiB of pixel data), written streaming with flat memory.

use std::io;
use std::path::Path;

use dicom_core::VR;
use dicom_dictionary_std::{tags, uids};

use crate::generated::{Generated, InstanceFacts};
use crate::header::{
    base_object, put_multiframe, put_pixel_module, put_str, InstanceHeader, PixelModule,
};
use crate::rng::Rng;
use crate::spec::{SeriesKind, SeriesUids, StudySpec};
use crate::writer::{Part10Writer, CHUNK, MAX_PIXEL_LEN};

/// Rows and columns of every frame of a large instance.
pub const LARGE_FRAME_SIDE: u16 = 512;
/// Bytes of one frame: 512 × 512 × 2 (16 bits allocated, 12 stored).
pub const LARGE_FRAME_BYTES: u64 = 512 * 512 * 2;
/// Most pixel bytes one large instance can hold (whole frames below 0xFFFFFFFF).
pub const LARGE_MAX_PIXEL_BYTES: u64 = MAX_PIXEL_LEN / LARGE_FRAME_BYTES * LARGE_FRAME_BYTES;

/// Writes one instance with at least `pixel_bytes` of pixel data (rounded up to whole frames of
/// [`LARGE_FRAME_BYTES`]; at least one frame), streaming: memory use does not depend on the size.
///
/// SOP class: Multi-frame Grayscale Word Secondary Capture (1.2.840.10008.5.1.4.1.1.7.3),
/// 512×512 MONOCHROME2 frames, 16 bits allocated, 12 stored; Modality is `spec.modality`.
/// The header is encoded by dicom-object; Pixel Data (7FE0,0010) is OW with an explicit 4-byte
/// length, filled in 1 MiB chunks from a PRNG seeded with `seed` and hashed while written.
///
/// Errors with `InvalidInput` above [`LARGE_MAX_PIXEL_BYTES`] (≈ 4 GiB, the limit of an
/// explicit-length element).
pub fn large_instance(
    path: &Path,
    spec: &StudySpec,
    pixel_bytes: u64,
    seed: u64,
) -> io::Result<Generated> {
    if pixel_bytes > LARGE_MAX_PIXEL_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{pixel_bytes} bytes of pixel data do not fit one instance \
                 (at most {LARGE_MAX_PIXEL_BYTES})"
            ),
        ));
    }
    let frames = pixel_bytes.div_ceil(LARGE_FRAME_BYTES).max(1);
    let total = frames * LARGE_FRAME_BYTES;
    let frames = u32::try_from(frames).map_err(io::Error::other)?;

    let ids = SeriesUids::new(spec, SeriesKind::Large, seed);
    let sop_instance_uid = ids.instance(1);
    let sop_class = uids::MULTI_FRAME_GRAYSCALE_WORD_SECONDARY_CAPTURE_IMAGE_STORAGE;
    let mut obj = base_object(
        spec,
        &InstanceHeader {
            sop_class_uid: sop_class,
            sop_instance_uid: &sop_instance_uid,
            series_uid: &ids.series,
            modality: &spec.modality,
            series_number: 1,
            instance_number: 1,
            image_type: "DERIVED\\SECONDARY",
        },
    );
    put_str(&mut obj, tags::CONVERSION_TYPE, VR::CS, "WSD");
    put_multiframe(&mut obj, frames, 40.0);
    put_pixel_module(
        &mut obj,
        &PixelModule {
            rows: LARGE_FRAME_SIDE,
            cols: LARGE_FRAME_SIDE,
            samples_per_pixel: 1,
            photometric: "MONOCHROME2",
            bits_allocated: 16,
            bits_stored: 12,
            pixel_representation: 0,
        },
    );
    put_str(&mut obj, tags::BURNED_IN_ANNOTATION, VR::CS, "NO");
    put_str(&mut obj, tags::WINDOW_CENTER, VR::DS, "2048");
    put_str(&mut obj, tags::WINDOW_WIDTH, VR::DS, "4096");
    put_str(&mut obj, tags::RESCALE_INTERCEPT, VR::DS, "0");
    put_str(&mut obj, tags::RESCALE_SLOPE, VR::DS, "1");
    put_str(&mut obj, tags::RESCALE_TYPE, VR::LO, "US");
    put_str(&mut obj, tags::PRESENTATION_LUT_SHAPE, VR::CS, "IDENTITY");

    let mut out = Part10Writer::create(path, obj)?;
    out.begin_pixel_data(VR::OW, total)?;
    let mut rng = Rng::new(seed, SeriesKind::Large as u64);
    let mut chunk = vec![0u8; CHUNK];
    let mut left = total;
    while left > 0 {
        let n = usize::try_from(left.min(CHUNK as u64)).map_err(io::Error::other)?;
        rng.fill_masked(&mut chunk[..n], 0x0FFF_0FFF_0FFF_0FFF);
        out.pixels(&chunk[..n])?;
        left -= n as u64;
    }
    let written = out.finish()?;
    Ok(Generated::new(
        InstanceFacts {
            sop_instance_uid,
            study_instance_uid: &spec.study_uid,
            series_instance_uid: &ids.series,
            sop_class_uid: sop_class,
            modality: &spec.modality,
        },
        written,
    ))
}
