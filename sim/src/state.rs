//! The mutable tenant behind every simulated endpoint, rebuilt from the seed on reset.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use crate::methods::{Kind, Method};
use crate::seed::{
    AppRoleAssignmentSeed, GroupEligibilitySeed, GroupSeed, RoleAssignmentSeed, RoleDefinitionSeed, RoleSeed, Seed,
};

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub upn: String,
    pub display_name: String,
    pub mail: Option<String>,
    pub other_mails: Vec<String>,
    pub mobile_phone: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub office_location: Option<String>,
    pub account_enabled: bool,
    pub user_type: String,
    pub manager_id: Option<String>,
    pub default_method: Option<String>,
    pub system_preferred_enabled: bool,
    pub methods: Vec<Method>,
    pub demo_note: Option<String>,
    /// Set by `revokeSignInSessions`.
    pub sessions_revoked_at: Option<String>,
    /// Identity Protection's rating (`riskLevel`, `riskState`); `None`: no record of the user.
    pub risk: Option<serde_json::Value>,
}

impl User {
    pub fn is_guest(&self) -> bool {
        self.user_type.eq_ignore_ascii_case("guest")
    }

    pub fn method(&self, kind: Kind, id: &str) -> Option<&Method> {
        self.methods
            .iter()
            .find(|m| m.kind == kind && m.id.eq_ignore_ascii_case(id))
    }
}

/// One outbound message recorded by a simulated provider (SMS, ACS Email, Graph sendMail).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxItem {
    pub id: String,
    pub provider: String,
    pub channel: String,
    pub from: String,
    pub to: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub body: String,
    pub at: String,
}

/// A request the simulator served (for "called exactly once" assertions).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// The query string as sent (percent-encoded), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The headers that change what Graph does (`consistencylevel`, `prefer`, `content-type`),
    /// lower-case names.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, String>,
    /// A Graph request's JSON body (Graph routes only: other services' bodies carry credentials
    /// and message text). Each sub-request of a `$batch` is recorded on its own as well.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// A Graph answer's JSON body (2xx), so a test can hold what the simulator answers to the
    /// published schema too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<serde_json::Value>,
    pub status: u16,
    /// Whether a configured fault answered instead of the endpoint.
    pub faulted: bool,
    /// A sub-request of a `$batch` (each is a call Graph throttles on its own, but not a round
    /// trip of its own: the `$batch` request carrying it is).
    pub in_batch: bool,
    /// When the request arrived and when its answer left, in microseconds since the simulator
    /// started: which calls waited on which (`Simulator::graph_cost`).
    pub started_us: u64,
    pub ended_us: u64,
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub tenant_id: String,
    pub users: Vec<User>,
    pub groups: Vec<GroupSeed>,
    pub roles: Vec<RoleSeed>,
    pub role_definitions: Vec<RoleDefinitionSeed>,
    pub role_assignments: Vec<RoleAssignmentSeed>,
    pub group_eligibilities: Vec<GroupEligibilitySeed>,
    pub app_role_assignments: Vec<AppRoleAssignmentSeed>,
    /// Owners of the API's application and service principal.
    pub api_owners: Vec<String>,
    pub tap_policy: Value,
    /// Microsoft Entra ID P2 (Identity Protection answers only with it).
    pub entra_id_p2: bool,
    /// Microsoft Entra ID P1 (with P2, the registration report answers).
    pub entra_id_p1: bool,
    pub report_page_size: usize,
    pub graph_permissions: Vec<String>,
    /// Exchange RBAC for Applications: (app id, mailbox) pairs "Application Mail.Send" covers.
    pub exchange_mail_send: Vec<(String, String)>,
    pub key_vault_access: bool,
    /// Whether the identity holds Monitoring Metrics Publisher on the data collection rule (the
    /// Logs Ingestion API answers 403 without it).
    pub monitoring_publisher: bool,
    /// Rows the Logs Ingestion API accepted, by stream, in order (Log Analytics keeps duplicates:
    /// nothing here removes them).
    pub ingested: Vec<(String, Value)>,
    /// Responses already given to ACS repeatable requests, by repeatability id.
    pub acs_repeatability: HashMap<String, Value>,
    /// Entra directory audit events (`/auditLogs/directoryAudits`) for changes made through Graph.
    pub directory_audits: Vec<Value>,
    /// The user's default phone may be deleted when no other method could become the default.
    /// Off by default, as documented (phoneauthenticationmethod-delete: "If the phone number is
    /// the user's default … it can't be deleted"); on, the behaviour earlier versions of the
    /// simulator had, for a tenant that turns out to allow it.
    pub lenient_default_phone: bool,
    /// The managed identity, as `initiatedBy.app` of those events.
    pub app: (String, String),
}

