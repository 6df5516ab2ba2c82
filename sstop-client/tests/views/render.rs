//! Drawing into ratatui's TestBackend from fixture snapshots, asserting on visible text.

use proto::{KillOutcome, KillResult, Signal};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use sstop_client::app::App;
use sstop_client::event::Event;
use sstop_client::ui;
use unicode_width::UnicodeWidthStr;

use crate::fixture::{self, app_with};

const SIZES: [(u16, u16); 3] = [(120, 40), (80, 24), (20, 5)];

/// The screen as lines of text; the cell hidden behind a wide character is skipped.
fn draw(app: &App, w: u16, h: u16) -> Vec<String> {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| ui::render(app, f)).unwrap();
    let buf = term.backend().buffer();
    (0..h)
        .map(|y| {
            let mut line = String::new();
            let mut skip = 0;
            for x in 0..w {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                let sym = buf[(x, y)].symbol();
                line.push_str(sym);
                skip = sym.width().saturating_sub(1);
            }
            line
        })
        .collect()
}

fn screen(app: &App, w: u16, h: u16) -> String {
    draw(app, w, h).join("\n")
}

fn sized(mut app: App, w: u16, h: u16) -> App {
    app.update(Event::Resize {
        width: w,
        height: h,
    });
    app
}

#[test]
fn process_table_at_every_size() {
    for (w, h) in SIZES {
        let app = app_with(w, h);
        let s = screen(&app, w, h);
        assert!(s.contains("huge"), "{w}x{h}:\n{s}");
        assert!(s.contains("UP/s"), "{w}x{h}:\n{s}");
        for line in draw(&app, w, h) {
            assert_eq!(line.width(), usize::from(w), "{w}x{h}: {line:?}");
        }
        if h >= 24 {
            assert!(s.contains("sstop") && s.contains("testhost"), "{s}");
            assert!(s.contains("9 processes"), "{s}");
            assert!(s.contains("[eth0]"), "{s}");
            assert!(s.contains("‹unattributed UDP›"), "{s}");
            assert!(s.contains("netlink"), "{s}");
            assert!(s.contains("UDP bytes unavailable"), "{s}");
            assert!(
                s.contains("nginx")
                    && s.contains("PID")
                    && s.contains("DOWN/s")
                    && s.contains("CONNS")
            );
            assert!(s.contains("? help"), "{s}");
        }
    }
    let s = screen(&app_with(120, 40), 120, 40);
    assert!(
        s.contains("USER") && s.contains("GRAPH") && s.contains("alice"),
        "{s}"
    );
}

#[test]
fn no_blank_pid_zero_row() {
    let app = app_with(120, 40);
    for line in draw(&app, 120, 40) {
        let t = line.trim_start_matches(['▸', ' ']);
        assert!(!t.starts_with("0 "), "pid-0 row: {line:?}");
    }
}

#[test]
fn wide_and_odd_names_keep_columns() {
    for (w, h) in [(120, 40), (80, 24), (40, 12)] {
        let lines = draw(&app_with(w, h), w, h);
        let find = |needle: &str| {
            lines
                .iter()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("{needle} at {w}x{h}:\n{}", lines.join("\n")))
        };
        let ascii = find("nginx");
        let prefix_at = |l: &str| l.trim_end().width();
        let cjk = find("浏览");
        let crab = find("🦀");
        let lossy = find("ab��cd");
        // Right-aligned last column ends at the same display column on every row.
        for l in [cjk, crab, lossy] {
            assert_eq!(prefix_at(l), prefix_at(ascii), "{w}x{h}:\n{ascii}\n{l}");
            assert_eq!(l.width(), usize::from(w));
        }
        // A control character never reaches the terminal.
        assert!(lines.iter().all(|l| !l.contains('\u{1b}')));
    }
    let s = screen(&app_with(120, 40), 120, 40);
    assert!(
        s.contains("浏览器进程测试"),
        "whole name when it fits:\n{s}"
    );
    assert!(s.contains("esc�[2Jape"));
    // Narrow: cut with an ellipsis, never inside a character.
    let s = screen(&app_with(40, 12), 40, 12);
    assert!(
        s.contains("浏览器…") || s.contains("浏览器进…") || s.contains("浏览器进程…"),
        "{s}"
    );
}

