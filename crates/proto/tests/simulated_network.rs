//! yilian/1 transfers over a seeded simulated network, without sockets.
//!
//! The "network" carries each stream's bytes in order (QUIC does that) but interleaves streams
//! arbitrarily (reordering across streams), cuts connections at random points (everything in
//! flight is lost), lets streams of a dead connection deliver late (duplicated, stale
//! transfers), and crashes the relay (bytes written but not yet fsync'ed are lost).
//! The relay side is a model of the spool (durable vs volatile bytes, one lease per instance).
//!
//! Properties checked for every seed:
//! * every instance ends stored, byte-identical to the source;
//! * no acknowledgement (Checkpoint, Stored, Have) ever covers bytes the relay does not hold
//!   durably (a crash right after it loses nothing acknowledged);
//! * a resumed transfer never restarts below what was acknowledged before;
//! * stale streams never corrupt a newer transfer.

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use yilian_proto::*;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

struct Source {
    sop: String,
    bytes: Vec<u8>,
    hash: Hash,
    done: bool,
    /// Highest offset the relay acknowledged as durable for this instance.
    acked: u64,
}

/// Relay-side spool model for one instance.
#[derive(Default)]
struct Spool {
    durable: Vec<u8>,
    volatile: Vec<u8>,
    stored: Option<Hash>,
    lease: u64,
}

impl Spool {
    fn len(&self) -> u64 {
        (self.durable.len() + self.volatile.len()) as u64
    }
    fn sync(&mut self) {
        let v = std::mem::take(&mut self.volatile);
        self.durable.extend_from_slice(&v);
    }
    fn all(&self) -> Vec<u8> {
        let mut a = self.durable.clone();
        a.extend_from_slice(&self.volatile);
        a
    }
}

struct Stream {
    conn: u64,
    src: usize,
    sender: Sender,
    receiver: Option<(Receiver, u64)>,
    to_relay: VecDeque<Bytes>,
    to_client: VecDeque<Bytes>,
    /// Raw bytes the client still has to write: next offset.
    send_next: Option<u64>,
    finished_sent: bool,
    alive_client: bool,
}

struct World {
    rng: Rng,
    sources: Vec<Source>,
    spool: HashMap<String, Spool>,
    streams: Vec<Stream>,
    conn: u64,
    bytes_sent: u64,
    max_chunk: u64,
}

const SIZE_LIMIT: u64 = 1 << 30;

impl World {
    fn open_streams(&mut self) {
        let open: Vec<usize> = self
            .streams
            .iter()
            .filter(|s| s.alive_client && s.conn == self.conn)
            .map(|s| s.src)
            .collect();
        for (i, src) in self.sources.iter().enumerate() {
            if src.done || open.contains(&i) {
                continue;
            }
            let sender = Sender::new(Offer {
                instance: InstanceRef {
                    study_uid: "1.2.3".into(),
                    sop_uid: src.sop.clone(),
                },
                size: src.bytes.len() as u64,
                priority: 0,
                hash: None,
                facts: None,
            });
            self.streams.push(Stream {
                conn: self.conn,
                src: i,
                sender,
                receiver: None,
                to_relay: VecDeque::new(),
                to_client: VecDeque::new(),
                send_next: None,
                finished_sent: false,
                alive_client: true,
            });
        }
    }

    /// The client side of one stream: transmit frames, raw data, react to replies.
    fn client_step(&mut self, si: usize) {
        let max_chunk = self.max_chunk;
        let chunk = 1 + self.rng.below(max_chunk);
        let s = &mut self.streams[si];
        if !s.alive_client {
            return;
        }
        while let Some(f) = s.sender.poll_transmit() {
            s.to_relay.push_back(f);
        }
        if let Some(next) = s.send_next {
            let src = &self.sources[s.src];
            let end = (next + chunk).min(src.bytes.len() as u64);
            if end > next {
                s.to_relay.push_back(Bytes::copy_from_slice(
                    &src.bytes[next as usize..end as usize],
                ));
                s.sender.data_sent(end - next).expect("data_sent");
                self.bytes_sent += end - next;
                s.send_next = Some(end);
            } else if !s.finished_sent {
                s.sender.finish(src.hash).expect("finish");
                s.finished_sent = true;
                while let Some(f) = s.sender.poll_transmit() {
                    s.to_relay.push_back(f);
                }
            }
        }
    }

