//! The driver's half of an association: an [`Association`] and the stream it runs on. Every
//! await on the stream is bounded by a timeout; the stream is read only when the state machine
//! has no event left, so what is buffered stays below one PDU.

use crate::association::{Association, Event};
use crate::error::DimseError;
use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;
use std::io::IoSlice;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub(crate) struct Conn<IO> {
    pub(crate) io: IO,
    pub(crate) assoc: Association,
    out: VecDeque<Bytes>,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Conn<IO> {
    pub(crate) fn new(io: IO, assoc: Association) -> Self {
        Conn {
            io,
            assoc,
            out: VecDeque::new(),
        }
    }

    /// Write everything the association queued, within `timeout` per write.
    pub(crate) async fn flush(&mut self, timeout: Duration) -> Result<(), DimseError> {
        while let Some(chunk) = self.assoc.poll_transmit() {
            self.out.push_back(chunk);
        }
        while !self.out.is_empty() {
            let slices: Vec<IoSlice<'_>> =
                self.out.iter().take(64).map(|b| IoSlice::new(b)).collect();
            let written = tokio::time::timeout(timeout, self.io.write_vectored(&slices))
                .await
                .map_err(|_| DimseError::Timeout {
                    waiting_for: "the peer to take our data",
                    after: timeout,
                })??;
            drop(slices);
            if written == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into());
            }
            let mut left = written;
            while left > 0 {
                let Some(front) = self.out.front_mut() else {
                    break;
                };
                if front.len() <= left {
                    left -= front.len();
                    self.out.pop_front();
                } else {
                    front.advance(left);
                    left = 0;
                }
            }
        }
        tokio::time::timeout(timeout, self.io.flush())
            .await
            .map_err(|_| DimseError::Timeout {
                waiting_for: "the peer to take our data",
                after: timeout,
            })??;
        Ok(())
    }

    /// The next event: flush what is queued, then read (within `timeout`) only when the
    /// association has nothing left to report. `Ok(None)`: the association is closed.
    pub(crate) async fn next_event(
        &mut self,
        timeout: Duration,
        waiting_for: &'static str,
    ) -> Result<Option<Event>, DimseError> {
        loop {
            if let Some(event) = self.assoc.poll_event() {
                return Ok(Some(event));
            }
            self.flush(timeout).await?;
            if self.assoc.is_closed() {
                return Ok(None);
            }
            // Straight into the association's input: no copy of the bytes on the way.
            let mut input = self.assoc.input_buffer();
            let n = tokio::time::timeout(timeout, self.io.read_buf(&mut input))
                .await
                .map_err(|_| DimseError::Timeout {
                    waiting_for,
                    after: timeout,
                })??;
            if n == 0 {
                return Err(DimseError::ConnectionClosed);
            }
        }
    }

    /// Read what is already available without waiting (to notice a C-CANCEL or an A-ABORT
    /// between responses). Returns the events it produced. `Ok(false)` from the closure stops.
    pub(crate) async fn try_read(&mut self) -> Result<Vec<Event>, DimseError> {
        let mut events = Vec::new();
        while let Some(e) = self.assoc.poll_event() {
            events.push(e);
        }
        if !events.is_empty() || self.assoc.is_closed() {
            return Ok(events);
        }
        // `timeout` polls the read once before looking at the (elapsed) deadline; a read
        // dropped while pending loses nothing.
        let mut input = self.assoc.input_buffer();
        if let Ok(read) = tokio::time::timeout(Duration::ZERO, self.io.read_buf(&mut input)).await {
            let n = read?;
            if n == 0 {
                return Err(DimseError::ConnectionClosed);
            }
            while let Some(e) = self.assoc.poll_event() {
                events.push(e);
            }
        }
        Ok(events)
    }

    /// The size of the pieces a data set is read in: one PDV filling the peer's maximum PDU
    /// (256 KiB when it set no limit; at most 1 MiB).
    pub(crate) fn piece_size(&self) -> usize {
        let peer_max = self
            .assoc
            .negotiated()
            .map(|n| n.peer_max_pdu_length)
            .unwrap_or(0);
        if peer_max == 0 {
            256 * 1024
        } else {
            (peer_max as usize)
                .saturating_sub(crate::pdu::PDV_HEADER)
                .clamp(1, 1 << 20)
        }
    }

    /// Send the data set announced by the command just queued on `context_id`: `first` (read
    /// before the command was sent, so that an unreadable source costs nothing), then the rest
    /// of `data`, one piece read ahead to know which is last; flushed piece by piece, so memory
    /// stays at two pieces. A read error midway aborts the association (a data set cannot be
    /// cut short): [`DimseError::DataCutShort`].
    pub(crate) async fn send_data_set<R: AsyncRead + Unpin>(
        &mut self,
        context_id: u8,
        first: BytesMut,
        data: &mut R,
        piece: usize,
        timeout: Duration,
    ) -> Result<(), DimseError> {
        let mut current = first;
        loop {
            let next = match read_piece(data, piece).await {
                Ok(next) => next,
                Err(e) => {
                    self.abort(timeout).await;
                    return Err(DimseError::DataCutShort(e));
                }
            };
            let last = next.is_empty();
            self.assoc.send_data(context_id, current.freeze(), last)?;
            self.flush(timeout).await?;
            if last {
                return Ok(());
            }
            current = next;
        }
    }

    /// Abort and try (briefly) to tell the peer.
    pub(crate) async fn abort(&mut self, timeout: Duration) {
        self.assoc.abort();
        let _ = self.flush(timeout.min(Duration::from_secs(2))).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), self.io.shutdown()).await;
    }

    /// Send what is queued and close our side of the stream.
    pub(crate) async fn finish(&mut self, timeout: Duration) -> Result<(), DimseError> {
        self.flush(timeout).await?;
        let _ = tokio::time::timeout(timeout, self.io.shutdown()).await;
        Ok(())
    }
}

/// Read up to `size` bytes (fewer only at the end).
pub(crate) async fn read_piece<R: AsyncRead + Unpin>(
    data: &mut R,
    size: usize,
) -> std::io::Result<BytesMut> {
    let mut buf = BytesMut::with_capacity(size);
    while buf.len() < size {
        if data.read_buf(&mut buf).await? == 0 {
            break;
        }
    }
    Ok(buf)
}
