//! One process: command line, listening ports, and its connections with
//! protocol, addresses (or DNS names with `d`), TCP state badge, age and rates.

use std::net::SocketAddr;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{row_line, scroll_offset, take_rows, text, title_line};
use crate::app::{App, View};
use crate::{format, theme};

const INFO_ROWS: u16 = 5;

pub fn list_area(_app: &App, body: Rect) -> Rect {
    let mut a = body;
    take_rows(&mut a, INFO_ROWS);
    a
}

struct Cols {
    proto: usize,
    local: usize,
    remote: usize,
    state: usize,
    age: usize,
    rate: usize,
    down: bool,
}

fn columns(width: usize) -> Cols {
    let rate = format::RATE_WIDTH;
    let mut c = Cols {
        proto: 5,
        local: 0,
        remote: 0,
        state: 0,
        age: 0,
        rate,
        down: false,
    };
    // marker + proto + remote(min 12) + up
    let mut used = 1 + 6 + 13 + rate;
    let mut add = |cost: usize| {
        if used + cost <= width {
            used += cost;
            true
        } else {
            false
        }
    };
    c.down = add(rate + 1);
    if add(13) {
        c.state = 12;
    }
    if add(7) {
        c.age = 6;
    }
    let spare = width.saturating_sub(used);
    if spare >= 16 {
        // The local column costs its width plus one separator.
        c.local = (spare - 1) / 2;
        c.remote = 12 + spare - 1 - c.local;
    } else {
        c.remote = 12 + spare;
    }
    c
}

fn addr_text(app: &App, a: Option<SocketAddr>) -> String {
    match a {
        None => "*:*".to_string(),
        Some(a) => match app.dns.name(a.ip()) {
            Some(name) => format!("{name}:{}", a.port()),
            None => a.to_string(),
        },
    }
}

pub fn render(app: &App, f: &mut Frame, body: Rect) {
    let View::Detail {
        pid,
        start_time,
        name,
    } = &app.view
    else {
        return;
    };
    let width = usize::from(body.width);
    let snap = app.shown.as_deref();
    let proc_ = snap.and_then(|s| {
        s.processes
            .iter()
            .find(|p| p.pid == *pid && p.start_time == *start_time)
    });
    let mut info: Vec<Line<'static>> = Vec::new();
    let mut first = vec![
        Span::styled(format!(" {} ", text::truncate(name, 32)), theme::title()),
        Span::styled(format!(" PID {pid} "), theme::dim()),
    ];
    match proc_ {
        Some(p) => {
            first.push(Span::styled(
                format!(" {} ", text::truncate(&p.user, 16)),
                Style::new().fg(theme::MAGENTA),
            ));
            first.push(Span::styled(
                format!(" ▲ {} ", format::rate(p.traffic.up_bps)),
                Style::new().fg(theme::UP),
            ));
            first.push(Span::styled(
                format!(" ▼ {} ", format::rate(p.traffic.down_bps)),
                Style::new().fg(theme::DOWN),
            ));
            first.push(Span::styled(
                format!(
                    " total ▲ {} ▼ {}",
                    format::bytes(p.traffic.up_bytes),
                    format::bytes(p.traffic.down_bytes)
                ),
                theme::dim(),
            ));
            if !p.alive {
                first.push(Span::styled("  exited", theme::warning()));
            }
        }
        None => first.push(Span::styled("  no longer running", theme::warning())),
    }
    info.push(Line::from(first));
    let cmd = proc_.map(|p| {
        if p.cmdline.is_empty() {
            format!("[{}]", p.name)
        } else {
            p.cmdline.clone()
        }
    });
    info.push(Line::from(Span::styled(
        format!(
            " {}",
            text::truncate(&cmd.unwrap_or_default(), width.saturating_sub(1))
        ),
        Style::new().fg(theme::COMMENT),
    )));
    let listening: Vec<String> = snap
        .map(|s| {
            s.listen_ports
                .iter()
                .filter(|l| l.pid == *pid)
                .map(|l| format!("{} {}", l.proto, SocketAddr::new(l.addr, l.port)))
                .collect()
        })
        .unwrap_or_default();
    let listen_text = if listening.is_empty() {
        "none".to_string()
    } else {
        listening.join("  ")
    };
    info.push(Line::from(vec![
        Span::styled(" Listening: ", theme::header_cell()),
        Span::styled(
            text::truncate(&listen_text, width.saturating_sub(12)),
            Style::new().fg(theme::CYAN),
        ),
    ]));
    let count = app.detail.as_ref().map_or(0, |d| d.connections.len());
    let dns = if app.dns.enabled {
        "names (d: addresses)"
    } else {
        "addresses (d: names)"
    };
    info.push(Line::from(vec![
        Span::styled(format!(" Connections ({count})"), theme::header_cell()),
        Span::styled(format!("   {dns}"), theme::dim()),
    ]));
    let c = columns(width);
    info.push(title_line(titles(&c)));
    let mut area = body;
    let head = take_rows(&mut area, INFO_ROWS);
    f.render_widget(Paragraph::new(info), head);

    let Some(detail) = &app.detail else {
        f.render_widget(
            Paragraph::new(Span::styled(
                " waiting for the connection list…",
                theme::dim(),
            )),
            area,
        );
        return;
    };
    if detail.connections.is_empty() {
        f.render_widget(
            Paragraph::new(Span::styled(" no open connections", theme::dim())),
            area,
        );
        return;
    }
    let visible = usize::from(area.height);
    let offset = scroll_offset(app, 3, visible);
    let lines: Vec<Line<'static>> = app
        .conns
        .iter()
        .enumerate()
        .skip(offset)
        .take(visible)
        .filter_map(|(i, &ci)| detail.connections.get(ci).map(|conn| (i, conn)))
        .map(|(i, conn)| connection_row(app, conn, i, i == app.selected[3], &c))
        .collect();
    f.render_widget(Paragraph::new(lines), area);
}

