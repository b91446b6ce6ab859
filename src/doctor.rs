//! `mfa-recovery doctor` and `GET /api/doctor`: every Graph read the service depends on, run once
//! through the same `GraphClient` functions the features call (so with the exact queries the
//! service sends), and per feature what it found: works, a missing permission (named), not
//! licensed, not configured, or failed, each with the fix. Nothing is written: the writes a
//! feature needs (creating a pass, removing a method, revoking sessions, sending mail) are judged
//! from the grants the token carries, never tried.
//!
//! Run with the function app's managed identity (the API, or the command line inside Azure) it
//! checks the identity's own grants; run from a workstation with `az login` it checks what the
//! signed-in admin can read, and says that the identity's grants are checked by `GET /api/doctor`.

use serde::Serialize;
use uuid::Uuid;

use crate::config::{EmailProvider, RiskCheck, Settings};
use crate::graph::models::UserRef;
use crate::graph::{GraphClient, GraphError, RiskRead};

/// What one check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The read answered as the feature needs.
    Works,
    /// Graph refused it (403): the permission named is missing.
    MissingPermission,
    /// The tenant lacks the licence the read needs.
    NotLicensed,
    /// The feature is off, or a setting it needs is not set (or names nothing).
    NotConfigured,
    /// A write, judged only from an application token's grants: from a signed-in user's token it
    /// cannot be told here.
    NotChecked,
    /// Graph failed otherwise (throttled, unreachable, an unexpected answer): try again.
    Failed,
}

/// One feature's check.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The feature, as the docs name it.
    pub feature: &'static str,
    /// What was read (or, for a write, which grant was looked for).
    pub check: &'static str,
    pub status: Status,
    /// The permission the check needs (named when it is missing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission: Option<&'static str>,
    /// What was found, and the fix when it does not work.
    pub detail: String,
}

/// Who Graph saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckedAs {
    /// An application token: the managed identity's own grants.
    Identity,
    /// A signed-in user's token (`az login`): what that person can read.
    SignedInUser,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub checked_as: CheckedAs,
    /// What the report covers, in a sentence.
    pub note: String,
    pub rows: Vec<Row>,
    /// Rows that work, and rows that need the admin (missing permission, licence, failure).
    pub works: usize,
    pub problems: usize,
}

const METHODS_WRITE: &str = "UserAuthenticationMethod.ReadWrite.All";
const POLICY_READ: &str = "Policy.Read.AuthenticationMethod";
const USER_READ: &str = "User.Read.All";
const ROLE_READ: &str = "RoleManagement.Read.Directory";
const PIM_GROUPS_READ: &str = "PrivilegedEligibilitySchedule.Read.AzureADGroup";
const APP_READ: &str = "Application.Read.All";
const MEMBERS_READ: &str = "GroupMember.Read.All";
const REVOKE: &str = "User.RevokeSessions.All";
const AUDIT_READ: &str = "AuditLog.Read.All";
const RISK_READ: &str = "IdentityRiskyUser.Read.All";
const DIRECTORY_AUDITS: &str = "AuditLog.Read.All and Directory.Read.All";

/// The row for a read's outcome: `Ok` is `works` with what `seen` says of it; a 403 names the
/// permission Graph's path needs (or `permission`); anything else failed.
fn row<T>(
    feature: &'static str,
    check: &'static str,
    permission: &'static str,
    read: Result<T, GraphError>,
    seen: impl FnOnce(T) -> String,
) -> Row {
    let (status, detail) = match read {
        Ok(value) => (Status::Works, seen(value)),
        Err(e) if e.is_forbidden() => (
            Status::MissingPermission,
            format!(
                "Graph refused the read (403). Grant the function app's identity {} (docs/deploy.md, \"Graph permissions\").",
                e.needs().unwrap_or(permission)
            ),
        ),
        Err(e) => (
            Status::Failed,
            format!("{e}; run the doctor again, and if it persists check Graph's status."),
        ),
    };
    Row {
        feature,
        check,
        status,
        permission: Some(permission),
        detail,
    }
}

