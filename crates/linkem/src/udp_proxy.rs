//! A UDP impairment proxy on loopback: clients talk to [`ProxyHandle::local_addr`], the proxy
//! talks to the upstream server, and every datagram crosses a [`Link`](crate::Link) (up for
//! client → server, down for server → client).
//!
//! * One upstream-facing socket per client source address, so several clients (several QUIC
//!   endpoints) work and each looks like its own peer to the server.
//! * [`ProxyHandle::rebind`] moves every client's upstream-facing socket to a new local port
//!   mid-flow — what a NAT rebinding looks like to the server (QUIC must migrate). The old
//!   port is closed, as when a NAT mapping expires.
//! * Delivery runs from one delay line per direction, drained by one task per direction that
//!   sleeps until the earliest due packet (no task or timer per packet). Delivery is late by
//!   at most the timer resolution (about 1 ms with tokio), never early.
//! * Sockets have 4 MiB kernel buffers so bursts are shaped by the model, not by the kernel.

use crate::control::{Direction, LinkControl, PathStats};
use crate::model::{DelayLine, Verdict};
use crate::spec::{LinkSpec, SpecError};
use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Kernel socket buffer size for every proxy socket.
pub const SOCKET_BUFFER: usize = 4 << 20;
/// Most client source addresses one proxy serves (each costs a socket and a task).
pub const MAX_FLOWS: usize = 1024;
/// Largest datagram carried.
const MAX_DATAGRAM: usize = 65_536;
/// Most packets delivered per wake-up before other tasks get a turn.
const BATCH: usize = 256;

