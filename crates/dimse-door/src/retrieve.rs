//! C-GET and C-MOVE for reading workstations: the instances a retrieval names, among those
//! routed to the workstation's reader, sent as stored (transfer syntax unchanged).
//!
//! * The calling AE must act as a reader (`find::reader_of`); the identifier's unique keys at
//!   its level (Patient IDs, Study / Series / SOP Instance UIDs, lists allowed) select the
//!   instances with `Store::instances_for`, which only ever returns what is routed to that
//!   reader.
//! * **C-GET** sends them back on the same association (the driver's `GetSession`), one
//!   C-STORE sub-operation each.
//! * **C-MOVE** sends them to the Move Destination, which must be an `[[ae]]` of the topology
//!   with host and port **acting as the same reader**: a workstation may move its studies to
//!   itself or to another workstation of its reader, never hand them to an identity the
//!   routing did not choose. Sub-operations carry the Move Originator.
//! * Each retrieval is audited: who, what level, how many instances, how it ended.

use std::sync::Arc;
use tokio::io::AsyncSeekExt;
use tracing::{info, warn};
use yilian_dimse::scp::{
    GetRequest, GetSession, MoveProgress, MoveRequest, NotSent, RetrieveOutcome, SubOperation,
};
use yilian_dimse::scu::{storage_contexts, ScuConfig, StoreScu};
use yilian_dimse::{part10, tcp, Status};
use yilian_ingest::Ingest;
use yilian_store::{AuditAction, AuditEvent, Key, QueryLevel};

use crate::find::{level_code, parse_query, reader_of};

/// One instance to send: where its file is and what the file meta says.
struct Item {
    sop_instance: String,
    path: std::path::PathBuf,
    meta: Option<part10::FileMeta>,
}

/// Who retrieves and what.
struct Selection {
    reader: String,
    site: String,
    level: QueryLevel,
    items: Vec<Item>,
}

/// The unique key of each level.
fn unique_key(level: QueryLevel) -> Key {
    match level {
        QueryLevel::Patient => Key::PatientId,
        QueryLevel::Study => Key::StudyInstanceUid,
        QueryLevel::Series => Key::SeriesInstanceUid,
        QueryLevel::Image => Key::SopInstanceUid,
    }
}

