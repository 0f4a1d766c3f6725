//! Hand-built DICOM Part 10 byte streams, for tests and benches.

/// Transfer syntax UIDs used by the tests.
pub const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
pub const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
pub const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";
pub const DEFLATED: &str = "1.2.840.10008.1.2.1.99";
pub const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";
pub const RLE: &str = "1.2.840.10008.1.2.5";

pub const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
pub const SOP_INSTANCE: &str = "1.2.826.0.1.3680043.8.498.10001";
pub const STUDY: &str = "1.2.826.0.1.3680043.8.498.20002";
pub const SERIES: &str = "1.2.826.0.1.3680043.8.498.30003";
pub const PATIENT_NAME: &str = "Zhang^Wei";
pub const PATIENT_ID: &str = "PID-778899";
pub const ACCESSION: &str = "ACC-445566";

pub type Tag = (u16, u16);
pub const PIXEL_DATA: Tag = (0x7FE0, 0x0010);
pub const UNDEFINED: u32 = 0xFFFF_FFFF;

/// Byte order and VR form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enc {
    Implicit,
    ExplicitLe,
    ExplicitBe,
}

impl Enc {
    fn u16(self, v: u16) -> [u8; 2] {
        match self {
            Enc::ExplicitBe => v.to_be_bytes(),
            _ => v.to_le_bytes(),
        }
    }

    fn u32(self, v: u32) -> [u8; 4] {
        match self {
            Enc::ExplicitBe => v.to_be_bytes(),
            _ => v.to_le_bytes(),
        }
    }

    /// The dataset encoding of a transfer syntax.
    pub fn of(ts: &str) -> Enc {
        match ts {
            IMPLICIT_LE => Enc::Implicit,
            EXPLICIT_BE => Enc::ExplicitBe,
            _ => Enc::ExplicitLe,
        }
    }
}

const LONG_VRS: [&str; 13] = [
    "OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV",
];

/// An element header in encoding `enc`.
pub fn header(enc: Enc, tag: Tag, vr: &str, len: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    out.extend(enc.u16(tag.0));
    out.extend(enc.u16(tag.1));
    if tag.0 == 0xFFFE || enc == Enc::Implicit {
        out.extend(enc.u32(len));
    } else if LONG_VRS.contains(&vr) {
        out.extend(vr.as_bytes());
        out.extend([0, 0]);
        out.extend(enc.u32(len));
    } else {
        out.extend(vr.as_bytes());
        out.extend(enc.u16(u16::try_from(len).unwrap_or(u16::MAX)));
    }
    out
}

/// A dataset (or item) under construction: elements are kept with their tags and written in
/// ascending tag order by [`Ds::bytes`], in insertion order by [`Ds::bytes_as_inserted`].
#[derive(Clone, Debug)]
pub struct Ds {
    pub enc: Enc,
    elements: Vec<(Tag, Vec<u8>)>,
}

/// An item of a sequence.
pub struct Item {
    pub ds: Ds,
    pub defined: bool,
}

impl Ds {
    pub fn new(enc: Enc) -> Self {
        Ds {
            enc,
            elements: Vec::new(),
        }
    }

    /// Any bytes, filed under `tag` for ordering.
    pub fn raw(mut self, tag: Tag, bytes: Vec<u8>) -> Self {
        self.elements.retain(|(t, _)| *t != tag);
        self.elements.push((tag, bytes));
        self
    }

    pub fn without(mut self, tag: Tag) -> Self {
        self.elements.retain(|(t, _)| *t != tag);
        self
    }

    /// An element with a value.
    pub fn elem(self, tag: Tag, vr: &str, value: &[u8]) -> Self {
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        let mut bytes = header(self.enc, tag, vr, len);
        bytes.extend_from_slice(value);
        self.raw(tag, bytes)
    }

    /// A text element, padded to even length (UI with NUL, others with a space).
    pub fn text(self, tag: Tag, vr: &str, s: &str) -> Self {
        let mut value = s.as_bytes().to_vec();
        if value.len() % 2 == 1 {
            value.push(if vr == "UI" { 0 } else { b' ' });
        }
        self.elem(tag, vr, &value)
    }

    /// A sequence of items.
    pub fn seq(self, tag: Tag, items: Vec<Item>, defined: bool) -> Self {
        let enc = self.enc;
        self.seq_with_vr(tag, "SQ", enc, items, defined)
    }

    /// A UN element of undefined length holding a sequence in implicit VR LE (CP-246).
    pub fn un_seq(self, tag: Tag, items: Vec<Item>) -> Self {
        self.seq_with_vr(tag, "UN", Enc::Implicit, items, false)
    }

    fn seq_with_vr(self, tag: Tag, vr: &str, inner: Enc, items: Vec<Item>, defined: bool) -> Self {
        let mut body = Vec::new();
        for item in items {
            let content = item.ds.bytes();
            if item.defined {
                body.extend(header(inner, (0xFFFE, 0xE000), "", content.len() as u32));
                body.extend(content);
            } else {
                body.extend(header(inner, (0xFFFE, 0xE000), "", UNDEFINED));
                body.extend(content);
                body.extend(header(inner, (0xFFFE, 0xE00D), "", 0));
            }
        }
        let mut bytes = if defined {
            header(self.enc, tag, vr, body.len() as u32)
        } else {
            header(self.enc, tag, vr, UNDEFINED)
        };
        bytes.extend(body);
        if !defined {
            bytes.extend(header(inner, (0xFFFE, 0xE0DD), "", 0));
        }
        self.raw(tag, bytes)
    }

