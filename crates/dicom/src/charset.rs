//! Character sets of DICOM text values (PS3.5 §6.1, PS3.3 C.12.1.1.2).
//!
//! [`SpecificCharacterSet`] is the parsed value of Specific Character Set (0008,0005);
//! [`TextDecoder`] decodes PN, SH, LO, ST, LT, UT and UC values with it (via `encoding_rs`),
//! including ISO 2022 code extensions (escape sequences switching G0/G1, reset to the initial
//! sets at the delimiters the standard names).
//!
//! ## What happens to bytes the declaration does not cover
//! Consoles in the field often write GBK without declaring it: no (0008,0005) at all (the
//! default repertoire, ASCII) and bytes ≥ 0x80. Such bytes (under the default repertoire, or
//! under ISO 2022 where no G1 set is designated) are decoded, per run, by the first that fits:
//! 1. **UTF-8**, if the bytes are valid UTF-8 (the check is strong: GBK or Latin-1 text is
//!    almost never valid UTF-8);
//! 2. under ISO 2022, a **declared multi-byte G1 set** the value failed to switch to with an
//!    escape sequence (`\ISO 2022 IR 58` writers often omit it): GB 2312 (read as GBK) or
//!    KS X 1001;
//! 3. the **site default** ([`TextDecoder::new`]'s `default`, per site or per AE title), e.g.
//!    [`Charset::Gbk`];
//! 4. **ISO 8859-1** (every byte maps to one character, nothing is lost).
//!
//! A value declared ISO_IR 192 that is not valid UTF-8 is decoded with the site default when
//! there is one. The result says whether it was guessed ([`Decoded::guessed`]) and whether
//! anything could not be decoded ([`Decoded::lossless`]; U+FFFD stands for such bytes).
//!
//! An unknown term in (0008,0005) is a [`CharsetError`] from [`SpecificCharacterSet::parse`];
//! [`SpecificCharacterSet::parse_lenient`] skips it (an unknown first value means the default
//! repertoire, and the high bytes then fall under the rules above). Nothing here panics.
//!
//! The ISO 8859 sets come from `encoding_rs`, i.e. the WHATWG tables: ISO_IR 148 is read as
//! windows-1254 and ISO_IR 166 as windows-874, which differ from ISO 8859-9 / TIS 620 only in
//! 0x80–0x9F (C1 controls, never in DICOM text). ISO_IR 100 is decoded exactly (byte = code
//! point), not as windows-1252.

use std::fmt;

use encoding_rs::Encoding;

/// One character set, named by a DICOM defined term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Charset {
    /// The default repertoire (ISO_IR 6, ISO 2022 IR 6): ASCII.
    Ascii,
    /// ISO_IR 100: ISO 8859-1, Latin alphabet No. 1.
    Latin1,
    /// ISO_IR 101: ISO 8859-2.
    Latin2,
    /// ISO_IR 109: ISO 8859-3.
    Latin3,
    /// ISO_IR 110: ISO 8859-4.
    Latin4,
    /// ISO_IR 144: ISO 8859-5.
    Cyrillic,
    /// ISO_IR 127: ISO 8859-6.
    Arabic,
    /// ISO_IR 126: ISO 8859-7.
    Greek,
    /// ISO_IR 138: ISO 8859-8.
    Hebrew,
    /// ISO_IR 148: ISO 8859-9, Latin alphabet No. 5.
    Latin5,
    /// ISO_IR 203: ISO 8859-15, Latin alphabet No. 9.
    Latin9,
    /// ISO_IR 166: TIS 620-2533, Thai.
    Thai,
    /// ISO_IR 13: JIS X 0201 (Romaji in G0, half-width katakana in G1).
    JisX0201,
    /// ISO 2022 IR 87: JIS X 0208 (kanji), code extensions only.
    JisX0208,
    /// ISO 2022 IR 159: JIS X 0212 (supplementary kanji), code extensions only.
    JisX0212,
    /// ISO 2022 IR 149: KS X 1001 (Hangul and Hanja), code extensions only.
    KsX1001,
    /// ISO 2022 IR 58: GB 2312 (simplified Chinese), code extensions only.
    Gb2312,
    /// ISO_IR 192: Unicode in UTF-8.
    Utf8,
    /// GB18030 (simplified Chinese, all of Unicode).
    Gb18030,
    /// GBK (simplified Chinese; a subset of GB18030, decoded as such).
    Gbk,
}

