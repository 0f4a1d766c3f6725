//! Hand-built streams that the walker must refuse, one per way of being wrong, with the error
//! kind, the offset and a message that says what and where — and never patient data.

mod common;

use common::build::*;
use common::{walk, walk_by, walk_chunked};
use yilian_dicom::{validate_file, DicomError, Limits, Metadata, Tag, Walker};

/// Walks `file` whole and in 1-byte chunks; both must give the same error, which is returned.
fn refuse(file: &[u8]) -> DicomError {
    let whole = walk(file);
    let bytewise = walk_chunked(file, 1);
    assert_eq!(
        whole.as_ref().map_err(ToString::to_string).err(),
        bytewise.as_ref().map_err(ToString::to_string).err(),
        "chunking changed the error"
    );
    match whole {
        Ok(md) => panic!("expected an error, got {md:?}"),
        Err(e) => {
            let text = e.to_string();
            for phi in [PATIENT_NAME, PATIENT_ID, ACCESSION, "Zhang"] {
                assert!(!text.contains(phi), "patient data in {text}");
            }
            e
        }
    }
}

fn malformed_at(file: &[u8], want_offset: u64, want_reason: &str) {
    match refuse(file) {
        DicomError::Malformed { offset, reason } => {
            assert_eq!(offset, want_offset, "offset of: {reason}");
            assert!(
                reason.contains(want_reason),
                "{reason:?} lacks {want_reason:?}"
            );
        }
        other => panic!("expected Malformed, got {other}"),
    }
}

fn offset_of(file: &[u8], needle: &[u8]) -> u64 {
    file.windows(needle.len())
        .position(|w| w == needle)
        .expect("present") as u64
}

fn ds() -> Ds {
    routing(Enc::ExplicitLe)
}

fn file(ds: Ds) -> Vec<u8> {
    part10(EXPLICIT_LE, &ds.bytes())
}

// --- NotDicom -------------------------------------------------------------------------------

#[test]
fn no_dicm_marker_is_not_dicom() {
    let mut f = sample(EXPLICIT_LE, 10);
    f[128..132].copy_from_slice(b"DICN");
    let e = refuse(&f);
    assert!(matches!(e, DicomError::NotDicom { .. }));
    assert_eq!(
        e.to_string(),
        "not a DICOM file: no \"DICM\" marker at byte 128 (is this a raw dataset without file \
         meta information, or not DICOM at all?)"
    );
}

#[test]
fn too_short_or_empty_is_not_dicom() {
    for len in [0, 1, 127, 128, 131] {
        let f = sample(EXPLICIT_LE, 10);
        let e = refuse(&f[..len]);
        assert!(matches!(e, DicomError::NotDicom { .. }), "{len}: {e}");
        assert!(e.to_string().contains(&format!("only {len} bytes")), "{e}");
    }
}

// --- Truncated ------------------------------------------------------------------------------

#[test]
fn truncated_inside_pixel_data_says_how_much_was_declared() {
    let f = sample(EXPLICIT_LE, 524_288);
    let cut = f.len() - 1000;
    match refuse(&f[..cut]) {
        DicomError::Truncated { offset, inside } => {
            assert_eq!(offset, cut as u64);
            assert_eq!(
                inside,
                "inside Pixel Data (7FE0,0010), which declares 524288 bytes"
            );
        }
        other => panic!("{other}"),
    }
    let text = refuse(&f[..cut]).to_string();
    assert_eq!(
        text,
        format!(
            "truncated: the file ends at byte {cut} inside Pixel Data (7FE0,0010), which \
             declares 524288 bytes — the copy is incomplete; send the original again"
        )
    );
}

