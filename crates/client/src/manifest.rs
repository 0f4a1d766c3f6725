//! Study manifests: `send` tells the relay which instances make each study.
//!
//! The relay records the manifest and, once every instance it lists is stored, tells the
//! study's readers that it is complete. The manifest goes out with the first offers, not after
//! the last upload: the relay knows from the start what it waits for, and the run does not end
//! with one more round trip (0.3 s on a 300 ms township link). The relay's answer lists what
//! it was missing then; the study's final status is that list less what this run had
//! acknowledged since (an acknowledgement means committed at the relay).
//!
//! A study of thousands of instances does not fit one frame: the manifest goes in pieces and
//! the relay's answer comes back in pieces (`yilian_proto::encode_manifest`). A manifest that
//! could not be delivered, or was refused, fails the run: without it the study's readers are
//! never told it is complete.

use std::collections::{BTreeMap, HashSet};
use yilian_proto::{
    encode_manifest, FrameDecoder, ManifestAnswer, ManifestOutcome, ManifestReply, RefuseCode,
};
use yilian_transport::priority;

use crate::connect::{self, ClientConfig, Handover};
use crate::{ClientError, Progress, StudyReport};

/// The instances of each study, by Study Instance UID.
pub(crate) type Studies = BTreeMap<String, Vec<String>>;

/// The relay's answer to each study's manifest, or why it was not sent.
pub(crate) type Answers = BTreeMap<String, Result<ManifestOutcome, String>>;

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

/// Send one manifest (in pieces) and read the relay's answer (in pieces).
pub(crate) async fn send_one(
    conn: &quinn::Connection,
    study_uid: &str,
    sops: &[String],
) -> Result<ManifestOutcome, String> {
    let (mut s, mut r) = conn.open_bi().await.map_err(|e| e.to_string())?;
    // Control messages: they go before any instance data queued on the connection.
    s.set_priority(priority::OFFER).map_err(|e| e.to_string())?;
    for frame in encode_manifest(study_uid, sops) {
        s.write_chunk(frame).await.map_err(|e| e.to_string())?;
    }
    // Our side is complete; a relay that already answered may have stopped reading.
    let _ = s.finish();
    let mut d = FrameDecoder::new();
    let mut answer = ManifestAnswer::default();
    loop {
        while let Some(reply) = d
            .next_frame::<ManifestReply>("manifest reply")
            .map_err(|e| e.to_string())?
        {
            if let Some(outcome) = answer.push(reply).map_err(|e| e.to_string())? {
                return Ok(outcome);
            }
        }
        match r.read_chunk(64 * 1024, true).await {
            Ok(Some(c)) => d.push(c.bytes),
            Ok(None) => return Err("the relay ended its answer early".into()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Send the manifests of `studies` (Study Instance UID → its SOP Instance UIDs) on their own,
/// without uploading anything: for a sender whose instances went earlier, or go separately
/// (the township gateway: it forwards instances as they arrive and a study's manifest once
/// the study went quiet). Connects like `send` (retrying an unreachable relay until
/// `give_up_after`); `Err` only if the relay could not be reached or refused us. Each
/// study's report says whether its manifest was delivered (`manifest_delivered`) and, when the
/// relay refused it, its code (`refused`); a manifest not delivered for a link failure can be
/// sent again (manifests add up at the relay: sending one twice changes nothing).
pub async fn send_manifests(
    client: &ClientConfig,
    studies: &BTreeMap<String, Vec<String>>,
    progress: &dyn Progress,
) -> Result<Vec<StudyReport>, ClientError> {
    if studies.is_empty() {
        return Ok(Vec::new());
    }
    let endpoint = connect::endpoint(client)?;
    let conn = connect::connect(&endpoint, client, progress, Handover::Confirmed).await?;
    let mut answers = send_all(conn.clone(), studies.clone()).await;
    if let Some(reason) = conn.close_reason().filter(connect::refused_for_good) {
        return Err(ClientError::Refused(yilian_transport::explain(&reason)));
    }
    connect::close(&endpoint, &conn, b"done").await;
    let none = HashSet::new();
    Ok(studies
        .iter()
        .map(|(study_uid, sops)| {
            let answer = answers
                .remove(study_uid)
                .unwrap_or_else(|| Err("no answer from the relay".into()));
            StudyReport {
                study_uid: study_uid.clone(),
                instances: sops.len(),
                status: status(&answer, &none),
                manifest_delivered: delivered(&answer),
                refused: refused(&answer),
            }
        })
        .collect())
}

/// The relay's code when it refused the manifest.
pub(crate) fn refused(answer: &Result<ManifestOutcome, String>) -> Option<RefuseCode> {
    match answer {
        Ok(ManifestOutcome::Refused(r)) => Some(r.code),
        _ => None,
    }
}

/// Whether the relay received and accepted the manifest.
pub(crate) fn delivered(answer: &Result<ManifestOutcome, String>) -> bool {
    matches!(
        answer,
        Ok(ManifestOutcome::Complete { .. } | ManifestOutcome::Pending { .. })
    )
}

/// The study's status for the report, from the relay's `answer` and the instances this run
/// had acknowledged since it was given.
pub(crate) fn status(
    answer: &Result<ManifestOutcome, String>,
    acknowledged: &HashSet<&str>,
) -> String {
    match answer {
        Ok(ManifestOutcome::Complete { .. }) => "complete".into(),
        Ok(ManifestOutcome::Pending { missing }) => {
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
        Ok(ManifestOutcome::Refused(r)) => format!("manifest refused: {r}"),
        Err(e) => format!("manifest not sent: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_study_is_complete_once_what_the_relay_missed_was_acknowledged() {
        let answer = Ok(ManifestOutcome::Pending {
            missing: vec!["1.2.1".into(), "1.2.2".into()],
        });
        let none = HashSet::new();
        assert_eq!(status(&answer, &none), "pending: 2 missing");
        let one: HashSet<&str> = ["1.2.1"].into();
        assert_eq!(status(&answer, &one), "pending: 1 missing");
        let both: HashSet<&str> = ["1.2.1", "1.2.2", "1.2.9"].into();
        assert_eq!(status(&answer, &both), "complete");
        assert_eq!(
            status(&Ok(ManifestOutcome::Complete { instances: 2 }), &none),
            "complete"
        );
        assert!(delivered(&answer));
        assert!(!delivered(&Err("link down".into())));
        assert_eq!(
            status(&Err("link down".into()), &both),
            "manifest not sent: link down"
        );
    }
}