    /// Native Pixel Data of `len` bytes, filled with a recognisable pattern.
    pub fn pixels(self, len: usize) -> Self {
        let value: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        self.elem(PIXEL_DATA, "OW", &value)
    }

    /// Encapsulated Pixel Data: an empty basic offset table, then the fragments.
    pub fn encapsulated(self, tag: Tag, fragments: &[&[u8]]) -> Self {
        let enc = self.enc;
        let mut bytes = header(enc, tag, "OB", UNDEFINED);
        bytes.extend(header(enc, (0xFFFE, 0xE000), "", 0));
        for f in fragments {
            bytes.extend(header(enc, (0xFFFE, 0xE000), "", f.len() as u32));
            bytes.extend_from_slice(f);
        }
        bytes.extend(header(enc, (0xFFFE, 0xE0DD), "", 0));
        self.raw(tag, bytes)
    }

    /// The elements in ascending tag order.
    pub fn bytes(&self) -> Vec<u8> {
        let mut sorted: Vec<&(Tag, Vec<u8>)> = self.elements.iter().collect();
        sorted.sort_by_key(|(t, _)| *t);
        sorted.into_iter().flat_map(|(_, b)| b.clone()).collect()
    }

    /// The elements in the order they were added.
    pub fn bytes_as_inserted(&self) -> Vec<u8> {
        self.elements.iter().flat_map(|(_, b)| b.clone()).collect()
    }
}

pub fn item(ds: Ds, defined: bool) -> Item {
    Item { ds, defined }
}

/// Every routing attribute, in encoding `enc`.
pub fn routing(enc: Enc) -> Ds {
    Ds::new(enc)
        .text((0x0008, 0x0005), "CS", "ISO_IR 192")
        .text((0x0008, 0x0016), "UI", CT_IMAGE_STORAGE)
        .text((0x0008, 0x0018), "UI", SOP_INSTANCE)
        .text((0x0008, 0x0020), "DA", "20250101")
        .text((0x0008, 0x0050), "SH", ACCESSION)
        .text((0x0008, 0x0060), "CS", "CT")
        .text((0x0010, 0x0010), "PN", PATIENT_NAME)
        .text((0x0010, 0x0020), "LO", PATIENT_ID)
        .text((0x0018, 0x0015), "CS", "CHEST")
        .text((0x0020, 0x000D), "UI", STUDY)
        .text((0x0020, 0x000E), "UI", SERIES)
        .text((0x0028, 0x0008), "IS", "1")
}

/// Options for the file meta information.
#[derive(Clone, Debug)]
pub struct Meta {
    pub ts: String,
    pub sop_class: String,
    pub sop_instance: String,
    pub group_length: bool,
}

impl Meta {
    pub fn new(ts: &str) -> Self {
        Meta {
            ts: ts.to_owned(),
            sop_class: CT_IMAGE_STORAGE.to_owned(),
            sop_instance: SOP_INSTANCE.to_owned(),
            group_length: true,
        }
    }

    pub fn without_group_length(mut self) -> Self {
        self.group_length = false;
        self
    }

    /// The file meta information group, explicit VR LE.
    pub fn bytes(&self) -> Vec<u8> {
        let body = Ds::new(Enc::ExplicitLe)
            .elem((0x0002, 0x0001), "OB", &[0, 1])
            .text((0x0002, 0x0002), "UI", &self.sop_class)
            .text((0x0002, 0x0003), "UI", &self.sop_instance)
            .text((0x0002, 0x0010), "UI", &self.ts)
            .text((0x0002, 0x0012), "UI", "1.2.826.0.1.3680043.8.498.1")
            .bytes();
        let mut out = Vec::new();
        if self.group_length {
            out.extend(header(Enc::ExplicitLe, (0x0002, 0x0000), "UL", 4));
            out.extend((body.len() as u32).to_le_bytes());
        }
        out.extend(body);
        out
    }
}

/// Preamble, `DICM`, then the file meta and the dataset bytes (deflated if `meta.ts` says so).
pub fn part10_with(meta: &Meta, dataset: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    out.extend(meta.bytes());
    if meta.ts == DEFLATED {
        out.extend(deflate(dataset));
    } else {
        out.extend_from_slice(dataset);
    }
    out
}

/// A Part 10 file with the default meta for `ts`.
pub fn part10(ts: &str, dataset: &[u8]) -> Vec<u8> {
    part10_with(&Meta::new(ts), dataset)
}

/// Raw DEFLATE (RFC 1951), as Deflated Explicit VR Little Endian uses.
pub fn deflate(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("write to a Vec");
    enc.finish().expect("finish a Vec")
}

/// A complete CT-like file: routing attributes, a nested sequence, native pixel data.
pub fn sample(ts: &str, pixel_len: usize) -> Vec<u8> {
    let enc = Enc::of(if ts == DEFLATED { EXPLICIT_LE } else { ts });
    let referenced = Ds::new(enc)
        .text((0x0008, 0x1150), "UI", CT_IMAGE_STORAGE)
        .text((0x0008, 0x1155), "UI", "1.2.3.4.5.6");
    let ds = routing(enc)
        .seq((0x0008, 0x1140), vec![item(referenced, true)], false)
        .pixels(pixel_len);
    part10(ts, &ds.bytes())
}
