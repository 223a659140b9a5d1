//! The calsync server's composition root, as a library so end-to-end tests
//! (and other binaries) can start the real thing.

pub mod server;
pub mod settings;
