//! Text that fits: cut by display width (never inside a character), pad,
//! and make names safe to print (control characters would move the cursor).

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Replace control characters (escape sequences, newlines, tabs) with a visible mark.
pub fn clean(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().any(char::is_control) {
        s.chars()
            .map(|c| if c.is_control() { '�' } else { c })
            .collect::<String>()
            .into()
    } else {
        s.into()
    }
}

/// At most `width` columns of `s`; a cut string ends in `…`.
pub fn truncate(s: &str, width: usize) -> String {
    let s = clean(s);
    if s.width() <= width {
        return s.into_owned();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > width - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// Exactly `width` columns: truncated, then padded on the right.
pub fn left(s: &str, width: usize) -> String {
    let t = truncate(s, width);
    let pad = width.saturating_sub(t.width());
    format!("{t}{}", " ".repeat(pad))
}

/// Exactly `width` columns: truncated, then padded on the left.
pub fn right(s: &str, width: usize) -> String {
    let t = truncate(s, width);
    let pad = width.saturating_sub(t.width());
    format!("{}{t}", " ".repeat(pad))
}

/// Word-wrap `s` into lines of at most `width` columns; over-long words are cut.
pub fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in clean(s).split_whitespace() {
        let need = if cur.is_empty() {
            word.width()
        } else {
            cur.width() + 1 + word.width()
        };
        if need > width && !cur.is_empty() {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
        if cur.width() > width {
            lines.push(truncate(&cur, width));
            cur.clear();
        }
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// Display width.
pub fn width(s: &str) -> usize {
    s.width()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_characters_are_never_split() {
        // Each CJK character is two columns: 5 columns hold two of them and the ellipsis.
        assert_eq!(truncate("浏览器进程", 5), "浏览…");
        assert_eq!(width(&left("浏览器进程", 6)), 6);
        assert_eq!(left("浏览器进程", 6), "浏览… ");
        assert_eq!(right("🦀rust", 4), "🦀r…");
        assert_eq!(width(&right("🦀🦀🦀", 4)), 4);
        assert_eq!(truncate("abc", 0), "");
        assert_eq!(left("ab", 4), "ab  ");
    }

    #[test]
    fn wrapping_keeps_words_and_widths() {
        assert_eq!(
            wrap("process 4242 belongs to uid 0", 12),
            vec!["process 4242", "belongs to", "uid 0"]
        );
        assert_eq!(wrap("", 5), vec![""]);
        for l in wrap("一二三四五六七八九十 x", 6) {
            assert!(width(&l) <= 6, "{l}");
        }
    }

    #[test]
    fn control_characters_cannot_reach_the_terminal() {
        assert_eq!(clean("evil\x1b[2Jname\n"), "evil�[2Jname�");
        assert_eq!(left("a\tb", 3), "a�b");
    }
}
