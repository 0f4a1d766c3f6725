//! DICOMweb: yilian's relay against Orthanc with its DICOMweb plugin, in one run on one corpus
//! (issue 17): WADO-RS retrieve, QIDO-RS study search over a large catalog, STOW-RS ingest.
//!
//! ```text
//! cargo bench --bench dicomweb                 # 100,000-instance catalog, 300 CT, 1 GiB; 3 runs
//! cargo bench --bench dicomweb -- --instances 100000 --queries 1200 --ct-slices 300 \
//!     --large-mib 1024 --stow-requests 1,4 --fill-requests 8 --fill-batch 100 --runs 3
//! cargo bench --bench dicomweb -- --quick      # 3,000 instances, 60 CT, 64 MiB, 1 run
//! cargo bench --bench dicomweb -- --runs 1 --hold 900   # then profile the servers by hand
//! YILIAN_BENCH_BIN=/tmp/yilian.old cargo bench --bench dicomweb   # another build (A/B)
//! ```
//! Needs `/usr/sbin/Orthanc` and its DICOMweb plugin: `apt-get install orthanc orthanc-dicomweb`
//! (Debian 12: Orthanc 1.10.1, plugin 1.7; the plugin's `.so` is found with `dpkg -L
//! orthanc-dicomweb` and loaded through the "Plugins" key of a JSON config the bench writes).
//! Orthanc runs with `TCP_NODELAY=1` in its environment.
//!
//! **The two servers.** yilian: the real `yilian serve` (build profile of the bench) with
//! `[http]` on loopback, HTTPS with the development certificates (`certs-dev/`, the bench trusts
//! their CA); searches and retrieves as reader `county-radiology`, stores as
//! `township-a-device`, both with bearer tokens from `yilian token issue`; every instance here
//! is routed to that reader by the example topology. Orthanc: 1.10 with the DICOMweb plugin,
//! **plain HTTP on loopback**, no authentication, defaults otherwise. Not behind TLS: Debian
//! 12's Orthanc 1.10.1 with `"SslEnabled": true` completes the handshake, then its civetweb
//! worker segfaults on the first request (OpenSSL 3.0.9), and a TLS proxy in front would
//! measure the proxy too. So only yilian pays for TLS here (TLS 1.3, rustls; both ends on
//! the same two cores): a handicap for yilian where the CPU is the limit (retrieval from the
//! page cache), negligible where the disk is (STOW's fsyncs). The client is this process:
//! hyper's HTTP/1.1 connection API (over tokio-rustls for yilian), two tokio workers, except
//! for WADO-RS answers, read by a plain HTTP/1.1 reader with 1 MiB socket reads (`raw_get`):
//! hyper hands a body that ends with the connection (Orthanc's) over 8 KiB at a time from task
//! to task, and that, not Orthanc, had limited Orthanc's CT retrieve to 170–720 MB/s (curl
//! reads the same answer at 1.3–1.5 GB/s; found 2026-12-07).
//!
//! **Once per invocation**, one "catalog" server of each kind:
//! * **fill**: `--instances` small instances (CT, MR, DX, CR; 8×8 pixels, ≈ 1.1 KB each) in
//!   studies of realistic shapes (DX/CR 1–3 instances, CT 1–2 series of 10–40, MR 2–4 series of
//!   8–16), patients with Chinese names (`Zhang^Wei=张^伟`), study dates over three years,
//!   posted by STOW-RS in `--fill-requests` concurrent requests of `--fill-batch` instances.
//!   yilian is durable as always (each instance fsync'ed before its 200); Orthanc's fill runs
//!   with `"SyncStorageArea": false` (only its search is measured on this server). Fill time
//!   printed; not cached between invocations (≈ 2 min each for 100,000 here). Instances
//!   the relay refuses as "out of resources" (status 0xA700: its per-device cap on uploads in
//!   progress) are sent again after 20 ms, as the refusal's text asks; how many is printed.
//! * the CT series and the large instance (`--large-mib`, multi-frame) are stored by STOW-RS,
//!   then retrieved once from each server and checked **byte for byte** (BLAKE3 of every part
//!   against the generated files).
//!
//! **Per run** (`--runs`; which server goes first alternates):
//! * **QIDO-RS**: `--queries` study searches per server, one at a time on one keep-alive
//!   connection (a viewer's study list), after 60 untimed ones: PatientID exact, PatientName
//!   wildcard (`ZHANG^W*`), StudyDate 7-day range, ModalitiesInStudy=CT with a 30-day range, the
//!   unfiltered first page, AccessionNumber exact; each with `includefield=00081030` (the study
//!   description OHIF's list shows) and `limit=100` where a search can match many. Latency =
//!   request sent → whole answer received. The same searches go to both servers; result
//!   counts are compared. p50 / p99 pooled over the runs, and per kind of search.
//! * **WADO-RS**: the CT series (`/studies/S/series/SE`, five times: the median) and the
//!   large instance (`…/instances/I`, once) as `multipart/related; type="application/dicom";
//!   transfer-syntax=*`, a new connection each: MB/s of part bytes; the parts and their bytes
//!   are counted against the corpus (every byte arrived, no part more or less). Both servers
//!   read from the page cache (the files were just written; 24 GiB of RAM).
//! * **STOW-RS**: the CT series into a *fresh* server of each kind — yilian answers 200 only
//!   once every instance is hashed and fsync'ed (sealed; its catalog commit follows); Orthanc
//!   with its default fsync per file — as 1 request and as N concurrent requests
//!   (`--stow-requests 1,4`: the series split in N, each its own connection, as a gateway
//!   pushing a study would): files/s, from the first request sent to the last answer, parts
//!   sent again (0xA700) included. These fresh servers' folders are removed only at the end
//!   (a mass delete slows the next server's file creation on ext4 without a journal).
//! * **A bare durable HTTPS receiver** gets the same STOW-RS (`common/bare_stow.rs`: this
//!   binary re-executed with `--bare-stow-server DIR PORT`): rustls, hyper, multer, each part
//!   written into a new file and fsync'ed, 8 in flight per request, nothing else. It is what
//!   the relay's own stack reaches without the ingest path; yilian's rate and the target are
//!   shown against it.
//! * **The disk's durable ceiling** for STOW (`common/disk.rs`): the CT files written and
//!   fsync'ed by bare threads, as many as the relay's STOW keeps parts in flight for N requests
//!   (`yilian_web::stow::PARTS_IN_FLIGHT` × N), nothing else: yilian's rate and the target
//!   (3 × Orthanc's) are shown against it.
//!
//! Each figure comes with the server's CPU seconds (`/proc/PID/stat`), this process's, and the
//! cores everything else on the machine kept busy meanwhile ("other load", from `/proc/stat`:
//! other developers' builds; a figure taken with it well above 0 was disturbed). Ratios are
//! taken within each run, then their median (the machine's speed drifts between runs more
//! than ratios do). `--hold S` keeps the two catalog servers up S seconds after the runs and
//! prints how to reach them (pid, URL, token), e.g. for `perf record -p PID`. Scratch folders
//! go on a real disk (never a tmpfs) and are removed at the end; servers are killed also on
//! failure.

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{header, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use yilian_testkit::{Generated, Rng, StudySpec, TEST_UID_ROOT};

#[path = "common/bare_stow.rs"]
mod bare_stow;
mod common;
use common::disk::{durable_ceiling, Ceiling};
use common::proc::Proc;
use common::{
    cpu_seconds, free_port, free_udp_port, median, scratch_base, within_run_ratios, Flags,
};

const USAGE: &str = "cargo bench --bench dicomweb -- [--instances N] [--queries N] [--ct-slices N] \
[--large-mib N] [--stow-requests 1,4] [--fill-requests N] [--fill-batch N] [--runs N] [--hold SECONDS] [--quick]";

const ORTHANC: &str = "/usr/sbin/Orthanc";
const INSTALL: &str = "apt-get install orthanc orthanc-dicomweb";
const BOUNDARY: &str = "yilian-bench-5f2c9a17e3";
const WADO_ACCEPT: &str = "multipart/related; type=\"application/dicom\"; transfer-syntax=*";
const DICOM_JSON: &str = "application/dicom+json";

struct Options {
    instances: usize,
    queries: usize,
    ct_slices: usize,
    large_mib: u64,
    stow_requests: Vec<usize>,
    fill_requests: usize,
    fill_batch: usize,
    runs: usize,
    /// Keep the catalog servers up this long after the runs (to profile them by hand).
    hold: Option<Duration>,
}

fn options() -> Result<Options> {
    let mut o = Options {
        instances: 100_000,
        queries: 1200,
        ct_slices: 300,
        large_mib: 1024,
        stow_requests: vec![1, 4],
        fill_requests: 8,
        fill_batch: 100,
        runs: 3,
        hold: None,
    };
    let mut f = Flags::new(USAGE);
    while let Some((flag, inline)) = f.next_flag() {
        match flag.as_str() {
            "--instances" => o.instances = f.value(&flag, inline)?.parse()?,
            "--queries" => o.queries = f.value(&flag, inline)?.parse()?,
            "--ct-slices" => o.ct_slices = f.value(&flag, inline)?.parse()?,
            "--large-mib" => o.large_mib = f.value(&flag, inline)?.parse()?,
            "--stow-requests" => {
                o.stow_requests = f
                    .value(&flag, inline)?
                    .split(',')
                    .map(|n| n.trim().parse())
                    .collect::<Result<_, _>>()?
            }
            "--fill-requests" => o.fill_requests = f.value(&flag, inline)?.parse()?,
            "--fill-batch" => o.fill_batch = f.value(&flag, inline)?.parse()?,
            "--runs" => o.runs = f.value(&flag, inline)?.parse()?,
            "--hold" => {
                o.hold = Some(Duration::from_secs(f.value(&flag, inline)?.parse()?));
            }
            "--quick" => {
                o.instances = 3000;
                o.queries = 300;
                o.ct_slices = 60;
                o.large_mib = 64;
                o.runs = 1;
            }
            "--bench" => {}
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown flag {other}\n{USAGE}"),
        }
    }
    ensure!(
        o.ct_slices > 0 && o.large_mib > 0 && o.runs > 0 && o.queries > 0,
        "sizes and counts must be at least 1\n{USAGE}"
    );
    ensure!(
        o.fill_requests > 0 && o.fill_batch > 0 && o.stow_requests.iter().all(|&n| n > 0),
        "request counts must be at least 1\n{USAGE}"
    );
    Ok(o)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(bare_stow::FLAG) {
        let (Some(dir), Some(port)) = (args.get(2), args.get(3)) else {
            bail!("{} DIR PORT", bare_stow::FLAG);
        };
        return bare_stow::serve(dir.into(), port.parse()?);
    }
    let o = options()?;
    ensure!(
        Path::new(ORTHANC).exists(),
        "{ORTHANC} is missing: {INSTALL}"
    );
    let orthanc = OrthancSetup {
        plugin: dicomweb_plugin()?,
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(bench(o, orthanc))
}

/// The DICOMweb plugin's shared object, from the package's file list.
fn dicomweb_plugin() -> Result<PathBuf> {
    let out = Command::new("dpkg")
        .args(["-L", "orthanc-dicomweb"])
        .output();
    let listed = out
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let found = listed
        .lines()
        .filter(|l| l.contains("libOrthancDicomWeb.so"))
        .map(PathBuf::from)
        .find(|p| p.exists());
    found.with_context(|| {
        format!("Orthanc's DICOMweb plugin is not installed (no libOrthancDicomWeb.so in `dpkg -L orthanc-dicomweb`): {INSTALL}")
    })
}

/// The relay under test: `YILIAN_BENCH_BIN` (another build, for an A/B), else this build's.
fn yilian_bin() -> PathBuf {
    std::env::var_os("YILIAN_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_yilian")))
}