fn not_configured(feature: &'static str, check: &'static str, detail: impl Into<String>) -> Row {
    Row {
        feature,
        check,
        status: Status::NotConfigured,
        permission: None,
        detail: detail.into(),
    }
}

/// Run every check. `user` is the account whose reads are tried (nothing is changed on it);
/// without one, the first user Graph lists.
pub async fn run(graph: &GraphClient, settings: &Settings, user: Option<&UserRef>) -> Report {
    let grants = graph.token_grants().await;
    let checked_as = match &grants {
        Ok(None) => CheckedAs::SignedInUser,
        _ => CheckedAs::Identity,
    };
    let mut rows = vec![policy_row(graph).await];
    let (probe, user_row) = probe_user(graph, user).await;
    rows.push(user_row);
    if let Some(id) = probe {
        rows.extend(user_rows(graph, settings, &id).await);
    }
    rows.extend(api_rows(graph, settings).await);
    rows.extend(group_rows(graph, settings).await);
    rows.extend(sweep_rows(graph).await);
    rows.extend(write_rows(settings, &grants));
    let works = rows.iter().filter(|r| r.status == Status::Works).count();
    let problems = rows
        .iter()
        .filter(|r| {
            matches!(
                r.status,
                Status::MissingPermission | Status::NotLicensed | Status::Failed
            )
        })
        .count();
    let note = match checked_as {
        CheckedAs::Identity => "Checked with the function app's identity: its own grants and this tenant's licences. Nothing was written.".to_owned(),
        CheckedAs::SignedInUser => "Checked with your sign-in: what YOU can read, not what the function app's identity can. Its own grants are checked by GET /api/doctor (the console's Health view) in the deployed app. Nothing was written.".to_owned(),
    };
    Report {
        checked_as,
        note,
        rows,
        works,
        problems,
    }
}

async fn policy_row(graph: &GraphClient) -> Row {
    let mut out = row(
        "Temporary Access Pass",
        "the Temporary Access Pass policy",
        POLICY_READ,
        graph.tap_policy().await,
        |p| {
            format!(
                "state {}, lifetimes {}–{} minutes (default {}), {}",
                p.state,
                p.minimum_lifetime_in_minutes,
                p.maximum_lifetime_in_minutes,
                p.default_lifetime_in_minutes,
                if p.is_usable_once {
                    "one-time use"
                } else {
                    "multi-use allowed"
                }
            )
        },
    );
    if out.status == Status::Works && !out.detail.starts_with("state enabled") {
        out.status = Status::NotConfigured;
        out.detail = format!(
            "{}: turn the Temporary Access Pass method on for the users to recover (Entra admin center → Protection → Authentication methods → Policies).",
            out.detail
        );
    }
    out
}

/// The user whose reads are tried: the one named, or the first the directory lists.
async fn probe_user(graph: &GraphClient, user: Option<&UserRef>) -> (Option<Uuid>, Row) {
    let check = "a user (the look-up's read)";
    let read = match user {
        Some(reference) => graph.get_user(reference).await.map(|u| u.map(|u| u.id)),
        None => match graph.first_user_id().await {
            Ok(Some(id)) => graph.get_user(&UserRef::Id(id)).await.map(|u| u.map(|u| u.id)),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        },
    };
    match read {
        Ok(None) => (
            None,
            not_configured(
                "Users",
                check,
                "no such user: name one that exists (--user), so its reads can be tried",
            ),
        ),
        other => {
            let id = other.as_ref().ok().copied().flatten();
            (
                id,
                row("Users", check, USER_READ, other, |id| {
                    format!(
                        "read user {} (its properties, manager and addresses)",
                        id.map(|i| i.to_string()).unwrap_or_default()
                    )
                }),
            )
        }
    }
}

