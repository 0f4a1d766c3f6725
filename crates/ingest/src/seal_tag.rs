//! The tag a sealed upload carries in its file's extended attribute: who sent it and at what
//! priority, all a restart needs to commit it again (`sealed.rs`).
//!
//! # Why a compact form
//! ext4 keeps a small extended attribute inside the file's inode: with 256-byte inodes (the
//! default) there is room for a value of about 56 bytes under our attribute's name. A larger
//! one gets a block of its own, allocated and written at the seal's fsync: one more disk write
//! per instance, and one more block to free when the instance is pruned. The JSON form of a
//! STOW-RS device's tag took 155 bytes; the compact form of the same tag takes 50.
//!
//! ```text
//! 0x01 version, priority, role, door kind, flags (bit 0: department present),
//! then name, site, [department], [door text]: each one length byte and UTF-8 bytes
//! ```
//!
//! Door kinds: 0 yilian/1 (QUIC), 1 DIMSE (text: calling AE), 2 HTTPS without a token,
//! 3 HTTPS with a token (text: its id). A text longer than 255 bytes does not fit; such a tag
//! is written as JSON, which [`decode`] reads too (and which tags written before this form
//! are).

use crate::principal::{Door, Principal};
use yilian_route::Role;

/// A sealed upload's sender and requested priority.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SealTag {
    pub principal: Principal,
    pub priority: u8,
}

/// Why a tag could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TagError {
    #[error("the tag is empty")]
    Empty,
    #[error("the tag ends early")]
    Truncated,
    #[error("unknown tag version {0}")]
    Version(u8),
    #[error("unknown role {0} in the tag")]
    Role(u8),
    #[error("unknown door {0} in the tag")]
    Door(u8),
    #[error("unknown flags {0:#04x} in the tag")]
    Flags(u8),
    #[error("a text in the tag is not UTF-8")]
    Text,
    #[error("{0} bytes left over after the tag")]
    Trailing(usize),
    #[error("unreadable JSON tag: {0}")]
    Json(String),
}

const VERSION: u8 = 1;

fn role_code(r: Role) -> u8 {
    match r {
        Role::Device => 0,
        Role::Reader => 1,
        Role::Relay => 2,
    }
}

fn role_of(code: u8) -> Result<Role, TagError> {
    match code {
        0 => Ok(Role::Device),
        1 => Ok(Role::Reader),
        2 => Ok(Role::Relay),
        c => Err(TagError::Role(c)),
    }
}

/// The tag's bytes: the compact form, or JSON if a text is too long for it.
pub fn encode(tag: &SealTag) -> Vec<u8> {
    compact(tag).unwrap_or_else(|| {
        // Serializing plain strings, numbers and enums cannot fail.
        serde_json::to_vec(tag).unwrap_or_default()
    })
}

fn compact(tag: &SealTag) -> Option<Vec<u8>> {
    let p = &tag.principal;
    let (door, text) = match &p.door {
        Door::Quic => (0, None),
        Door::Dimse { calling_ae } => (1, Some(calling_ae.as_str())),
        Door::Https { token: None } => (2, None),
        Door::Https { token: Some(id) } => (3, Some(id.as_str())),
    };
    let flags = u8::from(p.department.is_some());
    let mut out = vec![VERSION, tag.priority, role_code(p.role), door, flags];
    let texts = [
        Some(p.name.as_str()),
        Some(p.site.as_str()),
        p.department.as_deref(),
        text,
    ];
    for t in texts.into_iter().flatten() {
        out.push(u8::try_from(t.len()).ok()?);
        out.extend_from_slice(t.as_bytes());
    }
    Some(out)
}

/// Read a tag written by [`encode`] (either form).
pub fn decode(bytes: &[u8]) -> Result<SealTag, TagError> {
    match bytes.first() {
        None => Err(TagError::Empty),
        Some(b'{') => serde_json::from_slice(bytes).map_err(|e| TagError::Json(e.to_string())),
        Some(&VERSION) => decode_compact(&bytes[1..]),
        Some(&v) => Err(TagError::Version(v)),
    }
}

