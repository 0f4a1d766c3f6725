//! The index's per-request and per-delivery statements cost what they are asked about, not
//! what the relay holds: on a catalog ten times larger, each one's SQLite VM steps
//! (`SQLITE_STMTSTATUS_VM_STEP`, counted, never timed) stay nearly the same, and each answers
//! exactly what the plain statement it replaced answered.
//!
//! Before these tests, SQLite's planner chose to walk the reader's whole outbox for a WADO or
//! C-MOVE lookup, a delivery's pending entry and its study-complete check (a county reader's
//! whole history for one instance), the stats tick read every outbox entry ever delivered,
//! and a prune probed the whole outbox for every instance it looked at (quadratic, under the
//! index's lock).

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, StatementStatus, ToSql};

use crate::manifest::ROUTED_IN_STUDY;
use crate::outbox::{IS_PENDING, PENDING_ONE, QUEUE_DEPTHS, RETRY_FAILED};
use crate::prune::{REMOVE_INSTANCE, VICTIMS};
use crate::query::{instances_for_sql, QueryLevel};

const COUNTY: &str = "county-radiology";
const PROVINCE: &str = "provincial-expert";
/// Instances per study: two series of five.
const PER_STUDY: usize = 10;

/// An index with the relay's schema (`db::open`) holding `studies` studies: every instance
/// routed to [`COUNTY`] and delivered at t=1, except the last instance of each of the first
/// 20 studies (pending) and of study 3 (refused for good); every tenth study also routed to
/// [`PROVINCE`], pending. The same 20 pending entries whatever the size.
fn index(studies: usize) -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut conn = crate::db::open(&dir.path().join("index.sqlite")).expect("open index");
    let tx = conn.transaction().expect("transaction");
    {
        let mut instance = tx
            .prepare(
                "INSERT INTO instances (id, source_site, sop_uid, study_uid, series_uid,
                     sop_class_uid, modality, source_identity, size, hash, priority, stored_at)
                 VALUES (?1, 'township-a', ?2, ?3, ?4, '1.2.840.10008.5.1.4.1.1.2', 'CT',
                     'township-a-device', 1000 + ?1, randomblob(32), 0, 0)",
            )
            .expect("prepare");
        let mut catalog = tx
            .prepare(
                "INSERT INTO catalog (instance_id, patient_id, study_uid, series_uid, modality,
                     sop_uid, instance_number)
                 VALUES (?1, ?2, ?3, ?4, 'CT', ?5, ?6)",
            )
            .expect("prepare");
        let mut outbox = tx
            .prepare(
                "INSERT INTO outbox (reader, instance_id, priority, enqueued_at, delivered_at,
                     failed_at)
                 VALUES (?1, ?2, 0, 0, ?3, ?4)",
            )
            .expect("prepare");
        let mut id = 0i64;
        for s in 0..studies {
            let study = format!("1.2.3.{s}");
            for n in 0..PER_STUDY {
                id += 1;
                let series = format!("{study}.{}", n / 5);
                let sop = format!("{study}.9.{n}");
                instance
                    .execute(params![id, sop, study, series])
                    .expect("instance");
                catalog
                    .execute(params![id, format!("P{s}"), study, series, sop, n as i64])
                    .expect("catalog");
                let last = n == PER_STUDY - 1;
                let (delivered, failed) = match (last, s) {
                    (true, 3) => (None, Some(2)),
                    (true, s) if s < 20 => (None, None),
                    _ => (Some(1), None),
                };
                outbox
                    .execute(params![COUNTY, id, delivered, failed])
                    .expect("outbox");
                if s % 10 == 0 && last && s < 200 {
                    outbox
                        .execute(params![PROVINCE, id, None::<i64>, None::<i64>])
                        .expect("outbox");
                }
            }
        }
    }
    tx.commit().expect("commit");
    (dir, conn)
}

/// Every row `sql` answers (as text), and the VM steps it took.
fn run(conn: &Connection, sql: &str, args: &[&dyn ToSql]) -> (Vec<Vec<String>>, i32) {
    let mut st = conn.prepare(sql).expect("prepare");
    let columns = st.column_count();
    let mut rows = st.query(args).expect("query");
    let mut out = Vec::new();
    while let Some(row) = rows.next().expect("step") {
        out.push(
            (0..columns)
                .map(|i| match row.get_ref(i).expect("column") {
                    ValueRef::Null => "NULL".to_string(),
                    ValueRef::Integer(n) => n.to_string(),
                    ValueRef::Real(x) => x.to_string(),
                    ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    ValueRef::Blob(b) => hex::encode(b),
                })
                .collect(),
        );
    }
    drop(rows);
    (out, st.get_status(StatementStatus::VmStep))
}

