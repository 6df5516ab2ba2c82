//! The filter prompt, in place of the footer while typing.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::text;
use crate::app::App;
use crate::theme;

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let width = usize::from(area.width);
    // The typed text comes first; hints only where there is room.
    let hints_w = 32;
    let room = if width >= hints_w + 12 {
        width - hints_w
    } else {
        width.saturating_sub(4)
    };
    let shown = tail(&app.filter, room);
    let mut spans = vec![
        Span::styled(" / ", theme::key()),
        Span::styled(shown, Style::new().fg(theme::FG)),
        Span::styled("▏", Style::new().fg(theme::BLUE)),
    ];
    if width >= hints_w + 12 {
        spans.extend(hints(app));
    }
    f.render_widget(
        Paragraph::new(Line::from(spans)).style(Style::new().bg(theme::BG_ALT)),
        area,
    );
}

/// The end of `s` that fits in `width` columns (the part being typed).
fn tail(s: &str, width: usize) -> String {
    let clean = text::clean(s);
    if text::width(&clean) <= width {
        return clean.into_owned();
    }
    let rev: String = clean.chars().rev().collect();
    let cut = text::truncate(&rev, width);
    cut.chars().rev().collect()
}

fn hints(app: &App) -> Vec<Span<'static>> {
    vec![
        Span::styled(format!("  {} match  ", app.list_len()), theme::dim()),
        Span::styled("enter", theme::key()),
        Span::styled(" keep  ", theme::dim()),
        Span::styled("esc", theme::key()),
        Span::styled(" clear", theme::dim()),
    ]
}
