//! CSV cells that a spreadsheet would run as formulas ("CSV injection"): a cell starting with
//! `=`, `+`, `-`, `@`, a tab or a carriage return, opened in Excel or LibreOffice, is read as
//! a formula. Export prefixes such a cell with an apostrophe, which spreadsheets show as text;
//! import takes exactly one apostrophe off again, so an export imports back unchanged. Plain
//! numbers (`-5`, `+1.5e3`) are left alone: they are not formulas. A cell that already starts
//! with apostrophes before a formula character gets one more, so the mapping is one-to-one.

use std::borrow::Cow;

fn starts_a_formula(c: char) -> bool {
    matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r')
}

/// A decimal number as a spreadsheet reads it, which no formula is.
fn is_plain_number(cell: &str) -> bool {
    cell.chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '+' | '-' | 'e' | 'E'))
        && cell.parse::<f64>().is_ok_and(f64::is_finite)
}

/// True when `cell`, after any apostrophes, starts with a formula character.
fn needs_guard(cell: &str) -> bool {
    cell.trim_start_matches('\'')
        .chars()
        .next()
        .is_some_and(starts_a_formula)
        && !is_plain_number(cell)
}

/// The cell as written to a CSV export.
pub fn neutralize(cell: &str) -> Cow<'_, str> {
    if needs_guard(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// The cell as an export meant it, read back by import.
pub fn restore(cell: &str) -> Cow<'_, str> {
    match cell.strip_prefix('\'') {
        Some(rest) if needs_guard(rest) => Cow::Borrowed(rest),
        _ => Cow::Borrowed(cell),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_exported_as_text_and_numbers_are_not_touched() {
        assert_eq!(
            neutralize("=HYPERLINK(\"http://x\")"),
            "'=HYPERLINK(\"http://x\")"
        );
        assert_eq!(neutralize("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralize("+cmd|' /C calc'!A0"), "'+cmd|' /C calc'!A0");
        assert_eq!(neutralize("-2+3"), "'-2+3");
        assert_eq!(neutralize("\tx"), "'\tx");
        for plain in ["-5", "1250.5", "+1.5e3", "VIP", "Pune, MH", "", "'quoted"] {
            assert_eq!(neutralize(plain), plain);
        }
    }

    #[test]
    fn every_cell_imports_back_as_it_was_exported() {
        for cell in [
            "=1+1", "'=1+1", "''=1+1", "@x", "-5", "-x", "'", "''", "'plain", "plain", "", "+",
            "'-5",
        ] {
            assert_eq!(restore(&neutralize(cell)), cell, "{cell:?}");
        }
    }
}
