//! Hand-built streams that the walker must accept: every transfer syntax, sequences of both
//! length kinds, encapsulated pixel data, and when the metadata becomes available.

mod common;

use common::build::*;
use common::{ok, walk, walk_chunked};
use yilian_dicom::{Limits, Metadata, PixelDataInfo, Walker};

fn assert_routing(md: &Metadata, ts: &str) {
    assert_eq!(md.transfer_syntax, ts);
    assert_eq!(md.sop_class_uid.as_deref(), Some(CT_IMAGE_STORAGE));
    assert_eq!(md.sop_instance_uid, SOP_INSTANCE);
    assert_eq!(md.study_instance_uid, STUDY);
    assert_eq!(md.series_instance_uid.as_deref(), Some(SERIES));
    assert_eq!(md.modality.as_deref(), Some("CT"));
    assert_eq!(md.body_part.as_deref(), Some("CHEST"));
    assert_eq!(md.number_of_frames, Some(1));
    assert_eq!(md.specific_character_set.as_deref(), Some("ISO_IR 192"));
    assert_eq!(md.patient.name.expose(), PATIENT_NAME);
    assert_eq!(md.patient.id.expose(), PATIENT_ID);
    assert_eq!(md.patient.accession_number.expose(), ACCESSION);
}

/// The offset of the first byte of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> u64 {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present") as u64
}

#[test]
fn native_pixel_data_in_every_uncompressed_syntax() {
    for ts in [IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE] {
        let file = sample(ts, 1000);
        let md = ok(walk(&file), ts);
        assert_routing(&md, ts);
        let value_offset = (file.len() - 1000) as u64;
        assert_eq!(
            md.pixel_data,
            Some(PixelDataInfo {
                value_offset,
                length: Some(1000)
            }),
            "{ts}"
        );
    }
}

#[test]
fn deflated_dataset_is_inflated_on_the_fly() {
    let file = sample(DEFLATED, 5000);
    let plain = sample(EXPLICIT_LE, 5000);
    assert!(
        file.len() < plain.len(),
        "the test file really is compressed"
    );
    for size in [1, 7, 100, 4096, usize::MAX] {
        let md = ok(walk_chunked(&file, size), "deflated");
        assert_routing(&md, DEFLATED);
        // Offsets inside a deflated dataset count inflated bytes after the file meta.
        let dataset_len = plain.len() - 132 - Meta::new(EXPLICIT_LE).bytes().len();
        let meta_end = 132 + Meta::new(DEFLATED).bytes().len();
        let pixel = md.pixel_data.expect("pixel data");
        assert_eq!(pixel.value_offset, (meta_end + dataset_len - 5000) as u64);
        assert_eq!(pixel.length, Some(5000));
    }
}

#[test]
fn file_meta_without_group_length_in_every_syntax() {
    for ts in [
        IMPLICIT_LE,
        EXPLICIT_LE,
        EXPLICIT_BE,
        DEFLATED,
        JPEG_BASELINE,
    ] {
        let enc = Enc::of(if ts == DEFLATED { EXPLICIT_LE } else { ts });
        let ds = routing(enc).pixels(64).bytes();
        let file = part10_with(&Meta::new(ts).without_group_length(), &ds);
        for size in [1, 3, 5, 4096] {
            let md = ok(walk_chunked(&file, size), ts);
            assert_routing(&md, ts);
            assert_eq!(md.pixel_data.and_then(|p| p.length), Some(64), "{ts}");
        }
    }
}

#[test]
fn encapsulated_pixel_data_in_compressed_syntaxes() {
    for ts in [
        JPEG_BASELINE,
        RLE,
        "1.2.840.10008.1.2.4.91",
        "1.2.840.10008.1.2.4.201",
    ] {
        let frames: [&[u8]; 3] = [&[0xFF, 0xD8, 1, 2, 0xFF, 0xD9], &[9; 1000], &[7; 2]];
        let ds = routing(Enc::ExplicitLe).encapsulated(PIXEL_DATA, &frames);
        let file = part10(ts, &ds.bytes());
        let md = ok(walk(&file), ts);
        assert_routing(&md, ts);
        let pixel = md.pixel_data.expect("pixel data");
        assert_eq!(pixel.length, None, "{ts}: undefined length");
        // The value starts right after the 12-byte explicit VR header.
        let header = header(Enc::ExplicitLe, PIXEL_DATA, "OB", UNDEFINED);
        assert_eq!(pixel.value_offset, find(&file, &header) + 12);
    }
}