impl Tenant {
    /// Build the tenant from a seed.
    ///
    /// # Errors
    /// A method entry in the seed is not a known type.
    pub fn from_seed(seed: &Seed) -> Result<Tenant, String> {
        let mut users = Vec::with_capacity(seed.users.len());
        for u in &seed.users {
            let mut methods = vec![Method::password()];
            for m in &u.methods {
                methods.push(Method::from_seed(m).map_err(|e| format!("user {}: {e}", u.id))?);
            }
            users.push(User {
                id: u.id.clone(),
                upn: u.user_principal_name.clone(),
                display_name: u.display_name.clone(),
                mail: u.mail.clone(),
                other_mails: u.other_mails.clone(),
                mobile_phone: u.mobile_phone.clone(),
                job_title: u.job_title.clone(),
                department: u.department.clone(),
                office_location: u.office_location.clone(),
                account_enabled: u.account_enabled,
                user_type: u.user_type.clone(),
                manager_id: u.manager_id.clone(),
                default_method: u.default_method.clone(),
                system_preferred_enabled: false,
                methods,
                demo_note: u.demo_note.clone(),
                sessions_revoked_at: None,
                risk: u.risk.clone(),
            });
        }
        Ok(Tenant {
            tenant_id: seed.tenant_id.clone(),
            users,
            groups: seed.groups.clone(),
            roles: seed.directory_roles.clone(),
            role_definitions: seed.role_definitions.clone(),
            role_assignments: seed.role_assignments.clone(),
            group_eligibilities: seed.group_eligibilities.clone(),
            app_role_assignments: seed.api.app_role_assignments.clone(),
            api_owners: seed.api.owners.clone(),
            tap_policy: seed.tap_policy.clone(),
            entra_id_p2: seed.entra_id_p2,
            entra_id_p1: seed.entra_id_p1,
            report_page_size: seed.registration_report_page_size.max(1),
            graph_permissions: seed.managed_identity.graph_permissions.clone(),
            exchange_mail_send: seed
                .managed_identity
                .exchange_mail_send
                .iter()
                .map(|m| (seed.managed_identity.client_id.clone(), m.clone()))
                .collect(),
            key_vault_access: seed.managed_identity.key_vault_secrets_user,
            monitoring_publisher: true,
            ingested: Vec::new(),
            acs_repeatability: HashMap::new(),
            directory_audits: Vec::new(),
            lenient_default_phone: false,
            app: (
                seed.managed_identity.client_id.clone(),
                seed.managed_identity.object_id.clone(),
            ),
        })
    }

    /// Record an "Authentication Methods" directory audit event, as Entra does for admin changes.
    /// https://learn.microsoft.com/entra/identity/monitoring-health/reference-audit-activities
    pub fn audit_event(&mut self, user_idx: usize, activity: &str, reason: &str) {
        let user = &self.users[user_idx];
        let now = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let event = serde_json::json!({
            "id": format!("Directory_{}", uuid::Uuid::new_v4()),
            "category": "UserManagement",
            "correlationId": uuid::Uuid::new_v4().to_string(),
            "result": "success",
            "resultReason": reason,
            "activityDisplayName": activity,
            "activityDateTime": now,
            "loggedByService": "Authentication Methods",
            "operationType": "Update",
            "initiatedBy": {"app": {"appId": self.app.0, "displayName": "id-mfa-recovery", "servicePrincipalId": self.app.1}, "user": null},
            "targetResources": [{"id": user.id, "displayName": user.display_name, "type": "User", "userPrincipalName": user.upn}],
            "additionalDetails": [],
        });
        self.directory_audits.push(event);
    }

