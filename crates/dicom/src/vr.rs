//! Value representations as far as structure needs them: how long the length field is, and
//! whether an undefined length opens a sequence or encapsulated pixel data.

/// What an explicit VR means for the walker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VrClass {
    /// A VR with a 2-byte length field (AE, AS, AT, CS, DA, DS, DT, FD, FL, IS, LO, LT, PN, SH,
    /// SL, SS, ST, TM, UI, UL, US).
    Short,
    /// A VR with a 4-byte length field that can never have an undefined length (OD, OF, OL, OV,
    /// SV, UC, UR, UT, UV).
    Long,
    /// OB or OW: 4-byte length; an undefined length means encapsulated pixel data.
    Binary,
    /// SQ: 4-byte length; a sequence of items.
    Sequence,
    /// UN: 4-byte length; an undefined length means a sequence encoded in Implicit VR Little
    /// Endian (PS3.5 §6.2.2, CP-246).
    Unknown,
}

impl VrClass {
    /// Whether the explicit-VR header has the 4-byte length form (2 reserved bytes + u32).
    pub(crate) fn has_long_length(self) -> bool {
        !matches!(self, VrClass::Short)
    }
}

/// Classifies the two VR bytes of an explicit-VR element header; `None` for bytes that are not
/// a VR of PS3.5 Table 6.2-1.
pub(crate) fn classify(vr: [u8; 2]) -> Option<VrClass> {
    Some(match &vr {
        b"AE" | b"AS" | b"AT" | b"CS" | b"DA" | b"DS" | b"DT" | b"FD" | b"FL" | b"IS" | b"LO"
        | b"LT" | b"PN" | b"SH" | b"SL" | b"SS" | b"ST" | b"TM" | b"UI" | b"UL" | b"US" => {
            VrClass::Short
        }
        b"OD" | b"OF" | b"OL" | b"OV" | b"SV" | b"UC" | b"UR" | b"UT" | b"UV" => VrClass::Long,
        b"OB" | b"OW" => VrClass::Binary,
        b"SQ" => VrClass::Sequence,
        b"UN" => VrClass::Unknown,
        _ => return None,
    })
}

/// The VR bytes for a message: printable ASCII as is, anything else in hex.
pub(crate) fn describe(vr: [u8; 2]) -> String {
    if vr.iter().all(|b| b.is_ascii_graphic()) {
        format!("\"{}{}\"", char::from(vr[0]), char::from(vr[1]))
    } else {
        format!("0x{:02X}{:02X}", vr[0], vr[1])
    }
}

#[cfg(test)]
mod tests {
    use super::{classify, describe, VrClass};

    #[test]
    fn length_forms_follow_ps3_5_table_7_1_2() {
        for long in [
            b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT",
            b"UV",
        ] {
            assert!(
                classify(*long).is_some_and(VrClass::has_long_length),
                "{long:?}"
            );
        }
        for short in [
            b"AE", b"CS", b"PN", b"UI", b"US", b"UL", b"SH", b"LO", b"IS", b"DS",
        ] {
            assert_eq!(classify(*short), Some(VrClass::Short), "{short:?}");
        }
        assert_eq!(classify(*b"XX"), None);
        assert_eq!(classify([0, 0]), None);
        assert_eq!(classify(*b"ob"), None);
        assert_eq!(describe(*b"XY"), "\"XY\"");
        assert_eq!(describe([0, 0x12]), "0x0012");
    }
}
