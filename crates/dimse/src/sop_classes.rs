//! SOP classes: the Storage SOP classes of PS3.4 Table B.5-1 (current ones, and the retired
//! ones devices still send), Verification, and the Query/Retrieve classes.
//!
//! The storage table was generated from the standard's registry (PS3.6 Annex A, as shipped by
//! pydicom/pynetdicom) and is sorted by UID; each class also has a constant.

/// One SOP class: its UID and the standard's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SopClass {
    /// The UID, e.g. `1.2.840.10008.5.1.4.1.1.2`.
    pub uid: &'static str,
    /// The standard's name, e.g. `CT Image Storage`.
    pub name: &'static str,
}

/// Verification SOP Class (C-ECHO).
pub const VERIFICATION: &str = "1.2.840.10008.1.1";
/// Patient Root Query/Retrieve Information Model - FIND.
pub const PATIENT_ROOT_QR_FIND: &str = "1.2.840.10008.5.1.4.1.2.1.1";
/// Patient Root Query/Retrieve Information Model - MOVE.
pub const PATIENT_ROOT_QR_MOVE: &str = "1.2.840.10008.5.1.4.1.2.1.2";
/// Patient Root Query/Retrieve Information Model - GET.
pub const PATIENT_ROOT_QR_GET: &str = "1.2.840.10008.5.1.4.1.2.1.3";
/// Study Root Query/Retrieve Information Model - FIND.
pub const STUDY_ROOT_QR_FIND: &str = "1.2.840.10008.5.1.4.1.2.2.1";
/// Study Root Query/Retrieve Information Model - MOVE.
pub const STUDY_ROOT_QR_MOVE: &str = "1.2.840.10008.5.1.4.1.2.2.2";
/// Study Root Query/Retrieve Information Model - GET.
pub const STUDY_ROOT_QR_GET: &str = "1.2.840.10008.5.1.4.1.2.2.3";

/// The Query/Retrieve classes with their role.
pub const QUERY_RETRIEVE: &[SopClass] = &[
    SopClass {
        uid: PATIENT_ROOT_QR_FIND,
        name: "Patient Root Query/Retrieve Information Model - FIND",
    },
    SopClass {
        uid: PATIENT_ROOT_QR_MOVE,
        name: "Patient Root Query/Retrieve Information Model - MOVE",
    },
    SopClass {
        uid: PATIENT_ROOT_QR_GET,
        name: "Patient Root Query/Retrieve Information Model - GET",
    },
    SopClass {
        uid: STUDY_ROOT_QR_FIND,
        name: "Study Root Query/Retrieve Information Model - FIND",
    },
    SopClass {
        uid: STUDY_ROOT_QR_MOVE,
        name: "Study Root Query/Retrieve Information Model - MOVE",
    },
    SopClass {
        uid: STUDY_ROOT_QR_GET,
        name: "Study Root Query/Retrieve Information Model - GET",
    },
];

/// Is `uid` one of the FIND models?
pub fn is_find(uid: &str) -> bool {
    uid == PATIENT_ROOT_QR_FIND || uid == STUDY_ROOT_QR_FIND
}

/// Is `uid` one of the MOVE models?
pub fn is_move(uid: &str) -> bool {
    uid == PATIENT_ROOT_QR_MOVE || uid == STUDY_ROOT_QR_MOVE
}

/// Is `uid` one of the GET models?
pub fn is_get(uid: &str) -> bool {
    uid == PATIENT_ROOT_QR_GET || uid == STUDY_ROOT_QR_GET
}

/// Is `uid` a Storage SOP class of [`STORAGE`]?
pub fn is_storage(uid: &str) -> bool {
    storage(uid).is_some()
}

/// The Storage SOP class with this UID.
pub fn storage(uid: &str) -> Option<&'static SopClass> {
    STORAGE.iter().find(|c| c.uid == uid)
}

/// The standard's name of any SOP class known here.
pub fn name(uid: &str) -> Option<&'static str> {
    if uid == VERIFICATION {
        return Some("Verification SOP Class");
    }
    storage(uid)
        .or_else(|| QUERY_RETRIEVE.iter().find(|c| c.uid == uid))
        .map(|c| c.name)
}

/// Computed Radiography Image Storage.
pub const COMPUTED_RADIOGRAPHY_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.1";
/// Digital X-Ray Image Storage - For Presentation.
pub const DIGITAL_XRAY_IMAGE_STORAGE_FOR_PRESENTATION: &str = "1.2.840.10008.5.1.4.1.1.1.1";
/// Digital X-Ray Image Storage - For Processing.
pub const DIGITAL_XRAY_IMAGE_STORAGE_FOR_PROCESSING: &str = "1.2.840.10008.5.1.4.1.1.1.1.1";
/// Digital Mammography X-Ray Image Storage - For Presentation.
pub const DIGITAL_MAMMOGRAPHY_XRAY_IMAGE_STORAGE_FOR_PRESENTATION: &str =
    "1.2.840.10008.5.1.4.1.1.1.2";
/// Digital Mammography X-Ray Image Storage - For Processing.
pub const DIGITAL_MAMMOGRAPHY_XRAY_IMAGE_STORAGE_FOR_PROCESSING: &str =
    "1.2.840.10008.5.1.4.1.1.1.2.1";
/// Digital Intra-Oral X-Ray Image Storage - For Presentation.
pub const DIGITAL_INTRA_ORAL_XRAY_IMAGE_STORAGE_FOR_PRESENTATION: &str =
    "1.2.840.10008.5.1.4.1.1.1.3";
/// Digital Intra-Oral X-Ray Image Storage - For Processing.
pub const DIGITAL_INTRA_ORAL_XRAY_IMAGE_STORAGE_FOR_PROCESSING: &str =
    "1.2.840.10008.5.1.4.1.1.1.3.1";
/// CT Image Storage.
pub const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
/// Enhanced CT Image Storage.
pub const ENHANCED_CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2.1";
/// Legacy Converted Enhanced CT Image Storage.
pub const LEGACY_CONVERTED_ENHANCED_CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2.2";
/// Ultrasound Multi-frame Image Storage.
pub const ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE_RETIRED: &str = "1.2.840.10008.5.1.4.1.1.3";
/// Ultrasound Multi-frame Image Storage.
pub const ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.3.1";
/// MR Image Storage.
pub const MR_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.4";
/// Enhanced MR Image Storage.
pub const ENHANCED_MR_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.4.1";
/// MR Spectroscopy Storage.
pub const MR_SPECTROSCOPY_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.4.2";
/// Enhanced MR Color Image Storage.
pub const ENHANCED_MR_COLOR_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.4.3";
/// Legacy Converted Enhanced MR Image Storage.
pub const LEGACY_CONVERTED_ENHANCED_MR_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.4.4";
/// Nuclear Medicine Image Storage.
pub const NUCLEAR_MEDICINE_IMAGE_STORAGE_RETIRED: &str = "1.2.840.10008.5.1.4.1.1.5";
/// Ultrasound Image Storage.
pub const ULTRASOUND_IMAGE_STORAGE_RETIRED: &str = "1.2.840.10008.5.1.4.1.1.6";
/// Ultrasound Image Storage.
pub const ULTRASOUND_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.6.1";
/// Enhanced US Volume Storage.
pub const ENHANCED_US_VOLUME_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.6.2";
/// Photoacoustic Image Storage.
pub const PHOTOACOUSTIC_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.6.3";
/// Secondary Capture Image Storage.
pub const SECONDARY_CAPTURE_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.7";
/// Multi-frame Single Bit Secondary Capture Image Storage.
pub const MULTI_FRAME_SINGLE_BIT_SECONDARY_CAPTURE_IMAGE_STORAGE: &str =
    "1.2.840.10008.5.1.4.1.1.7.1";
