//! QUIC congestion controllers over emulated township links, and on raw loopback: goodput,
//! what QUIC declares lost, and what the controller does to the bottleneck queue, for every
//! controller of the run side by side (the first one listed is the reference: `bbr` by
//! default, quinn's BBR, against yilian's `bdp`).
//!
//! Each run is one quinn connection and one stream from memory, client (a township device
//! uploading) → server (the relay), between real yilian endpoints on 127.0.0.1 with the
//! controller's `Tuning`; the harness is `yilian_testkit::quic_transfer`. The properties
//! (identical bytes, loss near the link's own, restart after a cut) are tests, without timings:
//! `crates/transport/tests/congestion_links.rs`.
//!
//! ```text
//! cargo bench --bench congestion                # matrix subset (below), ≈ 3–4 min
//! cargo bench --bench congestion -- --quick     # one cell, 10 MB: ≈ 20 s
//! cargo bench --bench congestion -- --full      # the full matrix: 30 cells, 60 runs
//! cargo bench --bench congestion -- --loopback  # raw loopback only, 1 GiB × 3 per controller
//! cargo bench --bench congestion -- --matrix --loopback            # both
//! YILIAN_CC_CONTROLLERS=bbr,bdp,bdp:gain=2.0 cargo bench --bench congestion -- --quick
//! ```
//!
//! Matrices: the default subset is 20 Mbit/s × 30, 120, 300 ms × 2, 10 % loss; `--quick` one
//! cell, 20 Mbit/s, 120 ms, 2 %; `--full` 2 rates × 3 RTTs × 5 losses (20, 100 Mbit/s × 30,
//! 120, 300 ms × 0, 1, 2, 5, 10 %).
//!
//! **The lossy-link matrix** (`--matrix`, the default section): `YILIAN_CC_MB` (30) MB per run
//! through the seeded UDP link emulator (`yilian-linkem`'s `UdpProxy`), `LinkSpec::rural` both
//! ways (one-way delay RTT/2, the random loss each way, a one-BDP tail-drop queue at the
//! bottleneck), the same seed for every run. Columns:
//! - *rate Mbit/s*, *RTT ms*, *loss %*: the emulated link (loss per direction);
//! - *goodput Mbit/s*: payload bytes that reached the receiver, from the stream's first byte
//!   to the receiver's answer (handshake and close not counted); "(cut off)" when the run hit
//!   `YILIAN_CC_TIMEOUT` (the bytes received by then), "(MISMATCH)" when the bytes that arrived
//!   were not the ones sent;
//! - *share of rate*: goodput / link rate (the rate counts whole IP packets: QUIC and IP
//!   headers keep it below 100 %);
//! - *lost/sent (QUIC)*: bytes QUIC declared lost / UDP bytes sent, sender side (the link's own
//!   random loss plus whatever the controller's queue overflow adds);
//! - *queue drops*: upstream packets tail-dropped at the emulator's bottleneck queue, and as a
//!   share of those offered (the controller flooding the queue);
//! - *max queue delay ms*: the longest any packet waited in that queue;
//! - *sender srtt at end ms*: the sender's smoothed RTT at the end (the standing queue shows
//!   here);
//! - *time s*: the run's duration (the goodput's denominator).
//!
//! **Raw loopback** (`--loopback`): `YILIAN_CC_LOOPBACK_MB` (1024) MiB on one stream straight
//! over 127.0.0.1, no emulator, `YILIAN_CC_ROUNDS` (3) alternating runs per controller;
//! columns: MB/s (payload, 10^6 bytes per second) and lost/sent (QUIC) as above.
//!
//! After each table, one line per controller: the matrix's mean share of rate (range), the
//! geometric mean of its goodput ÷ the reference's per cell, and lost/sent and queue drops over
//! all its runs; loopback's median MB/s (range) and its ratio to the reference's median.
//!
//! Knobs (environment): `YILIAN_CC_CONTROLLERS` (default `bbr,bdp`; also `cubic`, `newreno`,
//! and `bdp:gain=2.0` for a `bdp` with another window gain), `YILIAN_CC_MATRIX=full` (as
//! `--full`), `YILIAN_CC_MB` (default 30; 10 with `--quick`), `YILIAN_CC_RATES` (Mbit/s,
//! comma-separated), `YILIAN_CC_RTTS` (ms), `YILIAN_CC_LOSSES` (%) — each list replaces that
//! dimension of the chosen matrix — `YILIAN_CC_SEED` (default 42), `YILIAN_CC_TIMEOUT` (s per
//! run, default 120), `YILIAN_CC_LOOPBACK_MB` (default 1024; 256 with `--quick`),
//! `YILIAN_CC_ROUNDS` (loopback runs per controller, default 3; 1 with `--quick`),
//! `YILIAN_CC_STREAM_WINDOW_MB` (stream receive window; default `Tuning`'s 8 MiB),
//! `YILIAN_CC_VERBOSE` (print the `bdp` controller's final state).
//!
//! Nothing here has a threshold. The emulator runs in this process, so a busy host shows up as
//! spurious loss and lower goodput: note the load printed at the start and end. The bench exits
//! with an error only if a completed transfer arrived altered or a loopback run did not finish
//! (a bug, not a measurement).