impl Charset {
    /// The defined term without code extensions (`ISO_IR 100`, `GB18030`); for the sets that
    /// exist only with code extensions, their `ISO 2022` term.
    pub fn term(self) -> &'static str {
        match self {
            Charset::Ascii => "ISO_IR 6",
            Charset::Latin1 => "ISO_IR 100",
            Charset::Latin2 => "ISO_IR 101",
            Charset::Latin3 => "ISO_IR 109",
            Charset::Latin4 => "ISO_IR 110",
            Charset::Cyrillic => "ISO_IR 144",
            Charset::Arabic => "ISO_IR 127",
            Charset::Greek => "ISO_IR 126",
            Charset::Hebrew => "ISO_IR 138",
            Charset::Latin5 => "ISO_IR 148",
            Charset::Latin9 => "ISO_IR 203",
            Charset::Thai => "ISO_IR 166",
            Charset::JisX0201 => "ISO_IR 13",
            Charset::JisX0208 => "ISO 2022 IR 87",
            Charset::JisX0212 => "ISO 2022 IR 159",
            Charset::KsX1001 => "ISO 2022 IR 149",
            Charset::Gb2312 => "ISO 2022 IR 58",
            Charset::Utf8 => "ISO_IR 192",
            Charset::Gb18030 => "GB18030",
            Charset::Gbk => "GBK",
        }
    }

    /// Parses one defined term of (0008,0005), with or without code extensions: returns the
    /// set and whether the term is an `ISO 2022` one. Lenient about case, spaces, `_` and `-`
    /// (`ISO_IR100`, `iso-ir 192`), and accepts the common aliases `UTF-8` and `GB2312`.
    pub fn from_term(term: &str) -> Result<(Charset, bool), CharsetError> {
        let norm: String = term
            .chars()
            .filter(|c| !matches!(c, ' ' | '_' | '-'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let (number, extension) = if let Some(n) = norm.strip_prefix("ISO2022IR") {
            (n, true)
        } else if let Some(n) = norm.strip_prefix("ISOIR") {
            (n, false)
        } else {
            return match norm.as_str() {
                "" => Ok((Charset::Ascii, false)),
                "GB18030" => Ok((Charset::Gb18030, false)),
                "GBK" => Ok((Charset::Gbk, false)),
                "GB2312" => Ok((Charset::Gb2312, false)),
                "UTF8" => Ok((Charset::Utf8, false)),
                _ => Err(CharsetError::unknown(term)),
            };
        };
        let set = match number {
            "6" => Charset::Ascii,
            "100" => Charset::Latin1,
            "101" => Charset::Latin2,
            "109" => Charset::Latin3,
            "110" => Charset::Latin4,
            "144" => Charset::Cyrillic,
            "127" => Charset::Arabic,
            "126" => Charset::Greek,
            "138" => Charset::Hebrew,
            "148" => Charset::Latin5,
            "203" => Charset::Latin9,
            "166" => Charset::Thai,
            "13" => Charset::JisX0201,
            "87" if extension => Charset::JisX0208,
            "159" if extension => Charset::JisX0212,
            "149" if extension => Charset::KsX1001,
            "58" if extension => Charset::Gb2312,
            "192" if !extension => Charset::Utf8,
            _ => return Err(CharsetError::unknown(term)),
        };
        Ok((set, extension))
    }

    /// The `encoding_rs` decoder of a set whose bytes need no ISO 2022 handling; `None` for
    /// ASCII and Latin-1 (decoded by hand) and the G0-only JIS sets.
    fn encoding(self) -> Option<&'static Encoding> {
        Some(match self {
            Charset::Latin2 => encoding_rs::ISO_8859_2,
            Charset::Latin3 => encoding_rs::ISO_8859_3,
            Charset::Latin4 => encoding_rs::ISO_8859_4,
            Charset::Cyrillic => encoding_rs::ISO_8859_5,
            Charset::Arabic => encoding_rs::ISO_8859_6,
            Charset::Greek => encoding_rs::ISO_8859_7,
            Charset::Hebrew => encoding_rs::ISO_8859_8,
            Charset::Latin5 => encoding_rs::WINDOWS_1254,
            Charset::Latin9 => encoding_rs::ISO_8859_15,
            Charset::Thai => encoding_rs::WINDOWS_874,
            Charset::JisX0201 => encoding_rs::SHIFT_JIS,
            Charset::KsX1001 => encoding_rs::EUC_KR,
            Charset::JisX0208 | Charset::JisX0212 => encoding_rs::EUC_JP,
            // GB 2312 in its EUC-CN form is a subset of GBK, which encoding_rs decodes as
            // GB18030.
            Charset::Gb2312 | Charset::Gbk => encoding_rs::GBK,
            Charset::Gb18030 => encoding_rs::GB18030,
            Charset::Utf8 => encoding_rs::UTF_8,
            Charset::Ascii | Charset::Latin1 => return None,
        })
    }

    /// Decodes a whole value in this set alone (no escape sequences); `(text, lossless)`.
    fn decode_plain(self, bytes: &[u8]) -> (String, bool) {
        match self {
            Charset::Latin1 => (bytes.iter().map(|&b| char::from(b)).collect(), true),
            Charset::Ascii => {
                let ok = bytes.is_ascii();
                let text = bytes
                    .iter()
                    .map(|&b| if b < 0x80 { char::from(b) } else { '\u{FFFD}' })
                    .collect();
                (text, ok)
            }
            _ => match self.encoding() {
                Some(enc) => {
                    let (text, errors) = enc.decode_without_bom_handling(bytes);
                    (text.into_owned(), !errors)
                }
                None => (String::from_utf8_lossy(bytes).into_owned(), false),
            },
        }
    }
}