/// The rows changed and VM steps of each statement of `sqls` run in turn with `args`, in a
/// transaction rolled back after.
fn change(conn: &mut Connection, sqls: &[&str], args: &[&dyn ToSql]) -> Vec<(usize, i32)> {
    let tx = conn.transaction().expect("transaction");
    let out = sqls
        .iter()
        .map(|sql| {
            let mut st = tx.prepare(sql).expect("prepare");
            let n = st.execute(args).expect("execute");
            (n, st.get_status(StatementStatus::VmStep))
        })
        .collect();
    tx.rollback().expect("rollback");
    out
}

/// On 2,000 studies, at most a little more work than on 200 (deeper b-trees), where the
/// statement replaced did ten times as much.
fn flat(what: &str, small: i32, large: i32) {
    assert!(
        f64::from(large) <= f64::from(small) * 1.3 + 50.0,
        "{what}: {small} VM steps on 2,000 instances, {large} on 20,000: its work grows with the index"
    );
}

#[test]
fn lookups_of_one_instance_series_study_or_patient_follow_what_they_name() {
    let (_a, small) = index(200);
    let (_b, large) = index(2000);
    let uids = |r: &[Vec<String>]| r.iter().map(|c| c[0].clone()).collect::<Vec<_>>();
    for (level, key, count) in [
        (QueryLevel::Image, "1.2.3.155.9.4", 1),
        (QueryLevel::Series, "1.2.3.155.1", 5),
        (QueryLevel::Study, "1.2.3.155", 10),
        (QueryLevel::Patient, "P155", 10),
    ] {
        let sql = instances_for_sql(level, 1);
        let (rows, s) = run(&small, &sql, &[&COUNTY, &key]);
        let (rows_large, l) = run(&large, &sql, &[&COUNTY, &key]);
        assert_eq!(rows.len(), count, "{level:?} {key}");
        // In instance-number order, the same from the ten-times index (the hashes differ).
        let want: Vec<String> = (10 - count..10)
            .map(|n| format!("1.2.3.155.9.{n}"))
            .collect();
        let want = if level == QueryLevel::Image {
            vec![key.to_string()]
        } else {
            want
        };
        assert_eq!(uids(&rows), want, "{level:?}");
        assert_eq!(uids(&rows_large), want, "{level:?}");
        // The plain JOIN it replaced (SQLite's order): the same rows.
        let plain = sql.replace("CROSS JOIN", "JOIN");
        assert_eq!(run(&small, &plain, &[&COUNTY, &key]).0, rows);
        flat(&format!("instances_for {level:?}"), s, l);
        // Study 155 is not routed to the province.
        assert!(
            run(&large, &sql, &[&PROVINCE, &key]).0.is_empty(),
            "{level:?}"
        );
    }
    // Study 150's last instance is routed to the province as well: it sees that one only.
    let (province, _) = run(
        &large,
        &instances_for_sql(QueryLevel::Study, 1),
        &[&PROVINCE, &"1.2.3.150"],
    );
    assert_eq!(uids(&province), ["1.2.3.150.9.9"]);
}

#[test]
fn a_deliverys_checks_follow_the_instance_and_its_study() {
    let (_a, small) = index(200);
    let (_b, large) = index(2000);
    // A pending instance (study 7's last), one delivered (study 150's first), one refused.
    for (study, sop, pending) in [
        ("1.2.3.7", "1.2.3.7.9.9", true),
        ("1.2.3.150", "1.2.3.150.9.0", false),
        ("1.2.3.3", "1.2.3.3.9.9", false),
    ] {
        let args: [&dyn ToSql; 3] = [&COUNTY, &study, &sop];
        let (one, s1) = run(&small, PENDING_ONE, &args);
        let (one_large, l1) = run(&large, PENDING_ONE, &args);
        assert_eq!(one.len(), usize::from(pending), "{sop}");
        assert_eq!(one_large.len(), usize::from(pending), "{sop}");
        flat("pending_one", s1, l1);
        let (n, s2) = run(&small, IS_PENDING, &args);
        let (_, l2) = run(&large, IS_PENDING, &args);
        assert_eq!(n[0][0], i64::from(pending).to_string());
        flat("is_pending", s2, l2);
    }
    // Routed and undelivered per study: study 7 has one pending of ten, study 150 none.
    for (study, want) in [("1.2.3.7", ["10", "1"]), ("1.2.3.150", ["10", "0"])] {
        let (r, s) = run(&small, ROUTED_IN_STUDY, &[&COUNTY, &study]);
        let (r_large, l) = run(&large, ROUTED_IN_STUDY, &[&COUNTY, &study]);
        assert_eq!(r[0], want, "{study}");
        assert_eq!(r_large[0], want, "{study}");
        flat("take_study_notice", s, l);
        let plain = ROUTED_IN_STUDY.replace("CROSS JOIN", "JOIN");
        assert_eq!(run(&small, &plain, &[&COUNTY, &study]).0, r);
    }
}

