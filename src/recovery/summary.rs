//! What an agent sees of a user before recovering them (`GET /api/users/{user}`): who they are,
//! which methods they have (kinds and when added; numbers and addresses masked, no secret), whether
//! the tenant's pass policy covers them, whether they are protected (yes or no, never which role),
//! which channels can carry a pass and to where (masked), which addresses changed recently, and the
//! lifetimes a pass may have. Every read a guardrail also needs fails closed, as there.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::context::TapContext;
use super::details::RiskSeen;
use super::{Fault, RecoveryError, Refusal, rules};
use crate::graph::models::{User, UserRef};
use crate::vocab::CallerRecord;
use crate::vocab::Channel;

const CHANNELS: [Channel; 3] = [Channel::Sms, Channel::Email, Channel::Manager];

impl TapContext<'_> {
    /// `summarize`, recorded as `user.lookup` (who looked at whom, whether the user is protected;
    /// nothing else of what was shown). A look that cannot be recorded is not shown.
    ///
    /// # Errors
    /// As `summarize`, or `audit_unavailable`.
    pub(crate) async fn look_up(&self, caller: &CallerRecord, user: &str) -> Result<UserSummary, RecoveryError> {
        let graph = self.graph.scoped();
        let result = graph.drive(self.with_graph(&graph).summarize(caller, user)).await;
        let target = result.as_ref().ok().map(|summary| crate::audit::Target {
            object_id: Some(summary.who().id.to_string()),
            upn: Some(summary.who().user_principal_name.clone()),
        });
        let details = match &result {
            Ok(summary) => json!({"protected": summary.protected()}),
            Err(e) => json!({"error": e.message, "requested": user.chars().take(256).collect::<String>()}),
        };
        self.record_look(
            caller,
            crate::audit::Action::UserLookup,
            target,
            &result,
            details,
            "the user is not shown",
        )
        .await?;
        result
    }

    /// `search`, recorded as `user.search` (the text, how many were found and their ids). A
    /// search that cannot be recorded is not answered.
    ///
    /// # Errors
    /// As `search`, or `audit_unavailable`.
    pub(crate) async fn find_users(&self, caller: &CallerRecord, text: &str) -> Result<Vec<Candidate>, RecoveryError> {
        let result = self.search(caller, text).await;
        let asked = text.chars().take(64).collect::<String>();
        let details = match &result {
            Ok(found) => json!({"search": asked, "found": found.len(),
                "users": found.iter().map(|u| u.id.clone()).collect::<Vec<_>>()}),
            Err(e) => json!({"search": asked, "error": e.message}),
        };
        self.record_look(
            caller,
            crate::audit::Action::UserSearch,
            None,
            &result,
            details,
            "no user is shown",
        )
        .await?;
        result
    }

    async fn record_look<T>(
        &self,
        caller: &CallerRecord,
        action: crate::audit::Action,
        target: Option<crate::audit::Target>,
        result: &Result<T, RecoveryError>,
        details: Value,
        withheld: &str,
    ) -> Result<(), RecoveryError> {
        let event = crate::audit::AuditEvent {
            caller: caller.clone(),
            action,
            target,
            ticket: None,
            request_id: None,
            phase: crate::audit::Phase::Outcome,
            outcome: Some(match result {
                Ok(_) => crate::audit::Outcome::Succeeded,
                Err(e) => e.outcome(),
            }),
            details,
        };
        self.audit.record(event).await.map(|_| ()).map_err(|e| {
            tracing::error!(error = %e, action = action.as_str(), "could not record a look at the directory");
            RecoveryError::failed(
                Fault::AuditUnavailable,
                format!("the audit trail is unavailable, so {withheld}; try again later"),
            )
        })
    }

    /// The user's "Authentication Methods" events in Entra's own directory audit log, for an
    /// auditor to read beside this service's trail. The error is Graph's, as text.
    ///
    /// # Errors
    /// Graph could not be read (or refused: AuditLog.Read.All).
    pub(crate) async fn entra_method_events(
        &self,
        user: &str,
        from: time::OffsetDateTime,
        to: time::OffsetDateTime,
    ) -> Result<Vec<crate::graph::models::MethodEvent>, String> {
        // The directory audit filters a target by object id only: a UPN is looked up first. What
        // names nobody (not an id or a UPN, or no such user) has no events; the text never
        // reaches the filter.
        let id = match UserRef::parse(user) {
            Ok(UserRef::Id(id)) => id,
            Ok(upn) => match self.graph.get_user(&upn).await.map_err(|e| e.to_string())? {
                Some(found) => found.id,
                None => return Ok(Vec::new()),
            },
            Err(_) => return Ok(Vec::new()),
        };
        self.graph
            .authentication_method_events(&id, from, to)
            .await
            .map_err(|e| e.to_string())
    }

    /// The recovery-oriented summary of `user` (object id or UPN).
    ///
    /// # Errors
    /// `invalid_user`, `user_not_found`, `self_recovery_forbidden` (an agent does not look up
    /// their own account here), or a fault naming the read that failed.
    /// The TAP policy (a tenant fact kept at most 60 s), read outside the recovery's scope.
    async fn policy_shown(&self) -> Result<std::sync::Arc<crate::graph::models::TapPolicy>, RecoveryError> {
        self.facts
            .tap_policy
            .get(|| async {
                self.graph
                    .unscoped()
                    .tap_policy()
                    .await
                    .map_err(read_failed("the Temporary Access Pass policy"))
            })
            .await
    }

    pub(crate) async fn summarize(&self, caller: &CallerRecord, user: &str) -> Result<UserSummary, RecoveryError> {
        let reference = UserRef::parse(user).map_err(|e| RecoveryError::refused(Refusal::InvalidUser, e))?;
        // A stolen agent session must not list the tenant: look-ups are limited per agent.
        self.reserve_lookup(caller).await?;
        let mut target = crate::audit::Target::default();
        let mut details = super::details::Details::default();
        let (user, memberships, privileged) = match self
            .find_target(
                caller,
                &reference,
                &mut target,
                &mut details,
                super::target::Wants {
                    channel: Some(Channel::Sms),
                    policy: true,
                    methods: true,
                    default_method: false,
                    callers: false,
                },
            )
            .await
        {
            Ok(found) => found,
            // A protected user is refused a pass, not a look: say "protected", nothing more.
            Err(e) if e.code_str() == "target_protected" => return self.protected_only(&reference).await,
            Err(e) => return Err(e),
        };
        let groups: Vec<String> = memberships
            .iter()
            .filter(|m| m.is_group())
            .map(|m| m.id.clone())
            .collect();
        let policy = self.policy_shown().await?;
        let methods = self
            .graph
            .list_methods(&user.id)
            .await
            .map_err(read_failed("the user's authentication methods"))?;
        // Entra ID Protection's risk (RISK_CHECK), as a code or a pass would read it.
        let mut risk = super::details::Details::default();
        let at_risk = self.read_risk(&user, &mut risk).await?.is_some_and(|r| r.at_risk);
        // The directory audit log is read once for the three channels.
        let changes = self.address_changes(&user, Channel::Sms).await;
        let mut channels = BTreeMap::new();
        for channel in CHANNELS {
            channels.insert(channel.as_str(), self.channel_view(&user, channel, &changes).await);
        }
        let s = self.settings;
        let high = |channel_max: u32| policy.maximum_lifetime_in_minutes.min(channel_max);
        Ok(UserSummary::Full(Box::new(FullSummary {
            who: Who::of(&user),
            // For a privileged user, kinds and dates only: no device names, models or serials
            // to pick a target from.
            methods: methods
                .iter()
                .map(|m| MethodSeen {
                    kind: m.type_name().to_owned(),
                    label: if privileged { String::new() } else { m.label() },
                    created_date_time: m.created_date_time.clone(),
                })
                .collect(),
            tap_policy: PolicySeen {
                enabled: policy.is_enabled(),
                in_scope: rules::in_policy_scope(&policy, &groups),
                usable_once: policy.is_usable_once || !s.allow_multi_use,
            },
            protected: privileged,
            approval_required: privileged || (at_risk && s.approval.enabled()),
            risk: risk.risk,
            eligible: rules::account_eligible(&user).err().map(|e| Refused {
                code: e.code_str(),
                message: e.message,
            }),
            channels,
            lifetime_minutes: Lifetimes {
                default: s.default_lifetime_minutes,
                minimum: policy.minimum_lifetime_in_minutes,
                maximum: PerChannel {
                    sms: high(s.max_minutes_sms),
                    email: high(s.max_minutes_email),
                    manager: high(s.max_minutes_manager),
                },
            },
            address_min_age_days: s.address_min_age_days,
            // The dry run of a reset: what each scope would remove, by the rule the reset uses,
            // and whether the user would be left with no way to sign in.
            reset_plan: ResetPlans {
                portal: plan(rules::Scope::Portal, &methods, privileged),
                all: plan(rules::Scope::All, &methods, privileged),
            },
        })))
    }

    /// For a protected user: that they are, and nothing an agent could act on.
    async fn protected_only(&self, reference: &UserRef) -> Result<UserSummary, RecoveryError> {
        let user = self
            .graph
            .get_user(reference)
            .await
            .map_err(read_failed("the user"))?
            .ok_or_else(|| RecoveryError::refused(Refusal::UserNotFound, "no such user"))?;
        Ok(UserSummary::Protected(ProtectedSummary {
            who: Who::of(&user),
            protected: true,
            approval_required: false,
            message: "This account is protected: a Privileged Authentication Administrator recovers it in the Entra admin center.",
        }))
    }

    /// Whether `channel` can carry a pass now, to which masked address, and when its address last
    /// changed (within `ADDRESS_MIN_AGE_DAYS`).
    async fn channel_view(
        &self,
        user: &User,
        channel: Channel,
        changes: &Result<Vec<crate::graph::models::DirectoryAudit>, RecoveryError>,
    ) -> ChannelSeen {
        let checked = async {
            let address = self.address_unchecked(user, channel, &[]).await?;
            // The log is read once for the three channels: its error names this one.
            let changes = changes.as_ref().map_err(|e| RecoveryError {
                message: e
                    .message
                    .replace("user's sms address", &format!("user's {} address", channel.as_str())),
                ..e.clone()
            })?;
            self.settled_in(changes, channel)?;
            Ok::<_, RecoveryError>(address)
        };
        match checked.await {
            Ok(address) => ChannelSeen {
                available: true,
                to: Some(address.masked()),
                refused: None,
                recently_changed: None,
            },
            Err(e) => ChannelSeen {
                available: false,
                to: None,
                recently_changed: (e.code_str() == "address_recently_changed").then_some(true),
                refused: Some(Refused {
                    code: e.code_str(),
                    message: e.message,
                }),
            },
        }
    }
}