/// Multi-frame Grayscale Byte Secondary Capture Image Storage.
pub const MULTI_FRAME_GRAYSCALE_BYTE_SECONDARY_CAPTURE_IMAGE_STORAGE: &str =
    "1.2.840.10008.5.1.4.1.1.7.2";
/// Multi-frame Grayscale Word Secondary Capture Image Storage.
pub const MULTI_FRAME_GRAYSCALE_WORD_SECONDARY_CAPTURE_IMAGE_STORAGE: &str =
    "1.2.840.10008.5.1.4.1.1.7.3";
/// Multi-frame True Color Secondary Capture Image Storage.
pub const MULTI_FRAME_TRUE_COLOR_SECONDARY_CAPTURE_IMAGE_STORAGE: &str =
    "1.2.840.10008.5.1.4.1.1.7.4";
/// 12-lead ECG Waveform Storage.
pub const TWELVE_LEAD_ECG_WAVEFORM_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.9.1.1";
/// General ECG Waveform Storage.
pub const GENERAL_ECG_WAVEFORM_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.9.1.2";
/// Ambulatory ECG Waveform Storage.
pub const AMBULATORY_ECG_WAVEFORM_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.9.1.3";
/// General 32-bit ECG Waveform Storage.
pub const GENERAL_32BIT_ECG_WAVEFORM_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.9.1.4";
/// Hemodynamic Waveform Storage.
pub const HEMODYNAMIC_WAVEFORM_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.9.2.1";
/// Cardiac Electrophysiology Waveform Storage.
pub const CARDIAC_ELECTROPHYSIOLOGY_WAVEFORM_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.9.3.1";
/// Basic Voice Audio Waveform Storage.
pub const BASIC_VOICE_AUDIO_WAVEFORM_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.9.4.1";
/// General Audio Waveform Storage.
pub const GENERAL_AUDIO_WAVEFORM_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.9.4.2";
/// Arterial Pulse Waveform Storage.
pub const ARTERIAL_PULSE_WAVEFORM_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.9.5.1";
/// Respiratory Waveform Storage.
pub const RESPIRATORY_WAVEFORM_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.9.6.1";
/// Multi-channel Respiratory Waveform Storage.
pub const MULTICHANNEL_RESPIRATORY_WAVEFORM_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.9.6.2";
/// Routine Scalp Electroencephalogram Waveform Storage.
pub const ROUTINE_SCALP_ELECTROENCEPHALOGRAM_WAVEFORM_STORAGE: &str =
    "1.2.840.10008.5.1.4.1.1.9.7.1";
/// Electromyogram Waveform Storage.
pub const ELECTROMYOGRAM_WAVEFORM_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.9.7.2";
/// Electrooculogram Waveform Storage.
pub const ELECTROOCULOGRAM_WAVEFORM_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.9.7.3";
/// Sleep Electroencephalogram Waveform Storage.
pub const SLEEP_ELECTROENCEPHALOGRAM_WAVEFORM_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.9.7.4";
/// Body Position Waveform Storage.
pub const BODY_POSITION_WAVEFORM_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.9.8.1";
/// WaveformPresentationStateStorage.
pub const WAVEFORM_PRESENTATION_STATE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.9.100.1";
/// WaveformAcquisitionPresentationStateStorage.
pub const WAVEFORM_ACQUISITION_PRESENTATION_STATE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.9.100.2";
/// Grayscale Softcopy Presentation State Storage.
pub const GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.11.1";
/// Color Softcopy Presentation State Storage.
pub const COLOR_SOFTCOPY_PRESENTATION_STATE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.11.2";
/// Pseudo-Color Softcopy Presentation State Storage.
pub const PSEUDO_COLOR_SOFTCOPY_PRESENTATION_STATE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.11.3";
/// Blending Softcopy Presentation State Storage.
pub const BLENDING_SOFTCOPY_PRESENTATION_STATE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.11.4";
/// XA/XRF Grayscale Softcopy Presentation State Storage.
pub const XAXRF_GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE: &str =
    "1.2.840.10008.5.1.4.1.1.11.5";
/// Grayscale Planar MPR Volumetric Presentation State Storage.
pub const GRAYSCALE_PLANAR_MPR_VOLUMETRIC_PRESENTATION_STATE_STORAGE: &str =
    "1.2.840.10008.5.1.4.1.1.11.6";
/// Compositing Planar MPR Volumetric Presentation State Storage.
pub const COMPOSITING_PLANAR_MPR_VOLUMETRIC_PRESENTATION_STATE_STORAGE: &str =
    "1.2.840.10008.5.1.4.1.1.11.7";
/// Advanced Blending Presentation State Storage.
pub const ADVANCED_BLENDING_PRESENTATION_STATE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.11.8";
/// Volume Rendering Volumetric Presentation State Storage.
pub const VOLUME_RENDERING_VOLUMETRIC_PRESENTATION_STATE_STORAGE: &str =
    "1.2.840.10008.5.1.4.1.1.11.9";
/// Segmented Volume Rendering Volumetric Presentation State Storage.
pub const SEGMENTED_VOLUME_RENDERING_VOLUMETRIC_PRESENTATION_STATE_STORAGE: &str =
    "1.2.840.10008.5.1.4.1.1.11.10";
/// Multiple Volume Rendering Volumetric Presentation State Storage.
pub const MULTIPLE_VOLUME_RENDERING_VOLUMETRIC_PRESENTATION_STATE_STORAGE: &str =
    "1.2.840.10008.5.1.4.1.1.11.11";
/// Variable Modality LUT Softcopy Presentation State Storage.
pub const VARIABLE_MODALITY_LUT_SOFTCOPY_PRESENTATION_STATE_STORAGE: &str =
    "1.2.840.10008.5.1.4.1.1.11.12";
/// X-Ray Angiographic Image Storage.
pub const XRAY_ANGIOGRAPHIC_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.12.1";
/// Enhanced XA Image Storage.
pub const ENHANCED_XA_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.12.1.1";
/// X-Ray Radiofluoroscopic Image Storage.
pub const XRAY_RADIOFLUOROSCOPIC_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.12.2";
/// Enhanced XRF Image Storage.
pub const ENHANCED_XRF_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.12.2.1";
/// X-Ray Angiographic Bi-Plane Image Storage.
pub const XRAY_ANGIOGRAPHIC_BI_PLANE_IMAGE_STORAGE_RETIRED: &str = "1.2.840.10008.5.1.4.1.1.12.3";
/// X-Ray 3D Angiographic Image Storage.
pub const XRAY3D_ANGIOGRAPHIC_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.13.1.1";
/// X-Ray 3D Craniofacial Image Storage.
pub const XRAY3D_CRANIOFACIAL_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.13.1.2";
/// Breast Tomosynthesis Image Storage.
pub const BREAST_TOMOSYNTHESIS_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.13.1.3";
/// Breast Projection X-Ray Image Storage - For Presentation.
pub const BREAST_PROJECTION_XRAY_IMAGE_STORAGE_FOR_PRESENTATION: &str =
    "1.2.840.10008.5.1.4.1.1.13.1.4";
