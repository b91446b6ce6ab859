//! A second approver for what should not be one person's call (`APPROVAL_REQUIRED_FOR`): a
//! privileged target, a reset of every method, a pass sent to a manager, or everything.
//!
//! A recovery that needs one is not refused: its first steps run (the requester's verification,
//! the caller's slot, the target's checks), then it is held (`Journal::hold`) as
//! `pending_approval`. An approver (app role `Recovery.Approve`) who is neither the requester nor
//! the target, and for a privileged target holds an *active* Privileged Authentication
//! Administrator or Global Administrator role (read from Graph when they approve; a read that
//! fails refuses), approves or denies it. The approved request runs again from the start with
//! the same request id, so its verification and its caller slot are the same ones.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::context::TapContext;
use super::{Journal, RecoveryError};
use crate::graph::models::User;
use crate::vocab::CallerRecord;
use crate::vocab::{Fault, Refusal};

use crate::config::{ApprovalSettings, ApprovalTrigger as Trigger};

/// Built-in role template ids (the same in every tenant).
/// https://learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference
pub(crate) const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
pub(crate) const PRIVILEGED_AUTHENTICATION_ADMINISTRATOR: &str = "7be44c8a-adaf-4e2a-84d6-ab2649e08a13";

/// Why a request waits, whom it is about, until when, and what was decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// `privileged`, `reset_all`, `manager_channel` or `all`.
    pub reasons: Vec<String>,
    pub privileged: bool,
    pub target_id: Uuid,
    pub target_upn: String,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The requester's verification, as the audit record keeps it (no code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<super::details::VerificationSeen>,
    /// What the approver agrees to: a reset's scope and dry run (`removed`, `remaining`), the
    /// pass's channel, masked address and lifetime. Nothing in it is a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// The service's seal over the hold: what was asked, by whom, of whom, and why it waits
    /// (`intake::approval`'s `held`), so an approver decides on what the requester asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_seal: Option<crate::audit::seal::Seal>,
}

/// An approver's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub approved: bool,
    pub by: CallerRecord,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub comment: String,
    /// The service's seal over the decision and its audit record (`audit::seal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<crate::audit::seal::Seal>,
}

/// What the seal of `decision` on request `request` covers: the request, the target, approve
/// or deny, the approver, when, and the hold it answers (its reasons and time).
pub(crate) fn decided(request: Uuid, approval: &Approval, decision: &Decision) -> crate::audit::seal::Decided {
    crate::audit::seal::Decided {
        subject: request,
        target: approval.target_id,
        action: if decision.approved { "approve" } else { "deny" },
        decider: decision.by.key(),
        at: decision.at,
        extra: format!(
            "{}|{}|{}",
            approval.reasons.join(","),
            crate::audit::rfc3339_millis(approval.requested_at),
            approval.hold_seal.as_ref().map(|s| s.mac.as_str()).unwrap_or_default()
        ),
    }
}

/// How long an approval may be acted on after it was given: a request approved runs within
/// minutes (retries included); an approval found on a request much later was put back by hand.
pub(crate) const DECISION_VALID_FOR: time::Duration = time::Duration::hours(24);

impl Approval {
    /// Approved, for this target and at least these reasons.
    pub fn approves(&self, target: Uuid, reasons: &[Trigger]) -> bool {
        self.decision.as_ref().is_some_and(|d| d.approved)
            && self.target_id == target
            && reasons.iter().all(|r| self.reasons.iter().any(|n| n == r.as_str()))
    }

    /// What the request's status shows and the audit record keeps.
    pub fn view(&self) -> ApprovalView<'_> {
        ApprovalView {
            reasons: &self.reasons,
            requested_at: crate::audit::rfc3339_millis(self.requested_at),
            expires_at: crate::audit::rfc3339_millis(self.expires_at),
            target: &self.target_upn,
            privileged: self.privileged,
            verification: self.verification.as_ref(),
            plan: self.plan.as_ref(),
            decision: self.decision.as_ref().map(|d| DecisionView {
                approved: d.approved,
                by: d.by.name.as_deref().or(d.by.object_id.as_deref()),
                by_object_id: d.by.object_id.as_deref(),
                at: crate::audit::rfc3339_millis(d.at),
                comment: &d.comment,
            }),
        }
    }
}

