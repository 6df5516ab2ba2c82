//! The generated man pages and completions cover every flag of the real CLIs, and the
//! packaged unit starts the daemon with flags the daemon really accepts.

use std::fs;
use std::path::{Path, PathBuf};

use clap::{Command, CommandFactory};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every visible long option of a command and its visible subcommands.
fn long_options(cmd: &Command) -> Vec<String> {
    let mut cmd = cmd.clone();
    cmd.build();
    let mut out: Vec<String> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| a.get_long().map(str::to_owned))
        .filter(|l| l != "help" && l != "version")
        .collect();
    for sub in cmd.get_subcommands() {
        out.extend(long_options(sub));
    }
    out.sort();
    out.dedup();
    out
}

fn generate() -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let written = sstop_gen::write_all(dir.path(), sstop_gen::programs()).expect("generate");
    (dir, written)
}

#[test]
fn writes_every_page_and_completion() {
    let (dir, written) = generate();
    let expected = [
        "man/sstop.1",
        "man/sstop-kill.1",
        "man/sstopd.8",
        "completions/bash/sstop",
        "completions/bash/sstopd",
        "completions/zsh/_sstop",
        "completions/zsh/_sstopd",
        "completions/fish/sstop.fish",
        "completions/fish/sstopd.fish",
    ];
    for rel in expected {
        let path = dir.path().join(rel);
        assert!(written.contains(&path), "{rel} not reported as written");
        let len = fs::metadata(&path).unwrap().len();
        assert!(len > 200, "{rel} is only {len} bytes");
    }
    assert_eq!(
        written.len(),
        expected.len(),
        "unexpected extra files: {written:?}"
    );
}

#[test]
fn man_pages_document_every_option() {
    let (dir, _) = generate();
    for (program, page) in [
        (sstop_client::cli::Cli::command(), "man/sstop.1"),
        (sstopd::config::Args::command(), "man/sstopd.8"),
    ] {
        let text = fs::read_to_string(dir.path().join(page)).unwrap();
        let mut opts = long_options(&program);
        // Subcommand options live on their own page (sstop-kill.1).
        if page == "man/sstop.1" {
            let kill = fs::read_to_string(dir.path().join("man/sstop-kill.1")).unwrap();
            opts.retain(|o| !kill.contains(&format!("\\-\\-{}", o.replace('-', "\\-"))));
        }
        assert!(!opts.is_empty() || page == "man/sstop.1");
        for opt in opts {
            let roff = format!("\\-\\-{}", opt.replace('-', "\\-"));
            assert!(text.contains(&roff), "{page} does not document --{opt}");
        }
        assert!(text.contains(".SH SEE ALSO"), "{page} lacks SEE ALSO");
    }
    let daemon = fs::read_to_string(dir.path().join("man/sstopd.8")).unwrap();
    assert!(
        daemon.contains(".TH sstopd 8"),
        "sstopd page is not section 8"
    );
}

#[test]
fn completions_offer_every_option() {
    let (dir, _) = generate();
    for (program, bin) in [
        (sstop_client::cli::Cli::command(), "sstop"),
        (sstopd::config::Args::command(), "sstopd"),
    ] {
        let opts = long_options(&program);
        let bash = fs::read_to_string(dir.path().join(format!("completions/bash/{bin}"))).unwrap();
        let zsh = fs::read_to_string(dir.path().join(format!("completions/zsh/_{bin}"))).unwrap();
        let fish =
            fs::read_to_string(dir.path().join(format!("completions/fish/{bin}.fish"))).unwrap();
        assert!(
            zsh.starts_with(&format!("#compdef {bin}")),
            "zsh script for {bin}"
        );
        assert!(
            fish.contains(&format!("complete -c {bin}")),
            "fish script for {bin}"
        );
        assert!(
            bash.contains(&format!("complete -F _{bin}")),
            "bash script for {bin}"
        );
        for opt in opts {
            assert!(bash.contains(&format!("--{opt}")), "bash: {bin} --{opt}");
            assert!(zsh.contains(&format!("--{opt}")), "zsh: {bin} --{opt}");
            assert!(fish.contains(&format!("-l {opt}")), "fish: {bin} --{opt}");
        }
    }
}

/// The unit's ExecStart must parse with the daemon's real CLI, or systemd would restart-loop it.
#[test]
fn unit_exec_start_is_accepted_by_sstopd() {
    let unit = fs::read_to_string(repo_root().join("systemd/sstopd.service")).unwrap();
    let exec: Vec<&str> = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart in the unit")
        .split_whitespace()
        .collect();
    assert_eq!(exec[0], "/usr/bin/sstopd");
    assert!(exec.contains(&"--socket-group") && exec.contains(&"sstop"));
    let m = sstopd::config::Args::command().try_get_matches_from(exec.clone());
    assert!(
        m.is_ok(),
        "sstopd rejects the unit's ExecStart {exec:?}: {}",
        m.unwrap_err()
    );
}