/// Breast Projection X-Ray Image Storage - For Processing.
pub const BREAST_PROJECTION_XRAY_IMAGE_STORAGE_FOR_PROCESSING: &str =
    "1.2.840.10008.5.1.4.1.1.13.1.5";
/// Intravascular Optical Coherence Tomography Image Storage - For Presentation.
pub const INTRAVASCULAR_OPTICAL_COHERENCE_TOMOGRAPHY_IMAGE_STORAGE_FOR_PRESENTATION: &str =
    "1.2.840.10008.5.1.4.1.1.14.1";
/// Intravascular Optical Coherence Tomography Image Storage - For Processing.
pub const INTRAVASCULAR_OPTICAL_COHERENCE_TOMOGRAPHY_IMAGE_STORAGE_FOR_PROCESSING: &str =
    "1.2.840.10008.5.1.4.1.1.14.2";
/// Nuclear Medicine Image Storage.
pub const NUCLEAR_MEDICINE_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.20";
/// Parametric Map Storage.
pub const PARAMETRIC_MAP_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.30";
/// Raw Data Storage.
pub const RAW_DATA_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.66";
/// Spatial Registration Storage.
pub const SPATIAL_REGISTRATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.66.1";
/// Spatial Fiducials Storage.
pub const SPATIAL_FIDUCIALS_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.66.2";
/// Deformable Spatial Registration Storage.
pub const DEFORMABLE_SPATIAL_REGISTRATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.66.3";
/// Segmentation Storage.
pub const SEGMENTATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.66.4";
/// Surface Segmentation Storage.
pub const SURFACE_SEGMENTATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.66.5";
/// Tractography Results Storage.
pub const TRACTOGRAPHY_RESULTS_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.66.6";
/// LabelMapSegmentationStorage.
pub const LABEL_MAP_SEGMENTATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.66.7";
/// HeightMapSegmentationStorage.
pub const HEIGHT_MAP_SEGMENTATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.66.8";
/// Real World Value Mapping Storage.
pub const REAL_WORLD_VALUE_MAPPING_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.67";
/// Surface Scan Mesh Storage.
pub const SURFACE_SCAN_MESH_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.68.1";
/// Surface Scan Point Cloud Storage.
pub const SURFACE_SCAN_POINT_CLOUD_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.68.2";
/// VL Endoscopic Image Storage.
pub const VL_ENDOSCOPIC_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.77.1.1";
/// Video Endoscopic Image Storage.
pub const VIDEO_ENDOSCOPIC_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.77.1.1.1";
/// VL Microscopic Image Storage.
pub const VL_MICROSCOPIC_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.77.1.2";
/// Video Microscopic Image Storage.
pub const VIDEO_MICROSCOPIC_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.77.1.2.1";
/// VL Slide-Coordinates Microscopic Image Storage.
pub const VL_SLIDE_COORDINATES_MICROSCOPIC_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.77.1.3";
/// VL Photographic Image Storage.
pub const VL_PHOTOGRAPHIC_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.77.1.4";
/// Video Photographic Image Storage.
pub const VIDEO_PHOTOGRAPHIC_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.77.1.4.1";
/// Ophthalmic Photography 8 Bit Image Storage.
pub const OPHTHALMIC_PHOTOGRAPHY8_BIT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.77.1.5.1";
/// Ophthalmic Photography 16 Bit Image Storage.
pub const OPHTHALMIC_PHOTOGRAPHY16_BIT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.77.1.5.2";
/// Stereometric Relationship Storage.
pub const STEREOMETRIC_RELATIONSHIP_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.77.1.5.3";
/// Ophthalmic Tomography Image Storage.
pub const OPHTHALMIC_TOMOGRAPHY_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.77.1.5.4";
/// Wide Field Ophthalmic Photography Stereographic Projection Image Storage.
pub const WIDE_FIELD_OPHTHALMIC_PHOTOGRAPHY_STEREOGRAPHIC_PROJECTION_IMAGE_STORAGE: &str =
    "1.2.840.10008.5.1.4.1.1.77.1.5.5";
/// Wide Field Ophthalmic Photography 3D Coordinates Image Storage.
pub const WIDE_FIELD_OPHTHALMIC_PHOTOGRAPHY3D_COORDINATES_IMAGE_STORAGE: &str =
    "1.2.840.10008.5.1.4.1.1.77.1.5.6";
/// Ophthalmic Optical Coherence Tomography En Face Image Storage.
pub const OPHTHALMIC_OPTICAL_COHERENCE_TOMOGRAPHY_EN_FACE_IMAGE_STORAGE: &str =
    "1.2.840.10008.5.1.4.1.1.77.1.5.7";
/// Ophthalmic Optical Coherence Tomography B-scan Volume Analysis Storage.
pub const OPHTHALMIC_OPTICAL_COHERENCE_TOMOGRAPHY_BSCAN_VOLUME_ANALYSIS_STORAGE: &str =
    "1.2.840.10008.5.1.4.1.1.77.1.5.8";
/// VL Whole Slide Microscopy Image Storage.
pub const VL_WHOLE_SLIDE_MICROSCOPY_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.77.1.6";
/// Dermoscopic Photography Image Storage.
pub const DERMOSCOPIC_PHOTOGRAPHY_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.77.1.7";
/// Confocal Microscopy Image Storage.
pub const CONFOCAL_MICROSCOPY_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.77.1.8";
/// Confocal Microscopy Tiled Pyramidal Image Storage.
pub const CONFOCAL_MICROSCOPY_TILED_PYRAMIDAL_IMAGE_STORAGE: &str =
    "1.2.840.10008.5.1.4.1.1.77.1.9";
/// Lensometry Measurements Storage.
pub const LENSOMETRY_MEASUREMENTS_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.78.1";
/// Autorefraction Measurements Storage.
pub const AUTOREFRACTION_MEASUREMENTS_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.78.2";
/// Keratometry Measurements Storage.
pub const KERATOMETRY_MEASUREMENTS_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.78.3";
/// Subjective Refraction Measurements Storage.
pub const SUBJECTIVE_REFRACTION_MEASUREMENTS_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.78.4";
/// Visual Acuity Measurements Storage.
pub const VISUAL_ACUITY_MEASUREMENTS_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.78.5";
/// Spectacle Prescription Report Storage.
pub const SPECTACLE_PRESCRIPTION_REPORT_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.78.6";
/// Ophthalmic Axial Measurements Storage.
pub const OPHTHALMIC_AXIAL_MEASUREMENTS_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.78.7";
/// Intraocular Lens Calculations Storage.
pub const INTRAOCULAR_LENS_CALCULATIONS_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.78.8";
/// Macular Grid Thickness and Volume Report Storage.
pub const MACULAR_GRID_THICKNESS_AND_VOLUME_REPORT_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.79.1";
/// Ophthalmic Visual Field Static Perimetry Measurements Storage.
pub const OPHTHALMIC_VISUAL_FIELD_STATIC_PERIMETRY_MEASUREMENTS_STORAGE: &str =
    "1.2.840.10008.5.1.4.1.1.80.1";
