//! The admission stage, first of every recovery: the requester's verification, the caller's slot,
//! the target (`target`), its risk (`risk`) and, unless deferred, the second approver
//! (`approval`). What it lets through is an `Admitted` target.

use time::OffsetDateTime;
use uuid::Uuid;

use super::context::TapContext;
use super::details::{Details, VerificationSeen};
use super::request::VerificationBody;

use super::{Journal, RecoveryError};
use crate::audit::{Action, Target};
use crate::config::{TapSettings, VerificationMode};
use crate::graph::models::{User, UserRef};
use crate::vocab::CallerRecord;
use crate::vocab::Channel;
use crate::vocab::Refusal;
use crate::vocab::paths;

/// What a recovery asks for, as its first steps need it.
pub(crate) struct Asked<'a> {
    pub action: Action,
    /// What the caller's limit counts (`passes`, `resets`), for its message.
    pub what: &'static str,
    pub user: &'a UserRef,
    pub verification: Option<&'a VerificationBody>,
    /// The channel a pass would take (a verification's code must have taken another).
    pub channel: Option<Channel>,
    /// A reset of every method (`scope: all`), which may need a second approver.
    pub reset_all: bool,
    /// The pass's lifetime as asked (`None`: the default), for an approver to see.
    pub lifetime_minutes: Option<u32>,
    /// The approval is decided later, by the caller of `admit` (a reset knows what it leaves
    /// only once it has read the user's methods).
    pub defer_approval: bool,
}

/// A target `admit` let through: who, their memberships, and what a second approver may need
/// to know.
pub(crate) struct Admitted {
    pub user: User,
    pub memberships: Vec<crate::graph::models::DirectoryObject>,
    pub privileged: bool,
    /// Entra ID Protection rates the user high risk or confirmed compromised (approvals are on,
    /// or `admit` would have refused).
    pub at_risk: bool,
}

impl TapContext<'_> {
    /// The first steps of every recovery, in order: the requester's verification, the caller's
    /// rate-limit slot (every attempt counts, so nobody can probe who is privileged, or anything
    /// else, faster than the caller limit), then the target: found, not the caller, not
    /// privileged, not at risk in Entra ID Protection; then, unless deferred, the second approver.
    pub(crate) async fn admit(
        &self,
        caller: &CallerRecord,
        asked: Asked<'_>,
        request_id: Uuid,
        journal: &dyn Journal,
        target: &mut Target,
        details: &mut Details,
    ) -> Result<Admitted, RecoveryError> {
        check_verification(self.settings, asked.verification, Some(journal.accepted_at()), details)?;
        self.reserve_caller_slot(
            asked.action,
            asked.what,
            caller,
            request_id,
            self.settings.max_per_caller_per_hour,
        )
        .await?;
        let (user, memberships, privileged) = self
            .find_target(
                caller,
                asked.user,
                target,
                details,
                super::target::Wants {
                    channel: asked.channel,
                    policy: asked.channel.is_some(),
                    methods: asked.action == Action::MfaReset,
                    default_method: asked.action == Action::MfaReset,
                    callers: true,
                },
            )
            .await?;
        let block = self.not_blocked(&user.id).await?;
        if let Some(VerificationBody::Service(v)) = asked.verification
            && self.settings.verification != VerificationMode::Off
        {
            let max_age = time::Duration::minutes(i64::from(self.settings.verification_max_age_minutes));
            let record = self
                .verifications
                .take(
                    v.id,
                    &super::verification::caller_key(caller),
                    user.id,
                    request_id,
                    asked.channel,
                    self.settings.verification_same_channel,
                    max_age,
                    journal.accepted_at(),
                )
                .await?;
            details.verification = Some(record.audit_view());
            // Verified by the service, not by an edit to its stored record.
            self.untampered(
                &record.verified(),
                record.seal.as_ref(),
                crate::audit::Action::VerificationConfirm,
                "verification",
            )
            .await?;
            link_still_good(&record, block.as_ref().and_then(|b| b.repudiated_at), asked.action)?;
            // The person a ticket names counts as the caller: the code they relied on must not
            // have gone to them (checked when it was sent only for whoever sent it).
            if let Some(person) = &caller.on_behalf_of
                && let Some(channel) = Channel::parse(&record.channel)
            {
                let address = self.address_unchecked(&user, channel, &[]).await?;
                self.not_the_addresses_of(&[person.object_id.as_str()], &user, &address)
                    .await?;
            }
        }
        let at_risk = self.read_risk(&user, details).await?.is_some_and(|r| r.at_risk);
        if at_risk && !self.settings.approval.enabled() {
            return Err(super::risk::at_risk_refused());
        }
        if !asked.defer_approval {
            let why = super::approval::Why {
                privileged,
                channel: asked.channel,
                reset_all: asked.reset_all,
                leaves_nothing: false,
                at_risk,
                lifetime_minutes: asked.lifetime_minutes,
            };
            self.approved_or_held(why, &user, journal, details).await?;
        }
        Ok(Admitted {
            user,
            memberships,
            privileged,
            at_risk,
        })
    }
}