/// Why the proxy cannot start or act.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Listening or upstream address off loopback.
    #[error("the UDP proxy only runs on loopback; {what} {addr} is not a loopback address")]
    NotLoopback {
        /// "listen" or "upstream".
        what: &'static str,
        /// The address given.
        addr: SocketAddr,
    },
    /// A socket could not be created or bound.
    #[error("cannot bind a UDP socket on {addr}: {source}")]
    Bind {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The upstream-facing socket could not be connected.
    #[error("cannot connect a UDP socket to upstream {addr}: {source}")]
    Connect {
        /// Upstream.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// A spec failed validation.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Called outside a tokio runtime.
    #[error("the UDP proxy needs a tokio runtime (call it from within one)")]
    NoRuntime,
    /// The proxy was shut down.
    #[error("the UDP proxy was shut down")]
    ShutDown,
}

/// A running proxy; stops when dropped (or on [`ProxyHandle::shutdown`]). Dereferences to its
/// [`ProxyHandle`].
#[derive(Debug)]
pub struct UdpProxy {
    handle: ProxyHandle,
}

/// Cheap, cloneable control of a running proxy.
#[derive(Clone, Debug)]
pub struct ProxyHandle {
    inner: Arc<Inner>,
}

struct Inner {
    control: LinkControl,
    listen: Arc<UdpSocket>,
    local: SocketAddr,
    upstream: SocketAddr,
    flows: Mutex<HashMap<SocketAddr, Arc<Flow>>>,
    up: Lane,
    down: Lane,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    runtime: tokio::runtime::Handle,
    closed: AtomicBool,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpProxy")
            .field("local", &self.local)
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

/// One client source address and its upstream-facing socket.
struct Flow {
    client: SocketAddr,
    socket: Mutex<Arc<UdpSocket>>,
    reader: Mutex<Option<JoinHandle<()>>>,
}

struct Packet {
    offered: Instant,
    data: Vec<u8>,
    flow: Arc<Flow>,
}

/// One direction's delay line and the wake-up of its delivery task.
#[derive(Default)]
struct Lane {
    line: Mutex<DelayLine<Packet>>,
    wake: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Lane {
    fn push(&self, at: Instant, packet: Packet) {
        let earliest = lock(&self.line).push(at, packet);
        if earliest {
            self.wake.notify_one();
        }
    }
}

impl UdpProxy {
    /// Listen on `listen` (e.g. `127.0.0.1:0`) and forward to `upstream` through `up`
    /// (client → server) and `down` (server → client), seeded with `seed`. Both addresses must
    /// be loopback. Scheduled cuts count from now.
    pub async fn start(
        listen: SocketAddr,
        upstream: SocketAddr,
        up: LinkSpec,
        down: LinkSpec,
        seed: u64,
    ) -> Result<UdpProxy, ProxyError> {
        for (what, addr) in [("listen", listen), ("upstream", upstream)] {
            if !addr.ip().is_loopback() {
                return Err(ProxyError::NotLoopback { what, addr });
            }
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ProxyError::NoRuntime)?;
        let control = LinkControl::new(up, down, seed)?;
        let std_socket = bind_udp(listen)?;
        let listen_socket = UdpSocket::from_std(std_socket).map_err(|source| ProxyError::Bind {
            addr: listen,
            source,
        })?;
        let local = listen_socket
            .local_addr()
            .map_err(|source| ProxyError::Bind {
                addr: listen,
                source,
            })?;
        let inner = Arc::new(Inner {
            control,
            listen: Arc::new(listen_socket),
            local,
            upstream,
            flows: Mutex::new(HashMap::new()),
            up: Lane::default(),
            down: Lane::default(),
            tasks: Mutex::new(Vec::new()),
            runtime,
            closed: AtomicBool::new(false),
        });
        let tasks = vec![
            inner.runtime.spawn(client_reader(inner.clone())),
            inner.runtime.spawn(deliver(inner.clone(), Direction::Up)),
            inner.runtime.spawn(deliver(inner.clone(), Direction::Down)),
        ];
        lock(&inner.tasks).extend(tasks);
        tracing::debug!(%local, %upstream, "UDP link emulator proxy started");
        Ok(UdpProxy {
            handle: ProxyHandle { inner },
        })
    }

    /// A handle that can be cloned and moved to other tasks.
    pub fn handle(&self) -> ProxyHandle {
        self.handle.clone()
    }
}

impl std::ops::Deref for UdpProxy {
    type Target = ProxyHandle;
    fn deref(&self) -> &ProxyHandle {
        &self.handle
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

impl ProxyHandle {
    /// Where clients send (the proxy's listening address).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// The server the proxy forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.inner.upstream
    }

    /// The links (the same control a namespace pair offers).
    pub fn control(&self) -> &LinkControl {
        &self.inner.control
    }

    /// Cut both directions now for `duration` (queued and in-flight packets are lost too).
    pub fn cut_for(&self, duration: Duration) {
        self.inner.control.cut_for(duration);
    }

    /// Cut both directions until [`ProxyHandle::restore`].
    pub fn cut_now(&self) {
        self.inner.control.cut_now();
    }

    /// End every cut in force.
    pub fn restore(&self) {
        self.inner.control.restore();
    }

    /// Replace both directions' specs.
    pub fn set_specs(&self, up: LinkSpec, down: LinkSpec) -> Result<(), SpecError> {
        self.inner.control.set_specs(up, down)
    }

    /// Counters of both directions.
    pub fn stats(&self) -> PathStats {
        self.inner.control.stats()
    }

    /// Number of client source addresses seen.
    pub fn flows(&self) -> usize {
        lock(&self.inner.flows).len()
    }

    /// For each client, the local address of its upstream-facing socket (what the server sees
    /// as the client's address).
    pub fn upstream_sources(&self) -> Vec<(SocketAddr, SocketAddr)> {
        lock(&self.inner.flows)
            .values()
            .filter_map(|f| {
                let local = lock(&f.socket).local_addr().ok()?;
                Some((f.client, local))
            })
            .collect()
    }

    /// NAT rebinding: give every client a new upstream-facing socket (new local port) and
    /// close the old one. Returns the new addresses the server will see.
    pub fn rebind(&self) -> Result<Vec<SocketAddr>, ProxyError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(ProxyError::ShutDown);
        }
        let flows: Vec<Arc<Flow>> = lock(&self.inner.flows).values().cloned().collect();
        let mut out = Vec::with_capacity(flows.len());
        for flow in flows {
            let socket = self.inner.upstream_socket()?;
            let local = socket.local_addr().map_err(|source| ProxyError::Bind {
                addr: self.inner.upstream,
                source,
            })?;
            let old = std::mem::replace(&mut *lock(&flow.socket), socket.clone());
            let reader =
                self.inner
                    .runtime
                    .spawn(upstream_reader(self.inner.clone(), flow.clone(), socket));
            if let Some(previous) = lock(&flow.reader).replace(reader) {
                previous.abort();
            }
            tracing::debug!(client = %flow.client, old = ?old.local_addr().ok(), new = %local, "rebound");
            out.push(local);
        }
        Ok(out)
    }

    /// Stop every task and close every socket. Idempotent.
    pub fn shutdown(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        for task in lock(&self.inner.tasks).drain(..) {
            task.abort();
        }
        for (_, flow) in lock(&self.inner.flows).drain() {
            if let Some(reader) = lock(&flow.reader).take() {
                reader.abort();
            }
        }
        lock(&self.inner.up.line).clear();
        lock(&self.inner.down.line).clear();
    }
}

impl Inner {
    fn lane(&self, dir: Direction) -> &Lane {
        match dir {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        }
    }

    /// A new upstream-facing socket: loopback, ephemeral port, connected to the upstream.
    fn upstream_socket(&self) -> Result<Arc<UdpSocket>, ProxyError> {
        let bind = if self.upstream.is_ipv6() {
            SocketAddr::from((Ipv6Addr::LOCALHOST, 0))
        } else {
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
        };
        let std_socket = bind_udp(bind)?;
        std_socket
            .connect(self.upstream)
            .map_err(|source| ProxyError::Connect {
                addr: self.upstream,
                source,
            })?;
        let _guard = self.runtime.enter();
        let socket = UdpSocket::from_std(std_socket)
            .map_err(|source| ProxyError::Bind { addr: bind, source })?;
        Ok(Arc::new(socket))
    }

    /// The flow of `client`, created (socket and reader task) on its first datagram.
    fn flow_for(self: &Arc<Self>, client: SocketAddr) -> Option<Arc<Flow>> {
        let mut flows = lock(&self.flows);
        if let Some(flow) = flows.get(&client) {
            return Some(flow.clone());
        }
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        if flows.len() >= MAX_FLOWS {
            tracing::warn!(%client, "UDP proxy: too many clients ({MAX_FLOWS}); datagram dropped");
            return None;
        }
        let socket = match self.upstream_socket() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%client, "UDP proxy: {e}; datagram dropped");
                return None;
            }
        };
        let flow = Arc::new(Flow {
            client,
            socket: Mutex::new(socket.clone()),
            reader: Mutex::new(None),
        });
        let reader = self
            .runtime
            .spawn(upstream_reader(self.clone(), flow.clone(), socket));
        *lock(&flow.reader) = Some(reader);
        flows.insert(client, flow.clone());
        tracing::debug!(%client, "UDP proxy: new client");
        Some(flow)
    }

    fn offer(&self, dir: Direction, data: &[u8], flow: &Arc<Flow>) {
        let now = Instant::now();
        let verdict = self.control.link(dir).offer(now, data.len());
        if let Verdict::Deliver { at } = verdict {
            self.lane(dir).push(
                at,
                Packet {
                    offered: now,
                    data: data.to_vec(),
                    flow: flow.clone(),
                },
            );
        }
    }
}

