//! The ingest gate: which upload may write, which must wait, which must pause. Sans-IO.
//!
//! Every upload passes the gate before the relay accepts it, whatever its front door. The gate
//! decides four things, as a state machine fed with events (`offer`, `classify`, `data`, `end`,
//! `tick`) that returns [`Action`]s for the driver to carry out; it holds no sockets, no tasks,
//! no clock (time comes in with the events), so it is tested, and model-checked together with
//! the sender's write order (`tests/urgent_first_model.rs`), without any I/O:
//!
//! * **Leases.** One upload at a time writes the partial of a (site, SOP Instance UID); a
//!   second upload of the same instance waits, first come first served, until the first ends
//!   (stored, refused, gone, or expired), then is judged against what is stored. A waiting
//!   upload takes the lease over only from a holder whose connection has been silent for
//!   `takeover_after` ([`Action::Supersede`]): a sender that was killed leaves its uploads
//!   behind until its connection times out, and its rerun must not wait for that. A holder that
//!   receives data (or is held) is never taken over, so two live uploads of one instance can
//!   never take the partial from each other in a loop.
//! * **Urgent first.** While an urgent upload of a site holds its lease, the site's routine
//!   uploads that hold theirs are held ([`Action::Hold`]) and resumed when no urgent one is
//!   left ([`Action::Resume`]) for `resume_after` (so that the gap between two urgent
//!   instances of one study does not let routine data in, only to pause it again). An upload
//!   counts as urgent only once it holds its lease, and
//!   waiting for a lease never holds anything: so an urgent upload can never wait on something
//!   it holds. (A hold inverted would need an urgent upload waiting for a lease held by a held
//!   routine upload; that upload is not held while the urgent one waits, because a waiting
//!   upload is not yet urgent.) The sender's side keeps the same rule: a held upload gives up
//!   its place in the sender's write order (`yilian_client::write_order`).
//! * **Idle uploads.** An upload holding its lease that is not held and has seen no data —
//!   neither its own nor any other upload's on the same connection — for `idle_timeout` is
//!   expired ([`Action::Expire`]): the driver refuses it (`TimedOut`, retryable), which ends it
//!   and frees its lease. (Data on the same connection counts: a sender writes its uploads one
//!   after another, and the ones waiting their turn are not idle.) An urgent upload whose own
//!   data stops for `idle_timeout` stops holding its site (it *lapses*) until its data flows
//!   again, so a stuck or hostile urgent offer cannot keep a township's link to itself.
//! * **Caps.** At most `uploads_per_identity` uploads per identity pass the gate at once; more
//!   are refused ([`GateRefusal::Busy`]), which a sender retries later.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Identifies one upload in the gate (unique for the gate's life).
pub type UploadId = u64;
/// Identifies the connection an upload arrived on.
pub type ConnId = u64;

/// Limits the gate enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GateConfig {
    /// Uploads one identity may have in the gate at once (waiting or writing).
    pub uploads_per_identity: usize,
    /// How long an upload may go without data before it is expired (see the module docs).
    pub idle_timeout: Duration,
    /// How long a site must be without urgent uploads before its routine uploads resume.
    pub resume_after: Duration,
    /// How long a lease holder's connection must be silent before a waiting upload of the same
    /// instance takes the lease over.
    pub takeover_after: Duration,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            uploads_per_identity: 64,
            idle_timeout: Duration::from_secs(120),
            resume_after: Duration::from_millis(500),
            takeover_after: Duration::from_secs(5),
        }
    }
}

/// What the driver must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The upload holds its lease: open its partial and accept it.
    Grant(UploadId),
    /// Ask the upload's sender to pause (an urgent upload of its site has the link).
    Hold(UploadId),
    /// Ask it to continue.
    Resume(UploadId),
    /// It has been idle too long: refuse it (`TimedOut`) and end it.
    Expire(UploadId),
    /// Its connection went silent and another upload of the same instance waits: refuse it
    /// (`Superseded`) and end it; the waiting one gets the lease.
    Supersede(UploadId),
}