/// A verification the user confirmed (a link, or a code) serves no recovery once the user has
/// said "this is not me" after it (`repudiated_at`), even when the block was lifted; and a link
/// that named what was to come (a pass, a reset) serves only that.
fn link_still_good(
    record: &super::verification::VerificationRecord,
    repudiated_at: Option<OffsetDateTime>,
    action: Action,
) -> Result<(), RecoveryError> {
    if let (Some(at), Some(verified)) = (repudiated_at, record.verified_at)
        && verified <= at
    {
        return Err(RecoveryError::refused(
            Refusal::RecoveryBlocked,
            "the user said \"this is not me\" after this verification was confirmed: verify the user again",
        ));
    }
    let named = match record.action.as_deref() {
        Some("tap") => Some(Action::TapIssue),
        Some("reset") => Some(Action::MfaReset),
        _ => None,
    };
    if let Some(named) = named
        && named != action
    {
        return Err(RecoveryError::refused(
            Refusal::InvalidRequest,
            format!(
                "the user confirmed a link for {}, not this: send a link that names what you will do",
                if named == Action::TapIssue { "a pass" } else { "a reset" }
            ),
        ));
    }
    Ok(())
}

/// The requester's identity check (how the helpdesk proved who is calling), as far as it can be
/// judged before the target is known: present, of the kind this deployment accepts, and a typed
/// block recent. A verification the service made is checked against its record in `admit`.
pub(crate) fn check_verification(
    s: &TapSettings,
    verification: Option<&VerificationBody>,
    as_of: Option<OffsetDateTime>,
    details: &mut Details,
) -> Result<(), RecoveryError> {
    let v = match (s.verification, verification) {
        // A link the service is to send: a queued request asks for it (judged at submission,
        // `as_of` unknown); when the request runs it names the verification the link made.
        (_, Some(VerificationBody::Link(_))) if as_of.is_none() => return Ok(()),
        (_, Some(VerificationBody::Link(_))) => {
            return Err(RecoveryError::refused(
                Refusal::InvalidRequest,
                format!(
                    "verification {{mode: link}} is for queued requests (POST {}); here send the link yourself (POST {} with mode link) and pass verification: {{id}} once the user confirmed",
                    paths::REQUESTS,
                    paths::VERIFICATIONS
                ),
            ));
        }
        (VerificationMode::Off, _) => return Ok(()),
        (_, Some(VerificationBody::Service(_))) => return Ok(()),
        (VerificationMode::Service, Some(VerificationBody::Attested(_))) => {
            return Err(RecoveryError::refused(
                Refusal::VerificationRequired,
                format!(
                    "this deployment accepts only verifications the service made: send a code (POST {}), confirm it, then pass verification: {{id}}",
                    paths::VERIFICATIONS
                ),
            ));
        }
        (VerificationMode::Service, None) => {
            return Err(RecoveryError::refused(
                Refusal::VerificationRequired,
                format!(
                    "verification {{id}} is required: send a code (POST {}) and confirm it first",
                    paths::VERIFICATIONS
                ),
            ));
        }
        (VerificationMode::Attested, None) => {
            return Err(RecoveryError::refused(
                Refusal::VerificationRequired,
                "verification {method, verifiedBy, verifiedAt} (or {id} of a verification the service made) is required",
            ));
        }
        (VerificationMode::Attested, Some(VerificationBody::Attested(v))) => v,
    };
    // A queued request is judged as of when it was accepted, not when a worker got to it.
    let age = as_of.unwrap_or_else(OffsetDateTime::now_utc) - v.verified_at;
    if age > time::Duration::minutes(i64::from(s.verification_max_age_minutes)) || age < -time::Duration::minutes(2) {
        return Err(RecoveryError::refused(
            Refusal::VerificationStale,
            format!(
                "the verification must be from the last {} minutes",
                s.verification_max_age_minutes
            ),
        ));
    }
    details.verification = Some(VerificationSeen::Attested {
        method: v.method.clone(),
        verified_by: v.verified_by.clone(),
        verified_at: v
            .verified_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    });
    Ok(())
}
