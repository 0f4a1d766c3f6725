//! DIMSE status codes (PS3.7 Annex C, and the service-specific codes of PS3.4).

use std::fmt;

/// A DIMSE status (0000,0900).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(pub u16);

/// What a status means to the one who asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// 0x0000.
    Success,
    /// More responses follow (0xFF00, 0xFF01).
    Pending,
    /// The operation was cancelled (0xFE00).
    Cancel,
    /// Done, with a warning (0x0001, 0x0107, 0x0116, 0xBxxx).
    Warning,
    /// Anything else.
    Failure,
}

impl Status {
    /// Success.
    pub const SUCCESS: Status = Status(0x0000);
    /// Pending: matches are continuing (C-FIND, C-GET, C-MOVE).
    pub const PENDING: Status = Status(0xFF00);
    /// Pending: one or more optional keys were not supported (C-FIND).
    pub const PENDING_WARNING: Status = Status(0xFF01);
    /// Cancelled by a C-CANCEL.
    pub const CANCEL: Status = Status(0xFE00);
    /// Warning: sub-operations complete, one or more failures or warnings (C-GET, C-MOVE).
    pub const SUBOPERATIONS_FAILED: Status = Status(0xB000);
    /// Warning: coercion of data elements (C-STORE).
    pub const COERCION_OF_DATA_ELEMENTS: Status = Status(0xB000);
    /// Warning: data set does not match SOP class (C-STORE).
    pub const DATA_SET_MISMATCH_WARNING: Status = Status(0xB007);
    /// Warning: elements discarded (C-STORE).
    pub const ELEMENTS_DISCARDED: Status = Status(0xB006);
    /// Refused: out of resources (C-STORE).
    pub const OUT_OF_RESOURCES: Status = Status(0xA700);
    /// Refused: out of resources, unable to calculate the number of matches (C-GET, C-MOVE).
    pub const OUT_OF_RESOURCES_MATCHES: Status = Status(0xA701);
    /// Refused: out of resources, unable to perform sub-operations (C-GET, C-MOVE).
    pub const OUT_OF_RESOURCES_SUBOPERATIONS: Status = Status(0xA702);
    /// Refused: move destination unknown (C-MOVE).
    pub const MOVE_DESTINATION_UNKNOWN: Status = Status(0xA801);
    /// Error: data set does not match SOP class (C-STORE); identifier does not match (C-FIND).
    pub const DATA_SET_DOES_NOT_MATCH_SOP_CLASS: Status = Status(0xA900);
    /// Error: cannot understand (C-STORE, C-FIND, …; the low byte may vary: 0xCxxx).
    pub const CANNOT_UNDERSTAND: Status = Status(0xC000);
    /// Failure: unable to process (C-FIND, C-GET, C-MOVE).
    pub const UNABLE_TO_PROCESS: Status = Status(0xC001);
    /// Failure: SOP class not supported.
    pub const SOP_CLASS_NOT_SUPPORTED: Status = Status(0x0122);
    /// Failure: duplicate SOP instance.
    pub const DUPLICATE_SOP_INSTANCE: Status = Status(0x0111);
    /// Failure: not authorized.
    pub const NOT_AUTHORIZED: Status = Status(0x0124);
    /// Failure: processing failure.
    pub const PROCESSING_FAILURE: Status = Status(0x0110);
    /// Failure: duplicate invocation (message ID in use).
    pub const DUPLICATE_INVOCATION: Status = Status(0x0210);
    /// Failure: unrecognized operation.
    pub const UNRECOGNIZED_OPERATION: Status = Status(0x0211);
    /// Failure: mistyped argument.
    pub const MISTYPED_ARGUMENT: Status = Status(0x0212);
    /// Failure: invalid argument value.
    pub const INVALID_ARGUMENT_VALUE: Status = Status(0x0115);
    /// Failure: no such SOP class.
    pub const NO_SUCH_SOP_CLASS: Status = Status(0x0118);
    /// Failure: class-instance conflict.
    pub const CLASS_INSTANCE_CONFLICT: Status = Status(0x0119);
    /// Failure: resource limitation.
    pub const RESOURCE_LIMITATION: Status = Status(0x0213);

    /// What this status means.
    pub fn category(self) -> Category {
        match self.0 {
            0x0000 => Category::Success,
            0xFF00 | 0xFF01 => Category::Pending,
            0xFE00 => Category::Cancel,
            0x0001 | 0x0107 | 0x0116 | 0xB000..=0xBFFF => Category::Warning,
            _ => Category::Failure,
        }
    }

    /// Success or warning: the operation was done.
    pub fn is_done(self) -> bool {
        matches!(self.category(), Category::Success | Category::Warning)
    }

    /// A pending status: more responses follow.
    pub fn is_pending(self) -> bool {
        self.category() == Category::Pending
    }

    /// A failure (refused, error, failed).
    pub fn is_failure(self) -> bool {
        self.category() == Category::Failure
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04X} ({:?})", self.0, self.category())
    }
}
