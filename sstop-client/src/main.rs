//! sstop, the viewer: connects to sstopd (or runs the collector in-process)
//! and shows per-process network bandwidth.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = sstop_client::cli::Cli::parse();
    match sstop_client::launch::run(cli) {
        Ok(code) => code,
        Err(e) => {
            // The terminal is already restored here (tui::run restores on every path).
            eprintln!("sstop: {}", sstop_client::launch::describe(&e));
            ExitCode::FAILURE
        }
    }
}
