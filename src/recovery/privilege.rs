//! Whether a target holds privilege, however it is held. The managed identity's application
//! permission (`UserAuthenticationMethod.ReadWrite.All`) bypasses Entra's own rule that only a
//! Privileged Authentication Administrator may change an admin's methods, so this check is the
//! only barrier between a convincing caller and an admin account.
//!
//! Privileged means any of:
//! - a directory role, built-in or custom, at any scope (tenant, administrative unit, application),
//!   active (permanent or activated) or PIM-eligible, held by the user or by a group it is in;
//! - a group it is only *eligible* to join or own through PIM for Groups, when that group holds
//!   such a role, is protected, or holds an app role of this API;
//! - membership (active or eligible, transitive) of a group in `TAP_PROTECTED_GROUPS`;
//! - one of this API's own app roles (a recovered helpdesk agent could recover everyone);
//! - ownership of a group that can hold roles, of a protected group, or of this API's application
//!   or service principal (an owner can add themselves, or grant themselves the API's roles).
//!
//! Every read it needs must succeed: a read that fails or is forbidden refuses the request
//! (fail closed), never "not privileged". What was found goes to the audit record, not to the
//! caller.

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::RecoveryError;
use crate::graph::models::{DirectoryObject, RoleInstance};
use crate::graph::{GraphClient, GraphError};
use crate::vocab::Fault;

/// One way the target holds privilege, for the audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privilege {
    /// `directoryRole`, `protectedGroup`, `appRole`, `groupOwner` or `apiOwner`.
    pub kind: &'static str,
    /// `active` or `eligible`.
    pub assignment: &'static str,
    /// The role's or group's id.
    pub id: String,
    /// The role's or group's name, when it could be read.
    pub name: Option<String>,
    /// A role's directory scope (`/`, `/administrativeUnits/{id}`) or app scope.
    pub scope: Option<String>,
    /// Through which group, when not held directly: `group:{id}` (member) or `pimGroup:{id}`
    /// (eligible through PIM for Groups).
    pub via: Option<String>,
}

impl Privilege {
    /// The audit record's `privilege` detail.
    pub fn detail(&self) -> Value {
        json!({"kind": self.kind, "assignment": self.assignment, "id": self.id, "name": self.name,
            "scope": self.scope, "via": self.via})
    }
}

/// What the check needs beyond Graph: the protected groups and how to find this API's service
/// principal (resolved once per process).
pub struct PrivilegeCheck {
    protected_groups: Vec<Uuid>,
    /// `AUTH_AUDIENCE`: the API's App ID URI or client id, one of its `servicePrincipalNames`
    /// (`None` on a command line without it: the check refuses, it cannot tell).
    api_name: Option<String>,
    /// The API's service principal and application object ids, found once.
    api_principal: OnceCell<ApiObjects>,
}

#[derive(Debug, Clone)]
struct ApiObjects {
    service_principal: String,
    application: Option<String>,
}

/// A read failed: refuse, naming the permission when Graph said 403.
fn read_failed(what: &'static str, permission: &'static str) -> impl Fn(GraphError) -> RecoveryError {
    move |e| {
        tracing::error!(error = %e, what, "a read the privilege check needs failed; refusing");
        if e.is_forbidden() {
            RecoveryError::failed(
                Fault::PermissionMissing,
                format!(
                    "Microsoft Graph refused to read {what}, so the service cannot tell whether the user is privileged and changed nothing. Grant the function app's identity {permission} (docs/deploy.md)."
                ),
            )
        } else {
            RecoveryError::failed(
                Fault::PrivilegeCheckUnavailable,
                format!(
                    "Microsoft Graph could not be read ({what}), so the service cannot tell whether the user is privileged and changed nothing. Try again later."
                ),
            )
        }
    }
}

const ROLE_READ: &str = "RoleManagement.Read.Directory";
const PIM_GROUPS_READ: &str = "PrivilegedEligibilitySchedule.Read.AzureADGroup";
const APP_READ: &str = "Application.Read.All";
const MEMBERS_READ: &str = "GroupMember.Read.All";