#[test]
fn huge_rates_fit_their_columns() {
    for (w, h) in [(120, 40), (80, 24)] {
        let lines = draw(&app_with(w, h), w, h);
        let row = lines.iter().find(|l| l.contains("huge")).unwrap();
        assert!(row.contains("4.66 GiB/s"), "{row}");
        assert!(row.contains("1.09 TiB/s"), "{row}");
        assert_eq!(row.width(), usize::from(w));
    }
}

#[test]
fn detail_view_at_every_size() {
    for (w, h) in SIZES {
        let mut app = app_with(w, h);
        app.update(Event::Home);
        app.update(Event::Enter);
        let pid = app.detail_pid().unwrap();
        let waiting = screen(&app, w, h);
        if h >= 24 {
            assert!(
                waiting.contains("waiting for the connection list"),
                "{waiting}"
            );
        }
        app.update(Event::Detail(fixture::detail_for(pid)));
        let s = screen(&app, w, h);
        assert!(s.contains("huge"), "{w}x{h}:\n{s}");
        if h >= 24 {
            assert!(s.contains(&format!("PID {pid}")), "{s}");
            assert!(s.contains("/usr/bin/huge --serve"), "{s}");
            assert!(s.contains("Connections (2)"), "{s}");
            assert!(s.contains("192.0.2.10:51000"), "{s}");
            assert!(s.contains("ESTAB"), "{s}");
            assert!(s.contains("12m03s"), "{s}");
            assert!(s.contains("*:*"), "{s}");
            assert!(s.contains("shared"), "{s}");
            assert!(
                s.contains("STATE") && s.contains("AGE") && s.contains("REMOTE"),
                "{s}"
            );
        }
        // DNS names replace addresses when on and known.
        let ip = "192.0.2.10".parse().unwrap();
        app.update(Event::ToggleDns);
        app.update(Event::Resolved {
            addr: ip,
            name: Some("web.example".into()),
        });
        let s = screen(&app, w, h);
        if h >= 24 {
            assert!(s.contains("web.example:51000"), "{s}");
        }
    }
}

#[test]
fn hosts_view_at_every_size() {
    for (w, h) in SIZES {
        let mut app = app_with(w, h);
        app.update(Event::ShowHosts);
        let s = screen(&app, w, h);
        assert!(s.contains("192.0.2"), "{w}x{h}:\n{s}");
        if h >= 24 {
            assert!(
                s.contains("Remote Hosts (2)") && s.contains("2001:db8::7"),
                "{s}"
            );
            assert!(s.contains("curl,nginx"), "{s}");
        }
        // CASES B13: a host's remote ports are part of what the hosts view shows.
        if w >= 100 {
            assert!(
                s.contains("PORTS") && s.contains("443,8443"),
                "{w}x{h}:\n{s}"
            );
        }
    }
}

#[test]
fn listen_view_at_every_size() {
    for (w, h) in SIZES {
        let mut app = app_with(w, h);
        app.update(Event::ShowListen);
        let s = screen(&app, w, h);
        assert!(s.contains("5353") || s.contains("Listen"), "{w}x{h}:\n{s}");
        if h >= 24 {
            assert!(
                s.contains("Listening Ports (2)") && s.contains("8080") && s.contains("nginx"),
                "{s}"
            );
            assert!(s.contains("‹unknown owner›"), "{s}");
        }
    }
}

#[test]
fn help_overlay_at_every_size() {
    for (w, h) in SIZES {
        let mut app = app_with(w, h);
        app.update(Event::ToggleHelp);
        let s = screen(&app, w, h);
        if h >= 24 {
            assert!(s.contains("Keyboard Shortcuts"), "{s}");
            assert!(
                s.contains("cycle sort") && s.contains("toggle DNS") && s.contains("pause"),
                "{s}"
            );
        }
        if h >= 24 {
            assert!(
                s.contains("payload bytes") && s.contains("wire bytes"),
                "{s}"
            );
        }
    }
}

#[test]
fn filter_prompt_at_every_size() {
    for (w, h) in SIZES {
        let mut app = app_with(w, h);
        app.update(Event::OpenFilter);
        for c in "cur".chars() {
            app.update(Event::FilterChar(c));
        }
        let s = screen(&app, w, h);
        assert!(s.contains("/ cur"), "{w}x{h}:\n{s}");
        assert!(s.contains("curl"), "{w}x{h}:\n{s}");
        assert!(!s.contains("nginx"), "{w}x{h}:\n{s}");
    }
}