/// The reads a recovery makes about the user: methods, passes, memberships, roles, risk, and
/// the directory audit log (the stale-address check).
async fn user_rows(graph: &GraphClient, settings: &Settings, id: &Uuid) -> Vec<Row> {
    let principal = id.to_string();
    let count = |what: &'static str| move |n: usize| format!("{n} {what}");
    let mut rows = vec![
        row(
            "Recover (pass, reset)",
            "the user's authentication methods",
            METHODS_WRITE,
            graph.list_methods(id).await.map(|m| m.len()),
            count("methods"),
        ),
        row(
            "Temporary Access Pass",
            "the user's passes",
            METHODS_WRITE,
            graph.list_taps(id).await.map(|m| m.len()),
            count("passes"),
        ),
        row(
            "Privileged accounts refused",
            "the user's transitive memberships (groups, active roles)",
            USER_READ,
            graph.transitive_member_of(id).await.map(|m| m.len()),
            count("memberships"),
        ),
        row(
            "Privileged accounts refused",
            "directory roles assigned (any scope)",
            ROLE_READ,
            graph.role_assignment_instances(&principal).await.map(|m| m.len()),
            count("active assignments"),
        ),
        row(
            "Privileged accounts refused",
            "directory roles eligible (PIM)",
            ROLE_READ,
            graph.role_eligibility_instances(&principal).await.map(|m| m.len()),
            count("eligible assignments"),
        ),
        row(
            "Privileged accounts refused",
            "groups eligible (PIM for Groups)",
            PIM_GROUPS_READ,
            graph.group_eligibility_instances(&principal).await.map(|m| m.len()),
            count("eligibilities"),
        ),
    ];
    rows.push(risk_row(graph, settings, id).await);
    rows.push(address_row(graph, settings, id).await);
    rows
}

async fn risk_row(graph: &GraphClient, settings: &Settings, id: &Uuid) -> Row {
    let (feature, check) = ("Risky users held", "the user's risk (Entra ID Protection)");
    if settings.tap.risk_check == RiskCheck::Off {
        return not_configured(feature, check, "RISK_CHECK=off: the risk is never read");
    }
    let mut out = row(
        feature,
        check,
        RISK_READ,
        graph.risky_user(id).await,
        |read| match read {
            RiskRead::Rated(_) => "read the user's risk".to_owned(),
            RiskRead::NoRecord => "no risk record for this user (never at risk)".to_owned(),
            RiskRead::NotLicensed => String::new(),
        },
    );
    if out.status == Status::Works && out.detail.is_empty() {
        out.status = if settings.tap.risk_check == RiskCheck::Required {
            Status::NotLicensed
        } else {
            Status::NotConfigured
        };
        out.detail = match settings.tap.risk_check {
            RiskCheck::Required => "the tenant has no Entra ID P2, and RISK_CHECK=required refuses every recovery: get P2 or set RISK_CHECK=if_available".to_owned(),
            _ => "the tenant has no Entra ID P2: RISK_CHECK=if_available goes on without the risk (each audit record says so)".to_owned(),
        };
    }
    out
}

async fn address_row(graph: &GraphClient, settings: &Settings, id: &Uuid) -> Row {
    let (feature, check) = (
        "Stale-address check",
        "the directory audit log about the user (also the audit trail's Entra events)",
    );
    let days = settings.tap.address_min_age_days;
    if days == 0 {
        return not_configured(feature, check, "ADDRESS_MIN_AGE_DAYS=0: addresses are used however new");
    }
    let since = time::OffsetDateTime::now_utc() - time::Duration::days(i64::from(days));
    row(
        feature,
        check,
        DIRECTORY_AUDITS,
        graph.directory_audits_about(id, since).await.map(|e| e.len()),
        move |n| format!("{n} events about the user in the last {days} days"),
    )
}

