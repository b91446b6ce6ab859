//! The small part of OData the simulated Graph needs: query options, paging with
//! `@odata.nextLink`, and `$filter` expressions of the forms Graph documents for the
//! registration report (`eq`/`ne`, `and`/`or`, `not`, `any` lambdas, `startsWith`).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Map, Value, json};

use crate::error::GraphError;

/// Query options, keyed by their name (`$filter`, `$select`, ...). Graph accepts them with or
/// without the `$` prefix.
pub fn query(uri: &axum::http::Uri) -> BTreeMap<String, String> {
    let Some(q) = uri.query() else { return BTreeMap::new() };
    url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| {
            let key = if k.starts_with('$') {
                k.into_owned()
            } else {
                format!("${k}")
            };
            (key.to_ascii_lowercase(), v.into_owned())
        })
        .collect()
}

/// Return one page of `items` starting at the `$skiptoken` offset, with a nextLink when more remain.
pub fn page(
    items: Vec<Value>,
    uri: &axum::http::Uri,
    base_url: &str,
    page_size: usize,
    context: &str,
) -> Result<Value, GraphError> {
    let q = query(uri);
    let offset = match q.get("$skiptoken") {
        None => 0,
        Some(token) => decode_skiptoken(token).ok_or_else(|| GraphError::bad_request("Invalid $skiptoken."))?,
    };
    let mut out = Map::new();
    out.insert("@odata.context".into(), json!(context));
    let end = (offset + page_size).min(items.len());
    let page: Vec<Value> = items.get(offset..end).map(<[Value]>::to_vec).unwrap_or_default();
    if end < items.len() {
        let mut next = url::Url::parse(&format!("{base_url}{}", uri.path())).expect("valid url");
        {
            let mut pairs = next.query_pairs_mut();
            if let Some(query) = uri.query() {
                for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
                    if !k.eq_ignore_ascii_case("$skiptoken") {
                        pairs.append_pair(&k, &v);
                    }
                }
            }
            pairs.append_pair("$skiptoken", &B64.encode(format!("offset:{end}")));
        }
        out.insert("@odata.nextLink".into(), json!(next.to_string()));
    }
    out.insert("value".into(), Value::Array(page));
    Ok(Value::Object(out))
}

fn decode_skiptoken(token: &str) -> Option<usize> {
    let raw = B64.decode(token).ok()?;
    std::str::from_utf8(&raw).ok()?.strip_prefix("offset:")?.parse().ok()
}