use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use yilian_testkit::quic_transfer::{payload, rural, transfer, Controller, LinkPath, Outcome, Pki};

const USAGE: &str = "\
usage: cargo bench --bench congestion -- [--matrix] [--loopback] [--full | --quick]
  (default)     the matrix subset: 20 Mbit/s × 30,120,300 ms × 2,10 % loss, 30 MB (≈ 3–4 min)
  --matrix      the lossy-link matrix through the UDP link emulator
  --loopback    raw loopback, no emulator: 1 GiB × 3 alternating runs per controller
                (with neither, only the matrix runs)
  --full        the full matrix: 20,100 Mbit/s × 30,120,300 ms × 0,1,2,5,10 % loss
  --quick       one cell (20 Mbit/s, 120 ms, 2 %) of 10 MB; loopback 256 MiB × 1 run
environment: YILIAN_CC_CONTROLLERS (bbr,bdp; also cubic, newreno, bdp:gain=G),
             YILIAN_CC_MATRIX=full, YILIAN_CC_MB, YILIAN_CC_RATES, YILIAN_CC_RTTS, YILIAN_CC_LOSSES, YILIAN_CC_SEED,
             YILIAN_CC_TIMEOUT, YILIAN_CC_LOOPBACK_MB, YILIAN_CC_ROUNDS,
             YILIAN_CC_STREAM_WINDOW_MB, YILIAN_CC_VERBOSE";

const FULL_RATES: [u64; 2] = [20, 100];
const FULL_RTTS: [u64; 3] = [30, 120, 300];
const FULL_LOSSES: [f64; 5] = [0.0, 1.0, 2.0, 5.0, 10.0];
const DEFAULT_RATES: [u64; 1] = [20];
const DEFAULT_RTTS: [u64; 3] = [30, 120, 300];
const DEFAULT_LOSSES: [f64; 2] = [2.0, 10.0];
const QUICK_CELL: (u64, u64, f64) = (20, 120, 2.0);

/// Timeout of one loopback run.
const LOOPBACK_TIMEOUT: Duration = Duration::from_secs(300);

struct Args {
    matrix: bool,
    loopback: bool,
    controllers: Vec<Controller>,
    rates: Vec<u64>,
    rtts: Vec<u64>,
    losses: Vec<f64>,
    mb: usize,
    seed: u64,
    timeout: Duration,
    loopback_mb: usize,
    rounds: usize,
    verbose: bool,
}

/// An environment variable, parsed; `None` when unset or empty.
fn env<T>(name: &str) -> Result<Option<T>>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(Some(
            v.trim().parse().with_context(|| format!("{name}={v:?}"))?,
        )),
        _ => Ok(None),
    }
}

/// A comma-separated list from the environment; `None` when unset or empty.
fn env_list<T>(name: &str) -> Result<Option<Vec<T>>>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .split(',')
            .map(|s| s.trim().parse().with_context(|| format!("{name}={v:?}")))
            .collect::<Result<Vec<T>>>()
            .map(Some),
        _ => Ok(None),
    }
}