/// An approval as a request's status shows it and the audit record keeps it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalView<'a> {
    pub reasons: &'a [String],
    pub requested_at: String,
    pub expires_at: String,
    pub target: &'a str,
    pub privileged: bool,
    pub verification: Option<&'a super::details::VerificationSeen>,
    pub plan: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionView<'a>>,
}

/// An approver's answer, as shown: who (name, else object id), when, why.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionView<'a> {
    pub approved: bool,
    pub by: Option<&'a str>,
    pub by_object_id: Option<&'a str>,
    pub at: String,
    pub comment: &'a str,
}

/// Who may decide, as far as it can be judged without a read (pure): a person (a delegated
/// token), not the requester (the token's user, or the person a ticket or webhook named), not the
/// target. Their object id, for the admin check a privileged target still needs.
///
/// # Errors
/// `approver_must_be_user`, `approver_is_requester`, `approver_is_target`.
pub(crate) fn eligible_approver<'a>(
    approver: &'a CallerRecord,
    requester: &CallerRecord,
    approval: &Approval,
) -> Result<&'a str, RecoveryError> {
    let Some(me) = approver.object_id.as_deref().filter(|_| approver.user) else {
        return Err(approver_must_be_user());
    };
    let same = |a: Option<&str>, b: &str| a.is_some_and(|a| a.eq_ignore_ascii_case(b));
    if same(requester.object_id.as_deref(), me) || requester.is_person(me) {
        return Err(RecoveryError::refused(
            Refusal::ApproverIsRequester,
            "whoever asked for a recovery cannot approve it; another approver must",
        ));
    }
    if same(Some(&approval.target_id.to_string()), me) {
        return Err(RecoveryError::refused(
            Refusal::ApproverIsTarget,
            "nobody approves the recovery of their own account",
        ));
    }
    Ok(me)
}

/// What about a recovery may call for a second approver.
#[derive(Debug, Clone, Copy, Default)]
pub struct Why {
    /// The target holds or is eligible for privilege.
    pub privileged: bool,
    /// The channel a pass would take.
    pub channel: Option<crate::vocab::Channel>,
    /// A reset of every method (`scope: all`), or any reset whose plan leaves nothing.
    pub reset_all: bool,
    /// A reset without a pass that leaves nothing, asked with `allowEmpty`.
    pub leaves_nothing: bool,
    /// Entra ID Protection rates the user high risk or confirmed compromised.
    pub at_risk: bool,
    /// The pass's lifetime as asked (`None`: the default), for the approver.
    pub lifetime_minutes: Option<u32>,
}

/// Which triggers this recovery meets (pure; unit-tested): the configured ones, and always
/// `leaves_nothing` and `at_risk` (which are refused outright when approvals are off).
pub fn reasons(settings: &ApprovalSettings, why: Why) -> Vec<Trigger> {
    let mut met = Vec::new();
    if settings.required_for.contains(&Trigger::All) {
        met.push(Trigger::All);
    }
    if why.privileged && settings.requires(Trigger::Privileged) {
        met.push(Trigger::Privileged);
    }
    if why.reset_all && settings.required_for.contains(&Trigger::ResetAll) {
        met.push(Trigger::ResetAll);
    }
    if why.channel == Some(crate::vocab::Channel::Manager) && settings.required_for.contains(&Trigger::ManagerChannel) {
        met.push(Trigger::ManagerChannel);
    }
    if why.leaves_nothing {
        met.push(Trigger::LeavesNothing);
    }
    if why.at_risk {
        met.push(Trigger::AtRisk);
    }
    met
}

/// The refusal of a decision by an application (an app-only token, a webhook): only people decide.
pub fn approver_must_be_user() -> RecoveryError {
    RecoveryError::refused(
        Refusal::ApproverMustBeUser,
        "approvals are decided by people: sign in as yourself (a delegated token with this API's scope, as the console and `mfa-recovery approve` get); an application's token cannot approve or deny",
    )
}

