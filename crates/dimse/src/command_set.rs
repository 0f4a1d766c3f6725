//! Group 0000 elements in Implicit VR Little Endian: the raw command set codec under
//! [`crate::Message`]. Encoding sorts elements and computes Command Group Length; decoding
//! keeps every element (unknown ones included) for the typed layer to pick from.

use crate::error::CommandError;

/// Element numbers of group 0000 (PS3.7 Annex E).
pub mod element {
    /// Command Group Length (UL).
    pub const GROUP_LENGTH: u16 = 0x0000;
    /// Affected SOP Class UID (UI).
    pub const AFFECTED_SOP_CLASS_UID: u16 = 0x0002;
    /// Requested SOP Class UID (UI).
    pub const REQUESTED_SOP_CLASS_UID: u16 = 0x0003;
    /// Command Field (US).
    pub const COMMAND_FIELD: u16 = 0x0100;
    /// Message ID (US).
    pub const MESSAGE_ID: u16 = 0x0110;
    /// Message ID Being Responded To (US).
    pub const MESSAGE_ID_BEING_RESPONDED_TO: u16 = 0x0120;
    /// Move Destination (AE).
    pub const MOVE_DESTINATION: u16 = 0x0600;
    /// Priority (US).
    pub const PRIORITY: u16 = 0x0700;
    /// Command Data Set Type (US): 0x0101 = no data set.
    pub const COMMAND_DATA_SET_TYPE: u16 = 0x0800;
    /// Status (US).
    pub const STATUS: u16 = 0x0900;
    /// Offending Element (AT).
    pub const OFFENDING_ELEMENT: u16 = 0x0901;
    /// Error Comment (LO).
    pub const ERROR_COMMENT: u16 = 0x0902;
    /// Error ID (US).
    pub const ERROR_ID: u16 = 0x0903;
    /// Affected SOP Instance UID (UI).
    pub const AFFECTED_SOP_INSTANCE_UID: u16 = 0x1000;
    /// Requested SOP Instance UID (UI).
    pub const REQUESTED_SOP_INSTANCE_UID: u16 = 0x1001;
    /// Number of Remaining Sub-operations (US).
    pub const REMAINING_SUBOPERATIONS: u16 = 0x1020;
    /// Number of Completed Sub-operations (US).
    pub const COMPLETED_SUBOPERATIONS: u16 = 0x1021;
    /// Number of Failed Sub-operations (US).
    pub const FAILED_SUBOPERATIONS: u16 = 0x1022;
    /// Number of Warning Sub-operations (US).
    pub const WARNING_SUBOPERATIONS: u16 = 0x1023;
    /// Move Originator Application Entity Title (AE).
    pub const MOVE_ORIGINATOR_AE_TITLE: u16 = 0x1030;
    /// Move Originator Message ID (US).
    pub const MOVE_ORIGINATOR_MESSAGE_ID: u16 = 0x1031;
}

/// Command Data Set Type value meaning "no data set follows".
pub const NO_DATA_SET: u16 = 0x0101;
/// The value we write when a data set follows (any value but 0x0101 means one does).
pub const DATA_SET_PRESENT: u16 = 0x0001;

/// A decoded or to-be-encoded command set: (element, value) pairs of group 0000.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandSet {
    elements: Vec<(u16, Vec<u8>)>,
}

impl CommandSet {
    /// An empty command set.
    pub fn new() -> Self {
        Self::default()
    }

    fn put(&mut self, element: u16, value: Vec<u8>) {
        match self.elements.iter_mut().find(|(e, _)| *e == element) {
            Some(slot) => slot.1 = value,
            None => self.elements.push((element, value)),
        }
    }

    /// Set a US value.
    pub fn put_us(&mut self, element: u16, value: u16) {
        self.put(element, value.to_le_bytes().to_vec());
    }

    /// Set a UI value (padded with NUL to an even length).
    pub fn put_uid(&mut self, element: u16, value: &str) {
        let mut v = value.as_bytes().to_vec();
        if v.len() % 2 == 1 {
            v.push(0);
        }
        self.put(element, v);
    }

    /// Set an AE, LO or other text value (padded with a space to an even length).
    pub fn put_text(&mut self, element: u16, value: &str) {
        let mut v = value.as_bytes().to_vec();
        if v.len() % 2 == 1 {
            v.push(b' ');
        }
        self.put(element, v);
    }