#[test]
fn kill_overlay_at_every_size() {
    for (w, h) in SIZES {
        let mut app = app_with(w, h);
        app.update(Event::Home);
        app.update(Event::OpenKill);
        let s = screen(&app, w, h);
        if h >= 24 {
            assert!(
                s.contains("Kill process") && s.contains("huge") && s.contains("pid 1006"),
                "{s}"
            );
            for sig in Signal::LISTED {
                assert!(s.contains(&format!("SIG{}", sig.name())), "{sig:?}:\n{s}");
            }
        }
        app.update(Event::Enter);
        app.update(Event::KillResult(KillResult {
            pid: 1006,
            signal: Signal::Term,
            outcome: KillOutcome::Failed,
            message: "killing is not implemented by this daemon, and this sentence is long enough to need three lines in the popup".into(),
        }));
        let s = screen(&app, w, h);
        if h >= 24 {
            assert!(
                s.contains("not sent: Failed") && s.contains("not implemented"),
                "{s}"
            );
        }
    }
}

#[test]
fn reconnecting_banner_over_the_last_frame() {
    let mut app = app_with(80, 24);
    app.update(Event::Disconnected {
        reason: "connection reset by peer".into(),
    });
    let s = screen(&app, 80, 24);
    assert!(s.contains("reconnecting"), "{s}");
    assert!(s.contains("nginx"), "last frame still shown:\n{s}");
}

#[test]
fn b23_tiny_sizes_never_panic() {
    for (w, h) in [
        (80, 0),
        (80, 1),
        (80, 2),
        (0, 24),
        (1, 1),
        (5, 3),
        (20, 2),
        (19, 5),
        (20, 4),
        (80, 24),
    ] {
        for view in [
            Event::Back,
            Event::ShowHosts,
            Event::ShowListen,
            Event::ToggleHelp,
        ] {
            let mut app = sized(app_with(80, 24), w, h);
            app.update(view);
            let lines = draw(&app, w, h);
            if (w, h) == (80, 24) {
                assert!(!lines.join("\n").contains("too small"));
            } else if w >= 18 && h >= 1 {
                assert!(
                    lines[0].contains("terminal too small"),
                    "{w}x{h}: {lines:?}"
                );
            }
        }
        // Also with the detail view, a kill overlay and no data at all.
        let mut app = sized(app_with(80, 24), w, h);
        app.update(Event::Enter);
        app.update(Event::Detail(fixture::detail_for(1006)));
        draw(&app, w, h);
        app.update(Event::Back);
        app.update(Event::OpenKill);
        draw(&app, w, h);
        draw(&App::new(1000), w, h);
    }
    // Fifty resizes while data updates.
    let mut app = app_with(80, 24);
    for i in 0..50u16 {
        let (w, h) = (i * 7 % 130, i * 3 % 45);
        app.update(Event::Resize {
            width: w,
            height: h,
        });
        app.update(Event::Snapshot(Box::new(fixture::snapshot(
            u64::from(i) + 2,
        ))));
        draw(&app, w, h);
    }
}

#[test]
fn mouse_clicks_map_to_rows_and_select_them() {
    use crossterm::event::{KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
    let mut app = app_with(120, 40);
    let lines = draw(&app, 120, 40);
    let y = lines.iter().position(|l| l.contains("nginx")).unwrap() as u16;
    let click = MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: 30,
        row: y,
        modifiers: KeyModifiers::NONE,
    };
    let ev = sstop_client::keymap::mouse(click, |x, y| ui::row_at(&app, x, y)).unwrap();
    app.update(ev);
    assert_eq!(app.selected_row().unwrap().name, "nginx");
    // The header is not a row; the wheel scrolls.
    let header = MouseEvent { row: 0, ..click };
    assert_eq!(
        sstop_client::keymap::mouse(header, |x, y| ui::row_at(&app, x, y)),
        None
    );
    let wheel = MouseEvent {
        kind: MouseEventKind::ScrollDown,
        ..click
    };
    let before = app.selected[0];
    app.update(sstop_client::keymap::mouse(wheel, |_, _| None).unwrap());
    assert_eq!(app.selected[0], before + 3);
}

