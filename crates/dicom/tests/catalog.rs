//! The catalog attributes (C-FIND/QIDO) the walker reads, and their character sets.

mod common;

use common::build::*;
use common::pydicom::sample;
use common::{ok, walk, walk_chunked};
use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use yilian_dicom::{validate_file, Charset, Limits};

#[test]
fn chinese_names_in_pydicom_samples() {
    // chrX1: ISO_IR 192, chrX2: GB18030.
    let x1 = validate_file(&sample("chrX1.dcm")).expect("chrX1");
    assert_eq!(x1.catalog.patient.name.expose(), "Wang^XiaoDong=王^小東=");
    assert_eq!(x1.catalog.specific_character_set, "ISO_IR 192");
    let x2 = validate_file(&sample("chrX2.dcm")).expect("chrX2");
    assert_eq!(x2.catalog.patient.name.expose(), "Wang^XiaoDong=王^小东=");
    assert!(!x2.catalog.text_guessed && !x2.catalog.text_lossy);
    // A default never overrides a declared, decodable character set.
    let with_default = x2.catalog_with_default(Some(Charset::Latin1));
    assert_eq!(with_default.patient.name.expose(), "Wang^XiaoDong=王^小东=");
    // ISO 2022 with JIS X 0201 and JIS X 0208 (chrH32).
    let h32 = validate_file(&sample("chrH32.dcm")).expect("chrH32");
    assert_eq!(
        h32.catalog.patient.name.expose(),
        "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう"
    );
}

#[test]
fn a_gbk_name_without_specific_character_set_uses_the_site_default() {
    // 王^小东 in GBK, and a GBK study description; no (0008,0005) at all.
    let name: &[u8] = &[0xCD, 0xF5, b'^', 0xD0, 0xA1, 0xB6, 0xAB, b' '];
    let description: &[u8] = &[0xD0, 0xD8, 0xB2, 0xBF, b'C', b'T']; // 胸部CT
    let ds = routing(Enc::ExplicitLe)
        .without((0x0008, 0x0005))
        .elem((0x0010, 0x0010), "PN", name)
        .elem((0x0008, 0x1030), "LO", description)
        .pixels(16);
    let md = ok(walk(&part10(EXPLICIT_LE, &ds.bytes())), "GBK");
    assert_eq!(md.specific_character_set, None);
    // Without a default the bytes are kept as Latin-1 (nothing lost, but not Chinese).
    assert_eq!(md.catalog.patient.name.expose(), "Íõ^Ð¡¶«");
    assert!(md.catalog.text_guessed);
    let c = md.catalog_with_default(Some(Charset::Gbk));
    assert_eq!(c.patient.name.expose(), "王^小东");
    assert_eq!(c.study.description, "胸部CT");
    assert!(c.text_guessed && !c.text_lossy);
}

#[test]
fn an_iso_2022_ir_58_name() {
    // G1 form (PS3.5 J.3, as pydicom writes it) and G0 form (ESC $ A ... ESC ( B).
    let g1 = b"Wang^XiaoDong=\x1b$)A\xcd\xf5^\x1b$)A\xd0\xa1\xb6\xab=";
    let g0 = b"Wang^XiaoDong=\x1b$AMu\x1b(B^\x1b$AP!6+\x1b(B=";
    for value in [&g1[..], &g0[..]] {
        let ds = routing(Enc::ExplicitLe)
            .text((0x0008, 0x0005), "CS", "\\ISO 2022 IR 58")
            .elem((0x0010, 0x0010), "PN", value)
            .pixels(16);
        let md = ok(walk(&part10(EXPLICIT_LE, &ds.bytes())), "IR 58");
        assert_eq!(md.catalog.patient.name.expose(), "Wang^XiaoDong=王^小东=");
        assert_eq!(md.patient.name.expose(), "Wang^XiaoDong=王^小东=");
    }
}

