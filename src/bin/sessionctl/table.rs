//! A tiny column formatter: cells padded to their column's widest cell, two spaces
//! apart, with control characters escaped so that stored data cannot move the cursor.

use std::borrow::Cow;
use std::fmt::Write;

/// `rows` in aligned columns, one line each (trailing blanks trimmed). Rows may have
/// different lengths; a column is as wide as its widest cell, counted in characters.
pub fn columns(rows: &[Vec<String>]) -> String {
    let cells: Vec<Vec<Cow<'_, str>>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| printable(cell)).collect())
        .collect();
    let mut widths: Vec<usize> = Vec::new();
    for row in &cells {
        for (column, cell) in row.iter().enumerate() {
            let width = cell.chars().count();
            match widths.get_mut(column) {
                Some(widest) => *widest = (*widest).max(width),
                None => widths.push(width),
            }
        }
    }
    let mut out = String::new();
    for row in &cells {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            // Writing to a String cannot fail.
            let _ = write!(line, "{cell:<width$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `header` over `rows`, aligned.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut all = Vec::with_capacity(rows.len() + 1);
    all.push(header.iter().map(|title| (*title).to_owned()).collect());
    all.extend(rows);
    columns(&all)
}

/// `key: value` lines with the values aligned.
pub fn key_values(pairs: Vec<(&str, String)>) -> String {
    let rows: Vec<Vec<String>> = pairs
        .into_iter()
        .map(|(key, value)| vec![format!("{key}:"), value])
        .collect();
    columns(&rows)
}

/// At most `max` characters of `text`, ending in "…" when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// `text` with control characters (newline, tab, ESC, ...) written as Rust escapes.
fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|cell| (*cell).to_owned()).collect()
    }

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let text = table(
            &["ID", "STATE"],
            vec![row(&["a", "ACTIVE"]), row(&["bcd", "X"])],
        );
        assert_eq!(text, "ID   STATE\na    ACTIVE\nbcd  X\n");
    }

    #[test]
    fn short_rows_and_wide_characters_stay_aligned() {
        let text = columns(&[row(&["é", "x", "y"]), row(&["ab"])]);
        assert_eq!(text, "é   x  y\nab\n");
    }

    #[test]
    fn control_characters_are_escaped() {
        let text = key_values(vec![("agent", "a\u{1b}[2Jb\nc".to_owned())]);
        assert_eq!(text, "agent:  a\\u{1b}[2Jb\\nc\n");
    }

    #[test]
    fn truncate_cuts_with_an_ellipsis() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abcd", 4), "abcd");
    }
}
