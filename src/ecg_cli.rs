//! `yilian ecg stream` and `yilian ecg watch`: argument definitions and terminal output.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use yilian_client::ecg::{list_ecg, stream_ecg, watch_ecg, EcgStreamOptions, WatchEvent};
use yilian_ecg::model::{Block, Calibration, Lead, SampleRate, LEAD_COUNT};
use yilian_ecg::rhythm::RateDetector;
use yilian_ecg::samples::{Replay, Samples};
use yilian_ecg::simulate::{SimSpec, Simulator};
use yilian_ecg::wire::{PatientWire, SessionId};

use crate::cli::{client_config, init_logging, PeerArgs};
use crate::progress::Bar;

#[derive(Subcommand, Debug)]
pub enum EcgCommand {
    /// Stream a live 12-lead ECG from this cart to the relay, until Ctrl-C or --seconds.
    ///
    /// The relay routes the session like a study (county cardiology by default), shows it live
    /// to the readers it is routed to, and records all of it as DICOM 12-lead ECG objects.
    /// If the link drops or the relay restarts, the cart keeps the frames and sends them when
    /// it is back, so the recording stays complete. Exit status 0 once the relay recorded the
    /// whole session.
    ///
    /// Examples (development certificates; never for patient data):
    ///
    ///   yilian ecg stream --relay 127.0.0.1:4433 --cert certs-dev/township-a-device.pem \
    ///       --key certs-dev/township-a-device.key --simulate --seconds 10
    ///   yilian ecg stream ... --simulate --st-elevation --urgent     # a STEMI, urgent
    ///   yilian ecg stream ... --file ecg.dcm                          # replay a DICOM ECG
    #[command(verbatim_doc_comment)]
    Stream(StreamArgs),
    /// List the live ECG sessions routed to this reader, or watch one (--session).
    ///
    /// Watching shows lead II and the heart rate in the terminal, with the frames received
    /// and missed (a slow link skips to the newest frames instead of falling behind).
    ///
    ///   yilian ecg watch --relay 127.0.0.1:4433 --cert certs-dev/county-cardiology.pem \
    ///       --key certs-dev/county-cardiology.key
    ///   yilian ecg watch ... --session 3f2a…   (an id from the list; a unique prefix is enough)
    #[command(verbatim_doc_comment)]
    Watch(WatchArgs),
}

#[derive(Args, Debug)]
pub struct StreamArgs {
    #[command(flatten)]
    peer: PeerArgs,
    /// Stream a synthetic 12-lead ECG (for trying it out and for tests).
    #[arg(long, conflicts_with = "file")]
    simulate: bool,
    /// Replay the 12-lead waveform of a DICOM ECG file in real time.
    #[arg(long, value_name = "DICOM")]
    file: Option<PathBuf>,
    /// Stop after this many seconds of ECG (default: until Ctrl-C, or the end of --file).
    #[arg(long, value_name = "N")]
    seconds: Option<f64>,
    /// Samples per second per lead for --simulate: 500 or 1000.
    #[arg(long, value_name = "HZ", default_value_t = 500)]
    rate: u32,
    /// Suspected STEMI or another emergency: the session goes first everywhere.
    #[arg(long)]
    urgent: bool,
    /// --simulate: heart rate in beats per minute.
    #[arg(long, value_name = "BPM", default_value_t = 72.0)]
    heart_rate: f64,
    /// --simulate: an anterior ST-elevation pattern (V1–V4 raised).
    #[arg(long)]
    st_elevation: bool,
    /// --simulate: the seed (the same seed gives the same signal).
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed: u64,
    /// Patient ID for the recording.
    #[arg(long, value_name = "ID", default_value = "")]
    patient_id: String,
    /// Patient name for the recording (DICOM form, e.g. 王^小东).
    #[arg(long, value_name = "NAME", default_value = "")]
    patient_name: String,
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    peer: PeerArgs,
    /// The session to watch (its id, or a unique prefix); without it, list the sessions.
    #[arg(long, value_name = "ID")]
    session: Option<String>,
    /// Stop after this many seconds of watching.
    #[arg(long, value_name = "N")]
    seconds: Option<f64>,
}

