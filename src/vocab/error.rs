//! The documented error codes (`docs/api.md`, `api/openapi.json`), as types: a `Refusal` is a
//! rule saying no (the same request is refused again until something changes; audited
//! `refused`); a `Fault` is something that failed (audited `failed`; a later attempt may get
//! past it). Which HTTP status each answers is the HTTP layer's table (`host::error`), not theirs.

macro_rules! codes {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $code:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }
        impl $name {
            /// Every code, for the tables that must cover them all.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];
            /// The code as callers and the audit trail see it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $code,)*
                }
            }
        }
    };
}

codes!(
    /// A rule said no.
    Refusal {
        InvalidRequest => "invalid_request",
        InvalidUser => "invalid_user",
        /// The body names an address: passes go to addresses of record only.
        AddressNotAllowed => "address_not_allowed",
        CallbackNotAllowed => "callback_not_allowed",
        VerificationRequired => "verification_required",
        VerificationStale => "verification_stale",
        IdempotencyKeyReused => "idempotency_key_reused",
        RequestNotFound => "request_not_found",
        SweepNotFound => "sweep_not_found",
        UserNotFound => "user_not_found",
        UserDisabled => "user_disabled",
        UserIsGuest => "user_is_guest",
        /// The manager channel would hand the pass to the caller.
        CallerIsManager => "caller_is_manager",
        SelfRecoveryForbidden => "self_recovery_forbidden",
        /// The caller lacks the role for what the request asks.
        Forbidden => "forbidden",
        TargetProtected => "target_protected",
        PolicyDisabled => "policy_disabled",
        UserOutOfScope => "user_out_of_scope",
        LifetimeOutOfRange => "lifetime_out_of_range",
        MultiUseNotAllowed => "multi_use_not_allowed",
        NoAddressOfRecord => "no_address_of_record",
        NoNoticeRecipient => "no_notice_recipient",
        /// Graph refused to create the pass (its policy or the user's state).
        GraphRefused => "graph_refused",
        WouldLeaveNoMethod => "would_leave_no_method",
        /// What the request asks (a reset that leaves nothing, `allowEmpty`) needs a second
        /// approver, and this deployment has none (`APPROVAL_REQUIRED_FOR` is empty).
        SecondApproverRequired => "second_approver_required",
        /// The code would go to an address of the caller's own (their mail, alternate email or
        /// phone): nobody verifies themselves.
        AddressIsCallers => "address_is_callers",
        /// Entra ID Protection rates the user high risk, or confirmed compromised.
        UserAtRisk => "user_at_risk",
        RateLimited => "rate_limited",
        /// A verification code that does not match (attempts left in the message).
        CodeMismatch => "code_mismatch",
        /// A verification code confirmed too late.
        VerificationExpired => "verification_expired",
        /// Five wrong codes: the verification is dead.
        TooManyAttempts => "too_many_attempts",
        /// No such verification for this caller (or for this user).
        VerificationNotFound => "verification_not_found",
        /// The verification's code was never confirmed.
        VerificationNotConfirmed => "verification_not_confirmed",
        /// The verification already served another recovery.
        VerificationUsed => "verification_used",
        /// The pass would go through the channel the code went to.
        VerificationChannelReused => "verification_channel_reused",
        /// The address of record changed too recently to be trusted.
        AddressRecentlyChanged => "address_recently_changed",
        /// The user answered a confirmation link "this is not me": no recovery for them until
        /// the block ends or an approver lifts it.
        RecoveryBlocked => "recovery_blocked",
        /// There is no block on the user's recoveries to lift.
        NotBlocked => "not_blocked",
        /// A confirmation link or its secret that cannot be used (unknown, answered, expired or
        /// wrong): one neutral answer for all.
        LinkUnusable => "link_unusable",
        /// The recovery waits for a second approver (kept as `pending_approval`).
        ApprovalRequired => "approval_required",
        /// An approver said no.
        ApprovalDenied => "approval_denied",
        /// Nobody approved in time.
        ApprovalExpired => "approval_expired",
        /// The request is not waiting for an approval (already decided, or never needed one).
        NotPendingApproval => "not_pending_approval",
        /// Approvals are decided by people: an application's token cannot approve or deny.
        ApproverMustBeUser => "approver_must_be_user",
        /// Whoever asked for a recovery cannot approve it.
        ApproverIsRequester => "approver_is_requester",
        /// Nobody approves their own recovery.
        ApproverIsTarget => "approver_is_target",
        /// A privileged target needs an approver with an active Privileged Authentication
        /// Administrator or Global Administrator role.
        ApproverNotAdmin => "approver_not_admin",
        /// A sweep is already running (`POST /api/sweeps`): watch `GET /api/sweeps/current`.
        SweepRunning => "sweep_running",
        /// The last sweep finished too recently to run another now (`SWEEP_RUN_NOW_MIN_MINUTES`).
        SweepTooSoon => "sweep_too_soon",
        /// A stored decision (an approval, a verification, a block) whose seal is missing or
        /// wrong, or whose audit record does not match it: written by someone with the storage,
        /// not by the service. Nothing is done; the SOC is alerted.
        StateTampered => "state_tampered",
    }
);