/// A parsed `$filter` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Eq(String, Value),
    Ne(String, Value),
    Any(String, Value),
    /// `collection/any(t: t/prop eq value)`
    AnyPath(String, String, Value),
    /// `field ge|gt|le|lt value` (strings, including DateTimeOffset literals, compare in order).
    Cmp(String, &'static str, Value),
    /// `field in ('a', 'b')`: filter-query-parameter.md, "When using the `in` operator, the
    /// request is limited to 15 expressions in the filter clause by default".
    In(String, Vec<Value>),
    StartsWith(String, String),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

impl Filter {
    /// Parse `text`, allowing only the fields in `allowed` (`eq`, `ne`, `startsWith`) and
    /// `collections` (`any`).
    pub fn parse(text: &str, allowed: &[&str], collections: &[&str]) -> Result<Filter, GraphError> {
        Self::parse_with_ranges(text, allowed, &[], collections)
    }

    /// As `parse`, also allowing `in` (at most 15 values) on the fields in `ins`.
    pub fn parse_with_in(text: &str, allowed: &[&str], ins: &[&str]) -> Result<Filter, GraphError> {
        Self::parse_all(text, allowed, &[], ins, &[])
    }

    /// As `parse`, also allowing `ge`/`gt`/`le`/`lt` on the fields in `ranges`.
    pub fn parse_with_ranges(
        text: &str,
        allowed: &[&str],
        ranges: &[&str],
        collections: &[&str],
    ) -> Result<Filter, GraphError> {
        Self::parse_all(text, allowed, ranges, &[], collections)
    }

    fn parse_all(
        text: &str,
        allowed: &[&str],
        ranges: &[&str],
        ins: &[&str],
        collections: &[&str],
    ) -> Result<Filter, GraphError> {
        let tokens = tokenize(text)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            allowed,
            ranges,
            ins,
            collections,
        };
        let f = p.or()?;
        if p.pos != p.tokens.len() {
            return Err(invalid(text));
        }
        Ok(f)
    }

    /// Whether the expression tests `field` anywhere.
    pub fn mentions(&self, field: &str) -> bool {
        match self {
            Filter::Eq(f, _)
            | Filter::Ne(f, _)
            | Filter::Any(f, _)
            | Filter::AnyPath(f, _, _)
            | Filter::Cmp(f, _, _)
            | Filter::In(f, _)
            | Filter::StartsWith(f, _) => f.eq_ignore_ascii_case(field),
            Filter::And(a, b) | Filter::Or(a, b) => a.mentions(field) || b.mentions(field),
            Filter::Not(a) => a.mentions(field),
        }
    }

    /// Whether `row` satisfies the filter. String comparisons ignore case, as Graph's do.
    pub fn matches(&self, row: &Value) -> bool {
        fn same(a: &Value, b: &Value) -> bool {
            match (a, b) {
                (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
                _ => a == b,
            }
        }
        match self {
            Filter::Eq(f, v) => same(row.get(f).unwrap_or(&Value::Null), v),
            Filter::Ne(f, v) => !same(row.get(f).unwrap_or(&Value::Null), v),
            Filter::Any(f, v) => row
                .get(f)
                .and_then(Value::as_array)
                .is_some_and(|items| items.iter().any(|i| same(i, v))),
            Filter::AnyPath(f, prop, v) => row
                .get(f)
                .and_then(Value::as_array)
                .is_some_and(|items| items.iter().any(|i| same(i.get(prop).unwrap_or(&Value::Null), v))),
            Filter::Cmp(f, op, v) => {
                let a = row.get(f).unwrap_or(&Value::Null);
                let ord = match (a, v) {
                    (Value::String(x), Value::String(y)) => {
                        // DateTimeOffsets compare as instants (their text may differ in precision).
                        let rfc = &time::format_description::well_known::Rfc3339;
                        match (time::OffsetDateTime::parse(x, rfc), time::OffsetDateTime::parse(y, rfc)) {
                            (Ok(a), Ok(b)) => Some(a.cmp(&b)),
                            _ => Some(x.as_str().cmp(y.as_str())),
                        }
                    }
                    (Value::Number(x), Value::Number(y)) => {
                        x.as_f64().zip(y.as_f64()).and_then(|(x, y)| x.partial_cmp(&y))
                    }
                    _ => None,
                };
                ord.is_some_and(|o| match *op {
                    "ge" => o.is_ge(),
                    "gt" => o.is_gt(),
                    "le" => o.is_le(),
                    _ => o.is_lt(),
                })
            }
            Filter::In(f, values) => values.iter().any(|v| same(row.get(f).unwrap_or(&Value::Null), v)),
            Filter::StartsWith(f, prefix) => row
                .get(f)
                .and_then(Value::as_str)
                .is_some_and(|s| s.to_ascii_lowercase().starts_with(&prefix.to_ascii_lowercase())),
            Filter::And(a, b) => a.matches(row) && b.matches(row),
            Filter::Or(a, b) => a.matches(row) || b.matches(row),
            Filter::Not(a) => !a.matches(row),
        }
    }
}

fn invalid(text: &str) -> GraphError {
    GraphError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "BadRequest",
        format!("Invalid filter clause: {text}"),
    )
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    LParen,
    RParen,
    Comma,
    Colon,
    Slash,
}

fn tokenize(text: &str) -> Result<Vec<Tok>, GraphError> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            ':' => {
                out.push(Tok::Colon);
                i += 1;
            }
            '/' => {
                out.push(Tok::Slash);
                i += 1;
            }
            '\'' => {
                // OData string literal: a quote inside is doubled.
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(invalid(text)),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            s.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(s));
            }
            c if c.is_alphanumeric() || c == '_' || c == '-' || c == '.' => {
                let start = i;
                // A literal that starts with a digit (a DateTimeOffset) may hold ':' and '+'.
                let extra = if c.is_ascii_digit() { "_-.:+" } else { "_-." };
                while i < chars.len() && (chars[i].is_alphanumeric() || extra.contains(chars[i])) {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            _ => return Err(invalid(text)),
        }
    }
    Ok(out)
}

struct Parser<'a> {
    tokens: Vec<Tok>,
    pos: usize,
    allowed: &'a [&'a str],
    ranges: &'a [&'a str],
    ins: &'a [&'a str],
    collections: &'a [&'a str],
}

