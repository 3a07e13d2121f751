//! Rules for the two reports of seed 000: how rows are searched, and how
//! they are written as CSV that is safe to open in a spreadsheet.

/// The words a report row is found by: the contact's name and the account
/// email, lower-cased, split at anything that is not a letter or digit (the
/// whole email is kept too). Stored as one string with a space before every
/// word, so "prefix of any word" is a plain `contains(" " + query)`.
pub fn search_text(name: &str, email: &str) -> String {
    let mut out = String::new();
    for word in name.split(|c: char| !c.is_alphanumeric()).chain(std::iter::once(email)).chain(email.split(|c: char| !c.is_alphanumeric())) {
        if !word.is_empty() {
            out.push(' ');
            out.push_str(&word.to_lowercase());
        }
    }
    out
}

/// The needle for a search query, or `None` when the query is blank.
pub fn search_needle(q: &str) -> Option<String> {
    let q = q.trim().to_lowercase();
    (!q.is_empty()).then(|| format!(" {q}"))
}

/// One CSV cell, as the `csv` crate writes it (RFC 4180 quoting), with two
/// rules of ours for spreadsheets: a cell it would read as a formula
/// (starting with `=`, `+`, `-`, `@`, tab or carriage return) gets a leading
/// `'` so it stays text, and a cell holding `;` is always quoted, so a
/// spreadsheet whose list separator is `;` cannot split it into a formula.
pub fn csv_cell(value: &str) -> String {
    let neutral = match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_owned(),
    };
    if neutral.is_empty() {
        // The crate writes a record of one empty field as `""`; in a line it is empty.
        return neutral;
    }
    let style = if neutral.contains(';') { csv::QuoteStyle::Always } else { csv::QuoteStyle::Necessary };
    let mut w = csv::WriterBuilder::new().quote_style(style).terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    w.write_record([&neutral]).expect("writing to memory");
    let bytes = w.into_inner().expect("flushing to memory");
    let mut cell = String::from_utf8(bytes).expect("the cell was UTF-8");
    cell.truncate(cell.len() - 2); // the record's CRLF
    cell
}

/// One CSV line (CRLF-terminated, as RFC 4180 has it).
pub fn csv_line<S: AsRef<str>>(cells: &[S]) -> String {
    let mut line = cells.iter().map(|c| csv_cell(c.as_ref())).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_finds_prefixes_of_any_word_of_name_or_email() {
        let text = search_text("Ann-Marie O'Lee", "Ann.Lee+portal@Example.org");
        for q in ["ann", "mar", "o", "lee", "ann.lee", "exam", "portal", "ANN"] {
            assert!(text.contains(&search_needle(q).unwrap()), "{q} in {text}");
        }
        for q in ["nn", "arie", "xample"] {
            assert!(!text.contains(&search_needle(q).unwrap()), "{q} must not match mid-word");
        }
        assert_eq!(search_needle("   "), None);
    }

    #[test]
    fn csv_cells_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-2"), "'-2");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_line(&["a", "b,c"]), "a,\"b,c\"\r\n");
        assert_eq!(csv_cell(""), "");
    }

    #[test]
    fn a_cell_holding_a_semicolon_is_always_quoted() {
        assert_eq!(csv_cell("a;b"), "\"a;b\"");
        assert_eq!(csv_cell("x;=1+1"), "\"x;=1+1\"");
        assert_eq!(csv_cell("=1;2"), "\"'=1;2\"");
        assert_eq!(csv_line(&["Lee; Ann", "ok"]), "\"Lee; Ann\",ok\r\n");
    }
}