    fn deliver_to_client(&mut self, si: usize) {
        let s = &mut self.streams[si];
        let Some(chunk) = s.to_client.pop_front() else {
            return;
        };
        if !s.alive_client {
            return;
        }
        s.sender
            .handle_input(chunk)
            .expect("client decodes replies");
        while let Some(ev) = s.sender.poll_event() {
            let src = &mut self.sources[s.src];
            match ev {
                SenderEvent::Accepted { offset } => {
                    assert!(
                        offset >= src.acked,
                        "{}: resumed at {offset}, below the acknowledged {}",
                        src.sop,
                        src.acked
                    );
                    s.send_next = Some(offset);
                }
                SenderEvent::Checkpoint { durable } => src.acked = src.acked.max(durable),
                SenderEvent::Have { hash } | SenderEvent::Stored { hash } => {
                    assert_eq!(hash, src.hash);
                    src.acked = src.bytes.len() as u64;
                    src.done = true;
                    s.alive_client = false;
                }
                SenderEvent::Refused(r) => {
                    assert!(r.code.is_retryable(), "unexpected refusal {r}");
                    s.alive_client = false;
                }
                SenderEvent::Held | SenderEvent::Resumed => panic!("the relay never holds here"),
            }
        }
    }

    fn deliver_to_relay(&mut self, si: usize) {
        let cut = 1 + self.rng.below(self.max_chunk * 2);
        let sync_now = self.rng.chance(150);
        let s = &mut self.streams[si];
        let Some(mut chunk) = s.to_relay.pop_front() else {
            return;
        };
        // Deliver a random prefix; the rest stays in flight, in order.
        if (chunk.len() as u64) > cut {
            let rest = chunk.split_off(cut as usize);
            s.to_relay.push_front(rest);
        }
        let sop = self.sources[s.src].sop.clone();
        let spool = self.spool.entry(sop).or_default();
        if s.receiver.is_none() {
            let mut dec = FrameDecoder::new();
            dec.push(chunk);
            let Some(Request::Offer(offer)) = dec.next_frame::<Request>("request").expect("req")
            else {
                // Offer not complete yet: keep it in flight.
                if let Some(rest) = dec.take_rest() {
                    s.to_relay.push_front(rest);
                }
                return;
            };
            let mut r = Receiver::new(offer, dec, SIZE_LIMIT).expect("size ok");
            // A new transfer of this instance takes the lease; older ones are superseded.
            spool.lease += 1;
            match spool.stored {
                Some(h) => r.have(h).expect("have"),
                None => r.accept(spool.len()).expect("accept"),
            }
            s.receiver = Some((r, spool.lease));
        } else if let Some((r, lease)) = s.receiver.as_mut() {
            if *lease != spool.lease {
                r.refuse(Refusal {
                    code: RefuseCode::Superseded,
                    reason: "a newer transfer took over".into(),
                });
            } else if !r.is_done() {
                r.handle_input(chunk).expect("relay decodes");
            }
        }
        let Some((r, lease)) = s.receiver.as_mut() else {
            return;
        };
        while let Some(ev) = r.poll_event() {
            if *lease != spool.lease {
                break;
            }
            match ev {
                ReceiverEvent::Data { offset, bytes } => {
                    assert_eq!(offset, spool.len(), "data must continue the spool exactly");
                    spool.volatile.extend_from_slice(&bytes);
                }
                ReceiverEvent::Finish(hash) => {
                    let all = spool.all();
                    if *blake3::hash(&all).as_bytes() == hash {
                        spool.sync();
                        spool.stored = Some(hash);
                        r.stored(hash).expect("stored");
                    } else {
                        *spool = Spool {
                            lease: spool.lease,
                            ..Spool::default()
                        };
                        r.refuse(Refusal {
                            code: RefuseCode::HashMismatch,
                            reason: "hash mismatch".into(),
                        });
                    }
                }
            }
        }
        if sync_now && !r.is_done() && *lease == spool.lease {
            spool.sync();
            r.checkpoint(spool.durable.len() as u64);
        }
        while let Some(f) = r.poll_transmit() {
            s.to_client.push_back(f);
        }
    }

