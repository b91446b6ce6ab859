//! The reports of a finished run: JSON (for machines), CSV (for Excel) and a self-contained HTML
//! page (summary, charts of risk and method coverage, tenant findings, at-risk users by risk).
//! Written by streaming the per-page files once per risk level, so memory does not grow with the
//! tenant.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::classify::{AtRiskLine, Finding, Risk, describe};
use super::{Checkpoint, Totals};
use crate::storage::StorageError;
use crate::storage::reports::ReportStore;

fn rfc3339(t: Option<time::OffsetDateTime>) -> String {
    t.and_then(|t| {
        t.replace_nanosecond(0)
            .unwrap_or(t)
            .format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_default()
}

/// The run's summary (`latest.json`, `GET /api/sweeps/latest`, the head of `report.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub run_id: String,
    pub started_at: String,
    pub finished_at: String,
    pub pages: u32,
    pub invocations: u32,
    pub graph_requests: u64,
    pub nudged: u32,
    pub totals: Totals,
    pub at_risk: u64,
    pub findings: Vec<Finding>,
    /// Where the reports are in the store.
    pub files: Files,
    /// The run before, and what changed since (`latest.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<HistoryEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// Where the API serves the reports (`GET /api/sweeps/latest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<Files>,
}

/// The three reports of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Files {
    pub json: String,
    pub csv: String,
    pub html: String,
}

/// One line of `history.json`: when, who started it, and the counts a trend needs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HistoryEntry {
    pub run_id: String,
    pub started_at: String,
    pub finished_at: String,
    pub trigger: String,
    pub users: u64,
    pub members: u64,
    pub at_risk: u64,
    pub by_risk: BTreeMap<String, u64>,
    pub excluded: BTreeMap<String, u64>,
    /// What changed from the run before (`GET /api/sweeps/history`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
}

/// What changed between two runs: at-risk users overall and per risk level.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub since: String,
    pub at_risk: i64,
    pub by_risk: BTreeMap<String, i64>,
}

/// The run's summary.
pub fn summary(c: &Checkpoint) -> RunSummary {
    let base = format!("runs/{}", c.run_id);
    RunSummary {
        run_id: c.run_id.clone(),
        started_at: rfc3339(Some(c.started_at)),
        finished_at: rfc3339(c.finished_at),
        pages: c.pages,
        invocations: c.invocations,
        graph_requests: c.requests,
        nudged: c.nudged,
        totals: c.totals.clone(),
        at_risk: c.totals.at_risk(),
        findings: c.findings.clone(),
        files: Files {
            json: format!("{base}/report.json"),
            csv: format!("{base}/report.csv"),
            html: format!("{base}/report.html"),
        },
        previous: None,
        change: None,
        links: None,
    }
}

/// The run's line of `history.json`.
pub(crate) fn history_entry(c: &Checkpoint, via: &str) -> HistoryEntry {
    HistoryEntry {
        run_id: c.run_id.clone(),
        started_at: rfc3339(Some(c.started_at)),
        finished_at: rfc3339(c.finished_at),
        trigger: via.to_owned(),
        users: c.totals.users,
        members: c.totals.members,
        at_risk: c.totals.at_risk(),
        by_risk: c.totals.by_risk.clone(),
        excluded: c.totals.excluded.clone(),
        change: None,
    }
}

/// What changed between two history entries.
pub fn change(previous: &HistoryEntry, current: &HistoryEntry) -> Change {
    let n = |e: &HistoryEntry, key: &str| e.by_risk.get(key).copied().unwrap_or(0) as i64;
    Change {
        since: previous.run_id.clone(),
        at_risk: current.at_risk as i64 - previous.at_risk as i64,
        by_risk: Risk::AT_RISK
            .iter()
            .map(|level| {
                (
                    level.as_str().to_owned(),
                    n(current, level.as_str()) - n(previous, level.as_str()),
                )
            })
            .collect(),
    }
}

/// A CSV field: quoted, and a leading `= + - @` defused so Excel does not run it as a formula.
pub(crate) fn csv_field(value: &str) -> String {
    crate::vocab::csv::field(value, crate::vocab::csv::Quote::Always)
}

