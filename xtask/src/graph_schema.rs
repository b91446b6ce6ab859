//! Graph requests held to Microsoft's published schema: the v1.0 CSDL of msgraph-metadata
//! (`xtask/graph/`), read with roxmltree. A request's path must resolve segment by segment (an
//! entity set or singleton, a key, a navigation or structural property, a cast, a bound function
//! or action, `$ref`, `$count`), and `$select`, `$filter`, `$expand` and `$orderby` must name real
//! properties of the type they apply to. What the checker cannot parse fails, never passes.
//! Beta calls are not in this schema: each one the product makes is listed with the doc page it
//! follows (`BETA`), and any other fails.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail};

/// A type's members: properties (name to type) and navigation properties (name to type).
#[derive(Debug, Default)]
struct Members {
    base: Option<String>,
    properties: BTreeMap<String, String>,
    navigation: BTreeMap<String, String>,
}

/// The schema, as far as paths and query options need it.
#[derive(Debug, Default)]
pub struct Schema {
    types: BTreeMap<String, Members>,
    /// Entity sets and singletons: name to type (`Collection(…)` for a set).
    roots: BTreeMap<String, String>,
    /// Bound functions and actions: name to (binding type, return type).
    bound: BTreeMap<String, Vec<(String, Option<String>)>>,
}

/// The beta calls the product makes, each with the doc page it follows (beta is not in the v1.0
/// schema). A path segment `{}` is any value.
const BETA: [(&str, &str, &str); 15] = [
    (
        "DELETE",
        "/beta/users/{}/authentication/qrCodePinMethod",
        "https://learn.microsoft.com/graph/api/authentication-delete-qrcodepinmethod?view=graph-rest-beta",
    ),
    (
        "POST",
        "/beta/users/{}/authentication/hardwareOathMethods/{}/deactivate",
        "https://learn.microsoft.com/graph/api/hardwareoathauthenticationmethod-deactivate?view=graph-rest-beta",
    ),
    (
        "GET",
        "/beta/users/{}/authentication/methods",
        "https://learn.microsoft.com/graph/api/authentication-list-methods?view=graph-rest-beta (hardware OATH tokens are listed only in beta)",
    ),
    (
        "DELETE",
        "/beta/users/{}/authentication/hardwareOathMethods/{}",
        "https://learn.microsoft.com/graph/api/hardwareoathauthenticationmethod-delete?view=graph-rest-beta",
    ),
    (
        "PATCH",
        "/beta/users/{}/authentication/signInPreferences",
        "https://learn.microsoft.com/graph/api/authentication-update?view=graph-rest-beta (signInPreferences)",
    ),
    (
        "GET",
        "/beta/users/{}/authentication/signInPreferences",
        "https://learn.microsoft.com/graph/api/authentication-get?view=graph-rest-beta (signInPreferences)",
    ),
    (
        "POST",
        "/beta/$batch",
        "https://learn.microsoft.com/graph/json-batching (a reset's removals as one chain, `dependsOn`; each part is checked here on its own)",
    ),
    (
        "DELETE",
        "/beta/users/{}/authentication/phoneMethods/{}",
        "https://learn.microsoft.com/graph/api/phoneauthenticationmethod-delete?view=graph-rest-beta",
    ),
    (
        "DELETE",
        "/beta/users/{}/authentication/microsoftAuthenticatorMethods/{}",
        "https://learn.microsoft.com/graph/api/microsoftauthenticatorauthenticationmethod-delete?view=graph-rest-beta",
    ),
    (
        "DELETE",
        "/beta/users/{}/authentication/fido2Methods/{}",
        "https://learn.microsoft.com/graph/api/fido2authenticationmethod-delete?view=graph-rest-beta",
    ),
    (
        "DELETE",
        "/beta/users/{}/authentication/softwareOathMethods/{}",
        "https://learn.microsoft.com/graph/api/softwareoathauthenticationmethod-delete?view=graph-rest-beta",
    ),
    (
        "DELETE",
        "/beta/users/{}/authentication/emailMethods/{}",
        "https://learn.microsoft.com/graph/api/emailauthenticationmethod-delete?view=graph-rest-beta",
    ),
    (
        "DELETE",
        "/beta/users/{}/authentication/windowsHelloForBusinessMethods/{}",
        "https://learn.microsoft.com/graph/api/windowshelloforbusinessauthenticationmethod-delete?view=graph-rest-beta",
    ),
    (
        "DELETE",
        "/beta/users/{}/authentication/platformCredentialMethods/{}",
        "https://learn.microsoft.com/graph/api/platformcredentialauthenticationmethod-delete?view=graph-rest-beta",
    ),
    (
        "DELETE",
        "/beta/users/{}/authentication/temporaryAccessPassMethods/{}",
        "https://learn.microsoft.com/graph/api/temporaryaccesspassauthenticationmethod-delete?view=graph-rest-beta",
    ),
];

