//! # Live 12-lead ECG, sans-IO
//!
//! A township cart streams a 12-lead ECG; the relay fans every frame out to the cardiologists
//! watching and records the whole session as DICOM 12-lead ECG Waveform objects. This crate is
//! that logic with no sockets, no tokio and no clock: the relay and the `yilian ecg` commands
//! drive it.
//!
//! ## Model
//!
//! A session has one [`SampleRate`] (500 or 1000 Hz) and one [`Calibration`] per [`Lead`]
//! (µV per unit and baseline, as DICOM's channel definitions). Samples travel in [`Block`]s:
//! `per_lead` consecutive `i16` samples of each of the 12 leads, lead-major in the order I, II,
//! III, aVR, aVL, aVF, V1…V6. III, aVR, aVL and aVF are usually computed by the cart from I and
//! II ([`derived_limb_leads`]).
//!
//! ## Codec
//!
//! [`codec`] compresses one block losslessly, with no state between blocks (a late or lossy
//! viewer decodes any block alone): a version byte, the sample count (capped at
//! [`MAX_SAMPLES_PER_LEAD`] on decode), one predictor nibble per lead, then a bit stream of
//! residuals. Each lead is predicted in time (a polynomial of order 0–3, chosen per lead per
//! block); III, aVR, aVL and aVF may first be predicted from I and II by the Einthoven and
//! Goldberger relations, which leaves 0 on carts that compute them. Residuals are zigzagged
//! and Rice-coded in sub-blocks of 16 samples with a parameter each (an all-zero sub-block
//! costs 4 bits, an all-zero lead nothing but its nibble; an escape and a verbatim mode bound
//! the worst case at 2 bytes per sample plus 4 bits per 16 samples per lead and ≤ 9 header
//! bytes: [`codec::max_encoded_len`]). All arithmetic wraps, so every `i16` input is exact.
//!
//! ## Sessions
//!
//! [`wire`] has the ECG sub-protocol a cart and a viewer speak on a yilian/1 stream (after
//! `Request::EcgSource` / `Request::EcgWatch`). At the relay, one [`live::Live`] per session
//! puts together: the checks on what the cart sends ([`session`]: standard leads, rate,
//! calibration, frames in order without gaps, the cart's clock against its rate, floods),
//! the viewers' ring ([`fanout`]: each frame encoded once and shared as `Bytes`, the last
//! seconds for late joiners, skip-ahead with a count for a viewer that fell behind) and the
//! recorder ([`recorder`]: objects of at most the IOD's samples, written as DICOM by
//! [`record`] with UIDs from [`uids`]). On the cart, [`source::Outbox`] numbers frames and
//! keeps them until the relay says they are recorded, so a reconnection resends exactly what
//! is missing. [`samples::Samples`] is where a cart's samples come from (the simulator, a
//! replayed DICOM ECG).
//!
//! ## Simulation and rhythm
//!
//! [`simulate`] makes a deterministic 12-lead ECG from a dipole model (optionally an anterior
//! STEMI); [`rhythm`] measures the heart rate from one lead, Pan–Tompkins style.

pub mod codec;
pub mod fanout;
pub mod live;
pub mod model;
pub mod record;
pub mod recorder;
pub mod rhythm;
pub mod samples;
pub mod session;
pub mod simulate;
pub mod source;
#[cfg(test)]
mod testdata;
pub mod uids;
pub mod wire;

pub use codec::{decode, encode, CodecError, MAX_SAMPLES_PER_LEAD};
pub use model::{derived_limb_leads, Block, Calibration, Lead, SampleRate, LEAD_COUNT};
pub use rhythm::RateDetector;
pub use simulate::{SimSpec, Simulator};