pub async fn run(cmd: EcgCommand) -> Result<ExitCode> {
    match cmd {
        EcgCommand::Stream(a) => stream(a).await,
        EcgCommand::Watch(a) => watch(a).await,
    }
}

fn samples_from(a: &StreamArgs) -> Result<Box<dyn Samples>> {
    if let Some(path) = &a.file {
        return replay_file(path);
    }
    if !a.simulate {
        bail!("say what to stream: --simulate (a synthetic ECG) or --file ECG.dcm (a DICOM ECG replayed)");
    }
    let rate = SampleRate::from_hz(a.rate).with_context(|| {
        format!(
            "--rate {}: a live session samples at 500 or 1000 Hz",
            a.rate
        )
    })?;
    if !(20.0..=250.0).contains(&a.heart_rate) {
        bail!(
            "--heart-rate {}: give 20 to 250 beats per minute",
            a.heart_rate
        );
    }
    Ok(Box::new(Simulator::new(SimSpec {
        rate,
        heart_rate_bpm: a.heart_rate,
        seed: a.seed,
        st_elevation: a.st_elevation,
        ..SimSpec::default()
    })))
}

/// The 12 standard leads of the first multiplex group that has them all.
fn replay_file(path: &std::path::Path) -> Result<Box<dyn Samples>> {
    let groups = yilian_dicom::waveform::read_waveforms_file(path)
        .with_context(|| format!("reading the ECG waveform of {}", path.display()))?;
    for g in &groups {
        let mut order = [usize::MAX; LEAD_COUNT];
        for (i, c) in g.channels.iter().enumerate() {
            if let Some(lead) = Lead::from_label(&c.label) {
                if order[lead.index()] == usize::MAX {
                    order[lead.index()] = i;
                }
            }
        }
        if order.contains(&usize::MAX) {
            continue;
        }
        let hz = g.sampling_frequency.round() as u32;
        let Some(rate) = SampleRate::from_hz(hz) else {
            bail!(
                "{}: its 12 leads are sampled at {} Hz; a live session streams at 500 or 1000 Hz",
                path.display(),
                g.sampling_frequency
            );
        };
        let n = g.samples_per_channel();
        let mut samples = Vec::with_capacity(n * LEAD_COUNT);
        let mut calibration = [Calibration::default(); LEAD_COUNT];
        for (lead, &ch) in order.iter().enumerate() {
            samples.extend(g.channel_samples(ch).unwrap_or_default());
            let c = &g.channels[ch];
            calibration[lead] = Calibration {
                sensitivity_uv: c.sensitivity_uv * c.correction,
                baseline_uv: c.baseline_uv,
            };
        }
        let block = Block::from_lead_major(samples)
            .context("the file's leads do not have the same number of samples")?;
        return Ok(Box::new(Replay::new(rate, calibration, block)));
    }
    bail!(
        "{}: no multiplex group with the 12 standard leads (I, II, III, aVR, aVL, aVF, V1–V6)",
        path.display()
    )
}