fn parse_args() -> Result<Args> {
    let (mut matrix, mut loopback, mut quick) = (false, false, false);
    let mut full = std::env::var("YILIAN_CC_MATRIX").is_ok_and(|v| v == "full");
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--bench" => {} // passed by `cargo bench`
            "--matrix" => matrix = true,
            "--loopback" => loopback = true,
            "--full" => full = true,
            "--quick" => quick = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            f if f.starts_with('-') => bail!("unknown option {f}\n{USAGE}"),
            _ => {} // a `cargo bench -- FILTER` word: nothing to filter here
        }
    }
    ensure!(!(quick && full), "--quick and --full exclude each other");
    if !matrix && !loopback {
        matrix = true;
    }

    let window: Option<u64> = env("YILIAN_CC_STREAM_WINDOW_MB")?;
    let controllers = std::env::var("YILIAN_CC_CONTROLLERS")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "bbr,bdp".into())
        .split(',')
        .map(|s| {
            let c =
                Controller::parse(s).map_err(|e| anyhow::anyhow!("YILIAN_CC_CONTROLLERS: {e}"))?;
            Ok(match window {
                Some(mb) => c.with_stream_window(mb << 20),
                None => c,
            })
        })
        .collect::<Result<Vec<_>>>()?;

    let (rates, rtts, losses): (&[u64], &[u64], &[f64]) = if full {
        (&FULL_RATES, &FULL_RTTS, &FULL_LOSSES)
    } else if quick {
        (&[QUICK_CELL.0], &[QUICK_CELL.1], &[QUICK_CELL.2])
    } else {
        (&DEFAULT_RATES, &DEFAULT_RTTS, &DEFAULT_LOSSES)
    };
    let args = Args {
        matrix,
        loopback,
        controllers,
        rates: env_list("YILIAN_CC_RATES")?.unwrap_or_else(|| rates.to_vec()),
        rtts: env_list("YILIAN_CC_RTTS")?.unwrap_or_else(|| rtts.to_vec()),
        losses: env_list("YILIAN_CC_LOSSES")?.unwrap_or_else(|| losses.to_vec()),
        mb: env("YILIAN_CC_MB")?.unwrap_or(if quick { 10 } else { 30 }),
        seed: env("YILIAN_CC_SEED")?.unwrap_or(42),
        timeout: Duration::from_secs(env("YILIAN_CC_TIMEOUT")?.unwrap_or(120)),
        loopback_mb: env("YILIAN_CC_LOOPBACK_MB")?.unwrap_or(if quick { 256 } else { 1024 }),
        rounds: env("YILIAN_CC_ROUNDS")?.unwrap_or(if quick { 1 } else { 3 }),
        verbose: std::env::var_os("YILIAN_CC_VERBOSE").is_some(),
    };
    ensure!(!args.controllers.is_empty(), "no controller to measure");
    ensure!(
        args.mb > 0 && args.loopback_mb > 0,
        "sizes must be at least 1 MB"
    );
    ensure!(
        args.rates.iter().all(|&r| r > 0),
        "rates must be at least 1 Mbit/s"
    );
    ensure!(
        args.losses.iter().all(|&l| (0.0..100.0).contains(&l)),
        "losses are percentages in [0, 100)"
    );
    Ok(args)
}

// --- the lossy-link matrix -------------------------------------------------------------------

/// One matrix run of one controller.
struct MatrixRun {
    rate: u64,
    rtt: u64,
    loss: f64,
    outcome: Outcome,
}