#[test]
fn overlays_never_leave_half_a_wide_character_at_their_edge() {
    let mut app = app_with(80, 24);
    app.update(Event::Home);
    app.update(Event::OpenKill);
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    term.draw(|f| ui::render(&app, f)).unwrap();
    let buf = term.backend().buffer();
    // Every row of the popup has its left border, and nothing wide pokes into it.
    let x = (0..80)
        .find(|&x| buf[(x, 4)].symbol() == "╭")
        .expect("popup corner");
    for y in 5..12 {
        assert_eq!(buf[(x, y)].symbol(), "│", "row {y}");
        assert!(
            buf[(x - 1, y)].symbol().width() <= 1,
            "row {y}: {:?}",
            buf[(x - 1, y)].symbol()
        );
    }
}

#[test]
fn tokyo_night_look_zebra_selection_bars_and_dimmed_gone_rows() {
    use ratatui::style::Modifier;
    use sstop_client::theme;
    let app = app_with(120, 40);
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    term.draw(|f| ui::render(&app, f)).unwrap();
    let buf = term.backend().buffer().clone();
    let lines = draw(&app, 120, 40);
    let row_of = |needle: &str| lines.iter().position(|l| l.contains(needle)).unwrap() as u16;
    let col_of = |y: u16, needle: &str| {
        let l = &lines[usize::from(y)];
        l[..l.find(needle).unwrap()].width() as u16
    };
    // Selected row, then zebra stripes.
    let first = row_of("huge");
    assert_eq!(buf[(2, first)].bg, theme::BG_SELECTED);
    assert_eq!(buf[(2, first + 1)].bg, theme::BG_ALT);
    assert_eq!(buf[(2, first + 2)].bg, theme::BG);
    // Rate bars: full colour at the top rate, fainter for a small one.
    // Bars start after the 12-column graph.
    let title = row_of("GRAPH");
    let after_graph = col_of(title, "GRAPH") + 13;
    let bar_fg = |needle: &str| {
        let y = row_of(needle);
        let x = (after_graph..120)
            .find(|&x| ["█", "▉", "▊", "▋", "▌", "▍", "▎", "▏"].contains(&buf[(x, y)].symbol()));
        buf[(x.unwrap(), y)].fg
    };
    assert_eq!(bar_fg("huge"), theme::UP);
    assert_ne!(bar_fg("esc"), theme::UP);
    // Gone processes are dimmed; the unattributed row is named, in italics.
    let gone = row_of("gone-daemon");
    let x = col_of(gone, "gone-daemon");
    assert_eq!(buf[(x, gone)].fg, theme::FG_DIM);
    assert!(buf[(x, gone)].modifier.contains(Modifier::DIM));
    let un = row_of("‹unattributed UDP›");
    let x = col_of(un, "‹unattributed UDP›");
    assert!(buf[(x, un)].modifier.contains(Modifier::ITALIC));
    assert_eq!(buf[(x, un)].fg, theme::MAGENTA);
}

#[test]
fn the_list_scrolls_only_when_the_selection_leaves_the_screen() {
    let mut app = app_with(80, 24);
    let mut s = fixture::snapshot(2);
    s.processes = (0..100)
        .map(|i| fixture::process(2000 + i, &format!("p{i:03}"), 0.0, 0.0))
        .collect();
    s.unattributed.clear();
    app.update(Event::Snapshot(Box::new(s)));
    app.update(Event::CycleSort); // down
    app.update(Event::CycleSort); // up
    app.update(Event::CycleSort); // pid: p000 .. p099 in order
    app.update(Event::End);
    let bottom = screen(&app, 80, 24);
    assert!(
        bottom.contains("p099") && !bottom.contains("p000"),
        "{bottom}"
    );
    let offset = app.offset[0];
    for _ in 0..5 {
        app.update(Event::Up);
    }
    assert_eq!(
        app.offset[0], offset,
        "moving up inside the screen does not scroll"
    );
    assert!(screen(&app, 80, 24).contains("p099"));
    app.update(Event::Home);
    assert_eq!(app.offset[0], 0);
    let visible = ui::visible_rows(&app);
    for _ in 0..visible - 1 {
        app.update(Event::Down);
    }
    assert_eq!(
        app.offset[0], 0,
        "the last visible row is reached without scrolling"
    );
    app.update(Event::Down);
    assert_eq!(app.offset[0], 1, "one more scrolls by one");
    app.update(Event::PageDown);
    assert_eq!(app.selected[0], visible + visible);
}
