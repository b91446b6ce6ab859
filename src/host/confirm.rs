//! `/api/confirm/{id}`: the page a user opens from a confirmation link, and their answer.
//!
//! `GET` serves the page: who is asking, for what, when, and two buttons. It changes nothing
//! (mail scanners and Safe Links open links) and says one neutral thing for an unknown, used or
//! expired link. Its own script (`/api/console/confirm.js`, `script-src 'self'`) reads the secret
//! from the URL's fragment, which the browser never sends, and posts the answer: `POST` with
//! `{"secret", "decision": "open" | "confirm" | "not_me"}`, answered `200 {"status"}`, or one
//! neutral `404` for every answer that cannot be taken. Anonymous: the secret is the proof.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::host::AppState;
use crate::recovery::verify::Answered;

/// What every link that cannot be answered gets, on the page and from `POST`.
const NEUTRAL: &str = "This link cannot be used: it may have expired or been answered already. If you did not expect it, contact your IT service desk.";

/// The page's own headers: its script and style from this origin, its answers to this origin,
/// nothing else; never framed, cached or referred.
fn secured(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    response
}

fn esc(value: &str) -> String {
    crate::sweep::report::html_escape(value)
}

/// `GET /api/confirm/{id}`: the page. Reads only.
pub(crate) async fn page(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let shown = state.tap_context().confirm_page(&id).await;
    let main = match shown {
        Ok(Some(p)) => {
            let who = p.agent.as_deref().map_or_else(
                || "Your IT service desk".to_owned(),
                |a| format!("{} (IT service desk)", esc(a)),
            );
            let ticket = p
                .ticket
                .as_deref()
                .map_or_else(String::new, |t| format!("<dt>Ticket</dt><dd>{}</dd>", esc(t)));
            let (when, question, yes) = match p.confirmed_at {
                None => (
                    format!(
                        "<dt>Answer before</dt><dd><time datetime=\"{0}\">{0} UTC</time></dd>",
                        crate::audit::rfc3339_millis(p.expires_at)
                    ),
                    "Answer only if you are talking to your IT service desk right now, because you asked them for help.",
                    r#"<button type="button" id="confirm">Yes, it is me</button>"#,
                ),
                Some(at) => (
                    format!(
                        "<dt>Confirmed at</dt><dd><time datetime=\"{0}\">{0} UTC</time></dd>",
                        crate::audit::rfc3339_millis(at)
                    ),
                    "Someone confirmed this already. If that was not you, say so now: nothing more will be done and your IT security team is alerted.",
                    "",
                ),
            };
            format!(
                r#"<h1 id="title">Is it you?</h1>
<p>{who} asks to {action}.</p>
<dl><dt>Asked at</dt><dd><time datetime="{asked}">{asked} UTC</time></dd>{ticket}{when}</dl>
<p>{question}</p>
<div class="buttons" id="buttons" hidden>
{yes}
<button type="button" id="not-me" class="danger">This is not me</button>
</div>
<p id="nojs">This page needs JavaScript to send your answer.</p>"#,
                action = esc(p.action),
                asked = crate::audit::rfc3339_millis(p.asked_at),
            )
        }
        Ok(None) => format!(r#"<h1 id="title">Confirmation</h1><p>{NEUTRAL}</p>"#),
        Err(_) => {
            r#"<h1 id="title">Confirmation</h1><p>The service cannot answer now. Try again in a few minutes.</p>"#
                .to_owned()
        }
    };
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Is it you? · IT service desk</title>
<link rel="stylesheet" href="/api/console/confirm.css">
<script src="/api/console/confirm.js" defer></script>
</head>
<body>
<main aria-labelledby="title">
{main}
<div id="result" role="status" aria-live="polite" tabindex="-1"></div>
</main>
</body>
</html>
"#
    );
    let mut response = (StatusCode::OK, html).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secured(response)
}

/// `POST /api/confirm/{id}`: the user's answer.
pub(crate) async fn answer(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let context = state.tap_context();
    let answered = match context.answer_link(&id, &body).await {
        Ok(answered) => answered,
        Err(e) => {
            tracing::error!(error = %e.message, "a confirmation link's answer could not be taken");
            let body = json!({"error": {"code": "unavailable", "message": "The service cannot take your answer now. Try again in a few minutes."}});
            return secured((StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response());
        }
    };
    let Some((answered, record)) = answered else {
        let body = json!({"error": {"code": crate::vocab::Refusal::LinkUnusable.as_str(), "message": NEUTRAL}});
        return secured((StatusCode::NOT_FOUND, Json(body)).into_response());
    };
    let status = match answered {
        Answered::Opened => "opened",
        Answered::Verified => "verified",
        Answered::Repudiated => {
            crate::intake::call::repudiated(state.intake.as_deref(), &context, &record).await;
            "repudiated"
        }
    };
    if answered != Answered::Opened {
        crate::intake::call::link_answered(state.intake.as_deref(), &context, record.id, answered).await;
    }
    tracing::info!(verification_id = %record.id, status, "a confirmation link was answered");
    secured(Json(json!({"status": status})).into_response())
}
