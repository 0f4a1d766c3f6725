//! Command-line interface: argument definitions and the thin glue to the crates.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use yilian_client::{ClientConfig, ReadOptions, SendOptions};
use yilian_relay::{ConfigFile, Relay};
use yilian_route::Topology;
use yilian_transport::{PeerIdentity, TlsFiles, TlsPem, Tuning};

use crate::defaults;
use crate::progress::Bar;

/// yilian (医联): relay for remote imaging and remote ECG in county medical alliances.
///
/// Township devices upload DICOM studies to a relay over QUIC; the relay stores them durably,
/// routes them by the alliance topology and delivers them to county and provincial readers.
///
/// Try it on one machine (development certificates from certs-dev/, never for patient data):
///
///   yilian serve
///   yilian send --relay 127.0.0.1:4433 --cert certs-dev/township-a-device.pem \
///       --key certs-dev/township-a-device.key some/study/folder
///   yilian read --relay 127.0.0.1:4433 --cert certs-dev/county-radiology.pem \
///       --key certs-dev/county-radiology.key --out received --once
#[derive(Parser, Debug)]
#[command(
    name = "yilian",
    version,
    verbatim_doc_comment,
    args_override_self = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// Whether this runs the relay.
    pub fn is_serve(&self) -> bool {
        matches!(self.command, Command::Serve(_))
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the relay (QUIC over UDP; DICOM DIMSE over TCP with --dimse-listen).
    ///
    /// With no options it runs on embedded defaults: listens on 127.0.0.1:4433, keeps data in
    /// ./yilian-data, uses the example topology (fixtures/topology.toml) and the development
    /// certificates. A config file (TOML) sets everything else; see crates/relay/src/config.rs
    /// or README.md for its keys. Logs go to stderr; set RUST_LOG=debug for more.
    ///
    /// The development certificates' private keys are public: on an address other than
    /// loopback the relay refuses them unless the config file says `allow_dev_certs = true`.
    /// Give it the alliance's own certificates with [tls] in the config file.
    ///
    /// To revoke a certificate, add a [[revoked]] entry to the topology file (see
    /// fixtures/topology.toml) or a CRL file to [tls] crl, then send SIGHUP (or wait: the files
    /// are checked every 2 s). Live connections of revoked certificates are closed at once; a
    /// file with a mistake changes nothing and the log says what is wrong.
    Serve(ServeArgs),
    /// Upload DICOM files or folders (recursively) to a relay.
    ///
    /// Each file is checked first (not DICOM, truncated: reported, not sent). Uploads resume
    /// where the relay stands if they were interrupted, so re-running the same command after a
    /// failure or a lost link sends only what is missing. Exit status 0 only when every
    /// instance was acknowledged (hash-verified and stored durably by the relay).
    Send(SendArgs),
    /// Receive everything routed to this reader into OUT/<StudyInstanceUID>/<SOPInstanceUID>.dcm.
    ///
    /// Instances are verified against the relay's hash and fsync'ed before they are
    /// acknowledged; files are created readable by this account only (0600, folders 0700).
    /// Without --once it keeps running and reconnects when the link drops; an instance it
    /// cannot store (disk full, a file in the way) is logged once and the relay tries again.
    /// With --once, exit status 0 only when every instance waiting for this reader was stored;
    /// otherwise 1, naming the instances that were not and why.
    ///
    /// One reader certificate reads in one place at a time. While a `yilian read` with this
    /// certificate is connected (another workstation of the department, or this one started
    /// twice), a second one is refused: it says where the first is connected from and since
    /// when, and exits with status 2 without retrying; the first keeps receiving, so a study is
    /// never split between two folders. A reader that no longer answers (killed, switched off,
    /// its link dead) does not lock its certificate out: the relay checks it for a few seconds
    /// and lets the new one take over. Workstations that should each receive everything need
    /// reader identities of their own in the topology.
    Read(ReadArgs),
    /// Run a township gateway: a DICOM receiver (C-STORE SCP) for the consoles on the township
    /// LAN that keeps every image durably and forwards it over QUIC to the county relay.
    ///
    /// On each DR, CT or ultrasound console, add a DICOM destination (storage SCP) with this
    /// machine's address, the port of --dimse-listen (11112) and the AE title of --ae-title
    /// (YILIAN_GW); the console's own AE title is its calling AE title (limit who may send with
    /// --calling-ae). The console gets "success" for an image only once the gateway holds it
    /// durably (hash-verified, fsync'ed, committed in --data), the same promise the relay makes.
    ///
    /// Everything is forwarded to the county relay as this gateway's certificate: a device
    /// certificate of the township (e.g. township-a-device), so the images come from its site
    /// and the county relay's routing rules send them on (radiology, ultrasound; stroke CT
    /// first). When the WAN link is down the gateway keeps accepting images; they wait in
    /// --data and go, resuming partly sent ones, as soon as the relay can be reached again,
    /// also after a restart of the gateway. A study counts as complete once no image of it
    /// arrived for --quiet-period; the county's readers are then told so.
    ///
    /// An image the county relay refuses for good (another image with the same SOP Instance
    /// UID, broken DICOM, a study of another site) is logged as an error with its UID and
    /// reason, audited, kept in --data and not sent again. SIGTERM or Ctrl-C: no new
    /// associations, the images in progress finish, then the gateway stops. Logs go to stderr
    /// (RUST_LOG=debug for more) and never name patients.
    ///
    /// Example (development certificates; never for patient data):
    ///
    ///   yilian gateway --relay county-relay.example:4433 \
    ///       --cert certs-dev/township-a-device.pem --key certs-dev/township-a-device.key \
    ///       --dimse-listen 0.0.0.0:11112 --calling-ae TWA_DR1 --calling-ae TWA_US1
    #[command(verbatim_doc_comment)]
    Gateway(GatewayArgs),
    /// Live 12-lead ECG: stream from a cart (`ecg stream`), watch as a reader (`ecg watch`).
    #[command(subcommand)]
    Ecg(crate::ecg_cli::EcgCommand),
    /// Bearer tokens for DICOMweb viewers: issue one to a reader, revoke it.
    #[command(subcommand)]
    Token(crate::token_cli::TokenCommand),
    /// Certificates.
    #[command(subcommand)]
    Certs(CertsCommand),
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Configuration file (TOML). Relative paths in it are relative to the file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (spool, index, audit log); overrides the config file.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// UDP address to listen on, e.g. 0.0.0.0:4433; overrides the config file. An address
    /// other than loopback needs the alliance's own certificates ([tls] in the config file).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Also accept DICOM (DIMSE: C-ECHO, C-STORE from consoles; C-FIND, C-MOVE, C-GET from
    /// workstations) on this TCP address, e.g. 0.0.0.0:11112; overrides [dimse] listen. Callers
    /// are known by their calling AE title, declared as [[ae]] in the topology (an unknown AE
    /// is rejected); the relay's own AE title is [dimse] ae_title (default YILIAN).
    #[arg(long, value_name = "ADDR")]
    dimse_listen: Option<SocketAddr>,
    /// Serve HTTPS (DICOMweb for viewers such as OHIF, at /dicomweb) on this TCP address, e.g.
    /// 0.0.0.0:8443; overrides [http] listen (default 127.0.0.1:8443). Viewers authenticate
    /// with an alliance client certificate or a token from `yilian token issue`.
    #[arg(long, value_name = "ADDR")]
    http_listen: Option<SocketAddr>,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct PeerArgs {
    /// The relay, HOST:PORT (e.g. 127.0.0.1:4433 or county-relay.example:4433).
    #[arg(long, value_name = "HOST:PORT")]
    relay: String,
    /// This station's certificate (PEM), issued by the alliance CA.
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    /// This station's private key (PEM).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The alliance CA certificate (PEM). Default: the embedded development CA.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Keep retrying an unreachable relay or a dropped link until nothing was acknowledged for
    /// this long (e.g. 30s, 10m, 2h); then report what is left and exit 1. Running the same
    /// command again resumes where it stopped. A relay never reached in this run is tried for
    /// 30 s at most (the address is more likely wrong than the link down): then the command
    /// names the address, UDP port and certificate name it tried, and exits 2.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    give_up_after: Duration,
    /// Congestion controller: bdp (default; yilian's own: window from measured bandwidth × RTT, ignores random loss, does not flood the link), bbr (quinn's), cubic or newreno.
    #[arg(long, value_name = "NAME")]
    congestion: Option<String>,
}

#[derive(Args, Debug)]
struct SendArgs {
    #[command(flatten)]
    peer: PeerArgs,
    /// Mark the studies urgent (e.g. stroke CT); the relay's rules may also raise priority.
    #[arg(long)]
    urgent: bool,
    /// Instances offered at once. They cross the link one after another (smallest first); the
    /// ones waiting keep a long, fast link busy while earlier ones are acknowledged (16 covers
    /// 100 Mbit/s at 300 ms RTT with 512×512 CT slices).
    #[arg(long, default_value_t = 16, value_name = "N")]
    concurrency: usize,
    /// Also write the per-file report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    report_json: Option<PathBuf>,
    /// DICOM files or folders.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

#[derive(Args, Debug)]
struct ReadArgs {
    #[command(flatten)]
    peer: PeerArgs,
    /// Where received instances go.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Exit once everything waiting for this reader has been delivered (or could not be, after
    /// a few attempts: then exit 1 and name those instances).
    #[arg(long)]
    once: bool,
}

#[derive(Args, Debug)]
struct GatewayArgs {
    /// The county relay, HOST:PORT (e.g. county-relay.example:4433).
    #[arg(long, value_name = "HOST:PORT")]
    relay: String,
    /// This gateway's certificate (PEM): a device certificate of the township, issued by the
    /// alliance CA. Its site is where every image comes from.
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    /// This gateway's private key (PEM).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The alliance CA certificate (PEM). Default: the embedded development CA.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// TCP address of the DICOM receiver. The default listens on this machine only (safe
    /// for trying it out: DICOM has no passwords, and any AE may call unless --calling-ae
    /// says otherwise); give the township LAN address or 0.0.0.0:11112 for the consoles.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:11112")]
    dimse_listen: SocketAddr,
    /// The gateway's AE title: what the consoles put as called (destination) AE title.
    #[arg(long, value_name = "AE", default_value = yilian_gateway::DEFAULT_AE_TITLE)]
    ae_title: String,
    /// A console's AE title allowed to send (repeat for each console). When given, any other
    /// calling AE title is rejected ("calling AE title not recognized") and audited; without
    /// it, any AE title may send.
    #[arg(long, value_name = "AE")]
    calling_ae: Vec<String>,
    /// Data directory: the spool of received images, its index and audit log.
    #[arg(long, value_name = "DIR", default_value = "yilian-gateway-data")]
    data: PathBuf,
    /// A study is complete once no image of it arrived for this long (C-STORE has no "study
    /// done"); then the county's readers are told. At least 1s.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    quiet_period: Duration,
    /// How long the gateway keeps an image after the county relay acknowledged it (the
    /// township's local copy); then it is removed, so the disk does not fill up. Images the
    /// relay refused for good are never removed (the gateway holds the only copy).
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = humantime::parse_duration)]
    keep: Duration,
    /// Congestion controller on the WAN link: bdp (default), bbr, cubic or newreno.
    #[arg(long, value_name = "NAME")]
    congestion: Option<String>,
}

