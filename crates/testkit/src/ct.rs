//! CT series: one file per axial slice, 16-bit signed, Hounsfield units through a rescale of -1024.

use std::io;
use std::path::Path;

use dicom_core::VR;
use dicom_dictionary_std::{tags, uids};

use crate::check_dimensions;
use crate::generated::{Generated, InstanceFacts};
use crate::header::{
    base_object, ds, ds_multi, put_pixel_module, put_str, InstanceHeader, PixelModule,
};
use crate::rng::Rng;
use crate::spec::{SeriesKind, SeriesUids, StudySpec};
use crate::writer::Part10Writer;

/// Field of view (mm) and slice spacing of the generated series.
const FIELD_OF_VIEW_MM: f64 = 350.0;
const SLICE_THICKNESS_MM: f64 = 1.25;

/// Writes a CT series of `n` slices (CT Image Storage, 1.2.840.10008.5.1.4.1.1.2) of
/// `rows`×`cols` 16-bit signed pixels into `dir` (created if needed) as `CT_0001.dcm`,
/// `CT_0002.dcm`, … and returns them in slice order.
///
/// The slices share the study of `spec` and one series; they carry Image Position/Orientation
/// (Patient), Slice Thickness/Location, Pixel Spacing, Rescale Intercept −1024 / Slope 1 and a
/// soft-tissue window (40/400). Pixels: an elliptical "body" of noisy soft tissue in air, from a
/// PRNG row per slice shifted row by row — deterministic in `seed`, cheap to make.
pub fn ct_series(
    dir: &Path,
    spec: &StudySpec,
    n: usize,
    rows: u16,
    cols: u16,
    seed: u64,
) -> io::Result<Vec<Generated>> {
    check_dimensions(rows, cols)?;
    let count = u32::try_from(n)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many CT slices"))?;
    std::fs::create_dir_all(dir)?;

    let ids = SeriesUids::new(spec, SeriesKind::Ct, seed);
    let mut rng = Rng::new(seed, SeriesKind::Ct as u64);
    let (rows_us, cols_us) = (usize::from(rows), usize::from(cols));
    // One PRNG row per slice, doubled so that any rotation is one contiguous slice.
    let mut base = vec![0u8; cols_us * 2 * 2];
    let mut row = vec![0u8; cols_us * 2];
    let spacing = FIELD_OF_VIEW_MM / f64::from(cols);
    let corner = -FIELD_OF_VIEW_MM / 2.0;

    let mut generated = Vec::with_capacity(n);
    for number in 1..=count {
        let sop_instance_uid = ids.instance(number);
        let z = -f64::from(number - 1) * SLICE_THICKNESS_MM;
        let mut obj = base_object(
            spec,
            &InstanceHeader {
                sop_class_uid: uids::CT_IMAGE_STORAGE,
                sop_instance_uid: &sop_instance_uid,
                series_uid: &ids.series,
                modality: "CT",
                series_number: 1,
                instance_number: number,
                image_type: "ORIGINAL\\PRIMARY\\AXIAL",
            },
        );
        put_str(
            &mut obj,
            tags::SLICE_THICKNESS,
            VR::DS,
            ds(SLICE_THICKNESS_MM),
        );
        put_str(&mut obj, tags::KVP, VR::DS, "120");
        put_str(&mut obj, tags::ACQUISITION_NUMBER, VR::IS, "1");
        put_str(
            &mut obj,
            tags::IMAGE_POSITION_PATIENT,
            VR::DS,
            ds_multi(&[corner, corner, z]),
        );
        put_str(
            &mut obj,
            tags::IMAGE_ORIENTATION_PATIENT,
            VR::DS,
            ds_multi(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
        );
        put_str(
            &mut obj,
            tags::FRAME_OF_REFERENCE_UID,
            VR::UI,
            ids.frame_of_reference.as_str(),
        );
        put_str(&mut obj, tags::POSITION_REFERENCE_INDICATOR, VR::LO, "");
        put_str(&mut obj, tags::SLICE_LOCATION, VR::DS, ds(z));
        put_pixel_module(
            &mut obj,
            &PixelModule {
                rows,
                cols,
                samples_per_pixel: 1,
                photometric: "MONOCHROME2",
                bits_allocated: 16,
                bits_stored: 16,
                pixel_representation: 1,
            },
        );
        put_str(
            &mut obj,
            tags::PIXEL_SPACING,
            VR::DS,
            ds_multi(&[spacing, spacing]),
        );
        put_str(&mut obj, tags::WINDOW_CENTER, VR::DS, "40");
        put_str(&mut obj, tags::WINDOW_WIDTH, VR::DS, "400");
        put_str(&mut obj, tags::RESCALE_INTERCEPT, VR::DS, "-1024");
        put_str(&mut obj, tags::RESCALE_SLOPE, VR::DS, "1");
        put_str(&mut obj, tags::RESCALE_TYPE, VR::LO, "HU");

        let path = dir.join(format!("CT_{number:04}.dcm"));
        let mut out = Part10Writer::create(&path, obj)?;
        out.begin_pixel_data(VR::OW, rows_us as u64 * cols_us as u64 * 2)?;

        // Soft tissue around 40 HU (stored 1064) ± 64.
        for pair in base[..cols_us * 2].chunks_exact_mut(2) {
            let stored = 1000 + (rng.next_u64() % 128) as i16;
            pair.copy_from_slice(&stored.to_le_bytes());
        }
        base.copy_within(..cols_us * 2, cols_us * 2);
        for r in 0..rows_us {
            row.fill(0); // stored 0 = -1024 HU, air
            let dy = (r as f64 + 0.5 - rows_us as f64 / 2.0) / (rows_us as f64 * 0.45);
            if dy.abs() < 1.0 {
                let half = (cols_us as f64 * 0.45 * (1.0 - dy * dy).sqrt()) as usize;
                let start = (cols_us / 2).saturating_sub(half);
                let end = (cols_us / 2 + half).min(cols_us);
                let shift = (r * 37 + number as usize * 13) % cols_us;
                row[start * 2..end * 2]
                    .copy_from_slice(&base[shift * 2..(shift + end - start) * 2]);
            }
            out.pixels(&row)?;
        }

        let written = out.finish()?;
        generated.push(Generated::new(
            InstanceFacts {
                sop_instance_uid,
                study_instance_uid: &spec.study_uid,
                series_instance_uid: &ids.series,
                sop_class_uid: uids::CT_IMAGE_STORAGE,
                modality: "CT",
            },
            written,
        ));
    }
    Ok(generated)
}