#[test]
fn every_catalog_attribute_is_read_in_every_byte_order() {
    for (ts, enc) in [
        (IMPLICIT_LE, Enc::Implicit),
        (EXPLICIT_LE, Enc::ExplicitLe),
        (EXPLICIT_BE, Enc::ExplicitBe),
        (DEFLATED, Enc::ExplicitLe),
    ] {
        let u16v = |v: u16| {
            if enc == Enc::ExplicitBe {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let ds = routing(enc)
            .text((0x0008, 0x0023), "DA", "2025.01.02")
            .text((0x0008, 0x0030), "TM", "10:20:30")
            .text((0x0008, 0x0090), "PN", "Li^Si")
            .text((0x0008, 0x1030), "LO", "Chest CT")
            .text((0x0008, 0x103E), "LO", "Axial 5mm")
            .text((0x0010, 0x0021), "LO", "HOSP-A")
            .text((0x0010, 0x0030), "DA", "19700101")
            .text((0x0010, 0x0040), "CS", "F")
            .text((0x0020, 0x0010), "SH", "S-1")
            .text((0x0020, 0x0011), "IS", "3")
            .text((0x0020, 0x0013), "IS", "+42")
            .elem((0x0028, 0x0010), "US", &u16v(512))
            .elem((0x0028, 0x0011), "US", &u16v(256))
            .pixels(16);
        let bytes = part10(ts, &ds.bytes());
        let md = ok(walk_chunked(&bytes, 7), ts);
        let c = &md.catalog;
        assert_eq!(c.patient.name.expose(), PATIENT_NAME, "{ts}");
        assert_eq!(c.patient.id.expose(), PATIENT_ID);
        assert_eq!(c.patient.issuer_of_id.expose(), "HOSP-A");
        assert_eq!(c.patient.birth_date.expose(), "19700101");
        assert_eq!(c.patient.sex, "F");
        assert_eq!(c.study.uid, STUDY);
        assert_eq!(c.study.date, "20250101");
        assert_eq!(c.study.time, "102030");
        assert_eq!(c.study.accession_number.expose(), ACCESSION);
        assert_eq!(c.study.id.expose(), "S-1");
        assert_eq!(c.study.description, "Chest CT");
        assert_eq!(c.study.referring_physician.expose(), "Li^Si");
        assert_eq!(c.series.uid, SERIES);
        assert_eq!(c.series.modality, "CT");
        assert_eq!(c.series.number, Some(3));
        assert_eq!(c.series.description, "Axial 5mm");
        assert_eq!(c.series.body_part, "CHEST");
        assert_eq!(c.instance.sop_uid, SOP_INSTANCE);
        assert_eq!(c.instance.sop_class_uid, CT_IMAGE_STORAGE);
        assert_eq!(c.instance.number, Some(42));
        assert_eq!(c.instance.frames, Some(1));
        assert_eq!(
            (c.instance.rows, c.instance.columns),
            (Some(512), Some(256))
        );
        assert_eq!(c.instance.content_date, "20250102");
        // Nothing of it in Debug output.
        let shown = format!("{md:?}");
        for secret in [
            PATIENT_NAME,
            PATIENT_ID,
            ACCESSION,
            "Li^Si",
            "19700101",
            "HOSP-A",
        ] {
            assert!(!shown.contains(secret), "{ts}: {secret} in {shown}");
        }
    }
}

#[test]
fn an_overlong_catalog_value_is_cut_not_refused() {
    let long = "x".repeat(6000);
    let ds = routing(Enc::ExplicitLe)
        .text((0x0008, 0x1030), "LT", &long)
        .pixels(16);
    let md = ok(walk(&part10(EXPLICIT_LE, &ds.bytes())), "long");
    assert_eq!(
        md.catalog.study.description.len(),
        Limits::default().max_attribute_len as usize
    );
}

#[test]
fn catalog_agrees_with_dicom_object_on_samples() {
    for name in [
        "CT_small.dcm",
        "MR_small.dcm",
        "MR_small_bigendian.dcm",
        "ExplVR_BigEnd.dcm",
        "examples_ybr_color.dcm",
        "image_dfl.dcm",
        "JPEG2000.dcm",
    ] {
        let path = sample(name);
        let md = validate_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let obj = OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .open_file(&path)
            .expect("oracle");
        let text = |tag| {
            obj.get(tag)
                .and_then(|e| e.to_str().ok())
                .map(|s| s.trim_matches(['\0', ' ']).to_owned())
                .unwrap_or_default()
        };
        let int = |tag| obj.get(tag).and_then(|e| e.to_int::<i64>().ok());
        let c = &md.catalog;
        // Old files write dates as YYYY.MM.DD and times as HH:MM:SS.
        let date = |tag| text(tag).replace('.', "");
        assert_eq!(c.study.date, date(tags::STUDY_DATE), "{name}");
        assert_eq!(
            c.study.time,
            text(tags::STUDY_TIME).replace(':', ""),
            "{name}"
        );
        assert_eq!(c.study.description, text(tags::STUDY_DESCRIPTION), "{name}");
        assert_eq!(
            c.series.description,
            text(tags::SERIES_DESCRIPTION),
            "{name}"
        );
        assert_eq!(c.patient.sex, text(tags::PATIENT_SEX), "{name}");
        assert_eq!(
            c.patient.birth_date.expose(),
            &date(tags::PATIENT_BIRTH_DATE),
            "{name}"
        );
        assert_eq!(c.instance.rows.map(i64::from), int(tags::ROWS), "{name}");
        assert_eq!(
            c.instance.columns.map(i64::from),
            int(tags::COLUMNS),
            "{name}"
        );
        assert_eq!(
            c.instance.number.map(i64::from),
            int(tags::INSTANCE_NUMBER),
            "{name}"
        );
        assert_eq!(
            c.series.number.map(i64::from),
            int(tags::SERIES_NUMBER),
            "{name}"
        );
    }
}
