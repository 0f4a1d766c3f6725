//! Ultrasound cine: one multi-frame RGB 8-bit instance.

use std::io;
use std::path::Path;

use dicom_core::VR;
use dicom_dictionary_std::{tags, uids};

use crate::check_dimensions;
use crate::generated::{Generated, InstanceFacts};
use crate::header::{
    base_object, put_multiframe, put_pixel_module, put_str, InstanceHeader, PixelModule,
};
use crate::rng::Rng;
use crate::spec::{SeriesKind, SeriesUids, StudySpec};
use crate::writer::Part10Writer;

/// Cine rate of the generated clip (frames per second).
pub const US_CINE_RATE: u32 = 30;

/// Writes one Ultrasound Multi-frame Image (1.2.840.10008.5.1.4.1.1.3.1): `frames` frames of
/// `rows`×`cols` RGB, 8 bits per sample, interleaved (Planar Configuration 0), with Number of
/// Frames, Frame Time, Cine Rate and Frame Increment Pointer → Frame Time.
///
/// Pixel Data is OB of `frames × rows × cols × 3` bytes, plus one zero pad byte when that is odd.
/// Pixels: grey speckle (R = G = B) from a PRNG row per frame, shifted row by row.
pub fn us_multiframe(
    path: &Path,
    spec: &StudySpec,
    frames: u32,
    rows: u16,
    cols: u16,
    seed: u64,
) -> io::Result<Generated> {
    check_dimensions(rows, cols)?;
    if frames == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an ultrasound clip needs at least one frame",
        ));
    }
    let ids = SeriesUids::new(spec, SeriesKind::Us, seed);
    let sop_instance_uid = ids.instance(1);
    let mut obj = base_object(
        spec,
        &InstanceHeader {
            sop_class_uid: uids::ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE,
            sop_instance_uid: &sop_instance_uid,
            series_uid: &ids.series,
            modality: "US",
            series_number: 1,
            instance_number: 1,
            image_type: "ORIGINAL\\PRIMARY",
        },
    );
    put_multiframe(&mut obj, frames, 1000.0 / f64::from(US_CINE_RATE));
    put_str(&mut obj, tags::CINE_RATE, VR::IS, US_CINE_RATE.to_string());
    put_pixel_module(
        &mut obj,
        &PixelModule {
            rows,
            cols,
            samples_per_pixel: 3,
            photometric: "RGB",
            bits_allocated: 8,
            bits_stored: 8,
            pixel_representation: 0,
        },
    );
    put_str(&mut obj, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");

    let (rows_us, cols_us) = (usize::from(rows), usize::from(cols));
    let row_bytes = cols_us * 3;
    let mut out = Part10Writer::create(path, obj)?;
    out.begin_pixel_data(
        VR::OB,
        u64::from(frames) * rows_us as u64 * row_bytes as u64,
    )?;
    let mut rng = Rng::new(seed, SeriesKind::Us as u64);
    let mut grey = vec![0u8; cols_us];
    // One RGB row per frame, doubled so that any rotation is one contiguous slice.
    let mut base = vec![0u8; row_bytes * 2];
    for frame in 0..frames as usize {
        rng.fill_masked(&mut grey, u64::MAX);
        for (rgb, &g) in base[..row_bytes].chunks_exact_mut(3).zip(&grey) {
            rgb.fill(g);
        }
        base.copy_within(..row_bytes, row_bytes);
        for r in 0..rows_us {
            let shift = ((r * 7 + frame * 3) % cols_us) * 3;
            out.pixels(&base[shift..shift + row_bytes])?;
        }
    }
    let written = out.finish()?;
    Ok(Generated::new(
        InstanceFacts {
            sop_instance_uid,
            study_instance_uid: &spec.study_uid,
            series_instance_uid: &ids.series,
            sop_class_uid: uids::ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE,
            modality: "US",
        },
        written,
    ))
}
