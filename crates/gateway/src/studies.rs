//! Studies whose manifest the county relay has not yet received, kept on disk.
//!
//! A study's manifest goes upstream once the study went quiet at the gateway. The quiet timer
//! lives in memory (`yilian_ingest::quiet`), so without a record a restart would forget the
//! studies waiting for it, and their county readers would never be told they are complete.
//! Each such study has a small file under `<data>/gateway/studies/`, created (and its folder
//! fsync'ed) before any instance of the study is forwarded, and removed once the relay
//! accepted (or refused for good) the study's manifest. At start the forwarder re-arms the
//! quiet timer of every study listed here whose manifest is not complete yet and sends the
//! others' manifests again (manifests add up at the relay: a second copy changes nothing).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The folder of study records.
#[derive(Debug, Clone)]
pub struct StudyBook {
    dir: PathBuf,
}

impl StudyBook {
    /// Open (creating) the records under `dir`.
    pub fn open(dir: &Path) -> std::io::Result<StudyBook> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(StudyBook {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, study_uid: &str) -> PathBuf {
        // A valid UID is a safe file name; anything else is spelt in hex.
        let name = if yilian_proto::valid_uid(study_uid) {
            study_uid.to_string()
        } else {
            study_uid.bytes().map(|b| format!("{b:02x}")).collect()
        };
        self.dir.join(name)
    }

    /// Record `studies` (those not recorded yet); durable when it returns.
    pub fn ensure<'a>(&self, studies: impl IntoIterator<Item = &'a str>) -> std::io::Result<()> {
        let mut added = false;
        for study in studies {
            let path = self.path(study);
            if path.exists() {
                continue;
            }
            let mut tmp = path.clone().into_os_string();
            tmp.push(".tmp");
            let tmp = PathBuf::from(tmp);
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(study.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            added = true;
        }
        if added {
            std::fs::File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }

    /// The study's manifest reached the relay (or was refused for good): forget it.
    pub fn remove(&self, study_uid: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(study_uid)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every recorded study.
    pub fn list(&self) -> std::io::Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        for e in std::fs::read_dir(&self.dir)? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "tmp") {
                // A record cut off mid-write: it recorded nothing yet.
                if let Err(e) = std::fs::remove_file(&p) {
                    tracing::warn!(path = %p.display(), "cannot remove an unfinished study record: {e}");
                }
                continue;
            }
            if let Ok(uid) = std::fs::read_to_string(&p) {
                if !uid.is_empty() {
                    out.insert(uid);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopening_and_odd_uids_are_safe_file_names() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("studies");
        let book = StudyBook::open(&dir).unwrap();
        book.ensure(["1.2.3", "../evil", "1.2.3"]).unwrap();
        let book = StudyBook::open(&dir).unwrap();
        let all = book.list().unwrap();
        assert_eq!(
            all.iter().map(String::as_str).collect::<Vec<_>>(),
            ["../evil", "1.2.3"]
        );
        assert!(!tmp.path().join("evil").exists());
        book.remove("1.2.3").unwrap();
        book.remove("1.2.3").unwrap();
        assert_eq!(book.list().unwrap().len(), 1);
    }
}