#[test]
fn truncated_in_every_kind_of_place() {
    let frag: &[u8] = &[1, 2, 3, 4];
    let enc_file = file(ds().encapsulated(PIXEL_DATA, &[frag]));
    let seq_file = file(ds().seq(
        (0x0040, 0x0275),
        vec![item(
            Ds::new(Enc::ExplicitLe).text((0x0008, 0x1150), "UI", "1.2"),
            false,
        )],
        false,
    ));
    let defined_seq_file = file(ds().seq(
        (0x0040, 0x0275),
        vec![item(
            Ds::new(Enc::ExplicitLe).text((0x0008, 0x1150), "UI", "1.2"),
            true,
        )],
        true,
    ));
    let plain = sample(EXPLICIT_LE, 100);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "inside file meta",
            plain[..132 + 12].to_vec(),
            "inside the file meta information",
        ),
        (
            "right after DICM",
            plain[..132].to_vec(),
            "right after the \"DICM\" marker",
        ),
        (
            "inside a header",
            plain[..plain.len() - 100 - 5].to_vec(),
            "inside the header of an element",
        ),
        (
            "inside encapsulated pixel data, before the delimiter",
            enc_file[..enc_file.len() - 8].to_vec(),
            "the Sequence Delimitation Item that must follow the fragments is missing",
        ),
        (
            "inside a fragment",
            enc_file[..enc_file.len() - 10].to_vec(),
            "inside a fragment of encapsulated Pixel Data (7FE0,0010), which declares 4 bytes",
        ),
        (
            "inside an undefined-length sequence",
            seq_file[..seq_file.len() - 8].to_vec(),
            "inside Request Attributes Sequence (0040,0275) begun at byte",
        ),
        (
            "inside an undefined-length item",
            seq_file[..seq_file.len() - 16].to_vec(),
            "before its Item Delimitation Item",
        ),
        (
            "inside a defined-length item",
            defined_seq_file[..defined_seq_file.len() - 4].to_vec(),
            "inside Referenced SOP Class UID (0008,1150), which declares 4 bytes",
        ),
        (
            "between items of a defined-length sequence",
            {
                let mut f = defined_seq_file.clone();
                f.truncate(f.len() - 20);
                f
            },
            "(0040,0275) begun at byte",
        ),
    ];
    for (what, bytes, want) in cases {
        match refuse(&bytes) {
            DicomError::Truncated { offset, inside } => {
                assert_eq!(offset, bytes.len() as u64, "{what}");
                assert!(inside.contains(want), "{what}: {inside:?} lacks {want:?}");
            }
            other => panic!("{what}: expected Truncated, got {other}"),
        }
    }
}

#[test]
fn truncated_deflated_stream() {
    let f = sample(DEFLATED, 3000);
    let meta_end = 132 + Meta::new(DEFLATED).bytes().len();
    // Cut in the middle of the compressed data, and right at its start.
    for cut in [
        meta_end,
        meta_end + 1,
        (meta_end + f.len()) / 2,
        f.len() - 1,
    ] {
        match refuse(&f[..cut]) {
            DicomError::Truncated { offset, .. } => assert_eq!(offset, cut as u64, "{cut}"),
            other => panic!("{cut}: expected Truncated, got {other}"),
        }
    }
}

// --- Malformed ------------------------------------------------------------------------------

#[test]
fn odd_length_is_malformed() {
    let f = file(ds().elem((0x0009, 0x1001), "OB", &[1, 2, 3]));
    let at = offset_of(&f, &[0x09, 0x00, 0x01, 0x10]);
    malformed_at(&f, at, "odd length (3 bytes)");
}

#[test]
fn unknown_vr_is_malformed() {
    let mut f = file(ds().elem((0x0008, 0x0070), "LO", b"ACME"));
    let at = offset_of(&f, &[0x08, 0x00, 0x70, 0x00]);
    f[at as usize + 4..at as usize + 6].copy_from_slice(b"ZZ");
    malformed_at(&f, at, "value representation \"ZZ\", which does not exist");
}

#[test]
fn implicit_vr_data_declared_as_explicit_is_malformed() {
    let ds = routing(Enc::Implicit).pixels(10).bytes();
    let f = part10(EXPLICIT_LE, &ds);
    let e = refuse(&f);
    assert!(
        matches!(&e, DicomError::Malformed { reason, .. } if reason.contains("does not exist")),
        "{e}"
    );
}