pub(crate) fn html_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Write the three reports and return the summary.
///
/// # Errors
/// Storage failed.
pub async fn write(store: &dyn ReportStore, c: &Checkpoint, html_max_rows: u32) -> Result<RunSummary, StorageError> {
    let summary = summary(c);
    let base = format!("runs/{}", c.run_id);
    let mut json_file = store.open(&format!("{base}/report.json")).await?;
    let mut csv = store.open(&format!("{base}/report.csv")).await?;
    let mut html = store.open(&format!("{base}/report.html")).await?;
    let head = serde_json::to_string(&summary).expect("serializes");
    json_file
        .write(format!("{},\"atRiskUsers\":[", &head[..head.len() - 1]).as_bytes())
        .await?;
    csv.write(b"risk,userPrincipalName,displayName,id,accountEnabled,isAdmin,keyUser,methods,reasons\r\n")
        .await?;
    html.write(html_head(c).as_bytes()).await?;
    let mut first = true;
    let mut shown = 0u32;
    for level in Risk::AT_RISK {
        for page in 0..c.pages {
            let Some(data) = store.get(&super::page_name(&c.run_id, page)).await? else {
                continue;
            };
            for line in data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let Ok(row) = serde_json::from_slice::<AtRiskLine>(line) else {
                    continue;
                };
                if row.risk != level {
                    continue;
                }
                if !first {
                    json_file.write(b",").await?;
                }
                first = false;
                json_file.write(line).await?;
                let methods = row.methods.join(";");
                let reasons = &row.reasons;
                let display_name = row.display_name.clone().unwrap_or_default();
                let record = [
                    level.as_str().to_owned(),
                    row.user_principal_name.clone(),
                    display_name.clone(),
                    row.id.clone(),
                    row.account_enabled.to_string(),
                    row.is_admin.to_string(),
                    row.key_user.to_string(),
                    methods.clone(),
                    // Each reason on its own line (a line break inside the quoted field).
                    reasons.iter().map(|r| describe(r)).collect::<Vec<_>>().join("\n"),
                ]
                .iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(",");
                csv.write(format!("{record}\r\n").as_bytes()).await?;
                if shown < html_max_rows {
                    shown += 1;
                    let why: String = reasons
                        .iter()
                        .map(|r| format!("<li>{}</li>", html_escape(describe(r))))
                        .collect();
                    html.write(
                        format!(
                            "<tr class=\"risk-{0}\"><td><span class=\"pill {0}\">{0}</span></td><td>{1}</td><td>{2}</td><td><ul class=\"why\">{3}</ul></td><td>{4}</td></tr>\n",
                            level.as_str(),
                            html_escape(&row.user_principal_name),
                            html_escape(&display_name),
                            why,
                            html_escape(&methods.replace(';', ", ")),
                        )
                        .as_bytes(),
                    )
                    .await?;
                }
            }
        }
    }
    json_file.write(b"]}").await?;
    let more = c.totals.at_risk().saturating_sub(u64::from(shown));
    html.write(html_tail(more).as_bytes()).await?;
    json_file.finish().await?;
    csv.finish().await?;
    html.finish().await?;
    Ok(summary)
}

/// Horizontal bars as inline SVG: (label, value, colour), scaled to `of`.
fn bars(id: &str, title: &str, rows: &[(String, u64, &str)], of: u64) -> String {
    let height = 26 * rows.len() + 10;
    let mut svg = format!(
        "<figure id=\"{id}\"><figcaption>{}</figcaption><svg role=\"img\" aria-label=\"{}\" viewBox=\"0 0 640 {height}\" width=\"100%\">",
        html_escape(title),
        html_escape(title)
    );
    for (i, (label, value, colour)) in rows.iter().enumerate() {
        let y = 5 + i * 26;
        let width = if of == 0 {
            0.0
        } else {
            380.0 * (*value as f64) / (of as f64)
        };
        let pct = if of == 0 {
            0.0
        } else {
            100.0 * (*value as f64) / (of as f64)
        };
        svg.push_str(&format!(
            "<text x=\"0\" y=\"{ty}\" font-size=\"13\">{label}</text><rect x=\"230\" y=\"{y}\" width=\"{width:.1}\" height=\"18\" rx=\"3\" fill=\"{colour}\"/><text x=\"{tx:.1}\" y=\"{ty}\" font-size=\"12\">{value} ({pct:.1}%)</text>",
            ty = y + 14,
            label = html_escape(label),
            tx = 236.0 + width,
        ));
    }
    svg.push_str("</svg></figure>");
    svg
}