codes!(
    /// Something failed; nothing (more) was changed.
    Fault {
        GraphUnavailable => "graph_unavailable",
        AuditUnavailable => "audit_unavailable",
        DeliveryUnavailable => "delivery_unavailable",
        NoticeUnavailable => "notice_unavailable",
        TapOutcomeUnknown => "tap_outcome_unknown",
        DeliveryFailed => "delivery_failed",
        /// The provider was called for a pass and nobody knows whether it sent: never resent.
        DeliveryUnconfirmed => "delivery_unconfirmed",
        PermissionMissing => "permission_missing",
        PrivilegeCheckUnavailable => "privilege_check_unavailable",
        RateLimitUnavailable => "rate_limit_unavailable",
        /// Another invocation took the queued request over.
        ClaimLost => "claim_lost",
        StorageUnavailable => "storage_unavailable",
        /// Verifications cannot be made or checked now (their store or key is unavailable).
        VerificationUnavailable => "verification_unavailable",
        /// The directory audit log (who changed the address, when) cannot be read.
        AddressCheckUnavailable => "address_check_unavailable",
        /// The user's risk (Entra ID Protection) cannot be read, and the check needs it.
        RiskCheckUnavailable => "risk_check_unavailable",
        /// A reset removed some methods but not all, or its pass failed.
        ResetIncomplete => "reset_incomplete",
        /// A queued request failed every attempt.
        RetriesExhausted => "retries_exhausted",
    }
);

impl Fault {
    /// Whether a queued request should be tried again after this fault. Every fault is worth
    /// another attempt except an unconfirmed delivery: the pass may have reached the user, and a
    /// second one must not follow it.
    pub(crate) fn worth_retry(self) -> bool {
        !matches!(self, Fault::DeliveryUnconfirmed | Fault::RetriesExhausted)
    }
}

/// A documented code: a refusal or a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    Refused(Refusal),
    Failed(Fault),
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Refused(r) => r.as_str(),
            ErrorCode::Failed(f) => f.as_str(),
        }
    }
    pub fn is_refusal(self) -> bool {
        matches!(self, ErrorCode::Refused(_))
    }
    /// Every code, refusals first.
    pub fn all() -> impl Iterator<Item = ErrorCode> {
        Refusal::ALL
            .iter()
            .map(|r| ErrorCode::Refused(*r))
            .chain(Fault::ALL.iter().map(|f| ErrorCode::Failed(*f)))
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Refusal> for ErrorCode {
    fn from(r: Refusal) -> Self {
        ErrorCode::Refused(r)
    }
}

impl From<Fault> for ErrorCode {
    fn from(f: Fault) -> Self {
        ErrorCode::Failed(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case() {
        let all: Vec<&str> = ErrorCode::all().map(ErrorCode::as_str).collect();
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
        assert!(
            all.iter()
                .all(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'))
        );
    }

    #[test]
    fn only_an_unconfirmed_delivery_and_exhausted_retries_are_final() {
        let final_faults: Vec<Fault> = Fault::ALL.iter().copied().filter(|f| !f.worth_retry()).collect();
        assert_eq!(final_faults, vec![Fault::DeliveryUnconfirmed, Fault::RetriesExhausted]);
    }
}