#[test]
fn element_past_the_end_of_its_item_is_malformed() {
    // A defined-length item of 12 bytes holding an element that declares 20.
    let mut item_body = header(Enc::ExplicitLe, (0x0008, 0x1150), "UI", 20);
    item_body.extend([b'1'; 4]);
    let mut seq = header(Enc::ExplicitLe, (0x0008, 0x1140), "SQ", UNDEFINED);
    seq.extend(header(
        Enc::ExplicitLe,
        (0xFFFE, 0xE000),
        "",
        item_body.len() as u32,
    ));
    seq.extend(&item_body);
    seq.extend([b'1'; 16]);
    let f = file(ds().raw((0x0008, 0x1140), seq));
    let at = offset_of(&f, &[0x08, 0x00, 0x50, 0x11]);
    malformed_at(&f, at, "runs past the end of the enclosing item");
}

#[test]
fn item_past_the_end_of_its_sequence_is_malformed() {
    let inner = Ds::new(Enc::ExplicitLe).text((0x0008, 0x1150), "UI", "1.2.3.4");
    let mut seq = header(Enc::ExplicitLe, (0x0008, 0x1140), "SQ", 10);
    let content = inner.bytes();
    seq.extend(header(
        Enc::ExplicitLe,
        (0xFFFE, 0xE000),
        "",
        content.len() as u32,
    ));
    seq.extend(content);
    let f = file(ds().raw((0x0008, 0x1140), seq));
    let at = offset_of(&f, &[0x08, 0x00, 0x40, 0x11]) + 12;
    malformed_at(
        &f,
        at,
        "runs past the end of Referenced Image Sequence (0008,1140)",
    );
}

#[test]
fn element_past_the_meta_group_length_is_malformed() {
    let mut f = sample(EXPLICIT_LE, 10);
    // Shrink the declared group length by 2: the last meta element now crosses it.
    let gl = u32::from_le_bytes([f[140], f[141], f[142], f[143]]);
    f[140..144].copy_from_slice(&(gl - 2).to_le_bytes());
    let e = refuse(&f);
    assert!(
        matches!(&e, DicomError::Malformed { reason, .. } if reason.contains("file meta information")),
        "{e}"
    );
}

#[test]
fn group_length_longer_than_the_meta_is_malformed() {
    let mut f = sample(EXPLICIT_LE, 10);
    let gl = u32::from_le_bytes([f[140], f[141], f[142], f[143]]);
    f[140..144].copy_from_slice(&(gl + 8).to_le_bytes());
    let e = refuse(&f);
    assert!(
        matches!(&e, DicomError::Malformed { reason, .. } if reason.contains("(0008,0005) lies inside the file meta information")),
        "{e}"
    );
}

#[test]
fn dicm_followed_by_a_dataset_is_malformed() {
    let mut f = vec![0u8; 128];
    f.extend(b"DICM");
    f.extend(ds().bytes());
    malformed_at(&f, 132, "not by the file meta information group");
}

#[test]
fn tags_going_backwards_at_the_top_level_are_malformed() {
    let d = Ds::new(Enc::ExplicitLe)
        .text((0x0008, 0x0016), "UI", CT_IMAGE_STORAGE)
        .text((0x0008, 0x0060), "CS", "CT")
        .text((0x0008, 0x0018), "UI", SOP_INSTANCE);
    let f = part10(EXPLICIT_LE, &d.bytes_as_inserted());
    let at = offset_of(&f, &[0x08, 0x00, 0x18, 0x00]);
    malformed_at(
        &f,
        at,
        "SOP Instance UID (0008,0018) comes after Modality (0008,0060)",
    );
    // A repeated tag too.
    let mut dup = file(ds());
    let again = header(Enc::ExplicitLe, (0x0028, 0x0008), "IS", 2);
    dup.extend(&again);
    dup.extend(b"1 ");
    malformed_at(&dup, (dup.len() - 10) as u64, "ascending tag order");
}