impl Parser<'_> {
    fn err(&self) -> GraphError {
        invalid(&format!("{:?}", self.tokens))
    }
    fn peek_ident(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Tok::Ident(w)) if w.eq_ignore_ascii_case(word))
    }
    fn expect(&mut self, tok: Tok) -> Result<(), GraphError> {
        if self.tokens.get(self.pos) == Some(&tok) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err())
        }
    }
    fn ident(&mut self) -> Result<String, GraphError> {
        match self.tokens.get(self.pos) {
            Some(Tok::Ident(w)) => {
                self.pos += 1;
                Ok(w.clone())
            }
            _ => Err(self.err()),
        }
    }
    fn literal(&mut self) -> Result<Value, GraphError> {
        let v = match self.tokens.get(self.pos) {
            Some(Tok::Str(s)) => Value::String(s.clone()),
            Some(Tok::Ident(w)) if w == "true" => Value::Bool(true),
            Some(Tok::Ident(w)) if w == "false" => Value::Bool(false),
            Some(Tok::Ident(w)) if w == "null" => Value::Null,
            // DateTimeOffset literals are unquoted: 2026-01-01T00:00:00Z
            Some(Tok::Ident(w)) if w.starts_with(|c: char| c.is_ascii_digit()) && w.contains('T') => {
                Value::String(w.clone())
            }
            _ => return Err(self.err()),
        };
        self.pos += 1;
        Ok(v)
    }
    fn or(&mut self) -> Result<Filter, GraphError> {
        let mut left = self.and()?;
        while self.peek_ident("or") {
            self.pos += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }
    fn and(&mut self) -> Result<Filter, GraphError> {
        let mut left = self.unary()?;
        while self.peek_ident("and") {
            self.pos += 1;
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }
    fn unary(&mut self) -> Result<Filter, GraphError> {
        if self.peek_ident("not") {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if self.tokens.get(self.pos) == Some(&Tok::LParen) {
            self.pos += 1;
            let f = self.or()?;
            self.expect(Tok::RParen)?;
            return Ok(f);
        }
        if self.peek_ident("startsWith") {
            self.pos += 1;
            self.expect(Tok::LParen)?;
            let field = self.field()?;
            self.expect(Tok::Comma)?;
            let Value::String(prefix) = self.literal()? else {
                return Err(self.err());
            };
            self.expect(Tok::RParen)?;
            return Ok(Filter::StartsWith(field, prefix));
        }
        let name = self.ident()?;
        if self.tokens.get(self.pos) == Some(&Tok::Slash) {
            // collection/any(x: x eq 'value')
            if !self.collections.iter().any(|c| c.eq_ignore_ascii_case(&name)) {
                return Err(self.err());
            }
            self.pos += 1;
            if !self.peek_ident("any") {
                return Err(self.err());
            }
            self.pos += 1;
            self.expect(Tok::LParen)?;
            let var = self.ident()?;
            self.expect(Tok::Colon)?;
            let var2 = self.ident()?;
            if var != var2 {
                return Err(self.err());
            }
            // `t/prop` inside the lambda
            let prop = if self.tokens.get(self.pos) == Some(&Tok::Slash) {
                self.pos += 1;
                Some(self.ident()?)
            } else {
                None
            };
            if !self.peek_ident("eq") {
                return Err(self.err());
            }
            self.pos += 1;
            let v = self.literal()?;
            self.expect(Tok::RParen)?;
            let collection = canonical(self.collections, &name);
            return Ok(match prop {
                Some(p) => Filter::AnyPath(collection, p, v),
                None => Filter::Any(collection, v),
            });
        }
        if !self.allowed.iter().any(|a| a.eq_ignore_ascii_case(&name)) {
            return Err(self.err());
        }
        let field = canonical(self.allowed, &name);
        let op = self.ident()?.to_ascii_lowercase();
        if op == "in" && self.ins.iter().any(|i| i.eq_ignore_ascii_case(&field)) {
            self.expect(Tok::LParen)?;
            let mut values = vec![self.literal()?];
            while self.tokens.get(self.pos) == Some(&Tok::Comma) {
                self.pos += 1;
                values.push(self.literal()?);
            }
            self.expect(Tok::RParen)?;
            if values.len() > 15 {
                return Err(self.err());
            }
            return Ok(Filter::In(field, values));
        }
        let v = self.literal()?;
        match op.as_str() {
            "eq" => Ok(Filter::Eq(field, v)),
            "ne" => Ok(Filter::Ne(field, v)),
            "ge" | "gt" | "le" | "lt" if self.ranges.iter().any(|r| r.eq_ignore_ascii_case(&field)) => {
                let op = match op.as_str() {
                    "ge" => "ge",
                    "gt" => "gt",
                    "le" => "le",
                    _ => "lt",
                };
                Ok(Filter::Cmp(field, op, v))
            }
            _ => Err(self.err()),
        }
    }
    fn field(&mut self) -> Result<String, GraphError> {
        let name = self.ident()?;
        if !self.allowed.iter().any(|a| a.eq_ignore_ascii_case(&name)) {
            return Err(self.err());
        }
        Ok(canonical(self.allowed, &name))
    }
}

fn canonical(names: &[&str], name: &str) -> String {
    names
        .iter()
        .find(|n| n.eq_ignore_ascii_case(name))
        .map_or(name, |n| n)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[&str] = &["isAdmin", "userPrincipalName", "isMfaRegistered"];
    const COLLS: &[&str] = &["methodsRegistered"];

    #[test]
    fn in_takes_at_most_fifteen_values_and_only_where_allowed() {
        let ids = |n: usize| (0..n).map(|i| format!("'g{i}'")).collect::<Vec<_>>().join(", ");
        let f = Filter::parse_with_in(&format!("id in ({})", ids(15)), &["id"], &["id"]).unwrap();
        assert!(f.matches(&serde_json::json!({"id": "G14"})));
        assert!(!f.matches(&serde_json::json!({"id": "g15"})));
        assert!(Filter::parse_with_in(&format!("id in ({})", ids(16)), &["id"], &["id"]).is_err());
        assert!(Filter::parse("id in ('a')", &["id"], &[]).is_err());
    }

    #[test]
    fn filters_parse_and_match_documented_forms() {
        let row = json!({"isAdmin": true, "userPrincipalName": "O'Neil@contoso.test",
            "isMfaRegistered": false, "methodsRegistered": ["mobilePhone", "email"]});
        let cases = [
            ("isAdmin eq true", true),
            ("isMfaRegistered eq true", false),
            ("methodsRegistered/any(m:m eq 'mobilePhone')", true),
            ("methodsRegistered/any(x: x eq 'fido2')", false),
            ("startsWith(userPrincipalName,'o''neil')", true),
            ("isAdmin eq true and isMfaRegistered eq false", true),
            ("isAdmin eq false or methodsRegistered/any(m:m eq 'email')", true),
            ("not (isAdmin eq true)", false),
            ("userPrincipalName eq 'O''Neil@contoso.test'", true),
        ];
        for (text, expected) in cases {
            let f = Filter::parse(text, FIELDS, COLLS).unwrap_or_else(|e| panic!("{text}: {e:?}"));
            assert_eq!(f.matches(&row), expected, "{text}");
        }
    }

    #[test]
    fn lambdas_over_objects_and_date_ranges_parse() {
        let row = json!({"when": "2026-11-28T10:00:00Z", "targets": [{"id": "a", "upn": "x@y"}]});
        let f = |t: &str| {
            Filter::parse_with_ranges(t, &["when"], &["when"], &["targets"])
                .unwrap()
                .matches(&row)
        };
        assert!(
            Filter::parse("when ge 2026-11-28T00:00:00Z", &["when"], &[]).is_err(),
            "ranges only where allowed"
        );
        assert!(f("targets/any(t:t/id eq 'a')"));
        assert!(!f("targets/any(t:t/upn eq 'a')"));
        assert!(f("when ge 2026-11-28T00:00:00Z and when le 2026-11-29T00:00:00Z"));
        assert!(!f("when gt 2026-11-28T10:00:00Z"));
        assert!(
            f("when le 2026-11-28T10:00:00.500Z"),
            "instants, not text, are compared"
        );
        // A quote doubled inside a literal stays inside it.
        assert!(!f("targets/any(t:t/id eq 'a'' or ''1'' eq ''1')"));
    }

    #[test]
    fn unsupported_fields_and_broken_syntax_are_refused() {
        for text in [
            "mail eq 'x'",
            "isAdmin gt 1",
            "isAdmin eq",
            "userPrincipalName eq 'open",
            "a/any(m:m eq 'x')",
        ] {
            assert!(Filter::parse(text, FIELDS, COLLS).is_err(), "{text}");
        }
    }
}
