//! Application close codes the relay uses on QUIC connections (the reason text says more).
//! Clients retry only after `SHUTDOWN` (a restart is worth waiting for); the others are final.

pub const UNKNOWN_IDENTITY: u32 = 1;
pub const SHUTDOWN: u32 = 4;
/// The peer's certificate was revoked (deny list or CRL), at admission or while connected.
pub const REVOKED: u32 = 5;
/// The peer's identity already has `limits.connections_per_identity` connections open.
pub const TOO_MANY: u32 = 6;
/// The reader identity is a push AE's (`[[ae]] push = true`): the DIMSE egress delivers
/// its outbox, it cannot subscribe.
pub const PUSH_READER: u32 = 7;
/// The reader identity's one subscription is held by another connection that still answers
/// (`subscriptions.rs`): the reason says from where and since when.
pub const SUBSCRIBED_ELSEWHERE: u32 = 8;
/// This connection held a reader's subscription but stopped answering, and a new connection
/// of the same reader took the subscription over (`subscriptions.rs`).
pub const TAKEN_OVER: u32 = 9;
