//! Every HTTP endpoint of the function set, each with the function of `functions::FUNCTIONS` it
//! belongs to. The router is built from this table, and the tests hold it against each
//! `function.json` and the OpenAPI document (no reading of source text).

use axum::http::Method;
use axum::routing::{MethodRouter, get, post};

use super::{api, console};
use crate::app::App as AppState;

/// One method on one path, the function it belongs to, and its handler.
pub struct Endpoint {
    /// The function's name (`functions/<name>/function.json`).
    pub function: &'static str,
    pub method: Method,
    /// The path as the router matches it (`/api/users/{user}/tap`).
    pub path: &'static str,
    handler: MethodRouter<AppState>,
}

fn at(function: &'static str, method: Method, path: &'static str, handler: MethodRouter<AppState>) -> Endpoint {
    Endpoint {
        function,
        method,
        path,
        handler,
    }
}

/// The table, in the order the functions are listed.
pub fn endpoints() -> Vec<Endpoint> {
    use Method as M;
    vec![
        at("tap", M::POST, "/api/users/{user}/tap", post(api::users::tap)),
        at("reset", M::POST, "/api/users/{user}/mfa/reset", post(api::users::reset)),
        at(
            "verifications",
            M::POST,
            "/api/users/{user}/verifications",
            post(api::verifications::send_verification),
        ),
        at(
            "verification-confirm",
            M::POST,
            "/api/verifications/{id}/confirm",
            post(api::verifications::confirm_verification),
        ),
        at("audit", M::GET, "/api/audit", get(api::audit::audit)),
        at(
            "requests",
            M::POST,
            "/api/requests",
            post(api::requests::submit_request),
        ),
        at(
            "requests",
            M::GET,
            "/api/requests/{id}",
            get(api::requests::get_request),
        ),
        at(
            "request-approve",
            M::POST,
            "/api/requests/{id}/approve",
            post(api::requests::approve_request),
        ),
        at(
            "approvals",
            M::GET,
            "/api/approvals",
            get(api::requests::pending_approvals),
        ),
        at(
            "request-deny",
            M::POST,
            "/api/requests/{id}/deny",
            post(api::requests::deny_request),
        ),
        at("users", M::GET, "/api/users", get(api::users::search_users)),
        at("user", M::GET, "/api/users/{user}", get(api::users::user_summary)),
        at("console", M::GET, "/api/console", get(console::root)),
        at("console", M::GET, "/api/console/", get(console::index)),
        at("console", M::GET, "/api/console/{*path}", get(console::file)),
        at("sweep-run", M::POST, "/api/sweeps", post(api::sweeps::start_sweep)),
        at("sweeps", M::GET, "/api/sweeps/{run}", get(api::sweeps::sweep_summary)),
        at(
            "sweeps",
            M::GET,
            "/api/sweeps/{run}/{file}",
            get(api::sweeps::sweep_file),
        ),
        at("health", M::GET, "/api/health", get(api::health::health)),
    ]
}

/// The endpoints' handlers, one `MethodRouter` a path (methods on one path merged).
pub fn served() -> Vec<(&'static str, MethodRouter<AppState>)> {
    let mut paths: Vec<(&'static str, MethodRouter<AppState>)> = Vec::new();
    for e in endpoints() {
        match paths.iter_mut().find(|(p, _)| *p == e.path) {
            Some((_, router)) => *router = std::mem::take(router).merge(e.handler),
            None => paths.push((e.path, e.handler)),
        }
    }
    paths
}