async fn stream(a: StreamArgs) -> Result<ExitCode> {
    init_logging("info");
    let samples = samples_from(&a)?;
    if let Some(s) = a.seconds.filter(|s| !(s.is_finite() && *s > 0.0)) {
        bail!("--seconds {s}: give a positive number of seconds");
    }
    let opts = EcgStreamOptions {
        client: client_config(&a.peer)?,
        seconds: a.seconds,
        urgent: a.urgent,
        frame: Duration::from_millis(40),
        patient: PatientWire {
            name: a.patient_name.clone().into(),
            id: a.patient_id.clone().into(),
            ..Default::default()
        },
        device: Some(format!("yilian {}", env!("CARGO_PKG_VERSION"))),
        max_held: Duration::from_secs(3600),
    };
    let bar = Arc::new(Bar::new());
    let stop = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for Ctrl-C ({e}); stop with --seconds");
            std::future::pending::<()>().await;
        }
    };
    let report = stream_ecg(&opts, samples, stop, bar.clone()).await;
    bar.finish();
    let r = report?;
    println!(
        "session {}: {:.1} s of ECG in {} frames; {} recording(s) stored at the relay{}",
        r.session,
        r.seconds,
        r.frames,
        r.objects,
        if r.reconnections > 0 {
            format!(" ({} reconnection(s))", r.reconnections)
        } else {
            String::new()
        }
    );
    if r.complete {
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "the recording is INCOMPLETE: {}",
            r.reason.as_deref().unwrap_or("frames were lost")
        );
        Ok(ExitCode::from(1))
    }
}

async fn watch(a: WatchArgs) -> Result<ExitCode> {
    init_logging("warn");
    let client = client_config(&a.peer)?;
    let bar = Arc::new(Bar::new());
    let sessions = list_ecg(&client, bar.clone()).await?;
    let Some(wanted) = a.session.as_deref() else {
        if sessions.is_empty() {
            println!("no live ECG session is routed to this reader now");
        }
        for s in &sessions {
            println!(
                "{}  {}{}  from {} ({})  {} Hz  {:.0} s  {} watching",
                s.session,
                if s.urgent { "URGENT " } else { "" },
                s.site,
                s.device,
                s.site,
                s.rate_hz,
                s.seconds,
                s.watchers
            );
        }
        return Ok(ExitCode::SUCCESS);
    };
    let session = match SessionId::from_hex(wanted) {
        Some(id) => id,
        None => {
            let matching: Vec<_> = sessions
                .iter()
                .filter(|s| s.session.hex().starts_with(&wanted.to_ascii_lowercase()))
                .collect();
            match matching.as_slice() {
                [one] => one.session,
                [] => bail!("no live session {wanted} is routed to this reader; run without --session to list them"),
                _ => bail!("{wanted} names {} sessions; give more of the id", matching.len()),
            }
        }
    };
    let mut view = View::new(a.seconds.map(Duration::from_secs_f64));
    watch_ecg(&client, session, bar, |e| view.event(e)).await?;
    view.done();
    Ok(ExitCode::SUCCESS)
}

/// The terminal view: lead II and the heart rate, redrawn in place on a terminal, a status
/// line per second otherwise.
struct View {
    terminal: bool,
    until: Option<Instant>,
    started: Instant,
    last_draw: Instant,
    rate: Option<SampleRate>,
    detector: Option<RateDetector>,
    strip: Vec<i16>,
    frames: u64,
    missed: u64,
    seconds: f64,
    drawn_lines: usize,
}

const STRIP_COLUMNS: usize = 72;
const STRIP_ROWS: usize = 9;

impl View {
    fn new(limit: Option<Duration>) -> View {
        let now = Instant::now();
        View {
            terminal: std::io::stdout().is_terminal(),
            until: limit.map(|d| now + d),
            started: now,
            last_draw: now,
            rate: None,
            detector: None,
            strip: Vec::new(),
            frames: 0,
            missed: 0,
            seconds: 0.0,
            drawn_lines: 0,
        }
    }