impl Action {
    pub fn upload(self) -> UploadId {
        match self {
            Action::Grant(u)
            | Action::Hold(u)
            | Action::Resume(u)
            | Action::Expire(u)
            | Action::Supersede(u) => u,
        }
    }
}

/// Why an offer did not enter the gate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GateRefusal {
    #[error("{identity} already has {limit} uploads in progress at this relay (limits.uploads_per_identity); the others are sent when these finish")]
    Busy { identity: String, limit: usize },
}

/// Whether an upload is urgent, as far as the relay knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Urgency {
    /// Not known yet (no declared facts, header not routed yet): never held, never holds.
    Unknown,
    Routine,
    Urgent,
}

#[derive(Debug)]
enum State {
    /// Waiting for the lease of its (site, SOP).
    Waiting,
    /// Holds the lease.
    Granted {
        held: bool,
        /// Last data of this upload (or its grant, or its resume).
        last_data: Instant,
        /// An urgent upload whose data stopped: it no longer holds its site.
        lapsed: bool,
        /// Expire was sent; waiting for the driver to end it.
        expired: bool,
    },
}

#[derive(Debug)]
struct Upload {
    conn: ConnId,
    identity: String,
    site: String,
    sop: String,
    urgency: Urgency,
    state: State,
}

/// See the module docs.
#[derive(Debug)]
pub struct Gate {
    config: GateConfig,
    uploads: HashMap<UploadId, Upload>,
    /// Per (site, SOP): the lease holder first, then the waiters in arrival order.
    leases: HashMap<(String, String), VecDeque<UploadId>>,
    by_site: HashMap<String, BTreeSet<UploadId>>,
    per_identity: HashMap<String, usize>,
    /// Last data seen on each connection with uploads in the gate.
    conns: HashMap<ConnId, (Instant, usize)>,
    /// Sites whose last urgent upload ended: their routine uploads resume at this time.
    resume_at: HashMap<String, Instant>,
    actions: VecDeque<Action>,
}

impl Gate {
    pub fn new(config: GateConfig) -> Self {
        Gate {
            config,
            uploads: HashMap::new(),
            leases: HashMap::new(),
            by_site: HashMap::new(),
            per_identity: HashMap::new(),
            conns: HashMap::new(),
            resume_at: HashMap::new(),
            actions: VecDeque::new(),
        }
    }

    pub fn config(&self) -> GateConfig {
        self.config
    }

    /// A new upload of `(site, sop)` from `identity` on connection `conn`. It is granted at
    /// once if nobody holds the lease, else it waits ([`Action::Grant`] comes later).
    #[allow(clippy::too_many_arguments)]
    pub fn offer(
        &mut self,
        id: UploadId,
        conn: ConnId,
        identity: &str,
        site: &str,
        sop: &str,
        urgency: Urgency,
        now: Instant,
    ) -> Result<(), GateRefusal> {
        let n = self.per_identity.entry(identity.to_string()).or_default();
        if *n >= self.config.uploads_per_identity {
            return Err(GateRefusal::Busy {
                identity: identity.to_string(),
                limit: self.config.uploads_per_identity,
            });
        }
        *n += 1;
        let c = self.conns.entry(conn).or_insert((now, 0));
        c.1 += 1;
        self.uploads.insert(
            id,
            Upload {
                conn,
                identity: identity.to_string(),
                site: site.to_string(),
                sop: sop.to_string(),
                urgency,
                state: State::Waiting,
            },
        );
        self.by_site.entry(site.to_string()).or_default().insert(id);
        let queue = self
            .leases
            .entry((site.to_string(), sop.to_string()))
            .or_default();
        queue.push_back(id);
        if queue.len() == 1 {
            self.grant(id, now);
        } else {
            let holder = queue[0];
            self.take_over_if_silent(holder, now);
        }
        Ok(())
    }