fn plan(scope: rules::Scope, methods: &[crate::graph::models::AuthMethod], privileged: bool) -> Plan {
    let planned = rules::removal_plan(scope, methods, &[]);
    let seen = |m: &crate::graph::models::AuthMethod| Labelled {
        kind: m.type_name().to_owned(),
        label: if privileged { String::new() } else { m.label() },
    };
    let keep = methods
        .iter()
        .filter(|m| m.kind() != crate::graph::models::MethodKind::Password)
        .filter(|m| !planned.iter().any(|p| p.id.eq_ignore_ascii_case(&m.id)));
    Plan {
        remove: planned.iter().map(seen).collect(),
        keep: keep.map(seen).collect(),
        leaves_no_method: rules::leaves_no_method(methods, &planned),
    }
}

fn read_failed(what: &'static str) -> impl Fn(crate::graph::GraphError) -> RecoveryError {
    move |e| {
        tracing::error!(error = %e, what, "Graph read failed");
        if e.is_forbidden() {
            return super::context::permission_refused(e.needs(), "nothing is shown");
        }
        RecoveryError::failed(
            Fault::GraphUnavailable,
            format!("Microsoft Graph could not be read ({what}); try again later."),
        )
    }
}

impl TapContext<'_> {
    /// Up to 10 users whose name, mail or UPN matches `text`, with what tells them apart
    /// (department, job title, office, masked mail and mobile). Counted in the caller's look-up
    /// limit (a search is a look).
    ///
    /// # Errors
    /// `invalid_request` (2 to 64 characters), `rate_limited`, or Graph failed.
    pub async fn search(&self, caller: &CallerRecord, text: &str) -> Result<Vec<Candidate>, RecoveryError> {
        let text: String = text.chars().filter(|c| !matches!(c, '"' | '\\')).collect();
        let text = text.trim();
        if !(2..=64).contains(&text.chars().count()) || text.chars().any(char::is_control) {
            return Err(RecoveryError::refused(
                Refusal::InvalidRequest,
                "search must be 2 to 64 characters of a name, an email or a UPN",
            ));
        }
        self.reserve_lookup(caller).await?;
        let found = self
            .graph
            .search_users(text)
            .await
            .map_err(read_failed("the directory (a search for users)"))?;
        // Each candidate shown is a look: a search of ten costs ten of the hour's look-ups, so
        // searches cannot list the tenant faster than look-ups can.
        for _ in 1..found.len() {
            self.reserve_lookup(caller).await?;
        }
        Ok(found.iter().map(candidate).collect())
    }
}

