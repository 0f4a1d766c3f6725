//! UIDs of a session's study, series and objects, derived from the session's id so that the
//! same session recorded again (after a relay restart) names the same objects.

use crate::wire::SessionId;

/// `2.25.` and the decimal of 128 bits (PS3.5 B.2), made from the session and a purpose.
fn uid(session: SessionId, purpose: &str, n: u64) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"yilian-ecg uid\0");
    h.update(&session.0);
    h.update(purpose.as_bytes());
    h.update(&n.to_be_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d.as_bytes()[..16]);
    format!("2.25.{}", u128::from_be_bytes(b))
}

/// The study the session's recordings belong to, unless the cart named one.
pub fn study(session: SessionId) -> String {
    uid(session, "study", 0)
}

/// The series holding every recording of the session.
pub fn series(session: SessionId) -> String {
    uid(session, "series", 0)
}

/// The recording that starts at `first_sample`.
pub fn instance(session: SessionId, first_sample: u64) -> String {
    uid(session, "instance", first_sample)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_valid_stable_and_distinct() {
        let s = SessionId([3; 16]);
        let all = [study(s), series(s), instance(s, 0), instance(s, 5000)];
        for u in &all {
            assert!(yilian_proto::valid_uid(u), "{u}");
        }
        assert_eq!(instance(s, 5000), instance(s, 5000));
        let set: std::collections::BTreeSet<_> = all.iter().collect();
        assert_eq!(set.len(), 4);
        assert_ne!(study(s), study(SessionId([4; 16])));
    }
}
