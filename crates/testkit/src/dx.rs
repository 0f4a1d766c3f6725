//! Digital X-Ray (DR): one large 16-bit unsigned image with 12 bits stored.

use std::io;
use std::path::Path;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};

use crate::check_dimensions;
use crate::generated::{Generated, InstanceFacts};
use crate::header::{
    base_object, ds_multi, put_pixel_module, put_str, InstanceHeader, PixelModule,
};
use crate::rng::Rng;
use crate::spec::{SeriesKind, SeriesUids, StudySpec};
use crate::writer::Part10Writer;

/// Detector pixel pitch (mm).
const PIXEL_PITCH_MM: f64 = 0.139;
/// Bits stored of every DX pixel (values 0..=4095).
pub const DX_BITS_STORED: u16 = 12;

/// Writes one Digital X-Ray Image, For Presentation (1.2.840.10008.5.1.4.1.1.1.1) of
/// `rows`×`cols` 16-bit unsigned pixels with 12 bits stored (a PA chest of the study in `spec`).
///
/// Pixels: a PRNG row (masked to 12 bits) shifted row by row; deterministic in `seed`.
pub fn dx_image(
    path: &Path,
    spec: &StudySpec,
    rows: u16,
    cols: u16,
    seed: u64,
) -> io::Result<Generated> {
    check_dimensions(rows, cols)?;
    let ids = SeriesUids::new(spec, SeriesKind::Dx, seed);
    let sop_instance_uid = ids.instance(1);
    let mut obj = base_object(
        spec,
        &InstanceHeader {
            sop_class_uid: uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
            sop_instance_uid: &sop_instance_uid,
            series_uid: &ids.series,
            modality: "DX",
            series_number: 1,
            instance_number: 1,
            image_type: "ORIGINAL\\PRIMARY",
        },
    );
    put_str(
        &mut obj,
        tags::PRESENTATION_INTENT_TYPE,
        VR::CS,
        "FOR PRESENTATION",
    );
    put_str(&mut obj, tags::KVP, VR::DS, "120");
    put_str(&mut obj, tags::DETECTOR_TYPE, VR::CS, "SCINTILLATOR");
    put_str(
        &mut obj,
        tags::IMAGER_PIXEL_SPACING,
        VR::DS,
        ds_multi(&[PIXEL_PITCH_MM, PIXEL_PITCH_MM]),
    );
    put_str(&mut obj, tags::VIEW_POSITION, VR::CS, "PA");
    put_str(&mut obj, tags::PATIENT_ORIENTATION, VR::CS, "L\\F");
    put_str(&mut obj, tags::IMAGE_LATERALITY, VR::CS, "U");
    put_pixel_module(
        &mut obj,
        &PixelModule {
            rows,
            cols,
            samples_per_pixel: 1,
            photometric: "MONOCHROME2",
            bits_allocated: 16,
            bits_stored: DX_BITS_STORED,
            pixel_representation: 0,
        },
    );
    put_str(
        &mut obj,
        tags::PIXEL_SPACING,
        VR::DS,
        ds_multi(&[PIXEL_PITCH_MM, PIXEL_PITCH_MM]),
    );
    put_str(&mut obj, tags::BURNED_IN_ANNOTATION, VR::CS, "NO");
    put_str(&mut obj, tags::PIXEL_INTENSITY_RELATIONSHIP, VR::CS, "LIN");
    obj.put(DataElement::new(
        tags::PIXEL_INTENSITY_RELATIONSHIP_SIGN,
        VR::SS,
        PrimitiveValue::from(1_i16),
    ));
    put_str(&mut obj, tags::WINDOW_CENTER, VR::DS, "2048");
    put_str(&mut obj, tags::WINDOW_WIDTH, VR::DS, "4096");
    put_str(&mut obj, tags::RESCALE_INTERCEPT, VR::DS, "0");
    put_str(&mut obj, tags::RESCALE_SLOPE, VR::DS, "1");
    put_str(&mut obj, tags::RESCALE_TYPE, VR::LO, "US");
    put_str(&mut obj, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");
    put_str(&mut obj, tags::PRESENTATION_LUT_SHAPE, VR::CS, "IDENTITY");

    let (rows_us, cols_us) = (usize::from(rows), usize::from(cols));
    let mut out = Part10Writer::create(path, obj)?;
    out.begin_pixel_data(VR::OW, rows_us as u64 * cols_us as u64 * 2)?;
    // One PRNG row, doubled so that any rotation is one contiguous slice.
    let mut base = vec![0u8; cols_us * 2 * 2];
    let mask = (1u64 << DX_BITS_STORED) - 1;
    Rng::new(seed, SeriesKind::Dx as u64)
        .fill_masked(&mut base[..cols_us * 2], mask * 0x0001_0001_0001_0001);
    base.copy_within(..cols_us * 2, cols_us * 2);
    for r in 0..rows_us {
        let shift = (r * 31) % cols_us;
        out.pixels(&base[shift * 2..(shift + cols_us) * 2])?;
    }
    let written = out.finish()?;
    Ok(Generated::new(
        InstanceFacts {
            sop_instance_uid,
            study_instance_uid: &spec.study_uid,
            series_instance_uid: &ids.series,
            sop_class_uid: uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
            modality: "DX",
        },
        written,
    ))
}
