//! The rules of a recovery, as plain functions over plain types: no Graph, no storage, no clock
//! unless given one. The procedures (`tap`, `reset`) read what they need, then ask these.

use crate::graph::models::{AuthMethod, DirectoryAudit, MethodKind, TapPolicy, User};
use crate::vocab::{Address, Channel, Refusal};

use super::RecoveryError;

/// The account itself may receive a pass: enabled, and a member (not a guest).
///
/// # Errors
/// `user_disabled` or `user_is_guest`.
pub(crate) fn account_eligible(user: &User) -> Result<(), RecoveryError> {
    if user.account_enabled == Some(false) {
        return Err(RecoveryError::refused(
            Refusal::UserDisabled,
            "the account is disabled; enable it before issuing a pass",
        ));
    }
    if !user.is_member() {
        return Err(RecoveryError::refused(
            Refusal::UserIsGuest,
            "Temporary Access Passes cannot be issued to guests",
        ));
    }
    Ok(())
}

/// How a notice to the user names the ticket: ` for ticket INC0010001` when its id is a plain id
/// (`ticket_id_ok`), else nothing: a caller's words never reach a warning the user
/// must trust ("INC1 planned maintenance, ignore this").
pub(crate) fn ticket_words(ticket: &crate::audit::Ticket) -> String {
    if ticket_id_ok(&ticket.id) {
        format!(" for ticket {}", ticket.id)
    } else {
        String::new()
    }
}

/// Separation of duties on the manager channel: it hands the pass to the user's manager, who must
/// not be the caller (`caller` is the caller's object id, when a person called).
///
/// # Errors
/// `caller_is_manager`.
pub(crate) fn manager_is_not_caller(channel: Channel, user: &User, caller: &[&str]) -> Result<(), RecoveryError> {
    if channel == Channel::Manager
        && let Some(manager) = &user.manager
        && caller.iter().any(|me| manager.id.eq_ignore_ascii_case(me))
    {
        return Err(RecoveryError::refused(
            Refusal::CallerIsManager,
            "the manager channel hands the pass to the user's manager, who is the caller here; another agent must send it, or choose sms or email",
        ));
    }
    Ok(())
}

/// Whether the tenant's TAP policy covers a user in `groups` (their group ids): included (all
/// users, or one of their groups) and not excluded.
pub(crate) fn in_policy_scope(policy: &TapPolicy, groups: &[String]) -> bool {
    let member = |id: &str| groups.iter().any(|g| g.eq_ignore_ascii_case(id));
    let included = policy
        .include_targets
        .iter()
        .any(|t| t.id == "all_users" || member(&t.id));
    let excluded = policy.exclude_targets.iter().any(|t| member(&t.id));
    included && !excluded
}

/// The pass's lifetime: the one asked for, or the default clamped into the range the policy and
/// the channel's limit allow.
///
/// # Errors
/// `lifetime_out_of_range`, naming the range.
pub fn lifetime(
    requested: Option<u32>,
    default: u32,
    policy: &TapPolicy,
    channel: Channel,
    channel_max: u32,
) -> Result<u32, RecoveryError> {
    let low = policy.minimum_lifetime_in_minutes;
    let high = policy.maximum_lifetime_in_minutes.min(channel_max);
    let lifetime = requested.unwrap_or_else(|| default.clamp(low, high.max(low)));
    if low > high || lifetime < low || lifetime > high {
        return Err(RecoveryError::refused(
            Refusal::LifetimeOutOfRange,
            format!(
                "for {} delivery the lifetime must be {low} to {high} minutes (tenant policy and channel limit)",
                channel.as_str()
            ),
        ));
    }
    Ok(lifetime)
}

/// Whether the pass is one-time: yes unless asked otherwise, and a multi-use pass only when the
/// policy allows it and so does this deployment.
///
/// # Errors
/// `multi_use_not_allowed`.
pub(crate) fn usable_once(
    requested: Option<bool>,
    policy: &TapPolicy,
    allow_multi_use: bool,
) -> Result<bool, RecoveryError> {
    let once = requested.unwrap_or(true);
    if !once && (policy.is_usable_once || !allow_multi_use) {
        return Err(RecoveryError::refused(
            Refusal::MultiUseNotAllowed,
            "only one-time passes are allowed",
        ));
    }
    Ok(once)
}

