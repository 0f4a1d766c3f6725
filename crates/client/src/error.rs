/// Failures of a client as a whole (per-file problems are in the reports instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("cannot reach the relay: {0}")]
    Connect(String),
    #[error("gave up after {0:?} without reaching the relay; last error: {1}")]
    GaveUp(std::time::Duration, String),
    /// The relay was never reached in this run (see `connect.rs`, first contact): the address
    /// is likely wrong.
    #[error(
        "no relay answered at {target} in {waited} s ({attempts} attempts; last: {last}). The address may be wrong. {}",
        crate::connect::CHECK
    )]
    NoRelayAnswered {
        /// `--relay` with the address, UDP port and certificate name tried.
        target: String,
        /// Seconds spent trying.
        waited: u64,
        attempts: u32,
        /// The last attempt's failure.
        last: String,
    },
    #[error("the relay refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Transport(#[from] yilian_transport::TransportError),
    #[error("output folder {path}: {source}")]
    Output {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The reader's output folder cannot be created (the reason in words).
    #[error("output folder {path}: {reason}")]
    OutputFolder {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("protocol error: {0}")]
    Proto(#[from] yilian_proto::ProtoError),
}
