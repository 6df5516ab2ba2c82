//! The process table: one row per process plus named rows for unattributed
//! traffic; columns drop out right-to-left as the terminal narrows.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{row_line, scroll_offset, spark, text, title_line};
use crate::app::App;
use crate::app::rows::{self, RowKey};
use crate::{format, theme};

/// Column widths; 0 = column hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cols {
    pub pid: usize,
    pub name: usize,
    pub user: usize,
    pub graph: usize,
    pub bar: usize,
    pub rate: usize,
    pub down: bool,
    pub conns: usize,
    pub listen: usize,
}

const MIN_NAME: usize = 8;

/// Fit the columns into `width`: the name and upload always, then the rest by priority.
pub fn columns(width: usize) -> Cols {
    let rate = format::RATE_WIDTH;
    let mut c = Cols {
        pid: 0,
        name: MIN_NAME,
        user: 0,
        graph: 0,
        bar: 0,
        rate,
        down: false,
        conns: 0,
        listen: 0,
    };
    // Marker column + name + upload.
    let mut used = 1 + MIN_NAME + 1 + rate;
    let add = |cost: usize, used: &mut usize| -> bool {
        if *used + cost <= width {
            *used += cost;
            true
        } else {
            false
        }
    };
    c.down = add(rate + 1, &mut used);
    if add(8, &mut used) {
        c.pid = 7;
    }
    if add(6, &mut used) {
        c.conns = 5;
    }
    if add(7, &mut used) {
        c.listen = 6;
    }
    if add(13, &mut used) {
        c.graph = 12;
    }
    if width >= 100 && add(9, &mut used) {
        c.user = 8;
    }
    let bars = if c.down { 2 } else { 1 };
    if width >= 100 && add(7 * bars, &mut used) {
        c.bar = 6;
    }
    c.name += width.saturating_sub(used);
    c
}

/// Where rows go: the body minus the column titles.
pub fn list_area(body: Rect) -> Rect {
    let mut a = body;
    super::take_rows(&mut a, 1);
    a
}

fn titles(c: &Cols, sort: crate::app::SortKey) -> Vec<String> {
    use crate::app::SortKey::*;
    let mark = |k, s: &str| {
        if sort == k {
            format!("{s}▾")
        } else {
            s.to_string()
        }
    };
    let mut t = vec![" ".to_string()];
    if c.pid > 0 {
        t.push(text::right(&mark(Pid, "PID"), c.pid) + " ");
    }
    t.push(text::left(&mark(Name, "PROCESS"), c.name) + " ");
    if c.user > 0 {
        t.push(text::left("USER", c.user) + " ");
    }
    if c.graph > 0 {
        t.push(text::left("GRAPH", c.graph) + " ");
    }
    let up = if sort == Rate {
        "UP/s▾"
    } else {
        &mark(Up, "UP/s")
    };
    t.push(text::right(
        up,
        c.rate + if c.bar > 0 { c.bar + 1 } else { 0 },
    ));
    if c.down {
        let down = if sort == Rate {
            "DOWN/s▾".to_string()
        } else {
            mark(Down, "DOWN/s")
        };
        t.push(
            " ".to_string() + &text::right(&down, c.rate + if c.bar > 0 { c.bar + 1 } else { 0 }),
        );
    }
    if c.conns > 0 {
        t.push(" ".to_string() + &text::right(&mark(Conns, "CONNS"), c.conns));
    }
    if c.listen > 0 {
        t.push(" ".to_string() + &text::right("LISTEN", c.listen));
    }
    t
}

pub fn render(app: &App, f: &mut Frame, body: Rect) {
    let c = columns(usize::from(body.width));
    let mut top = body;
    let title = super::take_rows(&mut top, 1);
    f.render_widget(Paragraph::new(title_line(titles(&c, app.sort))), title);
    let list = top;
    let Some(snap) = app.shown.as_deref() else {
        f.render_widget(
            Paragraph::new(Span::styled(" waiting for the first frame…", theme::dim())),
            list,
        );
        return;
    };
    if app.rows.is_empty() {
        let msg = if app.filter.is_empty() {
            " no processes with sockets".to_string()
        } else {
            format!(" no process matches \"{}\"", text::clean(&app.filter))
        };
        f.render_widget(Paragraph::new(Span::styled(msg, theme::dim())), list);
        return;
    }
    let visible = usize::from(list.height);
    let offset = scroll_offset(app, 0, visible);
    let views: Vec<_> = app
        .rows
        .iter()
        .filter_map(|&r| rows::view(snap, r))
        .collect();
    let max_up = views.iter().map(|v| v.traffic.up_bps).fold(0.0, f64::max);
    let max_down = views.iter().map(|v| v.traffic.down_bps).fold(0.0, f64::max);
    let lines: Vec<Line<'static>> = views
        .iter()
        .enumerate()
        .skip(offset)
        .take(visible)
        .map(|(i, v)| row(v, i, i == app.selected[0], &c, (max_up, max_down)))
        .collect();
    f.render_widget(Paragraph::new(lines), list);
}