fn header() {
    println!(
        "| controller | rate Mbit/s | RTT ms | loss % | goodput Mbit/s | share of rate | lost/sent (QUIC) | queue drops (pkts, % of offered) | max queue delay ms | sender srtt at end ms | time s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
}

fn row(c: &Controller, r: &MatrixRun, verbose: bool) {
    let o = &r.outcome;
    let (dropped, offered, max_delay) = o.link.as_ref().map_or((0, 0, Duration::ZERO), |l| {
        (l.up.dropped_queue, l.up.offered, l.up.max_queue_delay)
    });
    let qd_pct = 100.0 * dropped as f64 / offered.max(1) as f64;
    let mark = if o.timed_out {
        " (cut off)"
    } else if !o.identical {
        " (MISMATCH)"
    } else {
        ""
    };
    println!(
        "| {} | {} | {} | {} | {:.2}{} | {:.0} % | {:.1} % | {} ({:.1} %) | {} | {} | {:.1} |",
        c.label,
        r.rate,
        r.rtt,
        r.loss,
        o.mbit_per_s(),
        mark,
        100.0 * o.mbit_per_s() / r.rate as f64,
        100.0 * o.lost_ratio(),
        dropped,
        qd_pct,
        max_delay.as_millis(),
        o.srtt.as_millis(),
        o.secs,
    );
    if verbose {
        if let Some(s) = &o.bdp {
            eprintln!("    {s:?}");
        }
    }
}

/// Geometric mean of `values` (all > 0), or `None` if there is none.
fn geomean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values
        .filter(|v| *v > 0.0)
        .fold((0.0, 0usize), |(s, n), v| (s + v.ln(), n + 1));
    (n > 0).then(|| (sum / n as f64).exp())
}

/// One line per controller: share of rate, ratio to the reference per cell, losses, drops.
fn matrix_summary(controllers: &[Controller], runs: &[Vec<MatrixRun>]) {
    println!();
    let reference = &controllers[0].label;
    for (i, (c, mine)) in controllers.iter().zip(runs).enumerate() {
        if mine.is_empty() {
            continue;
        }
        let shares: Vec<f64> = mine
            .iter()
            .map(|r| 100.0 * r.outcome.mbit_per_s() / r.rate as f64)
            .collect();
        let mean = shares.iter().sum::<f64>() / shares.len() as f64;
        let min = shares.iter().copied().fold(f64::INFINITY, f64::min);
        let max = shares.iter().copied().fold(0.0, f64::max);
        let vs_ref = if i == 0 {
            "reference".to_string()
        } else {
            let ratios = mine
                .iter()
                .zip(&runs[0])
                .map(|(a, b)| a.outcome.mbit_per_s() / b.outcome.mbit_per_s());
            geomean(ratios).map_or("—".into(), |g| {
                format!("×{g:.2} of {reference} (geometric mean per cell)")
            })
        };
        let (lost, sent) = mine.iter().fold((0, 0), |(l, s), r| {
            (l + r.outcome.lost_bytes, s + r.outcome.sent_bytes)
        });
        let (dropped, offered) = mine.iter().fold((0, 0), |(d, o), r| {
            r.outcome
                .link
                .as_ref()
                .map_or((d, o), |l| (d + l.up.dropped_queue, o + l.up.offered))
        });
        let cut = mine.iter().filter(|r| r.outcome.timed_out).count();
        let bad = mine
            .iter()
            .filter(|r| !r.outcome.timed_out && !r.outcome.identical)
            .count();
        println!(
            "{}: {} cell(s), goodput {mean:.0} % of the rate on average ({min:.0}–{max:.0} %), {vs_ref}, lost/sent {:.1} %, queue drops {:.1} % of offered, {cut} cut off, {bad} mismatched",
            c.label,
            mine.len(),
            100.0 * lost as f64 / sent.max(1) as f64,
            100.0 * dropped as f64 / offered.max(1) as f64,
        );
    }
}

/// Runs the matrix, prints the table and the summaries; returns the number of altered
/// transfers.
async fn matrix(args: &Args, pki: &Pki) -> usize {
    let data = payload(args.mb * 1_000_000, args.seed);
    println!(
        "\n{} MB, one stream, loss each way, one-BDP queue (LinkSpec::rural), seed {}, timeout {} s\n",
        args.mb,
        args.seed,
        args.timeout.as_secs()
    );
    header();
    let mut runs: Vec<Vec<MatrixRun>> = args.controllers.iter().map(|_| Vec::new()).collect();
    for &rate in &args.rates {
        for &rtt in &args.rtts {
            for &loss in &args.losses {
                for (c, mine) in args.controllers.iter().zip(runs.iter_mut()) {
                    let (up, down) = rural(rate, rtt, loss / 100.0);
                    let path = LinkPath::Emulated {
                        up,
                        down,
                        seed: args.seed,
                        cut: None,
                    };
                    let outcome = transfer(pki, c, path, data.clone(), args.timeout).await;
                    let run = MatrixRun {
                        rate,
                        rtt,
                        loss,
                        outcome,
                    };
                    row(c, &run, args.verbose);
                    mine.push(run);
                }
            }
        }
    }
    matrix_summary(&args.controllers, &runs);
    runs.iter()
        .flatten()
        .filter(|r| !r.outcome.timed_out && !r.outcome.identical)
        .count()
}

