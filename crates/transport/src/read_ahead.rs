//! Large reads under TLS over TCP (the HTTPS front door, DICOM TLS).
//!
//! rustls reads its records from the socket at most 4 KiB at a time (`read_tls` grows its
//! buffer by 4 KiB per read), so a 16 KiB record costs four or five `recv` calls, and a STOW-RS
//! of CT slices at 900 MB/s some 200,000 of them a second. [`ReadAhead`] sits between the
//! socket and the TLS stream: it reads what the socket holds, up to [`READ_AHEAD`] bytes, in
//! one call and hands it out from memory. Reads at least as large as its buffer go straight
//! through, and writes are passed on untouched.
//!
//! An idle connection holds no buffer: it is given back whenever the socket has nothing to
//! read and every byte read ahead has been handed out, and taken again at the next read.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most bytes read from the socket in one call.
pub const READ_AHEAD: usize = 128 * 1024;

/// A stream whose small reads are served from one large read of the socket.
#[derive(Debug)]
pub struct ReadAhead<T> {
    inner: T,
    /// Read from the socket and not yet handed out: `buf[pos..]`. Empty (no allocation)
    /// while the connection is idle.
    buf: Vec<u8>,
    pos: usize,
}

impl<T> ReadAhead<T> {
    pub fn new(inner: T) -> ReadAhead<T> {
        ReadAhead {
            inner,
            buf: Vec::new(),
            pos: 0,
        }
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Bytes read from the socket and not handed out yet.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether a buffer is held now.
    pub fn holds_buffer(&self) -> bool {
        self.buf.capacity() > 0
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ReadAhead<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = &mut *self;
        if me.pos == me.buf.len() {
            if out.remaining() >= READ_AHEAD {
                me.buf = Vec::new();
                me.pos = 0;
                return Pin::new(&mut me.inner).poll_read(cx, out);
            }
            // Uninitialized room for one read (no zeroing of 128 KiB at every wake-up of a
            // slow link); the read initializes what it fills.
            me.buf.clear();
            me.pos = 0;
            me.buf.reserve(READ_AHEAD);
            let mut rb = ReadBuf::uninit(&mut me.buf.spare_capacity_mut()[..READ_AHEAD]);
            match Pin::new(&mut me.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    // SAFETY: `ReadBuf` guarantees its first `filled().len()` bytes were
                    // initialized by the read, and they lie within the reserved capacity.
                    unsafe { me.buf.set_len(n) };
                    if n == 0 {
                        // End of stream: nothing to hand out, nothing to keep.
                        me.buf = Vec::new();
                        return Poll::Ready(Ok(()));
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    // Nothing to read: an idle connection keeps no buffer.
                    me.buf = Vec::new();
                    return Poll::Pending;
                }
            }
        }
        let n = out.remaining().min(me.buf.len() - me.pos);
        out.put_slice(&me.buf[me.pos..me.pos + n]);
        me.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ReadAhead<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
