//! The helpdesk console (`GET /api/console/…`, docs/console.md): static files embedded in the
//! binary, served anonymously with a strict Content-Security-Policy (no inline script, no
//! framing, connections only to this origin and the sign-in authority). The page holds no data of
//! its own: it signs the agent in with MSAL for the browser (authorization code with PKCE) and
//! calls the API with the agent's token, which MSAL keeps in session storage, never local storage.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use crate::host::AppState;

/// One embedded file: its name under `/api/console/`, type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../console/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../console/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../console/app.css"),
    },
    // The confirmation page's script and style (`host::confirm`).
    Asset {
        name: "confirm.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../console/confirm.js"),
    },
    Asset {
        name: "confirm.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../console/confirm.css"),
    },
    // MSAL for the browser, the npm package's UMD build (package.json pins it; a test holds this
    // copy to it).
    Asset {
        name: "msal-browser.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../console/msal-browser.min.js"),
    },
];

/// `GET /api/console`: the page lives at `/api/console/` (its files are relative to it).
pub async fn root() -> Response {
    Redirect::permanent("/api/console/").into_response()
}

/// `GET /api/console/` (the page).
pub async fn index(State(state): State<AppState>) -> Response {
    serve(&state, "")
}

/// `GET /api/console/{file}`: the page's files and `config.json`.
pub async fn file(State(state): State<AppState>, Path(path): Path<String>, headers: HeaderMap) -> Response {
    if path == "config.json" {
        return config(&state, &headers);
    }
    serve(&state, &path)
}

fn serve(state: &AppState, name: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return secured(
            state,
            (
                StatusCode::NOT_FOUND,
                Json(json!({"error": {"code": "not_found", "message": "no such file in the console"}})),
            )
                .into_response(),
        );
    };
    let mut response = (StatusCode::OK, asset.body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    secured(state, response)
}

/// The origin MSAL talks to for sign-in (the authority's scheme, host and port).
fn authority_origin(state: &AppState) -> String {
    state.settings.auth.authority.origin().ascii_serialization()
}

/// The console's security headers: a CSP allowing only this origin's scripts and styles and
/// connections to this origin and the authority; no framing; no referrer; no caching.
pub(crate) fn secured(state: &AppState, response: Response) -> Response {
    // The sweep report is shown in a sandboxed frame from a `blob:` URL, which inherits this
    // policy: its one inline style sheet is allowed by its hash, nothing else inline.
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self' {}; img-src 'self' data:; connect-src 'self' {}; frame-src {} blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        crate::sweep::report::report_style_hash(),
        authority_origin(state),
        authority_origin(state),
    );
    hardened(response, &csp)
}

/// A page's security headers: `csp`, and never sniffed, framed, referred, cached or shared with
/// another window (the console's and the confirmation page's).
pub(crate) fn hardened(mut response: Response, csp: &str) -> Response {
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    response
}

/// `GET /api/console/config.json`: what MSAL needs (the API's registration, the authority, the
/// scope). No secret: all of it is in any token the API accepts. When the authority is the local
/// simulated tenant (plain http on loopback, which MSAL refuses as an authority), MSAL is given
/// an https name for it and the tenant's real endpoints as `authorityMetadata`, so it never looks
/// the name up and every request goes to the simulator.
fn config(state: &AppState, headers: &HeaderMap) -> Response {
    let auth = &state.settings.auth;
    let (Some(client_id), Some(tenant), Some(audience)) =
        (auth.client_id.as_ref(), auth.tenant_id, auth.audience.as_ref())
    else {
        return secured(
            state,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": {
                    "code": "console_not_configured",
                    "message": "the console needs AUTH_CLIENT_ID (the API's application id, which the templates set) and AUTH_TENANT_ID",
                }})),
            )
                .into_response(),
        );
    };
    let base = auth.authority.as_str().trim_end_matches('/');
    let mut body = json!({
        "clientId": client_id,
        "authority": format!("{base}/{tenant}"),
        "scopes": [format!("{}/{}", audience.trim_end_matches('/'), auth.scope)],
        "redirectUri": redirect_uri(state, headers),
    });
    if auth.authority.scheme() == "http" {
        let host = auth.authority.host_str().unwrap_or("localhost");
        let port = auth.authority.port().map(|p| format!(":{p}")).unwrap_or_default();
        body["authority"] = json!(format!("https://{host}{port}/{tenant}"));
        body["knownAuthorities"] = json!([format!("{host}{port}")]);
        body["authorityMetadata"] = json!(
            json!({
                "issuer": format!("{base}/{tenant}/v2.0"),
                "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
                "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
                "end_session_endpoint": format!("{base}/{tenant}/oauth2/v2.0/logout"),
                "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
            })
            .to_string()
        );
    }
    secured(state, Json(body).into_response())
}

/// The page's own URL, as the SPA redirect URI the templates register: `CONSOLE_URL` (by default
/// from the platform's `WEBSITE_HOSTNAME`), never a header a client chose; without either (a
/// bare local run), the loopback address the browser used.
fn redirect_uri(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.settings.tap.approval.console_url {
        let mut url = url.clone();
        url.set_fragment(None);
        return url.to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            let name = h.rsplit_once(':').map_or(*h, |(name, _)| name);
            matches!(name, "127.0.0.1" | "localhost" | "[::1]")
        })
        .unwrap_or("localhost");
    format!("http://{host}/api/console/")
}