    /// Check that nothing acknowledged is beyond what is durable at the relay.
    fn check_acks_durable(&self) {
        for src in &self.sources {
            let Some(sp) = self.spool.get(&src.sop) else {
                assert_eq!(src.acked, 0);
                continue;
            };
            if sp.stored.is_some() {
                assert_eq!(sp.durable, src.bytes, "{} stored but differs", src.sop);
            } else {
                assert!(
                    src.acked <= sp.durable.len() as u64,
                    "{}: acknowledged {} but only {} durable",
                    src.sop,
                    src.acked,
                    sp.durable.len()
                );
                assert_eq!(sp.durable[..], src.bytes[..sp.durable.len()]);
            }
        }
    }

    fn cut_connection(&mut self, keep_stale: bool) {
        for s in self.streams.iter_mut().filter(|s| s.conn == self.conn) {
            s.alive_client = false;
            s.to_client.clear();
            if !keep_stale {
                s.to_relay.clear();
            }
        }
        self.conn += 1;
    }

    fn crash_relay(&mut self) {
        self.cut_connection(false);
        for s in self.streams.iter_mut() {
            s.to_relay.clear();
            s.receiver = None;
        }
        for sp in self.spool.values_mut() {
            sp.volatile.clear();
        }
    }
}

fn run(seed: u64, instances: usize, cut_per_mille: u64, crash_per_mille: u64) -> (u64, u64) {
    let mut rng = Rng(seed);
    let mut sources = Vec::new();
    let mut total = 0;
    for i in 0..instances {
        let len = 1 + rng.below(200_000) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        total += len as u64;
        sources.push(Source {
            sop: format!("1.2.3.{i}"),
            hash: *blake3::hash(&bytes).as_bytes(),
            bytes,
            done: false,
            acked: 0,
        });
    }
    let mut w = World {
        rng,
        sources,
        spool: HashMap::new(),
        streams: Vec::new(),
        conn: 0,
        bytes_sent: 0,
        max_chunk: 16 * 1024,
    };
    w.open_streams();
    let mut steps = 0u64;
    while !w.sources.iter().all(|s| s.done) {
        steps += 1;
        assert!(steps < 5_000_000, "seed {seed}: no progress");
        w.streams.retain(|s| {
            s.alive_client
                || !s.to_relay.is_empty()
                || s.receiver.as_ref().is_some_and(|r| !r.0.is_done())
        });
        if w.streams.is_empty() {
            w.open_streams();
            continue;
        }
        let si = w.rng.below(w.streams.len() as u64) as usize;
        match w.rng.below(3) {
            0 => w.client_step(si),
            1 => w.deliver_to_relay(si),
            _ => w.deliver_to_client(si),
        }
        w.check_acks_durable();
        if w.rng.chance(cut_per_mille) {
            let stale = w.rng.chance(500);
            w.cut_connection(stale);
            w.open_streams();
        } else if w.rng.chance(crash_per_mille) {
            w.crash_relay();
            w.check_acks_durable();
            w.open_streams();
        }
    }
    for src in &w.sources {
        let sp = &w.spool[&src.sop];
        assert_eq!(sp.stored, Some(src.hash));
        assert_eq!(sp.durable, src.bytes, "{} differs", src.sop);
    }
    (total, w.bytes_sent)
}

#[test]
fn clean_network_sends_every_byte_once() {
    for seed in 0..20 {
        let (total, sent) = run(seed, 8, 0, 0);
        assert_eq!(total, sent, "seed {seed}: no loss means no resend");
    }
}

#[test]
fn cuts_reorder_and_stale_streams_never_corrupt_or_lose() {
    for seed in 100..160 {
        run(seed, 6, 2, 0);
    }
}

#[test]
fn relay_crashes_lose_nothing_acknowledged() {
    for seed in 1000..1040 {
        run(seed, 5, 1, 1);
    }
}

#[test]
fn resumption_resends_little() {
    // With rare cuts, resumption must keep resends to a fraction of the data.
    let mut total = 0;
    let mut sent = 0;
    for seed in 5000..5020 {
        let (t, s) = run(seed, 10, 1, 0);
        total += t;
        sent += s;
    }
    assert!(
        sent < total + total / 5,
        "resent {} of {} bytes",
        sent - total,
        total
    );
}