impl fmt::Display for Charset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.term())
    }
}

impl std::str::FromStr for Charset {
    type Err = CharsetError;

    /// A defined term (`GBK`, `ISO_IR 192`, `ISO 2022 IR 58`), e.g. from a site's config.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Charset::from_term(s).map(|(set, _)| set)
    }
}

/// A Specific Character Set (0008,0005) that cannot be used as declared.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CharsetError {
    /// A term that is not a DICOM defined term this decoder knows.
    #[error("unknown Specific Character Set (0008,0005) term {term:?}: not a DICOM defined term (ISO_IR 100, ISO_IR 192, GB18030, GBK, ISO 2022 IR 58, ...)")]
    UnknownTerm {
        /// The term as written (a code string, never patient data).
        term: String,
    },
}

impl CharsetError {
    fn unknown(term: &str) -> Self {
        // Bounded: the term ends up in logs.
        let term: String = term.chars().take(64).collect();
        CharsetError::UnknownTerm { term }
    }
}

/// The parsed value of Specific Character Set (0008,0005): the initial set (value 1; the
/// default repertoire when empty or absent) and, with code extensions, the other sets the
/// values may switch to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecificCharacterSet {
    sets: Vec<Charset>,
    code_extensions: bool,
}

impl Default for SpecificCharacterSet {
    fn default() -> Self {
        SpecificCharacterSet {
            sets: vec![Charset::Ascii],
            code_extensions: false,
        }
    }
}

impl SpecificCharacterSet {
    /// The default repertoire (no (0008,0005)).
    pub fn default_repertoire() -> Self {
        Self::default()
    }

    /// Parses the value of (0008,0005) (`\`-separated terms, padding ignored). Fails on the
    /// first unknown term.
    pub fn parse(value: &str) -> Result<Self, CharsetError> {
        let (scs, error) = Self::parse_lenient(value);
        match error {
            Some(e) => Err(e),
            None => Ok(scs),
        }
    }

    /// Like [`SpecificCharacterSet::parse`], but skips unknown terms (an unknown value 1
    /// means the default repertoire) and returns the first error beside the result.
    pub fn parse_lenient(value: &str) -> (Self, Option<CharsetError>) {
        let value = value.trim_matches(|c: char| c == '\0' || c.is_ascii_whitespace());
        let mut sets = Vec::new();
        let mut code_extensions = false;
        let mut error = None;
        for (i, term) in value.split('\\').enumerate() {
            match Charset::from_term(term.trim_matches(['\0', ' '])) {
                Ok((set, ext)) => {
                    code_extensions |= ext || i > 0;
                    if !sets.contains(&set) || i == 0 {
                        sets.push(set);
                    }
                }
                Err(e) => {
                    if i == 0 {
                        sets.push(Charset::Ascii);
                    }
                    code_extensions |= i > 0;
                    error.get_or_insert(e);
                }
            }
        }
        if sets.is_empty() {
            sets.push(Charset::Ascii);
        }
        (
            SpecificCharacterSet {
                sets,
                code_extensions,
            },
            error,
        )
    }

