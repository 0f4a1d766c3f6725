//! scu
