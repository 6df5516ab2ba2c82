//! `App::update` driven by event sequences.

use proto::{KillOutcome, KillResult, Signal};
use sstop_client::app::kill::KillPhase;
use sstop_client::app::{App, Overlay, RowKey, SortKey, View};
use sstop_client::event::{Action, Event};

use crate::fixture::{self, app_with, process, snapshot};

fn selected_pid(app: &App) -> Option<u32> {
    app.selected_row().and_then(|r| r.pid)
}

fn pids(app: &App) -> Vec<Option<u32>> {
    let snap = app.shown.as_deref().unwrap();
    app.rows
        .iter()
        .map(|&r| sstop_client::app::rows::view(snap, r).unwrap().pid)
        .collect()
}

#[test]
fn sort_cycles_through_six_modes_and_orders_rows() {
    let mut app = app_with(120, 40);
    assert_eq!(app.sort, SortKey::Rate);
    assert_eq!(pids(&app)[0], Some(1006), "busiest first");
    let mut seen = vec![app.sort];
    for _ in 0..6 {
        app.update(Event::CycleSort);
        seen.push(app.sort);
    }
    use SortKey::*;
    assert_eq!(seen, vec![Rate, Down, Up, Pid, Name, Conns, Rate]);
    app.sort = Pid;
    app.update(Event::CycleSort); // -> Name
    app.update(Event::CycleSort); // -> Conns
    app.update(Event::CycleSort); // -> Rate
    app.update(Event::CycleSort); // -> Down
    assert_eq!(pids(&app)[0], Some(1006));
    assert_eq!(pids(&app)[1], Some(1002), "curl downloads most after huge");
    app.update(Event::CycleSort); // Up
    assert_eq!(pids(&app)[1], Some(1001));
    app.update(Event::CycleSort); // Pid
    assert_eq!(pids(&app)[0], Some(1001));
    assert_eq!(
        *pids(&app).last().unwrap(),
        None,
        "unattributed row sorts after every pid"
    );
    app.update(Event::CycleSort); // Name
    let snap = app.shown.as_deref().unwrap();
    let names: Vec<String> = app
        .rows
        .iter()
        .map(|&r| {
            sstop_client::app::rows::view(snap, r)
                .unwrap()
                .name
                .to_lowercase()
        })
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

#[test]
fn filter_is_live_case_insensitive_over_name_cmdline_and_pid() {
    let mut app = app_with(120, 40);
    app.update(Event::OpenFilter);
    assert_eq!(app.focus(), sstop_client::keymap::Focus::Prompt);
    for c in "NGI".chars() {
        app.update(Event::FilterChar(c));
    }
    assert_eq!(pids(&app), vec![Some(1001)], "name, any case");
    app.update(Event::FilterBackspace);
    app.update(Event::FilterBackspace);
    app.update(Event::FilterBackspace);
    for c in "--SERVE".chars() {
        app.update(Event::FilterChar(c));
    }
    assert_eq!(
        pids(&app).len(),
        8,
        "command line matches every process but the kernel thread"
    );
    app.update(Event::Back);
    assert!(app.filter.is_empty(), "esc clears");
    app.update(Event::OpenFilter);
    for c in "1004".chars() {
        app.update(Event::FilterChar(c));
    }
    assert_eq!(pids(&app), vec![Some(1004)], "pid");
    app.update(Event::Enter);
    assert_eq!(app.overlay, Overlay::None);
    assert_eq!(app.filter, "1004", "enter keeps the filter");
    // Data keeps flowing through the filter.
    app.update(Event::Snapshot(Box::new(snapshot(2))));
    assert_eq!(pids(&app), vec![Some(1004)]);
    app.update(Event::Back);
    assert_eq!(pids(&app).len(), 10);
}

#[test]
fn selection_stays_on_the_same_pid_when_rows_resort() {
    let mut app = app_with(120, 40);
    app.update(Event::Down);
    app.update(Event::Down);
    let pid = selected_pid(&app).unwrap();
    let before = app.selected[0];
    // Next frame: the selected process becomes the quietest.
    let mut s = snapshot(2);
    for p in &mut s.processes {
        if p.pid == pid {
            p.traffic = fixture::traffic(0.0, 0.0);
        }
    }
    app.update(Event::Snapshot(Box::new(s)));
    assert_eq!(selected_pid(&app), Some(pid));
    assert_ne!(
        app.selected[0], before,
        "the row moved, the selection followed it"
    );
}

#[test]
fn selection_is_clamped_when_rows_vanish() {
    let mut app = app_with(120, 40);
    app.update(Event::End);
    assert_eq!(app.selected[0], app.rows.len() - 1);
    let mut s = snapshot(2);
    s.processes.truncate(2);
    s.unattributed.clear();
    app.update(Event::Snapshot(Box::new(s)));
    assert_eq!(app.rows.len(), 2);
    assert_eq!(app.selected[0], 1);
    assert!(selected_pid(&app).is_some());
    let mut empty = snapshot(3);
    empty.processes.clear();
    empty.unattributed.clear();
    app.update(Event::Snapshot(Box::new(empty)));
    assert_eq!(app.selected[0], 0);
    assert!(app.selected_row().is_none());
    app.update(Event::Down);
    app.update(Event::Enter);
    assert_eq!(app.view, View::Processes);
}

#[test]
fn pause_freezes_the_shown_frame_while_frames_keep_arriving() {
    let mut app = app_with(120, 40);
    app.update(Event::TogglePause);
    for seq in 2..6 {
        app.update(Event::Snapshot(Box::new(snapshot(seq))));
    }
    assert_eq!(app.shown.as_ref().unwrap().seq, 1);
    assert_eq!(app.frames_received, 5);
    app.update(Event::TogglePause);
    assert_eq!(
        app.shown.as_ref().unwrap().seq,
        5,
        "resume shows the newest frame"
    );
}

#[test]
fn interval_steps_within_limits_and_resubscribes() {
    let mut app = app_with(120, 40);
    let mut last = None;
    for _ in 0..20 {
        if let Some(a) = app.update(Event::Faster) {
            last = Some(a);
        }
    }
    assert_eq!(app.interval_ms, 100);
    assert_eq!(
        last,
        Some(Action::Subscribe {
            interval_ms: 100,
            detail_pid: None
        })
    );
    assert_eq!(app.update(Event::Faster), None, "no lower than 100 ms");
    for _ in 0..20 {
        app.update(Event::Slower);
    }
    assert_eq!(app.interval_ms, 10_000);
    assert_eq!(app.update(Event::Slower), None, "no higher than 10 s");
    assert_eq!(App::new(5).interval_ms, 100);
    assert_eq!(App::new(99_999).interval_ms, 10_000);
}

#[test]
fn views_switch_and_detail_subscribes() {
    let mut app = app_with(120, 40);
    assert_eq!(app.update(Event::ShowHosts), None);
    assert_eq!(app.view, View::Hosts);
    app.update(Event::ShowListen);
    assert_eq!(app.view, View::Listen);
    app.update(Event::ShowListen);
    assert_eq!(app.view, View::Processes, "pressing l again goes back");
    app.update(Event::Home);
    let pid = selected_pid(&app).unwrap();
    let a = app.update(Event::Enter);
    assert_eq!(
        a,
        Some(Action::Subscribe {
            interval_ms: 1000,
            detail_pid: Some(pid)
        })
    );
    assert!(matches!(app.view, View::Detail { pid: p, .. } if p == pid));
    app.update(Event::Detail(fixture::detail_for(pid)));
    assert_eq!(app.conns.len(), 2);
    // A detail for someone else is ignored.
    app.update(Event::Detail(fixture::detail_for(1)));
    assert_eq!(app.detail.as_ref().unwrap().pid, pid);
    let a = app.update(Event::Back);
    assert_eq!(
        a,
        Some(Action::Subscribe {
            interval_ms: 1000,
            detail_pid: None
        })
    );
    assert_eq!(app.view, View::Processes);
    // Enter on a listen port opens its process.
    app.update(Event::ShowListen);
    app.update(Event::Home);
    assert_eq!(
        app.update(Event::Enter),
        None,
        "port 5353 has no known owner"
    );
    app.update(Event::Down);
    let a = app.update(Event::Enter);
    assert_eq!(
        a,
        Some(Action::Subscribe {
            interval_ms: 1000,
            detail_pid: Some(1001)
        })
    );
}

#[test]
fn unattributed_row_is_named_and_has_no_detail_or_kill() {
    let mut app = app_with(120, 40);
    let idx = app
        .rows
        .iter()
        .position(|&r| matches!(r, sstop_client::app::RowRef::Unattributed(_)))
        .unwrap();
    app.update(Event::ClickRow(idx));
    let row = app.selected_row().unwrap();
    assert_eq!(row.key, RowKey::Unattributed(proto::Proto::Udp));
    assert_eq!(row.name, "‹unattributed UDP›");
    assert_eq!(app.update(Event::Enter), None);
    app.update(Event::OpenKill);
    assert_eq!(app.overlay, Overlay::None);
    assert!(app.status.is_some());
}

#[test]
fn kill_overlay_pins_its_target_and_shows_the_answer() {
    let mut app = app_with(120, 40);
    app.update(Event::Home);
    let pid = selected_pid(&app).unwrap();
    app.update(Event::OpenKill);
    let Overlay::Kill(k) = &app.overlay else {
        panic!("no kill overlay")
    };
    assert_eq!(k.pid, pid);
    // Rows re-sort underneath: the target stays.
    let mut s = snapshot(2);
    s.processes.retain(|p| p.pid != 1001);
    s.processes.insert(0, process(77, "newcomer", 9e12, 9e12));
    app.update(Event::Snapshot(Box::new(s)));
    app.update(Event::Down);
    app.update(Event::Down);
    let a = app.update(Event::Enter);
    assert_eq!(
        a,
        Some(Action::Kill {
            pid,
            start_time: u64::from(pid) * 10,
            signal: Signal::Int
        })
    );
    let Overlay::Kill(k) = &app.overlay else {
        panic!("overlay closed early")
    };
    assert_eq!(k.phase, KillPhase::Waiting(Signal::Int));
    let answer = KillResult {
        pid,
        signal: Signal::Int,
        outcome: KillOutcome::Denied,
        message: "process belongs to uid 0".into(),
    };
    app.update(Event::KillResult(answer.clone()));
    let Overlay::Kill(k) = &app.overlay else {
        panic!("overlay closed early")
    };
    assert_eq!(k.phase, KillPhase::Answered(answer));
    app.update(Event::Enter);
    assert_eq!(app.overlay, Overlay::None);
}

#[test]
fn help_swallows_keys_until_closed_and_quit_always_quits() {
    let mut app = app_with(120, 40);
    app.update(Event::ToggleHelp);
    app.update(Event::ShowHosts);
    assert_eq!(app.view, View::Processes);
    app.update(Event::Back);
    assert_eq!(app.overlay, Overlay::None);
    assert_eq!(app.update(Event::Quit), Some(Action::Quit));
}

#[test]
fn dns_lookups_are_requested_once_and_cached() {
    let mut app = app_with(120, 40);
    app.update(Event::Home);
    let pid = selected_pid(&app).unwrap();
    app.update(Event::Enter);
    app.update(Event::Detail(fixture::detail_for(pid)));
    let ip: std::net::IpAddr = "192.0.2.10".parse().unwrap();
    assert_eq!(
        app.update(Event::ToggleDns),
        Some(Action::Resolve(vec![ip]))
    );
    assert_eq!(
        app.update(Event::Detail(fixture::detail_for(pid))),
        None,
        "in flight: not asked twice"
    );
    app.update(Event::Resolved {
        addr: ip,
        name: Some("host.example".into()),
    });
    assert_eq!(app.dns.name(ip), Some("host.example"));
    app.update(Event::ToggleDns);
    assert_eq!(app.dns.name(ip), None, "off shows addresses");
}

#[test]
fn disconnect_keeps_the_last_frame_and_reconnect_clears_the_banner() {
    let mut app = app_with(120, 40);
    app.update(Event::Disconnected {
        reason: "connection reset".into(),
    });
    assert!(matches!(
        app.link,
        sstop_client::app::Link::Reconnecting { .. }
    ));
    assert_eq!(app.shown.as_ref().unwrap().seq, 1);
    app.update(Event::Snapshot(Box::new(snapshot(9))));
    assert_eq!(app.link, sstop_client::app::Link::Live);
}

#[test]
fn interface_cycles() {
    let mut app = app_with(120, 40);
    assert_eq!(
        app.current_interface().unwrap().name,
        "eth0",
        "default route first"
    );
    app.update(Event::NextInterface);
    assert_eq!(app.current_interface().unwrap().name, "lo");
    app.update(Event::NextInterface);
    assert_eq!(app.current_interface().unwrap().name, "eth0");
}

#[test]
fn kill_from_the_listen_view_targets_the_port_owner() {
    let mut app = app_with(120, 40);
    app.update(Event::ShowListen);
    app.update(Event::Home);
    app.update(Event::OpenKill);
    assert_eq!(app.overlay, Overlay::None, "port 5353 has no known owner");
    assert!(app.status.is_some());
    app.update(Event::Down);
    app.update(Event::OpenKill);
    let Overlay::Kill(k) = &app.overlay else {
        panic!("no kill overlay")
    };
    assert_eq!((k.pid, k.name.as_str()), (1001, "nginx"));
}
