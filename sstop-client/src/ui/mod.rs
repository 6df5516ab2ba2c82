//! Drawing: pure functions of `&App` into a ratatui frame. Nothing here
//! mutates state; layout arithmetic saturates so no size can panic.

mod detail;
mod filter;
mod footer;
mod header;
mod help;
mod hosts;
mod kill;
mod listen;
pub mod spark;
mod table;
pub mod text;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::app::{App, Link, Overlay, View};
use crate::theme;

/// Below this the full layout does not fit; a one-line notice is drawn instead.
pub const MIN_WIDTH: u16 = 20;
pub const MIN_HEIGHT: u16 = 5;

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy)]
pub struct Areas {
    pub header: Rect,
    pub banner: Option<Rect>,
    pub body: Rect,
    pub footer: Rect,
}

/// Rows of `area`, top to bottom, `n` at a time; never past its end.
fn take_rows(area: &mut Rect, n: u16) -> Rect {
    let n = n.min(area.height);
    let taken = Rect { height: n, ..*area };
    area.y = area.y.saturating_add(n);
    area.height -= n;
    taken
}

fn take_bottom(area: &mut Rect, n: u16) -> Rect {
    let n = n.min(area.height);
    area.height -= n;
    Rect {
        y: area.y.saturating_add(area.height),
        height: n,
        ..*area
    }
}

pub fn areas(app: &App, area: Rect) -> Option<Areas> {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return None;
    }
    let mut rest = area;
    let header = take_rows(&mut rest, header::height(area.height));
    let footer = take_bottom(&mut rest, 1);
    let banner = match app.link {
        Link::Live => None,
        _ => Some(take_rows(&mut rest, 1)),
    };
    Some(Areas {
        header,
        banner,
        body: rest,
        footer,
    })
}

pub fn render(app: &App, f: &mut Frame) {
    let area = f.area();
    f.render_widget(Block::new().style(theme::base()), area);
    let Some(a) = areas(app, area) else {
        too_small(f, area);
        return;
    };
    header::render(app, f, a.header);
    if let Some(b) = a.banner {
        banner(app, f, b);
    }
    match &app.view {
        View::Processes => table::render(app, f, a.body),
        View::Detail { .. } => detail::render(app, f, a.body),
        View::Hosts => hosts::render(app, f, a.body),
        View::Listen => listen::render(app, f, a.body),
    }
    match &app.overlay {
        Overlay::Filter => filter::render(app, f, a.footer),
        _ => footer::render(app, f, a.footer),
    }
    match &app.overlay {
        Overlay::Help => help::render(f, area),
        Overlay::Kill(k) => kill::render(k, f, area),
        _ => {}
    }
}

fn too_small(f: &mut Frame, area: Rect) {
    if area.width == 0 || area.height == 0 {
        return;
    }
    let msg = text::truncate("terminal too small", usize::from(area.width));
    let line = Rect { height: 1, ..area };
    f.render_widget(Paragraph::new(msg).style(theme::warning()), line);
}

fn banner(app: &App, f: &mut Frame, area: Rect) {
    let msg = match &app.link {
        Link::Live => return,
        Link::Connecting => "connecting to sstopd…".to_string(),
        Link::Reconnecting { reason, since_ms } => {
            let secs = app.now_ms.saturating_sub(*since_ms) / 1000;
            format!(
                "⚠ daemon connection lost ({reason}); reconnecting… {secs}s, showing the last frame"
            )
        }
    };
    let style = Style::new().fg(theme::BG).bg(theme::ORANGE);
    let w = usize::from(area.width);
    f.render_widget(Paragraph::new(text::left(&msg, w)).style(style), area);
}

/// First row shown of list `slot`: the app's remembered offset, moved just
/// enough to keep the selection visible in `visible` rows.
pub fn scroll_offset(app: &App, slot: usize, visible: usize) -> usize {
    let selected = app.selected[slot];
    let hint = app.offset[slot];
    let lowest = selected.saturating_sub(visible.saturating_sub(1));
    hint.clamp(lowest, selected.max(lowest))
}

/// Where the current view draws its rows, for a terminal of `app.size`.
fn list_rect(app: &App) -> Option<Rect> {
    let (w, h) = app.size;
    let a = areas(app, Rect::new(0, 0, w, h))?;
    Some(match &app.view {
        View::Processes => table::list_area(a.body),
        View::Detail { .. } => detail::list_area(app, a.body),
        View::Hosts => hosts::list_area(a.body),
        View::Listen => listen::list_area(a.body),
    })
}

/// Rows of the current list that fit on screen (at least 1).
pub fn visible_rows(app: &App) -> usize {
    list_rect(app).map_or(1, |r| usize::from(r.height).max(1))
}

/// The list row under screen cell (x, y), for mouse clicks.
pub fn row_at(app: &App, x: u16, y: u16) -> Option<usize> {
    let list = list_rect(app)?;
    let inside = x >= list.x && x < list.right() && y >= list.y && y < list.bottom();
    if !inside {
        return None;
    }
    let offset = scroll_offset(app, app.list_slot(), usize::from(list.height));
    let i = offset + usize::from(y - list.y);
    (i < app.list_len()).then_some(i)
}

/// A full-width line of cells on background `bg`.
fn row_line(spans: Vec<Span<'static>>, bg: ratatui::style::Color) -> Line<'static> {
    Line::from(spans).style(Style::new().bg(bg))
}

/// Column titles, styled.
fn title_line(cells: Vec<String>) -> Line<'static> {
    Line::from(
        cells
            .into_iter()
            .map(|c| Span::styled(c, theme::header_cell()))
            .collect::<Vec<_>>(),
    )
}