#[test]
fn nested_sequences_of_both_length_kinds_in_every_syntax() {
    for ts in [IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE, DEFLATED] {
        let enc = Enc::of(if ts == DEFLATED { EXPLICIT_LE } else { ts });
        let leaf = |v: &str| Ds::new(enc).text((0x0008, 0x0100), "SH", v);
        let middle = |defined_seq: bool| {
            Ds::new(enc)
                .text((0x0008, 0x0102), "SH", "DCM")
                .seq(
                    (0x0040, 0xA730),
                    vec![item(leaf("a"), true), item(leaf("bb"), false)],
                    defined_seq,
                )
                .seq((0x0040, 0xA731), vec![], defined_seq)
        };
        let top_items = vec![
            item(middle(true), true),
            item(middle(false), false),
            item(middle(true), false),
            item(middle(false), true),
            item(Ds::new(enc), true),
            item(Ds::new(enc), false),
        ];
        let ds = routing(enc)
            .seq((0x0008, 0x1140), top_items, false)
            .seq((0x0008, 0x1250), vec![item(middle(false), true)], true)
            .seq((0x0010, 0x1002), vec![], false)
            .seq((0x0054, 0x0016), vec![item(middle(true), false)], false)
            .pixels(10);
        let file = part10(ts, &ds.bytes());
        for size in [1, 7, usize::MAX] {
            let md = ok(walk_chunked(&file, size), ts);
            assert_routing(&md, ts);
        }
    }
}

#[test]
fn un_sequence_of_undefined_length_is_read_as_implicit_vr() {
    for ts in [EXPLICIT_LE, EXPLICIT_BE] {
        let inner = Ds::new(Enc::Implicit)
            .text((0x0009, 0x0010), "LO", "PRIVATE CREATOR")
            .seq(
                (0x0009, 0x1001),
                vec![item(
                    Ds::new(Enc::Implicit).text((0x0009, 0x1002), "LO", "x"),
                    false,
                )],
                false,
            );
        let ds = routing(Enc::of(ts))
            .un_seq((0x0009, 0x1010), vec![item(inner, false)])
            .pixels(4);
        let md = ok(walk(&part10(ts, &ds.bytes())), ts);
        assert_routing(&md, ts);
    }
}

#[test]
fn encapsulated_icon_inside_a_sequence_item() {
    // An Icon Image Sequence holds its own (encapsulated) Pixel Data inside an item: the
    // fragments must not be read as elements.
    let icon = Ds::new(Enc::ExplicitLe)
        .text((0x0028, 0x0010), "US", "aa")
        .encapsulated(PIXEL_DATA, &[&[0xFF, 0xFE, 0xE0, 0xDD, 0, 0, 0, 0]]);
    let ds = routing(Enc::ExplicitLe)
        .seq((0x0088, 0x0200), vec![item(icon, false)], false)
        .encapsulated(PIXEL_DATA, &[&[1, 2, 3, 4]]);
    let file = part10(JPEG_BASELINE, &ds.bytes());
    let md = ok(walk(&file), "icon");
    assert_eq!(md.pixel_data.and_then(|p| p.length), None);
}

#[test]
fn metadata_appears_when_the_pixel_data_header_is_read() {
    let file = sample(EXPLICIT_LE, 2000);
    let pixel_value = file.len() - 2000;
    let mut w = Walker::new(Limits::default());
    // Everything up to the last byte of the Pixel Data header: not yet.
    w.feed(&file[..pixel_value - 1]).expect("header");
    assert!(w.metadata().is_none());
    w.feed(&file[pixel_value - 1..pixel_value])
        .expect("header end");
    let md = w
        .metadata()
        .expect("metadata once the Pixel Data header is in");
    assert_routing(md, EXPLICIT_LE);
    assert_eq!(
        md.pixel_data.map(|p| p.value_offset),
        Some(pixel_value as u64)
    );
    w.feed(&file[pixel_value..]).expect("pixels");
    assert_eq!(w.position(), file.len() as u64);
    assert_routing(&w.finish().expect("complete"), EXPLICIT_LE);
}

