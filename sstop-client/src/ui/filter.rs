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
    let shown = text::truncate(&app.filter, usize::from(area.width).saturating_sub(30));
    let line = Line::from(vec![
        Span::styled(" / ", theme::key()),
        Span::styled(shown, Style::new().fg(theme::FG)),
        Span::styled("▏", Style::new().fg(theme::BLUE)),
        Span::styled(format!("  {} match  ", app.list_len()), theme::dim()),
        Span::styled("enter", theme::key()),
        Span::styled(" keep  ", theme::dim()),
        Span::styled("esc", theme::key()),
        Span::styled(" clear", theme::dim()),
    ]);
    f.render_widget(
        Paragraph::new(line).style(Style::new().bg(theme::BG_ALT)),
        area,
    );
}
