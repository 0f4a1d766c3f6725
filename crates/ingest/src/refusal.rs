//! What a failed upload is told, whatever its front door: one mapping from DICOM and store
//! errors to a [`Refusal`] (a code the front door translates — a yilian/1 `Refused` frame, a
//! C-STORE failure status — and a sentence for the radiographer or the administrator).

use yilian_dicom::DicomError;
use yilian_proto::{Refusal, RefuseCode};
use yilian_store::StoreError;

use crate::storage::Storage;

/// Map a DICOM validation error to what the sender is told.
pub fn refusal_for(e: &DicomError) -> Refusal {
    let code = match e {
        DicomError::NotDicom { .. } | DicomError::MediaDirectory => RefuseCode::NotDicom,
        DicomError::Truncated { .. } => RefuseCode::Truncated,
        DicomError::TooLarge { .. } => RefuseCode::TooLarge,
        DicomError::Io(_) => RefuseCode::Internal,
        _ => RefuseCode::Malformed,
    };
    Refusal {
        code,
        reason: e.to_string(),
    }
}

/// The DICOM status (PS3.4 C-STORE statuses; also STOW-RS's Failure Reason) that tells a
/// DICOM peer what a refusal means: out of resources (storage full, busy, too large), cannot
/// understand (not DICOM, broken, truncated, UIDs that disagree), duplicate SOP instance (other
/// bytes under a stored UID), not authorized, or processing failure.
pub fn dicom_status(code: RefuseCode) -> u16 {
    match code {
        RefuseCode::StorageFull | RefuseCode::Busy | RefuseCode::TooLarge => 0xA700,
        RefuseCode::NotDicom
        | RefuseCode::Malformed
        | RefuseCode::Truncated
        | RefuseCode::Mismatch => 0xC000,
        RefuseCode::Conflict => 0x0111,
        RefuseCode::Unauthorized => 0x0124,
        _ => 0x0110,
    }
}

/// A refusal with this code and reason.
pub fn refusal(code: RefuseCode, reason: impl Into<String>) -> Refusal {
    Refusal {
        code,
        reason: reason.into(),
    }
}

/// What a store failure means for the sender: a full disk is "storage full" (retryable, and
/// ingest stops until space returns); another site's study is "unauthorized"; a site's
/// unfinished uploads at their cap is "busy"; anything else is an internal error worth
/// retrying. The one mapping for every caller (ingest, spool writer, manifests).
pub fn store_refusal(storage: &Storage, e: &StoreError) -> Refusal {
    if storage.notice(e) {
        return refusal(RefuseCode::StorageFull, storage.refusal_text());
    }
    match e {
        StoreError::StudyOwned { .. } => refusal(RefuseCode::Unauthorized, e.to_string()),
        StoreError::PartialQuota { .. } => refusal(RefuseCode::Busy, e.to_string()),
        StoreError::Conflict { .. } => conflict(),
        _ => refusal(RefuseCode::Internal, e.to_string()),
    }
}

/// Another instance with this SOP Instance UID from the same site, with other content.
pub fn conflict() -> Refusal {
    refusal(
        RefuseCode::Conflict,
        "the relay already holds a different instance with this SOP Instance UID from your site (PS3.4: one UID, one object); give the new image a new UID",
    )
}