    /// A directory audit event about a user, `days_ago` days back, as Entra logs one (for tests
    /// and demos of the stale-address check): `activity` (for example "User registered security
    /// info" or "Update user"), its service, its reason and the properties it modified.
    pub fn past_audit_event(
        &mut self,
        user: &str,
        activity: &str,
        service: &str,
        reason: &str,
        modified: &[&str],
        days_ago: i64,
    ) -> Option<()> {
        let idx = self.user_index(user)?;
        let u = &self.users[idx];
        let at = (time::OffsetDateTime::now_utc() - time::Duration::days(days_ago))
            .replace_nanosecond(0)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let modified: Vec<serde_json::Value> = modified
            .iter()
            .map(|p| serde_json::json!({"displayName": p, "oldValue": null, "newValue": null}))
            .collect();
        let event = serde_json::json!({
            "id": format!("Directory_{}", uuid::Uuid::new_v4()),
            "category": "UserManagement",
            "correlationId": uuid::Uuid::new_v4().to_string(),
            "result": "success",
            "resultReason": reason,
            "activityDisplayName": activity,
            "activityDateTime": at,
            "loggedByService": service,
            "operationType": "Update",
            "initiatedBy": {"user": {"id": "00000000-0000-4000-8000-0000000000aa", "userPrincipalName": "someone@contoso.test"}, "app": null},
            "targetResources": [{"id": u.id, "displayName": u.display_name, "type": "User", "userPrincipalName": u.upn, "modifiedProperties": modified}],
            "additionalDetails": [],
        });
        // The log is kept in time order (the route answers newest first).
        let pos = self
            .directory_audits
            .iter()
            .position(|e| e["activityDateTime"].as_str().is_some_and(|t| t > at.as_str()))
            .unwrap_or(self.directory_audits.len());
        self.directory_audits.insert(pos, event);
        Some(())
    }

    /// A user by object id or UPN (case-insensitive, as Graph does).
    pub fn user_index(&self, key: &str) -> Option<usize> {
        self.users
            .iter()
            .position(|u| u.id.eq_ignore_ascii_case(key) || u.upn.eq_ignore_ascii_case(key))
    }

    pub fn user(&self, key: &str) -> Option<&User> {
        self.user_index(key).map(|i| &self.users[i])
    }

    /// Every group the object is in, directly or through nested groups.
    pub fn transitive_groups(&self, object_id: &str) -> Vec<&GroupSeed> {
        let mut found: Vec<&GroupSeed> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut frontier = vec![object_id.to_ascii_lowercase()];
        while let Some(member) = frontier.pop() {
            for g in &self.groups {
                if g.members.iter().any(|m| m.eq_ignore_ascii_case(&member)) && seen.insert(&g.id) {
                    found.push(g);
                    frontier.push(g.id.to_ascii_lowercase());
                }
            }
        }
        found
    }

    /// Every directory role assignment in PIM's terms: `(principal, definition, scope, app scope,
    /// eligible)`. The `directoryRoles` members are active tenant-wide assignments.
    pub fn unified_assignments(&self) -> Vec<(String, String, String, Option<String>, bool)> {
        let mut out: Vec<_> = self
            .roles
            .iter()
            .flat_map(|r| {
                r.members
                    .iter()
                    .map(|m| (m.clone(), r.role_template_id.clone(), "/".to_owned(), None, false))
            })
            .collect();
        out.extend(self.role_assignments.iter().map(|a| {
            (
                a.principal_id.clone(),
                a.role_definition_id.clone(),
                a.directory_scope_id.clone(),
                a.app_scope_id.clone(),
                a.assignment.eq_ignore_ascii_case("eligible"),
            )
        }));
        out
    }

    /// A role definition by id: a built-in one (from `directoryRoles`) or a custom one.
    pub fn role_definition(&self, id: &str) -> Option<(String, String, bool)> {
        self.roles
            .iter()
            .find(|r| r.role_template_id.eq_ignore_ascii_case(id))
            .map(|r| (r.role_template_id.clone(), r.display_name.clone(), true))
            .or_else(|| {
                self.role_definitions
                    .iter()
                    .find(|d| d.id.eq_ignore_ascii_case(id))
                    .map(|d| (d.id.clone(), d.display_name.clone(), d.is_built_in))
            })
    }

    /// Directory roles the user holds directly or through a role-assignable group.
    pub fn transitive_roles(&self, user_id: &str) -> Vec<&RoleSeed> {
        let groups: Vec<String> = self
            .transitive_groups(user_id)
            .into_iter()
            .filter(|g| g.is_assignable_to_role)
            .map(|g| g.id.to_ascii_lowercase())
            .collect();
        self.roles
            .iter()
            .filter(|r| {
                r.members
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(user_id) || groups.contains(&m.to_ascii_lowercase()))
            })
            .collect()
    }

    /// Direct role assignments of a principal (user or group), as `roleAssignments` lists them.
    pub fn direct_role_assignments(&self, principal_id: &str) -> Vec<&RoleSeed> {
        self.roles
            .iter()
            .filter(|r| r.members.iter().any(|m| m.eq_ignore_ascii_case(principal_id)))
            .collect()
    }
}

/// Counts of each kind, for summaries.
pub fn method_counts(user: &User) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for m in &user.methods {
        *out.entry(m.kind.seed_name()).or_default() += 1;
    }
    out
}