impl PrivilegeCheck {
    pub fn new(protected_groups: Vec<Uuid>, api_name: Option<String>) -> PrivilegeCheck {
        PrivilegeCheck {
            protected_groups,
            api_name,
            api_principal: OnceCell::new(),
        }
    }

    fn protected(&self, id: &str) -> bool {
        Uuid::parse_str(id).is_ok_and(|g| self.protected_groups.contains(&g))
    }

    /// The first privilege found for `user` (whose transitive `memberships` were read already),
    /// or `None` when every read succeeded and found none.
    ///
    /// # Errors
    /// `permission_missing` (Graph answered 403) or `privilege_check_unavailable`: nothing may
    /// be done to the user.
    pub async fn find(
        &self,
        graph: &GraphClient,
        user: &Uuid,
        memberships: &[DirectoryObject],
    ) -> Result<Option<Privilege>, RecoveryError> {
        // Active, tenant-wide built-in roles show up as directory roles among the memberships.
        if let Some(role) = memberships.iter().find(|m| m.is_role()) {
            return Ok(Some(Privilege {
                kind: "directoryRole",
                assignment: "active",
                id: role.role_template_id.clone().unwrap_or_else(|| role.id.clone()),
                name: role.display_name.clone(),
                scope: Some("/".into()),
                via: None,
            }));
        }
        let groups: Vec<&DirectoryObject> = memberships.iter().filter(|m| m.is_group()).collect();
        if let Some(g) = groups.iter().find(|g| self.protected(&g.id)) {
            return Ok(Some(protected_group(
                g.id.clone(),
                g.display_name.clone(),
                "active",
                None,
            )));
        }
        let user_id = user.to_string();
        // The reads that do not depend on each other, at once.
        let (eligible_groups, holders) = tokio::try_join!(
            async {
                graph
                    .group_eligibility_instances(&user_id)
                    .await
                    .map_err(read_failed("the PIM for Groups eligibilities", PIM_GROUPS_READ))
            },
            self.app_role_holders(graph),
        )?;
        // PIM for Groups: a group the user may join (or own, and so join) counts as theirs.
        if let Some(e) = eligible_groups.iter().find(|e| self.protected(&e.group_id)) {
            return Ok(Some(protected_group(
                e.group_id.clone(),
                None,
                "eligible",
                Some(format!("pimGroup:{}", e.group_id)),
            )));
        }
        if let Some(found) = self.eligible_through_nesting(graph, &eligible_groups).await? {
            return Ok(Some(found));
        }
        // Who may hold a role: the user, each group it is in that can hold roles (or may: when
        // Graph did not say, ask), and each group it is eligible for.
        let mut principals: Vec<(String, Option<String>)> = vec![(user_id.clone(), None)];
        principals.extend(
            groups
                .iter()
                .filter(|g| g.is_assignable_to_role != Some(false))
                .map(|g| (g.id.clone(), Some(format!("group:{}", g.id)))),
        );
        principals.extend(
            eligible_groups
                .iter()
                .map(|e| (e.group_id.clone(), Some(format!("pimGroup:{}", e.group_id)))),
        );
        if let Some(found) = app_role_held(&user_id, &groups, &eligible_groups, &holders) {
            return Ok(Some(found));
        }
        if let Some(owner) = self.owned(graph, &user_id).await? {
            return Ok(Some(owner));
        }
        for (principal, via) in &principals {
            if let Some(found) = self.role_held(graph, principal, via).await? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// A protected group the user may join through PIM for Groups by way of a group nested in it.
    async fn eligible_through_nesting(
        &self,
        graph: &GraphClient,
        eligible_groups: &[crate::graph::models::GroupEligibility],
    ) -> Result<Option<Privilege>, RecoveryError> {
        if eligible_groups.is_empty() {
            return Ok(None);
        }
        for p in &self.protected_groups {
            let nested = graph
                .group_transitive_member_ids(p, "microsoft.graph.group")
                .await
                .map_err(read_failed("the members of a protected group", MEMBERS_READ))?;
            if let Some(e) = eligible_groups
                .iter()
                .find(|e| nested.contains(&e.group_id.to_ascii_lowercase()))
            {
                return Ok(Some(protected_group(
                    p.to_string(),
                    None,
                    "eligible",
                    Some(format!("pimGroup:{}", e.group_id)),
                )));
            }
        }
        Ok(None)
    }

    /// The first active or eligible directory role `principal` holds (at any scope), as held
    /// `via` a group or directly.
    async fn role_held(
        &self,
        graph: &GraphClient,
        principal: &str,
        via: &Option<String>,
    ) -> Result<Option<Privilege>, RecoveryError> {
        let (active, eligible) = tokio::try_join!(
            async {
                graph
                    .role_assignment_instances(principal)
                    .await
                    .map_err(read_failed("the directory role assignments", ROLE_READ))
            },
            async {
                graph
                    .role_eligibility_instances(principal)
                    .await
                    .map_err(read_failed("the directory role eligibilities", ROLE_READ))
            },
        )?;
        let found = active
            .first()
            .map(|r| (r, "active"))
            .or_else(|| eligible.first().map(|r| (r, "eligible")));
        let Some((role, held)) = found else {
            return Ok(None);
        };
        // Held through a PIM-eligible group: eligible, whatever the group's assignment.
        let assignment = if via.as_deref().is_some_and(|v| v.starts_with("pimGroup:")) {
            "eligible"
        } else {
            held
        };
        Ok(Some(self.role(graph, role, assignment, via.clone()).await))
    }

    /// A role found, with its name when the definition can be read (best effort: the decision is
    /// made already).
    async fn role(
        &self,
        graph: &GraphClient,
        role: &RoleInstance,
        assignment: &'static str,
        via: Option<String>,
    ) -> Privilege {
        let name = match graph.role_definition_name(&role.role_definition_id).await {
            Ok(name) => name,
            Err(e) => {
                tracing::warn!(error = %e, "the role's name could not be read");
                None
            }
        };
        let scope = match (&role.directory_scope_id, &role.app_scope_id) {
            (_, Some(app)) if app != "/" => Some(format!("app:{app}")),
            (Some(dir), _) => Some(dir.clone()),
            _ => None,
        };
        Privilege {
            kind: "directoryRole",
            assignment,
            id: role.role_definition_id.clone(),
            name,
            scope,
            via,
        }
    }

    /// This API's service principal and application, found once by the API's name
    /// (`AUTH_AUDIENCE`); not finding the service principal is a misconfiguration, refused like a
    /// failed read.
    async fn api_objects(&self, graph: &GraphClient) -> Result<&ApiObjects, RecoveryError> {
        self.api_principal
            .get_or_try_init(|| async {
                let name = self.api_name.as_deref().ok_or_else(|| {
                    RecoveryError::failed(
                        Fault::PrivilegeCheckUnavailable,
                        "AUTH_AUDIENCE (this API's App ID URI) is not set, so the holders of its app roles cannot be found; nothing was changed",
                    )
                })?;
                let found = graph
                    .service_principal_by_name(name)
                    .await
                    .map_err(read_failed("this API's service principal", APP_READ))?;
                let (service_principal, app_id) = found.ok_or_else(|| {
                    RecoveryError::failed(Fault::PrivilegeCheckUnavailable,
                        format!(
                            "no service principal in the tenant has the name {} (AUTH_AUDIENCE), so the holders of this API's app roles cannot be read; nothing was changed",
                            name
                        ),
                    )
                })?;
                // The registration may live in another tenant (multi-tenant apps): then nobody
                // here owns it, and the service principal's owners are all there is.
                let application = graph
                    .application_object_id(&app_id)
                    .await
                    .map_err(read_failed("this API's application", APP_READ))?;
                Ok(ApiObjects {
                    service_principal,
                    application,
                })
            })
            .await
    }

    /// Everyone holding one of this API's app roles.
    async fn app_role_holders(
        &self,
        graph: &GraphClient,
    ) -> Result<Vec<crate::graph::models::AppRoleAssignment>, RecoveryError> {
        let api = self.api_objects(graph).await?;
        graph
            .app_role_assigned_to(&api.service_principal)
            .await
            .map_err(read_failed("the holders of this API's app roles", APP_READ))
    }

    /// Whether the user owns this API's application or service principal, a group that can hold
    /// roles, or a protected group: each lets its owner make themselves privileged.
    async fn owned(&self, graph: &GraphClient, user: &str) -> Result<Option<Privilege>, RecoveryError> {
        let api = self.api_objects(graph).await?.clone();
        let mut api_owners = graph
            .owner_ids("servicePrincipals", &api.service_principal)
            .await
            .map_err(read_failed("the owners of this API's service principal", APP_READ))?;
        if let Some(app) = &api.application {
            api_owners.extend(
                graph
                    .owner_ids("applications", app)
                    .await
                    .map_err(read_failed("the owners of this API's application", APP_READ))?,
            );
        }
        if api_owners.iter().any(|o| o.eq_ignore_ascii_case(user)) {
            return Ok(Some(Privilege {
                kind: "apiOwner",
                assignment: "active",
                id: api.service_principal,
                name: None,
                scope: None,
                via: None,
            }));
        }
        let mut groups = graph
            .role_assignable_group_ids()
            .await
            .map_err(read_failed("the groups that can hold roles", MEMBERS_READ))?;
        groups.extend(self.protected_groups.iter().map(Uuid::to_string));
        groups.sort();
        groups.dedup();
        let owners = futures::stream::iter(groups.into_iter().map(|g| async move {
            let owners = graph.owner_ids("groups", &g).await;
            (g, owners)
        }))
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
        for (group, found) in owners {
            let found = found.map_err(read_failed("the owners of a privileged group", MEMBERS_READ))?;
            if found.iter().any(|o| o.eq_ignore_ascii_case(user)) {
                return Ok(Some(Privilege {
                    kind: "groupOwner",
                    assignment: "active",
                    id: group,
                    name: None,
                    scope: None,
                    via: None,
                }));
            }
        }
        Ok(None)
    }
}

fn protected_group(id: String, name: Option<String>, assignment: &'static str, via: Option<String>) -> Privilege {
    Privilege {
        kind: "protectedGroup",
        assignment,
        id,
        name,
        scope: None,
        via,
    }
}

/// This API's app roles, held directly or through any group (active, or eligible through PIM for
/// Groups): the first found.
fn app_role_held(
    user_id: &str,
    groups: &[&DirectoryObject],
    eligible_groups: &[crate::graph::models::GroupEligibility],
    holders: &[crate::graph::models::AppRoleAssignment],
) -> Option<Privilege> {
    let (app_role_id, via) = std::iter::once((user_id.to_owned(), None))
        .chain(groups.iter().map(|g| (g.id.clone(), Some(format!("group:{}", g.id)))))
        .chain(
            eligible_groups
                .iter()
                .map(|e| (e.group_id.clone(), Some(format!("pimGroup:{}", e.group_id)))),
        )
        .find_map(|(p, via)| {
            holders
                .iter()
                .find(|h| h.principal_id.eq_ignore_ascii_case(&p))
                .map(|h| (h.app_role_id.clone(), via))
        })?;
    let assignment = if via.as_deref().is_some_and(|v| v.starts_with("pimGroup:")) {
        "eligible"
    } else {
        "active"
    };
    Some(Privilege {
        kind: "appRole",
        assignment,
        id: app_role_id,
        name: None,
        scope: None,
        via,
    })
}