fn one_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| {
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            all.lines().next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_default()
}

fn mem_total_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

async fn bench(o: Options, orthanc: OrthancSetup) -> Result<()> {
    let base = scratch_base()?;
    let tmp = tempfile::Builder::new()
        .prefix("yilian-bench-dicomweb")
        .tempdir_in(&base)?;
    let root = tmp.path().to_path_buf();
    println!(
        "machine: {} cores, {} MiB RAM; load {}; scratch on {} ({})",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        mem_total_mib(),
        loadavg(),
        root.display(),
        common::fs_type(&root).unwrap_or_default()
    );
    println!(
        "Orthanc: {} ({}), DICOMweb plugin {} ({}); plain HTTP on loopback (no TLS), TCP_NODELAY=1",
        one_line(ORTHANC, &["--version"]),
        ORTHANC,
        one_line("dpkg-query", &["-W", "-f=${Version}", "orthanc-dicomweb"]),
        orthanc.plugin.display(),
    );
    println!(
        "yilian: {} serve, HTTPS (dev certificates) on loopback; reader token county-radiology, device token township-a-device",
        yilian_bin().display()
    );

    let t = Instant::now();
    let corpus = make_corpus(&root.join("corpus"), &o)?;
    println!(
        "corpus: CT {} slices 512×512 ({:.1} MB), large instance {:.1} MB ({} frames 512×512×16 bit); made in {:.1} s",
        corpus.ct.len(),
        corpus.ct_bytes() as f64 / 1e6,
        corpus.large.size as f64 / 1e6,
        o.large_mib * 1024 * 1024 / yilian_testkit::LARGE_FRAME_BYTES,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let catalog = Catalog::new(o.instances, 17);
    let items = Arc::new(catalog.instances()?);
    let item_bytes: usize = items.iter().map(|i| i.bytes.len()).sum();
    println!(
        "catalog: {} instances in {} studies, {} series, {} patients ({:.1} MB, {} B per instance on average); made in {:.1} s",
        items.len(),
        catalog.studies.len(),
        catalog.studies.iter().map(|s| s.series.len()).sum::<usize>(),
        catalog.patients.len(),
        item_bytes as f64 / 1e6,
        item_bytes / items.len().max(1),
        t.elapsed().as_secs_f64()
    );

    // The catalog servers: filled, then given the CT and the large instance.
    let y_cat = start_yilian(&root.join("yilian-catalog")).await?;
    let o_cat = start_orthanc(&root.join("orthanc-catalog"), &orthanc, false).await?;
    for s in [&y_cat, &o_cat] {
        let meter = Meter::start(s.proc.pid())?;
        let resent = fill(s, &items, o.fill_requests, o.fill_batch).await?;
        let spent = meter.stop()?;
        println!(
            "fill {} (pid {}): {} instances by STOW-RS ({} concurrent requests of {} instances; {}) in {:.1} s = {:.0} instances/s; {spent}; {resent} sent again (refused as out of resources)",
            s.ep.name,
            s.proc.pid(),
            items.len(),
            o.fill_requests,
            o.fill_batch,
            match s.kind {
                Kind::Yilian => "durable: each instance fsync'ed before the 200",
                Kind::Orthanc => "\"SyncStorageArea\": false",
                Kind::Bare => "bare",
            },
            spent.secs,
            items.len() as f64 / spent.secs,
        );
    }
    for s in [&y_cat, &o_cat] {
        let t = Instant::now();
        let mut c = s.ep.connect(Auth::Device, s).await?;
        for chunk in corpus.ct.chunks(50) {
            let parts = read_parts(chunk)?;
            stow_all(&mut c, s.ep.root, &parts, multipart(&parts)).await?;
        }
        let large = read_parts(std::slice::from_ref(&corpus.large))?;
        stow_all(&mut c, s.ep.root, &large, multipart(&large)).await?;
        drop(large);
        println!(
            "{}: CT series and large instance stored by STOW-RS in {:.1} s",
            s.ep.name,
            t.elapsed().as_secs_f64()
        );
    }
    for s in [&y_cat, &o_cat] {
        for (what, path, files) in [
            ("CT series", corpus.ct_path(s.ep.root), &corpus.ct[..]),
            (
                "large instance",
                corpus.large_path(s.ep.root),
                std::slice::from_ref(&corpus.large),
            ),
        ] {
            let w = wado(s, &path, files, true).await?;
            println!(
                "{}: WADO-RS {what}: {} parts, {} bytes (in {} pieces), byte-identical to the files (BLAKE3 of every part)",
                s.ep.name, w.parts, w.bytes, w.frames
            );
        }
    }

    let mut rows: Vec<Row> = Vec::new();
    let mut lats: Vec<Lat> = Vec::new();
    let mut ceilings: Vec<(usize, usize, Ceiling)> = Vec::new();
    for run in 0..o.runs {
        println!("\n--- run {run} (load {})", loadavg());
        let order: [&Server; 2] = if run % 2 == 0 {
            [&y_cat, &o_cat]
        } else {
            [&o_cat, &y_cat]
        };
        let searches = searches(&catalog, o.queries, run as u64);
        let mut counts: Vec<Vec<usize>> = Vec::new();
        for s in order {
            let (l, n, row) = qido_run(s, &searches, run).await?;
            lats.extend(l);
            counts.push(n);
            println!(
                "run {run}: {:<7} QIDO-RS {} searches: p50 {:.2} ms, p99 {:.2} ms; {}",
                s.ep.name,
                searches.len(),
                row.p50,
                row.p99,
                row.spent
            );
            rows.push(row);
        }
        report_count_mismatches(&searches, &counts);
        for s in order {
            for (metric, path, files) in [
                (Metric::WadoCt, corpus.ct_path(s.ep.root), &corpus.ct[..]),
                (
                    Metric::WadoLarge,
                    corpus.large_path(s.ep.root),
                    std::slice::from_ref(&corpus.large),
                ),
            ] {
                let reps = if metric == Metric::WadoCt { 5 } else { 1 };
                let mut all = Vec::new();
                for _ in 0..reps {
                    all.push(wado(s, &path, files, false).await?);
                }
                all.sort_by(|a, b| a.spent.secs.total_cmp(&b.spent.secs));
                let w = all.swap_remove(all.len() / 2);
                let mbs = w.bytes as f64 / 1e6 / w.spent.secs;
                println!(
                    "run {run}: {:<7} WADO-RS {:<15} {:>7.1} MB/s ({} parts, {} bytes, {:.2} s{}); {}",
                    s.ep.name,
                    metric.short(),
                    mbs,
                    w.parts,
                    w.bytes,
                    w.spent.secs,
                    if reps > 1 { ", median of 5" } else { "" },
                    w.spent
                );
                rows.push(Row {
                    run,
                    kind: s.kind,
                    metric,
                    value: mbs,
                    p50: 0.0,
                    p99: 0.0,
                    spent: w.spent,
                });
            }
        }
        for &n in &o.stow_requests {
            // The disk's durable ceiling for the CT with as many files in flight as the
            // relay's STOW allows to n requests (`common::disk`).
            let writers = n * yilian_web::stow::PARTS_IN_FLIGHT;
            let paths: Vec<PathBuf> = corpus.ct.iter().map(|g| g.path.clone()).collect();
            let c = durable_ceiling(&root.join(format!("ceiling-{n}-{run}")), &paths, writers)?;
            println!(
                "run {run}: disk ceiling for STOW ×{n}: {writers} bare writers (write + fsync, nothing else): {:>6.1} files/s, {:>6.1} MB/s",
                c.files_per_s, c.mb_per_s
            );
            ceilings.push((run, n, c));
            let kinds = if run % 2 == 0 {
                [Kind::Yilian, Kind::Bare, Kind::Orthanc]
            } else {
                [Kind::Orthanc, Kind::Bare, Kind::Yilian]
            };
            for kind in kinds {
                let dir = root.join(format!("stow-{}-{n}-{run}", kind.name()));
                let r = stow_run(kind, &dir, &orthanc, &corpus, n).await?;
                let fps = corpus.ct.len() as f64 / r.spent.secs;
                println!(
                    "run {run}: {:<7} STOW-RS {} CT files in {n} request(s): {:>6.1} files/s, {:>6.1} MB/s ({:.2} s); {}; {} sent again",
                    kind.name(),
                    corpus.ct.len(),
                    fps,
                    corpus.ct_bytes() as f64 / 1e6 / r.spent.secs,
                    r.spent.secs,
                    r.spent,
                    r.resent
                );
                rows.push(Row {
                    run,
                    kind,
                    metric: Metric::Stow(n),
                    value: fps,
                    p50: 0.0,
                    p99: 0.0,
                    spent: r.spent,
                });
            }
        }
    }
    println!("\nload at the end: {}", loadavg());
    summary(&o, &corpus, &rows, &lats, &ceilings);
    if let Some(hold) = o.hold {
        println!(
            "\nholding the catalog servers for {} s (--hold):",
            hold.as_secs()
        );
        for s in [&y_cat, &o_cat] {
            println!(
                "  {} pid {}: {}://127.0.0.1:{}{}  {}",
                s.ep.name,
                s.proc.pid(),
                if s.ep.tls.is_some() { "https" } else { "http" },
                s.ep.port,
                s.ep.root,
                s.reader
                    .as_ref()
                    .map(|a| format!("-H 'Authorization: {a}' --cacert certs-dev/ca.pem"))
                    .unwrap_or_default()
            );
        }
        println!(
            "  CT series {}\n  large instance {}",
            corpus.ct_path(""),
            corpus.large_path("")
        );
        tokio::time::sleep(hold).await;
    }
    drop(y_cat);
    drop(o_cat);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Corpus: the CT series and the large instance (files), the catalog (in memory).

struct Corpus {
    ct: Vec<Generated>,
    large: Generated,
}

impl Corpus {
    fn ct_bytes(&self) -> u64 {
        self.ct.iter().map(|g| g.size).sum()
    }

    fn ct_path(&self, root: &str) -> String {
        let g = &self.ct[0];
        format!(
            "{root}/studies/{}/series/{}",
            g.study_instance_uid, g.series_instance_uid
        )
    }

    fn large_path(&self, root: &str) -> String {
        let g = &self.large;
        format!(
            "{root}/studies/{}/series/{}/instances/{}",
            g.study_instance_uid, g.series_instance_uid, g.sop_instance_uid
        )
    }
}

fn make_corpus(dir: &Path, o: &Options) -> Result<Corpus> {
    std::fs::create_dir_all(dir)?;
    let ct = yilian_testkit::ct_series(
        &dir.join("ct"),
        &StudySpec::new("CT", 1701),
        o.ct_slices,
        512,
        512,
        1701,
    )?;
    let large = yilian_testkit::large_instance(
        &dir.join("large.dcm"),
        &StudySpec::new("CT", 1702),
        o.large_mib * 1024 * 1024,
        1702,
    )?;
    Ok(Corpus { ct, large })
}

const SURNAMES: [(&str, &str); 30] = [
    ("Wang", "王"),
    ("Li", "李"),
    ("Zhang", "张"),
    ("Liu", "刘"),
    ("Chen", "陈"),
    ("Yang", "杨"),
    ("Huang", "黄"),
    ("Zhao", "赵"),
    ("Wu", "吴"),
    ("Zhou", "周"),
    ("Xu", "徐"),
    ("Sun", "孙"),
    ("Ma", "马"),
    ("Zhu", "朱"),
    ("Hu", "胡"),
    ("Guo", "郭"),
    ("He", "何"),
    ("Gao", "高"),
    ("Lin", "林"),
    ("Luo", "罗"),
    ("Zheng", "郑"),
    ("Liang", "梁"),
    ("Xie", "谢"),
    ("Song", "宋"),
    ("Tang", "唐"),
    ("Han", "韩"),
    ("Feng", "冯"),
    ("Deng", "邓"),
    ("Cao", "曹"),
    ("Peng", "彭"),
];

const GIVEN: [(&str, &str); 30] = [
    ("Wei", "伟"),
    ("Fang", "芳"),
    ("Na", "娜"),
    ("Min", "敏"),
    ("Jing", "静"),
    ("Li", "丽"),
    ("Qiang", "强"),
    ("Lei", "磊"),
    ("Jun", "军"),
    ("Yang", "洋"),
    ("Yong", "勇"),
    ("Yan", "艳"),
    ("Jie", "杰"),
    ("Juan", "娟"),
    ("Tao", "涛"),
    ("Ming", "明"),
    ("Chao", "超"),
    ("Xiu", "秀"),
    ("Xia", "霞"),
    ("Ping", "平"),
    ("Gang", "刚"),
    ("Gui", "桂"),
    ("Hua", "华"),
    ("Hong", "红"),
    ("Jian", "建"),
    ("Bo", "波"),
    ("Hui", "辉"),
    ("Lan", "兰"),
    ("Xin", "鑫"),
    ("Dan", "丹"),
];

struct Patient {
    id: String,
    /// Person Name with Alphabetic and Ideographic groups (`Zhang^Wei=张^伟`).
    name: String,
    /// The wildcard a search for this patient types: `ZHANG^W*`.
    wildcard: String,
    birth: String,
    sex: &'static str,
}

struct CatStudy {
    uid: String,
    patient: usize,
    /// Days after 2024-01-01.
    day: u32,
    time: String,
    accession: String,
    modality: &'static str,
    body_part: &'static str,
    description: &'static str,
    /// Instances of each series.
    series: Vec<u32>,
}

/// The searched catalog: patients and studies, deterministic in the seed.
struct Catalog {
    patients: Vec<Patient>,
    studies: Vec<CatStudy>,
}

/// Days of the catalog's date span (2024-01-01 … 2026-12-31).
const DAYS: u32 = 1096;

fn date(day: u32) -> String {
    let d = time::Date::from_calendar_date(2024, time::Month::January, 1).expect("a date")
        + time::Duration::days(i64::from(day));
    format!("{:04}{:02}{:02}", d.year(), d.month() as u8, d.day())
}

impl Catalog {
    fn new(instances: usize, seed: u64) -> Catalog {
        let mut rng = Rng::new(seed, 0xD1C0);
        let mut patients: Vec<Patient> = Vec::new();
        let mut studies = Vec::new();
        let mut total = 0usize;
        while total < instances {
            // Three studies in ten are a known patient's return visit.
            let patient = if !patients.is_empty() && rng.chance(300) {
                rng.below(patients.len() as u64) as usize
            } else {
                let (sur, sur_h) = SURNAMES[rng.below(30) as usize];
                let (g1, g1_h) = GIVEN[rng.below(30) as usize];
                let (given, given_h) = if rng.chance(600) {
                    let (g2, g2_h) = GIVEN[rng.below(30) as usize];
                    (
                        format!("{g1}{}", g2.to_lowercase()),
                        format!("{g1_h}{g2_h}"),
                    )
                } else {
                    (g1.to_string(), g1_h.to_string())
                };
                patients.push(Patient {
                    id: format!("P{:08}", patients.len() + 1),
                    name: format!("{sur}^{given}={sur_h}^{given_h}"),
                    wildcard: format!("{}^{}*", sur.to_uppercase(), &g1[..1]),
                    birth: format!(
                        "{:04}{:02}{:02}",
                        1940 + rng.below(80),
                        1 + rng.below(12),
                        1 + rng.below(28)
                    ),
                    sex: if rng.chance(500) { "F" } else { "M" },
                });
                patients.len() - 1
            };
            let r = rng.below(100);
            let (modality, body_part, description, series): (_, _, _, Vec<u32>) = if r < 45 {
                let n = 1 + rng.below(2) as u32;
                ("DX", "CHEST", "DR chest PA", vec![n])
            } else if r < 60 {
                (
                    "CR",
                    "EXTREMITY",
                    "CR extremity",
                    vec![1 + rng.below(3) as u32],
                )
            } else if r < 90 {
                let (part, desc) = [
                    ("CHEST", "CT chest plain"),
                    ("HEAD", "CT head plain"),
                    ("ABDOMEN", "CT abdomen enhanced"),
                ][rng.below(3) as usize];
                let n = 1 + rng.below(2);
                let series = (0..n).map(|_| 10 + rng.below(31) as u32).collect();
                ("CT", part, desc, series)
            } else {
                let n = 2 + rng.below(3);
                let series = (0..n).map(|_| 8 + rng.below(9) as u32).collect();
                ("MR", "HEAD", "MR brain", series)
            };
            total += series.iter().sum::<u32>() as usize;
            let i = studies.len();
            studies.push(CatStudy {
                uid: format!("{TEST_UID_ROOT}.17.{i}"),
                patient,
                day: rng.below(u64::from(DAYS)) as u32,
                time: format!(
                    "{:02}{:02}{:02}",
                    7 + rng.below(14),
                    rng.below(60),
                    rng.below(60)
                ),
                accession: format!("ACC{:09}", i + 1),
                modality,
                body_part,
                description,
                series,
            });
        }
        Catalog { patients, studies }
    }

    /// Every instance, as DICOM Part 10 bytes, study by study.
    fn instances(&self) -> Result<Vec<Part>> {
        let mut out = Vec::new();
        for (i, s) in self.studies.iter().enumerate() {
            for (k, &n) in s.series.iter().enumerate() {
                for number in 1..=n {
                    out.push(Part {
                        sop: format!("{}.{}.{number}", s.uid, k + 1),
                        bytes: Bytes::from(self.instance(i, k, number)?),
                    });
                }
            }
        }
        Ok(out)
    }

    fn instance(&self, study: usize, series: usize, number: u32) -> Result<Vec<u8>> {
        use dicom_core::value::{PrimitiveValue, C};
        use dicom_core::{DataElement, VR};
        use dicom_dictionary_std::{tags, uids};
        use dicom_object::meta::FileMetaTableBuilder;
        use dicom_object::InMemDicomObject;
        let s = &self.studies[study];
        let p = &self.patients[s.patient];
        let series_uid = format!("{}.{}", s.uid, series + 1);
        let sop_uid = format!("{series_uid}.{number}");
        let sop_class = match s.modality {
            "CT" => uids::CT_IMAGE_STORAGE,
            "MR" => uids::MR_IMAGE_STORAGE,
            "DX" => uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
            _ => uids::COMPUTED_RADIOGRAPHY_IMAGE_STORAGE,
        };
        let date = date(s.day);
        let mut o = InMemDicomObject::new_empty();
        let mut put = |tag, vr, v: &str| o.put_str(tag, vr, v);
        put(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
        put(tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY");
        put(tags::SOP_CLASS_UID, VR::UI, sop_class);
        put(tags::SOP_INSTANCE_UID, VR::UI, &sop_uid);
        put(tags::STUDY_DATE, VR::DA, &date);
        put(tags::SERIES_DATE, VR::DA, &date);
        put(tags::STUDY_TIME, VR::TM, &s.time);
        put(tags::ACCESSION_NUMBER, VR::SH, &s.accession);
        put(tags::MODALITY, VR::CS, s.modality);
        put(tags::MANUFACTURER, VR::LO, "yilian-bench");
        put(tags::INSTITUTION_NAME, VR::LO, "测试乡镇卫生院");
        put(tags::REFERRING_PHYSICIAN_NAME, VR::PN, "Li^Ming=李^明");
        put(tags::STUDY_DESCRIPTION, VR::LO, s.description);
        put(tags::SERIES_DESCRIPTION, VR::LO, s.description);
        put(tags::PATIENT_NAME, VR::PN, &p.name);
        put(tags::PATIENT_ID, VR::LO, &p.id);
        put(tags::PATIENT_BIRTH_DATE, VR::DA, &p.birth);
        put(tags::PATIENT_SEX, VR::CS, p.sex);
        put(tags::BODY_PART_EXAMINED, VR::CS, s.body_part);
        put(tags::STUDY_INSTANCE_UID, VR::UI, &s.uid);
        put(tags::SERIES_INSTANCE_UID, VR::UI, &series_uid);
        put(tags::STUDY_ID, VR::SH, "1");
        put(tags::SERIES_NUMBER, VR::IS, &(series + 1).to_string());
        put(tags::INSTANCE_NUMBER, VR::IS, &number.to_string());
        put(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
        for (tag, v) in [
            (tags::SAMPLES_PER_PIXEL, 1u16),
            (tags::ROWS, 8),
            (tags::COLUMNS, 8),
            (tags::BITS_ALLOCATED, 16),
            (tags::BITS_STORED, 12),
            (tags::HIGH_BIT, 11),
            (tags::PIXEL_REPRESENTATION, 0),
        ] {
            o.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
        }
        let pixels: Vec<u16> = (0..64u16)
            .map(|i| (i * 61 + number as u16) & 0x0FFF)
            .collect();
        o.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(C::from_vec(pixels)),
        ));
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
            .implementation_class_uid(yilian_testkit::IMPLEMENTATION_CLASS_UID)
            .implementation_version_name("YILIAN_BENCH");
        let file = o.with_meta(meta)?;
        let mut out = Vec::with_capacity(1600);
        file.write_all(&mut out)?;
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Servers.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Yilian,
    Orthanc,
    /// The bare durable HTTPS receiver (`common/bare_stow.rs`): STOW only.
    Bare,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Yilian => "yilian",
            Kind::Orthanc => "Orthanc",
            Kind::Bare => "bare",
        }
    }
}

/// Where and how to reach a server's DICOMweb.
#[derive(Clone)]
struct Endpoint {
    name: &'static str,
    port: u16,
    /// TLS (trusting the development CA); `None`: plain HTTP.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The DICOMweb root.
    root: &'static str,
}

#[derive(Clone, Copy)]
enum Auth {
    Reader,
    Device,
}

struct Server {
    kind: Kind,
    ep: Endpoint,
    proc: Proc,
    dir: PathBuf,
    /// Remove `dir` when the server stops (a STOW run's fresh server keeps it until the end
    /// of the invocation: see `stow_run`).
    remove_dir: bool,
    /// `Authorization` values (yilian).
    reader: Option<String>,
    device: Option<String>,
}

impl Server {
    fn auth(&self, a: Auth) -> Option<String> {
        match a {
            Auth::Reader => self.reader.clone(),
            Auth::Device => self.device.clone(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.proc.kill();
        if self.remove_dir {
            remove(&self.dir);
        }
    }
}

/// The CA of the development certificates the relay serves without `[tls]`.
fn yilian_tls() -> Result<Arc<rustls::ClientConfig>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("certs-dev/ca.pem");
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&ca).with_context(|| format!("{}", ca.display()))? {
        roots.add(c?)?;
    }
    Ok(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

async fn start_yilian(dir: &Path) -> Result<Server> {
    std::fs::create_dir_all(dir)?;
    let http = free_port()?;
    let quic = free_udp_port()?;
    let config = dir.join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{quic}\"\ndata_dir = {:?}\n\n[http]\nlisten = \"127.0.0.1:{http}\"\n",
            dir.join("data").display().to_string()
        ),
    )?;
    let mut c = Command::new(yilian_bin());
    c.env("RUST_LOG", "warn")
        .args(["serve", "--config"])
        .arg(&config);
    let mut proc = Proc::spawn("yilian serve", c, &dir.join("relay.log"))?;
    proc.wait_listening(http, Duration::from_secs(60))?;
    let token = |identity: &str| -> Result<String> {
        let out = Command::new(yilian_bin())
            .args(["token", "issue", "--identity", identity, "--ttl", "24h"])
            .arg("--config")
            .arg(&config)
            .output()?;
        ensure!(
            out.status.success(),
            "yilian token issue: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let token = stdout.lines().last().context("no token printed")?.trim();
        Ok(format!("Bearer {token}"))
    };
    Ok(Server {
        remove_dir: true,
        kind: Kind::Yilian,
        ep: Endpoint {
            name: "yilian",
            port: http,
            tls: Some(yilian_tls()?),
            root: "/dicomweb",
        },
        reader: Some(token("county-radiology")?),
        device: Some(token("township-a-device")?),
        proc,
        dir: dir.to_path_buf(),
    })
}

/// The bare durable HTTPS receiver (`common/bare_stow.rs`): this binary, re-executed.
async fn start_bare(dir: &Path) -> Result<Server> {
    std::fs::create_dir_all(dir)?;
    let http = free_port()?;
    let mut c = Command::new(std::env::current_exe()?);
    c.arg(bare_stow::FLAG)
        .arg(dir.join("files"))
        .arg(http.to_string());
    let mut proc = Proc::spawn("bare STOW-RS receiver", c, &dir.join("bare.log"))?;
    proc.wait_listening(http, Duration::from_secs(60))?;
    Ok(Server {
        remove_dir: true,
        kind: Kind::Bare,
        ep: Endpoint {
            name: "bare",
            port: http,
            tls: Some(yilian_tls()?),
            root: "/dicomweb",
        },
        reader: None,
        device: None,
        proc,
        dir: dir.to_path_buf(),
    })
}

/// How Orthanc runs.
struct OrthancSetup {
    /// The DICOMweb plugin.
    plugin: PathBuf,
}

/// Orthanc with its DICOMweb plugin; `sync`: its default fsync of every stored file.
async fn start_orthanc(dir: &Path, setup: &OrthancSetup, sync: bool) -> Result<Server> {
    std::fs::create_dir_all(dir)?;
    let http = free_port()?;
    let config = dir.join("orthanc.json");
    let plugin = &setup.plugin;
    let json = serde_json::json!({
        "Name": "yilian-bench",
        "StorageDirectory": dir.join("storage"),
        "IndexDirectory": dir.join("index"),
        "HttpPort": http,
        "HttpServerEnabled": true,
        "RemoteAccessAllowed": false,
        "AuthenticationEnabled": false,
        "DicomServerEnabled": false,
        "StorageCompression": false,
        "SyncStorageArea": sync,
        "KeepAlive": true,
        "TcpNoDelay": true,
        "Plugins": [plugin],
        "DicomWeb": { "Enable": true, "Root": "/dicom-web/" },
    });
    std::fs::write(&config, serde_json::to_string_pretty(&json)?)?;
    let mut c = Command::new(ORTHANC);
    c.env("TCP_NODELAY", "1").arg(&config);
    if std::env::var_os("YILIAN_BENCH_ORTHANC_VERBOSE").is_some() {
        c.arg("--verbose");
    }
    let mut proc = Proc::spawn("Orthanc", c, &dir.join("orthanc.log"))?;
    proc.wait_listening(http, Duration::from_secs(60))?;
    let s = Server {
        remove_dir: true,
        kind: Kind::Orthanc,
        ep: Endpoint {
            name: "Orthanc",
            port: http,
            tls: None,
            root: "/dicom-web",
        },
        reader: None,
        device: None,
        proc,
        dir: dir.to_path_buf(),
    };
    // The plugin answers (it loaded).
    let answer = async {
        let mut c = s.ep.connect(Auth::Reader, &s).await?;
        c.get("/dicom-web/studies?limit=1", &[("accept", DICOM_JSON)])
            .await
    };
    let (status, body) = answer
        .await
        .with_context(|| format!("Orthanc's first request\n{}", s.proc.log_tail()))?;
    ensure!(
        status == StatusCode::OK,
        "Orthanc's DICOMweb plugin did not answer ({status}: {}); is {} loaded?\n{}",
        String::from_utf8_lossy(&body),
        plugin.display(),
        s.proc.log_tail()
    );
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// HTTP client.

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// One HTTP/1.1 connection; reconnects if the server closed it.
struct Client {
    ep: Endpoint,
    sender: SendRequest<Full<Bytes>>,
    authorization: Option<String>,
    reconnects: usize,
}

impl Endpoint {
    async fn connect(&self, auth: Auth, server: &Server) -> Result<Client> {
        Ok(Client {
            ep: self.clone(),
            sender: self.handshake().await?,
            authorization: server.auth(auth),
            reconnects: 0,
        })
    }

    /// A new connection to the server: TCP (no Nagle), under TLS for yilian.
    async fn open(&self) -> Result<Box<dyn Io>> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .with_context(|| format!("connecting to {}", self.name))?;
        tcp.set_nodelay(true)?;
        Ok(match &self.tls {
            Some(config) => {
                let name =
                    rustls_pki_types::ServerName::from(std::net::IpAddr::from([127, 0, 0, 1]));
                Box::new(
                    tokio_rustls::TlsConnector::from(config.clone())
                        .connect(name, tcp)
                        .await
                        .with_context(|| format!("TLS to {}", self.name))?,
                )
            }
            None => Box::new(tcp),
        })
    }

    async fn handshake(&self) -> Result<SendRequest<Full<Bytes>>> {
        let io = self.open().await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}

impl Client {
    async fn request(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<hyper::Response<hyper::body::Incoming>> {
        if self.sender.ready().await.is_err() {
            self.sender = self.ep.handshake().await?;
            self.reconnects += 1;
        }
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, format!("127.0.0.1:{}", self.ep.port));
        if let Some(a) = &self.authorization {
            b = b.header(header::AUTHORIZATION, a);
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.sender
            .send_request(b.body(Full::new(body))?)
            .await
            .with_context(|| format!("{} {path}", self.ep.name))
    }

    async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Result<(StatusCode, Bytes)> {
        let r = self
            .request(Method::GET, path, headers, Bytes::new())
            .await?;
        let status = r.status();
        let body = r.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

fn multipart_type() -> String {
    format!("multipart/related; type=\"application/dicom\"; boundary={BOUNDARY}")
}

const PART_HEAD: &str = "Content-Type: application/dicom\r\n\r\n";

/// One instance to store: its SOP Instance UID and its bytes.
struct Part {
    sop: String,
    bytes: Bytes,
}

/// Generated files as parts.
fn read_parts(files: &[Generated]) -> Result<Vec<Part>> {
    files
        .iter()
        .map(|g| {
            Ok(Part {
                sop: g.sop_instance_uid.clone(),
                bytes: Bytes::from(std::fs::read(&g.path)?),
            })
        })
        .collect()
}

/// A STOW-RS body of `parts`.
fn multipart<'a>(parts: impl IntoIterator<Item = &'a Part>) -> Bytes {
    let parts: Vec<&Part> = parts.into_iter().collect();
    let len: usize = parts.iter().map(|p| p.bytes.len() + 100).sum();
    let mut out = Vec::with_capacity(len + 64);
    for p in parts {
        out.extend_from_slice(format!("--{BOUNDARY}\r\n{PART_HEAD}").as_bytes());
        out.extend_from_slice(&p.bytes);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    Bytes::from(out)
}

/// What a STOW-RS answer says.
struct StowAnswer {
    /// SOP Instance UIDs in the Referenced SOP Sequence.
    stored: std::collections::HashSet<String>,
    /// Instances refused as "out of resources" (0xA700: the relay's per-identity cap on
    /// uploads in progress), to send again.
    busy: Vec<String>,
}

/// DICOM status of a STOW-RS failure the bench sends again (Refused: Out of Resources).
const OUT_OF_RESOURCES: u64 = 0xA700;

/// POST a STOW-RS body. Any failure other than "out of resources" is an error.
async fn stow(c: &mut Client, root: &str, body: Bytes) -> Result<StowAnswer> {
    let ct = multipart_type();
    let r = c
        .request(
            Method::POST,
            &format!("{root}/studies"),
            &[("content-type", &ct), ("accept", DICOM_JSON)],
            body,
        )
        .await?;
    let status = r.status();
    let warnings: Vec<String> = r
        .headers()
        .get_all(header::WARNING)
        .iter()
        .take(3)
        .map(|w| String::from_utf8_lossy(w.as_bytes()).to_string())
        .collect();
    let body = r.into_body().collect().await?.to_bytes();
    let fail = || {
        format!(
            "{}: STOW-RS answered {status} ({}): {}",
            c.ep.name,
            warnings.join("; "),
            String::from_utf8_lossy(&body[..body.len().min(600)])
        )
    };
    let v: serde_json::Value = serde_json::from_slice(&body).with_context(fail)?;
    let mut busy = Vec::new();
    for f in v["00081198"]["Value"].as_array().into_iter().flatten() {
        let code = f["00081197"]["Value"][0].as_u64();
        let sop = f["00081155"]["Value"][0].as_str();
        match (code, sop) {
            (Some(OUT_OF_RESOURCES), Some(sop)) => busy.push(sop.to_string()),
            _ => bail!(fail()),
        }
    }
    let stored = v["00081199"]["Value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["00081155"]["Value"][0].as_str().map(str::to_string))
        .collect();
    let ok = status == StatusCode::OK
        || (!busy.is_empty() && (status == StatusCode::ACCEPTED || status == StatusCode::CONFLICT));
    ensure!(ok, fail());
    Ok(StowAnswer { stored, busy })
}

/// Store every part (`body`: them all, made beforehand), sending again what the server
/// refused as out of resources after 20 ms, as a client told "the others are sent when these
/// finish" would, and what its answer left out (Orthanc once listed 51 of 100 instances in a
/// 200 with no failure; at most [`UNANSWERED_TRIES`] times). Returns how many parts were sent
/// again.
async fn stow_all(c: &mut Client, root: &str, parts: &[Part], body: Bytes) -> Result<usize> {
    let mut body = body;
    let mut sent: Vec<&Part> = parts.iter().collect();
    let mut resent = 0;
    let mut unanswered_tries = 0;
    loop {
        let a = stow(c, root, body).await?;
        let busy: std::collections::HashSet<String> = a.busy.into_iter().collect();
        let unanswered = sent
            .iter()
            .filter(|p| !a.stored.contains(&p.sop) && !busy.contains(&p.sop))
            .count();
        if unanswered > 0 {
            unanswered_tries += 1;
            ensure!(
                unanswered_tries <= UNANSWERED_TRIES,
                "{}: STOW-RS answers left out {unanswered} of {} instances {UNANSWERED_TRIES} times",
                c.ep.name,
                sent.len()
            );
            eprintln!(
                "{}: a STOW-RS answer left out {unanswered} of {} instances: sent again",
                c.ep.name,
                sent.len()
            );
        }
        sent.retain(|p| !a.stored.contains(&p.sop));
        if sent.is_empty() {
            return Ok(resent);
        }
        resent += sent.len();
        body = multipart(sent.iter().copied());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How often a server's STOW-RS answers may leave instances out before the bench gives up.
const UNANSWERED_TRIES: usize = 3;

// ---------------------------------------------------------------------------------------------
// Fill.

/// Store `items` in `requests` concurrent requests of `batch`; how many instances were sent
/// again.
async fn fill(s: &Server, items: &Arc<Vec<Part>>, requests: usize, batch: usize) -> Result<usize> {
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let resent = Arc::new(AtomicUsize::new(0));
    let batches = items.len().div_ceil(batch);
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..requests {
        let mut c = s.ep.connect(Auth::Device, s).await?;
        let (items, next, done, resent) =
            (items.clone(), next.clone(), done.clone(), resent.clone());
        let root = s.ep.root;
        tasks.spawn(async move {
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    return Ok::<_, anyhow::Error>(());
                }
                let parts = &items[b * batch..((b + 1) * batch).min(items.len())];
                let again = stow_all(&mut c, root, parts, multipart(parts)).await?;
                resent.fetch_add(again, Ordering::Relaxed);
                done.fetch_add(parts.len(), Ordering::Relaxed);
            }
        });
    }
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    tick.tick().await;
    loop {
        tokio::select! {
            r = tasks.join_next() => match r {
                None => break,
                Some(r) => r?.with_context(|| format!("filling {}", s.ep.name))?,
            },
            _ = tick.tick() => {
                let n = done.load(Ordering::Relaxed);
                eprintln!(
                    "  fill {}: {n} of {} after {:.0} s ({:.0}/s)",
                    s.ep.name,
                    items.len(),
                    t0.elapsed().as_secs_f64(),
                    n as f64 / t0.elapsed().as_secs_f64()
                );
            }
        }
    }
    Ok(resent.load(Ordering::Relaxed))
}

// ---------------------------------------------------------------------------------------------
// QIDO-RS.

const SEARCH_KINDS: [&str; 6] = [
    "PatientID exact",
    "PatientName wildcard, limit 100",
    "StudyDate 7-day range, limit 100",
    "ModalitiesInStudy=CT + 30-day range, limit 100",
    "no filter (first page), limit 100",
    "AccessionNumber exact",
];

struct Search {
    kind: usize,
    query: String,
}

/// The same `n` searches for both servers of a run, the kinds in turn.
fn searches(cat: &Catalog, n: usize, run: u64) -> Vec<Search> {
    let mut rng = Rng::new(run, 0x5EA7C4);
    // `^` and `*` go unencoded: Orthanc 1.10 with plugin 1.7 does not percent-decode query
    // values (`PatientName=LIU%5EF%2A` matches nothing there); yilian takes either.
    let enc = |v: &str| v.to_string();
    (0..n)
        .map(|i| {
            let kind = i % SEARCH_KINDS.len();
            let study = &cat.studies[rng.below(cat.studies.len() as u64) as usize];
            let patient = &cat.patients[study.patient];
            let day = rng.below(u64::from(DAYS)) as u32;
            let filter = match kind {
                0 => format!("PatientID={}", patient.id),
                1 => format!("PatientName={}&limit=100", enc(&patient.wildcard)),
                2 => format!(
                    "StudyDate={}-{}&limit=100",
                    date(day),
                    date((day + 6).min(DAYS - 1))
                ),
                3 => format!(
                    "ModalitiesInStudy=CT&StudyDate={}-{}&limit=100",
                    date(day),
                    date((day + 29).min(DAYS - 1))
                ),
                4 => "limit=100".to_string(),
                _ => format!("AccessionNumber={}", study.accession),
            };
            Search {
                kind,
                query: format!("{filter}&includefield=00081030"),
            }
        })
        .collect()
}

struct Lat {
    kind: Kind,
    search: usize,
    ms: f64,
}

/// Nearest-rank percentile of sorted `v`.
fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// Every search once on one connection (after a few untimed): latencies, result counts, and a
/// row with p50/p99 and the CPU spent.
async fn qido_run(
    s: &Server,
    searches: &[Search],
    run: usize,
) -> Result<(Vec<Lat>, Vec<usize>, Row)> {
    let mut c = s.ep.connect(Auth::Reader, s).await?;
    let path = |q: &str| format!("{}/studies?{q}", s.ep.root);
    for w in searches.iter().take(60) {
        let (status, _) = c.get(&path(&w.query), &[("accept", DICOM_JSON)]).await?;
        ensure!(
            status.is_success(),
            "{}: {status} for {}",
            s.ep.name,
            w.query
        );
    }
    let meter = Meter::start(s.proc.pid())?;
    let mut lats = Vec::with_capacity(searches.len());
    let mut bodies = Vec::with_capacity(searches.len());
    for w in searches {
        let t0 = Instant::now();
        let (status, body) = c.get(&path(&w.query), &[("accept", DICOM_JSON)]).await?;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        ensure!(
            status == StatusCode::OK || status == StatusCode::NO_CONTENT,
            "{}: QIDO-RS {status} for {}: {}",
            s.ep.name,
            w.query,
            String::from_utf8_lossy(&body[..body.len().min(500)])
        );
        lats.push(Lat {
            kind: s.kind,
            search: w.kind,
            ms,
        });
        bodies.push(body);
    }
    let spent = meter.stop()?;
    ensure!(
        c.reconnects == 0,
        "{} closed the keep-alive connection {} times",
        s.ep.name,
        c.reconnects
    );
    let counts = bodies
        .iter()
        .map(|b| {
            if b.is_empty() {
                Ok(0)
            } else {
                serde_json::from_slice::<Vec<serde_json::Value>>(b).map(|v| v.len())
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: a QIDO-RS answer is not a JSON array", s.ep.name))?;
    let all = sorted(lats.iter().map(|l| l.ms).collect());
    let row = Row {
        run,
        kind: s.kind,
        metric: Metric::Qido,
        value: 0.0,
        p50: percentile(&all, 50.0),
        p99: percentile(&all, 99.0),
        spent,
    };
    Ok((lats, counts, row))
}

/// Searches whose result counts differ between the two servers, per kind.
fn report_count_mismatches(searches: &[Search], counts: &[Vec<usize>]) {
    let [a, b] = counts else { return };
    let mut per_kind = [0usize; SEARCH_KINDS.len()];
    let mut example = None;
    for (i, w) in searches.iter().enumerate() {
        if a[i] != b[i] {
            per_kind[w.kind] += 1;
            example.get_or_insert((w.query.clone(), a[i], b[i]));
        }
    }
    let mean = |v: &[usize]| v.iter().sum::<usize>() as f64 / v.len().max(1) as f64;
    match example {
        None => println!(
            "QIDO-RS: both servers found the same number of studies for every search (mean {:.1} per search)",
            mean(a)
        ),
        Some((q, x, y)) => println!(
            "QIDO-RS: result counts differ for {} searches (per kind {per_kind:?}); e.g. {q}: {x} vs {y}",
            per_kind.iter().sum::<usize>()
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// WADO-RS.

struct Wado {
    /// Socket reads the body took.
    frames: usize,
    parts: usize,
    bytes: u64,
    spent: Spent,
}

/// Retrieve `path` on a new connection; check its parts against `files` (count and bytes;
/// BLAKE3 too when `verify`). The answer is read by [`raw_get`], the way curl or a browser
/// reads it: large socket reads, whatever the framing.
async fn wado(s: &Server, path: &str, files: &[Generated], verify: bool) -> Result<Wado> {
    let authorization = s.auth(Auth::Reader);
    let meter = Meter::start(s.proc.pid())?;
    let mut parts: Option<Parts> = None;
    let mut refused = Vec::new();
    let head = raw_get(
        &s.ep,
        authorization.as_deref(),
        path,
        WADO_ACCEPT,
        |head, d| {
            if head.status != 200 {
                refused.extend_from_slice(&d[..d.len().min(500 - refused.len().min(500))]);
                return Ok(());
            }
            let p = match &mut parts {
                Some(p) => p,
                None => {
                    let boundary = boundary_of(&head.content_type).with_context(|| {
                        format!(
                            "{}: WADO-RS content type {:?}",
                            s.ep.name, head.content_type
                        )
                    })?;
                    parts.insert(Parts::new(&boundary, verify))
                }
            };
            p.feed(d)
        },
    )
    .await?;
    let spent = meter.stop()?;
    if head.status != 200 {
        bail!(
            "{}: WADO-RS {} for {path}: {}",
            s.ep.name,
            head.status,
            String::from_utf8_lossy(&refused)
        );
    }
    let got = parts.context("a WADO-RS answer without a body")?.finish()?;
    let bytes: u64 = got.iter().map(|p| p.0).sum();
    let want: u64 = files.iter().map(|g| g.size).sum();
    ensure!(
        got.len() == files.len() && bytes == want,
        "{}: WADO-RS {path}: {} parts, {bytes} bytes; expected {} parts, {want} bytes",
        s.ep.name,
        got.len(),
        files.len()
    );
    if verify {
        let mut a: Vec<[u8; 32]> = got.iter().map(|p| p.1).collect();
        let mut b: Vec<[u8; 32]> = files.iter().map(|g| g.blake3).collect();
        a.sort_unstable();
        b.sort_unstable();
        ensure!(
            a == b,
            "{}: WADO-RS {path}: parts differ from the files",
            s.ep.name
        );
    }
    Ok(Wado {
        frames: head.reads,
        parts: got.len(),
        bytes,
        spent,
    })
}

/// What [`raw_get`] read of an answer's head.
struct Head {
    status: u16,
    content_type: String,
    /// Socket reads of the whole answer.
    reads: usize,
}

/// How an answer's body ends.
enum Framing {
    Chunked(Chunked),
    Length(u64),
    Close,
}

/// `GET path` over a new HTTP/1.1 connection (`Connection: close`), read 1 MiB at a time;
/// the body's bytes, de-chunked, go to `body` as they come.
///
/// Why not hyper's client, which the other requests use: it hands a body that ends with the
/// connection (Orthanc's WADO-RS answers) over 8 KiB at a time, each piece passed from the
/// connection's task to the reader's; reading Orthanc's 158 MB CT took it 0.2–0.6 s of CPU and
/// held Orthanc to 170–720 MB/s, where curl reads the same answer at 1.3–1.5 GB/s for 0.02 s.
async fn raw_get(
    ep: &Endpoint,
    authorization: Option<&str>,
    path: &str,
    accept: &str,
    mut body: impl FnMut(&Head, &[u8]) -> Result<()>,
) -> Result<Head> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut io = ep.open().await?;
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: {accept}\r\nConnection: close\r\n",
        ep.port
    );
    if let Some(a) = authorization {
        request.push_str(&format!("Authorization: {a}\r\n"));
    }
    request.push_str("\r\n");
    io.write_all(request.as_bytes()).await?;
    io.flush().await?;
    let mut buf = vec![0u8; 1 << 20];
    let mut pending: Vec<u8> = Vec::new();
    let mut reads = 0;
    // The head, then the framing it announces.
    let (mut head, mut framing) = loop {
        let n = io.read(&mut buf).await?;
        reads += 1;
        ensure!(
            n > 0,
            "{}: the connection ended in the answer's head",
            ep.name
        );
        pending.extend_from_slice(&buf[..n]);
        if let Some(end) = memchr::memmem::find(&pending, b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&pending[..end]).into_owned();
            let mut lines = text.split("\r\n");
            let status = lines
                .next()
                .and_then(|l| l.split(' ').nth(1))
                .and_then(|c| c.parse::<u16>().ok())
                .with_context(|| format!("{}: a status line? {text:?}", ep.name))?;
            let mut head = Head {
                status,
                content_type: String::new(),
                reads,
            };
            let mut framing = Framing::Close;
            for line in lines {
                let Some((k, v)) = line.split_once(':') else {
                    continue;
                };
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                match k.as_str() {
                    "content-type" => head.content_type = v.to_string(),
                    "transfer-encoding" if v.eq_ignore_ascii_case("chunked") => {
                        framing = Framing::Chunked(Chunked::Size(Vec::new()))
                    }
                    "content-length" if !matches!(framing, Framing::Chunked(_)) => {
                        framing = Framing::Length(v.parse()?)
                    }
                    _ => {}
                }
            }
            pending.drain(..end + 4);
            break (head, framing);
        }
        ensure!(
            pending.len() < 65536,
            "{}: an answer's head never ends",
            ep.name
        );
    };
    let mut first = true;
    loop {
        let d: &[u8] = if first {
            first = false;
            &pending
        } else {
            let n = io.read(&mut buf).await?;
            reads += 1;
            if n == 0 {
                break;
            }
            &buf[..n]
        };
        head.reads = reads;
        match &mut framing {
            Framing::Close => body(&head, d)?,
            Framing::Length(left) => {
                let k = d.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                body(&head, &d[..k])?;
                *left -= k as u64;
                if *left == 0 {
                    break;
                }
            }
            Framing::Chunked(c) => {
                c.feed(d, &mut |piece| body(&head, piece))?;
                if matches!(c, Chunked::Done) {
                    break;
                }
            }
        }
    }
    match framing {
        Framing::Length(left) => ensure!(left == 0, "{}: {left} bytes missing", ep.name),
        Framing::Chunked(c) => ensure!(
            matches!(c, Chunked::Done),
            "{}: a chunked answer without its last chunk",
            ep.name
        ),
        Framing::Close => {}
    }
    head.reads = reads;
    Ok(head)
}

/// A chunked body (RFC 9112 §7.1), de-chunked as it comes.
enum Chunked {
    /// The chunk-size line read so far.
    Size(Vec<u8>),
    /// Data bytes left in this chunk.
    Data(u64),
    /// Bytes of the CRLF after a chunk's data still to skip.
    Crlf(u8),
    /// After the last chunk: the trailer section read so far.
    Trailers(Vec<u8>),
    Done,
}

impl Chunked {
    fn feed(&mut self, mut d: &[u8], out: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        while !d.is_empty() {
            match self {
                Chunked::Size(line) => match memchr::memchr(b'\n', d) {
                    Some(p) => {
                        line.extend_from_slice(&d[..p]);
                        d = &d[p + 1..];
                        let text = String::from_utf8_lossy(line);
                        let hex = text.trim().split(';').next().unwrap_or("").trim();
                        let n = u64::from_str_radix(hex, 16)
                            .with_context(|| format!("a chunk size? {text:?}"))?;
                        *self = if n == 0 {
                            Chunked::Trailers(Vec::new())
                        } else {
                            Chunked::Data(n)
                        };
                    }
                    None => {
                        line.extend_from_slice(d);
                        ensure!(line.len() < 1024, "a chunk-size line never ends");
                        d = &[];
                    }
                },
                Chunked::Data(left) => {
                    let k = d.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    out(&d[..k])?;
                    d = &d[k..];
                    *left -= k as u64;
                    if *left == 0 {
                        *self = Chunked::Crlf(2);
                    }
                }
                Chunked::Crlf(left) => {
                    let k = d.len().min(usize::from(*left));
                    d = &d[k..];
                    *left -= k as u8;
                    if *left == 0 {
                        *self = Chunked::Size(Vec::new());
                    }
                }
                Chunked::Trailers(t) => {
                    t.extend_from_slice(d);
                    d = &[];
                    if t.starts_with(b"\r\n") || memchr::memmem::find(t, b"\r\n\r\n").is_some() {
                        *self = Chunked::Done;
                    }
                }
                Chunked::Done => return Ok(()),
            }
        }
        Ok(())
    }
}

/// The boundary parameter of a multipart content type.
fn boundary_of(content_type: &str) -> Result<String> {
    ensure!(
        content_type
            .to_ascii_lowercase()
            .starts_with("multipart/related"),
        "not multipart/related"
    );
    content_type
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|b| !b.is_empty())
        .context("no boundary")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PartState {
    Preamble,
    /// Just after a delimiter: `--` (the end) or CRLF (a part's headers) follows.
    After,
    Headers,
    Body,
    End,
}

/// A multipart body split as it arrives, without copying the parts: each part's length and
/// (when asked) BLAKE3.
struct Parts {
    delim: Vec<u8>,
    finder: memchr::memmem::Finder<'static>,
    state: PartState,
    /// Preamble/Body: the last bytes, which may begin a delimiter; After/Headers: bytes read.
    pending: Vec<u8>,
    hash: bool,
    len: u64,
    hasher: blake3::Hasher,
    parts: Vec<(u64, [u8; 32])>,
}

impl Parts {
    fn new(boundary: &str, hash: bool) -> Parts {
        let delim = format!("\r\n--{boundary}").into_bytes();
        Parts {
            finder: memchr::memmem::Finder::new(&delim).into_owned(),
            delim,
            state: PartState::Preamble,
            // The body starts with the first delimiter without its CRLF.
            pending: b"\r\n".to_vec(),
            hash,
            len: 0,
            hasher: blake3::Hasher::new(),
            parts: Vec::new(),
        }
    }

    fn data(&mut self, d: &[u8]) {
        if self.state == PartState::Body {
            self.len += d.len() as u64;
            if self.hash {
                self.hasher.update(d);
            }
        }
    }

    fn delimiter(&mut self) {
        if self.state == PartState::Body {
            let h = if self.hash {
                *self.hasher.finalize().as_bytes()
            } else {
                [0; 32]
            };
            self.parts.push((self.len, h));
            self.len = 0;
            self.hasher.reset();
        }
        self.state = PartState::After;
        self.pending.clear();
    }

    fn feed(&mut self, mut d: &[u8]) -> Result<()> {
        while !d.is_empty() {
            match self.state {
                PartState::End => return Ok(()),
                PartState::Preamble | PartState::Body => d = self.scan(d),
                PartState::After => {
                    let n = (2 - self.pending.len()).min(d.len());
                    self.pending.extend_from_slice(&d[..n]);
                    d = &d[n..];
                    if self.pending.len() == 2 {
                        match &self.pending[..] {
                            b"--" => self.state = PartState::End,
                            // Kept: an empty header block is then found as CRLF CRLF.
                            b"\r\n" => self.state = PartState::Headers,
                            other => bail!("{other:?} after a multipart delimiter"),
                        }
                    }
                }
                PartState::Headers => {
                    let old = self.pending.len();
                    let n = d.len().min(4096);
                    self.pending.extend_from_slice(&d[..n]);
                    let from = old.saturating_sub(3);
                    match memchr::memmem::find(&self.pending[from..], b"\r\n\r\n") {
                        Some(p) => {
                            let end = from + p + 4;
                            let head = String::from_utf8_lossy(&self.pending[..end]);
                            ensure!(
                                head.to_ascii_lowercase().contains("application/dicom"),
                                "a part that is not application/dicom: {head:?}"
                            );
                            d = &d[end - old..];
                            self.pending.clear();
                            self.state = PartState::Body;
                        }
                        None => {
                            ensure!(self.pending.len() < 65536, "a part's headers never end");
                            d = &d[n..];
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Preamble or body bytes up to the next delimiter; what follows it.
    fn scan<'a>(&mut self, d: &'a [u8]) -> &'a [u8] {
        let dl = self.delim.len();
        if !self.pending.is_empty() {
            // A delimiter may begin in the bytes kept from the previous piece.
            let kept = self.pending.len();
            let k = d.len().min(dl - 1);
            let mut w = std::mem::take(&mut self.pending);
            w.extend_from_slice(&d[..k]);
            if let Some(p) = self.finder.find(&w).filter(|&p| p < kept) {
                self.data(&w[..p]);
                self.delimiter();
                return &d[p + dl - kept..];
            }
            if k < dl - 1 {
                // Too short to decide: keep what may still begin a delimiter.
                let cut = w.len() - w.len().min(dl - 1);
                self.data(&w[..cut]);
                self.pending = w[cut..].to_vec();
                return &[];
            }
            self.data(&w[..kept]);
        }
        match self.finder.find(d) {
            Some(p) => {
                self.data(&d[..p]);
                self.delimiter();
                &d[p + dl..]
            }
            None => {
                let cut = d.len() - d.len().min(dl - 1);
                self.data(&d[..cut]);
                self.pending.clear();
                self.pending.extend_from_slice(&d[cut..]);
                &[]
            }
        }
    }

    fn finish(self) -> Result<Vec<(u64, [u8; 32])>> {
        ensure!(
            self.state == PartState::End,
            "the multipart body ended before its closing delimiter"
        );
        Ok(self.parts)
    }
}

// ---------------------------------------------------------------------------------------------
// STOW-RS.

struct StowResult {
    /// Instances sent again (refused as out of resources).
    resent: usize,
    spent: Spent,
}

/// The CT series into a fresh server of `kind`, in `requests` concurrent requests.
async fn stow_run(
    kind: Kind,
    dir: &Path,
    orthanc: &OrthancSetup,
    corpus: &Corpus,
    requests: usize,
) -> Result<StowResult> {
    let mut s = match kind {
        Kind::Yilian => start_yilian(dir).await?,
        Kind::Orthanc => start_orthanc(dir, orthanc, true).await?,
        Kind::Bare => start_bare(dir).await?,
    };
    // Its files stay until the end of the invocation: removing hundreds of files just before
    // the next server's run made that server pay for them (on ext4 without a journal, as
    // here, creating a file skips every inode freed in the last 30-35 s, one inode-table
    // lookup each: a fifth of the next server's CPU in a profile).
    s.remove_dir = false;
    let per = corpus.ct.len().div_ceil(requests);
    let mut bodies = Vec::new();
    for chunk in corpus.ct.chunks(per) {
        let parts = read_parts(chunk)?;
        let body = multipart(&parts);
        bodies.push((parts, body));
    }
    let mut clients = Vec::new();
    for _ in &bodies {
        clients.push(s.ep.connect(Auth::Device, &s).await?);
    }
    let meter = Meter::start(s.proc.pid())?;
    let mut tasks = tokio::task::JoinSet::new();
    for (mut c, (parts, body)) in clients.into_iter().zip(bodies) {
        let root = s.ep.root;
        tasks.spawn(async move { stow_all(&mut c, root, &parts, body).await });
    }
    let mut resent = 0;
    while let Some(r) = tasks.join_next().await {
        resent +=
            r?.with_context(|| format!("STOW-RS into {}\n{}", kind.name(), s.proc.log_tail()))?;
    }
    let spent = meter.stop()?;
    drop(s);
    Ok(StowResult { resent, spent })
}

// ---------------------------------------------------------------------------------------------
// What a measurement cost.

/// Busy CPU seconds of the whole machine (all cores) since boot, from `/proc/stat`.
fn machine_busy() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let cpu = stat.lines().next().context("empty /proc/stat")?;
    let f: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal: all but idle and iowait.
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok(busy as f64 / hz)
}

/// Wall time and CPU of a measurement: the server's, this process's, everything else's.
#[derive(Clone, Copy, Default)]
struct Spent {
    secs: f64,
    server_cpu: f64,
    client_cpu: f64,
    /// Cores kept busy by other processes meanwhile (other developers' builds): a figure taken
    /// while this is well above 0 was disturbed.
    other: f64,
}

struct Meter {
    pid: u32,
    t0: Instant,
    server: f64,
    client: f64,
    busy: f64,
}

impl Meter {
    fn start(pid: u32) -> Result<Meter> {
        Ok(Meter {
            pid,
            server: cpu_seconds(pid)?,
            client: cpu_seconds(std::process::id())?,
            busy: machine_busy()?,
            t0: Instant::now(),
        })
    }

    fn stop(&self) -> Result<Spent> {
        let secs = self.t0.elapsed().as_secs_f64();
        let server_cpu = cpu_seconds(self.pid)? - self.server;
        let client_cpu = cpu_seconds(std::process::id())? - self.client;
        let busy = machine_busy()? - self.busy;
        Ok(Spent {
            secs,
            server_cpu,
            client_cpu,
            other: ((busy - server_cpu - client_cpu) / secs).max(0.0),
        })
    }
}

impl std::fmt::Display for Spent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CPU server {:.2} s, bench {:.2} s; other load {:.2} cores",
            self.server_cpu, self.client_cpu, self.other
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Summary.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Metric {
    Qido,
    WadoCt,
    WadoLarge,
    /// STOW-RS of the CT in this many concurrent requests.
    Stow(usize),
}

impl Metric {
    fn short(self) -> &'static str {
        match self {
            Metric::Qido => "QIDO",
            Metric::WadoCt => "CT series",
            Metric::WadoLarge => "large instance",
            Metric::Stow(_) => "STOW",
        }
    }
}

struct Row {
    run: usize,
    kind: Kind,
    metric: Metric,
    /// MB/s (WADO), files/s (STOW).
    value: f64,
    /// Milliseconds (QIDO).
    p50: f64,
    p99: f64,
    spent: Spent,
}

fn remove(dir: &Path) {
    if dir.exists() {
        if let Err(e) = std::fs::remove_dir_all(dir) {
            eprintln!("could not remove {}: {e}", dir.display());
        }
    }
}

fn summary(
    o: &Options,
    corpus: &Corpus,
    rows: &[Row],
    lats: &[Lat],
    ceilings: &[(usize, usize, Ceiling)],
) {
    let runs = o.runs;
    let med = |kind: Kind, m: Metric, f: fn(&Row) -> f64| {
        median(
            rows.iter()
                .filter(|r| r.kind == kind && r.metric == m)
                .map(f)
                .collect(),
        )
    };
    // Within-run ratios (`f(a) / f(b)` with a, b the two kinds), their median and each.
    let ratio = |m: Metric, a: Kind, b: Kind, f: fn(&Row) -> f64| {
        let one = |run, k| {
            rows.iter()
                .find(|r| r.run == run && r.kind == k && r.metric == m)
                .map(f)
        };
        within_run_ratios(runs, |run| Some((one(run, a)?, one(run, b)?)))
    };
    let value = |r: &Row| r.value;
    let (y, or) = (Kind::Yilian, Kind::Orthanc);
    let ct_mb = corpus.ct_bytes() as f64 / 1e6;
    println!("\nmedians over {runs} run(s); ratios within each run, then their median [per run]:");
    // The most other processes kept busy during a metric's measurements, any run, any side.
    let other = |m: Metric| {
        rows.iter()
            .filter(|r| r.metric == m)
            .map(|r| r.spent.other)
            .fold(0.0, f64::max)
    };
    println!(
        "| metric | yilian | Orthanc | yilian / Orthanc | target | other load, cores (max) |\n|---|---|---|---|---|---|"
    );
    let mut metrics = vec![
        (
            Metric::WadoCt,
            format!(
                "WADO-RS CT series, {} × 512×512 ({ct_mb:.0} MB), MB/s",
                corpus.ct.len()
            ),
            "≥ 3",
        ),
        (
            Metric::WadoLarge,
            format!(
                "WADO-RS one multi-frame instance ({:.0} MB), MB/s",
                corpus.large.size as f64 / 1e6
            ),
            "≥ 3",
        ),
    ];
    for &n in &o.stow_requests {
        metrics.push((
            Metric::Stow(n),
            format!("STOW-RS CT series, {n} request(s), files/s (durable / fsync per file)"),
            "≥ 3",
        ));
    }
    for (m, label, target) in metrics {
        let (r, shown) = ratio(m, y, or, value);
        println!(
            "| {label} | {:.1} | {:.1} | **{r:.2}** [{shown}] | {target} | {:.2} |",
            med(y, m, value),
            med(or, m, value),
            other(m)
        );
    }
    // What the STOW targets ask of the disk (`common::disk`).
    for &n in &o.stow_requests {
        let ceiling = |run: usize| {
            ceilings
                .iter()
                .find(|c| c.0 == run && c.1 == n)
                .map(|c| c.2.files_per_s)
        };
        let stow = |run: usize, k: Kind| {
            rows.iter()
                .find(|r| r.run == run && r.kind == k && r.metric == Metric::Stow(n))
                .map(|r| r.value)
        };
        let c = median((0..runs).filter_map(ceiling).collect());
        let (ry, sy) = within_run_ratios(runs, |run| Some((stow(run, y)?, ceiling(run)?)));
        let (rt, st) = within_run_ratios(runs, |run| Some((3.0 * stow(run, or)?, ceiling(run)?)));
        println!(
            "| STOW-RS ×{n}: the disk's durable ceiling ({} bare writers, write + fsync), files/s | {c:.1} | | yilian / ceiling **{ry:.2}** [{sy}]; target (3 × Orthanc) / ceiling **{rt:.2}** [{st}] | | |",
            n * yilian_web::stow::PARTS_IN_FLIGHT
        );
        let (rb, sb) = within_run_ratios(runs, |run| Some((stow(run, y)?, stow(run, Kind::Bare)?)));
        let (rtb, stb) = within_run_ratios(runs, |run| {
            Some((3.0 * stow(run, or)?, stow(run, Kind::Bare)?))
        });
        println!(
            "| STOW-RS ×{n}: the bare durable HTTPS receiver (hyper, rustls, multer; create, write, fsync per part, {} in flight per request; `common/bare_stow.rs`), files/s | {:.1} | | yilian / bare **{rb:.2}** [{sb}]; target (3 × Orthanc) / bare **{rtb:.2}** [{stb}] | | |",
            yilian_web::stow::PARTS_IN_FLIGHT,
            med(Kind::Bare, Metric::Stow(n), value)
        );
    }
    // QIDO: latencies pooled over the runs.
    let pooled = |kind: Kind, search: Option<usize>| {
        sorted(
            lats.iter()
                .filter(|l| l.kind == kind && search.is_none_or(|s| l.search == s))
                .map(|l| l.ms)
                .collect(),
        )
    };
    let (ya, oa) = (pooled(y, None), pooled(or, None));
    let (r50, s50) = ratio(Metric::Qido, or, y, |r| r.p50);
    let (r99, s99) = ratio(Metric::Qido, or, y, |r| r.p99);
    println!(
        "| QIDO-RS study search p50, ms ({} searches per server) | {:.2} | {:.2} | Orthanc / yilian **{r50:.2}** [{s50}] | | {:.2} |",
        ya.len(),
        percentile(&ya, 50.0),
        percentile(&oa, 50.0),
        other(Metric::Qido)
    );
    println!(
        "| QIDO-RS study search p99, ms | {:.2} | {:.2} | Orthanc / yilian **{r99:.2}** [{s99}] | yilian < 50 ms and < Orthanc | {:.2} |",
        percentile(&ya, 99.0),
        percentile(&oa, 99.0),
        other(Metric::Qido)
    );
    println!(
        "\nQIDO-RS per kind of search (pooled; ms):\n| search | yilian p50 | yilian p99 | Orthanc p50 | Orthanc p99 |\n|---|---|---|---|---|"
    );
    for (i, name) in SEARCH_KINDS.iter().enumerate() {
        let (a, b) = (pooled(y, Some(i)), pooled(or, Some(i)));
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} |",
            percentile(&a, 50.0),
            percentile(&a, 99.0),
            percentile(&b, 50.0),
            percentile(&b, 99.0)
        );
    }
    println!("\nCPU seconds per operation (medians): server | bench client");
    for (m, per, what) in [
        (Metric::Qido, o.queries as f64 / 1e3, "per 1000 searches"),
        (Metric::WadoCt, ct_mb / 1e3, "per GB, CT series"),
        (
            Metric::WadoLarge,
            corpus.large.size as f64 / 1e9,
            "per GB, large instance",
        ),
    ]
    .into_iter()
    .chain(o.stow_requests.iter().map(|&n| {
        (
            Metric::Stow(n),
            corpus.ct.len() as f64 / 1e3,
            "per 1000 files, STOW-RS",
        )
    })) {
        let bare = match m {
            Metric::Stow(_) => format!(
                "   bare {:>6.2} | {:>5.2}",
                med(Kind::Bare, m, |r| r.spent.server_cpu) / per,
                med(Kind::Bare, m, |r| r.spent.client_cpu) / per
            ),
            _ => String::new(),
        };
        println!(
            "  {:<32} yilian {:>6.2} | {:>5.2}   Orthanc {:>6.2} | {:>5.2}{bare}",
            format!(
                "{what}{}",
                match m {
                    Metric::Stow(n) => format!(" ×{n}"),
                    _ => String::new(),
                }
            ),
            med(y, m, |r| r.spent.server_cpu) / per,
            med(y, m, |r| r.spent.client_cpu) / per,
            med(or, m, |r| r.spent.server_cpu) / per,
            med(or, m, |r| r.spent.client_cpu) / per
        );
    }
}
