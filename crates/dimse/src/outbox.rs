//! Outgoing bytes: control PDUs, and P-DATA-TF PDUs packed from PDVs within the peer's
//! maximum PDU length (several small PDVs share a PDU; a large value is split across PDUs).
//!
//! Large values are never copied: a PDU leaves as a few small header chunks interleaved with
//! slices of the caller's [`Bytes`]. Small values (≤ [`COPY_BELOW`]) are copied next to their
//! headers so that a command and a short response go out in one write.

use crate::pdu::{pdu_header, pdv_header, PDU_HEADER, PDV_HEADER, P_DATA_TF};
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::VecDeque;

/// Values up to this size are copied next to their headers rather than referenced.
pub const COPY_BELOW: usize = 16 * 1024;

/// What we send when the peer gave no maximum PDU length (0 = unlimited).
pub const SEND_MAX_WHEN_UNLIMITED: u32 = 1 << 20;

#[derive(Debug)]
pub(crate) struct Outbox {
    ready: VecDeque<Bytes>,
    /// PDVs of the P-DATA-TF being packed: (header, value).
    pending: Vec<([u8; PDV_HEADER], Bytes)>,
    /// Length of the pending PDU's variable field (sum of PDV items).
    pending_len: usize,
    /// Largest variable field the peer accepts.
    max_pdu: usize,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            ready: VecDeque::new(),
            pending: Vec::new(),
            pending_len: 0,
            max_pdu: SEND_MAX_WHEN_UNLIMITED as usize,
        }
    }
}

impl Outbox {
    pub(crate) fn set_peer_max(&mut self, peer_max_pdu_length: u32) {
        let max = if peer_max_pdu_length == 0 {
            SEND_MAX_WHEN_UNLIMITED
        } else {
            peer_max_pdu_length
        };
        // Room for a PDV header and at least one byte of value, whatever the peer says.
        self.max_pdu = (max as usize).max(PDV_HEADER + 2);
    }

    /// Queue a control PDU after whatever P-DATA is pending.
    pub(crate) fn control(&mut self, pdu: Bytes) {
        self.flush();
        self.ready.push_back(pdu);
    }

    /// Queue a command or data set value as PDVs on `context_id`.
    pub(crate) fn pdvs(&mut self, context_id: u8, command: bool, mut value: Bytes, last: bool) {
        loop {
            let mut room = self.max_pdu.saturating_sub(self.pending_len + PDV_HEADER);
            // Start a fresh PDU rather than split off a tiny fragment.
            if room < value.len() && room < 1024 && self.pending_len > 0 {
                self.flush();
                room = self.max_pdu - PDV_HEADER;
            }
            let take = value.len().min(room);
            let chunk = value.split_to(take);
            let is_last = last && value.is_empty();
            self.pending
                .push((pdv_header(context_id, command, is_last, chunk.len()), chunk));
            self.pending_len += PDV_HEADER + take;
            if value.is_empty() {
                return;
            }
            self.flush();
        }
    }

    /// Close the pending P-DATA-TF PDU.
    pub(crate) fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut small = BytesMut::with_capacity(PDU_HEADER + 64);
        small.put_slice(&pdu_header(P_DATA_TF, self.pending_len as u32));
        for (header, value) in self.pending.drain(..) {
            small.put_slice(&header);
            if value.len() <= COPY_BELOW {
                small.put_slice(&value);
            } else {
                self.ready.push_back(small.split().freeze());
                self.ready.push_back(value);
            }
        }
        if !small.is_empty() {
            self.ready.push_back(small.freeze());
        }
        self.pending_len = 0;
    }

    pub(crate) fn poll(&mut self) -> Option<Bytes> {
        if self.ready.is_empty() {
            self.flush();
        }
        self.ready.pop_front()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ready.is_empty() && self.pending.is_empty()
    }
}