/// This API's own objects: whoever holds its app roles or owns it is refused like an admin.
async fn api_rows(graph: &GraphClient, settings: &Settings) -> Vec<Row> {
    let feature = "Privileged accounts refused";
    let Some(name) = settings.auth.audience.as_deref() else {
        return vec![not_configured(
            feature,
            "this API's app role holders",
            "AUTH_AUDIENCE is not set: the API's service principal cannot be found, and every recovery is refused",
        )];
    };
    let sp = graph.service_principal_by_name(name).await;
    let sp_id = match &sp {
        Ok(Some((id, _))) => Some(id.clone()),
        _ => None,
    };
    let mut rows = vec![match sp {
        Ok(None) => not_configured(
            feature,
            "this API's service principal",
            format!("no service principal is named {name}: set AUTH_AUDIENCE to the API's App ID URI"),
        ),
        other => row(feature, "this API's service principal", APP_READ, other, |_| {
            format!("found by {name}")
        }),
    }];
    if let Some(sp) = sp_id {
        rows.push(row(
            feature,
            "this API's app role holders",
            APP_READ,
            graph.app_role_assigned_to(&sp).await.map(|h| h.len()),
            |n| format!("{n} holders"),
        ));
        rows.push(row(
            feature,
            "the owners of this API's service principal",
            APP_READ,
            graph.owner_ids("servicePrincipals", &sp).await.map(|o| o.len()),
            |n| format!("{n} owners"),
        ));
    }
    rows.push(row(
        feature,
        "the groups that can hold roles",
        MEMBERS_READ,
        graph.role_assignable_group_ids().await.map(|g| g.len()),
        |n| format!("{n} groups"),
    ));
    rows
}