async fn select(
    ingest: &Arc<Ingest>,
    calling_ae: &str,
    identifier: &[u8],
    transfer_syntax: &str,
) -> Result<Selection, RetrieveOutcome> {
    let topology = ingest.topology();
    let (reader, site) = reader_of(&topology, calling_ae)
        .map_err(|why| RetrieveOutcome::with(Status::NOT_AUTHORIZED, why))?;
    let parsed = parse_query(identifier, transfer_syntax)
        .map_err(|why| RetrieveOutcome::with(Status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS, why))?;
    let key = unique_key(parsed.level);
    let keys: Vec<String> = parsed
        .values
        .iter()
        .filter(|(k, _)| *k == key)
        .flat_map(|(_, v)| {
            v.split('\\')
                .map(str::trim)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|v| !v.is_empty())
        .collect();
    if keys.is_empty() {
        return Err(RetrieveOutcome::with(
            Status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
            format!(
                "a {} level retrieval needs ({:04X},{:04X}) with the UIDs (or IDs) to retrieve",
                level_code(parsed.level),
                key.tag().0,
                key.tag().1
            ),
        ));
    }
    let store = ingest.store.clone();
    let (r, level) = (reader.clone(), parsed.level);
    let records = tokio::task::spawn_blocking(move || store.instances_for(&r, level, &keys))
        .await
        .map_err(|e| RetrieveOutcome::with(Status::UNABLE_TO_PROCESS, e.to_string()))?
        .map_err(|e| RetrieveOutcome::with(Status::UNABLE_TO_PROCESS, e.to_string()))?;
    let store = ingest.store.clone();
    let items = tokio::task::spawn_blocking(move || {
        records
            .into_iter()
            .map(|rec| {
                let path = store.object_path(&rec.hash);
                let meta = part10::read_file_meta(&path).ok();
                Item {
                    sop_instance: rec.sop_uid,
                    path,
                    meta,
                }
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| RetrieveOutcome::with(Status::UNABLE_TO_PROCESS, e.to_string()))?;
    Ok(Selection {
        reader,
        site,
        level,
        items,
    })
}

/// An item's file meta and its data set (the file positioned after its meta), or why it
/// cannot be sent.
async fn open_item(item: &Item) -> Result<(&part10::FileMeta, tokio::fs::File), NotSent> {
    let meta = item
        .meta
        .as_ref()
        .ok_or_else(|| NotSent::Unreadable("the stored copy cannot be read".into()))?;
    let opened = async {
        let mut f = tokio::fs::File::open(&item.path).await?;
        f.seek(std::io::SeekFrom::Start(meta.data_set_offset))
            .await?;
        Ok::<_, std::io::Error>(f)
    };
    let file = opened
        .await
        .map_err(|e| NotSent::Unreadable(e.to_string()))?;
    Ok((meta, file))
}

async fn audit(ingest: &Ingest, calling_ae: &str, sel: &Selection, what: String, outcome: &str) {
    ingest
        .audit(AuditEvent {
            actor: format!("{} (AE {})", sel.reader, calling_ae.trim()),
            site: Some(sel.site.clone()),
            action: AuditAction::Retrieve,
            study_uid: None,
            sop_uid: None,
            outcome: outcome.to_string(),
            detail: Some(what),
        })
        .await;
}

/// Serve one C-GET.
pub(crate) async fn get<S: GetSession>(
    ingest: &Arc<Ingest>,
    request: &GetRequest,
    session: &mut S,
) -> RetrieveOutcome {
    let sel = match select(
        ingest,
        &request.calling_ae,
        &request.identifier,
        &request.transfer_syntax,
    )
    .await
    {
        Ok(s) => s,
        Err(o) => return o,
    };
    session.expect(sel.items.len());
    let (mut sent, mut failed) = (0usize, 0usize);
    for item in &sel.items {
        let (meta, data) = match open_item(item).await {
            Ok(x) => x,
            Err(why) => {
                failed += 1;
                if session.skip(&item.sop_instance, why).await.is_err() {
                    break;
                }
                continue;
            }
        };
        match session
            .store(
                &meta.sop_class,
                &item.sop_instance,
                &meta.transfer_syntax,
                data,
            )
            .await
        {
            Ok(SubOperation::Answered(o)) if o.status.is_done() => sent += 1,
            Ok(_) => failed += 1,
            Err(_) => break,
        }
    }
    let what = format!(
        "C-GET {} level: {} instances, {sent} sent, {failed} failed",
        level_code(sel.level),
        sel.items.len()
    );
    info!(reader = %sel.reader, calling_ae = %request.calling_ae, "{what}");
    audit(ingest, &request.calling_ae, &sel, what, "ok").await;
    RetrieveOutcome::success()
}

/// A C-MOVE to a destination the workstation may not use: logged, audited, answered.
async fn refuse_move(
    ingest: &Ingest,
    request: &MoveRequest,
    sel: &Selection,
    why: String,
) -> RetrieveOutcome {
    warn!(calling_ae = %request.calling_ae, "C-MOVE refused: {why}");
    audit(ingest, &request.calling_ae, sel, why.clone(), "refused").await;
    RetrieveOutcome::with(Status::MOVE_DESTINATION_UNKNOWN, why)
}

/// Serve one C-MOVE.
pub(crate) async fn move_to<P: MoveProgress>(
    ingest: &Arc<Ingest>,
    our_ae: &str,
    request: &MoveRequest,
    progress: &mut P,
) -> RetrieveOutcome {
    let sel = match select(
        ingest,
        &request.calling_ae,
        &request.identifier,
        &request.transfer_syntax,
    )
    .await
    {
        Ok(s) => s,
        Err(o) => return o,
    };
    let topology = ingest.topology();
    let destination = match topology.ae(&request.destination) {
        Some(ae) if ae.endpoint().is_some() => ae.clone(),
        found => {
            let why = match found {
                Some(_) => format!(
                    "AE {:?} has no host and port in the topology: add them to its [[ae]]",
                    request.destination
                ),
                None => format!(
                    "move destination {:?} is not an [[ae]] of the topology",
                    request.destination
                ),
            };
            return refuse_move(ingest, request, &sel, why).await;
        }
    };
    if destination.identity != sel.reader {
        let why = format!(
            "AE {} acts as {}, not as {}: a workstation may move studies only to AEs of its own reader",
            destination.title, destination.identity, sel.reader
        );
        return refuse_move(ingest, request, &sel, why).await;
    }
    progress.expect(sel.items.len());
    if sel.items.is_empty() {
        return RetrieveOutcome::success();
    }
    if progress.check().await.is_err() {
        return RetrieveOutcome::success();
    }
    let Some((host, port)) = destination.endpoint() else {
        return RetrieveOutcome::from(Status::MOVE_DESTINATION_UNKNOWN);
    };
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for item in &sel.items {
        if let Some(m) = &item.meta {
            let pair = (m.sop_class.as_str(), m.transfer_syntax.as_str());
            if !pairs.contains(&pair) {
                pairs.push(pair);
            }
        }
    }
    let connected = match tcp::connect((host, port)).await {
        Ok(io) => {
            StoreScu::connect(
                io,
                &ScuConfig::new(our_ae, &destination.title),
                storage_contexts(&pairs),
            )
            .await
        }
        Err(e) => Err(e.into()),
    };
    let mut scu = match connected {
        Ok(s) => s,
        Err(e) => {
            let why = format!(
                "cannot reach AE {} at {host}:{port}: {e}",
                destination.title
            );
            warn!(calling_ae = %request.calling_ae, "C-MOVE failed: {why}");
            audit(
                ingest,
                &request.calling_ae,
                &sel,
                why.clone(),
                "unreachable",
            )
            .await;
            return RetrieveOutcome::with(Status::UNABLE_TO_PROCESS, why);
        }
    };
    let options = request.store_options();
    let (mut sent, mut failed) = (0usize, 0usize);
    let mut broken = None;
    for item in &sel.items {
        let result = match open_item(item).await {
            Err(why) => SubOperation::NotSent(why),
            Ok((meta, data)) => {
                let r = scu
                    .store_with(
                        &meta.sop_class,
                        &item.sop_instance,
                        &meta.transfer_syntax,
                        &options,
                        data,
                    )
                    .await;
                match SubOperation::from_store(&r) {
                    Some(sub) => sub,
                    None => {
                        let why = match r {
                            Err(e) => e.to_string(),
                            Ok(_) => "the destination went away".into(),
                        };
                        broken = Some(why.clone());
                        SubOperation::NotSent(NotSent::Other(why))
                    }
                }
            }
        };
        match &result {
            SubOperation::Answered(o) if o.status.is_done() => sent += 1,
            _ => failed += 1,
        }
        if progress.report(&item.sop_instance, result).await.is_err() || broken.is_some() {
            break;
        }
    }
    if broken.is_none() {
        if let Err(e) = scu.release().await {
            warn!(destination = %destination.title, "releasing the C-MOVE association: {e}");
        }
    }
    let what = format!(
        "C-MOVE {} level to {}: {} instances, {sent} sent, {failed} failed{}",
        level_code(sel.level),
        destination.title,
        sel.items.len(),
        broken
            .map(|b| format!(" (the destination went away: {b})"))
            .unwrap_or_default()
    );
    info!(reader = %sel.reader, calling_ae = %request.calling_ae, "{what}");
    audit(ingest, &request.calling_ae, &sel, what, "ok").await;
    RetrieveOutcome::success()
}
