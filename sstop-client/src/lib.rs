//! sstop, the viewer: connects to sstopd (or runs the collector in-process)
//! and shows per-process network bandwidth.
//!
//! Data flows one way: socket ([`conn`]) → [`event::Event`] → [`app::App`]
//! → [`ui::render`]. Keys come in through [`keymap`]; requests leave as
//! [`event::Action`]s.

pub mod app;
pub mod cli;
pub mod conn;
pub mod dns;
pub mod embedded;
pub mod event;
pub mod format;
pub mod headless;
pub mod keymap;
pub mod kill_cmd;
pub mod launch;
pub mod theme;
pub mod tui;
pub mod ui;