fn short(name: &str) -> String {
    name.trim_start_matches("microsoft.graph.")
        .trim_start_matches("graph.")
        .to_owned()
}

fn element(ty: &str) -> (String, bool) {
    match ty.strip_prefix("Collection(").and_then(|t| t.strip_suffix(')')) {
        Some(inner) => (short(inner), true),
        None => (short(ty), false),
    }
}

impl Schema {
    /// Read the CSDL.
    ///
    /// # Errors
    /// The file does not parse.
    pub fn parse(xml: &str) -> Result<Schema> {
        let doc = roxmltree::Document::parse(xml).context("the CSDL does not parse")?;
        let mut schema = Schema::default();
        for node in doc.descendants().filter(|n| n.is_element()) {
            // Types of `microsoft.graph` by their name, of a sub-namespace as `ns.name`
            // (`security.alert`), as `short` gives a qualified reference.
            let namespace = node
                .ancestors()
                .find(|a| a.tag_name().name() == "Schema")
                .and_then(|s| s.attribute("Namespace"))
                .unwrap_or("microsoft.graph");
            let local = node.attribute("Name").unwrap_or_default();
            let name = if namespace == "microsoft.graph" {
                local.to_owned()
            } else {
                short(&format!("{namespace}.{local}"))
            };
            match node.tag_name().name() {
                "EntityType" | "ComplexType" => {
                    let mut members = Members {
                        base: node.attribute("BaseType").map(short),
                        ..Members::default()
                    };
                    for child in node.children().filter(|c| c.is_element()) {
                        let (Some(n), Some(t)) = (child.attribute("Name"), child.attribute("Type")) else {
                            continue;
                        };
                        match child.tag_name().name() {
                            "Property" => {
                                members.properties.insert(n.to_owned(), t.to_owned());
                            }
                            "NavigationProperty" => {
                                members.navigation.insert(n.to_owned(), t.to_owned());
                            }
                            _ => {}
                        }
                    }
                    schema.types.insert(name, members);
                }
                "EntitySet" => {
                    let t = node.attribute("EntityType").unwrap_or_default();
                    schema.roots.insert(name, format!("Collection({t})"));
                }
                "Singleton" => {
                    schema
                        .roots
                        .insert(name, node.attribute("Type").unwrap_or_default().to_owned());
                }
                "Function" | "Action" if node.attribute("IsBound") == Some("true") => {
                    let binding = node
                        .children()
                        .find(|c| c.tag_name().name() == "Parameter")
                        .and_then(|p| p.attribute("Type"))
                        .unwrap_or_default()
                        .to_owned();
                    let returns = node
                        .children()
                        .find(|c| c.tag_name().name() == "ReturnType")
                        .and_then(|r| r.attribute("Type"))
                        .map(str::to_owned);
                    schema.bound.entry(name).or_default().push((binding, returns));
                }
                _ => {}
            }
        }
        if schema.roots.is_empty() || schema.types.len() < 100 {
            bail!("the CSDL has no entity container or few types: not the Graph schema");
        }
        Ok(schema)
    }

    /// A type and its bases, nearest first.
    fn lineage(&self, ty: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut next = Some(ty.to_owned());
        while let Some(t) = next {
            if out.contains(&t) {
                break;
            }
            next = self.types.get(&t).and_then(|m| m.base.clone());
            out.push(t);
        }
        out
    }

    fn is_a(&self, ty: &str, ancestor: &str) -> bool {
        self.lineage(ty).iter().any(|t| t == ancestor)
    }

    /// A member of `ty` (or a base type): its type, and whether it is a navigation property.
    fn member(&self, ty: &str, name: &str) -> Option<(String, bool)> {
        for t in self.lineage(ty) {
            let Some(m) = self.types.get(&t) else { continue };
            if let Some(p) = m.properties.get(name) {
                return Some((p.clone(), false));
            }
            if let Some(n) = m.navigation.get(name) {
                return Some((n.clone(), true));
            }
        }
        None
    }

