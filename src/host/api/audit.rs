//! `GET /api/audit`: the trail queried (JSON or CSV), with Entra's own events on request.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::json;
use time::OffsetDateTime;

use crate::audit::{AuditFilter, AuditRecord, Phase};
use crate::host::AppState;
use crate::host::error::ApiError;
use crate::vocab::CallerRecord;

use super::caller::*;

/// Largest page of `GET /api/audit`, and the widest time range one query may scan.
const MAX_PAGE: usize = 1000;

const MAX_RANGE_DAYS: i64 = 31;

fn parse_time(name: &str, value: &str) -> Result<OffsetDateTime, ApiError> {
    let rfc = &time::format_description::well_known::Rfc3339;
    OffsetDateTime::parse(value, rfc)
        .or_else(|_| {
            time::Date::parse(value, time::macros::format_description!("[year]-[month]-[day]"))
                .map(|d| d.midnight().assume_utc())
        })
        .map_err(|_| ApiError::BadRequest(format!("{name} must be an RFC 3339 time or a YYYY-MM-DD date")))
}

/// The opaque continuation token: where the previous page ended (the order key of its last record).
fn continuation_of(r: &AuditRecord) -> String {
    let (time, chain, seq) = r.order_key();
    B64.encode(format!("{time}|{chain}|{seq}"))
}

fn parse_continuation(token: &str) -> Result<(String, String, u64), ApiError> {
    let bad = || ApiError::BadRequest("continuation is not a token this API returned".into());
    let raw = String::from_utf8(B64.decode(token).map_err(|_| bad())?).map_err(|_| bad())?;
    let mut parts = raw.splitn(3, '|');
    let (time, chain, seq) = (
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
    );
    Ok((time.to_owned(), chain.to_owned(), seq.parse().map_err(|_| bad())?))
}

/// `GET /api/audit?user=&ticket=&action=&outcome=&from=&to=&pageSize=&continuation=`
///
/// JSON by default, CSV with `Accept: text/csv`. Requires `Audit.Read`; each query is itself
/// recorded (`audit.query`).
pub async fn audit(
    State(state): State<AppState>,
    who: Authorized<QueryTrail>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let caller = who.caller;
    let AuditQuery {
        filter,
        include_entra,
        page_size,
        after,
    } = parse_audit_query(&q)?;
    let (from, to) = (filter.from, filter.to);
    let entra = match (include_entra, filter.user.as_deref()) {
        (true, Some(user)) => Some(
            state
                .tap_context()
                .entra_method_events(user, from, to)
                .await
                .map_err(ApiError::EntraAudit)?,
        ),
        _ => None,
    };
    let read = state
        .audit
        .read_page(CallerRecord::from(&caller), &filter, after, page_size)
        .await
        .map_err(ApiError::AuditUnavailable)?;
    let page = read.records;
    let next = read.more.then(|| page.last().map(continuation_of)).flatten();
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/csv"));
    if wants_csv {
        let mut response = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], to_csv(&page)).into_response();
        if let Some(next) = next.and_then(|n| HeaderValue::from_str(&n).ok()) {
            response.headers_mut().insert("x-continuation", next);
        }
        return Ok(response);
    }
    let mut body = json!({"value": page, "count": page.len()});
    if let Some(entra) = entra {
        body["entra"] = json!(entra);
    }
    if let Some(next) = next {
        body["continuation"] = json!(next);
    }
    Ok(Json(body).into_response())
}

/// A parsed `GET /api/audit` query.
struct AuditQuery {
    filter: AuditFilter,
    include_entra: bool,
    page_size: usize,
    /// The continuation: the order key of the last record already returned.
    after: Option<(String, String, u64)>,
}