fn titles(c: &Cols) -> Vec<String> {
    let mut t = vec![" ".to_string(), text::left("PROTO", c.proto) + " "];
    if c.local > 0 {
        t.push(text::left("LOCAL", c.local) + " ");
    }
    t.push(text::left("REMOTE", c.remote) + " ");
    if c.state > 0 {
        t.push(text::left("STATE", c.state) + " ");
    }
    if c.age > 0 {
        t.push(text::right("AGE", c.age) + " ");
    }
    t.push(text::right("UP/s", c.rate));
    if c.down {
        t.push(" ".to_string() + &text::right("DOWN/s", c.rate));
    }
    t
}

fn connection_row(
    app: &App,
    conn: &proto::Connection,
    i: usize,
    selected: bool,
    c: &Cols,
) -> Line<'static> {
    let bg = theme::row_bg(i, selected);
    let base = Style::new().fg(theme::FG).bg(bg);
    let mut s = vec![
        Span::styled(
            if selected { "▸" } else { " " },
            Style::new().fg(theme::BLUE).bg(bg),
        ),
        Span::styled(
            text::left(&conn.proto.to_string(), c.proto) + " ",
            Style::new().fg(theme::CYAN).bg(bg),
        ),
    ];
    if c.local > 0 {
        s.push(Span::styled(
            text::left(&conn.local.to_string(), c.local) + " ",
            base,
        ));
    }
    let mut remote = addr_text(app, conn.remote);
    if conn.owners > 1 {
        remote = format!("{remote} (shared ×{})", conn.owners);
    }
    s.push(Span::styled(
        text::left(&remote, c.remote) + " ",
        base.add_modifier(Modifier::BOLD),
    ));
    if c.state > 0 {
        let (label, color) = match conn.state {
            Some(st) => (format!("● {}", st.label()), theme::tcp_state(st)),
            None => ("·".to_string(), theme::FG_DIM),
        };
        s.push(Span::styled(
            text::left(&label, c.state) + " ",
            Style::new().fg(color).bg(bg),
        ));
    }
    if c.age > 0 {
        s.push(Span::styled(
            text::right(&format::age(conn.age_ms), c.age) + " ",
            Style::new().fg(theme::COMMENT).bg(bg),
        ));
    }
    s.push(Span::styled(
        text::right(&format::rate(conn.traffic.up_bps), c.rate),
        Style::new().fg(theme::UP).bg(bg),
    ));
    if c.down {
        s.push(Span::styled(
            " ".to_string() + &text::right(&format::rate(conn.traffic.down_bps), c.rate),
            Style::new().fg(theme::DOWN).bg(bg),
        ));
    }
    row_line(s, bg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fill_the_width_exactly() {
        for w in [30usize, 40, 60, 80, 120, 200] {
            let c = columns(w);
            let t: usize = titles(&c).iter().map(|s| text::width(s)).sum();
            assert_eq!(t, w, "width {w}");
        }
    }
}
