//! Listening ports: what this machine serves, and which process serves it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{row_line, scroll_offset, take_rows, text, title_line};
use crate::app::App;
use crate::theme;

pub fn list_area(body: Rect) -> Rect {
    let mut a = body;
    take_rows(&mut a, 2);
    a
}

pub fn render(app: &App, f: &mut Frame, body: Rect) {
    let width = usize::from(body.width);
    // marker, proto 5, addr, port 6, pid 8, process
    let show_pid = width >= 40;
    let fixed = 1 + 6 + 7 + if show_pid { 9 } else { 0 };
    let flex = width.saturating_sub(fixed);
    let addr_w = (flex / 2).max(4);
    let name_w = flex.saturating_sub(addr_w + 1);
    let mut area = body;
    let head = take_rows(&mut area, 2);
    let mut titles = vec![
        " ".to_string(),
        text::left("PROTO", 5) + " ",
        text::left("ADDRESS", addr_w) + " ",
        text::right("PORT", 6) + " ",
    ];
    if show_pid {
        titles.push(text::right("PID", 8) + " ");
    }
    titles.push(text::left("PROCESS", name_w));
    f.render_widget(
        Paragraph::new(vec![
            Line::from(Span::styled(
                format!(" Listening Ports ({})", app.listen.len()),
                theme::title(),
            )),
            title_line(titles),
        ]),
        head,
    );
    let Some(snap) = app.shown.as_deref() else {
        return;
    };
    if app.listen.is_empty() {
        f.render_widget(
            Paragraph::new(Span::styled(" no listening sockets", theme::dim())),
            area,
        );
        return;
    }
    let visible = usize::from(area.height);
    let offset = scroll_offset(app, 2, visible);
    let lines: Vec<Line<'static>> = app
        .listen
        .iter()
        .filter_map(|&i| snap.listen_ports.get(i))
        .enumerate()
        .skip(offset)
        .take(visible)
        .map(|(i, l)| {
            let sel = i == app.selected[2];
            let bg = theme::row_bg(i, sel);
            let addr = if l.addr.is_unspecified() {
                "*".to_string()
            } else {
                l.addr.to_string()
            };
            let (pid, name) = if l.pid == 0 {
                ("·".to_string(), "‹unknown owner›".to_string())
            } else {
                (l.pid.to_string(), l.name.clone())
            };
            let mut s = vec![
                Span::styled(
                    if sel { "▸" } else { " " },
                    Style::new().fg(theme::BLUE).bg(bg),
                ),
                Span::styled(
                    text::left(&l.proto.to_string(), 5) + " ",
                    Style::new().fg(theme::CYAN).bg(bg),
                ),
                Span::styled(
                    text::left(&addr, addr_w) + " ",
                    Style::new().fg(theme::FG).bg(bg),
                ),
                Span::styled(
                    text::right(&l.port.to_string(), 6) + " ",
                    Style::new()
                        .fg(theme::YELLOW)
                        .bg(bg)
                        .add_modifier(Modifier::BOLD),
                ),
            ];
            if show_pid {
                s.push(Span::styled(
                    text::right(&pid, 8) + " ",
                    Style::new().fg(theme::COMMENT).bg(bg),
                ));
            }
            s.push(Span::styled(
                text::left(&name, name_w),
                Style::new().fg(theme::FG).bg(bg),
            ));
            row_line(s, bg)
        })
        .collect();
    f.render_widget(Paragraph::new(lines), area);
}
