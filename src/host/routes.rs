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
    use crate::vocab::paths as P;
    use Method as M;
    vec![
        at("tap", M::POST, P::TAP, post(api::users::tap)),
        at("reset", M::POST, P::RESET, post(api::users::reset)),
        at(
            "verifications",
            M::POST,
            P::VERIFICATIONS,
            post(api::verifications::send_verification),
        ),
        at(
            "verification-confirm",
            M::POST,
            P::VERIFICATION_CONFIRM,
            post(api::verifications::confirm_verification),
        ),
        at("audit", M::GET, P::AUDIT, get(api::audit::audit)),
        at("requests", M::POST, P::REQUESTS, post(api::requests::submit_request)),
        at("requests", M::GET, P::REQUEST, get(api::requests::get_request)),
        at(
            "request-approve",
            M::POST,
            P::REQUEST_APPROVE,
            post(api::requests::approve_request),
        ),
        at("approvals", M::GET, P::APPROVALS, get(api::requests::pending_approvals)),
        at(
            "request-deny",
            M::POST,
            P::REQUEST_DENY,
            post(api::requests::deny_request),
        ),
        at("users", M::GET, P::USERS, get(api::users::search_users)),
        at("user", M::GET, P::USER, get(api::users::user_summary)),
        at("console", M::GET, P::CONSOLE, get(console::root)),
        at("console", M::GET, P::CONSOLE_INDEX, get(console::index)),
        at("console", M::GET, P::CONSOLE_FILE, get(console::file)),
        at("sweep-run", M::POST, P::SWEEPS, post(api::sweeps::start_sweep)),
        at("sweeps", M::GET, P::SWEEP, get(api::sweeps::sweep_summary)),
        at("sweeps", M::GET, P::SWEEP_FILE, get(api::sweeps::sweep_file)),
        at("health", M::GET, P::HEALTH, get(api::health::health)),
        at("doctor", M::GET, P::DOCTOR, get(api::health::doctor)),
        at(
            "verification",
            M::GET,
            P::VERIFICATION,
            get(api::verifications::get_verification),
        ),
        at("confirm", M::GET, P::CONFIRM, get(crate::host::confirm::page)),
        at("confirm", M::POST, P::CONFIRM, post(crate::host::confirm::answer)),
        at(
            "recovery-block-lift",
            M::POST,
            P::RECOVERY_BLOCK_LIFT,
            post(api::verifications::lift_block),
        ),
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