/// Check and parse the audit query string; every bad parameter is a 400 that names it.
fn parse_audit_query(q: &HashMap<String, String>) -> Result<AuditQuery, ApiError> {
    const KNOWN: [&str; 9] = [
        "user",
        "ticket",
        "action",
        "outcome",
        "from",
        "to",
        "pageSize",
        "continuation",
        "includeEntra",
    ];
    if let Some(unknown) = q.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "unknown query parameter '{unknown}'; use {}",
            KNOWN.join(", ")
        )));
    }
    let include_entra = match q.get("includeEntra").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::BadRequest("includeEntra must be true or false".into())),
    };
    if include_entra && !q.contains_key("user") {
        return Err(ApiError::BadRequest(
            "includeEntra=true needs user (an object id or UPN)".into(),
        ));
    }
    let now = OffsetDateTime::now_utc();
    let to = q.get("to").map(|v| parse_time("to", v)).transpose()?.unwrap_or(now);
    let from = q
        .get("from")
        .map(|v| parse_time("from", v))
        .transpose()?
        .unwrap_or(to - time::Duration::days(7));
    if from > to {
        return Err(ApiError::BadRequest("from must not be after to".into()));
    }
    if to - from > time::Duration::days(MAX_RANGE_DAYS) {
        return Err(ApiError::BadRequest(format!(
            "from and to may be at most {MAX_RANGE_DAYS} days apart"
        )));
    }
    if let Some(o) = q.get("outcome")
        && !["succeeded", "refused", "failed"].contains(&o.as_str())
    {
        return Err(ApiError::BadRequest(
            "outcome must be succeeded, refused or failed".into(),
        ));
    }
    let page_size = match q.get("pageSize") {
        None => 100,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| ApiError::BadRequest(format!("pageSize must be 1 to {MAX_PAGE}")))?,
    };
    let after = q.get("continuation").map(|c| parse_continuation(c)).transpose()?;
    let filter = AuditFilter {
        from,
        to,
        user: q.get("user").cloned(),
        ticket: q.get("ticket").cloned(),
        action: q.get("action").cloned(),
        outcome: q.get("outcome").cloned(),
    };
    Ok(AuditQuery {
        filter,
        include_entra,
        page_size,
        after,
    })
}

/// One CSV cell: quoted when needed, and defused when a spreadsheet would run it as a formula.
fn cell(value: &str) -> String {
    crate::vocab::csv::field(value, crate::vocab::csv::Quote::WhenNeeded)
}

fn to_csv(records: &[AuditRecord]) -> String {
    let mut out = String::from(
        "time,id,phase,action,outcome,code,callerVia,callerAppId,callerObjectId,callerName,sourceIp,targetObjectId,targetUpn,ticketSystem,ticketId,requestId,details,chain,seq,hash\r\n",
    );
    for r in records {
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        let phase = match r.phase {
            Phase::Intent => "intent",
            Phase::Outcome => "outcome",
        };
        let row = [
            r.time.clone(),
            r.id.to_string(),
            phase.into(),
            r.action.clone(),
            r.outcome.as_ref().map(|x| x.name().to_owned()).unwrap_or_default(),
            r.outcome
                .as_ref()
                .and_then(|x| x.code().map(str::to_owned))
                .unwrap_or_default(),
            r.caller.via.clone(),
            o(&r.caller.app_id),
            o(&r.caller.object_id),
            o(&r.caller.name),
            o(&r.caller.source_ip),
            r.target.as_ref().map(|t| o(&t.object_id)).unwrap_or_default(),
            r.target.as_ref().map(|t| o(&t.upn)).unwrap_or_default(),
            r.ticket.as_ref().map(|t| t.system.clone()).unwrap_or_default(),
            r.ticket.as_ref().map(|t| t.id.clone()).unwrap_or_default(),
            r.request_id.map(|i| i.to_string()).unwrap_or_default(),
            r.details.to_string(),
            r.chain.clone(),
            r.seq.to_string(),
            r.hash.clone(),
        ];
        out.push_str(&row.iter().map(|v| cell(v)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(\"http://x\")"), "\"'=HYPERLINK(\"\"http://x\"\")\"");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
    }
}