/// A comment on a decision: required, one line of up to 500 characters.
///
/// # Errors
/// `invalid_request`, naming what is expected.
pub(crate) fn parse_comment(body: &[u8]) -> Result<String, RecoveryError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        comment: String,
    }
    let body: Body = super::parse_body(body, "{comment}")?;
    if !super::text_ok(&body.comment, 500) {
        return Err(RecoveryError::refused(
            Refusal::InvalidRequest,
            "comment is required (up to 500 characters, one line): say why",
        ));
    }
    Ok(body.comment)
}

impl TapContext<'_> {
    /// Let the recovery go on when it needs no approval or was approved for what it is; else
    /// hold it for an approver and refuse with `approval_required`.
    pub(crate) async fn approved_or_held(
        &self,
        why: Why,
        user: &User,
        journal: &dyn Journal,
        details: &mut super::details::Details,
    ) -> Result<(), RecoveryError> {
        let settings = &self.settings.approval;
        let privileged = why.privileged;
        let met = reasons(settings, why);
        if met.is_empty() {
            return Ok(());
        }
        if let Some(approval) = journal.approval()
            && approval.approves(user.id, &met)
        {
            let decision = approval
                .decision
                .as_ref()
                .expect("an approval that approves is decided");
            self.untampered(
                &decided(journal.request_id(), &approval, decision),
                decision.seal.as_ref(),
                crate::audit::Action::RequestApproval,
                "approval",
            )
            .await?;
            // What was approved is what the request still asks: its hold's seal over the request
            // as it is now (action, body, requester, times, reasons, plan).
            if let Some(hold) = journal.held_as() {
                self.untampered(
                    &hold,
                    approval.hold_seal.as_ref(),
                    crate::audit::Action::RequestApproval,
                    "held request",
                )
                .await?;
            }
            if OffsetDateTime::now_utc() - decision.at > DECISION_VALID_FOR {
                return Err(RecoveryError::refused(
                    Refusal::StateTampered,
                    "the approval on this request is more than a day old: a decided request runs within minutes, so it was put back by hand; nothing was done and the security team is alerted",
                ));
            }
            details.approval = Some(serde_json::to_value(approval.view()).expect("an approval serializes"));
            return Ok(());
        }
        let names: Vec<String> = met.iter().map(|t| t.as_str().to_owned()).collect();
        let now = OffsetDateTime::now_utc();
        journal
            .hold(Approval {
                reasons: names.clone(),
                privileged,
                target_id: user.id,
                target_upn: user.user_principal_name.clone(),
                requested_at: now,
                expires_at: now + settings.timeout(),
                verification: details.verification.clone(),
                plan: Some(self.plan_of(&why, user, details).await),
                decision: None,
                hold_seal: None,
            })
            .await;
        details.approval = Some(json!({"required": names}));
        Err(RecoveryError::refused(
            Refusal::ApprovalRequired,
            format!(
                "this recovery ({}) waits for a second approver (app role Recovery.Approve); nothing was changed yet. It expires in {} minutes unless approved",
                names.join(", "),
                settings.timeout_minutes
            ),
        ))
    }

    /// What an approver sees of a held recovery: the reset's scope and dry run, and where the
    /// pass would go (masked), for how long. A pass's address that cannot be read now is said so,
    /// not guessed.
    async fn plan_of(&self, why: &Why, user: &User, details: &super::details::Details) -> Value {
        let mut plan = json!({});
        // A privileged user's methods by kind only, as the look-up shows them: no device names,
        // models, serials or ids to pick a target from (the view goes to emails and webhooks).
        let kinds = |list: Option<&Vec<super::details::MethodEntry>>| match list {
            None => Value::Null,
            Some(list) if why.privileged => json!(
                list.iter()
                    .map(|m| json!({"type": m.kind, "label": ""}))
                    .collect::<Vec<_>>()
            ),
            Some(list) => json!(list),
        };
        if let Some(planned) = &details.planned {
            plan["reset"] = json!({
                "scope": details.scope,
                "removed": kinds(Some(planned)),
                "remaining": kinds(details.remaining.as_ref()),
                "leavesNothing": details.leaves_nothing,
            });
        }
        if let Some(channel) = why.channel {
            let to = self.address_unchecked(user, channel, &[]).await;
            plan["pass"] = json!({
                "channel": channel.as_str(),
                "to": to.as_ref().ok().map(crate::vocab::Address::masked),
                "toProblem": to.as_ref().err().map(|e| e.message.clone()),
                "lifetimeMinutes": why.lifetime_minutes.unwrap_or(self.settings.default_lifetime_minutes),
            });
        }
        plan
    }

    /// Whether `approver` may decide on a request `requester` made: not the requester, not the
    /// target, and for a privileged target an active Privileged Authentication Administrator or
    /// Global Administrator (read now; a read that fails refuses).
    ///
    /// # Errors
    /// `approver_is_requester`, `approver_is_target`, `approver_not_admin` (403), or a fault.
    pub(crate) async fn check_approver(
        &self,
        approver: &CallerRecord,
        requester: &CallerRecord,
        approval: &Approval,
    ) -> Result<(), RecoveryError> {
        let me = eligible_approver(approver, requester, approval)?;
        let privileged = approval.privileged || approval.reasons.iter().any(|r| r == Trigger::Privileged.as_str());
        if privileged && !self.is_admin(me).await? {
            return Err(RecoveryError::refused(
                Refusal::ApproverNotAdmin,
                "the account is privileged: its recovery needs an approver with an active Privileged Authentication Administrator or Global Administrator role (activate it in PIM first)",
            ));
        }
        Ok(())
    }

    /// An active (not merely eligible) Privileged Authentication Administrator or Global
    /// Administrator role at tenant scope, held directly or through a role-assignable group.
    async fn is_admin(&self, user: &str) -> Result<bool, RecoveryError> {
        let failed = |what: &'static str| {
            move |e: crate::graph::GraphError| {
                tracing::error!(error = %e, what, "a read the approver check needs failed; refusing");
                RecoveryError::failed(
                    if e.is_forbidden() {
                        Fault::PermissionMissing
                    } else {
                        Fault::GraphUnavailable
                    },
                    format!(
                        "Microsoft Graph could not be read ({what}), so the approver's roles cannot be checked and nothing was approved. Try again later."
                    ),
                )
            }
        };
        let admin = |role: &str| role == GLOBAL_ADMINISTRATOR || role == PRIVILEGED_AUTHENTICATION_ADMINISTRATOR;
        let id = Uuid::parse_str(user)
            .map_err(|_| RecoveryError::refused(Refusal::Forbidden, "the approver is not a user"))?;
        let memberships = self
            .graph
            .transitive_member_of(&id)
            .await
            .map_err(failed("the approver's memberships"))?;
        if memberships
            .iter()
            .any(|m| m.is_role() && m.role_template_id.as_deref().is_some_and(admin))
        {
            return Ok(true);
        }
        let mut principals = vec![user.to_owned()];
        let groups: Vec<&str> = memberships
            .iter()
            .filter(|m| m.is_group())
            .map(|m| m.id.as_str())
            .collect();
        if !groups.is_empty() {
            let assignable = self
                .graph
                .role_assignable_group_ids()
                .await
                .map_err(failed("the groups that can hold roles"))?;
            principals.extend(
                groups
                    .into_iter()
                    .filter(|g| assignable.iter().any(|a| a.eq_ignore_ascii_case(g)))
                    .map(str::to_owned),
            );
        }
        for principal in principals {
            let active = self
                .graph
                .role_assignment_instances(&principal)
                .await
                .map_err(failed("the approver's active role assignments"))?;
            if active
                .iter()
                .any(|r| admin(&r.role_definition_id) && r.directory_scope_id.as_deref().unwrap_or("/") == "/")
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Email the members of `APPROVAL_NOTIFY_GROUP` (not the requester, not the target) that a
    /// request waits; the masked addresses told.
    pub(crate) async fn tell_approvers(
        &self,
        request_id: Uuid,
        approval: &Approval,
        requester: &CallerRecord,
        text: &str,
    ) -> Vec<String> {
        let Some(group) = self.settings.approval.notify_group else {
            return Vec::new();
        };
        let members = match self.graph.group_user_mails(&group).await {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "the approvers' group could not be read; nobody was emailed");
                return Vec::new();
            }
        };
        let text = secrecy::SecretString::from(text.to_owned());
        let approvers: Vec<String> = members
            .into_iter()
            .filter(|(id, _)| {
                let is = |other: Option<&str>| other.is_some_and(|o| o.eq_ignore_ascii_case(id));
                !(is(requester.object_id.as_deref())
                    || requester.is_person(id)
                    || id.eq_ignore_ascii_case(&approval.target_id.to_string()))
            })
            .map(|(_, mail)| mail)
            .collect();
        let about = super::notice::About {
            request_id,
            target: crate::audit::Target {
                object_id: Some(approval.target_id.to_string()),
                upn: Some(approval.target_upn.clone()),
            },
        };
        self.tell(
            super::notice::NoticeKind::Approver,
            &about,
            &approvers,
            "A recovery waits for your approval",
            &text,
        )
        .await
    }
}

