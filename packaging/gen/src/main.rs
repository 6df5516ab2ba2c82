//! `sstop-gen OUT_DIR`: write man pages and shell completions for sstop and sstopd.

use std::path::PathBuf;

use anyhow::{Context, Result};

fn main() -> Result<()> {
    let out: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .context("usage: sstop-gen OUT_DIR")?;
    for path in sstop_gen::write_all(&out, sstop_gen::programs())? {
        println!("{}", path.display());
    }
    Ok(())
}