#[test]
fn misplaced_items_and_delimiters_are_malformed() {
    let item_at_top = {
        let mut f = file(ds());
        f.extend(header(Enc::ExplicitLe, (0xFFFE, 0xE000), "", 0));
        f
    };
    let at = (item_at_top.len() - 8) as u64;
    malformed_at(
        &item_at_top,
        at,
        "Item (FFFE,E000) where a data element was expected (at the top level",
    );

    let element_in_sequence = {
        let mut seq = header(Enc::ExplicitLe, (0x0008, 0x1140), "SQ", UNDEFINED);
        seq.extend(header(Enc::ExplicitLe, (0x0008, 0x1150), "UI", 2));
        seq.extend(b"1\0");
        file(ds().raw((0x0008, 0x1140), seq))
    };
    let at = offset_of(&element_in_sequence, &[0x08, 0x00, 0x50, 0x11]);
    malformed_at(
        &element_in_sequence,
        at,
        "where only items (FFFE,E000) may be",
    );

    let delimiter_in_defined_sequence = {
        let mut seq = header(Enc::ExplicitLe, (0x0008, 0x1140), "SQ", 8);
        seq.extend(header(Enc::ExplicitLe, (0xFFFE, 0xE0DD), "", 0));
        file(ds().raw((0x0008, 0x1140), seq))
    };
    let at = offset_of(&delimiter_in_defined_sequence, &[0xFE, 0xFF, 0xDD, 0xE0]);
    malformed_at(
        &delimiter_in_defined_sequence,
        at,
        "which has a defined length",
    );

    let nonzero_delimiter = {
        let mut seq = header(Enc::ExplicitLe, (0x0008, 0x1140), "SQ", UNDEFINED);
        seq.extend(header(Enc::ExplicitLe, (0xFFFE, 0xE0DD), "", 4));
        file(ds().raw((0x0008, 0x1140), seq))
    };
    let at = offset_of(&nonzero_delimiter, &[0xFE, 0xFF, 0xDD, 0xE0]);
    malformed_at(&nonzero_delimiter, at, "needs a delimiter of length 0");

    let item_delimiter_in_defined_item = {
        let mut seq = header(Enc::ExplicitLe, (0x0008, 0x1140), "SQ", UNDEFINED);
        seq.extend(header(Enc::ExplicitLe, (0xFFFE, 0xE000), "", 8));
        seq.extend(header(Enc::ExplicitLe, (0xFFFE, 0xE00D), "", 0));
        seq.extend(header(Enc::ExplicitLe, (0xFFFE, 0xE0DD), "", 0));
        file(ds().raw((0x0008, 0x1140), seq))
    };
    let at = offset_of(&item_delimiter_in_defined_item, &[0xFE, 0xFF, 0x0D, 0xE0]);
    malformed_at(
        &item_delimiter_in_defined_item,
        at,
        "closes an item of defined length",
    );
}

#[test]
fn bad_fragments_are_malformed() {
    let undefined_fragment = {
        let mut px = header(Enc::ExplicitLe, PIXEL_DATA, "OB", UNDEFINED);
        px.extend(header(Enc::ExplicitLe, (0xFFFE, 0xE000), "", UNDEFINED));
        file(ds().raw(PIXEL_DATA, px))
    };
    let at = offset_of(&undefined_fragment, &[0xFE, 0xFF, 0x00, 0xE0]);
    malformed_at(
        &undefined_fragment,
        at,
        "Item (FFFE,E000) of length undefined inside encapsulated",
    );

    let element_among_fragments = {
        let mut px = header(Enc::ExplicitLe, PIXEL_DATA, "OB", UNDEFINED);
        px.extend(header(Enc::ExplicitLe, (0x0008, 0x0001), "UL", 0));
        file(ds().raw(PIXEL_DATA, px))
    };
    let at = offset_of(&element_among_fragments, &[0x08, 0x00, 0x01, 0x00]);
    malformed_at(
        &element_among_fragments,
        at,
        "only fragments (FFFE,E000) of defined length",
    );
}

#[test]
fn undefined_length_on_a_plain_vr_is_malformed() {
    let f = file(ds().raw(
        (0x0008, 0x0070),
        header(Enc::ExplicitLe, (0x0008, 0x0070), "UT", UNDEFINED),
    ));
    let at = offset_of(&f, &[0x08, 0x00, 0x70, 0x00]);
    malformed_at(&f, at, "(\"UT\") has an undefined length");
}

/// A Number of Frames that is not a number (pydicom's `badVR.dcm` has one) is a value
/// routing does not need: the file is accepted, the count treated as absent.
#[test]
fn bad_number_of_frames_is_treated_as_absent() {
    let f = file(ds().text((0x0028, 0x0008), "IS", "1A").pixels(2));
    let md = walk(&f).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(md.number_of_frames, None);
}

