//! The kill overlay: signal list for the pinned process, then the daemon's answer.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph, Wrap};

use super::help::{centered, clear_popup};
use super::text;
use crate::app::KillOverlay;
use crate::app::kill::KillPhase;
use crate::theme;

/// Text width inside the border.
const INNER: usize = 46;

pub fn render(k: &KillOverlay, f: &mut Frame, area: Rect) {
    let mut lines = vec![Line::from(vec![
        Span::styled("Signal ", Style::new().fg(theme::FG)),
        Span::styled(text::truncate(&k.name, 24), theme::title()),
        Span::styled(format!(" (pid {})", k.pid), theme::dim()),
    ])];
    lines.push(Line::raw(""));
    match &k.phase {
        KillPhase::Choosing => {
            for (i, sig) in proto::Signal::LISTED.iter().enumerate() {
                let sel = i == k.signal;
                let style = if sel {
                    Style::new()
                        .fg(theme::BG)
                        .bg(theme::RED)
                        .add_modifier(Modifier::BOLD)
                } else {
                    Style::new().fg(theme::FG)
                };
                lines.push(Line::from(Span::styled(
                    format!(" {} SIG{:<5} ", if sel { "▸" } else { " " }, sig.name()),
                    style,
                )));
            }
            lines.push(Line::raw(""));
            lines.push(Line::from(vec![
                Span::styled("enter", theme::key()),
                Span::styled(" send  ", theme::dim()),
                Span::styled("esc", theme::key()),
                Span::styled(" cancel", theme::dim()),
            ]));
        }
        KillPhase::Waiting(sig) => {
            let msg = format!(
                "SIG{} requested; waiting for the daemon's answer…",
                sig.name()
            );
            for l in text::wrap(&msg, INNER) {
                lines.push(Line::from(Span::styled(l, theme::dim())));
            }
        }
        KillPhase::Answered(r) => {
            let (label, color) = if r.outcome.is_success() {
                ("sent", theme::GREEN)
            } else {
                ("not sent", theme::RED)
            };
            lines.push(Line::from(vec![
                Span::styled(
                    format!("SIG{} ", r.signal.name()),
                    Style::new().fg(theme::FG),
                ),
                Span::styled(
                    format!("{label}: {:?}", r.outcome),
                    Style::new().fg(color).add_modifier(Modifier::BOLD),
                ),
            ]));
            for l in text::wrap(&r.message, INNER) {
                lines.push(Line::from(Span::styled(l, Style::new().fg(theme::FG))));
            }
            lines.push(Line::raw(""));
            lines.push(Line::from(vec![
                Span::styled("enter/esc", theme::key()),
                Span::styled(" close", theme::dim()),
            ]));
        }
    }
    let h = u16::try_from(lines.len())
        .unwrap_or(u16::MAX)
        .saturating_add(2);
    let rect = centered(area, INNER as u16 + 2, h);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(Style::new().fg(theme::RED))
        .title(Span::styled(
            " Kill process ",
            Style::new().fg(theme::RED).add_modifier(Modifier::BOLD),
        ))
        .style(Style::new().bg(theme::BG_POPUP).fg(theme::FG));
    clear_popup(f, rect);
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        rect,
    );
}
