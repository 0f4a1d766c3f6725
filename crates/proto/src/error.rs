use crate::message::Refusal;

/// Everything that can go wrong while decoding or driving yilian/1.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtoError {
    /// A frame announced a length above [`crate::MAX_FRAME_LEN`].
    #[error("protocol error: frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge { len: u32, max: u32 },
    /// A frame's payload did not decode as the expected message.
    #[error("protocol error: undecodable {what} frame: {reason}")]
    Decode { what: &'static str, reason: String },
    /// The peer sent something the state machine does not allow now.
    #[error("protocol error: unexpected {what} while {state}")]
    Unexpected {
        what: &'static str,
        state: &'static str,
    },
    /// The peer sent more raw bytes than the offer announced, or fewer before finishing.
    #[error("protocol error: transfer length mismatch: expected {expected} bytes, got {got}")]
    LengthMismatch { expected: u64, got: u64 },
    /// The stream ended before the transfer was complete.
    #[error("the stream ended in the middle of a transfer ({state})")]
    UnexpectedEnd { state: &'static str },
    /// The offer names an instance larger than this receiver accepts.
    #[error("instance of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge { size: u64, max: u64 },
    /// The peer refused the transfer.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// The local application called the state machine out of order.
    #[error("misuse of the transfer state machine: {0}")]
    Misuse(&'static str),
}
