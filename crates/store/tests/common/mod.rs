//! What the store's tests share.

use yilian_store::{NewInstance, PartialInfo, Store};

/// The study every instance here belongs to.
pub const STUDY: &str = "1.2.9";

/// Store a small instance `sop` of [`STUDY`] from township A, routed to `readers`; its hash.
pub fn store(s: &Store, sop: &str, priority: u8, readers: &[&str]) -> [u8; 32] {
    let bytes = format!("object {sop}");
    let hash = *blake3::hash(bytes.as_bytes()).as_bytes();
    let mut p = s
        .open_partial(PartialInfo {
            source_site: "township-a".into(),
            study_uid: STUDY.into(),
            sop_uid: sop.into(),
            size: bytes.len() as u64,
        })
        .unwrap();
    p.write(bytes.as_bytes()).unwrap();
    let readers: Vec<String> = readers.iter().map(|r| r.to_string()).collect();
    s.commit(
        p,
        hash,
        &NewInstance {
            sop_uid: sop.into(),
            study_uid: STUDY.into(),
            series_uid: "1.2.9.1".into(),
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            modality: "CT".into(),
            source_site: "township-a".into(),
            source_identity: "township-a-device".into(),
            priority,
        },
        &readers,
    )
    .unwrap();
    hash
}
