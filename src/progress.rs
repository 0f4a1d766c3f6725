//! Terminal progress for `send` and `read` (indicatif; plain lines when not on a terminal).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use yilian_client::Progress;

pub struct Bar {
    bar: ProgressBar,
    files_done: AtomicU64,
    files: AtomicU64,
    terminal: bool,
}

impl Bar {
    pub fn new() -> Bar {
        let terminal = std::io::stderr().is_terminal();
        let bar = ProgressBar::with_draw_target(
            Some(0),
            if terminal {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{bar:30}] {bytes}/{total_bytes} acknowledged · {msg} · {bytes_per_sec} · eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Bar {
            bar,
            files_done: AtomicU64::new(0),
            files: AtomicU64::new(0),
            terminal,
        }
    }

    fn line(&self, s: &str) {
        if self.terminal {
            self.bar.println(s);
        } else {
            eprintln!("{s}");
        }
    }

    fn files_msg(&self) {
        self.bar.set_message(format!(
            "{}/{} files",
            self.files_done.load(Ordering::Relaxed),
            self.files.load(Ordering::Relaxed)
        ));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn begin(&self, files: u64, bytes: u64) {
        self.files.store(files, Ordering::Relaxed);
        self.bar.set_length(bytes);
        self.files_msg();
    }
    fn acknowledged(&self, delta: u64) {
        self.bar.inc(delta);
    }
    fn file_done(&self, path: &Path, ok: bool, message: &str) {
        if ok {
            self.files_done.fetch_add(1, Ordering::Relaxed);
            self.files_msg();
        } else {
            self.line(&format!("FAILED {}: {message}", path.display()));
        }
    }
    fn status(&self, message: &str) {
        let pos = self.bar.position();
        match self.bar.length().unwrap_or(0) {
            // Receiving: no total is known.
            0 => self.line(&format!("{message}; {} so far", indicatif::HumanBytes(pos))),
            len => self.line(&format!(
                "{message}; {} of {} acknowledged",
                indicatif::HumanBytes(pos),
                indicatif::HumanBytes(len)
            )),
        }
    }
    fn received(&self, study_uid: &str, sop_uid: &str, bytes: u64) {
        self.bar.inc(bytes);
        if !self.terminal {
            eprintln!(
                "received {study_uid}/{sop_uid} ({})",
                indicatif::HumanBytes(bytes)
            );
        }
    }
}