/// The groups the settings name: each must exist and be readable.
async fn group_rows(graph: &GraphClient, settings: &Settings) -> Vec<Row> {
    let mut rows = Vec::new();
    let named: [(&'static str, &'static str, &'static str, &[Uuid]); 3] = [
        (
            "Protected groups refused",
            "the members of TAP_PROTECTED_GROUPS",
            "TAP_PROTECTED_GROUPS",
            &settings.tap.protected_groups,
        ),
        (
            "Compliance sweep",
            "the members of SWEEP_KEY_USER_GROUPS",
            "SWEEP_KEY_USER_GROUPS",
            &settings.sweep.key_user_groups,
        ),
        (
            "Compliance sweep",
            "the members of SWEEP_EXCLUDE_GROUPS",
            "SWEEP_EXCLUDE_GROUPS",
            &settings.sweep.exclude_groups,
        ),
    ];
    for (feature, check, setting, groups) in named {
        if groups.is_empty() {
            rows.push(not_configured(feature, check, format!("{setting} names no group")));
        }
        for group in groups {
            rows.push(group_row(
                feature,
                check,
                setting,
                group,
                graph.group_user_ids(group).await.map(|m| m.len()),
            ));
        }
    }
    let check = "the members of APPROVAL_NOTIFY_GROUP (whom approvals are emailed to)";
    match settings.tap.approval.notify_group {
        None => rows.push(not_configured(
            "Second approver",
            check,
            "APPROVAL_NOTIFY_GROUP is not set: approvals are not emailed to anyone",
        )),
        Some(group) => rows.push(group_row(
            "Second approver",
            check,
            "APPROVAL_NOTIFY_GROUP",
            &group,
            graph.group_user_mails(&group).await.map(|m| m.len()),
        )),
    }
    rows
}

fn group_row(
    feature: &'static str,
    check: &'static str,
    setting: &'static str,
    group: &Uuid,
    read: Result<usize, GraphError>,
) -> Row {
    match read {
        Err(e) if e.is_not_found() => not_configured(
            feature,
            check,
            format!("{setting} names {group}, which is no group in this tenant: correct the setting"),
        ),
        other => row(feature, check, MEMBERS_READ, other, |n| {
            format!("group {group}: {n} users")
        }),
    }
}

/// The sweep's reads: the registration report (Entra ID P1 or P2) and the disabled accounts.
async fn sweep_rows(graph: &GraphClient) -> Vec<Row> {
    let feature = "Compliance sweep";
    let report = graph.registration_page(None).await;
    let licence = report.as_ref().is_err_and(GraphError::is_not_licensed);
    let mut first = row(
        feature,
        "the authentication methods registration report",
        AUDIT_READ,
        report.map(|(rows, next)| (rows.len(), next.is_some())),
        |(n, more)| format!("{n} rows on the first page{}", if more { ", more to come" } else { "" }),
    );
    if licence {
        first.status = Status::NotLicensed;
        first.detail =
            "the registration report needs Microsoft Entra ID P1 or P2: the sweep cannot run without it".into();
    }
    vec![
        first,
        row(
            feature,
            "the disabled accounts (left out of the sweep)",
            USER_READ,
            graph.disabled_user_ids().await.map(|d| d.len()),
            |n| format!("{n} disabled accounts"),
        ),
    ]
}

/// The writes, judged from the grants an application token carries; never tried.
fn write_rows(settings: &Settings, grants: &Result<Option<Vec<String>>, GraphError>) -> Vec<Row> {
    let granted = |permission: &'static str, feature: &'static str, check: &'static str| {
        let (status, detail) = match grants {
            Ok(Some(roles)) if roles.iter().any(|r| r.eq_ignore_ascii_case(permission)) => {
                (Status::Works, format!("the identity's token carries {permission}"))
            }
            Ok(Some(_)) => (
                Status::MissingPermission,
                format!(
                    "the identity's token does not carry {permission}: grant it (docs/deploy.md, \"Graph permissions\")"
                ),
            ),
            Ok(None) => (
                Status::NotChecked,
                "a write, judged from the identity's grants: GET /api/doctor in the deployed app checks them"
                    .to_owned(),
            ),
            Err(e) => (Status::Failed, format!("{e}")),
        };
        Row {
            feature,
            check,
            status,
            permission: Some(permission),
            detail,
        }
    };
    let mut rows = vec![
        granted(
            METHODS_WRITE,
            "Recover (pass, reset)",
            "create a pass, remove a method (grant)",
        ),
        granted(REVOKE, "Recover (pass, reset)", "revoke the user's sessions (grant)"),
    ];
    let mail = "send mail from MAIL_SENDER (Graph sendMail)";
    rows.push(match (settings.tap.email_provider, &settings.tap.mail_sender) {
        (EmailProvider::Graph, Some(sender)) => Row {
            feature: "Email delivery and notices",
            check: mail,
            status: Status::NotChecked,
            permission: Some("Mail.Send (Exchange RBAC for Applications)"),
            detail: format!(
                "sending is a write and the Exchange scope is not visible to Graph: check with Test-ServicePrincipalAuthorization for {sender} (docs/deploy.md)"
            ),
        },
        (EmailProvider::Graph, None) => not_configured(
            "Email delivery and notices",
            mail,
            "MAIL_SENDER is not set: no email, notice or approval request can be sent",
        ),
        (EmailProvider::Acs, _) => not_configured(
            "Email delivery and notices",
            mail,
            "EMAIL_PROVIDER=acs: email goes through Azure Communication Services, not Graph",
        ),
    });
    rows
}

/// The API's doctor: one run at a time, and a report at most a minute old is served again, so an
/// `Audit.Read` caller refreshing the console cannot spend the identity's Graph budget.
#[derive(Default)]
pub struct Checkup {
    last: tokio::sync::Mutex<Option<(std::time::Instant, Report)>>,
}

/// How long a report is served again before the reads are run anew.
const FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(60);

impl Checkup {
    /// The latest report, run now unless one under a minute old exists.
    pub async fn report(&self, graph: &GraphClient, settings: &Settings) -> Report {
        let mut last = self.last.lock().await;
        if let Some((at, report)) = last.as_ref()
            && at.elapsed() < FRESH_FOR
        {
            return report.clone();
        }
        let report = run(graph, settings, None).await;
        *last = Some((std::time::Instant::now(), report.clone()));
        report
    }
}