#[derive(Subcommand, Debug)]
enum CertsCommand {
    /// Generate a DEVELOPMENT CA and a certificate for every identity of a topology
    /// (default: the example topology): ca.pem, NAME.pem, NAME.key. Never for patient data.
    Dev {
        /// Output folder (certs-dev/ in this repository).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Topology whose identities get certificates. Default: the example topology.
        #[arg(long, value_name = "FILE")]
        topology: Option<PathBuf>,
    },
}

pub(crate) fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

pub async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve(a) => serve(a).await,
        Command::Send(a) => send(a).await,
        Command::Read(a) => read(a).await,
        Command::Gateway(a) => gateway(a).await,
        Command::Ecg(c) => crate::ecg_cli::run(c).await,
        Command::Token(c) => crate::token_cli::run(c),
        Command::Certs(CertsCommand::Dev { out, topology }) => certs_dev(&out, topology.as_deref()),
    }
}

async fn serve(a: ServeArgs) -> Result<ExitCode> {
    init_logging("info");
    let (file, base) = match &a.config {
        Some(p) => (
            ConfigFile::load(p)?,
            p.parent().map(Path::to_path_buf).unwrap_or_default(),
        ),
        None => (ConfigFile::default(), PathBuf::from(".")),
    };
    let mut config = file.resolve(&base, defaults::dev_relay_tls, Topology::example)?;
    if let Some(d) = a.data {
        config.data_dir = d;
    }
    if let Some(l) = a.listen {
        config.listen = l;
    }
    if let Some(l) = a.dimse_listen {
        config.dimse.listen = Some(l);
    }
    if let Some(l) = a.http_listen {
        config.http.listen = Some(l);
        config.http.default_listen = false;
    }
    let relay = Relay::bind(config.clone()).with_context(|| {
        format!(
            "starting the relay on {} with data in {}",
            config.listen,
            config.data_dir.display()
        )
    })?;
    let addr = relay.local_addr()?;
    let relay = Arc::new(relay);
    // Before "ready": from then on SIGHUP reloads instead of ending the process.
    reload_on_sighup(relay.clone());
    tracing::info!(
        listen = %addr,
        data = %config.data_dir.display(),
        alliance = config.topology.alliance_name(),
        sites = config.topology.sites().count(),
        identities = config.topology.identities().count(),
        congestion = ?config.tuning.congestion,
        delivery_buffer_budget = config.delivery_buffer_budget,
        malloc_arenas = ?crate::allocator::arena_limit(),
        "yilian relay ready"
    );
    if let Some(http) = relay.http_addr() {
        tracing::info!("DICOMweb (HTTPS) at https://{http}/dicomweb");
    }
    let r = relay.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        r.close();
    });
    relay.run().await;
    Ok(ExitCode::SUCCESS)
}

