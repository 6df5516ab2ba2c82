//! Remote hosts: who this machine talks to, busiest first.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{row_line, scroll_offset, spark, take_rows, text, title_line};
use crate::app::App;
use crate::{format, theme};

pub fn list_area(body: Rect) -> Rect {
    let mut a = body;
    take_rows(&mut a, 2);
    a
}

pub fn render(app: &App, f: &mut Frame, body: Rect) {
    let width = usize::from(body.width);
    let rate = format::RATE_WIDTH;
    // marker, host, up, down, conns, ports, processes
    let bar = if width >= 100 { 6 } else { 0 };
    let ports = if width >= 100 { 12 } else { 0 };
    let fixed = 1
        + 1
        + (rate + 1) * 2
        + 6
        + 1
        + if bar > 0 { 2 * (bar + 1) } else { 0 }
        + if ports > 0 { ports + 1 } else { 0 };
    let show_down = width >= 1 + 10 + rate * 2 + 2;
    let procs = if width >= fixed + 40 {
        (width - fixed) / 3
    } else {
        0
    };
    let conns = if width >= 60 { 6 } else { 0 };
    let used = 1
        + 1
        + rate
        + if show_down { rate + 1 } else { 0 }
        + if conns > 0 { conns + 1 } else { 0 }
        + if ports > 0 { ports + 1 } else { 0 }
        + if procs > 0 { procs + 1 } else { 0 }
        + if bar > 0 {
            (bar + 1) * if show_down { 2 } else { 1 }
        } else {
            0
        };
    let host_w = width.saturating_sub(used);
    let barw = |w: usize| if bar > 0 { w + bar + 1 } else { w };

    let mut area = body;
    let head = take_rows(&mut area, 2);
    let dns = if app.dns.enabled {
        "names (d: addresses)"
    } else {
        "addresses (d: names)"
    };
    let count = app.hosts.len();
    let mut titles = vec![
        " ".to_string(),
        text::left("HOST", host_w) + " ",
        text::right("UP/s", barw(rate)),
    ];
    if show_down {
        titles.push(" ".to_string() + &text::right("DOWN/s", barw(rate)));
    }
    if conns > 0 {
        titles.push(" ".to_string() + &text::right("CONNS", conns));
    }
    if ports > 0 {
        titles.push(" ".to_string() + &text::left("PORTS", ports));
    }
    if procs > 0 {
        titles.push(" ".to_string() + &text::left("PROCESSES", procs));
    }
    f.render_widget(
        Paragraph::new(vec![
            Line::from(vec![
                Span::styled(format!(" Remote Hosts ({count})"), theme::title()),
                Span::styled(format!("   {dns}"), theme::dim()),
            ]),
            title_line(titles),
        ]),
        head,
    );
    let Some(snap) = app.shown.as_deref() else {
        return;
    };
    if app.hosts.is_empty() {
        f.render_widget(
            Paragraph::new(Span::styled(" no remote hosts", theme::dim())),
            area,
        );
        return;
    }
    let hosts: Vec<&proto::RemoteHost> = app
        .hosts
        .iter()
        .filter_map(|&i| snap.remote_hosts.get(i))
        .collect();
    let max_up = hosts.iter().map(|h| h.traffic.up_bps).fold(0.0, f64::max);
    let max_down = hosts.iter().map(|h| h.traffic.down_bps).fold(0.0, f64::max);
    let visible = usize::from(area.height);
    let offset = scroll_offset(app, 1, visible);
    let lines: Vec<Line<'static>> = hosts
        .iter()
        .enumerate()
        .skip(offset)
        .take(visible)
        .map(|(i, h)| {
            let sel = i == app.selected[1];
            let bg = theme::row_bg(i, sel);
            let name = app
                .dns
                .name(h.addr)
                .map_or_else(|| h.addr.to_string(), str::to_string);
            let mut s = vec![
                Span::styled(
                    if sel { "▸" } else { " " },
                    Style::new().fg(theme::BLUE).bg(bg),
                ),
                Span::styled(
                    text::left(&name, host_w) + " ",
                    Style::new()
                        .fg(theme::FG)
                        .bg(bg)
                        .add_modifier(Modifier::BOLD),
                ),
            ];
            let cell = |r: f64, max: f64, color, lead: &str, s: &mut Vec<Span<'static>>| {
                s.push(Span::styled(lead.to_string(), Style::new().bg(bg)));
                if bar > 0 {
                    s.push(spark::bar(spark::share(r, max), bar, color, bg));
                    s.push(Span::styled(" ", Style::new().bg(bg)));
                }
                s.push(Span::styled(
                    text::right(&format::rate(r), rate),
                    Style::new().fg(color).bg(bg),
                ));
            };
            cell(h.traffic.up_bps, max_up, theme::UP, "", &mut s);
            if show_down {
                cell(h.traffic.down_bps, max_down, theme::DOWN, " ", &mut s);
            }
            if conns > 0 {
                s.push(Span::styled(
                    " ".to_string() + &text::right(&h.connections.to_string(), conns),
                    Style::new().fg(theme::CYAN).bg(bg),
                ));
            }
            if ports > 0 {
                let list: Vec<String> = h.ports.iter().map(u16::to_string).collect();
                s.push(Span::styled(
                    " ".to_string() + &text::left(&list.join(","), ports),
                    Style::new().fg(theme::FG_DIM).bg(bg),
                ));
            }
            if procs > 0 {
                s.push(Span::styled(
                    " ".to_string() + &text::left(&h.processes.join(","), procs),
                    Style::new().fg(theme::COMMENT).bg(bg),
                ));
            }
            row_line(s, bg)
        })
        .collect();
    f.render_widget(Paragraph::new(lines), area);
}
