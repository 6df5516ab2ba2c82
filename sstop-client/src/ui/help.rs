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
            ("mouse", "click select, wheel"),
        ],
    ),
    (
        "Process table",
        &[
            ("enter", "open detail"),
            ("s", "cycle sort"),
            ("/", "filter name/cmd/pid"),
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
            ("+ / -", "refresh speed"),
            ("space", "pause display"),
            ("?", "toggle help"),
            ("q / ^C", "quit"),
        ],
    ),
];

const NOTES: [&str; 5] = [
    "Sort: rate → down → up → pid → name → conns.",
    "Space freezes the display; collection goes on.",
    "Processes, hosts, connections: payload bytes.",
    "Interfaces: wire bytes (headers included).",
    "Rates are bytes per second (B/s, KiB/s = 1024 B/s).",
];

/// Clear `rect` for a popup. A wide character just left of it would have its
/// right half under the border; blank it so the terminal never splits one.
pub fn clear_popup(f: &mut Frame, rect: Rect) {
    f.render_widget(Clear, rect);
    if rect.x == 0 {
        return;
    }
    let buf = f.buffer_mut();
    for y in rect.y..rect.bottom() {
        let cell = &mut buf[(rect.x - 1, y)];
        if unicode_width::UnicodeWidthStr::width(cell.symbol()) > 1 {
            cell.set_symbol(" ");
        }
    }
}

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

fn section_lines(sections: &[(&str, &[(&str, &str)])], width: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    for (i, (title, keys)) in sections.iter().enumerate() {
        if i > 0 {
            lines.push(Line::raw(" ".repeat(width)));
        }
        // Padded to the column so the right column of a two-column layout stays aligned.
        lines.push(Line::from(Span::styled(
            text::left(title, width),
            Style::new().fg(theme::CYAN),
        )));
        for (k, what) in keys.iter() {
            lines.push(Line::from(vec![
                Span::styled(text::left(k, 10), theme::key()),
                Span::styled(
                    text::left(what, width.saturating_sub(10)),
                    Style::new().fg(theme::FG),
                ),
            ]));
        }
    }
    lines
}

pub fn render(f: &mut Frame, area: Rect) {
    // Two columns when there is room, as the original; one otherwise.
    let two = area.width >= 76;
    let col = if two { 34 } else { 60 };
    let mut lines: Vec<Line<'static>> = if two {
        let left = section_lines(&SECTIONS[..2], col);
        let right = section_lines(&SECTIONS[2..], col);
        (0..left.len().max(right.len()))
            .map(|i| {
                let mut spans = left
                    .get(i)
                    .map_or_else(|| vec![Span::raw(" ".repeat(col))], |l| l.spans.clone());
                spans.push(Span::raw("  "));
                spans.extend(right.get(i).map(|l| l.spans.clone()).unwrap_or_default());
                Line::from(spans)
            })
            .collect()
    } else {
        section_lines(&SECTIONS, col)
    };
    lines.push(Line::raw(""));
    for n in NOTES {
        lines.push(Line::from(Span::styled(n, theme::dim())));
    }
    let h = u16::try_from(lines.len())
        .unwrap_or(u16::MAX)
        .saturating_add(2);
    let w = if two {
        2 * col as u16 + 6
    } else {
        col as u16 + 4
    };
    let rect = centered(area, w, h);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(Style::new().fg(theme::BLUE))
        .title(Span::styled(" Keyboard Shortcuts ", theme::title()))
        .padding(ratatui::widgets::Padding::horizontal(1))
        .style(Style::new().bg(theme::BG_POPUP).fg(theme::FG));
    clear_popup(f, rect);
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        rect,
    );
}