    /// Value 1: the set in use at the start of every value.
    pub fn initial(&self) -> Charset {
        self.sets.first().copied().unwrap_or(Charset::Ascii)
    }

    /// Every declared set, value 1 first (duplicates removed).
    pub fn sets(&self) -> &[Charset] {
        &self.sets
    }

    /// Whether ISO 2022 code extensions (escape sequences) are in use.
    pub fn code_extensions(&self) -> bool {
        self.code_extensions
    }
}

/// The text VRs, which differ in which delimiters reset ISO 2022 code extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextVr {
    /// Person Name: `^` and `=` (and `\` between values) reset.
    PN,
    /// Short String: `\` resets.
    SH,
    /// Long String: `\` resets.
    LO,
    /// Unlimited Characters: `\` resets.
    UC,
    /// Short Text: only control characters reset.
    ST,
    /// Long Text.
    LT,
    /// Unlimited Text.
    UT,
}

impl TextVr {
    /// Whether `b` (in the single-byte G0 set) resets the code extensions to the initial sets.
    fn resets_at(self, b: u8) -> bool {
        match b {
            0x09 | 0x0A | 0x0C | 0x0D => true,
            b'\\' => matches!(self, TextVr::PN | TextVr::SH | TextVr::LO | TextVr::UC),
            b'^' | b'=' => self == TextVr::PN,
            _ => false,
        }
    }
}

/// A decoded text value.
#[derive(Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The text (not trimmed).
    pub text: String,
    /// Every byte was decoded (no U+FFFD inserted, no unknown escape sequence).
    pub lossless: bool,
    /// Bytes the declared character set does not cover were decoded by a guess (UTF-8, the
    /// site default, or Latin-1; see the module docs).
    pub guessed: bool,
}

impl fmt::Debug for Decoded {
    /// Text values may be patient data: never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoded")
            .field("text", &"[redacted]")
            .field("lossless", &self.lossless)
            .field("guessed", &self.guessed)
            .finish()
    }
}

/// Decodes the text values of one instance: its Specific Character Set plus the site's
/// default for undeclared bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextDecoder {
    scs: SpecificCharacterSet,
    default: Option<Charset>,
    error: Option<CharsetError>,
}

impl Default for TextDecoder {
    fn default() -> Self {
        TextDecoder::new(None, None)
    }
}

/// The G0 set (bytes 0x21–0x7E).
#[derive(Clone, Copy, PartialEq, Eq)]
enum G0 {
    Ascii,
    JisRoman,
    /// A 94×94 set: pairs of bytes.
    Double(Charset),
}

/// The G1 set (bytes 0xA0–0xFF).
#[derive(Clone, Copy, PartialEq, Eq)]
enum G1 {
    /// Nothing designated: high bytes are guessed.
    Undeclared,
    /// A single-byte set (the right half of an ISO 8859 set, or JIS X 0201 katakana).
    Single(Charset),
    /// A 94×94 set in GR (GB 2312, KS X 1001): pairs of bytes.
    Double(Charset),
}

const ESC: u8 = 0x1B;

impl TextDecoder {
    /// A decoder for the value of (0008,0005) (`None`: absent) with the site's default for
    /// undeclared bytes. An unknown term is kept as [`TextDecoder::error`]; decoding goes on
    /// with the terms that are known.
    pub fn new(specific_character_set: Option<&str>, default: Option<Charset>) -> Self {
        let (scs, error) = match specific_character_set {
            Some(v) => SpecificCharacterSet::parse_lenient(v),
            None => (SpecificCharacterSet::default(), None),
        };
        TextDecoder {
            scs,
            default,
            error,
        }
    }

    /// A decoder for an already parsed character set.
    pub fn with_charset(scs: SpecificCharacterSet, default: Option<Charset>) -> Self {
        TextDecoder {
            scs,
            default,
            error: None,
        }
    }

    /// The declared character set.
    pub fn charset(&self) -> &SpecificCharacterSet {
        &self.scs
    }

    /// The site default for undeclared bytes.
    pub fn default_charset(&self) -> Option<Charset> {
        self.default
    }

    /// The first unknown term of (0008,0005), if any.
    pub fn error(&self) -> Option<&CharsetError> {
        self.error.as_ref()
    }

