//! Human names of tags, for error messages only (never on the hot path).

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::Tag;
use dicom_dictionary_std::StandardDataDictionary;

/// `Pixel Data (7FE0,0010)`, `private element (0009,1001)`, `element (0019,0010)`.
pub(crate) fn describe(tag: Tag) -> String {
    match tag {
        Tag(0xFFFE, 0xE000) => return format!("Item {tag}"),
        Tag(0xFFFE, 0xE00D) => return format!("Item Delimitation Item {tag}"),
        Tag(0xFFFE, 0xE0DD) => return format!("Sequence Delimitation Item {tag}"),
        _ => {}
    }
    if tag.0 % 2 == 1 {
        return format!("private element {tag}");
    }
    match StandardDataDictionary.by_tag(tag) {
        Some(entry) => format!("{} {tag}", split_camel_case(entry.alias())),
        None => format!("element {tag}"),
    }
}

/// `SOPInstanceUID` → `SOP Instance UID`, `PixelData` → `Pixel Data`.
fn split_camel_case(alias: &str) -> String {
    let chars: Vec<char> = alias.chars().collect();
    let mut out = String::with_capacity(alias.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).and_then(|p| chars.get(p));
        let next = chars.get(i + 1);
        let boundary = c.is_ascii_uppercase()
            && match prev {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
        if boundary {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{describe, split_camel_case};
    use dicom_core::Tag;

    #[test]
    fn names_read_well() {
        assert_eq!(describe(Tag(0x7FE0, 0x0010)), "Pixel Data (7FE0,0010)");
        assert_eq!(
            describe(Tag(0x0008, 0x0018)),
            "SOP Instance UID (0008,0018)"
        );
        assert_eq!(describe(Tag(0x0009, 0x1001)), "private element (0009,1001)");
        assert_eq!(
            describe(Tag(0xFFFE, 0xE0DD)),
            "Sequence Delimitation Item (FFFE,E0DD)"
        );
        assert_eq!(split_camel_case("StudyInstanceUID"), "Study Instance UID");
        assert_eq!(split_camel_case("NumberOfFrames"), "Number Of Frames");
    }
}