#[test]
fn the_stats_tick_reads_the_readers_and_what_is_pending_not_every_delivery() {
    let (_a, small) = index(200);
    let (_b, large) = index(2000);
    let (rows, s) = run(&small, QUEUE_DEPTHS, &[]);
    let (rows_large, l) = run(&large, QUEUE_DEPTHS, &[]);
    // County: the last instance of studies 0..20 but 3 (refused); province: studies 0, 10.
    let names: Vec<(String, String)> = rows.iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    assert_eq!(
        names,
        [
            (COUNTY.to_string(), "19".to_string()),
            (PROVINCE.to_string(), "20".to_string()),
        ]
    );
    let plain = "SELECT o.reader, COUNT(*), COALESCE(SUM(i.size), 0)
         FROM outbox o JOIN instances i ON i.id = o.instance_id
         WHERE o.delivered_at IS NULL AND o.failed_at IS NULL GROUP BY o.reader ORDER BY o.reader";
    assert_eq!(run(&small, plain, &[]).0, rows);
    assert_eq!(run(&large, plain, &[]).0, rows_large);
    flat("queue_depths", s, l);
    // An empty outbox: no rows (the recursion's NULL reader is not one).
    let (_c, empty) = index(0);
    assert!(run(&empty, QUEUE_DEPTHS, &[]).0.is_empty());
}

#[test]
fn a_prune_batch_and_a_retry_follow_what_they_remove_or_retry() {
    let (_a, mut small) = index(200);
    let (_b, mut large) = index(2000);
    // The first batch of victims: delivered at t=1, cut-off 10, after row 0.
    let args: [&dyn ToSql; 3] = [&10, &500, &0];
    let (victims, s) = run(&small, VICTIMS, &args);
    let (victims_large, l) = run(&large, VICTIMS, &args);
    assert_eq!(victims.len(), 500);
    let ids = |v: &[Vec<String>]| v.iter().map(|r| r[0].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&victims), ids(&victims_large));
    // The first study's last instance is pending: kept.
    assert!(!ids(&victims).contains(&"10".to_string()));
    flat("prune victims", s, l);
    // After row 100: the same rule, from there on (row 110, study 10's last, is pending).
    let (after, _) = run(&small, VICTIMS, &[&10, &5, &100]);
    assert_eq!(ids(&after), ["101", "102", "103", "104", "105"]);
    let (after, _) = run(&small, VICTIMS, &[&10, &2, &108]);
    assert_eq!(ids(&after), ["109", "111"]);
    // Removing one instance's rows (the instance's own delete checks nothing refers to it).
    let s = change(&mut small, &REMOVE_INSTANCE, &[&2000]);
    let l = change(&mut large, &REMOVE_INSTANCE, &[&2000]);
    for ((sql, (n, s)), (n_large, l)) in REMOVE_INSTANCE.iter().zip(s).zip(l) {
        assert_eq!((n, n_large), (1, 1), "{sql}");
        flat(sql, s, l);
    }
    // Retrying one refused instance (study 3's last) finds it through the catalog.
    let [(n, s)] = change(&mut small, &[RETRY_FAILED], &[&COUNTY, &"1.2.3.3.9.9"])[..] else {
        unreachable!()
    };
    let [(n_large, l)] = change(&mut large, &[RETRY_FAILED], &[&COUNTY, &"1.2.3.3.9.9"])[..] else {
        unreachable!()
    };
    assert_eq!((n, n_large), (1, 1));
    flat("retry_failed one", s, l);
    let none = change(&mut small, &[RETRY_FAILED], &[&COUNTY, &"1.2.3.4.9.9"]);
    assert_eq!(none[0].0, 0, "a pending entry is not a failed one");
}
