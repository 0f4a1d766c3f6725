//! Deliveries a reader could not store: its own failures (disk full, a folder not writable or a
//! file in the way, a hash mismatch) and the ones the relay reports in its backlog notice. A
//! later success clears an instance. Each failure is logged once, not on every retry.

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use tracing::{info, warn};
use yilian_proto::{InstanceRef, NotDelivered};

/// Who saw the failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureSide {
    /// This reader (writing, verifying).
    Reader,
    /// The relay, in its backlog notice (e.g. it could not read its copy).
    Relay,
}

/// One instance this reader does not hold, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryFailure {
    pub study_uid: String,
    pub sop_uid: String,
    /// In words for a radiologist or an administrator, e.g. "cannot write
    /// received/1.2/1.2.3.dcm: No space left on device".
    pub reason: String,
    pub side: FailureSide,
}

#[derive(Default)]
struct Inner {
    failed: BTreeMap<String, DeliveryFailure>,
    /// SOP UIDs stored in this run (a relay report about one of them is out of date).
    stored: BTreeSet<String>,
    /// Failures the relay counted but did not list (its notice is capped).
    unlisted: u64,
}

/// The failures of one `read` run.
#[derive(Default)]
pub(crate) struct Failures {
    inner: Mutex<Inner>,
}

impl Failures {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This reader could not store `instance`. Logged when it is new (or its reason changed):
    /// the relay tries again, and the same failure is not repeated in the log.
    pub(crate) fn reader_failed(&self, instance: &InstanceRef, reason: &str) {
        let mut g = self.lock();
        g.stored.remove(&instance.sop_uid);
        let f = DeliveryFailure {
            study_uid: instance.study_uid.clone(),
            sop_uid: instance.sop_uid.clone(),
            reason: reason.to_string(),
            side: FailureSide::Reader,
        };
        if g.failed.get(&instance.sop_uid) != Some(&f) {
            warn!(
                study_uid = %f.study_uid, sop_uid = %f.sop_uid,
                "could not store an instance (the relay keeps it and sends it again): {reason}"
            );
            g.failed.insert(instance.sop_uid.clone(), f);
        }
    }

    /// `instance` is stored: whatever failed before no longer counts.
    pub(crate) fn stored(&self, instance: &InstanceRef) {
        let mut g = self.lock();
        if g.failed.remove(&instance.sop_uid).is_some() {
            info!(study_uid = %instance.study_uid, sop_uid = %instance.sop_uid, "stored after an earlier failure");
        }
        g.stored.insert(instance.sop_uid.clone());
    }

    /// The relay's backlog notice: instances it could not deliver in this session. Our own
    /// reason wins where we have one (it is more precise); instances stored meanwhile are
    /// left out.
    pub(crate) fn relay_reported(&self, listed: &[NotDelivered], total: u64) {
        let mut g = self.lock();
        let mut counted = 0u64;
        for nd in listed {
            let (study, sop) = (&nd.instance.study_uid, &nd.instance.sop_uid);
            counted += 1;
            // UIDs from the wire are printed, never used as paths; still, show only sane ones.
            if !yilian_proto::valid_uid(study) || !yilian_proto::valid_uid(sop) {
                g.unlisted += 1;
                continue;
            }
            if g.stored.contains(sop) || g.failed.contains_key(sop) {
                continue;
            }
            warn!(study_uid = %study, sop_uid = %sop, attempts = nd.attempts, "the relay could not deliver an instance: {}", nd.reason);
            g.failed.insert(
                sop.clone(),
                DeliveryFailure {
                    study_uid: study.clone(),
                    sop_uid: sop.clone(),
                    reason: format!("the relay could not send it: {}", nd.reason),
                    side: FailureSide::Relay,
                },
            );
        }
        g.unlisted += total.saturating_sub(counted);
    }

    /// What is still failed, in SOP UID order, and how many more the relay did not list.
    pub(crate) fn outstanding(&self) -> (Vec<DeliveryFailure>, u64) {
        let g = self.lock();
        (g.failed.values().cloned().collect(), g.unlisted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(sop: &str) -> InstanceRef {
        InstanceRef {
            study_uid: "1.2".into(),
            sop_uid: sop.into(),
        }
    }

    #[test]
    fn a_later_success_clears_a_failure() {
        let f = Failures::default();
        f.reader_failed(
            &inst("1.2.1"),
            "cannot create received/1.2: a file is in the way",
        );
        f.reader_failed(&inst("1.2.2"), "no space left on device");
        f.stored(&inst("1.2.1"));
        let (left, unlisted) = f.outstanding();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].sop_uid, "1.2.2");
        assert_eq!(left[0].side, FailureSide::Reader);
        assert_eq!(unlisted, 0);
    }

    #[test]
    fn relay_reports_add_what_the_reader_does_not_know() {
        let f = Failures::default();
        f.reader_failed(&inst("1.2.1"), "hash mismatch");
        f.stored(&inst("1.2.3"));
        let nd = |sop: &str| NotDelivered::new(inst(sop), 3, "cannot read its copy");
        f.relay_reported(&[nd("1.2.1"), nd("1.2.2"), nd("1.2.3"), nd("../etc")], 10);
        let (left, unlisted) = f.outstanding();
        let got: Vec<(&str, &str)> = left
            .iter()
            .map(|d| (d.sop_uid.as_str(), d.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("1.2.1", "hash mismatch"),
                ("1.2.2", "the relay could not send it: cannot read its copy")
            ]
        );
        // 6 not listed by the relay, plus one whose UID was not valid.
        assert_eq!(unlisted, 7);
    }
}