    /// A member of a type derived from `ty`.
    fn derived_member(&self, ty: &str, name: &str) -> Option<(String, bool)> {
        self.types
            .keys()
            .filter(|t| t.as_str() != ty && self.is_a(t, ty))
            .find_map(|t| self.member(t, name))
    }

    /// A bound function or action `name` on `ty` (single or collection): what it returns.
    fn bound_on(&self, name: &str, ty: &str, collection: bool) -> Option<Option<String>> {
        let name = short(name);
        self.bound.get(&name)?.iter().find_map(|(binding, returns)| {
            let (b, b_collection) = element(binding);
            (b_collection == collection && self.is_a(ty, &b)).then(|| returns.clone())
        })
    }

    /// Check one request (`path` with its version prefix, `query` percent-encoded).
    ///
    /// # Errors
    /// What does not resolve, named.
    pub fn check(&self, method: &str, path: &str, query: Option<&str>) -> Result<()> {
        self.resolve_request(method, path, query).map(|_| ())
    }

    /// `check`, and what the answer is: its type and whether it is a collection (`None` for a
    /// beta call, a batch, `$ref`/`$count`/`$value`, or an action that returns nothing).
    fn resolve_request(&self, method: &str, path: &str, query: Option<&str>) -> Result<Option<(String, bool)>> {
        if let Some(rest) = path.strip_prefix("/beta/") {
            let segments: Vec<&str> = rest.split('/').collect();
            let known = BETA.iter().any(|(m, p, _)| {
                let pattern: Vec<&str> = p.trim_start_matches("/beta/").split('/').collect();
                *m == method
                    && pattern.len() == segments.len()
                    && pattern.iter().zip(&segments).all(|(a, b)| *a == "{}" || a == b)
            });
            if !known {
                bail!("{method} {path}: a beta call with no doc page listed (xtask graph_schema::BETA)");
            }
            return Ok(None);
        }
        let Some(rest) = path.strip_prefix("/v1.0/") else {
            bail!("{path}: not a Graph v1.0 or beta path");
        };
        if rest == "$batch" {
            return Ok(None);
        }
        let mut segments = rest.split('/').map(|s| {
            url::form_urlencoded::parse(s.as_bytes())
                .map(|(k, v)| {
                    if v.is_empty() {
                        k.into_owned()
                    } else {
                        format!("{k}={v}")
                    }
                })
                .collect::<String>()
        });
        let first = segments.next().unwrap_or_default();
        let root = self
            .roots
            .get(&first)
            .ok_or_else(|| anyhow::anyhow!("{path}: no entity set or singleton '{first}'"))?;
        let (mut ty, mut collection) = element(root);
        let mut ended = false;
        for segment in segments {
            if ended {
                bail!("{path}: a segment after $ref/$count/$value");
            }
            if matches!(segment.as_str(), "$ref" | "$count" | "$value") {
                ended = true;
                continue;
            }
            if let Some(cast) = segment.strip_prefix("microsoft.graph.") {
                if self.types.contains_key(cast) && self.is_a(cast, &ty) {
                    ty = cast.to_owned();
                    continue;
                }
                if let Some(returns) = self.bound_on(cast, &ty, collection) {
                    match returns {
                        Some(r) => (ty, collection) = element(&r),
                        None => ended = true,
                    }
                    continue;
                }
                bail!("{path}: '{segment}' is not a type derived from {ty} nor a function or action bound to it");
            }
            if collection {
                if let Some(returns) = self.bound_on(&segment, &ty, true) {
                    match returns {
                        Some(r) => (ty, collection) = element(&r),
                        None => ended = true,
                    }
                    continue;
                }
                // A key.
                collection = false;
                continue;
            }
            if let Some((member, _)) = self.member(&ty, &segment) {
                (ty, collection) = element(&member);
                continue;
            }
            if let Some(returns) = self.bound_on(&segment, &ty, false) {
                match returns {
                    Some(r) => (ty, collection) = element(&r),
                    None => ended = true,
                }
                continue;
            }
            bail!("{path}: {ty} has no property, navigation property, function or action '{segment}'");
        }
        self.check_query(path, &ty, query)?;
        Ok((!ended).then_some((ty, collection)))
    }