/// A UDP socket with 4 MiB buffers (forced past `net.core.*mem_max` when privileged).
fn bind_udp(addr: SocketAddr) -> Result<std::net::UdpSocket, ProxyError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let bind_err = |source| ProxyError::Bind { addr, source };
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(bind_err)?;
    set_buffers(&socket, SOCKET_BUFFER);
    socket.set_nonblocking(true).map_err(bind_err)?;
    socket.bind(&addr.into()).map_err(bind_err)?;
    Ok(socket.into())
}

pub(crate) fn set_buffers(socket: &socket2::Socket, size: usize) {
    let _ = socket.set_recv_buffer_size(size);
    let _ = socket.set_send_buffer_size(size);
    if socket.recv_buffer_size().unwrap_or(0) < size {
        force_buffer(socket, libc::SO_RCVBUFFORCE, size);
    }
    if socket.send_buffer_size().unwrap_or(0) < size {
        force_buffer(socket, libc::SO_SNDBUFFORCE, size);
    }
}

fn force_buffer(socket: &socket2::Socket, option: libc::c_int, size: usize) {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    // SAFETY: a valid socket fd and a c_int option value of the right size; failure (no
    // CAP_NET_ADMIN) only leaves the capped size in place.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Datagrams from clients → up link.
async fn client_reader(inner: Arc<Inner>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match inner.listen.recv_from(&mut buf).await {
            Ok((len, from)) => {
                if let Some(flow) = inner.flow_for(from) {
                    inner.offer(Direction::Up, &buf[..len], &flow);
                }
            }
            // E.g. an ICMP error reported on the socket: not fatal for a UDP relay.
            Err(e) => {
                tracing::debug!("UDP proxy: receive from clients: {e}");
                tokio::task::yield_now().await;
            }
        }
    }
}

/// Datagrams from the server to one client's upstream-facing socket → down link.
async fn upstream_reader(inner: Arc<Inner>, flow: Arc<Flow>, socket: Arc<UdpSocket>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match socket.recv(&mut buf).await {
            Ok(len) => inner.offer(Direction::Down, &buf[..len], &flow),
            // ECONNREFUSED when the server's port is closed (ICMP): keep going.
            Err(e) => {
                tracing::debug!(client = %flow.client, "UDP proxy: receive from upstream: {e}");
                tokio::task::yield_now().await;
            }
        }
    }
}

/// Deliver one direction's packets when they are due.
async fn deliver(inner: Arc<Inner>, dir: Direction) {
    let lane = inner.lane(dir);
    let mut due: Vec<(Instant, Packet)> = Vec::with_capacity(BATCH);
    let sleep = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(sleep);
    loop {
        let next = {
            let now = Instant::now();
            let mut line = lock(&lane.line);
            while due.len() < BATCH {
                match line.pop_due(now) {
                    Some(entry) => due.push(entry),
                    None => break,
                }
            }
            line.next_due()
        };
        if !due.is_empty() {
            {
                // A cut triggered since these packets were accepted may have lost them.
                let mut link = inner.control.link(dir);
                due.retain(|(at, p)| link.confirm_delivery(p.offered, *at, p.data.len()));
            }
            for (_, packet) in due.drain(..) {
                let sent = match dir {
                    Direction::Up => {
                        let socket = lock(&packet.flow.socket).clone();
                        socket.send(&packet.data).await
                    }
                    Direction::Down => inner.listen.send_to(&packet.data, packet.flow.client).await,
                };
                if let Err(e) = sent {
                    tracing::debug!(?dir, client = %packet.flow.client, "UDP proxy: send: {e}");
                }
            }
            continue;
        }
        match next {
            Some(at) => {
                sleep.as_mut().reset(tokio::time::Instant::from_std(at));
                tokio::select! {
                    _ = &mut sleep => {}
                    _ = lane.wake.notified() => {}
                }
            }
            None => lane.wake.notified().await,
        }
    }
}
