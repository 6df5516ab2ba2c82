//! The bottom line: key hints, refresh interval, sort, filter, pause, messages.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::text;
use crate::app::{App, View};
use crate::{format, theme};

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let mut s = vec![
        Span::styled(" ?", theme::key()),
        Span::styled(" help  ", theme::dim()),
        Span::styled("/", theme::key()),
        Span::styled(" filter  ", theme::dim()),
        Span::styled("q", theme::key()),
        Span::styled(" quit  ", theme::dim()),
        Span::styled("+/-", theme::key()),
        Span::styled(
            format!(" {}  ", format::interval(app.interval_ms)),
            theme::dim(),
        ),
    ];
    match app.view {
        View::Processes => {
            s.push(Span::styled("s", theme::key()));
            s.push(Span::styled(
                format!(" sort: {}  ", app.sort.label()),
                theme::dim(),
            ));
        }
        _ => {
            s.push(Span::styled("esc", theme::key()));
            s.push(Span::styled(" back  ", theme::dim()));
        }
    }
    if !app.filter.is_empty() {
        s.push(Span::styled(
            format!("filter: {}  ", text::truncate(&app.filter, 20)),
            theme::warning(),
        ));
    }
    if app.paused {
        s.push(Span::styled("PAUSED (space)  ", theme::warning()));
    }
    if let Some(msg) = &app.status {
        s.push(Span::styled(
            text::clean(msg).into_owned(),
            theme::warning(),
        ));
    }
    f.render_widget(Paragraph::new(Line::from(s)), area);
}
