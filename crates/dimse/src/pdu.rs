//! PDU framing. Control PDUs (A-ASSOCIATE-*, A-RELEASE-*, A-ABORT) go through dicom-ul's
//! codec (`read_pdu`/`write_pdu`); P-DATA-TF is framed here, without copying: a PDV's value is
//! a slice ([`Bytes`]) of the received PDU, and outgoing data is referenced, never copied (see
//! [`crate::outbox`]). The length field is checked against our cap *before* anything is
//! buffered or allocated for the PDU.

use crate::error::ProtocolError;
use bytes::{Buf, Bytes};
use dicom_ul::pdu::{self, Pdu};

/// PDU header: type (1), reserved (1), length (4).
pub const PDU_HEADER: usize = 6;
/// PDV item header: length (4), context ID (1), message control header (1).
pub const PDV_HEADER: usize = 6;

/// PDU type of P-DATA-TF.
pub const P_DATA_TF: u8 = 0x04;

/// Type and length of the PDU at the start of `buf`, if its header is there.
pub fn peek_header(buf: &[u8]) -> Option<(u8, u32)> {
    if buf.len() < PDU_HEADER {
        return None;
    }
    Some((buf[0], u32::from_be_bytes([buf[2], buf[3], buf[4], buf[5]])))
}

/// The name of a PDU type, for errors.
pub fn pdu_name(pdu_type: u8) -> &'static str {
    match pdu_type {
        0x01 => "A-ASSOCIATE-RQ",
        0x02 => "A-ASSOCIATE-AC",
        0x03 => "A-ASSOCIATE-RJ",
        0x04 => "P-DATA-TF",
        0x05 => "A-RELEASE-RQ",
        0x06 => "A-RELEASE-RP",
        0x07 => "A-ABORT",
        _ => "unknown PDU",
    }
}

/// Decode one whole control PDU (header included) with dicom-ul.
pub fn decode_control(whole: &[u8]) -> Result<Pdu, ProtocolError> {
    let pdu_type = whole.first().copied().unwrap_or(0);
    let malformed = |detail: String| ProtocolError::MalformedPdu {
        pdu: pdu_name(pdu_type),
        detail,
    };
    // `read_pdu` consumes from the slice even when it needs more; we hand it exactly one PDU.
    match pdu::read_pdu(whole, pdu::MAXIMUM_PDU_SIZE, false) {
        Ok(Some(Pdu::Unknown { pdu_type, .. })) => Err(ProtocolError::UnrecognizedPdu(pdu_type)),
        Ok(Some(pdu)) => Ok(pdu),
        Ok(None) => Err(malformed("incomplete".into())),
        Err(e) => Err(malformed(e.to_string())),
    }
}

/// Encode a control PDU with dicom-ul.
pub fn encode_control(pdu: &Pdu) -> Result<Bytes, String> {
    let mut out = Vec::new();
    pdu::write_pdu(&mut out, pdu).map_err(|e| e.to_string())?;
    Ok(Bytes::from(out))
}

/// One presentation data value, its value a slice of the received PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdv {
    /// Presentation context ID.
    pub context_id: u8,
    /// Command (true) or data set (false) fragment.
    pub command: bool,
    /// Last fragment of its command or data set.
    pub last: bool,
    /// The fragment.
    pub data: Bytes,
}

/// Take the next PDV from the remaining items of a P-DATA-TF body.
pub fn next_pdv(items: &mut Bytes) -> Result<Option<Pdv>, ProtocolError> {
    if items.is_empty() {
        return Ok(None);
    }
    let malformed = |detail: &str| ProtocolError::MalformedPdu {
        pdu: "P-DATA-TF",
        detail: detail.to_string(),
    };
    if items.len() < PDV_HEADER {
        return Err(malformed("truncated PDV item header"));
    }
    let length = u32::from_be_bytes([items[0], items[1], items[2], items[3]]) as usize;
    if length < 2 {
        return Err(malformed("PDV item length below 2"));
    }
    if items.len() - 4 < length {
        return Err(malformed("PDV item longer than its PDU"));
    }
    let context_id = items[4];
    let control = items[5];
    items.advance(PDV_HEADER);
    let data = items.split_to(length - 2);
    Ok(Some(Pdv {
        context_id,
        command: control & 0x01 != 0,
        last: control & 0x02 != 0,
        data,
    }))
}

/// Write a PDV item header.
pub fn pdv_header(context_id: u8, command: bool, last: bool, data_len: usize) -> [u8; PDV_HEADER] {
    let length = (data_len as u32 + 2).to_be_bytes();
    let control = u8::from(command) | (u8::from(last) << 1);
    [
        length[0], length[1], length[2], length[3], context_id, control,
    ]
}

/// Write a PDU header.
pub fn pdu_header(pdu_type: u8, length: u32) -> [u8; PDU_HEADER] {
    let l = length.to_be_bytes();
    [pdu_type, 0, l[0], l[1], l[2], l[3]]
}

/// Strip the padding DICOM allows around UIDs and AE titles (spaces, NULs).
pub fn clean(s: &str) -> String {
    s.trim_matches(|c: char| c == '\0' || c == ' ').to_string()
}