/// SIGHUP: read the topology and CRL files again (revocations, routing rules).
fn reload_on_sighup(relay: Arc<Relay>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => {
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        yilian_relay::log_reload("SIGHUP", &relay.reload().await);
                    }
                });
            }
            Err(e) => tracing::warn!(
                "cannot listen for SIGHUP ({e}): the topology and CRL files are still reloaded when they change"
            ),
        }
    }
    #[cfg(not(unix))]
    drop(relay);
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn gateway(a: GatewayArgs) -> Result<ExitCode> {
    init_logging("info");
    let peer = PeerArgs {
        relay: a.relay.clone(),
        cert: a.cert.clone(),
        key: a.key.clone(),
        ca: a.ca.clone(),
        // The forwarder retries for as long as it runs; this bounds one attempt only.
        give_up_after: yilian_gateway::forward::GIVE_UP_AFTER,
        congestion: a.congestion.clone(),
    };
    let mut config = yilian_gateway::GatewayConfig::new(client_config(&peer)?, a.data.clone());
    config.dimse_listen = a.dimse_listen;
    config.ae_title = a.ae_title.clone();
    config.calling_aes = (!a.calling_ae.is_empty()).then(|| a.calling_ae.clone());
    config.quiet_period = a.quiet_period;
    config.keep = a.keep;
    let gateway = yilian_gateway::Gateway::bind(config).with_context(|| {
        format!(
            "starting the gateway on {} with data in {}",
            a.dimse_listen,
            a.data.display()
        )
    })?;
    gateway.run(shutdown_signal()).await;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn client_config(p: &PeerArgs) -> Result<ClientConfig> {
    let tls = match &p.ca {
        Some(ca) => TlsFiles {
            cert: p.cert.clone(),
            key: p.key.clone(),
            ca: ca.clone(),
        }
        .load()?,
        None => {
            let mut t = TlsFiles {
                cert: p.cert.clone(),
                key: p.key.clone(),
                ca: p.cert.clone(),
            }
            .load()?;
            t.ca = defaults::DEV_CA.to_string();
            t
        }
    };
    let mut tuning = Tuning::default();
    if let Some(c) = &p.congestion {
        match c.parse() {
            Ok(c) => tuning.congestion = c,
            Err(_) => bail!("unknown congestion controller {c:?}: use bbr, bdp, cubic or newreno"),
        }
    }
    Ok(ClientConfig {
        relay: p.relay.clone(),
        tls: TlsPem { ..tls },
        tuning,
        give_up_after: p.give_up_after,
        contact: Default::default(),
    })
}

async fn send(a: SendArgs) -> Result<ExitCode> {
    init_logging("warn");
    let opts = SendOptions {
        client: client_config(&a.peer)?,
        priority: u8::from(a.urgent),
        concurrency: a.concurrency,
        manifests: true,
    };
    let bar = Arc::new(Bar::new());
    let report = yilian_client::send(&a.paths, &opts, bar.clone()).await;
    bar.finish();
    let report = report?;
    if let Some(p) = &a.report_json {
        std::fs::write(p, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    use yilian_client::FileOutcome;
    let count = |f: fn(&FileOutcome) -> bool| report.files.iter().filter(|r| f(&r.outcome)).count();
    let ok = count(|o| matches!(o, FileOutcome::Stored { .. } | FileOutcome::AlreadyStored));
    let already = count(|o| matches!(o, FileOutcome::AlreadyStored));
    let skipped = count(|o| matches!(o, FileOutcome::Skipped { .. }));
    println!(
        "{ok} of {} files acknowledged by the relay ({} already there){}; {} sent",
        report.files.len() - skipped,
        already,
        if skipped > 0 {
            format!("; {skipped} DICOMDIR skipped")
        } else {
            String::new()
        },
        indicatif::HumanBytes(report.bytes_sent)
    );
    if report.bytes_lost_in_transit > 0 || report.connections > 1 {
        println!(
            "link: {} lost in transit and sent again; {} connection(s)",
            indicatif::HumanBytes(report.bytes_lost_in_transit),
            report.connections
        );
    }
    for s in &report.studies {
        println!(
            "study {}: {} instances, {}",
            s.study_uid, s.instances, s.status
        );
    }
    let failed: Vec<_> = report.files.iter().filter(|f| !f.outcome.is_ok()).collect();
    let no_manifest: Vec<_> = report
        .studies
        .iter()
        .filter(|s| !s.manifest_delivered)
        .collect();
    if !no_manifest.is_empty() {
        println!(
            "{} studies' manifests did NOT reach the relay: their readers will not be told they are complete. Run the same command again (nothing stored is sent twice).",
            no_manifest.len()
        );
    }
    if !failed.is_empty() {
        println!("{} files were NOT stored:", failed.len());
        for f in failed {
            if let yilian_client::FileOutcome::Failed { reason } = &f.outcome {
                println!("  {}: {reason}", f.path.display());
            }
        }
        println!(
            "Fix or remove them, then run the same command again: stored files are not sent twice."
        );
        return Ok(ExitCode::from(1));
    }
    if !no_manifest.is_empty() {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

async fn read(a: ReadArgs) -> Result<ExitCode> {
    init_logging("info");
    let opts = ReadOptions {
        client: client_config(&a.peer)?,
        out: a.out.clone(),
        once: a.once,
    };
    let bar = Arc::new(Bar::new());
    let report = yilian_client::read(&opts, bar.clone()).await;
    bar.finish();
    let report = report?;
    println!(
        "received {} instances ({}) into {}; {} studies complete",
        report.instances,
        indicatif::HumanBytes(report.bytes),
        a.out.display(),
        report.studies_complete.len()
    );
    if report.all_stored() {
        return Ok(ExitCode::SUCCESS);
    }
    let n = report.failures.len() as u64 + report.failures_unlisted;
    println!(
        "{n} {} could NOT be stored:",
        if n == 1 { "instance" } else { "instances" }
    );
    for f in &report.failures {
        println!(
            "  study {}, instance {}: {}",
            f.study_uid, f.sop_uid, f.reason
        );
    }
    if report.failures_unlisted > 0 {
        println!(
            "  … and {} more the relay could not deliver (its log names them)",
            report.failures_unlisted
        );
    }
    println!(
        "They stay waiting at the relay: fix the cause, then run the same command again to receive them."
    );
    Ok(ExitCode::from(1))
}

fn certs_dev(out: &Path, topology: Option<&Path>) -> Result<ExitCode> {
    let topo = match topology {
        Some(p) => Topology::load(p).with_context(|| format!("loading {}", p.display()))?,
        None => Topology::example(),
    };
    let ids: Vec<PeerIdentity> = topo
        .identities()
        .map(|i| PeerIdentity {
            name: i.name.clone(),
            site: i.site.clone(),
            role: i.role,
            department: i.department.clone(),
        })
        .collect();
    yilian_transport::write_dev_certs(out, topo.alliance_name(), &ids)?;
    println!(
        "wrote a DEVELOPMENT CA and {} certificates to {} (never use them for patient data)",
        ids.len(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