    /// An answer's properties against the type the request resolved to: each item of `value`
    /// for a collection, else the object; an item's own `@odata.type` (a derived type) when it
    /// names one. Annotations (`@…`) are not properties.
    ///
    /// # Errors
    /// A property the type does not have.
    pub fn check_response(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<()> {
        let Some((ty, collection)) = self.resolve_request(method, path, query)? else {
            return Ok(());
        };
        if !self.types.contains_key(&ty) {
            return Ok(()); // a primitive or an enum
        }
        let items: Vec<&serde_json::Value> = if collection {
            body["value"].as_array().map(|v| v.iter().collect()).unwrap_or_default()
        } else {
            vec![body]
        };
        for item in items {
            let Some(object) = item.as_object() else { continue };
            let own = object
                .get("@odata.type")
                .and_then(|t| t.as_str())
                .map(|t| short(t.trim_start_matches('#')))
                .filter(|t| self.types.contains_key(t))
                .unwrap_or_else(|| ty.clone());
            for key in object.keys().filter(|k| !k.contains('@')) {
                if self.member(&own, key).is_none() && self.derived_member(&own, key).is_none() {
                    bail!("{method} {path}: the answer has '{key}', not a property of {own}");
                }
            }
        }
        Ok(())
    }

    fn check_query(&self, path: &str, ty: &str, query: Option<&str>) -> Result<()> {
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match key.as_ref() {
                "$select" => {
                    // Graph selects a derived type's property on a base-typed result (its docs
                    // expand `manager($select=id,displayName)`, a directoryObject).
                    for name in value.split(',').map(str::trim) {
                        self.member(ty, name)
                            .or_else(|| self.derived_member(ty, name))
                            .ok_or_else(|| anyhow::anyhow!("{path}: $select names '{name}', not a property of {ty}"))?;
                    }
                }
                "$expand" => self.check_expand(path, ty, &value)?,
                "$orderby" => {
                    for clause in value.split(',') {
                        let mut words = clause.split_whitespace();
                        let name = words.next().unwrap_or_default();
                        self.resolve(ty, name, &BTreeMap::new())
                            .map_err(|e| anyhow::anyhow!("{path}: $orderby: {e}"))?;
                        if let Some(direction) = words.next()
                            && !matches!(direction, "asc" | "desc")
                        {
                            bail!("{path}: $orderby direction '{direction}'");
                        }
                    }
                }
                "$filter" => self
                    .check_filter(ty, &value)
                    .map_err(|e| anyhow::anyhow!("{path}: $filter '{value}': {e}"))?,
                "$top" | "$skiptoken" | "$count" | "$search" | "$skip" => {}
                other => bail!("{path}: unknown query option '{other}'"),
            }
        }
        Ok(())
    }