#[test]
fn corrupt_or_overlong_deflate_stream_is_malformed() {
    let good = sample(DEFLATED, 100);
    let meta_end = 132 + Meta::new(DEFLATED).bytes().len();
    let mut corrupt = good.clone();
    // Block type 3 is reserved: an invalid deflate stream from its first byte.
    corrupt[meta_end] = 0x07;
    malformed_at(&corrupt, meta_end as u64, "cannot be inflated");
    // After the stream: nothing, or exactly a gzip-style trailer (CRC-32, inflated size).
    let inflated_len = sample(EXPLICIT_LE, 100).len() - 132 - Meta::new(EXPLICIT_LE).bytes().len();
    for trailer in [
        vec![0u8; 4],
        vec![0u8; 9],
        [[0u8; 4], (inflated_len as u32 + 1).to_le_bytes()].concat(),
    ] {
        let mut trailing = good.clone();
        trailing.extend(&trailer);
        malformed_at(
            &trailing,
            good.len() as u64,
            "data follows the end of the deflated dataset",
        );
    }
    let mut with_trailer = good.clone();
    with_trailer.extend([0xAB, 0xCD, 0xEF, 0x01]);
    with_trailer.extend((inflated_len as u32).to_le_bytes());
    assert!(walk(&with_trailer).is_ok());
    assert!(walk_chunked(&with_trailer, 1).is_ok());
}

// --- MissingAttribute -----------------------------------------------------------------------

#[test]
fn missing_routing_attributes_are_named() {
    let cases = [((0x0020, 0x000D), "Study Instance UID", Tag(0x0020, 0x000D))];
    for (drop, want_name, want_tag) in cases {
        // With Pixel Data the error comes as soon as its header arrives: from feed.
        let f = file(ds().without(drop).pixels(1000));
        let mut w = Walker::new(Limits::default());
        match w.feed(&f[..f.len() - 1000]) {
            Err(DicomError::MissingAttribute { name, tag }) => {
                assert_eq!((name, tag), (want_name, want_tag));
            }
            other => panic!("{want_name}: {other:?}"),
        }
        // Without anything past (0028,FFFF), from finish.
        let e = refuse(&file(ds().without(drop)));
        assert!(
            matches!(e, DicomError::MissingAttribute { name, .. } if name == want_name),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            format!("missing attribute: the file has no {want_name} {want_tag}, which identifies the instance: yilian cannot store a file without it (export it again from the modality or PACS)")
        );
    }
    // What identifies an instance is required; what only routing may use is not.
    for optional in [(0x0020, 0x000E), (0x0008, 0x0060), (0x0008, 0x0016)] {
        let md = walk(&file(ds().without(optional).pixels(1000)))
            .unwrap_or_else(|e| panic!("{optional:04X?}: {e}"));
        assert_eq!(md.study_instance_uid, STUDY);
    }
    // SOP Instance UID absent from both the dataset and the file meta.
    let mut meta = Meta::new(EXPLICIT_LE);
    meta.sop_instance = String::new();
    let f = part10_with(&meta, &ds().without((0x0008, 0x0018)).bytes());
    assert!(matches!(
        refuse(&f),
        DicomError::MissingAttribute {
            name: "SOP Instance UID",
            ..
        }
    ));
}

#[test]
fn missing_transfer_syntax_is_named() {
    let mut meta = Meta::new(EXPLICIT_LE);
    meta.ts = String::new();
    let f = part10_with(&meta, &ds().bytes());
    assert!(matches!(
        refuse(&f),
        DicomError::MissingAttribute {
            name: "Transfer Syntax UID",
            ..
        }
    ));
}

// --- Inconsistent ---------------------------------------------------------------------------