    /// Set an AT value list (each tag as group, element).
    pub fn put_tags(&mut self, element: u16, tags: &[u32]) {
        let mut v = Vec::with_capacity(tags.len() * 4);
        for t in tags {
            v.extend_from_slice(&((t >> 16) as u16).to_le_bytes());
            v.extend_from_slice(&((t & 0xFFFF) as u16).to_le_bytes());
        }
        self.put(element, v);
    }

    /// The raw value of an element.
    pub fn raw(&self, element: u16) -> Option<&[u8]> {
        self.elements
            .iter()
            .find(|(e, _)| *e == element)
            .map(|(_, v)| v.as_slice())
    }

    /// A US value, if present.
    pub fn us(&self, element: u16) -> Result<Option<u16>, CommandError> {
        match self.raw(element) {
            None => Ok(None),
            Some(v) => match <[u8; 2]>::try_from(v) {
                Ok(b) => Ok(Some(u16::from_le_bytes(b))),
                Err(_) => Err(CommandError::BadLength {
                    element,
                    length: v.len() as u32,
                    expected: 2,
                }),
            },
        }
    }

    /// A text value (UI, AE, LO), without padding (trailing NUL and spaces, leading spaces).
    pub fn text(&self, element: u16) -> Result<Option<String>, CommandError> {
        match self.raw(element) {
            None => Ok(None),
            Some(v) => {
                if !v.is_ascii() {
                    return Err(CommandError::NotText { element });
                }
                let s: String = v.iter().map(|&b| b as char).collect();
                let s = s.trim_end_matches(['\0', ' ']).trim_start_matches(' ');
                Ok(Some(s.to_string()))
            }
        }
    }

    /// An AT value list.
    pub fn tags(&self, element: u16) -> Result<Option<Vec<u32>>, CommandError> {
        match self.raw(element) {
            None => Ok(None),
            Some(v) if v.len() % 4 != 0 => Err(CommandError::BadLength {
                element,
                length: v.len() as u32,
                expected: 4,
            }),
            Some(v) => Ok(Some(
                v.chunks_exact(4)
                    .map(|c| {
                        let g = u16::from_le_bytes([c[0], c[1]]) as u32;
                        let e = u16::from_le_bytes([c[2], c[3]]) as u32;
                        (g << 16) | e
                    })
                    .collect(),
            )),
        }
    }

    /// Encode: elements in ascending order after a computed Command Group Length.
    pub fn encode(&self) -> Vec<u8> {
        let mut elements: Vec<&(u16, Vec<u8>)> = self
            .elements
            .iter()
            .filter(|(e, _)| *e != element::GROUP_LENGTH)
            .collect();
        elements.sort_by_key(|(e, _)| *e);
        let body: usize = elements.iter().map(|(_, v)| 8 + v.len()).sum();
        let mut out = Vec::with_capacity(12 + body);
        push_header(&mut out, element::GROUP_LENGTH, 4);
        out.extend_from_slice(&(body as u32).to_le_bytes());
        for (e, v) in elements {
            push_header(&mut out, *e, v.len() as u32);
            out.extend_from_slice(v);
        }
        out
    }

    /// Decode a whole command set. Elements of other groups are an error; unknown group-0000
    /// elements are kept; the group length is not trusted (the PDVs delimit the command).
    pub fn decode(mut bytes: &[u8]) -> Result<Self, CommandError> {
        let mut set = CommandSet::new();
        while !bytes.is_empty() {
            if bytes.len() < 8 {
                return Err(CommandError::Truncated { element: 0 });
            }
            let group = u16::from_le_bytes([bytes[0], bytes[1]]);
            let element = u16::from_le_bytes([bytes[2], bytes[3]]);
            let length = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
            if group != 0 {
                return Err(CommandError::NotCommandGroup { group, element });
            }
            bytes = &bytes[8..];
            let length_usize = length as usize;
            if length == u32::MAX || bytes.len() < length_usize {
                return Err(CommandError::Truncated { element });
            }
            set.put(element, bytes[..length_usize].to_vec());
            bytes = &bytes[length_usize..];
        }
        Ok(set)
    }
}

fn push_header(out: &mut Vec<u8>, element: u16, length: u32) {
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&element.to_le_bytes());
    out.extend_from_slice(&length.to_le_bytes());
}
