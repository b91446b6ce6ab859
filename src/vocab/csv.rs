//! CSV fields for the files admins open in a spreadsheet (the audit export, the sweep report):
//! a leading `= + - @` (or tab, CR) is defused with a `'` so the spreadsheet does not run it as
//! a formula, and quotes are doubled.

/// When a field is put in quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    /// Every field (the sweep report).
    Always,
    /// Only a field with a comma, a quote or a line break (the audit export).
    WhenNeeded,
}

pub fn field(value: &str, quote: Quote) -> String {
    let defused = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if quote == Quote::Always || defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_quotes_doubled() {
        assert_eq!(field("=1+1", Quote::WhenNeeded), "'=1+1");
        assert_eq!(field("a,b", Quote::WhenNeeded), "\"a,b\"");
        assert_eq!(field("plain", Quote::WhenNeeded), "plain");
        assert_eq!(field("plain", Quote::Always), "\"plain\"");
        assert_eq!(field("say \"hi\"", Quote::Always), "\"say \"\"hi\"\"\"");
        assert_eq!(field("@cmd", Quote::Always), "\"'@cmd\"");
    }
}