/// The report's only style sheet, inline so the file stands alone. The console shows the report
/// in a frame under its CSP, which allows exactly this text by its hash (`report_style_hash`).
pub(crate) const REPORT_CSS: &str = r#"
body{font-family:"Segoe UI",system-ui,sans-serif;margin:2rem;color:#242424;background:#fafafa}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.2rem;margin-top:2rem}
.meta{color:#616161} .cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:1.2rem 0}
.card{background:#fff;border:1px solid #e0e0e0;border-radius:8px;padding:.8rem 1rem;min-width:9rem}
.card .value{font-size:1.8rem;font-weight:600} .card .label{color:#616161}
.card.warn .value{color:#d83b01} .card.critical .value{color:#a4262c} .card.high .value{color:#d83b01} .card.medium .value{color:#8a6d00}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:1.5rem}
figure{background:#fff;border:1px solid #e0e0e0;border-radius:8px;padding:1rem;margin:0} figcaption{font-weight:600;margin-bottom:.5rem}
table{border-collapse:collapse;width:100%;background:#fff} th,td{border-bottom:1px solid #e0e0e0;padding:.45rem .6rem;text-align:left;vertical-align:top}
th{background:#f0f0f0} .pill{border-radius:10px;padding:.1rem .5rem;color:#fff;font-size:.8rem;text-transform:uppercase}
.pill.critical,.pill.high{background:#a4262c} .pill.high{background:#d83b01} .pill.medium{background:#8a6d00} .pill.low,.pill.info{background:#0f6cbd}
ul.why{margin:0;padding-left:1.1rem} .changes{color:#616161}
"#;

/// `'sha256-…'` of `REPORT_CSS`, for a Content-Security-Policy `style-src`.
pub(crate) fn report_style_hash() -> String {
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(REPORT_CSS.as_bytes());
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
}

fn html_head(c: &Checkpoint) -> String {
    let t = &c.totals;
    let risk = |r: Risk| t.by_risk.get(r.as_str()).copied().unwrap_or(0);
    let card = |id: &str, label: &str, value: String, tone: &str| {
        format!(
            "<div class=\"card {tone}\"><div class=\"value\" id=\"{id}\">{value}</div><div class=\"label\">{label}</div></div>"
        )
    };
    let pct = |n: u64| {
        if t.members == 0 {
            "0%".to_owned()
        } else {
            format!("{:.0}%", 100.0 * n as f64 / t.members as f64)
        }
    };
    let cards = [
        card("summary-users", "users scanned", t.users.to_string(), ""),
        card("summary-members", "members assessed", t.members.to_string(), ""),
        card(
            "summary-excluded",
            "not assessed (disabled, excluded groups, the service mailbox)",
            t.excluded.values().sum::<u64>().to_string(),
            "",
        ),
        card("summary-at-risk", "at risk of lockout", t.at_risk().to_string(), "warn"),
        card(
            "summary-critical",
            "critical",
            risk(Risk::Critical).to_string(),
            "critical",
        ),
        card("summary-high", "high", risk(Risk::High).to_string(), "high"),
        card("summary-medium", "medium", risk(Risk::Medium).to_string(), "medium"),
        card("summary-mfa", "MFA registered", pct(t.mfa_registered), ""),
        card(
            "summary-phishing-resistant",
            "phishing-resistant",
            pct(t.phishing_resistant),
            "",
        ),
    ]
    .join("");
    let risk_rows: Vec<(String, u64, &str)> = vec![
        ("critical".into(), risk(Risk::Critical), "#a4262c"),
        ("high".into(), risk(Risk::High), "#d83b01"),
        ("medium".into(), risk(Risk::Medium), "#c19c00"),
        ("no risk found".into(), risk(Risk::None), "#107c10"),
    ];
    let mut methods: Vec<(&String, &u64)> = t.methods.iter().collect();
    methods.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let method_rows: Vec<(String, u64, &str)> = methods
        .into_iter()
        .take(12)
        .map(|(m, n)| (m.clone(), *n, "#0f6cbd"))
        .collect();
    let findings: String = c
        .findings
        .iter()
        .map(|f| {
            format!(
                "<tr><td><span class=\"pill {0}\">{0}</span></td><td><strong>{1}</strong><br>{2}</td><td>{3}</td></tr>",
                html_escape(&f.severity),
                html_escape(&f.title),
                html_escape(&f.detail),
                html_escape(&f.fix)
            )
        })
        .collect();
    let reasons: String = t
        .by_reason
        .iter()
        .map(|(r, n)| format!("<li>{}: <strong>{n}</strong></li>", html_escape(describe(r))))
        .collect();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>MFA lockout risk: sweep {run}</title>
<style>{css}</style></head><body>
<h1>Who would be locked out by losing one device?</h1>
<p class="meta">Sweep <span id="run-id">{run}</span>, started {started}, finished {finished}. Source: Microsoft Graph <code>userRegistrationDetails</code> (may lag a few hours).</p>
<div class="cards">{cards}</div>
<div class="charts">{risk_chart}{method_chart}</div>
<h2>Tenant findings</h2>
<table id="findings"><thead><tr><th>Severity</th><th>Finding</th><th>Fix</th></tr></thead><tbody>{findings}</tbody></table>
<h2>Why users are at risk</h2><ul id="reasons">{reasons}</ul>
<p>Each at-risk user should add a second method at <a href="https://mysignins.microsoft.com/security-info">https://mysignins.microsoft.com/security-info</a> and turn on Microsoft Authenticator cloud backup.</p>
<h2>At-risk users, by risk</h2>
<table id="users"><thead><tr><th>Risk</th><th>User</th><th>Name</th><th>Why</th><th>Methods registered</th></tr></thead><tbody>
"#,
        css = REPORT_CSS,
        run = html_escape(&c.run_id),
        started = rfc3339(Some(c.started_at)),
        finished = rfc3339(c.finished_at),
        risk_chart = bars("chart-risk", "Risk distribution (members)", &risk_rows, t.members),
        method_chart = bars(
            "chart-methods",
            "Method coverage (members with each method)",
            &method_rows,
            t.members
        ),
    )
}

fn html_tail(more: u64) -> String {
    let note = if more > 0 {
        format!("<p id=\"more\">{more} more at-risk users are in the CSV and JSON reports.</p>")
    } else {
        String::new()
    };
    format!("</tbody></table>{note}<p class=\"meta\">Generated by mfa-recovery.</p></body></html>\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_defuses_formulas_and_quotes() {
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("plain"), "\"plain\"");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(html_escape("<b a='1'>&"), "&lt;b a=&#39;1&#39;&gt;&amp;");
    }
}
