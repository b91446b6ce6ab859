//! ARCHITECTURE.md, held against the code: the import graph it allows, the domain that knows no
//! HTTP, the environment read only by `config`, and the size of functions.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::helpers::repo_path;

/// `module: allowed allowed ...` from the ```imports block of ARCHITECTURE.md.
fn allowed() -> BTreeMap<String, BTreeSet<String>> {
    let doc = std::fs::read_to_string(repo_path("ARCHITECTURE.md")).unwrap();
    let block = doc
        .split("```imports\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("ARCHITECTURE.md has an ```imports block");
    block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (module, targets) = l.split_once(':').expect("`module: targets`");
            let targets = targets
                .split_whitespace()
                .filter(|t| *t != "-")
                .map(str::to_owned)
                .collect();
            (module.trim().to_owned(), targets)
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every source file with its top-level module (`src/recovery/tap.rs` -> `recovery`).
fn sources() -> Vec<(String, PathBuf, String)> {
    let src = repo_path("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let rel = path.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            let module = rel.split('/').next().unwrap().trim_end_matches(".rs").to_owned();
            (module != "lib" && module != "main").then(|| {
                let text = std::fs::read_to_string(&path).unwrap();
                (module, path, text)
            })
        })
        .collect()
}

/// The code of a file without its comments (doc comments name modules freely).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a file names through `crate::` (`crate::a::…`, `crate::{a, b::…}`).
fn imports(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| {
        s.trim()
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(inner.split(',').map(ident).filter(|m| !m.is_empty()));
        } else {
            let m = ident(rest);
            if !m.is_empty() {
                out.insert(m);
            }
        }
    }
    out
}

#[test]
fn every_import_is_an_arrow_architecture_md_allows() {
    let allowed = allowed();
    let mut violations = Vec::new();
    let mut modules = BTreeSet::new();
    for (module, path, text) in sources() {
        modules.insert(module.clone());
        let Some(ok) = allowed.get(&module) else {
            violations.push(format!(
                "{}: module `{module}` is not in ARCHITECTURE.md's code map",
                path.display()
            ));
            continue;
        };
        for target in imports(&code(&text)) {
            if target != module && !ok.contains(&target) {
                violations.push(format!("{}: `{module}` imports `{target}`", path.display()));
            }
        }
    }
    for listed in allowed.keys() {
        if !modules.contains(listed) {
            violations.push(format!("ARCHITECTURE.md lists `{listed}`, which src/ does not have"));
        }
    }
    assert!(
        violations.is_empty(),
        "arrows ARCHITECTURE.md does not allow:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_grouped_and_plain_paths_and_ignores_comments() {
    let text = "use crate::{audit::X, graph};\n// crate::host is only named here\nlet a = crate::storage::f();";
    let found = imports(&code(text));
    assert_eq!(
        found,
        ["audit", "graph", "storage"].into_iter().map(str::to_owned).collect()
    );
}

const DOMAIN: [&str; 4] = ["recovery", "intake", "sweep", "audit"];
const ADAPTERS: [&str; 6] = ["graph", "storage", "secrets", "delivery", "itsm", "auth"];

#[test]
fn the_domain_knows_no_http() {
    let mut violations = Vec::new();
    for (module, path, text) in sources() {
        if !DOMAIN.contains(&module.as_str()) {
            continue;
        }
        let code = code(&text);
        for word in ["axum", "StatusCode", "http_status", ".status()", "reqwest"] {
            if code.contains(word) {
                violations.push(format!("{}: names `{word}`", path.display()));
            }
        }
    }
    assert!(violations.is_empty(), "HTTP in the domain:\n{}", violations.join("\n"));
}

#[test]
fn no_adapter_imports_another_adapter() {
    let allowed = allowed();
    for adapter in ADAPTERS {
        let others: Vec<&&str> = ADAPTERS.iter().filter(|a| **a != adapter).collect();
        let bad: Vec<_> = allowed[adapter]
            .iter()
            .filter(|t| others.iter().any(|o| **o == t.as_str()))
            .collect();
        assert!(bad.is_empty(), "ARCHITECTURE.md lets `{adapter}` import {bad:?}");
    }
}

#[test]
fn only_config_reads_the_environment() {
    let mut violations = Vec::new();
    for (module, path, text) in sources() {
        if module == "config" {
            continue;
        }
        let code = code(&text);
        for word in ["env::var(", "env::vars(", "env::var_os("] {
            if code.contains(word) {
                violations.push(format!("{}: `{word}`", path.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "environment read outside config:\n{}",
        violations.join("\n")
    );
}

/// Functions longer than this are split into named steps, except the ones ARCHITECTURE.md lists
/// (text templates).
const MAX_FUNCTION_LINES: usize = 100;

#[test]
fn no_function_is_longer_than_a_screenful() {
    let doc = std::fs::read_to_string(repo_path("ARCHITECTURE.md")).unwrap();
    let mut long = Vec::new();
    for (_, path, text) in sources() {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let indent = &line[..line.len() - trimmed.len()];
            let is_fn = [
                "fn ",
                "async fn ",
                "pub fn ",
                "pub async fn ",
                "pub(crate) fn ",
                "pub(crate) async fn ",
            ]
            .iter()
            .any(|p| trimmed.starts_with(p));
            if !is_fn {
                continue;
            }
            let name = trimmed.split("fn ").nth(1).unwrap().split(['(', '<']).next().unwrap();
            let Some(end) = lines[i + 1..].iter().position(|l| *l == format!("{indent}}}")) else {
                continue;
            };
            let length = end + 2;
            if length > MAX_FUNCTION_LINES && !doc.contains(&format!("`{name}`")) {
                long.push(format!("{}: {name} is {length} lines", path.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "split these into named steps (or explain them in ARCHITECTURE.md):\n{}",
        long.join("\n")
    );
}