    /// Decodes one value (all its `\`-separated values at once) of a text VR.
    pub fn decode(&self, bytes: &[u8], vr: TextVr) -> Decoded {
        let initial = self.scs.initial();
        let iso2022 = (self.scs.code_extensions || bytes.contains(&ESC))
            && !matches!(initial, Charset::Utf8 | Charset::Gb18030 | Charset::Gbk);
        if iso2022 {
            return self.decode_iso2022(bytes, vr);
        }
        match initial {
            Charset::Ascii if bytes.is_ascii() => Decoded {
                text: bytes.iter().map(|&b| char::from(b)).collect(),
                lossless: true,
                guessed: false,
            },
            Charset::Ascii => self.guess(bytes, None),
            Charset::Utf8 => match std::str::from_utf8(bytes) {
                Ok(s) => Decoded {
                    text: s.to_owned(),
                    lossless: true,
                    guessed: false,
                },
                Err(_) => match self.default.filter(|d| *d != Charset::Utf8) {
                    Some(d) => {
                        let (text, lossless) = d.decode_plain(bytes);
                        Decoded {
                            text,
                            lossless,
                            guessed: true,
                        }
                    }
                    None => Decoded {
                        text: String::from_utf8_lossy(bytes).into_owned(),
                        lossless: false,
                        guessed: false,
                    },
                },
            },
            set => {
                let (text, lossless) = set.decode_plain(bytes);
                Decoded {
                    text,
                    lossless,
                    guessed: false,
                }
            }
        }
    }

    /// Bytes the declaration does not cover: UTF-8 if valid, else `declared` (a multi-byte
    /// set the value may switch to but did not), else the site default, else Latin-1.
    fn guess(&self, bytes: &[u8], declared: Option<Charset>) -> Decoded {
        if let Ok(s) = std::str::from_utf8(bytes) {
            return Decoded {
                text: s.to_owned(),
                lossless: true,
                guessed: true,
            };
        }
        let set = match declared.or(self.default) {
            Some(Charset::Ascii | Charset::Utf8) | None => Charset::Latin1,
            Some(d) => d,
        };
        let (text, lossless) = set.decode_plain(bytes);
        Decoded {
            text,
            lossless,
            guessed: true,
        }
    }

    fn initial_state(&self) -> (G0, G1) {
        match self.scs.initial() {
            Charset::JisX0201 => (G0::JisRoman, G1::Single(Charset::JisX0201)),
            Charset::Gb2312 => (G0::Ascii, G1::Double(Charset::Gb2312)),
            Charset::KsX1001 => (G0::Ascii, G1::Double(Charset::KsX1001)),
            Charset::Ascii | Charset::JisX0208 | Charset::JisX0212 => (G0::Ascii, G1::Undeclared),
            single => (G0::Ascii, G1::Single(single)),
        }
    }

    /// ISO 2022: escape sequences switch G0/G1; delimiters reset them to the initial sets.
    fn decode_iso2022(&self, bytes: &[u8], vr: TextVr) -> Decoded {
        let (init0, init1) = self.initial_state();
        let (mut g0, mut g1) = (init0, init1);
        let mut out = String::with_capacity(bytes.len());
        let mut lossless = true;
        let mut guessed = false;
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if b == ESC {
                let (len, designation) = escape(bytes.get(i..).unwrap_or_default());
                match designation {
                    Some(Designation::G0(set)) => g0 = set,
                    Some(Designation::G1(set)) => g1 = set,
                    None => lossless = false,
                }
                i += len;
                continue;
            }
            if b < 0x80 {
                if let G0::Double(set) = g0 {
                    if let Some(&b2) = bytes.get(i + 1) {
                        if (0x21..=0x7E).contains(&b) && (0x21..=0x7E).contains(&b2) {
                            lossless &= push_double(&mut out, set, b | 0x80, b2 | 0x80);
                            i += 2;
                            continue;
                        }
                    }
                }
                out.push(match (g0, b) {
                    (G0::JisRoman, 0x5C) => '¥',
                    (G0::JisRoman, 0x7E) => '‾',
                    _ => char::from(b),
                });
                if vr.resets_at(b) || (matches!(g0, G0::Double(_)) && b < 0x20) {
                    (g0, g1) = (init0, init1);
                }
                i += 1;
                continue;
            }
            match g1 {
                G1::Single(set) => {
                    let (text, ok) = set.decode_plain(&[b]);
                    out.push_str(&text);
                    lossless &= ok;
                    i += 1;
                }
                G1::Double(set) => match bytes.get(i + 1) {
                    // GBK's trail bytes go down to 0x40: accept them (GB 2312 writers often
                    // emit GBK characters).
                    Some(&b2) if b2 >= 0x40 && b2 != 0x7F => {
                        lossless &= push_double(&mut out, set, b, b2);
                        i += 2;
                    }
                    _ => {
                        out.push('\u{FFFD}');
                        lossless = false;
                        i += 1;
                    }
                },
                G1::Undeclared => {
                    // The run up to the next escape sequence or delimiter, guessed as a whole.
                    let end = bytes
                        .get(i..)
                        .unwrap_or_default()
                        .iter()
                        .position(|&c| c == ESC || (c < 0x80 && vr.resets_at(c)))
                        .map_or(bytes.len(), |p| i + p);
                    // Writers that declare `\ISO 2022 IR 58` but omit the escape sequence
                    // are common: the declared multi-byte set comes before the site default.
                    let declared = self
                        .scs
                        .sets()
                        .iter()
                        .copied()
                        .find(|s| matches!(s, Charset::Gb2312 | Charset::KsX1001));
                    let d = self.guess(bytes.get(i..end).unwrap_or_default(), declared);
                    out.push_str(&d.text);
                    lossless &= d.lossless;
                    guessed = true;
                    i = end.max(i + 1);
                }
            }
        }
        Decoded {
            text: out,
            lossless,
            guessed,
        }
    }
}

