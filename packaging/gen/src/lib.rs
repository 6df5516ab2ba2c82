//! Man pages and shell completions for `sstop` and `sstopd`, generated from their clap
//! definitions so the documentation can never drift from the real flags.
//!
//! Layout written under the output directory (the packages pick files from there):
//! ```text
//! man/sstop.1  man/sstop-kill.1  man/sstopd.8
//! completions/bash/{sstop,sstopd}  completions/zsh/{_sstop,_sstopd}  completions/fish/{sstop,sstopd}.fish
//! ```

mod date;
mod pages;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Command, CommandFactory};
use clap_complete::Shell;

/// One binary to document: its clap command, man section and hand-written extra sections.
pub struct Program {
    pub command: Command,
    pub section: &'static str,
    /// roff text appended after the generated sections (FILES, ENVIRONMENT, SEE ALSO, ...).
    pub extra_roff: &'static str,
}

/// Both binaries, from their real clap definitions.
pub fn programs() -> Vec<Program> {
    vec![
        Program {
            command: sstop_client::cli::Cli::command(),
            section: "1",
            extra_roff: pages::SSTOP_EXTRA,
        },
        Program {
            command: sstopd::config::Args::command(),
            section: "8",
            extra_roff: pages::SSTOPD_EXTRA,
        },
    ]
}

pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// Write every man page and completion script under `out`; returns the files written.
pub fn write_all(out: &Path, programs: Vec<Program>) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for program in programs {
        written.extend(write_man_pages(&out.join("man"), &program)?);
        for shell in SHELLS {
            written.push(write_completion(
                &out.join("completions"),
                &program.command,
                shell,
            )?);
        }
    }
    Ok(written)
}

/// The program's page plus one page per visible subcommand (`sstop-kill.1`).
pub fn write_man_pages(dir: &Path, program: &Program) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // Building resolves display names ("sstop-kill") and propagates globals into subcommands.
    let mut cmd = program.command.clone().disable_help_subcommand(true);
    cmd.build();
    let mut written = vec![write_page(
        dir,
        cmd.clone(),
        program.section,
        program.extra_roff,
    )?];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        written.push(write_page(dir, sub.clone(), program.section, "")?);
    }
    Ok(written)
}

fn write_page(dir: &Path, cmd: Command, section: &str, extra_roff: &str) -> Result<PathBuf> {
    let man = clap_mangen::Man::new(cmd)
        .section(section)
        .date(date::build_date())
        .source(format!("sstop {}", env!("CARGO_PKG_VERSION")))
        .manual(if section == "8" {
            "System Administration"
        } else {
            "User Commands"
        });
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page)
        .with_context(|| format!("rendering {}", path.display()))?;
    page.write_all(extra_roff.as_bytes())?;
    fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// File name each shell looks for in its completion directory.
pub fn completion_file_name(shell: Shell, bin: &str) -> String {
    match shell {
        Shell::Bash => bin.to_owned(),
        Shell::Zsh => format!("_{bin}"),
        Shell::Fish => format!("{bin}.fish"),
        other => format!("{bin}.{other}"),
    }
}

pub fn write_completion(dir: &Path, cmd: &Command, shell: Shell) -> Result<PathBuf> {
    let dir = dir.join(shell.to_string());
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let bin = cmd.get_name().to_owned();
    let path = dir.join(completion_file_name(shell, &bin));
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd.clone(), bin, &mut script);
    fs::write(&path, script).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
