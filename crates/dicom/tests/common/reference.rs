//! A small, independent, pull-style reference parser: it finds the top-level elements of a
//! whole (non-deflated) file, to tell the truncation tests where the element boundaries are.
//! It trusts its input (it is only run on valid samples) and panics on anything odd.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Enc {
    Implicit,
    Le,
    Be,
}

#[derive(Clone, Copy, Debug)]
pub struct TopLevel {
    pub tag: (u16, u16),
    pub start: usize,
    pub end: usize,
}

pub struct Layout {
    /// End of the file meta information.
    pub meta_end: usize,
    pub elements: Vec<TopLevel>,
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn u16(&mut self, enc: Enc) -> u16 {
        let v = [self.b[self.pos], self.b[self.pos + 1]];
        self.pos += 2;
        if enc == Enc::Be {
            u16::from_be_bytes(v)
        } else {
            u16::from_le_bytes(v)
        }
    }

    fn u32(&mut self, enc: Enc) -> u32 {
        let v = [
            self.b[self.pos],
            self.b[self.pos + 1],
            self.b[self.pos + 2],
            self.b[self.pos + 3],
        ];
        self.pos += 4;
        if enc == Enc::Be {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    }

    /// Reads one element header: (tag, vr, len).
    fn header(&mut self, enc: Enc) -> ((u16, u16), [u8; 2], u32) {
        let tag = (self.u16(enc), self.u16(enc));
        if tag.0 == 0xFFFE || enc == Enc::Implicit {
            return (tag, *b"--", self.u32(enc));
        }
        let vr = [self.b[self.pos], self.b[self.pos + 1]];
        self.pos += 2;
        let long = [
            b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT",
            b"UV",
        ]
        .contains(&&vr);
        let len = if long {
            self.pos += 2;
            self.u32(enc)
        } else {
            u32::from(self.u16(enc))
        };
        (tag, vr, len)
    }

    /// Skips the rest of one element whose header was just read.
    fn value(&mut self, enc: Enc, tag: (u16, u16), vr: [u8; 2], len: u32) {
        if len != 0xFFFF_FFFF {
            if &vr == b"SQ" {
                let end = self.pos + len as usize;
                while self.pos < end {
                    self.item(enc);
                }
                assert_eq!(self.pos, end);
            } else {
                self.pos += len as usize;
            }
            return;
        }
        let inner = if &vr == b"UN" { Enc::Implicit } else { enc };
        let fragments = tag == (0x7FE0, 0x0010);
        loop {
            let (t, _, l) = self.header(inner);
            match t {
                (0xFFFE, 0xE0DD) => return,
                (0xFFFE, 0xE000) if fragments => self.pos += l as usize,
                (0xFFFE, 0xE000) => self.item_body(inner, l),
                other => panic!("unexpected {other:X?} in a sequence at {}", self.pos),
            }
        }
    }

    fn item(&mut self, enc: Enc) {
        let (t, _, l) = self.header(enc);
        assert_eq!(t, (0xFFFE, 0xE000));
        self.item_body(enc, l);
    }

    fn item_body(&mut self, enc: Enc, len: u32) {
        if len != 0xFFFF_FFFF {
            let end = self.pos + len as usize;
            while self.pos < end {
                let (t, vr, l) = self.header(enc);
                self.value(enc, t, vr, l);
            }
            return;
        }
        loop {
            let (t, vr, l) = self.header(enc);
            if t == (0xFFFE, 0xE00D) {
                return;
            }
            self.value(enc, t, vr, l);
        }
    }
}

/// The layout of a valid, non-deflated Part 10 file.
pub fn layout(file: &[u8]) -> Layout {
    let mut c = Cursor { b: file, pos: 132 };
    let mut ts = String::new();
    while c.pos + 4 <= file.len() && u16::from_le_bytes([file[c.pos], file[c.pos + 1]]) == 2 {
        let (tag, vr, len) = c.header(Enc::Le);
        if tag == (0x0002, 0x0010) {
            ts = String::from_utf8_lossy(&file[c.pos..c.pos + len as usize])
                .trim_end_matches(['\0', ' '])
                .to_owned();
        }
        c.value(Enc::Le, tag, vr, len);
    }
    let meta_end = c.pos;
    let enc = match ts.as_str() {
        "1.2.840.10008.1.2" => Enc::Implicit,
        "1.2.840.10008.1.2.2" => Enc::Be,
        _ => Enc::Le,
    };
    let mut elements = Vec::new();
    while c.pos < file.len() {
        let start = c.pos;
        let (tag, vr, len) = c.header(enc);
        let vr = if enc == Enc::Implicit && len == 0xFFFF_FFFF && tag != (0x7FE0, 0x0010) {
            *b"SQ"
        } else {
            vr
        };
        c.value(enc, tag, vr, len);
        elements.push(TopLevel {
            tag,
            start,
            end: c.pos,
        });
    }
    Layout { meta_end, elements }
}
