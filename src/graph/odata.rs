//! OData helpers: every text value that goes into a `$filter` passes through `quote`.

/// Quote `value` as an OData string literal: `O'Neil` -> `'O''Neil'`.
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quotes_are_doubled() {
        assert_eq!(quote("O'Neil"), "'O''Neil'");
        assert_eq!(quote("x' or 'a' eq 'a"), "'x'' or ''a'' eq ''a'");
    }
}
