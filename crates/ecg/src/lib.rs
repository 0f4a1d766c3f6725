//! # Live 12-lead ECG, sans-IO
//!
//! A township cart streams a 12-lead ECG; the relay fans every frame out to the cardiologists
//! watching and records the whole session as DICOM 12-lead ECG Waveform objects. This crate is
//! that logic with no sockets, no tokio and no clock: the relay and the `yilian ecg` commands
//! drive it.

pub mod model;

pub use model::{Block, Calibration, Lead, SampleRate, LEAD_COUNT};