#[test]
fn dataset_and_meta_uids_must_agree_in_strict_mode() {
    let strict = Limits {
        meta_must_match: true,
        ..Limits::default()
    };
    for (tag, name) in [
        ((0x0008, 0x0018), "SOP Instance UID"),
        ((0x0008, 0x0016), "SOP Class UID"),
    ] {
        let f = file(ds().text(tag, "UI", "1.2.3.999").pixels(10));
        let at = offset_of(&f, &[0x08, 0x00, tag.1 as u8, 0x00]);
        match walk_by(&f, strict.clone(), || usize::MAX) {
            Err(DicomError::Inconsistent { offset, what }) => {
                assert_eq!(offset, at);
                assert!(what.starts_with(&format!("{name} (0008,00")), "{what}");
                assert!(!what.contains("1.2.3.999"), "no values in the message");
            }
            other => panic!("{name}: {other:?}"),
        }
        // By default the dataset's UID wins: the file routes as what it is.
        let md = walk(&f).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = if tag.1 == 0x0018 {
            md.sop_instance_uid
        } else {
            md.sop_class_uid.unwrap_or_default()
        };
        assert_eq!(got, "1.2.3.999");
    }
}

// --- TooLarge -------------------------------------------------------------------------------

#[test]
fn limits_are_enforced() {
    let limits = |f: fn(&mut Limits)| {
        let mut l = Limits::default();
        f(&mut l);
        l
    };
    let long_name = file(
        ds().text((0x0010, 0x0010), "PN", &"A".repeat(200))
            .pixels(10),
    );
    let e = walk_by(&long_name, limits(|l| l.max_attribute_len = 64), || 100).unwrap_err();
    assert!(
        matches!(&e, DicomError::TooLarge { what, limit: 64, .. } if what == "Patient's Name (0010,0010) declares 200 bytes"),
        "{e}"
    );

    let mut nested = Ds::new(Enc::ExplicitLe).text((0x0008, 0x0100), "SH", "x");
    for _ in 0..5 {
        nested = Ds::new(Enc::ExplicitLe).seq((0x0040, 0xA730), vec![item(nested, false)], false);
    }
    let deep = file(ds().raw((0x0040, 0xA730), nested.bytes()));
    assert!(walk_by(&deep, limits(|l| l.max_depth = 5), || 7).is_ok());
    let e = walk_by(&deep, limits(|l| l.max_depth = 4), || 7).unwrap_err();
    assert!(
        matches!(&e, DicomError::TooLarge { what, limit: 4, .. } if what.contains("opens sequence level 5")),
        "{e}"
    );

    let big_header = file(ds().elem((0x0009, 0x1001), "OB", &[0; 4000]).pixels(10));
    let e = walk_by(&big_header, limits(|l| l.max_header_len = 2000), || 512).unwrap_err();
    assert!(matches!(e, DicomError::TooLarge { limit: 2000, .. }), "{e}");
    // The limit applies only before the routing attributes are complete.
    let big_after = file(ds().elem((0x0029, 0x1001), "OB", &[0; 4000]).pixels(10));
    assert!(walk_by(&big_after, limits(|l| l.max_header_len = 2000), || 512).is_ok());
}

// --- Unsupported, Io, and a refused walker stays refused -------------------------------------

#[test]
fn non_standard_transfer_syntax_is_unsupported() {
    let f = part10("1.2.840.113619.5.2", &ds().bytes());
    match refuse(&f) {
        DicomError::Unsupported { what } => {
            assert!(
                what.contains("\"1.2.840.113619.5.2\" is not a standard DICOM transfer syntax"),
                "{what}"
            );
        }
        other => panic!("{other}"),
    }
}

#[test]
fn unreadable_file_is_io() {
    let e = validate_file(std::path::Path::new("/nonexistent/yilian/x.dcm")).unwrap_err();
    assert!(matches!(e, DicomError::Io(_)), "{e}");
}

#[test]
fn a_refused_stream_stays_refused() {
    let mut f = sample(EXPLICIT_LE, 10);
    f[128] = b'X';
    let mut w = Walker::new(Limits::default());
    let first = w.feed(&f).unwrap_err().to_string();
    assert_eq!(w.feed(&f).unwrap_err().to_string(), first);
    assert_eq!(w.finish().unwrap_err().to_string(), first);
}

#[test]
fn errors_are_send_sync_and_static() {
    fn check<T: std::error::Error + Send + Sync + 'static>() {}
    check::<DicomError>();
    let _: Option<Metadata> = None;
}