    fn event(&mut self, e: WatchEvent) -> bool {
        match e {
            WatchEvent::Header(h) => {
                let rate = SampleRate::from_hz(h.summary.rate_hz);
                self.rate = rate;
                let cal = h
                    .calibration
                    .get(Lead::II.index())
                    .copied()
                    .unwrap_or_default();
                self.detector = rate.map(|r| RateDetector::new(r, cal));
                println!(
                    "watching session {} from {} ({}){}",
                    h.summary.session,
                    h.summary.device,
                    h.summary.site,
                    if h.summary.urgent { ", URGENT" } else { "" }
                );
            }
            WatchEvent::Block {
                first_sample,
                block,
            } => {
                self.frames += 1;
                let ii = block.lead(Lead::II);
                if let Some(d) = &mut self.detector {
                    d.push(ii);
                }
                self.strip.extend_from_slice(ii);
                let hz = self.rate.map_or(500, |r| r.hz()) as usize;
                let keep = hz * 4;
                if self.strip.len() > keep {
                    self.strip.drain(..self.strip.len() - keep);
                }
                self.seconds = (first_sample + block.per_lead() as u64) as f64 / hz as f64;
            }
            WatchEvent::Missed(n) => self.missed += n,
            WatchEvent::Ended { complete } => {
                self.draw();
                println!(
                    "session ended{}",
                    if complete {
                        ""
                    } else {
                        " (recording incomplete)"
                    }
                );
                return false;
            }
        }
        if self.last_draw.elapsed() >= Duration::from_millis(if self.terminal { 250 } else { 1000 })
        {
            self.draw();
        }
        self.until.is_none_or(|u| Instant::now() < u)
    }

    fn status(&self) -> String {
        let hr = self
            .detector
            .as_ref()
            .and_then(RateDetector::bpm)
            .map_or("--".to_string(), |b| format!("{b:.0}"));
        format!(
            "t={:.1} s  HR {hr} bpm  frames {}  missed {}  watching {:.0} s",
            self.seconds,
            self.frames,
            self.missed,
            self.started.elapsed().as_secs_f64()
        )
    }

    fn draw(&mut self) {
        self.last_draw = Instant::now();
        if let Err(e) = self.render() {
            tracing::debug!("cannot draw on the terminal: {e}");
        }
    }

    fn render(&mut self) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        if !self.terminal {
            return writeln!(out, "{}", self.status());
        }
        let mut lines = Vec::with_capacity(STRIP_ROWS + 2);
        lines.push("lead II".to_string());
        lines.extend(strip_rows(&self.strip, STRIP_COLUMNS, STRIP_ROWS));
        lines.push(self.status());
        if self.drawn_lines > 0 {
            write!(out, "\x1b[{}A", self.drawn_lines)?;
        }
        for l in &lines {
            writeln!(out, "\x1b[2K{l}")?;
        }
        self.drawn_lines = lines.len();
        out.flush()
    }

    fn done(&mut self) {
        if self.frames > 0 && !self.terminal {
            self.draw();
        }
    }
}

/// `samples` as `rows` lines of `columns` characters: each column the range of its samples.
fn strip_rows(samples: &[i16], columns: usize, rows: usize) -> Vec<String> {
    if samples.is_empty() {
        return vec![String::new(); rows];
    }
    let (lo, hi) = samples
        .iter()
        .fold((i16::MAX, i16::MIN), |(l, h), &s| (l.min(s), h.max(s)));
    let span = (i32::from(hi) - i32::from(lo)).max(1) as f64;
    let row_of = |s: i16| {
        let f = (f64::from(s) - f64::from(lo)) / span;
        (rows - 1) - ((f * (rows - 1) as f64).round() as usize).min(rows - 1)
    };
    let mut grid = vec![vec![' '; columns]; rows];
    let per = samples.len().div_ceil(columns).max(1);
    for (c, chunk) in samples.chunks(per).enumerate().take(columns) {
        let (a, b) = chunk
            .iter()
            .fold((i16::MAX, i16::MIN), |(l, h), &s| (l.min(s), h.max(s)));
        let (top, bottom) = (row_of(b), row_of(a));
        for row in grid.iter_mut().take(bottom + 1).skip(top) {
            row[c] = '█';
        }
    }
    grid.into_iter().map(|r| r.into_iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::strip_rows;

    #[test]
    fn a_strip_draws_a_spike_at_the_top() {
        let mut s = vec![0i16; 100];
        s[50] = 1000;
        let rows = strip_rows(&s, 10, 5);
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[0].chars().filter(|&c| c == '█').count(), 1);
        assert_eq!(rows[4].chars().filter(|&c| c == '█').count(), 10);
    }
}