impl TapContext<'_> {
    /// One of the caller's hourly look-ups (`USER_LOOKUPS_PER_CALLER_PER_HOUR`): a summary, or
    /// each user a search shows.
    async fn reserve_lookup(&self, caller: &CallerRecord) -> Result<(), RecoveryError> {
        self.reserve_caller_slot(
            crate::audit::Action::UserLookup,
            "look-ups (a summary, or each user a search shows)",
            caller,
            uuid::Uuid::new_v4(),
            self.settings.lookups_per_caller_per_hour,
        )
        .await
    }
}

/// A search result: who it is and how to tell them apart, contact details masked.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub id: Option<String>,
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub department: Option<String>,
    pub job_title: Option<String>,
    pub office_location: Option<String>,
    pub mail: Option<String>,
    pub mobile_phone: Option<String>,
    pub account_enabled: Option<bool>,
    pub user_type: Option<String>,
}

fn candidate(u: &Value) -> Candidate {
    let text = |k: &str| u[k].as_str().map(str::to_owned);
    Candidate {
        id: text("id"),
        display_name: text("displayName"),
        user_principal_name: text("userPrincipalName"),
        department: text("department"),
        job_title: text("jobTitle"),
        office_location: text("officeLocation"),
        mail: text("mail").map(|m| crate::vocab::mask_email(&m)),
        mobile_phone: text("mobilePhone").map(|m| crate::vocab::mask_phone(&m)),
        account_enabled: u["accountEnabled"].as_bool(),
        user_type: text("userType"),
    }
}

