//! Study manifests: `send` tells the relay which instances make each study.
//!
//! The relay records the manifest and, once every instance it lists is stored, tells the
//! study's readers that it is complete. The manifest goes out with the first offers, not after
//! the last upload: the relay knows from the start what it waits for, and the run does not end
//! with one more round trip (0.3 s on a 300 ms township link). The relay's answer lists what
//! it was missing then; the study's final status is that list less what this run had
//! acknowledged since (an acknowledgement means committed at the relay).

use std::collections::{BTreeMap, HashSet};
use yilian_proto::{encode_frame, FrameDecoder, Manifest, ManifestReply, Request};
use yilian_transport::priority;

/// The instances of each study, by Study Instance UID.
pub(crate) type Studies = BTreeMap<String, Vec<String>>;

/// The relay's answer to each study's manifest, or why it was not sent.
pub(crate) type Answers = BTreeMap<String, Result<ManifestReply, String>>;

/// Send every study's manifest on `conn`, one stream each, concurrently.
pub(crate) async fn send_all(conn: quinn::Connection, studies: Studies) -> Answers {
    let mut sends = tokio::task::JoinSet::new();
    for (study_uid, sops) in studies {
        let conn = conn.clone();
        sends.spawn(async move {
            let r = send_one(&conn, &study_uid, &sops).await;
            (study_uid, r)
        });
    }
    let mut answers = Answers::new();
    while let Some(done) = sends.join_next().await {
        if let Ok((study_uid, r)) = done {
            answers.insert(study_uid, r);
        }
    }
    answers
}

/// Send one manifest and read the relay's answer.
pub(crate) async fn send_one(
    conn: &quinn::Connection,
    study_uid: &str,
    sops: &[String],
) -> Result<ManifestReply, String> {
    let (mut s, mut r) = conn.open_bi().await.map_err(|e| e.to_string())?;
    // A small control message: it goes before any instance data queued on the connection.
    s.set_priority(priority::OFFER).map_err(|e| e.to_string())?;
    let m = Request::Manifest(Manifest {
        study_uid: study_uid.to_string(),
        sop_uids: sops.to_vec(),
    });
    s.write_chunk(encode_frame(&m))
        .await
        .map_err(|e| e.to_string())?;
    let _ = s.finish();
    let bytes = r.read_to_end(64 * 1024).await.map_err(|e| e.to_string())?;
    let mut d = FrameDecoder::new();
    d.push(bytes.into());
    d.next_frame::<ManifestReply>("manifest reply")
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "no answer".to_string())
}

/// The study's status for the report, from the relay's `answer` and the instances this run
/// had acknowledged since it was given.
pub(crate) fn status(
    answer: &Result<ManifestReply, String>,
    acknowledged: &HashSet<&str>,
) -> String {
    match answer {
        Ok(ManifestReply::Complete) => "complete".into(),
        Ok(ManifestReply::Pending { missing }) => {
            let still = missing
                .iter()
                .filter(|s| !acknowledged.contains(s.as_str()))
                .count();
            if still == 0 {
                "complete".into()
            } else {
                format!("pending: {still} missing")
            }
        }
        Ok(ManifestReply::Refused(r)) => format!("manifest refused: {r}"),
        Err(e) => format!("manifest not sent: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_study_is_complete_once_what_the_relay_missed_was_acknowledged() {
        let answer = Ok(ManifestReply::Pending {
            missing: vec!["1.2.1".into(), "1.2.2".into()],
        });
        let none = HashSet::new();
        assert_eq!(status(&answer, &none), "pending: 2 missing");
        let one: HashSet<&str> = ["1.2.1"].into();
        assert_eq!(status(&answer, &one), "pending: 1 missing");
        let both: HashSet<&str> = ["1.2.1", "1.2.2", "1.2.9"].into();
        assert_eq!(status(&answer, &both), "complete");
        assert_eq!(status(&Ok(ManifestReply::Complete), &none), "complete");
        assert_eq!(
            status(&Err("link down".into()), &both),
            "manifest not sent: link down"
        );
    }
}
