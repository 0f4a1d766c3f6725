//! Bearer tokens the relay issues to reader identities (`yilian token issue`).
//!
//! A browser has no alliance certificate, so an administrator issues a reader identity a token
//! (`yilian token issue --identity county-radiology --ttl 8h`) that the viewer sends as
//! `Authorization: Bearer <token>`. A token is **signed, not stored**: it carries its claims
//! (a random id, the identity, when it was issued and when it expires) and a MAC of them,
//! keyed BLAKE3 with a 32-byte key kept in the relay's data folder (`web/token.key`, mode
//! 0600). Nothing is kept per token but revocations: `yilian token revoke ID` appends its id to
//! `web/revoked-tokens`, which every check consults (re-read when the file changes).
//!
//! Format: `yl1.<claims JSON, hex>.<MAC, hex>`. Every check is the same whatever the input:
//! malformed, forged, expired or revoked tokens are refused with a [`TokenError`] that says
//! which, never with a panic.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The prefix of every token of this format.
const PREFIX: &str = "yl1";
/// Domain separation of the MAC.
const CONTEXT: &[u8] = b"yilian bearer token v1\0";
/// Longest token accepted (a claims object is far smaller).
const MAX_TOKEN_LEN: usize = 2048;
/// Longest lifetime a token may be issued for.
pub const MAX_TTL: Duration = Duration::from_secs(90 * 24 * 3600);

/// What a token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Random id (16 hex digits): what `yilian token revoke` names and the audit log records.
    pub id: String,
    /// The identity of the topology the bearer acts as.
    pub identity: String,
    /// Seconds since the Unix epoch.
    pub issued: u64,
    /// Seconds since the Unix epoch; the token is refused from then on.
    pub expires: u64,
}

/// Why a token was refused (or could not be issued).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a token of this relay's format.
    #[error("the bearer token is malformed ({0}); ask the relay's administrator for a new one (`yilian token issue`)")]
    Malformed(&'static str),
    /// The MAC does not match: forged, altered, or issued by another relay (or before its key
    /// was replaced).
    #[error("the bearer token was not issued by this relay (or was altered); ask its administrator for a new one")]
    Forged,
    /// Past its expiry.
    #[error("the bearer token expired {ago_s} s ago; ask the relay's administrator for a new one")]
    Expired { ago_s: u64 },
    /// Revoked by `yilian token revoke`.
    #[error("the bearer token {id} was revoked")]
    Revoked { id: String },
    /// A lifetime of zero or beyond [`MAX_TTL`].
    #[error("a token's lifetime must be between 1 s and {} days", MAX_TTL.as_secs() / 86400)]
    BadTtl,
    /// The key or the revocation list could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The relay's token key and revocation list.
pub struct Tokens {
    key: [u8; 32],
    revoked_path: PathBuf,
    /// The revocation list as last read, and the modification time it was read at.
    /// The revocation file's (modification time, length) when read, and its ids.
    revoked: Mutex<(Option<FileStamp>, HashSet<String>)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("revoked_path", &self.revoked_path)
            .finish_non_exhaustive()
    }
}

/// A file's (modification time, length): it changed if either did.
type FileStamp = (Option<SystemTime>, u64);

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> TokenError + 'a {
    move |source| TokenError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

fn random<const N: usize>() -> Result<[u8; N], TokenError> {
    let mut buf = [0u8; N];
    let path = Path::new("/dev/urandom");
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(io("cannot read randomness from", path))?;
    Ok(buf)
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Tokens {
    /// The tokens of the relay whose data folder is `data_dir`: its key (created, 0600, on
    /// first use) and revocation list, under `data_dir/web/`.
    pub fn open(data_dir: &Path) -> Result<Tokens, TokenError> {
        let dir = data_dir.join("web");
        fs::create_dir_all(&dir).map_err(io("cannot create", &dir))?;
        let key_path = dir.join("token.key");
        let key = match fs::read(&key_path) {
            Ok(bytes) => <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| TokenError::Io {
                what: "the token key is not 32 bytes:",
                path: key_path.clone(),
                source: std::io::Error::other("wrong length; delete it to make a new key (every token issued so far stops working)"),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = random::<32>()?;
                write_new_key(&key_path, &key)?;
                key
            }
            Err(e) => return Err(io("cannot read the token key", &key_path)(e)),
        };
        Ok(Tokens {
            key,
            revoked_path: dir.join("revoked-tokens"),
            revoked: Mutex::new((None, HashSet::new())),
        })
    }

    fn mac(&self, claims_hex: &str) -> blake3::Hash {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(CONTEXT);
        h.update(claims_hex.as_bytes());
        h.finalize()
    }

    /// A token for `identity`, valid for `ttl` from `now`.
    pub fn issue(
        &self,
        identity: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<(String, Claims), TokenError> {
        if ttl.is_zero() || ttl > MAX_TTL {
            return Err(TokenError::BadTtl);
        }
        let claims = Claims {
            id: hex::encode(random::<8>()?),
            identity: identity.to_string(),
            issued: unix(now),
            expires: unix(now) + ttl.as_secs().max(1),
        };
        // A struct of strings and integers always serializes.
        let json = serde_json::to_vec(&claims).unwrap_or_default();
        let claims_hex = hex::encode(json);
        let mac = self.mac(&claims_hex);
        Ok((format!("{PREFIX}.{claims_hex}.{}", mac.to_hex()), claims))
    }

    /// The claims of `token` if this relay issued it, it has not expired at `now` and it was
    /// not revoked.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed("too long"));
        }
        let mut parts = token.trim().split('.');
        let (Some(PREFIX), Some(claims_hex), Some(mac_hex), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed("not yl1.<claims>.<signature>"));
        };
        let mac = blake3::Hash::from_hex(mac_hex)
            .map_err(|_| TokenError::Malformed("the signature is not 64 hex digits"))?;
        // blake3::Hash compares in constant time.
        if self.mac(claims_hex) != mac {
            return Err(TokenError::Forged);
        }
        let json = hex::decode(claims_hex).map_err(|_| TokenError::Malformed("claims not hex"))?;
        let claims: Claims = serde_json::from_slice(&json)
            .map_err(|_| TokenError::Malformed("claims not readable"))?;
        let now = unix(now);
        if now >= claims.expires {
            return Err(TokenError::Expired {
                ago_s: now - claims.expires,
            });
        }
        if self.is_revoked(&claims.id)? {
            return Err(TokenError::Revoked { id: claims.id });
        }
        Ok(claims)
    }

    /// Revoke the token with this id (from `yilian token issue`'s output or the audit log):
    /// every later check refuses it. Durable when this returns.
    pub fn revoke(&self, id: &str) -> Result<(), TokenError> {
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TokenError::Malformed("a token id is 16 hex digits"));
        }
        let path = &self.revoked_path;
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io("cannot open", path))?;
        writeln!(f, "{}", id.to_ascii_lowercase()).map_err(io("cannot write", path))?;
        f.sync_all().map_err(io("cannot sync", path))?;
        Ok(())
    }

    /// Whether `id` is revoked; the list is re-read when the file changed (its length, which
    /// every revocation grows, or its modification time).
    fn is_revoked(&self, id: &str) -> Result<bool, TokenError> {
        let path = &self.revoked_path;
        let stamp = match fs::metadata(path) {
            Ok(m) => (m.modified().ok(), m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io("cannot read", path)(e)),
        };
        let mut cached = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
        if cached.0 != Some(stamp) || stamp.0.is_none() {
            let text = fs::read_to_string(path).map_err(io("cannot read", path))?;
            cached.1 = text
                .lines()
                .map(|l| l.trim().to_ascii_lowercase())
                .filter(|l| !l.is_empty())
                .collect();
            cached.0 = Some(stamp);
        }
        Ok(cached.1.contains(id))
    }
}

