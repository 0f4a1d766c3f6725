//! C-FIND for reading workstations: the catalog, restricted to what is routed to the
//! workstation's reader.
//!
//! The calling AE title is an `[[ae]]` of the topology acting as a **reader** identity; the
//! query runs on the store's catalog (`Store::find_limited`) among the instances in that
//! reader's outbox — delivered or not — and nothing else, so a workstation sees exactly the
//! studies routed to its department. Query values are decoded with the request's Specific
//! Character Set; answers are UTF-8 (`ISO_IR 192`) when any value is not ASCII. Each answer
//! goes out as it is encoded (pending responses); more matches than the limit end with "out
//! of resources" after the first ones, telling the user to narrow the query. Every query is
//! audited (keys, never values).

use bytes::Bytes;
use std::sync::Arc;
use tracing::{info, warn};
use yilian_dicom::identifier::{self, Element};
use yilian_dicom::{TextDecoder, TextVr};
use yilian_dimse::scp::{FindOutcome, FindRequest, Interrupted, Responder};
use yilian_dimse::{transfer_syntaxes, Status};
use yilian_ingest::Ingest;
use yilian_route::{Role, Topology};
use yilian_store::{AuditAction, AuditEvent, Key, Query, QueryLevel};

/// Query/Retrieve Level (0008,0052).
const LEVEL: (u16, u16) = (0x0008, 0x0052);
/// Specific Character Set (0008,0005).
const CHARSET: (u16, u16) = (0x0008, 0x0005);
/// Retrieve AE Title (0008,0054).
const RETRIEVE_AE: (u16, u16) = (0x0008, 0x0054);

/// The reader identity a workstation's AE title acts as, or why it may not query.
pub(crate) fn reader_of(topology: &Topology, calling_ae: &str) -> Result<(String, String), String> {
    let ae = topology
        .ae(calling_ae)
        .ok_or_else(|| format!("AE {calling_ae:?} is not declared"))?;
    let id = topology
        .identity(&ae.identity)
        .ok_or_else(|| format!("AE {calling_ae:?} acts as an undeclared identity"))?;
    if id.role != Role::Reader {
        return Err(format!(
            "AE {calling_ae:?} acts as {}, a {} identity: only a reader's workstation may query or retrieve",
            id.name, id.role
        ));
    }
    Ok((id.name.clone(), id.site.clone()))
}

/// The VR of a query key (and of the other attributes a query carries).
pub(crate) fn vr_of(tag: (u16, u16)) -> Option<[u8; 2]> {
    if tag == LEVEL || tag == CHARSET {
        return Some(*b"CS");
    }
    if tag == RETRIEVE_AE {
        return Some(*b"AE");
    }
    if tag == (0x0008, 0x0058) {
        return Some(*b"UI");
    }
    Key::from_tag(tag.0, tag.1).map(Key::vr)
}

fn text_vr(vr: [u8; 2]) -> TextVr {
    match &vr {
        b"PN" => TextVr::PN,
        b"SH" => TextVr::SH,
        _ => TextVr::LO,
    }
}

/// A parsed C-FIND identifier.
pub(crate) struct ParsedQuery {
    pub level: QueryLevel,
    pub query: Query,
    /// Keys asked for, in request order (for the audit: names, never values).
    pub keys: Vec<Key>,
    /// The values given, decoded (C-MOVE / C-GET read the unique keys from here).
    pub values: Vec<(Key, String)>,
}

/// Parse a Q/R identifier into the store's query.
pub(crate) fn parse_query(bytes: &[u8], transfer_syntax: &str) -> Result<ParsedQuery, String> {
    let explicit = transfer_syntax != transfer_syntaxes::IMPLICIT_VR_LITTLE_ENDIAN;
    let elements = identifier::parse(bytes, explicit, vr_of).map_err(|e| e.to_string())?;
    let charset = elements
        .iter()
        .find(|e| e.tag == CHARSET)
        .map(|e| String::from_utf8_lossy(identifier::text(&e.value)).into_owned());
    let decoder = TextDecoder::new(charset.as_deref(), None);
    let mut level = None;
    let mut query = Query::new();
    let mut keys = Vec::new();
    let mut values = Vec::new();
    for el in &elements {
        if el.tag == LEVEL {
            let code = String::from_utf8_lossy(identifier::text(&el.value)).into_owned();
            level = Some(QueryLevel::from_code(&code).ok_or_else(|| {
                format!("Query/Retrieve Level (0008,0052) {code:?} is not PATIENT, STUDY, SERIES or IMAGE")
            })?);
            continue;
        }
        let Some(key) = Key::from_tag(el.tag.0, el.tag.1) else {
            continue; // not a key this relay matches on: not returned (PS3.4 C.4.1.2.3.1)
        };
        keys.push(key);
        let value = match key.vr() {
            [b'U', b'S'] => match el.value.as_slice() {
                [a, b, ..] => u16::from_le_bytes([*a, *b]).to_string(),
                _ => String::new(),
            },
            vr @ ([b'P', b'N'] | [b'L', b'O'] | [b'S', b'H']) => {
                decoder
                    .decode(identifier::text(&el.value), text_vr(vr))
                    .text
            }
            _ => String::from_utf8_lossy(identifier::text(&el.value)).into_owned(),
        };
        if !value.is_empty() {
            values.push((key, value.clone()));
        }
        query = if value.is_empty() {
            query.returning(key)
        } else {
            query.with(key, value)
        };
    }
    let level = level.ok_or("the identifier has no Query/Retrieve Level (0008,0052)")?;
    Ok(ParsedQuery {
        level,
        query,
        keys,
        values,
    })
}

