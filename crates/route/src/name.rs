//! The syntax of names that end up inside certificates.
//!
//! Identity names, site ids and department names are embedded in certificate SAN URIs as
//! `urn:yilian:peer:<name>:<site>:<role>[:<department>]`, so they must not contain `:`, `/`,
//! spaces, upper case or anything else that would make the URI ambiguous.

/// Whether `s` matches `[a-z0-9][a-z0-9-]*` (lower-case ASCII letters, digits and `-`, not
/// starting with `-`).
pub fn is_valid_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    match bytes.next() {
        Some(first) if first.is_ascii_lowercase() || first.is_ascii_digit() => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether `s` is a syntactically valid DICOM UID: 1–64 characters, dot-separated numeric
/// components, no empty component, no leading zero in a multi-digit component.
pub(crate) fn is_valid_uid(s: &str) -> bool {
    if s.is_empty() || s.len() > 64 {
        return false;
    }
    s.split('.').all(|component| {
        !component.is_empty()
            && component.bytes().all(|b| b.is_ascii_digit())
            && !(component.len() > 1 && component.starts_with('0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "a",
            "0",
            "county",
            "township-a",
            "county-radiology",
            "a1-b2",
            "x-",
        ] {
            assert!(is_valid_name(ok), "{ok} should be valid");
        }
        for bad in [
            "", "-a", "County", "a_b", "a b", "a:b", "a/b", "ä", "a.b", " a",
        ] {
            assert!(!is_valid_name(bad), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn uids() {
        assert!(is_valid_uid("1.2.840.10008.5.1.4.1.1.9.1.1"));
        assert!(is_valid_uid("1.2.0.3"));
        for bad in [
            "",
            "1..2",
            "1.2.",
            ".1",
            "1.02",
            "1.2a",
            "1.2.840 ",
            &"1".repeat(65),
        ] {
            assert!(!is_valid_uid(bad), "{bad:?} should be invalid");
        }
    }
}
