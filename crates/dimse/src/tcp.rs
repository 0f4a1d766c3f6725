//! TCP helpers: every DICOM socket of ours has Nagle off (`TCP_NODELAY`). With Nagle on, a
//! small C-STORE-RSP waits for the peer's delayed ACK (≈ 40 ms per instance).

use std::io;
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};

/// Configure an accepted or connected stream for DICOM (TCP_NODELAY).
pub fn configure(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)
}

/// Connect and configure.
pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    configure(&stream)?;
    Ok(stream)
}

/// A listener whose accepted streams are configured.
#[derive(Debug)]
pub struct Listener {
    inner: TcpListener,
}

impl Listener {
    /// Bind.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<Self> {
        Ok(Listener {
            inner: TcpListener::bind(addr).await?,
        })
    }

    /// From a bound standard listener (bound before the runtime serves, e.g. at start-up so
    /// that a port in use is an error right away). Must be called within a tokio runtime.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        Ok(Listener {
            inner: TcpListener::from_std(listener)?,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Accept the next connection, with TCP_NODELAY set.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = self.inner.accept().await?;
        configure(&stream)?;
        Ok((stream, peer))
    }
}
