//! Study completeness by quiet period, for front doors that have no "study done" (C-STORE).
//!
//! A yilian/1 sender lists a study's instances in a manifest; a DICOM console just stops
//! sending. So for every study a DIMSE device sends, the time of its last stored instance is
//! kept; once the study has been quiet for the configured period, the instances stored so far
//! become the study's manifest, exactly as if the device had sent one. From there everything
//! is the manifest path: the study is complete, connected readers are told (once per
//! manifest size), and readers that connect later learn it with their backlog. An instance
//! that comes after the study was declared complete re-arms the timer; the manifest grows
//! (it never shrinks) and readers are told again.
//!
//! Sans-IO: [`QuietStudies`] is driven with explicit instants.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Studies waiting for their quiet period to pass.
#[derive(Debug, Default)]
pub struct QuietStudies {
    /// study → (source site, last activity).
    waiting: HashMap<String, (String, Instant)>,
}

impl QuietStudies {
    /// An instance of `study` from `site` was stored at `now`.
    pub fn touch(&mut self, site: &str, study: &str, now: Instant) {
        self.waiting
            .insert(study.to_string(), (site.to_string(), now));
    }

    /// Studies quiet for `period` at `now`, as (site, study); they are no longer waiting.
    pub fn due(&mut self, period: Duration, now: Instant) -> Vec<(String, String)> {
        let mut due = Vec::new();
        self.waiting.retain(|study, (site, last)| {
            if now.saturating_duration_since(*last) >= period {
                due.push((site.clone(), study.clone()));
                false
            } else {
                true
            }
        });
        due.sort();
        due
    }

    /// Studies waiting now.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether none is waiting.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_study_is_due_only_after_its_last_instance_is_quiet_for_the_period() {
        let t0 = Instant::now();
        let p = Duration::from_secs(30);
        let mut q = QuietStudies::default();
        q.touch("township-a", "1.2.3", t0);
        q.touch("township-a", "1.2.3", t0 + Duration::from_secs(20));
        q.touch("township-b", "1.2.4", t0 + Duration::from_secs(5));
        assert!(q.due(p, t0 + Duration::from_secs(34)).is_empty());
        assert_eq!(
            q.due(p, t0 + Duration::from_secs(35)),
            vec![("township-b".to_string(), "1.2.4".to_string())]
        );
        assert!(q.due(p, t0 + Duration::from_secs(49)).is_empty());
        assert_eq!(
            q.due(p, t0 + Duration::from_secs(50)),
            vec![("township-a".to_string(), "1.2.3".to_string())]
        );
        assert!(q.is_empty());
        // A late instance re-arms it.
        q.touch("township-a", "1.2.3", t0 + Duration::from_secs(60));
        assert_eq!(q.len(), 1);
        assert_eq!(q.due(p, t0 + Duration::from_secs(90)).len(), 1);
    }
}
