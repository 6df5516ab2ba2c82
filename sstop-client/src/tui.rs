//! The interactive viewer: terminal setup and restore, one loop that feeds
//! every event to `App::update`, performs the actions it returns and redraws.

use std::io::stdout;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use crossterm::event::{self as term, DisableMouseCapture, EnableMouseCapture};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::conn::{self, Request};
use crate::dns::{Lookups, SystemResolver};
use crate::event::{Action, Event};
use crate::launch::Target;
use crate::{keymap, ui};

/// What reaches the loop: raw terminal input (mapped with the app's focus) or app events.
enum Msg {
    Term(term::Event),
    App(Event),
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub fn run(
    rt: &tokio::runtime::Runtime,
    target: Target,
    cli: &crate::cli::Cli,
) -> anyhow::Result<ExitCode> {
    let (tx, rx) = mpsc::channel::<Msg>();
    let mut app = App::new(cli.interval);
    app.embedded_note = target.embedded_note;
    app.update(Event::Connected(Box::new(target.session.welcome.clone())));
    app.update(Event::Tick(now_ms()));
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let conn_tx = tx.clone();
    let link = {
        let _rt = rt.enter();
        conn::spawn(
            target.socket,
            target.session,
            to_request(app.subscription()).context("no subscription")?,
            Box::new(move |e| conn_tx.send(Msg::App(e)).is_ok()),
            shutdown.clone(),
        )
    };
    let dns_tx = tx.clone();
    let dns = Lookups::spawn(SystemResolver, move |e| dns_tx.send(Msg::App(e)).is_ok());

    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    // ratatui's hook restores the screen on panic; ours also releases the mouse first.
    let ratatui_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = crossterm::execute!(stdout(), DisableMouseCapture);
        ratatui_hook(info);
    }));
    // Everything after init runs inside this block so every exit path below restores.
    let result = (|| {
        crossterm::execute!(stdout(), EnableMouseCapture).context("cannot enable the mouse")?;
        std::thread::Builder::new()
            .name("sstop-input".into())
            .spawn(move || {
                while let Ok(ev) = term::read() {
                    if tx.send(Msg::Term(ev)).is_err() {
                        break;
                    }
                }
            })
            .context("cannot start the input thread")?;
        event_loop(&mut terminal, &mut app, &rx, &link, &dns)
    })();
    let _ = crossterm::execute!(stdout(), DisableMouseCapture);
    ratatui::restore();
    result.map(|()| ExitCode::SUCCESS)
}

fn to_request(a: Action) -> Option<Request> {
    match a {
        Action::Subscribe {
            interval_ms,
            detail_pid,
        } => Some(Request::Subscribe {
            interval_ms,
            detail_pid,
        }),
        Action::Kill {
            pid,
            start_time,
            signal,
        } => Some(Request::Kill {
            pid,
            start_time,
            signal,
        }),
        _ => None,
    }
}

fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    rx: &mpsc::Receiver<Msg>,
    link: &conn::Link,
    dns: &Lookups,
) -> anyhow::Result<()> {
    let size = terminal.size()?;
    app.update(Event::Resize {
        width: size.width,
        height: size.height,
    });
    let tick = Duration::from_secs(1);
    let mut next_tick = Instant::now() + tick;
    loop {
        terminal.draw(|f| ui::render(app, f))?;
        let first = match rx.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
            Ok(m) => Some(m),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        };
        // Take everything already waiting before drawing again.
        let batch = first
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()));
        for msg in batch {
            let event = match msg {
                Msg::App(e) => Some(e),
                Msg::Term(term::Event::Key(k)) => keymap::key(app.focus(), k),
                Msg::Term(term::Event::Mouse(m)) => keymap::mouse(m, |x, y| ui::row_at(app, x, y)),
                Msg::Term(term::Event::Resize(w, h)) => Some(Event::Resize {
                    width: w,
                    height: h,
                }),
                Msg::Term(_) => None,
            };
            let Some(event) = event else { continue };
            match app.update(event) {
                None => {}
                Some(Action::Quit) => return Ok(()),
                Some(Action::Resolve(addrs)) => dns.resolve(addrs),
                Some(other) => {
                    if let Some(r) = to_request(other) {
                        link.request(r);
                    }
                }
            }
        }
        if Instant::now() >= next_tick {
            app.update(Event::Tick(now_ms()));
            next_tick = Instant::now() + tick;
        }
    }
}