/// Appends one character of a 94×94 set given in its GR (high-bit) form; false if undecodable.
fn push_double(out: &mut String, set: Charset, b1: u8, b2: u8) -> bool {
    let jis0212 = [0x8F, b1, b2];
    let pair = [b1, b2];
    let (enc, bytes): (&'static Encoding, &[u8]) = match set {
        Charset::JisX0212 => (encoding_rs::EUC_JP, &jis0212),
        _ => (set.encoding().unwrap_or(encoding_rs::GBK), &pair),
    };
    let (text, errors) = enc.decode_without_bom_handling(bytes);
    out.push_str(&text);
    !errors
}

enum Designation {
    G0(G0),
    G1(G1),
}

/// Parses an escape sequence at the start of `bytes`: its length and what it designates
/// (`None` if unknown).
fn escape(bytes: &[u8]) -> (usize, Option<Designation>) {
    // ESC, intermediate bytes 0x20–0x2F, one final byte 0x30–0x7E.
    let mut len = 1;
    while bytes.get(len).is_some_and(|b| (0x20..=0x2F).contains(b)) {
        len += 1;
    }
    if bytes.get(len).is_some_and(|b| (0x30..=0x7E).contains(b)) {
        len += 1;
    } else {
        return (len, None);
    }
    let seq = bytes.get(1..len).unwrap_or_default();
    let d = match seq {
        b"(B" => Designation::G0(G0::Ascii),
        b"(J" => Designation::G0(G0::JisRoman),
        b")I" => Designation::G1(G1::Single(Charset::JisX0201)),
        b"$B" | b"$@" => Designation::G0(G0::Double(Charset::JisX0208)),
        b"$(D" => Designation::G0(G0::Double(Charset::JisX0212)),
        b"$A" => Designation::G0(G0::Double(Charset::Gb2312)),
        b"$)A" => Designation::G1(G1::Double(Charset::Gb2312)),
        b"$C" => Designation::G0(G0::Double(Charset::KsX1001)),
        b"$)C" => Designation::G1(G1::Double(Charset::KsX1001)),
        b"-A" => Designation::G1(G1::Single(Charset::Latin1)),
        b"-B" => Designation::G1(G1::Single(Charset::Latin2)),
        b"-C" => Designation::G1(G1::Single(Charset::Latin3)),
        b"-D" => Designation::G1(G1::Single(Charset::Latin4)),
        b"-L" => Designation::G1(G1::Single(Charset::Cyrillic)),
        b"-G" => Designation::G1(G1::Single(Charset::Arabic)),
        b"-F" => Designation::G1(G1::Single(Charset::Greek)),
        b"-H" => Designation::G1(G1::Single(Charset::Hebrew)),
        b"-M" => Designation::G1(G1::Single(Charset::Latin5)),
        b"-b" => Designation::G1(G1::Single(Charset::Latin9)),
        b"-T" => Designation::G1(G1::Single(Charset::Thai)),
        _ => return (len, None),
    };
    (len, Some(d))
}

