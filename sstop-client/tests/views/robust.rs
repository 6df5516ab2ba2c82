//! No sequence of events and no terminal size makes the viewer panic or break columns.

use proptest::prelude::*;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use sstop_client::event::Event;
use sstop_client::ui;

use crate::fixture::{self, app_with};

fn render_ok(app: &sstop_client::app::App, w: u16, h: u16) {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| ui::render(app, f)).unwrap();
}

#[test]
fn every_view_at_every_size_from_20x5() {
    let views = [
        Event::Back,
        Event::ShowHosts,
        Event::ShowListen,
        Event::Enter,
        Event::ToggleHelp,
        Event::OpenKill,
    ];
    for w in (20..=152).step_by(11) {
        for h in (5..=47).step_by(6) {
            for v in &views {
                let mut app = app_with(w, h);
                app.update(Event::Home);
                app.update(v.clone());
                if matches!(v, Event::Enter) {
                    app.update(Event::Detail(fixture::detail_for(1006)));
                }
                render_ok(&app, w, h);
            }
        }
    }
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        Just(Event::Up),
        Just(Event::Down),
        Just(Event::PageUp),
        Just(Event::PageDown),
        Just(Event::Home),
        Just(Event::End),
        Just(Event::Enter),
        Just(Event::Back),
        Just(Event::CycleSort),
        Just(Event::OpenFilter),
        any::<char>().prop_map(Event::FilterChar),
        Just(Event::FilterBackspace),
        Just(Event::ShowHosts),
        Just(Event::ShowListen),
        Just(Event::OpenKill),
        Just(Event::ToggleDns),
        Just(Event::ToggleHelp),
        Just(Event::NextInterface),
        Just(Event::Faster),
        Just(Event::Slower),
        Just(Event::TogglePause),
        Just(Event::ScrollUp),
        Just(Event::ScrollDown),
        (0usize..40).prop_map(Event::ClickRow),
        (0u16..200, 0u16..60).prop_map(|(width, height)| Event::Resize { width, height }),
        (0u64..20, 0usize..12).prop_map(|(seq, keep)| {
            let mut s = fixture::snapshot(seq);
            s.processes.truncate(keep);
            Event::Snapshot(Box::new(s))
        }),
        Just(Event::Detail(fixture::detail_for(1006))),
        Just(Event::Disconnected {
            reason: "gone".into()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn random_event_sequences_never_panic(events in proptest::collection::vec(event(), 1..60)) {
        let mut app = app_with(80, 24);
        for e in events {
            app.update(e);
            let (w, h) = app.size;
            render_ok(&app, w, h);
            let len = app.list_len();
            prop_assert!(len == 0 || app.selection() < len, "selection {} of {}", app.selection(), len);
            prop_assert!((100..=10_000).contains(&app.interval_ms));
        }
    }
}
