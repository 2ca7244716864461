//! End-to-end tests of the `ratchet` binary: one integration binary, one
//! module per area.

mod common;
mod init;
mod rails;
mod step;
