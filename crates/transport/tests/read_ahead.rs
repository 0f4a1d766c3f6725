//! `ReadAhead`: large socket reads under TLS, handed out in whatever sizes the reader asks.

use std::future::Future;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use yilian_testkit::Rng;
use yilian_transport::read_ahead::{ReadAhead, READ_AHEAD};

/// Seeded pieces written into one end of a pipe, read from the other through a `ReadAhead`
/// in reads of every size (1 byte to more than its buffer), with pauses: every byte arrives
/// once, in order; the stream's end is seen; no buffer is held at the end.
#[tokio::test]
async fn every_byte_once_in_order_whatever_the_read_sizes() {
    for seed in 0..16u64 {
        let mut rng = Rng::new(seed, 1);
        let total = 1 + rng.below(3 * READ_AHEAD as u64 + 5000) as usize;
        let data: Vec<u8> = (0..total).map(|_| rng.below(256) as u8).collect();
        let (mut tx, rx) = tokio::io::duplex(64 * 1024);
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            let mut rng = Rng::new(seed, 2);
            let mut at = 0;
            while at < sent.len() {
                let n = (1 + rng.below(40_000) as usize).min(sent.len() - at);
                tx.write_all(&sent[at..at + n]).await.unwrap();
                at += n;
                if rng.chance(250) {
                    tokio::task::yield_now().await;
                }
            }
        });
        let mut r = ReadAhead::new(rx);
        let mut got = Vec::new();
        loop {
            let want = match rng.below(5) {
                0 => 1 + rng.below(16) as usize,
                1 => 4096,
                2 => READ_AHEAD,
                3 => READ_AHEAD + 1 + rng.below(1000) as usize,
                _ => 1 + rng.below(20_000) as usize,
            };
            let mut b = vec![0; want];
            let n = r.read(&mut b).await.unwrap();
            if n == 0 {
                break;
            }
            assert!(n <= want);
            got.extend_from_slice(&b[..n]);
        }
        writer.await.unwrap();
        assert_eq!(got.len(), data.len(), "seed {seed}");
        assert!(got == data, "seed {seed}: bytes differ");
        assert!(!r.holds_buffer(), "seed {seed}: a buffer held at the end");
    }
}

/// One small read takes what the socket holds; an idle connection gives its buffer back while
/// it waits; writes go straight to the socket.
#[tokio::test]
async fn an_idle_connection_gives_its_buffer_back_and_writes_pass_through() {
    let (mut a, b) = tokio::io::duplex(1 << 20);
    let mut r = ReadAhead::new(b);
    a.write_all(&[7u8; 10_000]).await.unwrap();
    let mut small = [0u8; 100];
    assert_eq!(r.read(&mut small).await.unwrap(), 100);
    assert_eq!(r.buffered(), 9_900, "one read took what the socket held");
    assert!(r.holds_buffer());
    let mut rest = vec![0u8; 9_900];
    r.read_exact(&mut rest).await.unwrap();
    assert!(rest.iter().all(|&b| b == 7));
    // Nothing more to read: the read waits, and the buffer is given back meanwhile.
    {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut read = std::pin::pin!(r.read(&mut small));
        assert!(
            read.as_mut().poll(&mut cx).is_pending(),
            "nothing was there to read"
        );
    }
    assert!(!r.holds_buffer(), "an idle connection holds a buffer");
    // Bytes that arrive later are read in a new buffer.
    a.write_all(b"later").await.unwrap();
    let mut later = [0u8; 5];
    r.read_exact(&mut later).await.unwrap();
    assert_eq!(&later, b"later");
    r.write_all(b"answer").await.unwrap();
    let mut back = [0u8; 6];
    a.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"answer");
}
