//! Telling the user when the link has gone quiet.
//!
//! QUIC rides out a short outage on the same connection (keep-alives, retransmission; the
//! connection lives for the idle timeout), so `send` sees no error while a township's link is
//! down for, say, 30 s — it just gets no acknowledgements. [`StallWatch`] wraps the caller's
//! [`Progress`] and, when nothing was acknowledged for a while although work is left (and no
//! upload is paused for an urgent one), says so on the progress line every few seconds. It
//! also reports when uploads pause for an urgent study and when they continue (once, not
//! per upload).

use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Progress;

/// Quiet this long before the first warning, and between warnings.
const QUIET: Duration = Duration::from_secs(5);

pub(crate) struct StallWatch {
    inner: Arc<dyn Progress>,
    last_activity: Mutex<Instant>,
    /// Last acknowledgement from the relay (or pause/resume: the relay is there).
    last_ack: Mutex<Instant>,
    paused: AtomicI64,
    /// The last status line and when it was shown (workers hitting the same outage each
    /// report it; once is enough).
    last_status: Mutex<Option<(String, Instant)>>,
    total: AtomicU64,
    acked: AtomicU64,
}

impl StallWatch {
    pub(crate) fn new(inner: Arc<dyn Progress>) -> Arc<StallWatch> {
        Arc::new(StallWatch {
            inner,
            last_activity: Mutex::new(Instant::now()),
            last_ack: Mutex::new(Instant::now()),
            paused: AtomicI64::new(0),
            last_status: Mutex::new(None),
            total: AtomicU64::new(0),
            acked: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        *self.last_activity.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn touch_ack(&self) {
        *self.last_ack.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.touch();
    }

    /// When the relay last acknowledged anything (or paused or resumed us): `--give-up-after`
    /// counts from here, so a link that stays down is bounded as a whole.
    pub(crate) fn last_acknowledgement(&self) -> Instant {
        *self.last_ack.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long the link has been quiet, if that deserves a warning now.
    pub(crate) fn quiet_for(&self, now: Instant) -> Option<Duration> {
        let left = self.acked.load(Ordering::Relaxed) < self.total.load(Ordering::Relaxed);
        if !left || self.paused.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let since = now.saturating_duration_since(
            *self.last_activity.lock().unwrap_or_else(|p| p.into_inner()),
        );
        (since >= QUIET).then_some(since)
    }

    /// Warn every [`QUIET`] while the link stays quiet (until the task is aborted).
    pub(crate) fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(QUIET);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Some(q) = me.quiet_for(Instant::now()) {
                    me.inner.status(&format!(
                        "no answer from the relay for {} s: the link may be down; still trying",
                        q.as_secs()
                    ));
                }
            }
        })
    }
}

impl Progress for StallWatch {
    fn begin(&self, files: u64, bytes: u64) {
        self.total.store(bytes, Ordering::Relaxed);
        self.touch_ack();
        self.inner.begin(files, bytes);
    }
    fn acknowledged(&self, delta: u64) {
        self.acked.fetch_add(delta, Ordering::Relaxed);
        self.touch_ack();
        self.inner.acknowledged(delta);
    }
    fn file_done(&self, path: &Path, ok: bool, message: &str) {
        self.touch();
        self.inner.file_done(path, ok, message);
    }
    fn status(&self, message: &str) {
        self.touch();
        let now = Instant::now();
        {
            let mut last = self.last_status.lock().unwrap_or_else(|p| p.into_inner());
            if last
                .as_ref()
                .is_some_and(|(m, at)| m == message && now.duration_since(*at) < QUIET)
            {
                return;
            }
            *last = Some((message.to_string(), now));
        }
        self.inner.status(message);
    }
    fn paused(&self, on: bool) {
        let before = self
            .paused
            .fetch_add(if on { 1 } else { -1 }, Ordering::Relaxed);
        self.touch_ack();
        match (on, before) {
            (true, 0) => self
                .inner
                .status("paused: an urgent study from this site has the link"),
            (false, 1) => self.inner.status("continuing after the urgent study"),
            _ => {}
        }
        self.inner.paused(on);
    }
    fn received(&self, study_uid: &str, sop_uid: &str, bytes: u64) {
        self.inner.received(study_uid, sop_uid, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoProgress;

    #[test]
    fn warns_only_when_work_is_left_nothing_is_paused_and_it_was_quiet() {
        let w = StallWatch::new(Arc::new(NoProgress));
        w.begin(2, 1000);
        let later = Instant::now() + QUIET * 2;
        assert!(w.quiet_for(Instant::now()).is_none(), "just started");
        assert!(w.quiet_for(later).is_some());
        w.paused(true);
        assert!(w.quiet_for(later).is_none(), "paused for an urgent upload");
        w.paused(false);
        w.acknowledged(1000);
        assert!(w.quiet_for(later).is_none(), "nothing left to acknowledge");
    }

    /// Counts status lines.
    #[derive(Default)]
    struct Lines(Mutex<Vec<String>>);
    impl Progress for Lines {
        fn status(&self, message: &str) {
            self.0.lock().unwrap().push(message.to_string());
        }
    }

    #[test]
    fn the_same_status_from_several_workers_is_shown_once() {
        let lines = Arc::new(Lines::default());
        let w = StallWatch::new(lines.clone());
        for _ in 0..4 {
            w.status("link down (connection lost); retrying in 0.5 s");
        }
        w.status("relay not reachable; retrying in 1.0 s");
        w.status("link down (connection lost); retrying in 0.5 s");
        assert_eq!(
            *lines.0.lock().unwrap(),
            [
                "link down (connection lost); retrying in 0.5 s",
                "relay not reachable; retrying in 1.0 s",
                "link down (connection lost); retrying in 0.5 s",
            ]
        );
    }

    #[test]
    fn last_acknowledgement_moves_with_acknowledgements_only() {
        let w = StallWatch::new(Arc::new(NoProgress));
        w.begin(1, 10);
        let t0 = w.last_acknowledgement();
        std::thread::sleep(Duration::from_millis(2));
        w.status("link down");
        assert_eq!(
            w.last_acknowledgement(),
            t0,
            "a status line is not progress"
        );
        w.acknowledged(5);
        assert!(w.last_acknowledgement() > t0);
    }
}