    fn check_expand(&self, path: &str, ty: &str, value: &str) -> Result<()> {
        // `manager($select=id,mail)`, nested options checked against the navigation's type.
        let mut depth = 0;
        let mut start = 0;
        let mut items = Vec::new();
        for (i, c) in value.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&value[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        items.push(&value[start..]);
        for item in items {
            let (name, options) = match item.split_once('(') {
                Some((n, o)) => (n.trim(), Some(o.strip_suffix(')').unwrap_or(o))),
                None => (item.trim(), None),
            };
            let Some((target, true)) = self.member(ty, name) else {
                bail!("{path}: $expand names '{name}', not a navigation property of {ty}");
            };
            if let Some(options) = options {
                let (target, _) = element(&target);
                let nested = options.replace(';', "&");
                self.check_query(path, &target, Some(&nested))?;
            }
        }
        Ok(())
    }

    /// `a/b/c` from `ty` (or from a lambda variable's type).
    fn resolve(&self, ty: &str, path: &str, vars: &BTreeMap<String, String>) -> Result<String> {
        let mut parts = path.split('/');
        let first = parts.next().unwrap_or_default();
        let mut current = match vars.get(first) {
            Some(t) => t.clone(),
            None => {
                let (t, _) = self
                    .member(ty, first)
                    .ok_or_else(|| anyhow::anyhow!("'{first}' is not a property of {ty}"))?;
                element(&t).0
            }
        };
        for part in parts {
            let (t, _) = self
                .member(&current, part)
                .ok_or_else(|| anyhow::anyhow!("'{part}' is not a property of {current}"))?;
            current = element(&t).0;
        }
        Ok(current)
    }

    fn check_filter(&self, ty: &str, filter: &str) -> Result<()> {
        // Literals out: strings ('' escapes a quote), GUIDs, date-times, numbers.
        let mut text = String::new();
        let mut chars = filter.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                loop {
                    match chars.next() {
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                        }
                        Some('\'') => break,
                        Some(_) => {}
                        None => bail!("an unterminated string"),
                    }
                }
                text.push_str(" 0 ");
            } else {
                text.push(c);
            }
        }
        static LITERAL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
            regex::Regex::new(
                r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b|\b\d{4}-\d{2}-\d{2}T[0-9:.]+Z?\b|\b\d+(\.\d+)?\b",
            )
            .expect("a regex")
        });
        static LAMBDA: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
            regex::Regex::new(r"([A-Za-z_][\w/]*)/(any|all)\(\s*(\w+)\s*:").expect("a regex")
        });
        static IDENTIFIER: std::sync::LazyLock<regex::Regex> =
            std::sync::LazyLock::new(|| regex::Regex::new(r"[A-Za-z_][\w]*(/[A-Za-z_][\w]*)*").expect("a regex"));
        let literal = &*LITERAL;
        let text = literal.replace_all(&text, " 0 ").into_owned();
        if text.matches('(').count() != text.matches(')').count() {
            bail!("unbalanced parentheses");
        }
        let lambda = &*LAMBDA;
        let mut vars = BTreeMap::new();
        for c in lambda.captures_iter(&text) {
            let collection = self.resolve(ty, &c[1], &vars)?;
            vars.insert(c[3].to_owned(), collection);
        }
        let text = lambda.replace_all(&text, " ( ").into_owned();
        const WORDS: [&str; 22] = [
            "and",
            "or",
            "not",
            "eq",
            "ne",
            "gt",
            "ge",
            "lt",
            "le",
            "in",
            "has",
            "true",
            "false",
            "null",
            "startswith",
            "endswith",
            "contains",
            "startsWith",
            "endsWith",
            "any",
            "all",
            "0",
        ];
        let identifier = &*IDENTIFIER;
        let mut seen = BTreeSet::new();
        for m in identifier.find_iter(&text) {
            let name = m.as_str();
            if WORDS.contains(&name) || vars.contains_key(name) || !seen.insert(name.to_owned()) {
                continue;
            }
            self.resolve(ty, name, &vars)?;
        }
        let leftover = identifier.replace_all(&text, "").into_owned();
        if leftover.chars().any(|c| !(c.is_whitespace() || "(),0".contains(c))) {
            bail!("characters the checker does not know: '{}'", leftover.trim());
        }
        Ok(())
    }
}