fn row(
    v: &rows::RowView<'_>,
    i: usize,
    selected: bool,
    c: &Cols,
    max: (f64, f64),
) -> Line<'static> {
    let bg = theme::row_bg(i, selected);
    let unattributed = matches!(v.key, RowKey::Unattributed(_));
    let fg = if !v.alive { theme::FG_DIM } else { theme::FG };
    let base = Style::new().fg(fg).bg(bg);
    let mut s = vec![Span::styled(
        if selected { "▸" } else { " " },
        Style::new().fg(theme::BLUE).bg(bg),
    )];
    if c.pid > 0 {
        let pid = v.pid.map_or_else(|| "·".to_string(), |p| p.to_string());
        s.push(Span::styled(
            text::right(&pid, c.pid) + " ",
            Style::new().fg(theme::COMMENT).bg(bg),
        ));
    }
    let name_style = if unattributed {
        Style::new()
            .fg(theme::MAGENTA)
            .bg(bg)
            .add_modifier(Modifier::ITALIC)
    } else if v.alive {
        base.add_modifier(Modifier::BOLD)
    } else {
        base.add_modifier(Modifier::DIM)
    };
    s.push(Span::styled(text::left(&v.name, c.name) + " ", name_style));
    if c.user > 0 {
        s.push(Span::styled(
            text::left(v.user, c.user) + " ",
            Style::new().fg(theme::COMMENT).bg(bg),
        ));
    }
    if c.graph > 0 {
        let h: Vec<f64> = v
            .history
            .iter()
            .map(|p| f64::from(p.up) + f64::from(p.down))
            .collect();
        s.push(Span::styled(
            spark::sparkline(&h, c.graph - 1),
            Style::new().fg(theme::CYAN).bg(bg),
        ));
        let (arrow, color) = match v.trend {
            proto::Trend::Rising => ("↑", theme::YELLOW),
            proto::Trend::Falling => ("↓", theme::BLUE),
            proto::Trend::Steady => (" ", theme::FG_DIM),
        };
        s.push(Span::styled(
            format!("{arrow} "),
            Style::new().fg(color).bg(bg),
        ));
    }
    let rate_cell = |rate: f64, max: f64, color, s: &mut Vec<Span<'static>>| {
        if c.bar > 0 {
            s.push(spark::bar(spark::share(rate, max), c.bar, color, bg));
            s.push(Span::styled(" ", base));
        }
        let style = if rate > 0.0 {
            Style::new().fg(color).bg(bg)
        } else {
            Style::new().fg(theme::FG_DIM).bg(bg)
        };
        s.push(Span::styled(
            text::right(&format::rate(rate), c.rate),
            style,
        ));
    };
    rate_cell(v.traffic.up_bps, max.0, theme::UP, &mut s);
    if c.down {
        s.push(Span::styled(" ", base));
        rate_cell(v.traffic.down_bps, max.1, theme::DOWN, &mut s);
    }
    if c.conns > 0 {
        s.push(Span::styled(
            " ".to_string() + &text::right(&v.connections.to_string(), c.conns),
            Style::new().fg(theme::CYAN).bg(bg),
        ));
    }
    if c.listen > 0 {
        s.push(Span::styled(
            " ".to_string() + &text::right(&v.listening.to_string(), c.listen),
            Style::new().fg(theme::CYAN).bg(bg),
        ));
    }
    row_line(s, bg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fill_the_width_exactly() {
        for w in [20usize, 40, 60, 80, 100, 120, 200] {
            let c = columns(w);
            let t: usize = titles(&c, crate::app::SortKey::Rate)
                .iter()
                .map(|s| text::width(s))
                .sum();
            assert_eq!(t, w, "width {w}: {c:?}");
        }
        let c = columns(80);
        assert!(c.pid > 0 && c.down && c.conns > 0 && c.listen > 0 && c.graph > 0);
        assert_eq!((c.bar, c.user), (0, 0));
        assert!(c.name >= 18, "room for ‹unattributed UDP›");
        assert!(columns(120).bar > 0);
    }
}
