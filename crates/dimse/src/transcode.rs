//! Sending a data set in the syntax the peer accepted: as stored, or — stored in Explicit VR
//! Little Endian, to a peer that took only Implicit VR Little Endian for the class (the syntax
//! every DICOM peer must accept, PS3.5 §10.1) — transcoded on the fly by
//! [`yilian_dicom::ToImplicit`] while it streams. Memory stays at one read buffer.

use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};
use yilian_dicom::ToImplicit;

use crate::negotiation::Negotiated;
use crate::transfer_syntaxes::{EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN};

const READ: usize = 64 * 1024;

/// The presentation context to send on, and in which syntax.
pub(crate) struct Route {
    pub context_id: u8,
    /// The syntax the data set goes out in.
    pub transfer_syntax: String,
    /// Whether it must be transcoded to it.
    pub transcode: bool,
}

/// Where a data set of `sop_class` stored in `stored` can go: its own syntax if accepted,
/// else Implicit VR LE when it is stored in Explicit VR LE and the peer accepted that.
pub(crate) fn route(negotiated: &Negotiated, sop_class: &str, stored: &str) -> Option<Route> {
    if let Some(context_id) = negotiated.find_context(sop_class, &[stored]) {
        return Some(Route {
            context_id,
            transfer_syntax: stored.to_string(),
            transcode: false,
        });
    }
    if stored != EXPLICIT_VR_LITTLE_ENDIAN {
        return None;
    }
    negotiated
        .find_context(sop_class, &[IMPLICIT_VR_LITTLE_ENDIAN])
        .map(|context_id| Route {
            context_id,
            transfer_syntax: IMPLICIT_VR_LITTLE_ENDIAN.to_string(),
            transcode: true,
        })
}

/// A data set as stored, or transcoded to Implicit VR LE.
pub(crate) enum Outgoing<R> {
    AsStored(R),
    ToImplicit(Box<ImplicitRead<R>>),
}

impl<R: AsyncRead + Unpin> Outgoing<R> {
    pub(crate) fn new(data: R, transcode: bool) -> Self {
        if transcode {
            Outgoing::ToImplicit(Box::new(ImplicitRead::new(data)))
        } else {
            Outgoing::AsStored(data)
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Outgoing<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Outgoing::AsStored(r) => Pin::new(r).poll_read(cx, buf),
            Outgoing::ToImplicit(r) => Pin::new(r.as_mut()).poll_read(cx, buf),
        }
    }
}

/// An Explicit VR LE data set read as Implicit VR LE. A data set that is not well-formed
/// Explicit VR LE fails the read (`InvalidData`, with the walker's reason).
pub(crate) struct ImplicitRead<R> {
    inner: R,
    transcoder: ToImplicit,
    out: Vec<u8>,
    at: usize,
    buf: Vec<u8>,
    ended: bool,
}

impl<R> ImplicitRead<R> {
    fn new(inner: R) -> Self {
        ImplicitRead {
            inner,
            transcoder: ToImplicit::new(),
            out: Vec::new(),
            at: 0,
            buf: vec![0; READ],
            ended: false,
        }
    }
}

fn invalid(e: yilian_dicom::DicomError) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("cannot transcode to Implicit VR Little Endian: {e}"),
    )
}

impl<R: AsyncRead + Unpin> AsyncRead for ImplicitRead<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.at < this.out.len() {
                let n = (this.out.len() - this.at).min(buf.remaining());
                buf.put_slice(&this.out[this.at..this.at + n]);
                this.at += n;
                if this.at == this.out.len() {
                    this.out.clear();
                    this.at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.ended {
                return Poll::Ready(Ok(()));
            }
            let mut read = ReadBuf::new(&mut this.buf);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            let n = read.filled().len();
            if n == 0 {
                this.transcoder.finish().map_err(invalid)?;
                this.ended = true;
                continue;
            }
            this.transcoder
                .feed(&this.buf[..n], &mut this.out)
                .map_err(invalid)?;
        }
    }
}