/// Ophthalmic Thickness Map Storage.
pub const OPHTHALMIC_THICKNESS_MAP_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.81.1";
/// Corneal Topography Map Storage.
pub const CORNEAL_TOPOGRAPHY_MAP_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.82.1";
/// Basic Text SR Storage.
pub const BASIC_TEXT_SR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.11";
/// Enhanced SR Storage.
pub const ENHANCED_SR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.22";
/// Comprehensive SR Storage.
pub const COMPREHENSIVE_SR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.33";
/// Comprehensive 3D SR Storage.
pub const COMPREHENSIVE3DSR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.34";
/// Extensible SR Storage.
pub const EXTENSIBLE_SR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.35";
/// Procedure Log Storage.
pub const PROCEDURE_LOG_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.40";
/// Mammography CAD SR Storage.
pub const MAMMOGRAPHY_CADSR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.50";
/// Key Object Selection Document Storage.
pub const KEY_OBJECT_SELECTION_DOCUMENT_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.59";
/// Chest CAD SR Storage.
pub const CHEST_CADSR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.65";
/// X-Ray Radiation Dose SR Storage.
pub const XRAY_RADIATION_DOSE_SR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.67";
/// Radiopharmaceutical Radiation Dose SR Storage.
pub const RADIOPHARMACEUTICAL_RADIATION_DOSE_SR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.68";
/// Colon CAD SR Storage.
pub const COLON_CADSR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.69";
/// Implantation Plan SR Storage.
pub const IMPLANTATION_PLAN_SR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.70";
/// Acquisition Context SR Storage.
pub const ACQUISITION_CONTEXT_SR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.71";
/// Simplified Adult Echo SR Storage.
pub const SIMPLIFIED_ADULT_ECHO_SR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.72";
/// Patient Radiation Dose SR Storage.
pub const PATIENT_RADIATION_DOSE_SR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.73";
/// Planned Imaging Agent Administration SR Storage.
pub const PLANNED_IMAGING_AGENT_ADMINISTRATION_SR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.74";
/// Performed Imaging Agent Administration SR Storage.
pub const PERFORMED_IMAGING_AGENT_ADMINISTRATION_SR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.75";
/// Enhanced X-Ray Radiation Dose SR Storage.
pub const ENHANCED_XRAY_RADIATION_DOSE_SR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.76";
/// Waveform Annotation SR Storage.
pub const WAVEFORM_ANNOTATION_SR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.88.77";
/// Content Assessment Results Storage.
pub const CONTENT_ASSESSMENT_RESULTS_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.90.1";
/// Microscopy Bulk Simple Annotations Storage.
pub const MICROSCOPY_BULK_SIMPLE_ANNOTATIONS_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.91.1";
/// Encapsulated PDF Storage.
pub const ENCAPSULATED_PDF_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.104.1";
/// Encapsulated CDA Storage.
pub const ENCAPSULATED_CDA_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.104.2";
/// Encapsulated STL Storage.
pub const ENCAPSULATED_STL_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.104.3";
/// Encapsulated OBJ Storage.
pub const ENCAPSULATED_OBJ_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.104.4";
/// Encapsulated MTL Storage.
pub const ENCAPSULATED_MTL_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.104.5";
/// Positron Emission Tomography Image Storage.
pub const POSITRON_EMISSION_TOMOGRAPHY_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.128";
/// Legacy Converted Enhanced PET Image Storage.
pub const LEGACY_CONVERTED_ENHANCED_PET_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.128.1";
/// Enhanced PET Image Storage.
pub const ENHANCED_PET_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.130";
/// Basic Structured Display Storage.
pub const BASIC_STRUCTURED_DISPLAY_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.131";
/// CT Performed Procedure Protocol Storage.
pub const CT_PERFORMED_PROCEDURE_PROTOCOL_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.200.2";
/// XA Performed Procedure Protocol Storage.
pub const XA_PERFORMED_PROCEDURE_PROTOCOL_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.200.8";
/// RT Image Storage.
pub const RT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.1";
/// RT Dose Storage.
pub const RT_DOSE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.2";
/// RT Structure Set Storage.
pub const RT_STRUCTURE_SET_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.3";
/// RT Beams Treatment Record Storage.
pub const RT_BEAMS_TREATMENT_RECORD_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.4";
/// RT Plan Storage.
pub const RT_PLAN_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.5";
/// RT Brachy Treatment Record Storage.
pub const RT_BRACHY_TREATMENT_RECORD_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.6";
/// RT Treatment Summary Record Storage.
pub const RT_TREATMENT_SUMMARY_RECORD_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.7";
/// RT Ion Plan Storage.
pub const RT_ION_PLAN_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.8";
/// RT Ion Beams Treatment Record Storage.
pub const RT_ION_BEAMS_TREATMENT_RECORD_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.9";
/// RT Physician Intent Storage.
pub const RT_PHYSICIAN_INTENT_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.10";
/// RT Segment Annotation Storage.
pub const RT_SEGMENT_ANNOTATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.11";
/// RT Radiation Set Storage.
pub const RT_RADIATION_SET_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.12";
/// C-Arm Photon-Electron Radiation Storage.
pub const C_ARM_PHOTON_ELECTRON_RADIATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.13";
/// Tomotherapeutic Radiation Storage.
pub const TOMOTHERAPEUTIC_RADIATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.14";
/// Robotic-Arm Radiation Storage.
pub const ROBOTIC_ARM_RADIATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.15";
/// RT Radiation Record Set Storage.
pub const RT_RADIATION_RECORD_SET_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.16";
/// RT Radiation Salvage Record Storage.
pub const RT_RADIATION_SALVAGE_RECORD_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.17";
/// Tomotherapeutic Radiation Record Storage.
pub const TOMOTHERAPEUTIC_RADIATION_RECORD_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.18";
/// C-Arm Photon-Electron Radiation Record Storage.
pub const C_ARM_PHOTON_ELECTRON_RADIATION_RECORD_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.19";
/// Robotic Radiation Record Storage.
pub const ROBOTIC_ARM_RADIATION_RECORD_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.20";
/// RT Radiation Set Delivery Instruction Storage.
pub const RT_RADIATION_SET_DELIVERY_INSTRUCTION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.21";
/// RT Treatment Preparation Storage.
pub const RT_TREATMENT_PREPARATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.22";
/// Enhanced RT Image Storage.
pub const ENHANCED_RT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.23";
/// Enhanced Continuous RT Image Storage.
pub const ENHANCED_CONTINUOUS_RT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.24";
/// RT Patient Position Acquisition Instruction Storage.
pub const RT_PATIENT_POSITION_ACQUISITION_INSTRUCTION_STORAGE: &str =
    "1.2.840.10008.5.1.4.1.1.481.25";
/// RT Beams Delivery Instruction Storage.
pub const RT_BEAMS_DELIVERY_INSTRUCTION_STORAGE: &str = "1.2.840.10008.5.1.4.34.7";
/// RT Brachy Application Setup Delivery Instruction Storage.
pub const RT_BRACHY_APPLICATION_SETUP_DELIVERY_INSTRUCTIONS_STORAGE: &str =
    "1.2.840.10008.5.1.4.34.10";