/// Decodes one value with the instance's (0008,0005) value and an optional site default.
pub fn decode_text(
    bytes: &[u8],
    specific_character_set: Option<&str>,
    default: Option<Charset>,
    vr: TextVr,
) -> String {
    TextDecoder::new(specific_character_set, default)
        .decode(bytes, vr)
        .text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(scs: Option<&str>, default: Option<Charset>, bytes: &[u8]) -> Decoded {
        TextDecoder::new(scs, default).decode(bytes, TextVr::PN)
    }

    #[test]
    fn terms_parse_leniently_and_unknown_ones_are_typed_errors() {
        assert_eq!(Charset::from_term("ISO_IR 192"), Ok((Charset::Utf8, false)));
        assert_eq!(
            Charset::from_term("iso 2022 ir 58"),
            Ok((Charset::Gb2312, true))
        );
        assert_eq!("GBK".parse::<Charset>(), Ok(Charset::Gbk));
        assert_eq!(
            Charset::from_term("ISO_IR100"),
            Ok((Charset::Latin1, false))
        );
        assert!(matches!(
            Charset::from_term("KOI8-R"),
            Err(CharsetError::UnknownTerm { .. })
        ));
        assert!(
            Charset::from_term("ISO_IR 58").is_err(),
            "58 needs ISO 2022"
        );
        let scs = SpecificCharacterSet::parse("\\ISO 2022 IR 58").expect("known");
        assert_eq!(scs.initial(), Charset::Ascii);
        assert_eq!(scs.sets(), &[Charset::Ascii, Charset::Gb2312]);
        assert!(scs.code_extensions());
        let (lenient, err) = SpecificCharacterSet::parse_lenient("WHATEVER");
        assert_eq!(lenient.initial(), Charset::Ascii);
        assert!(err.is_some());
        for set in [Charset::Latin9, Charset::Gb18030, Charset::KsX1001] {
            assert_eq!(set.term().parse::<Charset>(), Ok(set));
        }
    }

    #[test]
    fn single_byte_sets() {
        assert_eq!(
            dec(Some("ISO_IR 100"), None, b"Buc^J\xe9r\xf4me").text,
            "Buc^Jérôme"
        );
        assert_eq!(
            dec(Some("ISO_IR 144"), None, b"\xbb\xee\xdace\xdc").text,
            "Люкceм"
        );
        assert_eq!(dec(Some("ISO_IR 126"), None, b"\xc4\xe9").text, "Δι");
        assert_eq!(dec(Some("ISO_IR 138"), None, b"\xf9").text, "ש");
        assert_eq!(dec(Some("ISO_IR 127"), None, b"\xe2").text, "ق");
        assert_eq!(dec(Some("ISO_IR 101"), None, b"\xa9").text, "Š");
        assert_eq!(dec(Some("ISO_IR 166"), None, b"\xa1").text, "ก");
        assert_eq!(dec(Some("ISO_IR 148"), None, b"\xfd").text, "ı");
        assert_eq!(dec(Some("ISO_IR 13"), None, b"\xd4\xcf").text, "ﾔﾏ");
    }

    #[test]
    fn chinese_sets() {
        // 王^小东 in GB18030/GBK.
        let gb: &[u8] = &[0xCD, 0xF5, b'^', 0xD0, 0xA1, 0xB6, 0xAB];
        assert_eq!(dec(Some("GB18030"), None, gb).text, "王^小东");
        assert_eq!(dec(Some("GBK"), None, gb).text, "王^小东");
        assert_eq!(
            dec(Some("ISO_IR 192"), None, "王^小東".as_bytes()).text,
            "王^小東"
        );
        // A four-byte GB18030 sequence (U+20087 𠂇).
        assert_eq!(
            dec(Some("GB18030"), None, &[0x95, 0x32, 0x90, 0x31]).text,
            "\u{20087}"
        );
    }

    #[test]
    fn iso_2022_ir_58_in_g1_resets_at_pn_delimiters() {
        // PS3.5 J.3: Wang^XiaoDong=王^小东= with ESC $ ) A before each ideographic component.
        let mut v = b"Wang^XiaoDong=".to_vec();
        v.extend_from_slice(b"\x1b$)A\xcd\xf5^\x1b$)A\xd0\xa1\xb6\xab=");
        let d = dec(Some("\\ISO 2022 IR 58"), None, &v);
        assert_eq!(d.text, "Wang^XiaoDong=王^小东=");
        assert!(d.lossless && !d.guessed);
        // Without the second escape, the `^` reset G1: the bytes after it are undeclared,
        // guessed with the declared multi-byte set (writers often omit the escapes).
        let v = b"\x1b$)A\xcd\xf5^\xd0\xa1\xb6\xab";
        let d = dec(Some("\\ISO 2022 IR 58"), None, v);
        assert_eq!(d.text, "王^小东");
        assert!(d.guessed);
        // With only the default repertoire declared: the site default, else Latin-1.
        let d = dec(Some("ISO 2022 IR 6"), Some(Charset::Gbk), v);
        assert_eq!(d.text, "王^小东");
        let d = dec(Some("ISO 2022 IR 6"), None, v);
        assert_eq!(d.text, "王^Ð¡¶«", "Latin-1 without a default");
    }

    #[test]
    fn iso_2022_ir_58_in_g0() {
        // ESC $ A puts GB 2312 in G0 (bytes 0x21–0x7E in pairs), ESC ( B goes back to ASCII.
        let v = b"\x1b$AMu\x1b(B^\x1b$AP!6+\x1b(B";
        let d = dec(Some("ISO 2022 IR 6\\ISO 2022 IR 58"), None, v);
        assert_eq!(d.text, "王^小东");
        assert!(d.lossless);
        // A carriage return resets G0 to ASCII even without ESC ( B.
        let d =
            TextDecoder::new(Some("\\ISO 2022 IR 58"), None).decode(b"\x1b$AMu\rMu", TextVr::LT);
        assert_eq!(d.text, "王\rMu");
    }

    #[test]
    fn other_iso_2022_sets() {
        // PS3.5 H.3.1 (chrH31): Yamada^Tarou=山田^太郎=やまだ^たろう
        let v =
            b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B";
        let d = dec(Some("\\ISO 2022 IR 87"), None, v);
        assert_eq!(d.text, "Yamada^Tarou=山田^太郎=やまだ^たろう");
        // PS3.5 I.2 (Korean): Hong^Gildong=洪^吉洞=홍^길동
        let v = b"Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7=\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf";
        let d = dec(Some("\\ISO 2022 IR 149"), None, v);
        assert_eq!(d.text, "Hong^Gildong=洪^吉洞=홍^길동");
        // A Latin-1 G1 with extensions, and an unknown escape sequence (dropped, not lossless).
        let d = dec(Some("ISO 2022 IR 100"), None, b"J\xe9r\x1b$+Zx");
        assert_eq!(d.text, "Jérx");
        assert!(!d.lossless);
        // A truncated escape at the very end never panics.
        let d = dec(Some("\\ISO 2022 IR 58"), None, b"ab\x1b$");
        assert_eq!(d.text, "ab");
    }

    #[test]
    fn undeclared_high_bytes() {
        // A console that writes GBK without (0008,0005).
        let gbk: &[u8] = &[0xCD, 0xF5, b'^', 0xD0, 0xA1, 0xB6, 0xAB];
        let d = dec(None, Some(Charset::Gbk), gbk);
        assert_eq!(d.text, "王^小东");
        assert!(d.guessed && d.lossless);
        // Without a default: Latin-1, nothing lost.
        assert_eq!(dec(None, None, gbk).text, "Íõ^Ð¡¶«");
        // Valid UTF-8 wins over the default.
        assert_eq!(
            dec(Some("ISO_IR 6"), Some(Charset::Gbk), "王^小东".as_bytes()).text,
            "王^小东"
        );
        // Declared UTF-8 that is not: the default.
        let d = dec(Some("ISO_IR 192"), Some(Charset::Gb18030), gbk);
        assert_eq!(d.text, "王^小东");
        assert!(d.guessed);
        let d = dec(Some("ISO_IR 192"), None, gbk);
        assert!(!d.lossless);
        // An unknown term: the error is kept and the value still decodes.
        let t = TextDecoder::new(Some("X-UNKNOWN"), Some(Charset::Gbk));
        assert!(t.error().is_some());
        assert_eq!(t.decode(gbk, TextVr::PN).text, "王^小东");
        assert_eq!(decode_text(b"Smith", None, None, TextVr::LO), "Smith");
        assert!(!format!("{:?}", t.decode(gbk, TextVr::PN)).contains('王'));
    }
}
