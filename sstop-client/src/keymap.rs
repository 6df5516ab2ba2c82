//! Keys and mouse → [`Event`]s, in one place. The only context needed is
//! whether a text prompt has the keyboard.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent, MouseEventKind};

use crate::event::Event;

/// Who receives typed characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Normal,
    /// The filter prompt: printable keys are text.
    Prompt,
}

pub fn key(focus: Focus, k: KeyEvent) -> Option<Event> {
    if k.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl {
        return match k.code {
            KeyCode::Char('c') => Some(Event::Quit),
            KeyCode::Char('u') => Some(Event::PageUp),
            KeyCode::Char('d') => Some(Event::PageDown),
            _ => None,
        };
    }
    if focus == Focus::Prompt {
        return match k.code {
            KeyCode::Char(c) => Some(Event::FilterChar(c)),
            KeyCode::Backspace => Some(Event::FilterBackspace),
            KeyCode::Enter => Some(Event::Enter),
            KeyCode::Esc => Some(Event::Back),
            KeyCode::Up => Some(Event::Up),
            KeyCode::Down => Some(Event::Down),
            _ => None,
        };
    }
    Some(match k.code {
        KeyCode::Char('j') | KeyCode::Down => Event::Down,
        KeyCode::Char('k') | KeyCode::Up => Event::Up,
        KeyCode::PageUp => Event::PageUp,
        KeyCode::PageDown => Event::PageDown,
        KeyCode::Char('g') | KeyCode::Home => Event::Home,
        KeyCode::Char('G') | KeyCode::End => Event::End,
        KeyCode::Enter => Event::Enter,
        KeyCode::Esc => Event::Back,
        KeyCode::Char('s') => Event::CycleSort,
        KeyCode::Char('/') => Event::OpenFilter,
        KeyCode::Char('h') => Event::ShowHosts,
        KeyCode::Char('l') => Event::ShowListen,
        KeyCode::Char('K') => Event::OpenKill,
        KeyCode::Char('d') => Event::ToggleDns,
        KeyCode::Char('i') | KeyCode::Tab => Event::NextInterface,
        KeyCode::Char('+') | KeyCode::Char('=') => Event::Faster,
        KeyCode::Char('-') => Event::Slower,
        KeyCode::Char(' ') => Event::TogglePause,
        KeyCode::Char('?') => Event::ToggleHelp,
        KeyCode::Char('q') => Event::Quit,
        _ => return None,
    })
}

/// Wheel scrolls; a left click becomes `ClickRow` when it lands on a list row
/// (`row_at` knows the layout).
pub fn mouse(m: MouseEvent, row_at: impl Fn(u16, u16) -> Option<usize>) -> Option<Event> {
    match m.kind {
        MouseEventKind::ScrollUp => Some(Event::ScrollUp),
        MouseEventKind::ScrollDown => Some(Event::ScrollDown),
        MouseEventKind::Down(crossterm::event::MouseButton::Left) => {
            row_at(m.column, m.row).map(Event::ClickRow)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn design_keys_map() {
        let n = Focus::Normal;
        assert_eq!(key(n, k(KeyCode::Char('j'))), Some(Event::Down));
        assert_eq!(key(n, k(KeyCode::Up)), Some(Event::Up));
        assert_eq!(key(n, k(KeyCode::Char('G'))), Some(Event::End));
        assert_eq!(key(n, k(KeyCode::Tab)), Some(Event::NextInterface));
        assert_eq!(key(n, k(KeyCode::Char('='))), Some(Event::Faster));
        assert_eq!(key(n, k(KeyCode::Char('K'))), Some(Event::OpenKill));
        assert_eq!(
            key(n, KeyEvent::new(KeyCode::Char('d'), KeyModifiers::CONTROL)),
            Some(Event::PageDown)
        );
        assert_eq!(
            key(n, KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Event::Quit)
        );
    }

    #[test]
    fn prompt_takes_letters_as_text() {
        let p = Focus::Prompt;
        assert_eq!(key(p, k(KeyCode::Char('q'))), Some(Event::FilterChar('q')));
        assert_eq!(key(p, k(KeyCode::Esc)), Some(Event::Back));
        assert_eq!(
            key(p, KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Event::Quit)
        );
    }
}