impl TapContext<'_> {
    /// The person a ticket or webhook names as asking (`requestedBy`), given as an object id, a
    /// UPN or an email, resolved in the directory: `None` when nobody matches (the requester is
    /// then unknown, and the approver is told).
    ///
    /// # Errors
    /// Graph failed (the request is refused, nothing is kept: the sender tries again).
    pub(crate) async fn resolve_person(&self, given: &str) -> Result<Option<crate::vocab::Person>, RecoveryError> {
        let failed = |e: crate::graph::GraphError| {
            tracing::error!(error = %e, "the requester a ticket names could not be looked up");
            RecoveryError::failed(
                if e.is_forbidden() {
                    Fault::PermissionMissing
                } else {
                    Fault::GraphUnavailable
                },
                "Microsoft Graph could not be read (the agent the request names as asking), so the request was not accepted; send it again",
            )
        };
        let Ok(reference) = crate::graph::models::UserRef::parse(given) else {
            return Ok(None);
        };
        if let Some(user) = self.graph.get_user(&reference).await.map_err(failed)? {
            // A disabled or guest account is nobody who could have asked: unknown.
            if user.account_enabled == Some(false) || !user.is_member() {
                return Ok(None);
            }
            return Ok(Some(crate::vocab::Person {
                object_id: user.id.to_string(),
                upn: Some(user.user_principal_name),
            }));
        }
        if !given.contains('@') {
            return Ok(None);
        }
        // An email that is not the UPN: the user whose mail it is, when exactly one.
        let found = self.graph.users_by_mail(given).await.map_err(failed)?;
        let [one] = found.as_slice() else {
            return Ok(None);
        };
        let user = self
            .graph
            .get_user(&crate::graph::models::UserRef::Id(one.id))
            .await
            .map_err(failed)?;
        Ok(user
            .filter(|u| u.account_enabled != Some(false) && u.is_member())
            .map(|u| crate::vocab::Person {
                object_id: u.id.to_string(),
                upn: Some(u.user_principal_name),
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::Channel;

    fn settings(list: &[Trigger]) -> ApprovalSettings {
        ApprovalSettings {
            required_for: list.to_vec(),
            timeout_minutes: 60,
            ..ApprovalSettings::default()
        }
    }

    #[test]
    fn only_configured_triggers_are_met() {
        let why = |privileged, channel, reset_all| Why {
            privileged,
            channel,
            reset_all,
            ..Why::default()
        };
        let none = settings(&[]);
        assert!(reasons(&none, why(true, Some(Channel::Manager), true)).is_empty());
        let privileged = settings(&[Trigger::Privileged]);
        assert_eq!(
            reasons(&privileged, why(true, Some(Channel::Sms), false)),
            vec![Trigger::Privileged]
        );
        assert!(reasons(&privileged, why(false, Some(Channel::Manager), true)).is_empty());
        let more = settings(&[Trigger::ResetAll, Trigger::ManagerChannel]);
        assert_eq!(
            reasons(&more, why(false, Some(Channel::Manager), true)),
            vec![Trigger::ResetAll, Trigger::ManagerChannel]
        );
        let all = settings(&[Trigger::All]);
        assert_eq!(
            reasons(&all, why(true, None, false)),
            vec![Trigger::All, Trigger::Privileged]
        );
        // Leaving nothing and a user at risk always need one (the caller refuses them outright
        // when approvals are off).
        let risky = Why {
            at_risk: true,
            leaves_nothing: true,
            ..Why::default()
        };
        assert_eq!(
            reasons(&privileged, risky),
            vec![Trigger::LeavesNothing, Trigger::AtRisk]
        );
    }

    #[test]
    fn an_approval_covers_only_its_target_and_reasons() {
        let target = Uuid::new_v4();
        let now = OffsetDateTime::now_utc();
        let mut a = Approval {
            reasons: vec!["manager_channel".into()],
            privileged: false,
            target_id: target,
            target_upn: "x@contoso.com".into(),
            requested_at: now,
            expires_at: now,
            verification: None,
            plan: None,
            decision: None,
            hold_seal: None,
        };
        assert!(!a.approves(target, &[Trigger::ManagerChannel]), "undecided");
        a.decision = Some(Decision {
            approved: true,
            by: CallerRecord::default(),
            at: now,
            comment: "ok".into(),
            seal: None,
        });
        assert!(a.approves(target, &[Trigger::ManagerChannel]));
        assert!(!a.approves(Uuid::new_v4(), &[Trigger::ManagerChannel]), "another user");
        assert!(
            !a.approves(target, &[Trigger::ManagerChannel, Trigger::Privileged]),
            "the target became privileged since"
        );
        a.decision.as_mut().unwrap().approved = false;
        assert!(!a.approves(target, &[Trigger::ManagerChannel]), "denied");
    }

    #[test]
    fn an_approver_is_a_person_who_neither_asked_nor_is_the_target() {
        let target = Uuid::new_v4();
        let now = OffsetDateTime::now_utc();
        let approval = Approval {
            reasons: vec!["privileged".into()],
            privileged: true,
            target_id: target,
            target_upn: "t@contoso.com".into(),
            requested_at: now,
            expires_at: now,
            verification: None,
            plan: None,
            decision: None,
            hold_seal: None,
        };
        let person = |id: &str| CallerRecord {
            via: "token".into(),
            object_id: Some(id.into()),
            user: true,
            ..CallerRecord::default()
        };
        let app = |id: &str| CallerRecord {
            via: "token".into(),
            object_id: Some(id.into()),
            ..CallerRecord::default()
        };
        let agent = person("a1");
        let ticket_app = CallerRecord {
            on_behalf_of: Some(crate::vocab::Person {
                object_id: "A2".into(),
                upn: None,
            }),
            ..app("s1")
        };
        fn code(r: Result<&str, RecoveryError>) -> Result<String, String> {
            r.map(str::to_owned).map_err(|e| e.code_str().to_owned())
        }
        // (approver, requester, expected)
        let cases: [(CallerRecord, &CallerRecord, Result<&str, &str>); 6] = [
            (person("b1"), &agent, Ok("b1")),
            (app("b1"), &agent, Err("approver_must_be_user")),
            (person("A1"), &agent, Err("approver_is_requester")),
            (person("a2"), &ticket_app, Err("approver_is_requester")),
            (
                person(&target.to_string().to_uppercase()),
                &agent,
                Err("approver_is_target"),
            ),
            (person("S1"), &ticket_app, Err("approver_is_requester")),
        ];
        for (approver, requester, expected) in cases {
            let got = code(eligible_approver(&approver, requester, &approval));
            let expected = expected.map(str::to_owned).map_err(str::to_owned);
            assert_eq!(got, expected, "{approver:?} for {requester:?}");
        }
    }
}