/// Who is told about a pass: the user's mailbox, alternate emails and manager, never the address
/// that carries the pass, each once.
pub(crate) fn notice_recipients(user: &User, used: &Address) -> Vec<String> {
    let mut to: Vec<String> = Vec::new();
    to.extend(user.mail.clone());
    to.extend(user.other_mails.iter().cloned());
    to.extend(user.manager.as_ref().and_then(|m| m.mail.clone()));
    to.retain(|a| !a.eq_ignore_ascii_case(&used.to));
    let mut seen = std::collections::HashSet::new();
    to.retain(|a| seen.insert(a.to_ascii_lowercase()));
    to
}

/// What a reset may remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The methods a user manages in the My Sign-Ins portal.
    Portal,
    /// Every method but the password.
    All,
    /// The methods listed by id.
    Methods,
}

/// What each scope removes, by method kind.
pub(crate) fn in_scope(scope: Scope, method: &AuthMethod, listed: &[String]) -> bool {
    match scope {
        Scope::Portal => matches!(
            method.kind(),
            MethodKind::Phone
                | MethodKind::MicrosoftAuthenticator
                | MethodKind::SoftwareOath
                | MethodKind::HardwareOath
        ),
        Scope::All => method.kind() != MethodKind::Password,
        Scope::Methods => {
            method.kind() != MethodKind::Password && listed.iter().any(|id| id.eq_ignore_ascii_case(&method.id))
        }
    }
}

/// Graph's order of removal: phones first, the alternate mobile and the office phone before the
/// mobile ("a user can't have an alternateMobile number without a mobile number"), then the rest.
/// Graph never deletes the user's default phone (phoneauthenticationmethod-delete): while another
/// method that can be the default is still there, the default moves to it and the phone goes; a
/// default phone left with no such method is kept.
fn removal_rank(method: &AuthMethod) -> u8 {
    match (method.kind(), method.phone_type.as_deref()) {
        (MethodKind::Phone, Some("mobile")) => 1,
        (MethodKind::Phone, _) => 0,
        _ => 2,
    }
}

/// The methods a reset removes, in the order it removes them.
pub(crate) fn removal_plan(scope: Scope, methods: &[AuthMethod], listed: &[String]) -> Vec<AuthMethod> {
    let mut planned: Vec<AuthMethod> = methods.iter().filter(|m| in_scope(scope, m, listed)).cloned().collect();
    planned.sort_by_key(removal_rank);
    planned
}

/// Whether the user would be left with no way to sign in with MFA after `planned` is removed.
/// The password, the SSPR-only email and an old pass (expired or used, most likely) do not count.
pub(crate) fn leaves_no_method(methods: &[AuthMethod], planned: &[AuthMethod]) -> bool {
    !methods
        .iter()
        .filter(|m| {
            !matches!(
                m.kind(),
                MethodKind::Password | MethodKind::Email | MethodKind::TemporaryAccessPass
            )
        })
        .any(|m| !planned.iter().any(|p| p.id.eq_ignore_ascii_case(&m.id)))
}

/// The `signInPreferences` value that points at `method`, if it can be a default.
pub(crate) fn preference_for(method: &AuthMethod) -> Option<&'static str> {
    match (method.kind(), method.phone_type.as_deref()) {
        (MethodKind::Phone, Some("mobile")) => Some("sms"),
        (MethodKind::Phone, Some("alternateMobile")) => Some("voiceAlternateMobile"),
        (MethodKind::Phone, _) => Some("voiceOffice"),
        (MethodKind::MicrosoftAuthenticator, _) => Some("push"),
        (MethodKind::SoftwareOath | MethodKind::HardwareOath, _) => Some("oath"),
        _ => None,
    }
}

/// Whether `default` (`signInPreferences`' `userPreferredMethodForSecondaryAuthentication`)
/// names `method` as a phone: `sms` or `voiceMobile` the mobile phone, `voiceAlternateMobile`
/// the alternate one, `voiceOffice` the office phone.
pub(crate) fn is_default_phone(method: &AuthMethod, default: &str) -> bool {
    method.kind() == MethodKind::Phone
        && match method.phone_type.as_deref() {
            Some("mobile") => matches!(default, "sms" | "voiceMobile"),
            Some("alternateMobile") => default == "voiceAlternateMobile",
            _ => default == "voiceOffice",
        }
}

