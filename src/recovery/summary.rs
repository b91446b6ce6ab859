//! What an agent sees of a user before recovering them (`GET /api/users/{user}`): who they are,
//! which methods they have (kinds and when added; numbers and addresses masked, no secret), whether
//! the tenant's pass policy covers them, whether they are protected (yes or no, never which role),
//! which channels can carry a pass and to where (masked), which addresses changed recently, and the
//! lifetimes a pass may have. Every read a guardrail also needs fails closed, as there.

use serde_json::{Value, json};

use super::context::TapContext;
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
    pub async fn look_up(&self, caller: &CallerRecord, user: &str) -> Result<Value, RecoveryError> {
        let result = self.summarize(caller, user).await;
        let target = result.as_ref().ok().map(|summary| crate::audit::Target {
            object_id: summary["id"].as_str().map(str::to_owned),
            upn: summary["userPrincipalName"].as_str().map(str::to_owned),
        });
        let details = match &result {
            Ok(summary) => json!({"protected": summary["protected"]}),
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
    pub async fn find_users(&self, caller: &CallerRecord, text: &str) -> Result<Vec<Value>, RecoveryError> {
        let result = self.search(caller, text).await;
        let asked = text.chars().take(64).collect::<String>();
        let details = match &result {
            Ok(found) => json!({"search": asked, "found": found.len(),
                "users": found.iter().map(|u| u["id"].clone()).collect::<Vec<_>>()}),
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
    pub async fn entra_method_events(
        &self,
        user: &str,
        from: time::OffsetDateTime,
        to: time::OffsetDateTime,
    ) -> Result<Vec<Value>, String> {
        self.graph
            .authentication_method_events(user, from, to)
            .await
            .map_err(|e| e.to_string())
    }

    /// The recovery-oriented summary of `user` (object id or UPN).
    ///
    /// # Errors
    /// `invalid_user`, `user_not_found`, `self_recovery_forbidden` (an agent does not look up
    /// their own account here), or a fault naming the read that failed.
    pub async fn summarize(&self, caller: &CallerRecord, user: &str) -> Result<Value, RecoveryError> {
        let reference = UserRef::parse(user).map_err(|e| RecoveryError::refused(Refusal::InvalidUser, e))?;
        // A stolen agent session must not list the tenant: look-ups are limited per agent.
        self.reserve_lookup(caller).await?;
        let mut target = crate::audit::Target::default();
        let mut details = super::details::Details::default();
        let (user, memberships, privileged) =
            match self.find_target(caller, &reference, &mut target, &mut details).await {
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
        let policy = self
            .graph
            .tap_policy()
            .await
            .map_err(read_failed("the Temporary Access Pass policy"))?;
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
        let mut channels = serde_json::Map::new();
        for channel in CHANNELS {
            channels.insert(
                channel.as_str().to_owned(),
                self.channel_view(&user, channel, &changes).await,
            );
        }
        let s = self.settings;
        let high = |channel_max: u32| policy.maximum_lifetime_in_minutes.min(channel_max);
        Ok(json!({
            "id": user.id,
            "userPrincipalName": user.user_principal_name,
            "displayName": user.display_name,
            "accountEnabled": user.account_enabled.unwrap_or(true),
            "userType": if user.is_member() { "Member" } else { "Guest" },
            // For a privileged user, kinds and dates only: no device names, models or serials
            // to pick a target from.
            "methods": methods.iter().map(|m| json!({
                "type": m.type_name(),
                "label": if privileged { String::new() } else { m.label() },
                "createdDateTime": m.created_date_time,
            })).collect::<Vec<_>>(),
            "tapPolicy": {
                "enabled": policy.is_enabled(),
                "inScope": rules::in_policy_scope(&policy, &groups),
                "usableOnce": policy.is_usable_once || !s.allow_multi_use,
            },
            "protected": privileged,
            "approvalRequired": privileged || (at_risk && s.approval.enabled()),
            // `{level, state}` (null where Identity Protection has no record), `{checked: false,
            // why}` without the licence, absent with RISK_CHECK=off.
            "risk": risk.risk,
            "eligible": rules::account_eligible(&user).err().map(|e| json!({"code": e.code_str(), "message": e.message})),
            "channels": channels,
            "lifetimeMinutes": {
                "default": s.default_lifetime_minutes,
                "minimum": policy.minimum_lifetime_in_minutes,
                "maximum": {
                    "sms": high(s.max_minutes_sms),
                    "email": high(s.max_minutes_email),
                    "manager": high(s.max_minutes_manager),
                },
            },
            "addressMinAgeDays": s.address_min_age_days,
            // The dry run of a reset: what each scope would remove, by the rule the reset uses,
            // and whether the user would be left with no way to sign in.
            "resetPlan": {
                "portal": plan(rules::Scope::Portal, &methods, privileged),
                "all": plan(rules::Scope::All, &methods, privileged),
            },
        }))
    }

    /// For a protected user: that they are, and nothing an agent could act on.
    async fn protected_only(&self, reference: &UserRef) -> Result<Value, RecoveryError> {
        let user = self
            .graph
            .get_user(reference)
            .await
            .map_err(read_failed("the user"))?
            .ok_or_else(|| RecoveryError::refused(Refusal::UserNotFound, "no such user"))?;
        Ok(json!({
            "id": user.id,
            "userPrincipalName": user.user_principal_name,
            "displayName": user.display_name,
            "accountEnabled": user.account_enabled.unwrap_or(true),
            "userType": if user.is_member() { "Member" } else { "Guest" },
            "protected": true,
            "approvalRequired": false,
            "message": "This account is protected: a Privileged Authentication Administrator recovers it in the Entra admin center.",
        }))
    }

    /// Whether `channel` can carry a pass now, to which masked address, and when its address last
    /// changed (within `ADDRESS_MIN_AGE_DAYS`).
    async fn channel_view(
        &self,
        user: &User,
        channel: Channel,
        changes: &Result<Vec<crate::graph::models::DirectoryAudit>, RecoveryError>,
    ) -> Value {
        let checked = async {
            let address = self.address_unchecked(user, channel, &[]).await?;
            self.settled_in(changes.as_ref().map_err(Clone::clone)?, channel)?;
            Ok::<_, RecoveryError>(address)
        };
        match checked.await {
            Ok(address) => json!({"available": true, "to": address.masked()}),
            Err(e) => {
                let mut view = json!({"available": false, "code": e.code_str(), "message": e.message});
                if e.code_str() == "address_recently_changed" {
                    view["recentlyChanged"] = json!(true);
                }
                view
            }
        }
    }
}

fn plan(scope: rules::Scope, methods: &[crate::graph::models::AuthMethod], privileged: bool) -> Value {
    let planned = rules::removal_plan(scope, methods, &[]);
    let label = |m: &crate::graph::models::AuthMethod| if privileged { String::new() } else { m.label() };
    let keep = methods
        .iter()
        .filter(|m| m.kind() != crate::graph::models::MethodKind::Password)
        .filter(|m| !planned.iter().any(|p| p.id.eq_ignore_ascii_case(&m.id)));
    json!({
        "remove": planned.iter().map(|m| json!({"type": m.type_name(), "label": label(m)})).collect::<Vec<_>>(),
        "keep": keep.map(|m| json!({"type": m.type_name(), "label": label(m)})).collect::<Vec<_>>(),
        "leavesNoMethod": rules::leaves_no_method(methods, &planned),
    })
}

fn read_failed(what: &'static str) -> impl Fn(crate::graph::GraphError) -> RecoveryError {
    move |e| {
        tracing::error!(error = %e, what, "Graph read failed");
        if e.is_forbidden() {
            return super::context::permission_refused("nothing is shown");
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
    pub async fn search(&self, caller: &CallerRecord, text: &str) -> Result<Vec<Value>, RecoveryError> {
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
fn candidate(u: &Value) -> Value {
    let text = |k: &str| u[k].as_str().map(str::to_owned);
    json!({
        "id": u["id"],
        "displayName": u["displayName"],
        "userPrincipalName": u["userPrincipalName"],
        "department": u["department"],
        "jobTitle": u["jobTitle"],
        "officeLocation": u["officeLocation"],
        "mail": text("mail").map(|m| crate::vocab::mask_email(&m)),
        "mobilePhone": text("mobilePhone").map(|m| crate::vocab::mask_phone(&m)),
        "accountEnabled": u["accountEnabled"],
        "userType": u["userType"],
    })
}
