//! The help overlay: every key, and what the numbers mean.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};

use super::text;
use crate::theme;

const SECTIONS: [(&str, &[(&str, &str)]); 4] = [
    (
        "Navigation",
        &[
            ("j/k ↑↓", "move up/down"),
            ("PgUp/^U", "page up"),
            ("PgDn/^D", "page down"),
            ("g/Home", "first"),
            ("G/End", "last"),
            ("mouse", "click selects, wheel scrolls"),
        ],
    ),
    (
        "Process table",
        &[
            ("enter", "open detail"),
            ("s", "cycle sort: rate down up pid name conns"),
            ("/", "filter: name, command line, pid"),
            ("h", "remote hosts"),
            ("l", "listen ports"),
            ("K", "kill process"),
        ],
    ),
    (
        "Detail",
        &[
            ("d", "toggle DNS names"),
            ("K", "kill process"),
            ("esc", "back to table"),
        ],
    ),
    (
        "Global",
        &[
            ("i / tab", "cycle interface"),
            ("+ / -", "refresh faster / slower"),
            ("space", "pause display (collection goes on)"),
            ("?", "toggle help"),
            ("q / ^C", "quit"),
        ],
    ),
];

const NOTES: [&str; 2] = [
    "Process, host and connection figures are payload bytes; interface figures are wire bytes (headers included).",
    "Rates are bytes per second.",
];

/// A centred rectangle of at most `w`×`h` inside `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x.saturating_add((area.width - w) / 2),
        y: area.y.saturating_add((area.height - h) / 2),
        width: w,
        height: h,
    }
}

pub fn render(f: &mut Frame, area: Rect) {
    let mut lines: Vec<Line<'static>> = Vec::new();
    for (title, keys) in SECTIONS {
        lines.push(Line::from(Span::styled(
            title,
            Style::new().fg(theme::CYAN),
        )));
        for (k, what) in keys {
            lines.push(Line::from(vec![
                Span::styled(text::left(k, 10), theme::key()),
                Span::styled(what.to_string(), Style::new().fg(theme::FG)),
            ]));
        }
        lines.push(Line::raw(""));
    }
    for n in NOTES {
        lines.push(Line::from(Span::styled(n, theme::dim())));
    }
    let h = u16::try_from(lines.len())
        .unwrap_or(u16::MAX)
        .saturating_add(2);
    let rect = centered(area, 64, h);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(Style::new().fg(theme::BLUE))
        .title(Span::styled(" Keyboard Shortcuts ", theme::title()))
        .style(Style::new().bg(theme::BG_POPUP).fg(theme::FG));
    f.render_widget(Clear, rect);
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        rect,
    );
}