/// Encode one match as an answer identifier.
fn encode_match(
    m: &yilian_store::Match,
    level: QueryLevel,
    our_ae: &str,
    explicit: bool,
) -> Vec<u8> {
    let mut elements = Vec::new();
    let mut utf8 = false;
    for (key, value) in m.values() {
        let vr = key.vr();
        let bytes = if vr == *b"US" {
            match value.parse::<u16>() {
                Ok(n) => n.to_le_bytes().to_vec(),
                Err(_) => Vec::new(),
            }
        } else {
            utf8 |= !value.is_ascii();
            value.as_bytes().to_vec()
        };
        let (g, e) = key.tag();
        elements.push(Element {
            tag: (g, e),
            vr: Some(vr),
            value: bytes,
        });
    }
    elements.push(Element {
        tag: LEVEL,
        vr: Some(*b"CS"),
        value: level_code(level).as_bytes().to_vec(),
    });
    elements.push(Element {
        tag: RETRIEVE_AE,
        vr: Some(*b"AE"),
        value: our_ae.as_bytes().to_vec(),
    });
    if utf8 {
        elements.push(Element {
            tag: CHARSET,
            vr: Some(*b"CS"),
            value: b"ISO_IR 192".to_vec(),
        });
    }
    identifier::encode(&elements, explicit)
}

pub(crate) fn level_code(level: QueryLevel) -> &'static str {
    match level {
        QueryLevel::Patient => "PATIENT",
        QueryLevel::Study => "STUDY",
        QueryLevel::Series => "SERIES",
        QueryLevel::Image => "IMAGE",
    }
}

/// Serve one C-FIND.
pub(crate) async fn find<R: Responder>(
    ingest: &Arc<Ingest>,
    our_ae: &str,
    request: &FindRequest,
    responder: &mut R,
) -> FindOutcome {
    let topology = ingest.topology();
    let (reader, site) = match reader_of(&topology, &request.calling_ae) {
        Ok(r) => r,
        Err(why) => {
            warn!(calling_ae = %request.calling_ae, "C-FIND refused: {why}");
            return FindOutcome::with(Status::NOT_AUTHORIZED, why);
        }
    };
    let parsed = match parse_query(&request.identifier, &request.transfer_syntax) {
        Ok(p) => p,
        Err(why) => {
            return FindOutcome::with(Status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS, why);
        }
    };
    let store = ingest.store.clone();
    let (r, level, query) = (reader.clone(), parsed.level, parsed.query);
    let found = tokio::task::spawn_blocking(move || store.find_limited(&r, level, &query)).await;
    let found = match found {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => {
            let status = match e {
                yilian_store::StoreError::BadQuery(_) => Status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                _ => Status::UNABLE_TO_PROCESS,
            };
            return FindOutcome::with(status, e.to_string());
        }
        Err(e) => return FindOutcome::with(Status::UNABLE_TO_PROCESS, e.to_string()),
    };
    let explicit = request.transfer_syntax != transfer_syntaxes::IMPLICIT_VR_LITTLE_ENDIAN;
    let n = found.matches.len();
    let keys: Vec<String> = parsed.keys.iter().map(|k| format!("{k:?}")).collect();
    ingest
        .audit(AuditEvent {
            actor: format!("{reader} (AE {})", request.calling_ae.trim()),
            site: Some(site),
            action: AuditAction::Query,
            study_uid: None,
            sop_uid: None,
            outcome: "ok".into(),
            detail: Some(format!(
                "C-FIND {} level, keys {}, {n} matches{}",
                level_code(level),
                keys.join(","),
                if found.truncated {
                    " (limit reached)"
                } else {
                    ""
                }
            )),
        })
        .await;
    info!(%reader, calling_ae = %request.calling_ae, level = level_code(level), matches = n, "C-FIND");
    for m in &found.matches {
        let answer = Bytes::from(encode_match(m, level, our_ae, explicit));
        if let Err(Interrupted::Cancelled | Interrupted::AssociationEnded) =
            responder.pending(answer).await
        {
            // The driver answers a cancel (or reports the end); nothing more to send.
            return FindOutcome::success();
        }
    }
    if found.truncated {
        return FindOutcome::with(
            Status::OUT_OF_RESOURCES,
            format!("more than {n} matches: narrow the query"),
        );
    }
    FindOutcome::success()
}