/// Every Storage SOP class (PS3.4 Table B.5-1 and retired classes still seen), by UID.
pub const STORAGE: &[SopClass] = &[
    SopClass {
        uid: COMPUTED_RADIOGRAPHY_IMAGE_STORAGE,
        name: "Computed Radiography Image Storage",
    },
    SopClass {
        uid: DIGITAL_XRAY_IMAGE_STORAGE_FOR_PRESENTATION,
        name: "Digital X-Ray Image Storage - For Presentation",
    },
    SopClass {
        uid: DIGITAL_XRAY_IMAGE_STORAGE_FOR_PROCESSING,
        name: "Digital X-Ray Image Storage - For Processing",
    },
    SopClass {
        uid: DIGITAL_MAMMOGRAPHY_XRAY_IMAGE_STORAGE_FOR_PRESENTATION,
        name: "Digital Mammography X-Ray Image Storage - For Presentation",
    },
    SopClass {
        uid: DIGITAL_MAMMOGRAPHY_XRAY_IMAGE_STORAGE_FOR_PROCESSING,
        name: "Digital Mammography X-Ray Image Storage - For Processing",
    },
    SopClass {
        uid: DIGITAL_INTRA_ORAL_XRAY_IMAGE_STORAGE_FOR_PRESENTATION,
        name: "Digital Intra-Oral X-Ray Image Storage - For Presentation",
    },
    SopClass {
        uid: DIGITAL_INTRA_ORAL_XRAY_IMAGE_STORAGE_FOR_PROCESSING,
        name: "Digital Intra-Oral X-Ray Image Storage - For Processing",
    },
    SopClass {
        uid: CT_IMAGE_STORAGE,
        name: "CT Image Storage",
    },
    SopClass {
        uid: ENHANCED_CT_IMAGE_STORAGE,
        name: "Enhanced CT Image Storage",
    },
    SopClass {
        uid: LEGACY_CONVERTED_ENHANCED_CT_IMAGE_STORAGE,
        name: "Legacy Converted Enhanced CT Image Storage",
    },
    SopClass {
        uid: ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE_RETIRED,
        name: "Ultrasound Multi-frame Image Storage",
    },
    SopClass {
        uid: ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE,
        name: "Ultrasound Multi-frame Image Storage",
    },
    SopClass {
        uid: MR_IMAGE_STORAGE,
        name: "MR Image Storage",
    },
    SopClass {
        uid: ENHANCED_MR_IMAGE_STORAGE,
        name: "Enhanced MR Image Storage",
    },
    SopClass {
        uid: MR_SPECTROSCOPY_STORAGE,
        name: "MR Spectroscopy Storage",
    },
    SopClass {
        uid: ENHANCED_MR_COLOR_IMAGE_STORAGE,
        name: "Enhanced MR Color Image Storage",
    },
    SopClass {
        uid: LEGACY_CONVERTED_ENHANCED_MR_IMAGE_STORAGE,
        name: "Legacy Converted Enhanced MR Image Storage",
    },
    SopClass {
        uid: NUCLEAR_MEDICINE_IMAGE_STORAGE_RETIRED,
        name: "Nuclear Medicine Image Storage",
    },
    SopClass {
        uid: ULTRASOUND_IMAGE_STORAGE_RETIRED,
        name: "Ultrasound Image Storage",
    },
    SopClass {
        uid: ULTRASOUND_IMAGE_STORAGE,
        name: "Ultrasound Image Storage",
    },
    SopClass {
        uid: ENHANCED_US_VOLUME_STORAGE,
        name: "Enhanced US Volume Storage",
    },
    SopClass {
        uid: PHOTOACOUSTIC_IMAGE_STORAGE,
        name: "Photoacoustic Image Storage",
    },
    SopClass {
        uid: SECONDARY_CAPTURE_IMAGE_STORAGE,
        name: "Secondary Capture Image Storage",
    },
    SopClass {
        uid: MULTI_FRAME_SINGLE_BIT_SECONDARY_CAPTURE_IMAGE_STORAGE,
        name: "Multi-frame Single Bit Secondary Capture Image Storage",
    },
    SopClass {
        uid: MULTI_FRAME_GRAYSCALE_BYTE_SECONDARY_CAPTURE_IMAGE_STORAGE,
        name: "Multi-frame Grayscale Byte Secondary Capture Image Storage",
    },
    SopClass {
        uid: MULTI_FRAME_GRAYSCALE_WORD_SECONDARY_CAPTURE_IMAGE_STORAGE,
        name: "Multi-frame Grayscale Word Secondary Capture Image Storage",
    },
    SopClass {
        uid: MULTI_FRAME_TRUE_COLOR_SECONDARY_CAPTURE_IMAGE_STORAGE,
        name: "Multi-frame True Color Secondary Capture Image Storage",
    },
    SopClass {
        uid: TWELVE_LEAD_ECG_WAVEFORM_STORAGE,
        name: "12-lead ECG Waveform Storage",
    },
    SopClass {
        uid: GENERAL_ECG_WAVEFORM_STORAGE,
        name: "General ECG Waveform Storage",
    },
    SopClass {
        uid: AMBULATORY_ECG_WAVEFORM_STORAGE,
        name: "Ambulatory ECG Waveform Storage",
    },
    SopClass {
        uid: GENERAL_32BIT_ECG_WAVEFORM_STORAGE,
        name: "General 32-bit ECG Waveform Storage",
    },
    SopClass {
        uid: HEMODYNAMIC_WAVEFORM_STORAGE,
        name: "Hemodynamic Waveform Storage",
    },
    SopClass {
        uid: CARDIAC_ELECTROPHYSIOLOGY_WAVEFORM_STORAGE,
        name: "Cardiac Electrophysiology Waveform Storage",
    },
    SopClass {
        uid: BASIC_VOICE_AUDIO_WAVEFORM_STORAGE,
        name: "Basic Voice Audio Waveform Storage",
    },
    SopClass {
        uid: GENERAL_AUDIO_WAVEFORM_STORAGE,
        name: "General Audio Waveform Storage",
    },
    SopClass {
        uid: ARTERIAL_PULSE_WAVEFORM_STORAGE,
        name: "Arterial Pulse Waveform Storage",
    },
    SopClass {
        uid: RESPIRATORY_WAVEFORM_STORAGE,
        name: "Respiratory Waveform Storage",
    },
    SopClass {
        uid: MULTICHANNEL_RESPIRATORY_WAVEFORM_STORAGE,
        name: "Multi-channel Respiratory Waveform Storage",
    },
    SopClass {
        uid: ROUTINE_SCALP_ELECTROENCEPHALOGRAM_WAVEFORM_STORAGE,
        name: "Routine Scalp Electroencephalogram Waveform Storage",
    },
    SopClass {
        uid: ELECTROMYOGRAM_WAVEFORM_STORAGE,
        name: "Electromyogram Waveform Storage",
    },
    SopClass {
        uid: ELECTROOCULOGRAM_WAVEFORM_STORAGE,
        name: "Electrooculogram Waveform Storage",
    },
    SopClass {
        uid: SLEEP_ELECTROENCEPHALOGRAM_WAVEFORM_STORAGE,
        name: "Sleep Electroencephalogram Waveform Storage",
    },
    SopClass {
        uid: BODY_POSITION_WAVEFORM_STORAGE,
        name: "Body Position Waveform Storage",
    },
    SopClass {
        uid: WAVEFORM_PRESENTATION_STATE_STORAGE,
        name: "WaveformPresentationStateStorage",
    },
    SopClass {
        uid: WAVEFORM_ACQUISITION_PRESENTATION_STATE_STORAGE,
        name: "WaveformAcquisitionPresentationStateStorage",
    },
    SopClass {
        uid: GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE,
        name: "Grayscale Softcopy Presentation State Storage",
    },
    SopClass {
        uid: COLOR_SOFTCOPY_PRESENTATION_STATE_STORAGE,
        name: "Color Softcopy Presentation State Storage",
    },
    SopClass {
        uid: PSEUDO_COLOR_SOFTCOPY_PRESENTATION_STATE_STORAGE,
        name: "Pseudo-Color Softcopy Presentation State Storage",
    },
    SopClass {
        uid: BLENDING_SOFTCOPY_PRESENTATION_STATE_STORAGE,
        name: "Blending Softcopy Presentation State Storage",
    },
    SopClass {
        uid: XAXRF_GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE,
        name: "XA/XRF Grayscale Softcopy Presentation State Storage",
    },
    SopClass {
        uid: GRAYSCALE_PLANAR_MPR_VOLUMETRIC_PRESENTATION_STATE_STORAGE,
        name: "Grayscale Planar MPR Volumetric Presentation State Storage",
    },
    SopClass {
        uid: COMPOSITING_PLANAR_MPR_VOLUMETRIC_PRESENTATION_STATE_STORAGE,
        name: "Compositing Planar MPR Volumetric Presentation State Storage",
    },
    SopClass {
        uid: ADVANCED_BLENDING_PRESENTATION_STATE_STORAGE,
        name: "Advanced Blending Presentation State Storage",
    },
    SopClass {
        uid: VOLUME_RENDERING_VOLUMETRIC_PRESENTATION_STATE_STORAGE,
        name: "Volume Rendering Volumetric Presentation State Storage",
    },
    SopClass {
        uid: SEGMENTED_VOLUME_RENDERING_VOLUMETRIC_PRESENTATION_STATE_STORAGE,
        name: "Segmented Volume Rendering Volumetric Presentation State Storage",
    },
    SopClass {
        uid: MULTIPLE_VOLUME_RENDERING_VOLUMETRIC_PRESENTATION_STATE_STORAGE,
        name: "Multiple Volume Rendering Volumetric Presentation State Storage",
    },
    SopClass {
        uid: VARIABLE_MODALITY_LUT_SOFTCOPY_PRESENTATION_STATE_STORAGE,
        name: "Variable Modality LUT Softcopy Presentation State Storage",
    },
    SopClass {
        uid: XRAY_ANGIOGRAPHIC_IMAGE_STORAGE,
        name: "X-Ray Angiographic Image Storage",
    },
    SopClass {
        uid: ENHANCED_XA_IMAGE_STORAGE,
        name: "Enhanced XA Image Storage",
    },
    SopClass {
        uid: XRAY_RADIOFLUOROSCOPIC_IMAGE_STORAGE,
        name: "X-Ray Radiofluoroscopic Image Storage",
    },
    SopClass {
        uid: ENHANCED_XRF_IMAGE_STORAGE,
        name: "Enhanced XRF Image Storage",
    },
    SopClass {
        uid: XRAY_ANGIOGRAPHIC_BI_PLANE_IMAGE_STORAGE_RETIRED,
        name: "X-Ray Angiographic Bi-Plane Image Storage",
    },
    SopClass {
        uid: XRAY3D_ANGIOGRAPHIC_IMAGE_STORAGE,
        name: "X-Ray 3D Angiographic Image Storage",
    },
    SopClass {
        uid: XRAY3D_CRANIOFACIAL_IMAGE_STORAGE,
        name: "X-Ray 3D Craniofacial Image Storage",
    },
    SopClass {
        uid: BREAST_TOMOSYNTHESIS_IMAGE_STORAGE,
        name: "Breast Tomosynthesis Image Storage",
    },
    SopClass {
        uid: BREAST_PROJECTION_XRAY_IMAGE_STORAGE_FOR_PRESENTATION,
        name: "Breast Projection X-Ray Image Storage - For Presentation",
    },
    SopClass {
        uid: BREAST_PROJECTION_XRAY_IMAGE_STORAGE_FOR_PROCESSING,
        name: "Breast Projection X-Ray Image Storage - For Processing",
    },
    SopClass {
        uid: INTRAVASCULAR_OPTICAL_COHERENCE_TOMOGRAPHY_IMAGE_STORAGE_FOR_PRESENTATION,
        name: "Intravascular Optical Coherence Tomography Image Storage - For Presentation",
    },
    SopClass {
        uid: INTRAVASCULAR_OPTICAL_COHERENCE_TOMOGRAPHY_IMAGE_STORAGE_FOR_PROCESSING,
        name: "Intravascular Optical Coherence Tomography Image Storage - For Processing",
    },
    SopClass {
        uid: NUCLEAR_MEDICINE_IMAGE_STORAGE,
        name: "Nuclear Medicine Image Storage",
    },
    SopClass {
        uid: PARAMETRIC_MAP_STORAGE,
        name: "Parametric Map Storage",
    },
    SopClass {
        uid: RAW_DATA_STORAGE,
        name: "Raw Data Storage",
    },
    SopClass {
        uid: SPATIAL_REGISTRATION_STORAGE,
        name: "Spatial Registration Storage",
    },
    SopClass {
        uid: SPATIAL_FIDUCIALS_STORAGE,
        name: "Spatial Fiducials Storage",
    },
    SopClass {
        uid: DEFORMABLE_SPATIAL_REGISTRATION_STORAGE,
        name: "Deformable Spatial Registration Storage",
    },
    SopClass {
        uid: SEGMENTATION_STORAGE,
        name: "Segmentation Storage",
    },
    SopClass {
        uid: SURFACE_SEGMENTATION_STORAGE,
        name: "Surface Segmentation Storage",
    },
    SopClass {
        uid: TRACTOGRAPHY_RESULTS_STORAGE,
        name: "Tractography Results Storage",
    },
    SopClass {
        uid: LABEL_MAP_SEGMENTATION_STORAGE,
        name: "LabelMapSegmentationStorage",
    },
    SopClass {
        uid: HEIGHT_MAP_SEGMENTATION_STORAGE,
        name: "HeightMapSegmentationStorage",
    },
    SopClass {
        uid: REAL_WORLD_VALUE_MAPPING_STORAGE,
        name: "Real World Value Mapping Storage",
    },
    SopClass {
        uid: SURFACE_SCAN_MESH_STORAGE,
        name: "Surface Scan Mesh Storage",
    },
    SopClass {
        uid: SURFACE_SCAN_POINT_CLOUD_STORAGE,
        name: "Surface Scan Point Cloud Storage",
    },
    SopClass {
        uid: VL_ENDOSCOPIC_IMAGE_STORAGE,
        name: "VL Endoscopic Image Storage",
    },
    SopClass {
        uid: VIDEO_ENDOSCOPIC_IMAGE_STORAGE,
        name: "Video Endoscopic Image Storage",
    },
    SopClass {
        uid: VL_MICROSCOPIC_IMAGE_STORAGE,
        name: "VL Microscopic Image Storage",
    },
    SopClass {
        uid: VIDEO_MICROSCOPIC_IMAGE_STORAGE,
        name: "Video Microscopic Image Storage",
    },
    SopClass {
        uid: VL_SLIDE_COORDINATES_MICROSCOPIC_IMAGE_STORAGE,
        name: "VL Slide-Coordinates Microscopic Image Storage",
    },
    SopClass {
        uid: VL_PHOTOGRAPHIC_IMAGE_STORAGE,
        name: "VL Photographic Image Storage",
    },
    SopClass {
        uid: VIDEO_PHOTOGRAPHIC_IMAGE_STORAGE,
        name: "Video Photographic Image Storage",
    },
    SopClass {
        uid: OPHTHALMIC_PHOTOGRAPHY8_BIT_IMAGE_STORAGE,
        name: "Ophthalmic Photography 8 Bit Image Storage",
    },
    SopClass {
        uid: OPHTHALMIC_PHOTOGRAPHY16_BIT_IMAGE_STORAGE,
        name: "Ophthalmic Photography 16 Bit Image Storage",
    },
    SopClass {
        uid: STEREOMETRIC_RELATIONSHIP_STORAGE,
        name: "Stereometric Relationship Storage",
    },
    SopClass {
        uid: OPHTHALMIC_TOMOGRAPHY_IMAGE_STORAGE,
        name: "Ophthalmic Tomography Image Storage",
    },
    SopClass {
        uid: WIDE_FIELD_OPHTHALMIC_PHOTOGRAPHY_STEREOGRAPHIC_PROJECTION_IMAGE_STORAGE,
        name: "Wide Field Ophthalmic Photography Stereographic Projection Image Storage",
    },
    SopClass {
        uid: WIDE_FIELD_OPHTHALMIC_PHOTOGRAPHY3D_COORDINATES_IMAGE_STORAGE,
        name: "Wide Field Ophthalmic Photography 3D Coordinates Image Storage",
    },
    SopClass {
        uid: OPHTHALMIC_OPTICAL_COHERENCE_TOMOGRAPHY_EN_FACE_IMAGE_STORAGE,
        name: "Ophthalmic Optical Coherence Tomography En Face Image Storage",
    },
    SopClass {
        uid: OPHTHALMIC_OPTICAL_COHERENCE_TOMOGRAPHY_BSCAN_VOLUME_ANALYSIS_STORAGE,
        name: "Ophthalmic Optical Coherence Tomography B-scan Volume Analysis Storage",
    },
    SopClass {
        uid: VL_WHOLE_SLIDE_MICROSCOPY_IMAGE_STORAGE,
        name: "VL Whole Slide Microscopy Image Storage",
    },
    SopClass {
        uid: DERMOSCOPIC_PHOTOGRAPHY_IMAGE_STORAGE,
        name: "Dermoscopic Photography Image Storage",
    },
    SopClass {
        uid: CONFOCAL_MICROSCOPY_IMAGE_STORAGE,
        name: "Confocal Microscopy Image Storage",
    },
    SopClass {
        uid: CONFOCAL_MICROSCOPY_TILED_PYRAMIDAL_IMAGE_STORAGE,
        name: "Confocal Microscopy Tiled Pyramidal Image Storage",
    },
    SopClass {
        uid: LENSOMETRY_MEASUREMENTS_STORAGE,
        name: "Lensometry Measurements Storage",
    },
    SopClass {
        uid: AUTOREFRACTION_MEASUREMENTS_STORAGE,
        name: "Autorefraction Measurements Storage",
    },
    SopClass {
        uid: KERATOMETRY_MEASUREMENTS_STORAGE,
        name: "Keratometry Measurements Storage",
    },
    SopClass {
        uid: SUBJECTIVE_REFRACTION_MEASUREMENTS_STORAGE,
        name: "Subjective Refraction Measurements Storage",
    },
    SopClass {
        uid: VISUAL_ACUITY_MEASUREMENTS_STORAGE,
        name: "Visual Acuity Measurements Storage",
    },
    SopClass {
        uid: SPECTACLE_PRESCRIPTION_REPORT_STORAGE,
        name: "Spectacle Prescription Report Storage",
    },
    SopClass {
        uid: OPHTHALMIC_AXIAL_MEASUREMENTS_STORAGE,
        name: "Ophthalmic Axial Measurements Storage",
    },
    SopClass {
        uid: INTRAOCULAR_LENS_CALCULATIONS_STORAGE,
        name: "Intraocular Lens Calculations Storage",
    },
    SopClass {
        uid: MACULAR_GRID_THICKNESS_AND_VOLUME_REPORT_STORAGE,
        name: "Macular Grid Thickness and Volume Report Storage",
    },
    SopClass {
        uid: OPHTHALMIC_VISUAL_FIELD_STATIC_PERIMETRY_MEASUREMENTS_STORAGE,
        name: "Ophthalmic Visual Field Static Perimetry Measurements Storage",
    },
    SopClass {
        uid: OPHTHALMIC_THICKNESS_MAP_STORAGE,
        name: "Ophthalmic Thickness Map Storage",
    },
    SopClass {
        uid: CORNEAL_TOPOGRAPHY_MAP_STORAGE,
        name: "Corneal Topography Map Storage",
    },
    SopClass {
        uid: BASIC_TEXT_SR_STORAGE,
        name: "Basic Text SR Storage",
    },
    SopClass {
        uid: ENHANCED_SR_STORAGE,
        name: "Enhanced SR Storage",
    },
    SopClass {
        uid: COMPREHENSIVE_SR_STORAGE,
        name: "Comprehensive SR Storage",
    },
    SopClass {
        uid: COMPREHENSIVE3DSR_STORAGE,
        name: "Comprehensive 3D SR Storage",
    },
    SopClass {
        uid: EXTENSIBLE_SR_STORAGE,
        name: "Extensible SR Storage",
    },
    SopClass {
        uid: PROCEDURE_LOG_STORAGE,
        name: "Procedure Log Storage",
    },
    SopClass {
        uid: MAMMOGRAPHY_CADSR_STORAGE,
        name: "Mammography CAD SR Storage",
    },
    SopClass {
        uid: KEY_OBJECT_SELECTION_DOCUMENT_STORAGE,
        name: "Key Object Selection Document Storage",
    },
    SopClass {
        uid: CHEST_CADSR_STORAGE,
        name: "Chest CAD SR Storage",
    },
    SopClass {
        uid: XRAY_RADIATION_DOSE_SR_STORAGE,
        name: "X-Ray Radiation Dose SR Storage",
    },
    SopClass {
        uid: RADIOPHARMACEUTICAL_RADIATION_DOSE_SR_STORAGE,
        name: "Radiopharmaceutical Radiation Dose SR Storage",
    },
    SopClass {
        uid: COLON_CADSR_STORAGE,
        name: "Colon CAD SR Storage",
    },
    SopClass {
        uid: IMPLANTATION_PLAN_SR_STORAGE,
        name: "Implantation Plan SR Storage",
    },
    SopClass {
        uid: ACQUISITION_CONTEXT_SR_STORAGE,
        name: "Acquisition Context SR Storage",
    },
    SopClass {
        uid: SIMPLIFIED_ADULT_ECHO_SR_STORAGE,
        name: "Simplified Adult Echo SR Storage",
    },
    SopClass {
        uid: PATIENT_RADIATION_DOSE_SR_STORAGE,
        name: "Patient Radiation Dose SR Storage",
    },
    SopClass {
        uid: PLANNED_IMAGING_AGENT_ADMINISTRATION_SR_STORAGE,
        name: "Planned Imaging Agent Administration SR Storage",
    },
    SopClass {
        uid: PERFORMED_IMAGING_AGENT_ADMINISTRATION_SR_STORAGE,
        name: "Performed Imaging Agent Administration SR Storage",
    },
    SopClass {
        uid: ENHANCED_XRAY_RADIATION_DOSE_SR_STORAGE,
        name: "Enhanced X-Ray Radiation Dose SR Storage",
    },
    SopClass {
        uid: WAVEFORM_ANNOTATION_SR_STORAGE,
        name: "Waveform Annotation SR Storage",
    },
    SopClass {
        uid: CONTENT_ASSESSMENT_RESULTS_STORAGE,
        name: "Content Assessment Results Storage",
    },
    SopClass {
        uid: MICROSCOPY_BULK_SIMPLE_ANNOTATIONS_STORAGE,
        name: "Microscopy Bulk Simple Annotations Storage",
    },
    SopClass {
        uid: ENCAPSULATED_PDF_STORAGE,
        name: "Encapsulated PDF Storage",
    },
    SopClass {
        uid: ENCAPSULATED_CDA_STORAGE,
        name: "Encapsulated CDA Storage",
    },
    SopClass {
        uid: ENCAPSULATED_STL_STORAGE,
        name: "Encapsulated STL Storage",
    },
    SopClass {
        uid: ENCAPSULATED_OBJ_STORAGE,
        name: "Encapsulated OBJ Storage",
    },
    SopClass {
        uid: ENCAPSULATED_MTL_STORAGE,
        name: "Encapsulated MTL Storage",
    },
    SopClass {
        uid: POSITRON_EMISSION_TOMOGRAPHY_IMAGE_STORAGE,
        name: "Positron Emission Tomography Image Storage",
    },
    SopClass {
        uid: LEGACY_CONVERTED_ENHANCED_PET_IMAGE_STORAGE,
        name: "Legacy Converted Enhanced PET Image Storage",
    },
    SopClass {
        uid: ENHANCED_PET_IMAGE_STORAGE,
        name: "Enhanced PET Image Storage",
    },
    SopClass {
        uid: BASIC_STRUCTURED_DISPLAY_STORAGE,
        name: "Basic Structured Display Storage",
    },
    SopClass {
        uid: CT_PERFORMED_PROCEDURE_PROTOCOL_STORAGE,
        name: "CT Performed Procedure Protocol Storage",
    },
    SopClass {
        uid: XA_PERFORMED_PROCEDURE_PROTOCOL_STORAGE,
        name: "XA Performed Procedure Protocol Storage",
    },
    SopClass {
        uid: RT_IMAGE_STORAGE,
        name: "RT Image Storage",
    },
    SopClass {
        uid: RT_DOSE_STORAGE,
        name: "RT Dose Storage",
    },
    SopClass {
        uid: RT_STRUCTURE_SET_STORAGE,
        name: "RT Structure Set Storage",
    },
    SopClass {
        uid: RT_BEAMS_TREATMENT_RECORD_STORAGE,
        name: "RT Beams Treatment Record Storage",
    },
    SopClass {
        uid: RT_PLAN_STORAGE,
        name: "RT Plan Storage",
    },
    SopClass {
        uid: RT_BRACHY_TREATMENT_RECORD_STORAGE,
        name: "RT Brachy Treatment Record Storage",
    },
    SopClass {
        uid: RT_TREATMENT_SUMMARY_RECORD_STORAGE,
        name: "RT Treatment Summary Record Storage",
    },
    SopClass {
        uid: RT_ION_PLAN_STORAGE,
        name: "RT Ion Plan Storage",
    },
    SopClass {
        uid: RT_ION_BEAMS_TREATMENT_RECORD_STORAGE,
        name: "RT Ion Beams Treatment Record Storage",
    },
    SopClass {
        uid: RT_PHYSICIAN_INTENT_STORAGE,
        name: "RT Physician Intent Storage",
    },
    SopClass {
        uid: RT_SEGMENT_ANNOTATION_STORAGE,
        name: "RT Segment Annotation Storage",
    },
    SopClass {
        uid: RT_RADIATION_SET_STORAGE,
        name: "RT Radiation Set Storage",
    },
    SopClass {
        uid: C_ARM_PHOTON_ELECTRON_RADIATION_STORAGE,
        name: "C-Arm Photon-Electron Radiation Storage",
    },
    SopClass {
        uid: TOMOTHERAPEUTIC_RADIATION_STORAGE,
        name: "Tomotherapeutic Radiation Storage",
    },
    SopClass {
        uid: ROBOTIC_ARM_RADIATION_STORAGE,
        name: "Robotic-Arm Radiation Storage",
    },
    SopClass {
        uid: RT_RADIATION_RECORD_SET_STORAGE,
        name: "RT Radiation Record Set Storage",
    },
    SopClass {
        uid: RT_RADIATION_SALVAGE_RECORD_STORAGE,
        name: "RT Radiation Salvage Record Storage",
    },
    SopClass {
        uid: TOMOTHERAPEUTIC_RADIATION_RECORD_STORAGE,
        name: "Tomotherapeutic Radiation Record Storage",
    },
    SopClass {
        uid: C_ARM_PHOTON_ELECTRON_RADIATION_RECORD_STORAGE,
        name: "C-Arm Photon-Electron Radiation Record Storage",
    },
    SopClass {
        uid: ROBOTIC_ARM_RADIATION_RECORD_STORAGE,
        name: "Robotic Radiation Record Storage",
    },
    SopClass {
        uid: RT_RADIATION_SET_DELIVERY_INSTRUCTION_STORAGE,
        name: "RT Radiation Set Delivery Instruction Storage",
    },
    SopClass {
        uid: RT_TREATMENT_PREPARATION_STORAGE,
        name: "RT Treatment Preparation Storage",
    },
    SopClass {
        uid: ENHANCED_RT_IMAGE_STORAGE,
        name: "Enhanced RT Image Storage",
    },
    SopClass {
        uid: ENHANCED_CONTINUOUS_RT_IMAGE_STORAGE,
        name: "Enhanced Continuous RT Image Storage",
    },
    SopClass {
        uid: RT_PATIENT_POSITION_ACQUISITION_INSTRUCTION_STORAGE,
        name: "RT Patient Position Acquisition Instruction Storage",
    },
    SopClass {
        uid: RT_BEAMS_DELIVERY_INSTRUCTION_STORAGE,
        name: "RT Beams Delivery Instruction Storage",
    },
    SopClass {
        uid: RT_BRACHY_APPLICATION_SETUP_DELIVERY_INSTRUCTIONS_STORAGE,
        name: "RT Brachy Application Setup Delivery Instruction Storage",
    },
];