/// Where the default moves when the default phone cannot go: the first method still there
/// (not `removing`, not already `gone`) that can be a default.
pub(crate) fn next_default<'a>(
    methods: &'a [AuthMethod],
    removing: &AuthMethod,
    gone: &[String],
) -> Option<&'static str> {
    methods
        .iter()
        .filter(|m: &&'a AuthMethod| m.id != removing.id && !gone.contains(&m.id))
        .find_map(preference_for)
}

/// Whether a directory audit event changed the address `channel` would use, so that an
/// attacker may have put theirs there. The docs do not list every activity and reason, so what
/// cannot be told apart counts as a change (fail safe); a removal adds no address and a pass the
/// service created is not an address.
/// - `sms` from the registered phone methods: an "Authentication Methods" event that registered,
///   updated or changed security info whose reason names a phone (or gives none);
/// - `sms` from `mobilePhone`, `email` (`otherMails`): "Update user" touching that property (or
///   not saying which it touched);
/// - `manager`: any event naming the manager, or "Update user" touching it (or not saying).
pub(crate) fn changes_address(event: &DirectoryAudit, channel: Channel, sms_from_attribute: bool) -> bool {
    let text = |v: &Option<String>| v.as_deref().unwrap_or_default().to_ascii_lowercase();
    let (activity, service, reason) = (
        text(&event.activity_display_name),
        text(&event.logged_by_service),
        text(&event.result_reason),
    );
    if event
        .result
        .as_deref()
        .is_some_and(|r| !r.eq_ignore_ascii_case("success"))
    {
        return false;
    }
    // The names Microsoft gives `modifiedProperties` are not documented: no names, or the list of
    // "Included Updated Properties" without a value to read, counts as touching everything.
    let touched = |names: &[&str]| -> bool {
        let modified: Vec<(String, Option<String>)> = event
            .target_resources
            .iter()
            .flat_map(|t| &t.modified_properties)
            .map(|p| {
                (
                    p.display_name.as_deref().unwrap_or_default().to_ascii_lowercase(),
                    p.new_value.as_deref().map(str::to_ascii_lowercase),
                )
            })
            .collect();
        modified.is_empty()
            || modified.iter().any(|(name, value)| {
                names.iter().any(|n| name == n)
                    || (name == "included updated properties"
                        && value.as_deref().is_none_or(|v| {
                            v.split(|c: char| !c.is_ascii_alphanumeric())
                                .any(|w| names.contains(&w))
                        }))
            })
    };
    let update_user = activity == "update user";
    match channel {
        Channel::Sms if !sms_from_attribute => {
            service == "authentication methods"
                && ["registered", "updated", "changed"]
                    .iter()
                    .any(|w| activity.contains(w))
                && (reason.contains("phone") || !names_another_method(&reason))
        }
        Channel::Sms => update_user && touched(&["mobile", "mobilephone"]),
        Channel::Email => update_user && touched(&["othermail", "othermails"]),
        Channel::Manager => activity.contains("manager") || (update_user && touched(&["manager"])),
    }
}

/// A reason that names a method which carries no phone number (the service's own passes among
/// them). The reasons' texts are not documented: one that names no method, or none of these,
/// counts as a phone change (fail safe).
fn names_another_method(reason: &str) -> bool {
    [
        "temporary access pass",
        "email",
        "fido",
        "passkey",
        "authenticator app",
        "microsoft authenticator",
        "software oath",
        "hardware oath",
        "windows hello",
        "password",
        "certificate",
    ]
    .iter()
    .any(|m| reason.contains(m))
}