fn decode_compact(mut b: &[u8]) -> Result<SealTag, TagError> {
    let [priority, role, door, flags, rest @ ..] = b else {
        return Err(TagError::Truncated);
    };
    let (priority, role, door, flags) = (*priority, role_of(*role)?, *door, *flags);
    if flags > 1 {
        return Err(TagError::Flags(flags));
    }
    b = rest;
    let mut text = || -> Result<String, TagError> {
        let (&len, rest) = b.split_first().ok_or(TagError::Truncated)?;
        let len = usize::from(len);
        if rest.len() < len {
            return Err(TagError::Truncated);
        }
        let (t, rest) = rest.split_at(len);
        b = rest;
        String::from_utf8(t.to_vec()).map_err(|_| TagError::Text)
    };
    let name = text()?;
    let site = text()?;
    let department = if flags & 1 == 1 { Some(text()?) } else { None };
    let door = match door {
        0 => Door::Quic,
        1 => Door::Dimse {
            calling_ae: text()?,
        },
        2 => Door::Https { token: None },
        3 => Door::Https {
            token: Some(text()?),
        },
        d => return Err(TagError::Door(d)),
    };
    if !b.is_empty() {
        return Err(TagError::Trailing(b.len()));
    }
    Ok(SealTag {
        principal: Principal {
            name,
            site,
            role,
            department,
            door,
        },
        priority,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(door: Door, department: Option<&str>) -> Principal {
        Principal {
            name: "township-a-device".into(),
            site: "township-a".into(),
            role: Role::Device,
            department: department.map(str::to_string),
            door,
        }
    }

    fn doors() -> Vec<Door> {
        vec![
            Door::Quic,
            Door::Dimse {
                calling_ae: "TOWNSHIP_CT".into(),
            },
            Door::Https { token: None },
            Door::Https {
                token: Some("db6e98ef0e759cc9".into()),
            },
        ]
    }

    #[test]
    fn every_door_role_and_department_reads_back_as_written() {
        for door in doors() {
            for dept in [None, Some("radiology"), Some("")] {
                for role in Role::ALL {
                    for priority in [0, 1, 255] {
                        let mut p = principal(door.clone(), dept);
                        p.role = role;
                        let tag = SealTag {
                            principal: p,
                            priority,
                        };
                        let bytes = encode(&tag);
                        assert_eq!(bytes[0], VERSION, "{tag:?} took the compact form");
                        assert_eq!(decode(&bytes), Ok(tag));
                    }
                }
            }
        }
    }

    /// ext4's room for an attribute inside a 256-byte inode under `user.yilian.sealed`.
    #[test]
    fn a_usual_tag_fits_inside_the_inode() {
        for door in doors() {
            let tag = SealTag {
                principal: principal(door, None),
                priority: 0,
            };
            let n = encode(&tag).len();
            assert!(n <= 56, "{n} bytes: {tag:?}");
        }
    }

    #[test]
    fn tags_written_as_json_still_read() {
        let tag = SealTag {
            principal: principal(doors()[3].clone(), Some("ct")),
            priority: 2,
        };
        // The form every sealed file had before the compact one.
        let json = serde_json::to_vec(&tag).unwrap();
        assert_eq!(decode(&json), Ok(tag.clone()));
        // A text too long for one length byte: JSON again, still read back.
        let mut long = tag;
        long.principal.name = "n".repeat(300);
        let bytes = encode(&long);
        assert_eq!(bytes[0], b'{');
        assert_eq!(decode(&bytes), Ok(long));
    }

    /// Every cut of a valid tag, and seeded random bytes behind each version byte, give an
    /// error or a tag: never a panic.
    #[test]
    fn damaged_tags_are_errors() {
        let tag = SealTag {
            principal: principal(doors()[1].clone(), Some("ct")),
            priority: 1,
        };
        let bytes = encode(&tag);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(decode(&extra), Err(TagError::Trailing(1)));
        assert_eq!(decode(&[7, 0, 0]), Err(TagError::Version(7)));
        let mut rng = yilian_testkit::Rng::new(17, 0);
        for _ in 0..20_000 {
            let len = rng.below(64) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
            if let Some(first) = b.first_mut() {
                *first = [VERSION, b'{', 0][rng.below(3) as usize];
            }
            if let Ok(t) = decode(&b) {
                if b.first() == Some(&VERSION) {
                    assert_eq!(encode(&t), b, "a compact tag reads back to its bytes");
                }
            }
        }
    }
}