// --- raw loopback ----------------------------------------------------------------------------

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs the loopback measurement, prints the table and the summaries; returns the number of
/// altered or unfinished transfers.
async fn loopback(args: &Args, pki: &Pki) -> usize {
    let data = payload(args.loopback_mb << 20, 7);
    println!(
        "\nloopback, {} MiB on one stream, {} alternating runs each\n",
        args.loopback_mb, args.rounds
    );
    println!("| controller | run | MB/s | lost/sent (QUIC) |");
    println!("|---|---:|---:|---:|");
    let mut speeds: Vec<Vec<f64>> = args.controllers.iter().map(|_| Vec::new()).collect();
    let mut lost: Vec<(u64, u64)> = vec![(0, 0); args.controllers.len()];
    let mut failed = 0;
    for r in 0..args.rounds {
        for (i, c) in args.controllers.iter().enumerate() {
            let o = transfer(pki, c, LinkPath::Loopback, data.clone(), LOOPBACK_TIMEOUT).await;
            let mark = if o.timed_out {
                " (cut off)"
            } else if !o.identical {
                " (MISMATCH)"
            } else {
                ""
            };
            if !o.identical {
                failed += 1;
            }
            let mb_s = o.received as f64 / 1e6 / o.secs;
            println!(
                "| {} | {} | {:.0}{mark} | {:.2} % |",
                c.label,
                r + 1,
                mb_s,
                100.0 * o.lost_ratio()
            );
            if args.verbose {
                eprintln!("    srtt {:?} {:?}", o.srtt, o.bdp);
            }
            speeds[i].push(mb_s);
            lost[i].0 += o.lost_bytes;
            lost[i].1 += o.sent_bytes;
        }
    }
    println!();
    let medians: Vec<f64> = speeds.iter_mut().map(|v| median(v)).collect();
    for (i, c) in args.controllers.iter().enumerate() {
        let min = speeds[i].iter().copied().fold(f64::INFINITY, f64::min);
        let max = speeds[i].iter().copied().fold(0.0, f64::max);
        let vs_ref = if i == 0 {
            "reference".to_string()
        } else {
            format!(
                "×{:.2} of {}",
                medians[i] / medians[0],
                args.controllers[0].label
            )
        };
        println!(
            "{}: median {:.0} MB/s over {} run(s) ({min:.0}–{max:.0}), {vs_ref}, lost/sent {:.2} %",
            c.label,
            medians[i],
            speeds[i].len(),
            100.0 * lost[i].0 as f64 / lost[i].1.max(1) as f64,
        );
    }
    failed
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| {
            let v: Vec<&str> = s.split_whitespace().take(3).collect();
            (v.len() == 3).then(|| v.join(" "))
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let labels: Vec<&str> = args.controllers.iter().map(|c| c.label.as_str()).collect();
    println!(
        "congestion bench: controllers {} (reference {}), load average {}",
        labels.join(", "),
        labels[0],
        load_average()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    let pki = Pki::generate("congestion bench");
    let altered = runtime.block_on(async {
        let mut altered = 0;
        if args.matrix {
            altered += matrix(&args, &pki).await;
        }
        if args.loopback {
            altered += loopback(&args, &pki).await;
        }
        altered
    });
    println!("\nload average at the end {}", load_average());
    ensure!(
        altered == 0,
        "{altered} transfer(s) did not arrive identical (or a loopback run was cut off)"
    );
    Ok(())
}