/// Every request the tests sent to Graph (`target/graph-requests/*.jsonl`, one JSON record a
/// line: method, path, query), each checked; the problems, each once.
///
/// # Errors
/// The schema or a file cannot be read, or a request does not resolve.
pub fn check_recorded(schema_path: &std::path::Path, dir: &std::path::Path) -> Result<()> {
    let schema = Schema::parse(&std::fs::read_to_string(schema_path)?)?;
    let mut checked = BTreeSet::new();
    let mut problems = BTreeSet::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("{}: no recorded requests", dir.display()))?;
    for entry in entries {
        let text = std::fs::read_to_string(entry?.path())?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let r: serde_json::Value = serde_json::from_str(line)?;
            let method = r["method"].as_str().unwrap_or_default();
            let path = r["path"].as_str().unwrap_or_default();
            let query = r["query"].as_str();
            if let Some(body) = r.get("response").filter(|b| !b.is_null())
                && let Err(e) = schema.check_response(method, path, query, body)
            {
                problems.insert(e.to_string());
            }
            if !checked.insert((method.to_owned(), path.to_owned(), query.map(str::to_owned))) {
                continue;
            }
            if let Err(e) = schema.check(method, path, query) {
                problems.insert(e.to_string());
            }
        }
    }
    if checked.is_empty() {
        bail!("{}: no Graph request was recorded", dir.display());
    }
    if !problems.is_empty() {
        bail!(
            "{} of {} distinct Graph requests do not follow the v1.0 schema:\n{}",
            problems.len(),
            checked.len(),
            problems.into_iter().collect::<Vec<_>>().join("\n")
        );
    }
    println!("{} distinct Graph requests follow the published schema", checked.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> &'static Schema {
        static SCHEMA: std::sync::OnceLock<Schema> = std::sync::OnceLock::new();
        SCHEMA.get_or_init(|| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("graph/v1.0-Prod.csdl");
            Schema::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
        })
    }

    #[test]
    fn the_products_calls_resolve() {
        let s = schema();
        let ok = [
            (
                "GET",
                "/v1.0/users/adele%40contoso.test",
                Some(
                    "$select=id,userPrincipalName,otherMails,mobilePhone&$expand=manager($select=id,displayName,mail)",
                ),
            ),
            ("POST", "/v1.0/users/u1/authentication/temporaryAccessPassMethods", None),
            (
                "DELETE",
                "/v1.0/users/u1/authentication/phoneMethods/3179e48a-750b-4051-897c-87b9720928f7",
                None,
            ),
            (
                "GET",
                "/v1.0/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/temporaryAccessPass",
                None,
            ),
            (
                "GET",
                "/v1.0/groups/g1/transitiveMembers/microsoft.graph.user",
                Some("$select=id,mail,accountEnabled&$count=true&$top=999"),
            ),
            ("POST", "/v1.0/users/u1/revokeSignInSessions", None),
            (
                "GET",
                "/v1.0/auditLogs/directoryAudits",
                Some(
                    "$filter=activityDateTime+ge+2026-12-01T00%3A00%3A00.000Z+and+targetResources%2Fany%28t%3At%2Fid+eq+%27u1%27%29&$orderby=activityDateTime+desc",
                ),
            ),
            (
                "GET",
                "/v1.0/users",
                Some("$filter=accountEnabled+eq+false&$select=id&$top=999"),
            ),
            ("GET", "/beta/users/u1/authentication/signInPreferences", None),
        ];
        for (method, path, query) in ok {
            s.check(method, path, query).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn an_answer_with_a_property_its_type_lacks_is_rejected() {
        let s = schema();
        let user =
            serde_json::json!({"@odata.context": "x", "id": "u1", "userPrincipalName": "a@b.c", "otherMails": []});
        s.check_response("GET", "/v1.0/users/u1", None, &user).unwrap();
        let invented = serde_json::json!({"id": "u1", "favouriteColour": "teal"});
        let e = s
            .check_response("GET", "/v1.0/users/u1", None, &invented)
            .unwrap_err()
            .to_string();
        assert!(e.contains("favouriteColour"), "{e}");
        let members = serde_json::json!({"value": [
            {"@odata.type": "#microsoft.graph.user", "id": "u1", "mail": "a@b.c"},
            {"@odata.type": "#microsoft.graph.group", "id": "g1", "displayName": "G"}
        ]});
        s.check_response("GET", "/v1.0/users/u1/transitiveMemberOf", None, &members)
            .unwrap();
        let tap =
            serde_json::json!({"id": "t", "temporaryAccessPass": "x", "lifetimeInMinutes": 60, "isUsableOnce": true});
        s.check_response(
            "POST",
            "/v1.0/users/u1/authentication/temporaryAccessPassMethods",
            None,
            &tap,
        )
        .unwrap();
    }

    #[test]
    fn a_misspelled_property_an_unknown_segment_and_an_unparseable_filter_are_rejected() {
        let s = schema();
        let bad = [
            (
                "GET",
                "/v1.0/users/u1",
                Some("$select=id,userPrincipleName"),
                "userPrincipleName",
            ),
            (
                "GET",
                "/v1.0/users/u1/authentication/temporaryAccessPasses",
                None,
                "temporaryAccessPasses",
            ),
            ("GET", "/v1.0/userz", None, "userz"),
            (
                "GET",
                "/v1.0/users",
                Some("$filter=accountEnabled+eq+%27false"),
                "unterminated",
            ),
            (
                "GET",
                "/v1.0/users",
                Some("$filter=accountEnabled+eq+%28false"),
                "unbalanced",
            ),
            (
                "GET",
                "/v1.0/users",
                Some("$filter=acountEnabled+eq+false"),
                "acountEnabled",
            ),
            (
                "GET",
                "/v1.0/auditLogs/directoryAudits",
                Some("$filter=targetResources%2Fany%28t%3At%2FuserPrincipleName+eq+%27x%27%29"),
                "userPrincipleName",
            ),
            ("GET", "/v1.0/users/u1", Some("$expand=managr"), "managr"),
            (
                "GET",
                "/v1.0/groups/g1/transitiveMembers/microsoft.graph.usr",
                None,
                "usr",
            ),
            ("GET", "/beta/users/u1/authentication/somethingNew", None, "beta"),
            ("GET", "/v1.0/users", Some("$frobnicate=1"), "frobnicate"),
        ];
        for (method, path, query, why) in bad {
            let e = s.check(method, path, query).expect_err(path).to_string();
            assert!(e.contains(why), "{path} {query:?}: {e}");
        }
    }
}
