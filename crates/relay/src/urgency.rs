//! Urgent first on a thin link.
//!
//! A township's uplink is shared by everything its devices upload. When an urgent study (a
//! stroke CT: urgent by the sender's request or by a routing rule) starts uploading from a
//! site, every routine upload from the same site is asked to pause ([`Reply::Hold`]) until no
//! urgent upload from that site is left, then to continue ([`Reply::Resume`]). Holding works
//! across connections and processes (two `yilian send` runs, a gateway), because the relay is
//! where they meet. Uploads from other sites, which use other links, are not touched.
//!
//! [`Reply::Hold`]: yilian_proto::Reply::Hold
//! [`Reply::Resume`]: yilian_proto::Reply::Resume

use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;

/// Urgent uploads in progress, per source site.
#[derive(Default)]
pub(crate) struct UrgentBoard {
    sites: Mutex<HashMap<String, watch::Sender<u32>>>,
}

/// One urgent upload in progress; dropping it ends it.
pub(crate) struct UrgentGuard<'a> {
    board: &'a UrgentBoard,
    site: String,
}

impl UrgentBoard {
    fn sender(&self, site: &str) -> watch::Sender<u32> {
        let mut g = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        g.entry(site.to_string())
            .or_insert_with(|| watch::channel(0).0)
            .clone()
    }

    /// Urgent uploads in progress from `site`, and their changes.
    pub(crate) fn watch(&self, site: &str) -> watch::Receiver<u32> {
        self.sender(site).subscribe()
    }

    /// An urgent upload from `site` starts.
    pub(crate) fn begin(&self, site: &str) -> UrgentGuard<'_> {
        self.sender(site).send_modify(|n| *n += 1);
        UrgentGuard {
            board: self,
            site: site.to_string(),
        }
    }
}

impl Drop for UrgentGuard<'_> {
    fn drop(&mut self) {
        self.board
            .sender(&self.site)
            .send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_site_and_guards_end_on_drop() {
        let b = UrgentBoard::default();
        let mut a = b.watch("township-a");
        let other = b.watch("township-b");
        {
            let _g1 = b.begin("township-a");
            let _g2 = b.begin("township-a");
            assert!(a.has_changed().unwrap());
            assert_eq!(*a.borrow_and_update(), 2);
            assert_eq!(*other.borrow(), 0, "another site's link is not affected");
        }
        assert_eq!(*a.borrow_and_update(), 0);
    }
}