    /// If `holder` (a lease holder with someone waiting) is not held and its connection has
    /// been silent for `takeover_after`, supersede it.
    fn take_over_if_silent(&mut self, holder: UploadId, now: Instant) {
        let takeover = self.config.takeover_after;
        let Some(u) = self.uploads.get_mut(&holder) else {
            return;
        };
        let conn_last = self.conns.get(&u.conn).map(|c| c.0);
        if let State::Granted {
            held: false,
            last_data,
            expired,
            lapsed,
        } = &mut u.state
        {
            let silent = conn_last.map_or(*last_data, |c| c.max(*last_data));
            if !*expired && now.saturating_duration_since(silent) >= takeover {
                *expired = true;
                self.actions.push_back(Action::Supersede(holder));
                if u.urgency == Urgency::Urgent && !*lapsed {
                    *lapsed = true;
                    let site = u.site.clone();
                    self.update_holds(&site, now);
                }
            }
        }
    }

    /// What the relay learned about the upload's urgency (its header was routed).
    pub fn classify(&mut self, id: UploadId, urgency: Urgency, now: Instant) {
        let Some(u) = self.uploads.get_mut(&id) else {
            return;
        };
        if u.urgency != urgency {
            u.urgency = urgency;
            let site = u.site.clone();
            self.update_holds(&site, now);
        }
    }

    /// Data of the upload arrived.
    pub fn data(&mut self, id: UploadId, now: Instant) {
        let Some(u) = self.uploads.get_mut(&id) else {
            return;
        };
        if let Some(c) = self.conns.get_mut(&u.conn) {
            c.0 = now;
        }
        if let State::Granted {
            last_data, lapsed, ..
        } = &mut u.state
        {
            *last_data = now;
            if *lapsed {
                *lapsed = false;
                let site = u.site.clone();
                self.update_holds(&site, now);
            }
        }
    }

    /// The upload ended (stored, refused, its stream or connection gone, expired). Its lease
    /// passes to the next waiter, its urgency ends.
    pub fn end(&mut self, id: UploadId, now: Instant) {
        let Some(u) = self.uploads.remove(&id) else {
            return;
        };
        if let Some(n) = self.per_identity.get_mut(&u.identity) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_identity.remove(&u.identity);
            }
        }
        if let Some(c) = self.conns.get_mut(&u.conn) {
            c.1 = c.1.saturating_sub(1);
            if c.1 == 0 {
                self.conns.remove(&u.conn);
            }
        }
        if let Some(s) = self.by_site.get_mut(&u.site) {
            s.remove(&id);
            if s.is_empty() {
                self.by_site.remove(&u.site);
            }
        }
        let key = (u.site.clone(), u.sop.clone());
        let mut next = None;
        if let Some(q) = self.leases.get_mut(&key) {
            let was_holder = q.front() == Some(&id);
            q.retain(|x| *x != id);
            if was_holder {
                next = q.front().copied();
            }
            if q.is_empty() {
                self.leases.remove(&key);
            }
        }
        if let Some(n) = next {
            self.grant(n, now);
        }
        self.update_holds(&u.site, now);
    }

    /// Time passed: expire idle uploads, lapse urgent uploads whose data stopped, resume the
    /// sites whose urgent uploads are over.
    pub fn tick(&mut self, now: Instant) {
        let idle = self.config.idle_timeout;
        let mut lapsed_sites: Vec<String> = self
            .resume_at
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(site, _)| site.clone())
            .collect();
        for (id, u) in self.uploads.iter_mut() {
            let conn_last = self.conns.get(&u.conn).map(|c| c.0);
            if let State::Granted {
                held,
                last_data,
                lapsed,
                expired,
            } = &mut u.state
            {
                if *expired || *held {
                    continue;
                }
                let own = now.saturating_duration_since(*last_data);
                let any = conn_last.map_or(own, |c| now.saturating_duration_since(c).min(own));
                if any >= idle {
                    *expired = true;
                    self.actions.push_back(Action::Expire(*id));
                    if u.urgency == Urgency::Urgent && !*lapsed {
                        *lapsed = true;
                        lapsed_sites.push(u.site.clone());
                    }
                } else if u.urgency == Urgency::Urgent && !*lapsed && own >= idle {
                    *lapsed = true;
                    lapsed_sites.push(u.site.clone());
                }
            }
        }
        for site in lapsed_sites {
            self.update_holds(&site, now);
        }
        let contested: Vec<UploadId> = self
            .leases
            .values()
            .filter(|q| q.len() > 1)
            .filter_map(|q| q.front().copied())
            .collect();
        for holder in contested {
            self.take_over_if_silent(holder, now);
        }
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Uploads in the gate (waiting or writing).
    pub fn len(&self) -> usize {
        self.uploads.len()
    }

    pub fn is_empty(&self) -> bool {
        self.uploads.is_empty()
    }

    /// Whether the upload is currently held.
    pub fn is_held(&self, id: UploadId) -> bool {
        matches!(
            self.uploads.get(&id).map(|u| &u.state),
            Some(State::Granted { held: true, .. })
        )
    }

    /// Whether an urgent upload of `site` holds the site's link now.
    pub fn site_has_urgent(&self, site: &str) -> bool {
        self.by_site.get(site).is_some_and(|ids| {
            ids.iter()
                .filter_map(|id| self.uploads.get(id))
                .any(holds_site)
        })
    }

    fn grant(&mut self, id: UploadId, now: Instant) {
        let Some(u) = self.uploads.get_mut(&id) else {
            return;
        };
        u.state = State::Granted {
            held: false,
            last_data: now,
            lapsed: false,
            expired: false,
        };
        let site = u.site.clone();
        self.actions.push_back(Action::Grant(id));
        self.update_holds(&site, now);
    }

    /// Hold the site's routine uploads while an urgent one holds the site; resume them
    /// `resume_after` after the last urgent one ended.
    fn update_holds(&mut self, site: &str, now: Instant) {
        let hold = self.site_has_urgent(site);
        if hold {
            self.resume_at.remove(site);
        } else {
            let any_held = self
                .by_site
                .get(site)
                .is_some_and(|ids| ids.iter().any(|id| self.is_held(*id)));
            match self.resume_at.get(site) {
                Some(at) if *at <= now => {
                    self.resume_at.remove(site);
                }
                Some(_) => return,
                None if any_held && !self.config.resume_after.is_zero() => {
                    self.resume_at
                        .insert(site.to_string(), now + self.config.resume_after);
                    return;
                }
                None => {}
            }
        }
        let Some(ids) = self.by_site.get(site) else {
            return;
        };
        for id in ids {
            let Some(u) = self.uploads.get_mut(id) else {
                continue;
            };
            if let State::Granted {
                held,
                last_data,
                expired: false,
                ..
            } = &mut u.state
            {
                let want = hold && u.urgency == Urgency::Routine;
                if *held != want {
                    *held = want;
                    if want {
                        self.actions.push_back(Action::Hold(*id));
                    } else {
                        // Held time is not idle time.
                        *last_data = now;
                        self.actions.push_back(Action::Resume(*id));
                    }
                }
            }
        }
    }
}

