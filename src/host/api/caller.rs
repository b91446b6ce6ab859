//! Who may call: authentication and the role check for every function, in one place (the
//! refusal answered and recorded here), and the record of a malformed request's refusal.

use axum::http::{HeaderMap, header};
use serde_json::json;

use crate::audit::{Action, AuditEvent, Outcome, Phase};
use crate::auth::{AuthError, Caller};
use crate::host::AppState;
use crate::host::error::ApiError;
use crate::vocab::{CallerRecord, Role};

/// `check_roles` for one role (a read whose authentication the handler did itself).
pub(super) async fn check_role(
    state: &AppState,
    headers: &HeaderMap,
    role: Role,
    action: Action,
    authenticated: Result<Caller, AuthError>,
) -> Result<Caller, ApiError> {
    check_roles(state, headers, &[role], action, authenticated).await
}

/// Authenticate a call with an Entra token and check it holds one of `roles`. A refusal is
/// recorded in the audit trail with whatever is known of the caller (best effort: a refusal
/// changes nothing, so an audit failure does not change the answer).
pub(super) async fn guard_any(
    state: &AppState,
    headers: &HeaderMap,
    roles: &[Role],
    action: Action,
) -> Result<Caller, ApiError> {
    let authenticated = state.auth.authenticate(headers).await;
    check_roles(state, headers, roles, action, authenticated).await
}

/// `check_role` for calls any of `roles` may make (the first is named in a refusal).
pub(super) async fn check_roles(
    state: &AppState,
    headers: &HeaderMap,
    roles: &[Role],
    action: Action,
    authenticated: Result<Caller, AuthError>,
) -> Result<Caller, ApiError> {
    let role = roles[0];
    let (refusal, caller) = match authenticated {
        Ok(caller) => {
            caller.record_on_span();
            if roles.iter().any(|r| caller.has(*r)) {
                return Ok(caller);
            }
            (AuthError::MissingRole(role.as_str()), CallerRecord::from(&caller))
        }
        Err(refusal) => {
            // Nobody known: counted, and recorded in aggregate (`refusals`), so a flood writes a
            // bounded number of records.
            tracing::warn!(status = refusal.status().as_u16(), reason = %refusal, "call refused");
            let source = crate::auth::source_ip(headers).map(|i| i.to_string());
            state.refusals.add(source, action, &refusal.to_string());
            return Err(refusal.into());
        }
    };
    // Logged once here (the response itself is uniform).
    tracing::warn!(status = refusal.status().as_u16(), reason = %refusal, "call refused");
    let code = if refusal.status().as_u16() == 403 {
        "forbidden"
    } else {
        "unauthenticated"
    };
    let details = json!({"reason": refusal.to_string(), "requiredRole": role.as_str()});
    record_refusal(state, caller, action, Outcome::Refused(code.to_owned()), details).await;
    Err(refusal.into())
}

/// The record of a refusal that changed nothing (best effort: a refusal that cannot be recorded is
/// still a refusal, and the failure is logged).
async fn record_refusal(
    state: &AppState,
    caller: CallerRecord,
    action: Action,
    outcome: Outcome,
    details: serde_json::Value,
) {
    let event = AuditEvent {
        caller,
        action,
        target: None,
        ticket: None,
        request_id: None,
        phase: Phase::Outcome,
        outcome: Some(outcome),
        details,
    };
    if let Err(e) = state.audit.record(event).await {
        tracing::error!(error = %e, action = action.as_str(), "could not record a refusal");
    }
}

/// A malformed request is still an attempt: record the refusal (best effort), then answer it.
pub(super) async fn refuse_request(
    state: &AppState,
    caller: CallerRecord,
    action: Action,
    e: crate::recovery::RecoveryError,
) -> ApiError {
    record_refusal(state, caller, action, e.outcome(), json!({"error": e.message})).await;
    ApiError::Recovery(e)
}

/// As `guard_any`, for functions webhook senders may call: a request without a bearer token but
/// with a webhook signature is checked against the configured senders.
pub(super) async fn guard_signed_any(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    roles: &[Role],
    action: Action,
) -> Result<Caller, ApiError> {
    let result = if headers.contains_key(header::AUTHORIZATION) || !state.webhooks.is_signed(headers) {
        state.auth.authenticate(headers).await
    } else {
        match state.webhooks.verify(headers, body).await {
            Err(e) => return Err(ApiError::DependencyUnavailable(e.to_string())),
            Ok(result) => result,
        }
    };
    check_roles(state, headers, roles, action, result).await
}

