//! Explicit VR Little Endian → Implicit VR Little Endian (`ToImplicit`), the syntax every peer
//! accepts: synthetic data sets against the same data set built in Implicit VR LE (sequences and
//! items of undefined length, no group lengths), byte for byte, in any chunking; every pydicom
//! sample in Explicit VR LE through it, read back by dicom-object (the oracle) with the same
//! elements and values, and walked by our own walker with the same metadata; broken input is
//! refused.

mod common;

use common::build::*;
use common::prng::Prng;
use common::pydicom::all_samples;
use dicom_core::value::Value;
use dicom_object::{InMemDicomObject, OpenFileOptions};
use yilian_dicom::{DicomError, ToImplicit, Walker};

const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
const IMPLICIT: &str = "1.2.840.10008.1.2";

fn transcode_by(input: &[u8], mut next: impl FnMut() -> usize) -> Result<Vec<u8>, DicomError> {
    let mut t = ToImplicit::new();
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let n = next().clamp(1, rest.len());
        t.feed(&rest[..n], &mut out)?;
        rest = &rest[n..];
    }
    t.finish()?;
    Ok(out)
}

fn transcode(input: &[u8]) -> Result<Vec<u8>, DicomError> {
    transcode_by(input, || usize::MAX)
}

/// A data set with every structure the transcoder must handle, in `enc`; `defined` chooses
/// defined lengths for sequences and items, `mixed` makes one item the other way (implicit
/// output always has undefined ones).
fn rich(enc: Enc, defined: bool, mixed: bool) -> Ds {
    let inner = |enc: Enc| {
        Ds::new(enc)
            .text((0x0008, 0x0100), "SH", "T-04000")
            .text((0x0008, 0x0104), "LO", "Chest")
    };
    let nested = |enc: Enc| {
        Ds::new(enc)
            .text((0x0040, 0xA040), "CS", "TEXT")
            .seq(
                (0x0040, 0xA043),
                vec![item(inner(enc), defined), item(inner(enc), defined ^ mixed)],
                defined,
            )
            .elem((0x0040, 0xA160), "UT", b"a long text value ")
    };
    let implicit_items = || {
        vec![
            item(inner(Enc::Implicit), true),
            item(inner(Enc::Implicit), false),
        ]
    };
    routing(enc)
        .elem((0x0009, 0x0010), "LO", b"PRIVATE ")
        .elem((0x0009, 0x1001), "UN", &[1, 2, 3, 4])
        .un_seq((0x0009, 0x1002), implicit_items())
        .seq((0x0008, 0x2218), vec![item(inner(enc), defined)], defined)
        .seq((0x0040, 0x0260), vec![], defined)
        .seq(
            (0x0040, 0xA730),
            vec![item(nested(enc), defined), item(Ds::new(enc), defined)],
            defined,
        )
        .elem((0x0018, 0x9445), "OB", &[0, 0])
        .elem((0x0028, 0x0010), "US", &512u16.to_le_bytes())
        .pixels(4096)
}

#[test]
fn synthetic_data_sets_match_the_implicit_encoding_byte_for_byte_in_any_chunking() {
    let expected = rich(Enc::Implicit, false, false).bytes();
    for defined in [false, true] {
        // A group length in the source: dropped.
        let source = rich(Enc::ExplicitLe, defined, true)
            .elem((0x0008, 0x0000), "UL", &1234u32.to_le_bytes())
            .bytes();
        let out = transcode(&source).unwrap();
        let first_diff = out.iter().zip(&expected).position(|(a, b)| a != b);
        assert!(
            out == expected,
            "defined = {defined}: {} bytes out, {} expected, first difference at {first_diff:?}",
            out.len(),
            expected.len()
        );
        let mut rng = Prng::new(7);
        for round in 0..200 {
            let max = 1 + round % 40;
            let out = transcode_by(&source, || 1 + rng.below(max)).unwrap();
            assert!(out == expected, "defined = {defined}, round {round}");
        }
    }
}

#[test]
fn broken_input_is_refused_not_guessed() {
    let good = rich(Enc::ExplicitLe, true, true).bytes();
    // Cut anywhere inside an element or an open sequence: truncated or malformed, never Ok.
    let mut cut_refused = 0;
    for cut in [1, 5, 9, 100, good.len() / 2, good.len() - 1] {
        if transcode(&good[..cut]).is_err() {
            cut_refused += 1;
        }
    }
    assert_eq!(cut_refused, 6);
    // Not explicit VR: an implicit data set (its "VR" bytes are a length).
    let implicit = rich(Enc::Implicit, false, false).bytes();
    assert!(matches!(
        transcode(&implicit),
        Err(DicomError::Malformed { .. })
    ));
    // A defined-length sequence whose item runs past its end.
    let item_ds = Ds::new(Enc::ExplicitLe).text((0x0008, 0x0100), "SH", "ABCD");
    let mut bad = header(Enc::ExplicitLe, (0x0008, 0x1140), "SQ", 8);
    bad.extend(header(Enc::ExplicitLe, (0xFFFE, 0xE000), "", 12));
    bad.extend(item_ds.bytes());
    assert!(matches!(transcode(&bad), Err(DicomError::Malformed { .. })));
    // Encapsulated pixel data in a native syntax.
    let encapsulated = Ds::new(Enc::ExplicitLe)
        .encapsulated((0x7FE0, 0x0010), &[b"ab", b"cd"])
        .bytes();
    assert!(matches!(
        transcode(&encapsulated),
        Err(DicomError::Malformed { .. })
    ));
    // A delimiter that closes nothing.
    let stray = header(Enc::ExplicitLe, (0xFFFE, 0xE0DD), "", 0);
    assert!(matches!(
        transcode(&stray),
        Err(DicomError::Malformed { .. })
    ));
}