/// An urgent upload that holds its lease, has not lapsed and is not expired.
fn holds_site(u: &Upload) -> bool {
    u.urgency == Urgency::Urgent
        && matches!(
            u.state,
            State::Granted {
                lapsed: false,
                expired: false,
                ..
            }
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "township-a";

    fn gate() -> Gate {
        Gate::new(GateConfig {
            uploads_per_identity: 4,
            idle_timeout: Duration::from_secs(10),
            resume_after: Duration::ZERO,
            takeover_after: Duration::from_secs(3),
        })
    }

    fn drain(g: &mut Gate) -> Vec<Action> {
        std::iter::from_fn(|| g.poll_action()).collect()
    }

    #[test]
    fn a_second_upload_of_one_instance_waits_for_the_first_and_nothing_supersedes() {
        let t = Instant::now();
        let mut g = gate();
        g.offer(1, 1, "dev", A, "1.1", Urgency::Routine, t).unwrap();
        g.offer(2, 2, "dev", A, "1.1", Urgency::Routine, t).unwrap();
        assert_eq!(drain(&mut g), [Action::Grant(1)]);
        g.end(1, t);
        assert_eq!(drain(&mut g), [Action::Grant(2)]);
    }

    /// A sender killed mid-upload leaves its uploads behind until its connection times out;
    /// its rerun takes the lease over once that connection has been silent long enough, but
    /// never from an upload whose connection carries data.
    #[test]
    fn a_waiting_upload_takes_over_only_from_a_silent_connection() {
        let t = Instant::now();
        let s = |n| t + Duration::from_secs(n);
        let mut g = gate();
        g.offer(1, 1, "dev", A, "1.1", Urgency::Routine, t).unwrap();
        g.offer(2, 1, "dev", A, "1.2", Urgency::Routine, t).unwrap();
        drain(&mut g);
        // Connection 1 keeps sending on upload 2: upload 1 is not taken over.
        g.offer(3, 2, "dev", A, "1.1", Urgency::Routine, s(1))
            .unwrap();
        for k in 2..=8 {
            g.data(2, s(k));
            g.tick(s(k));
        }
        assert!(drain(&mut g).is_empty());
        // Connection 1 goes silent (the sender was killed): after 3 s the waiter takes over.
        g.tick(s(10));
        assert!(drain(&mut g).is_empty());
        g.tick(s(11));
        assert_eq!(drain(&mut g), [Action::Supersede(1)]);
        g.end(1, s(11));
        assert_eq!(drain(&mut g), [Action::Grant(3)]);
        // A silent holder is taken over at once when the waiter arrives late.
        g.offer(4, 3, "dev", A, "1.2", Urgency::Routine, s(30))
            .unwrap();
        assert_eq!(drain(&mut g), [Action::Supersede(2)]);
    }

    #[test]
    fn urgent_holds_routine_of_its_site_only_and_resumes_after() {
        let t = Instant::now();
        let mut g = gate();
        g.offer(1, 1, "dev-a", A, "1.1", Urgency::Routine, t)
            .unwrap();
        g.offer(2, 2, "dev-b", "township-b", "2.1", Urgency::Routine, t)
            .unwrap();
        g.offer(3, 1, "dev-a", A, "1.2", Urgency::Unknown, t)
            .unwrap();
        drain(&mut g);
        g.offer(4, 1, "dev-a", A, "1.3", Urgency::Urgent, t)
            .unwrap();
        assert_eq!(drain(&mut g), [Action::Grant(4), Action::Hold(1)]);
        // The unknown one is routed routine: held at once.
        g.classify(3, Urgency::Routine, t);
        assert_eq!(drain(&mut g), [Action::Hold(3)]);
        g.end(4, t);
        let mut got = drain(&mut g);
        got.sort_by_key(|a| a.upload());
        assert_eq!(got, [Action::Resume(1), Action::Resume(3)]);
    }

    /// The inversion this gate is built to avoid: an urgent upload waiting for the lease of an
    /// instance whose routine upload holds it. The waiting urgent upload holds nobody, so the
    /// routine one finishes and the urgent one gets the lease.
    #[test]
    fn an_urgent_upload_waiting_for_a_lease_holds_nobody() {
        let t = Instant::now();
        let mut g = gate();
        g.offer(1, 1, "dev", A, "1.1", Urgency::Routine, t).unwrap();
        g.offer(2, 2, "dev", A, "1.1", Urgency::Urgent, t).unwrap();
        assert_eq!(drain(&mut g), [Action::Grant(1)]);
        assert!(!g.is_held(1));
        assert!(!g.site_has_urgent(A));
        g.end(1, t);
        assert_eq!(drain(&mut g), [Action::Grant(2)]);
        assert!(g.site_has_urgent(A));
    }

    #[test]
    fn idle_uploads_expire_unless_held_or_their_connection_is_busy() {
        let t = Instant::now();
        let s = |n| t + Duration::from_secs(n);
        let mut g = gate();
        g.offer(1, 1, "dev", A, "1.1", Urgency::Routine, t).unwrap();
        g.offer(2, 1, "dev", A, "1.2", Urgency::Routine, t).unwrap();
        g.offer(3, 2, "dev", A, "1.3", Urgency::Routine, t).unwrap();
        drain(&mut g);
        // Upload 1 sends; 2 waits its turn on the same connection; 3's connection is silent.
        for k in 1..=12 {
            g.data(1, s(k));
            g.tick(s(k));
        }
        assert_eq!(drain(&mut g), [Action::Expire(3)]);
        g.end(3, s(12));
        // Upload 1 ends; its connection goes quiet: 2 expires 10 s later.
        g.end(1, s(12));
        g.tick(s(21));
        assert!(drain(&mut g).is_empty());
        g.tick(s(22));
        assert_eq!(drain(&mut g), [Action::Expire(2)]);
    }

    #[test]
    fn a_held_upload_is_not_idle_and_its_clock_restarts_at_resume() {
        let t = Instant::now();
        let s = |n| t + Duration::from_secs(n);
        let mut g = gate();
        g.offer(1, 1, "dev", A, "1.1", Urgency::Routine, t).unwrap();
        g.offer(2, 2, "dev", A, "1.2", Urgency::Urgent, t).unwrap();
        drain(&mut g);
        for k in 1..=30 {
            g.data(2, s(k));
            g.tick(s(k));
        }
        assert!(drain(&mut g).is_empty(), "held, not idle");
        g.end(2, s(30));
        assert_eq!(drain(&mut g), [Action::Resume(1)]);
        g.tick(s(39));
        assert!(drain(&mut g).is_empty());
        g.tick(s(40));
        assert_eq!(drain(&mut g), [Action::Expire(1)]);
    }

    /// An urgent offer that never sends data stops holding its site after the idle timeout,
    /// even while its connection keeps another upload alive.
    #[test]
    fn an_urgent_upload_without_data_lapses_and_releases_its_site() {
        let t = Instant::now();
        let s = |n| t + Duration::from_secs(n);
        let mut g = gate();
        g.offer(1, 1, "dev", A, "1.1", Urgency::Routine, t).unwrap();
        g.offer(2, 2, "dev", A, "1.2", Urgency::Urgent, t).unwrap();
        g.offer(3, 2, "dev", A, "1.3", Urgency::Unknown, t).unwrap();
        drain(&mut g);
        for k in 1..=10 {
            g.data(3, s(k)); // the connection trickles on another upload
            g.tick(s(k));
        }
        assert_eq!(drain(&mut g), [Action::Resume(1)]);
        assert!(!g.site_has_urgent(A));
        // Its data flows again: it holds the site again.
        g.data(2, s(11));
        assert_eq!(drain(&mut g), [Action::Hold(1)]);
    }

    /// Between two urgent instances of one study, routine uploads are not let in only to be
    /// paused again: they resume once the site had no urgent upload for `resume_after`.
    #[test]
    fn routine_uploads_resume_only_after_a_gap_in_urgent_ones() {
        let t = Instant::now();
        let ms = |n| t + Duration::from_millis(n);
        let mut g = Gate::new(GateConfig {
            resume_after: Duration::from_millis(500),
            ..GateConfig::default()
        });
        g.offer(1, 1, "dev", A, "1.1", Urgency::Routine, t).unwrap();
        g.offer(2, 1, "dev", A, "1.2", Urgency::Urgent, t).unwrap();
        drain(&mut g);
        assert!(g.is_held(1));
        g.end(2, ms(100));
        g.offer(3, 1, "dev", A, "1.3", Urgency::Urgent, ms(200))
            .unwrap();
        g.tick(ms(700));
        assert_eq!(drain(&mut g), [Action::Grant(3)], "no resume in the gap");
        g.end(3, ms(800));
        g.tick(ms(1200));
        assert!(drain(&mut g).is_empty());
        g.tick(ms(1300));
        assert_eq!(drain(&mut g), [Action::Resume(1)]);
    }

    #[test]
    fn uploads_per_identity_are_capped() {
        let t = Instant::now();
        let mut g = gate();
        for i in 0..4 {
            g.offer(i, 1, "dev", A, &format!("1.{i}"), Urgency::Routine, t)
                .unwrap();
        }
        let e = g
            .offer(9, 1, "dev", A, "1.9", Urgency::Routine, t)
            .unwrap_err();
        assert!(e.to_string().contains("uploads_per_identity"), "{e}");
        g.offer(9, 2, "other", A, "1.9", Urgency::Routine, t)
            .expect("another identity is not affected");
        g.end(0, t);
        g.offer(10, 1, "dev", A, "1.10", Urgency::Routine, t)
            .expect("room again");
    }
}