/// What a function asks of its caller: the roles that may call it (the first is named in a
/// refusal) and the action a refusal is recorded as.
pub trait Need: Send + Sync + 'static {
    const ROLES: &'static [Role];
    const ACTION: Action;
}

macro_rules! needs {
    ($($(#[$doc:meta])* $name:ident: [$($role:ident),+] as $action:ident;)+) => {$(
        $(#[$doc])*
        pub struct $name;
        impl Need for $name {
            const ROLES: &'static [Role] = &[$(Role::$role),+];
            const ACTION: Action = Action::$action;
        }
    )+};
}

needs! {
    /// `POST /api/users/{user}/tap`.
    IssuePass: [Tap] as TapIssue;
    /// `POST /api/users/{user}/mfa/reset`.
    ResetMethods: [Reset] as MfaReset;
    /// `GET /api/users/{user}`: agents.
    LookUp: [Tap, Reset] as UserLookup;
    /// `GET /api/users?search=`: agents.
    Search: [Tap, Reset] as UserSearch;
    /// `POST /api/users/{user}/verifications`: whoever may recover an account or ask for it.
    SendCode: [Tap, Reset, Request] as VerificationSend;
    /// `POST /api/verifications/{id}/confirm`.
    ConfirmCode: [Tap, Reset, Request] as VerificationConfirm;
    /// `POST /api/requests`.
    Submit: [Request] as RequestSubmit;
    /// `GET /api/approvals`.
    Waiting: [Approve] as RequestRead;
    /// `POST /api/requests/{id}/approve|deny`.
    Decide: [Approve] as RequestApproval;
    /// `GET /api/sweeps/…`.
    SweepRead: [AuditRead] as SweepRead;
    /// `POST /api/sweeps`.
    SweepRun: [AuditRead] as SweepRun;
    /// `GET /api/audit`.
    QueryTrail: [AuditRead] as AuditQuery;
    /// `GET /api/doctor`.
    Diagnose: [AuditRead] as DoctorRead;
    /// `GET /api/verifications/{id}`.
    ReadVerification: [Tap, Reset, Request] as VerificationConfirm;
    /// `POST /api/users/{user}/recovery-block/lift`.
    LiftBlock: [Approve] as RecoveryBlock;
}

/// A caller with an Entra token holding one of `N::ROLES`. A refusal is answered (401/403, the
/// same body whatever the reason) and recorded before the handler runs.
pub struct Authorized<N: Need> {
    pub caller: Caller,
    need: std::marker::PhantomData<N>,
}

impl<N: Need> Authorized<N> {
    /// The caller as the audit trail and the domain know it.
    pub fn record(&self) -> CallerRecord {
        CallerRecord::from(&self.caller)
    }
}

impl<N: Need> axum::extract::FromRequestParts<AppState> for Authorized<N> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = guard_any(state, &parts.headers, N::ROLES, N::ACTION).await?;
        Ok(Authorized {
            caller,
            need: std::marker::PhantomData,
        })
    }
}

/// A caller with an Entra token, or a webhook sender whose signature covers the body, holding
/// one of `N::ROLES`; with the body it signed.
pub struct Signed<N: Need> {
    pub caller: Caller,
    pub headers: HeaderMap,
    pub body: axum::body::Bytes,
    need: std::marker::PhantomData<N>,
}

impl<N: Need> axum::extract::FromRequest<AppState> for Signed<N> {
    type Rejection = axum::response::Response;

    async fn from_request(request: axum::extract::Request, state: &AppState) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse as _;
        let headers = request.headers().clone();
        let body = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(axum::response::IntoResponse::into_response)?;
        let caller = guard_signed_any(state, &headers, &body, N::ROLES, N::ACTION)
            .await
            .map_err(|e| e.into_response())?;
        Ok(Signed {
            caller,
            headers,
            body,
            need: std::marker::PhantomData,
        })
    }
}
