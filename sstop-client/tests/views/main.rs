//! Viewer state and drawing, from fixture snapshots.

// Helpers outside #[test] fns build fixtures; a bad literal should fail the test loudly.
#![allow(clippy::unwrap_used)]

mod app_update;
mod fixture;
mod render;
mod robust;
