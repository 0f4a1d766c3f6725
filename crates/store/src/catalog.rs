//! The catalog: what C-FIND (DICOM Query/Retrieve) and QIDO-RS match on, one row per stored
//! instance, written in the same transaction as the instance (group commit).
//!
//! One denormalised table (`catalog`, keyed by the instance's row id) rather than patient /
//! study / series tables: the relay never edits a study, every query is first restricted to a
//! reader's outbox (`outbox(reader, instance_id)` is unique, so indexed), and aggregates per
//! study or series (counts, modalities) are cheap `GROUP BY`s over the few hundred rows of a
//! study. Indexes on the keys queries usually carry (Study, Series and SOP Instance UID,
//! Patient ID, Accession Number, Study Date) narrow a query before the reader check.
//!
//! The relay fills the catalog from the walker's metadata:
//! `store.commit_with_catalog(partial, hash, &inst, &readers, &meta.catalog_with_default(site_default))`.
//! [`crate::Store::commit`] (no catalog) still writes a row with the UIDs, SOP class and
//! modality of the [`NewInstance`], marked incomplete, so that the instance can be found by UID.

use rusqlite::{params, Transaction};
use yilian_dicom::Catalog;

use crate::records::NewInstance;
use crate::StoreError;

/// Inserts the catalog row of a newly stored instance. UIDs, SOP class and modality come from
/// `inst` (what the index keys on); the rest from `catalog`.
pub(crate) fn insert(
    tx: &Transaction<'_>,
    instance_id: i64,
    inst: &NewInstance,
    catalog: Option<&Catalog>,
) -> Result<(), StoreError> {
    let Some(c) = catalog else {
        tx.execute(
            "INSERT OR REPLACE INTO catalog (instance_id, study_uid, series_uid, modality,
                 sop_uid, sop_class_uid, complete)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
            params![
                instance_id,
                inst.study_uid,
                inst.series_uid,
                inst.modality,
                inst.sop_uid,
                inst.sop_class_uid
            ],
        )?;
        tx.prepare_cached("DELETE FROM catalog_names WHERE instance_id = ?1")?
            .execute([instance_id])?;
        return Ok(());
    };
    let mut st = tx.prepare_cached(
        "INSERT OR REPLACE INTO catalog (instance_id, patient_name, patient_id,
             issuer_of_patient_id, patient_birth_date, patient_sex, study_uid, study_date,
             study_time, accession_number, study_id, study_description, referring_physician,
             series_uid, modality, series_number, series_description, body_part, sop_uid,
             sop_class_uid, instance_number, frames, rows, columns, content_date,
             specific_character_set, text_guessed, text_lossy, complete)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, 1)",
    )?;
    st.execute(params![
        instance_id,
        c.patient.name.expose(),
        c.patient.id.expose(),
        c.patient.issuer_of_id.expose(),
        c.patient.birth_date.expose(),
        c.patient.sex,
        inst.study_uid,
        c.study.date,
        c.study.time,
        c.study.accession_number.expose(),
        c.study.id.expose(),
        c.study.description,
        c.study.referring_physician.expose(),
        inst.series_uid,
        inst.modality,
        c.series.number,
        c.series.description,
        c.series.body_part,
        inst.sop_uid,
        inst.sop_class_uid,
        c.instance.number,
        c.instance.frames,
        c.instance.rows,
        c.instance.columns,
        c.instance.content_date,
        c.specific_character_set,
        c.text_guessed,
        c.text_lossy,
    ])?;
    // The person-name keys of wildcard searches (a replaced row's old keys go first).
    tx.prepare_cached("DELETE FROM catalog_names WHERE instance_id = ?1")?
        .execute([instance_id])?;
    let mut keys = tx
        .prepare_cached("INSERT OR IGNORE INTO catalog_names (key, instance_id) VALUES (?1, ?2)")?;
    for key in crate::query::name_keys(c.patient.name.expose()) {
        keys.execute(params![key, instance_id])?;
    }
    Ok(())
}
