//! Tokyo Night (night variant) colours and the styles built from them.

use ratatui::style::{Color, Modifier, Style};

pub const BG: Color = Color::Rgb(0x1a, 0x1b, 0x26);
pub const BG_ALT: Color = Color::Rgb(0x1f, 0x20, 0x2e);
pub const BG_SELECTED: Color = Color::Rgb(0x28, 0x34, 0x57);
pub const BG_POPUP: Color = Color::Rgb(0x16, 0x16, 0x1e);
pub const FG: Color = Color::Rgb(0xc0, 0xca, 0xf5);
pub const FG_DIM: Color = Color::Rgb(0x56, 0x5f, 0x89);
pub const COMMENT: Color = Color::Rgb(0x73, 0x7a, 0xa2);
pub const BLUE: Color = Color::Rgb(0x7a, 0xa2, 0xf7);
pub const CYAN: Color = Color::Rgb(0x7d, 0xcf, 0xff);
pub const GREEN: Color = Color::Rgb(0x9e, 0xce, 0x6a);
pub const RED: Color = Color::Rgb(0xf7, 0x76, 0x8e);
pub const ORANGE: Color = Color::Rgb(0xff, 0x9e, 0x64);
pub const YELLOW: Color = Color::Rgb(0xe0, 0xaf, 0x68);
pub const MAGENTA: Color = Color::Rgb(0xbb, 0x9a, 0xf7);
pub const BORDER: Color = Color::Rgb(0x3b, 0x42, 0x61);

/// Colour of upload figures.
pub const UP: Color = GREEN;
/// Colour of download figures.
pub const DOWN: Color = RED;

pub fn base() -> Style {
    Style::new().fg(FG).bg(BG)
}

pub fn title() -> Style {
    Style::new().fg(BLUE).add_modifier(Modifier::BOLD)
}

pub fn header_cell() -> Style {
    Style::new().fg(BLUE).add_modifier(Modifier::BOLD)
}

pub fn dim() -> Style {
    Style::new().fg(FG_DIM)
}

pub fn key() -> Style {
    Style::new().fg(YELLOW).add_modifier(Modifier::BOLD)
}

pub fn warning() -> Style {
    Style::new().fg(ORANGE).add_modifier(Modifier::BOLD)
}

/// Background of row `i`: zebra stripes, or the selection highlight.
pub fn row_bg(i: usize, selected: bool) -> Color {
    match (selected, i % 2) {
        (true, _) => BG_SELECTED,
        (false, 0) => BG,
        _ => BG_ALT,
    }
}

/// Blend `base` towards the background by `intensity` (0 = background, 1 = full colour),
/// so a rate bar's colour follows the rate.
pub fn intensity(base: Color, intensity: f64) -> Color {
    let t = if intensity.is_finite() {
        intensity.clamp(0.15, 1.0)
    } else {
        0.15
    };
    match (base, BG) {
        (Color::Rgb(r, g, b), Color::Rgb(br, bg, bb)) => {
            let mix =
                |c: u8, k: u8| (f64::from(k) + (f64::from(c) - f64::from(k)) * t).round() as u8;
            Color::Rgb(mix(r, br), mix(g, bg), mix(b, bb))
        }
        (other, _) => other,
    }
}

/// Colour of a TCP state badge.
pub fn tcp_state(state: proto::TcpState) -> Color {
    use proto::TcpState::*;
    match state {
        Established => GREEN,
        Listen => CYAN,
        SynSent | SynRecv | NewSynRecv => YELLOW,
        TimeWait | FinWait1 | FinWait2 | Closing | LastAck | CloseWait => ORANGE,
        Close | Unknown(_) => FG_DIM,
    }
}
