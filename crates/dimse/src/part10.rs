//! part10
