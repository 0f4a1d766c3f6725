//! What a generator reports about each file it wrote.

use std::path::PathBuf;

use crate::writer::Written;

/// One generated DICOM file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generated {
    /// Where it was written.
    pub path: PathBuf,
    /// SOP Instance UID (0008,0018), also the file meta's Media Storage SOP Instance UID.
    pub sop_instance_uid: String,
    /// Study Instance UID (0020,000D) (the spec's `study_uid`).
    pub study_instance_uid: String,
    /// Series Instance UID (0020,000E).
    pub series_instance_uid: String,
    /// SOP Class UID (0008,0016).
    pub sop_class_uid: String,
    /// Modality (0008,0060) as written.
    pub modality: String,
    /// Size of the file in bytes.
    pub size: u64,
    /// BLAKE3 of the whole file, computed while writing it.
    pub blake3: [u8; 32],
    /// Offset of the first Pixel Data value byte (just after the 12-byte element header): a
    /// [`crate::truncated_copy`] shorter than this keeps the header, one longer cuts pixel data.
    pub pixel_data_offset: u64,
    /// Length of the Pixel Data value in the file (pixel bytes plus a pad byte if odd).
    pub pixel_data_len: u64,
}

/// The instance-level facts a generator knows before writing.
pub(crate) struct InstanceFacts<'a> {
    pub sop_instance_uid: String,
    pub study_instance_uid: &'a str,
    pub series_instance_uid: &'a str,
    pub sop_class_uid: &'a str,
    pub modality: &'a str,
}

impl Generated {
    pub(crate) fn new(facts: InstanceFacts<'_>, written: Written) -> Self {
        Generated {
            pixel_data_len: written.size - written.pixel_data_offset,
            path: written.path,
            sop_instance_uid: facts.sop_instance_uid,
            study_instance_uid: facts.study_instance_uid.to_owned(),
            series_instance_uid: facts.series_instance_uid.to_owned(),
            sop_class_uid: facts.sop_class_uid.to_owned(),
            modality: facts.modality.to_owned(),
            size: written.size,
            blake3: written.blake3,
            pixel_data_offset: written.pixel_data_offset,
        }
    }
}