/// A ticket id that may appear in a message to the user: 1 to 32 ASCII letters, digits, `-` and
/// `_`, starting with a letter or digit (INC0010001, HELP-42, RITM0012345): no spaces, no dots
/// or slashes (no link, no domain), nothing to read as an instruction.
pub(crate) fn ticket_id_ok(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::ErrorCode;
    use serde_json::json;

    fn user(v: serde_json::Value) -> User {
        let mut base = json!({"id": "b0000001-0000-4000-8000-000000000001", "userPrincipalName": "adele@contoso.test"});
        base.as_object_mut().unwrap().extend(v.as_object().unwrap().clone());
        serde_json::from_value(base).unwrap()
    }

    fn policy(v: serde_json::Value) -> TapPolicy {
        let mut base = json!({"state": "enabled", "includeTargets": [{"id": "all_users"}], "defaultLifetimeInMinutes": 60,
            "minimumLifetimeInMinutes": 60, "maximumLifetimeInMinutes": 480, "isUsableOnce": false});
        base.as_object_mut().unwrap().extend(v.as_object().unwrap().clone());
        serde_json::from_value(base).unwrap()
    }

    fn method(kind: &str, id: &str, phone_type: Option<&str>) -> AuthMethod {
        serde_json::from_value(json!({"@odata.type": format!("#microsoft.graph.{kind}AuthenticationMethod"), "id": id, "phoneType": phone_type})).unwrap()
    }

    fn code(r: Result<impl std::fmt::Debug, RecoveryError>) -> ErrorCode {
        r.unwrap_err().code
    }

    #[test]
    fn disabled_accounts_and_guests_get_no_pass() {
        assert!(account_eligible(&user(json!({"accountEnabled": true, "userType": "Member"}))).is_ok());
        assert_eq!(
            code(account_eligible(&user(json!({"accountEnabled": false})))),
            Refusal::UserDisabled.into()
        );
        assert_eq!(
            code(account_eligible(&user(json!({"userType": "Guest"})))),
            Refusal::UserIsGuest.into()
        );
    }

    #[test]
    fn a_manager_never_sends_a_pass_to_themselves() {
        let u = user(json!({"manager": {"id": "M-1", "mail": "boss@contoso.test"}}));
        assert_eq!(
            code(manager_is_not_caller(Channel::Manager, &u, &["m-1"])),
            Refusal::CallerIsManager.into()
        );
        assert!(manager_is_not_caller(Channel::Manager, &u, &["someone-else"]).is_ok());
        assert!(manager_is_not_caller(Channel::Sms, &u, &["m-1"]).is_ok());
        assert!(manager_is_not_caller(Channel::Manager, &u, &[]).is_ok());
        assert_eq!(
            code(manager_is_not_caller(Channel::Manager, &u, &["agent-app", "m-1"])),
            Refusal::CallerIsManager.into(),
            "the person a ticket names counts"
        );
    }

    #[test]
    fn policy_scope_is_inclusion_minus_exclusion() {
        let groups = vec!["G-HELPDESK".to_owned()];
        assert!(in_policy_scope(&policy(json!({})), &groups));
        let only = policy(json!({"includeTargets": [{"id": "g-helpdesk"}]}));
        assert!(in_policy_scope(&only, &groups));
        assert!(!in_policy_scope(&only, &[]));
        let excluded = policy(json!({"excludeTargets": [{"id": "g-helpdesk"}]}));
        assert!(!in_policy_scope(&excluded, &groups));
    }

    #[test]
    fn lifetime_is_the_policy_range_capped_by_the_channel() {
        let p = policy(json!({}));
        assert_eq!(lifetime(None, 60, &p, Channel::Sms, 480).unwrap(), 60);
        // The default is clamped into the range.
        assert_eq!(lifetime(None, 10, &p, Channel::Sms, 480).unwrap(), 60);
        assert_eq!(lifetime(None, 900, &p, Channel::Email, 120).unwrap(), 120);
        assert_eq!(lifetime(Some(120), 60, &p, Channel::Email, 120).unwrap(), 120);
        assert_eq!(
            code(lifetime(Some(121), 60, &p, Channel::Email, 120)),
            Refusal::LifetimeOutOfRange.into()
        );
        assert_eq!(
            code(lifetime(Some(30), 60, &p, Channel::Sms, 480)),
            Refusal::LifetimeOutOfRange.into()
        );
        // A channel limit below the policy's minimum leaves no valid lifetime.
        assert_eq!(
            code(lifetime(None, 60, &p, Channel::Manager, 30)),
            Refusal::LifetimeOutOfRange.into()
        );
    }

    #[test]
    fn multi_use_needs_the_policy_and_the_deployment() {
        let p = policy(json!({}));
        assert!(usable_once(None, &p, false).unwrap());
        assert!(!usable_once(Some(false), &p, true).unwrap());
        assert_eq!(
            code(usable_once(Some(false), &p, false)),
            Refusal::MultiUseNotAllowed.into()
        );
        let once_only = policy(json!({"isUsableOnce": true}));
        assert_eq!(
            code(usable_once(Some(false), &once_only, true)),
            Refusal::MultiUseNotAllowed.into()
        );
    }

    #[test]
    fn notices_go_everywhere_but_the_pass_s_address_each_once() {
        let u = user(
            json!({"mail": "adele@contoso.test", "otherMails": ["adele@personal.example", "ADELE@contoso.test"],
            "manager": {"id": "m", "mail": "boss@contoso.test"}}),
        );
        let sent_to = Address {
            channel: Channel::Email,
            to: "Adele@Personal.example".into(),
        };
        assert_eq!(
            notice_recipients(&u, &sent_to),
            vec!["adele@contoso.test", "boss@contoso.test"]
        );
        let by_sms = Address {
            channel: Channel::Sms,
            to: "+14255550101".into(),
        };
        assert_eq!(notice_recipients(&user(json!({})), &by_sms), Vec::<String>::new());
    }

    #[test]
    fn each_scope_removes_its_kinds_and_never_the_password() {
        let methods = [
            method("password", "pw", None),
            method("phone", "p-mobile", Some("mobile")),
            method("microsoftAuthenticator", "app", None),
            method("fido2", "key", None),
            method("email", "sspr", None),
        ];
        let ids = |scope, listed: &[String]| -> Vec<String> {
            methods
                .iter()
                .filter(|m| in_scope(scope, m, listed))
                .map(|m| m.id.clone())
                .collect()
        };
        assert_eq!(ids(Scope::Portal, &[]), ["p-mobile", "app"]);
        assert_eq!(ids(Scope::All, &[]), ["p-mobile", "app", "key", "sspr"]);
        assert_eq!(ids(Scope::Methods, &["KEY".into(), "pw".into()]), ["key"]);
    }

    #[test]
    fn a_reset_removes_the_phones_first_and_the_mobile_after_the_other_phones() {
        let methods = [
            method("phone", "p-mobile", Some("mobile")),
            method("phone", "p-office", Some("office")),
            method("softwareOath", "totp", None),
            method("microsoftAuthenticator", "app", None),
        ];
        let order: Vec<String> = removal_plan(Scope::All, &methods, &[])
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(order, ["p-office", "p-mobile", "totp", "app"]);
    }

    #[test]
    fn a_user_left_with_only_a_password_an_sspr_email_or_an_old_pass_has_no_method() {
        let methods = [
            method("password", "pw", None),
            method("email", "sspr", None),
            method("temporaryAccessPass", "old", None),
            method("phone", "p", Some("mobile")),
        ];
        let all = removal_plan(Scope::All, &methods, &[]);
        assert!(leaves_no_method(&methods, &all));
        assert!(!leaves_no_method(&methods, &[]));
    }

    #[test]
    fn an_address_changed_is_told_from_what_adds_no_address() {
        let event = |v: serde_json::Value| -> DirectoryAudit { serde_json::from_value(v).unwrap() };
        let auth = |activity: &str, reason: &str| {
            event(
                json!({"activityDisplayName": activity, "loggedByService": "Authentication Methods", "result": "success", "resultReason": reason}),
            )
        };
        let update = |props: &[&str]| {
            event(
                json!({"activityDisplayName": "Update user", "loggedByService": "Core Directory", "result": "success",
                "targetResources": [{"modifiedProperties": props.iter().map(|p| json!({"displayName": p})).collect::<Vec<_>>()}]}),
            )
        };
        let phone = auth("User registered security info", "User registered phone method");
        assert!(changes_address(&phone, Channel::Sms, false));
        assert!(
            changes_address(&auth("Admin updated security info", ""), Channel::Sms, false),
            "no reason: fail safe"
        );
        assert!(!changes_address(
            &auth("Admin deleted security info", "Admin deleted phone method for user"),
            Channel::Sms,
            false
        ));
        assert!(!changes_address(
            &auth(
                "Admin registered security info",
                "Admin registered temporary access pass method for user"
            ),
            Channel::Sms,
            false
        ));
        assert!(!changes_address(&phone, Channel::Email, false));
        assert!(changes_address(&update(&["OtherMail"]), Channel::Email, false));
        assert!(!changes_address(&update(&["DisplayName"]), Channel::Email, false));
        assert!(
            changes_address(&update(&[]), Channel::Email, false),
            "unknown properties: fail safe"
        );
        assert!(changes_address(&update(&["Mobile"]), Channel::Sms, true));
        assert!(!changes_address(&update(&["Mobile"]), Channel::Sms, false));
        assert!(changes_address(
            &event(json!({"activityDisplayName": "Set manager", "result": "success"})),
            Channel::Manager,
            false
        ));
        let failed = event(json!({"activityDisplayName": "Update user", "result": "failure"}));
        assert!(!changes_address(&failed, Channel::Email, false));
    }

    /// Events shaped as Microsoft's directoryAudit resource documents them (an "Update user" whose
    /// "Included Updated Properties" lists what changed; activity names from the audit activity
    /// reference), with what the docs leave open read fail safe: no resultReason, an unknown
    /// reason, unknown property names, a list without a value. The service's own pass is never a
    /// change of address.
    #[test]
    fn documented_event_shapes_are_read_and_the_unknown_fails_safe() {
        let event = |v: serde_json::Value| -> DirectoryAudit { serde_json::from_value(v).unwrap() };
        let update = |props: serde_json::Value| {
            event(json!({
                "id": "Directory_0c8d2a3f", "category": "UserManagement", "correlationId": "8a0b7c2d",
                "result": "success", "resultReason": "", "activityDisplayName": "Update user",
                "activityDateTime": "2026-12-01T10:00:00Z", "loggedByService": "Core Directory",
                "operationType": "Update",
                "initiatedBy": {"user": {"id": "1", "userPrincipalName": "admin@contoso.test"}},
                "targetResources": [{"id": "u", "displayName": null, "type": "User",
                    "userPrincipalName": "adele.vance@contoso.test", "modifiedProperties": props}],
                "additionalDetails": []
            }))
        };
        let listed = |names: &str| {
            update(json!([{"displayName": "Included Updated Properties", "oldValue": null,
                "newValue": format!("\"{names}\"")}]))
        };
        assert!(changes_address(&listed("OtherMail"), Channel::Email, false));
        assert!(changes_address(&listed("Department, OtherMail"), Channel::Email, false));
        assert!(!changes_address(&listed("Department"), Channel::Email, false));
        assert!(changes_address(&listed("Mobile"), Channel::Sms, true));
        assert!(
            changes_address(
                &update(json!([{"displayName": "Included Updated Properties"}])),
                Channel::Email,
                false
            ),
            "a list with no value: fail safe"
        );
        assert!(
            changes_address(
                &update(json!([{"displayName": "SomethingNew"}, {"displayName": "Included Updated Properties"}])),
                Channel::Manager,
                false
            ),
            "unknown names: fail safe"
        );
        let auth = |activity: &str, reason: Option<&str>| {
            let mut v = json!({"activityDisplayName": activity, "loggedByService": "Authentication Methods",
                "category": "UserManagement", "result": "success"});
            if let Some(r) = reason {
                v["resultReason"] = json!(r);
            }
            event(v)
        };
        for activity in [
            "User registered security info",
            "User updated security info",
            "User changed default security info",
            "Admin registered security info",
            "Admin updated security info",
        ] {
            assert!(
                changes_address(&auth(activity, None), Channel::Sms, false),
                "{activity}: no reason"
            );
            assert!(
                changes_address(
                    &auth(activity, Some("something Microsoft may say")),
                    Channel::Sms,
                    false
                ),
                "{activity}: an unknown reason fails safe"
            );
        }
        assert!(!changes_address(
            &auth(
                "Admin registered security info",
                Some("Admin registered temporary access pass method for user")
            ),
            Channel::Sms,
            false
        ));
        assert!(!changes_address(
            &auth(
                "User registered security info",
                Some("User registered Fido2 Authentication Method")
            ),
            Channel::Sms,
            false
        ));
        assert!(!changes_address(
            &auth("User deleted security info", None),
            Channel::Sms,
            false
        ));
        assert!(changes_address(
            &event(
                json!({"activityDisplayName": "Set user manager", "loggedByService": "Core Directory", "result": "success"})
            ),
            Channel::Manager,
            false
        ));
    }

    #[test]
    fn the_default_moves_to_a_method_that_stays() {
        let methods = [
            method("phone", "p", Some("mobile")),
            method("fido2", "key", None),
            method("softwareOath", "totp", None),
            method("microsoftAuthenticator", "app", None),
        ];
        assert_eq!(next_default(&methods, &methods[0], &[]), Some("oath"));
        assert_eq!(next_default(&methods, &methods[0], &["totp".into()]), Some("push"));
        assert_eq!(
            next_default(&methods, &methods[0], &["totp".into(), "app".into()]),
            None
        );
    }
}