/// What an agent sees of a user before a recovery: everything (`Full`), or for a protected user
/// only that they are (`Protected`).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum UserSummary {
    Full(Box<FullSummary>),
    Protected(ProtectedSummary),
}

impl UserSummary {
    pub fn who(&self) -> &Who {
        match self {
            UserSummary::Full(f) => &f.who,
            UserSummary::Protected(p) => &p.who,
        }
    }

    pub fn protected(&self) -> bool {
        match self {
            UserSummary::Full(f) => f.protected,
            UserSummary::Protected(p) => p.protected,
        }
    }
}

/// Who the user is.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Who {
    pub id: Uuid,
    pub user_principal_name: String,
    pub display_name: Option<String>,
    pub account_enabled: bool,
    pub user_type: &'static str,
}

impl Who {
    fn of(user: &User) -> Who {
        Who {
            id: user.id,
            user_principal_name: user.user_principal_name.clone(),
            display_name: user.display_name.clone(),
            account_enabled: user.account_enabled.unwrap_or(true),
            user_type: if user.is_member() { "Member" } else { "Guest" },
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProtectedSummary {
    #[serde(flatten)]
    pub who: Who,
    pub protected: bool,
    pub approval_required: bool,
    pub message: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FullSummary {
    #[serde(flatten)]
    pub who: Who,
    pub methods: Vec<MethodSeen>,
    pub tap_policy: PolicySeen,
    pub protected: bool,
    pub approval_required: bool,
    /// `{level, state}` (null where Identity Protection has no record), `{checked: false, why}`
    /// without the licence, null with RISK_CHECK=off.
    pub risk: Option<RiskSeen>,
    pub eligible: Option<Refused>,
    pub channels: BTreeMap<&'static str, ChannelSeen>,
    pub lifetime_minutes: Lifetimes,
    pub address_min_age_days: u32,
    pub reset_plan: ResetPlans,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MethodSeen {
    #[serde(rename = "type")]
    pub kind: String,
    pub label: String,
    pub created_date_time: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PolicySeen {
    pub enabled: bool,
    pub in_scope: bool,
    pub usable_once: bool,
}

/// A rule's refusal as shown: its code and message.
#[derive(Debug, Clone, Serialize)]
pub struct Refused {
    pub code: &'static str,
    pub message: String,
}

/// Whether a channel can carry a pass now, and to where (masked), or why not.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChannelSeen {
    pub available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refused>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recently_changed: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Lifetimes {
    pub default: u32,
    pub minimum: u32,
    pub maximum: PerChannel,
}

#[derive(Debug, Clone, Serialize)]
pub struct PerChannel {
    pub sms: u32,
    pub email: u32,
    pub manager: u32,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ResetPlans {
    pub portal: Plan,
    pub all: Plan,
}

/// A reset's dry run for one scope.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Plan {
    pub remove: Vec<Labelled>,
    pub keep: Vec<Labelled>,
    pub leaves_no_method: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Labelled {
    #[serde(rename = "type")]
    pub kind: String,
    pub label: String,
}
