//! The top lines: product, host, clock, process count, the featured interface
//! with its trend, the 60 s system sparkline, every interface, collector notes.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{spark, text};
use crate::app::App;
use crate::{format, theme};

/// Header rows for a terminal `height` rows tall.
pub fn height(height: u16) -> u16 {
    if height >= 14 { 3 } else { 1 }
}

pub fn render(app: &App, f: &mut Frame, area: Rect) {
    let mut lines = vec![title_line(app, usize::from(area.width))];
    if area.height >= 2 {
        lines.push(graph_line(app, usize::from(area.width)));
    }
    if area.height >= 3 {
        lines.push(interfaces_line(app));
    }
    f.render_widget(Paragraph::new(lines), area);
}

fn trend_arrow(t: proto::Trend) -> &'static str {
    match t {
        proto::Trend::Rising => "↑",
        proto::Trend::Falling => "↓",
        proto::Trend::Steady => "→",
    }
}

fn title_line(app: &App, width: usize) -> Line<'static> {
    let host = app
        .welcome
        .as_ref()
        .map(|w| w.host.clone())
        .unwrap_or_default();
    let procs = app.shown.as_ref().map_or(0, |s| s.processes.len());
    let mut left = vec![
        Span::styled("sstop", theme::title()),
        Span::raw("  "),
        Span::styled(text::truncate(&host, 24), Style::new().fg(theme::MAGENTA)),
        Span::raw("  "),
        Span::styled(format::clock(app.now_ms), theme::dim()),
        Span::raw("  "),
        Span::styled(
            format!(
                "{procs} {}",
                if procs == 1 { "process" } else { "processes" }
            ),
            Style::new().fg(theme::FG),
        ),
    ];
    if app.paused {
        left.push(Span::styled("  ⏸ PAUSED", theme::warning()));
    }
    let mut right = Vec::new();
    if let Some(i) = app.current_interface() {
        right.push(Span::styled(
            format!("[{}] ", text::truncate(&i.name, 12)),
            Style::new().fg(theme::BLUE),
        ));
        right.push(Span::styled(
            format!("▲ {} ", format::rate(i.tx_bps)),
            Style::new().fg(theme::UP),
        ));
        right.push(Span::styled(
            format!("▼ {} ", format::rate(i.rx_bps)),
            Style::new().fg(theme::DOWN),
        ));
        right.push(Span::styled(
            trend_arrow(app.interface_trend()),
            Style::new().fg(theme::YELLOW),
        ));
    }
    let lw: usize = left.iter().map(|s| s.width()).sum();
    let rw: usize = right.iter().map(|s| s.width()).sum();
    if lw + rw < width {
        left.push(Span::raw(" ".repeat(width - lw - rw)));
        left.extend(right);
    }
    Line::from(left)
}

fn graph_line(app: &App, width: usize) -> Line<'static> {
    let hist: Vec<f64> = app
        .shown
        .as_ref()
        .map(|s| {
            s.totals
                .history
                .iter()
                .map(|p| f64::from(p.up) + f64::from(p.down))
                .collect()
        })
        .unwrap_or_default();
    // The full 60 s when there is room; a shorter tail on narrow terminals.
    let gw = if width >= 120 {
        proto::HISTORY_LEN
    } else {
        width / 3
    };
    let mut spans = vec![
        Span::styled(spark::sparkline(&hist, gw), Style::new().fg(theme::CYAN)),
        Span::raw(" "),
    ];
    // Degradation notes before the totals: when the line is cut, the warnings survive.
    if let Some(s) = &app.shown {
        spans.push(Span::styled(
            format!("{} ", s.collector.mode.as_str()),
            theme::dim(),
        ));
        if let Some(note) = &app.embedded_note {
            spans.push(Span::styled(format!("{note}  "), theme::warning()));
        }
        if s.collector.capture_drops > 0 {
            spans.push(Span::styled(
                format!("{} frames dropped  ", s.collector.capture_drops),
                theme::warning(),
            ));
        }
        for n in &s.collector.notes {
            let style = match n.severity {
                proto::Severity::Warning => theme::warning(),
                proto::Severity::Info => theme::dim(),
            };
            spans.push(Span::styled(
                format!("{}  ", text::clean(&n.message)),
                style,
            ));
        }
        let t = &s.totals.traffic;
        spans.push(Span::styled(
            format!("total ▲ {} ", format::rate(t.up_bps)),
            Style::new().fg(theme::UP),
        ));
        spans.push(Span::styled(
            format!("▼ {}", format::rate(t.down_bps)),
            Style::new().fg(theme::DOWN),
        ));
    } else if let Some(note) = &app.embedded_note {
        spans.push(Span::styled(note.clone(), theme::warning()));
    }
    Line::from(spans)
}

fn interfaces_line(app: &App) -> Line<'static> {
    let mut spans = Vec::new();
    let current = app.current_interface().map(|i| i.name.clone());
    for i in app.shown.iter().flat_map(|s| s.interfaces.iter()) {
        let name_style = if Some(&i.name) == current.as_ref() {
            Style::new().fg(theme::BLUE)
        } else if i.is_up {
            theme::dim()
        } else {
            Style::new().fg(theme::FG_DIM)
        };
        spans.push(Span::styled(
            format!("{}: ", text::truncate(&i.name, 16)),
            name_style,
        ));
        spans.push(Span::styled(
            format!("{}↑ ", format::rate(i.tx_bps)),
            Style::new().fg(theme::UP),
        ));
        spans.push(Span::styled(
            format!("{}↓  ", format::rate(i.rx_bps)),
            Style::new().fg(theme::DOWN),
        ));
    }
    Line::from(spans)
}