/// The data set of a Part 10 file (after the file meta) and the meta's values.
fn split(bytes: &[u8]) -> Option<(String, String, String, usize)> {
    let mut w = Walker::new(Default::default());
    w.feed(bytes).ok()?;
    let meta = w.finish().ok()?;
    // The file meta ends where group 0002 ends: its group length says where.
    let group_len = u32::from_le_bytes(bytes.get(140..144)?.try_into().ok()?) as usize;
    if bytes.get(132..136)? != [0x02, 0x00, 0x00, 0x00] {
        return None;
    }
    Some((
        meta.transfer_syntax.clone(),
        meta.sop_class_uid.clone()?,
        meta.sop_instance_uid.clone(),
        144 + group_len,
    ))
}

fn same_elements(a: &InMemDicomObject, b: &InMemDicomObject, path: &str) {
    let tags_a: Vec<_> = a
        .iter()
        .map(|e| e.header().tag)
        .filter(|t| t.element() != 0)
        .collect();
    let tags_b: Vec<_> = b.iter().map(|e| e.header().tag).collect();
    assert_eq!(tags_a, tags_b, "{path}: the same elements");
    for ea in a.iter().filter(|e| e.header().tag.element() != 0) {
        let eb = b.element(ea.header().tag).unwrap();
        let here = format!("{path}/{}", ea.header().tag);
        match (ea.value(), eb.value()) {
            (Value::Sequence(sa), Value::Sequence(sb)) => {
                assert_eq!(sa.items().len(), sb.items().len(), "{here}: items");
                for (i, (ia, ib)) in sa.items().iter().zip(sb.items()).enumerate() {
                    same_elements(ia, ib, &format!("{here}[{i}]"));
                }
            }
            (Value::Primitive(pa), Value::Primitive(pb)) if ea.vr() == eb.vr() => {
                assert_eq!(pa.to_bytes(), pb.to_bytes(), "{here}: value");
            }
            // Implicit VR has no VR to tell a UN sequence from a value, nor encapsulated
            // from native pixels: both are read back, as whatever the dictionary says.
            _ => {}
        }
    }
}

#[test]
fn every_explicit_le_pydicom_sample_reads_back_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let mut done = 0;
    for path in all_samples() {
        let bytes = std::fs::read(&path).unwrap();
        let Some((ts, class, instance, start)) = split(&bytes) else {
            continue;
        };
        if ts != EXPLICIT_LE {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let out = match transcode(&bytes[start..]) {
            Ok(o) => o,
            Err(e) => panic!("{name}: a valid file was refused: {e}"),
        };
        let file = part10_with(
            &Meta {
                ts: IMPLICIT.into(),
                sop_class: class,
                sop_instance: instance,
                group_length: true,
            },
            &out,
        );
        // Our walker: the same metadata, in the other syntax.
        let mut w = Walker::new(Default::default());
        w.feed(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
        let after = w.finish().unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut w = Walker::new(Default::default());
        w.feed(&bytes).unwrap();
        let before = w.finish().unwrap();
        assert_eq!(
            after.study_instance_uid, before.study_instance_uid,
            "{name}"
        );
        assert_eq!(after.catalog, before.catalog, "{name}");
        assert_eq!(
            after.pixel_data.is_some(),
            before.pixel_data.is_some(),
            "{name}"
        );
        // dicom-object: the same elements and values.
        let at = tmp.path().join(&name);
        std::fs::write(&at, &file).unwrap();
        let original = OpenFileOptions::new().open_file(&path).unwrap();
        let transcoded = OpenFileOptions::new()
            .open_file(&at)
            .unwrap_or_else(|e| panic!("{name}: dicom-object cannot read the result: {e}"));
        same_elements(&original, &transcoded, &name);
        done += 1;
    }
    assert!(done >= 20, "only {done} Explicit VR LE samples");
}

/// Seeded mutations (bit flips, hostile lengths, cuts, insertions) of the rich data set: the
/// transcoder never panics and gives the same answer whole and in random pieces.
#[test]
fn mutated_input_never_panics_and_chunking_never_changes_the_answer() {
    let base = rich(Enc::ExplicitLe, true, true).bytes();
    let mut rng = Prng::new(41);
    let mut accepted = 0;
    for round in 0..4000 {
        let mut m = base.clone();
        match rng.below(4) {
            0 => {
                let at = rng.below(m.len());
                m[at] ^= 1 << rng.below(8);
            }
            1 => {
                // A length field gone wild: four bytes of 0xFF or a random value.
                let at = rng.below(m.len() - 4);
                let v = if rng.below(2) == 0 {
                    u32::MAX
                } else {
                    rng.next_u64() as u32
                };
                m[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            2 => m.truncate(rng.below(m.len())),
            _ => {
                let at = rng.below(m.len());
                let junk: Vec<u8> = (0..rng.range(1, 16))
                    .map(|_| rng.below(256) as u8)
                    .collect();
                m.splice(at..at, junk);
            }
        }
        let whole = std::panic::catch_unwind(|| transcode(&m))
            .unwrap_or_else(|_| panic!("round {round}: panicked"));
        let pieces = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut r = Prng::new(round as u64);
            transcode_by(&m, || 1 + r.below(64))
        }))
        .unwrap_or_else(|_| panic!("round {round}: panicked in pieces"));
        match (&whole, &pieces) {
            (Ok(a), Ok(b)) => {
                assert!(a == b, "round {round}: the pieces changed the output");
                accepted += 1;
            }
            (Err(_), Err(_)) => {}
            _ => panic!("round {round}: whole {whole:?} but in pieces {pieces:?}"),
        }
    }
    assert!(accepted > 100, "only {accepted} mutations still valid");
}
