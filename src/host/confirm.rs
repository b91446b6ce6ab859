//! `/api/confirm/{id}`: the page a user opens from a confirmation link, and their answer.
//!
//! `GET` serves the page, the same for every id: it reads and changes nothing (mail scanners and
//! Safe Links open links). Its own script (`/api/console/confirm.js`, `script-src 'self'`) reads
//! the secret from the URL's fragment, which the browser never sends, and posts `open`: the answer
//! (`200 {"status": "opened", "page"}`) carries who is asking, for what and when, shown with two
//! buttons; then `confirm` or `not_me`, answered `200 {"status"}`. Every answer that cannot be
//! taken gets one neutral `404 link_unusable`. Anonymous: the secret is the proof.

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
fn secured(response: Response) -> Response {
    crate::host::console::hardened(
        response,
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    )
}

/// `GET /api/confirm/{id}`: the page, the same for every id: it reads nothing, so it tells
/// nothing to whoever holds only the id (request logs, a link-scanning service) and takes no
/// time that depends on it. Its script proves the secret (`open`) and shows what the answer
/// carries: who asks, for what, when.
pub(crate) async fn page() -> Response {
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
<h1 id="title">Is it you?</h1>
<p id="nojs">This page needs JavaScript to show the request and send your answer.</p>
<div id="details" hidden>
<p id="asks"></p>
<dl id="facts"></dl>
<p id="question"></p>
</div>
<div class="buttons" id="buttons" hidden>
<button type="button" id="confirm">Yes, it is me</button>
<button type="button" id="not-me" class="danger">This is not me</button>
</div>
<div id="result" role="status" aria-live="polite" tabindex="-1"></div>
<noscript><p>{NEUTRAL}</p></noscript>
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
            let body = json!({"error": {"code": crate::vocab::Fault::VerificationUnavailable.as_str(), "message": "The service cannot take your answer now. Try again in a few minutes."}});
            return secured((StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response());
        }
    };
    let Some((answered, record)) = answered else {
        let body = json!({"error": {"code": crate::vocab::Refusal::LinkUnusable.as_str(), "message": NEUTRAL}});
        return secured((StatusCode::NOT_FOUND, Json(body)).into_response());
    };
    if answered == Answered::Opened {
        let page = crate::recovery::verify::ConfirmPage::of(&record);
        return secured(Json(json!({"status": "opened", "page": page})).into_response());
    }
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