#[test]
fn metadata_appears_at_the_first_element_past_group_0028() {
    // An RT Plan has no Pixel Data: the metadata is there once (300A,xxxx) begins, and
    // pixel_data stays None.
    let ds = routing(Enc::Implicit)
        .text((0x300A, 0x0002), "SH", "PLAN")
        .elem((0x300A, 0x0004), "ST", &[b'x'; 5000]);
    let file = part10(IMPLICIT_LE, &ds.bytes());
    let plan_at = find(&file, &[0x0A, 0x30, 0x02, 0x00]) as usize;
    let mut w = Walker::new(Limits::default());
    w.feed(&file[..plan_at]).expect("before");
    assert!(w.metadata().is_none());
    w.feed(&file[plan_at..plan_at + 8]).expect("header");
    assert!(w.metadata().is_some_and(|m| m.pixel_data.is_none()));
    w.feed(&file[plan_at + 8..]).expect("rest");
    let md = w.finish().expect("complete");
    assert_routing(&md, IMPLICIT_LE);
    assert_eq!(md.pixel_data, None);
}

#[test]
fn metadata_without_any_element_past_0028_comes_from_finish() {
    let file = part10(EXPLICIT_LE, &routing(Enc::ExplicitLe).bytes());
    let mut w = Walker::new(Limits::default());
    w.feed(&file).expect("all");
    assert!(
        w.metadata().is_none(),
        "the walker cannot know nothing more comes"
    );
    assert_routing(&w.finish().expect("complete"), EXPLICIT_LE);
}

#[test]
fn padding_after_pixel_data_is_accepted() {
    let ds = routing(Enc::ExplicitLe)
        .pixels(100)
        .elem((0xFFFC, 0xFFFC), "OB", &[0; 256]);
    let md = ok(walk(&part10(EXPLICIT_LE, &ds.bytes())), "padding");
    assert_eq!(md.pixel_data.and_then(|p| p.length), Some(100));
}

#[test]
fn values_are_trimmed_and_meta_uids_fill_in() {
    let ds = routing(Enc::ExplicitLe)
        .without((0x0008, 0x0016))
        .elem(
            (0x0008, 0x0018),
            "UI",
            format!("{SOP_INSTANCE} ").as_bytes(),
        )
        .elem((0x0008, 0x0060), "CS", b" MR ")
        .elem((0x0018, 0x0015), "CS", b"    ")
        .elem((0x0028, 0x0008), "IS", b"+12 ");
    let md = ok(walk(&part10(EXPLICIT_LE, &ds.bytes())), "trim");
    assert_eq!(
        md.sop_class_uid.as_deref(),
        Some(CT_IMAGE_STORAGE),
        "from (0002,0002)"
    );
    assert_eq!(md.sop_instance_uid, SOP_INSTANCE);
    assert_eq!(md.modality.as_deref(), Some("MR"));
    assert_eq!(md.body_part, None);
    assert_eq!(md.number_of_frames, Some(12));
}

#[test]
fn gb18030_names_are_decoded() {
    // 王^小东 in GB18030.
    let name: &[u8] = &[0xCD, 0xF5, b'^', 0xD0, 0xA1, 0xB6, 0xAB, b' '];
    let ds = routing(Enc::ExplicitLe)
        .text((0x0008, 0x0005), "CS", "GB18030")
        .elem((0x0010, 0x0010), "PN", name);
    let md = ok(walk(&part10(EXPLICIT_LE, &ds.bytes())), "gb18030");
    assert_eq!(md.patient.name.expose(), "王^小东");
    assert_eq!(md.specific_character_set.as_deref(), Some("GB18030"));
}

#[test]
fn a_huge_value_is_skipped_without_being_kept() {
    // 3 GiB of pixel data fed as the same 64 KiB chunk: O(1) per chunk, nothing buffered.
    let len: u32 = 3 << 30;
    let mut head = part10(EXPLICIT_LE, &routing(Enc::ExplicitLe).bytes());
    head.extend(header(Enc::ExplicitLe, PIXEL_DATA, "OW", len));
    let chunk = vec![0u8; 64 * 1024];
    let mut w = Walker::new(Limits::default());
    w.feed(&head).expect("head");
    for _ in 0..(len as usize / chunk.len()) {
        w.feed(&chunk).expect("pixels");
    }
    let md = w.finish().expect("complete");
    assert_eq!(md.pixel_data.and_then(|p| p.length), Some(u64::from(len)));
}