fn write_new_key(path: &Path, key: &[u8; 32]) -> Result<(), TokenError> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io("cannot create", path))?;
    f.write_all(key).map_err(io("cannot write", path))?;
    f.sync_all().map_err(io("cannot sync", path))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("cannot sync", dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> (tempfile::TempDir, Tokens) {
        let dir = tempfile::tempdir().unwrap();
        let t = Tokens::open(dir.path()).unwrap();
        (dir, t)
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn an_issued_token_verifies_until_it_expires() {
        let (_d, t) = tokens();
        let now = SystemTime::now();
        let (token, claims) = t.issue("county-radiology", 8 * HOUR, now).unwrap();
        assert!(token.starts_with("yl1."));
        assert_eq!(t.verify(&token, now).unwrap(), claims);
        assert_eq!(claims.expires - claims.issued, 8 * 3600);
        assert!(t
            .verify(&token, now + 8 * HOUR - Duration::from_secs(1))
            .is_ok());
        assert!(matches!(
            t.verify(&token, now + 8 * HOUR),
            Err(TokenError::Expired { .. })
        ));
    }

    #[test]
    fn the_key_persists_and_another_relays_tokens_are_forged() {
        let (dir, t) = tokens();
        let now = SystemTime::now();
        let (token, _) = t.issue("county-radiology", HOUR, now).unwrap();
        let again = Tokens::open(dir.path()).unwrap();
        assert!(
            again.verify(&token, now).is_ok(),
            "same key after a restart"
        );
        let (_d2, other) = tokens();
        assert!(matches!(other.verify(&token, now), Err(TokenError::Forged)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join("web/token.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn altered_claims_or_garbage_are_refused_without_panicking() {
        let (_d, t) = tokens();
        let now = SystemTime::now();
        let (token, _) = t.issue("county-radiology", HOUR, now).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        // Another identity with the original signature.
        let other = Claims {
            id: "0".repeat(16),
            identity: "provincial-radiology".into(),
            issued: 0,
            expires: u64::MAX,
        };
        let forged = format!(
            "yl1.{}.{}",
            hex::encode(serde_json::to_vec(&other).unwrap()),
            parts[2]
        );
        assert!(matches!(t.verify(&forged, now), Err(TokenError::Forged)));
        for bad in [
            "",
            "yl1",
            "yl1..",
            "yl2.00.00",
            "yl1.zz.zz",
            "yl1.a.b.c",
            &"x".repeat(5000),
            &format!("yl1.{}.{}", parts[1], "0".repeat(64)),
        ] {
            assert!(t.verify(bad, now).is_err(), "{bad:.40}");
        }
        assert!(matches!(
            t.issue("x", Duration::ZERO, now),
            Err(TokenError::BadTtl)
        ));
        assert!(matches!(
            t.issue("x", MAX_TTL + HOUR, now),
            Err(TokenError::BadTtl)
        ));
    }

    #[test]
    fn a_revoked_token_is_refused_from_the_next_check_on() {
        let (dir, t) = tokens();
        let now = SystemTime::now();
        let (a, ca) = t.issue("county-radiology", HOUR, now).unwrap();
        let (b, _) = t.issue("county-radiology", HOUR, now).unwrap();
        assert!(t.verify(&a, now).is_ok());
        // Revoked by another process (the CLI) on the same data folder.
        Tokens::open(dir.path()).unwrap().revoke(&ca.id).unwrap();
        assert!(matches!(t.verify(&a, now), Err(TokenError::Revoked { .. })));
        assert!(t.verify(&b, now).is_ok(), "only that token");
        assert!(t.revoke("not-an-id").is_err());
    }
}
