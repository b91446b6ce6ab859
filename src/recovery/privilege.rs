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
//! - ownership of a group that can hold roles, of a protected group, of a group that holds one of
//!   this API's app roles, or of this API's application or service principal (an owner can add
//!   themselves, or grant themselves the API's roles). Who owns this API and which groups hold its
//!   roles are facts about the API, kept at most 60 s (`fresh`); the groups' owners are read by
//!   every recovery.
//!
//! Every read it needs must succeed: a read that fails or is forbidden refuses the request
//! (fail closed), never "not privileged". What was found goes to the audit record, not to the
//! caller.

use tokio::sync::OnceCell;
use uuid::Uuid;

use super::RecoveryError;
use crate::graph::models::{AppRoleAssignment, DirectoryObject, GroupEligibility, RoleInstance};
use crate::graph::{GraphClient, GraphError};
use crate::vocab::Fault;

/// One way the target holds privilege, for the audit record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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

/// What the check needs beyond Graph: the protected groups and how to find this API's service
/// principal (resolved once per process).
pub struct PrivilegeCheck {
    protected_groups: Vec<Uuid>,
    /// `AUTH_AUDIENCE`: the API's App ID URI or client id, one of its `servicePrincipalNames`
    /// (`None` on a command line without it: the check refuses, it cannot tell).
    api_name: Option<String>,
    /// The API's service principal and application object ids, found once.
    api_principal: OnceCell<ApiObjects>,
    /// Who owns this API and which groups hold its app roles: facts about the API, not about any
    /// user, that change rarely, kept at most 60 s (`Fresh`; a failed read keeps nothing).
    api_facts: super::fresh::Fresh<ApiFacts>,
}

/// What `PrivilegeCheck::api_facts` keeps.
#[derive(Debug)]
struct ApiFacts {
    service_principal: String,
    /// The owners of this API's service principal and of its application.
    owners: Vec<String>,
    /// The groups that hold one of this API's app roles: their owners can add themselves.
    role_groups: Vec<String>,
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
const DIRECTORY_READ: &str = "Directory.Read.All";

/// The directory roles each principal holds, active and eligible, read side by side.
async fn roles_of(
    graph: &GraphClient,
    principals: Vec<(String, Option<String>)>,
) -> Result<Vec<RolesOf>, RecoveryError> {
    futures::future::try_join_all(principals.into_iter().map(|(principal, via)| async move {
        let (active, eligible) = tokio::try_join!(
            async {
                graph
                    .role_assignment_instances(&principal)
                    .await
                    .map_err(read_failed("the directory role assignments", ROLE_READ))
            },
            async {
                graph
                    .role_eligibility_instances(&principal)
                    .await
                    .map_err(read_failed("the directory role eligibilities", ROLE_READ))
            },
        )?;
        Ok(RolesOf { via, active, eligible })
    }))
    .await
}

impl PrivilegeCheck {
    pub fn new(protected_groups: Vec<Uuid>, api_name: Option<String>) -> PrivilegeCheck {
        PrivilegeCheck {
            protected_groups,
            api_name,
            api_principal: OnceCell::new(),
            api_facts: super::fresh::Fresh::default(),
        }
    }

    /// Ask for every read about `user` the check needs that does not wait on another, together
    /// (their answers stay with the recovery's scoped client, so `find` reads none twice).
    pub(crate) async fn prefetch(&self, graph: &GraphClient, user: &Uuid) {
        let user_id = user.to_string();
        let _ = tokio::join!(
            graph.group_eligibility_instances(&user_id),
            graph.app_roles_of("users", &user_id),
            graph.role_assignment_instances(&user_id),
            graph.role_eligibility_instances(&user_id),
            self.owners(graph),
        );
    }

    /// The first privilege found for `user` (whose transitive `memberships` were read already),
    /// or `None` when every read succeeded and found none: the reads (`gather`), then the pure
    /// judgement (`judge`), then the role's name for the audit record (best effort).
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
        // Active, tenant-wide built-in roles and protected groups show among the memberships:
        // judged before any further read.
        let mut evidence = Evidence {
            memberships: memberships.to_vec(),
            ..Evidence::default()
        };
        if let Some(found) = judge(&user.to_string(), &self.protected_groups, &evidence) {
            return Ok(Some(found));
        }
        self.gather(graph, user, &mut evidence).await?;
        let Some(mut found) = judge(&user.to_string(), &self.protected_groups, &evidence) else {
            return Ok(None);
        };
        if found.kind == "directoryRole" && found.name.is_none() {
            found.name = match graph.role_definition_name(&found.id).await {
                Ok(name) => name,
                Err(e) => {
                    tracing::warn!(error = %e, "the role's name could not be read");
                    None
                }
            };
        }
        Ok(Some(found))
    }

    /// Every read the judgement needs beyond the memberships, in two rounds: what needs only the
    /// user (at once), then what needs what that found (the groups it may hold roles or app
    /// roles through, the protected groups' nesting), at once. Any read that fails refuses.
    async fn gather(&self, graph: &GraphClient, user: &Uuid, evidence: &mut Evidence) -> Result<(), RecoveryError> {
        let user_id = user.to_string();
        // The API's own objects first: a tenant that never granted Application.Read.All hears
        // about that grant first.
        let (owners, eligible_groups, own_app_roles) = tokio::join!(
            self.owners(graph),
            async {
                graph
                    .group_eligibility_instances(&user_id)
                    .await
                    .map_err(read_failed("the PIM for Groups eligibilities", PIM_GROUPS_READ))
            },
            async {
                graph
                    .app_roles_of("users", &user_id)
                    .await
                    .map_err(read_failed("the user's app role assignments", DIRECTORY_READ))
            },
        );
        // In this order whichever answered first.
        let (owners, eligible_groups, own_app_roles) = (owners?, eligible_groups?, own_app_roles?);
        evidence.eligible_groups = eligible_groups;
        let (api, api_owners, group_owners) = owners;
        evidence.api = Some((api.clone(), api_owners));
        evidence.group_owners = group_owners;
        let principals = role_principals(&user_id, evidence);
        let (nesting, pim_app_roles, roles) = tokio::try_join!(
            self.protected_nesting(graph, !evidence.eligible_groups.is_empty()),
            self.eligible_groups_app_roles(graph, &evidence.eligible_groups),
            roles_of(graph, principals),
        )?;
        evidence.protected_nesting = nesting;
        evidence.roles = roles;
        evidence.app_role_holders = own_app_roles
            .into_iter()
            .chain(pim_app_roles)
            .filter(|a| a.resource_id.eq_ignore_ascii_case(&api))
            .map(|a| AppRoleAssignment {
                principal_id: a.principal_id,
                principal_type: a.principal_type,
                app_role_id: a.app_role_id,
            })
            .collect();
        Ok(())
    }

    /// The groups nested in each protected group, when the user is eligible for some group.
    async fn protected_nesting(
        &self,
        graph: &GraphClient,
        needed: bool,
    ) -> Result<Vec<(Uuid, Vec<String>)>, RecoveryError> {
        if !needed {
            return Ok(Vec::new());
        }
        futures::future::try_join_all(self.protected_groups.iter().map(|p| async move {
            graph
                .group_transitive_member_ids(p, "microsoft.graph.group")
                .await
                .map(|nested| (*p, nested))
                .map_err(read_failed("the members of a protected group", MEMBERS_READ))
        }))
        .await
    }

    /// The app roles of each group the user is eligible for through PIM for Groups.
    async fn eligible_groups_app_roles(
        &self,
        graph: &GraphClient,
        eligible: &[GroupEligibility],
    ) -> Result<Vec<crate::graph::models::AppRoleAssignmentOf>, RecoveryError> {
        let reads = futures::future::try_join_all(eligible.iter().map(|e| async move {
            graph
                .app_roles_of("groups", &e.group_id)
                .await
                .map_err(read_failed("the app role assignments of a group", DIRECTORY_READ))
        }))
        .await?;
        Ok(reads.into_iter().flatten().collect())
    }

    /// This API's service principal and its owners (from `api_facts`, at most 60 s old) and, read
    /// by every recovery, each group whose owners could make themselves privileged, with them: every group that
    /// can hold roles (one listing), and each protected group and each group holding one of this
    /// API's app roles (15 to a read).
    async fn owners(
        &self,
        graph: &GraphClient,
    ) -> Result<(String, Vec<String>, Vec<(String, Vec<String>)>), RecoveryError> {
        // The role-assignable groups' listing does not wait for this API's facts; a failure of
        // the API's own reads is told first.
        let (listing, named) = tokio::join!(
            async {
                graph.role_assignable_group_owners().await.map_err(read_failed(
                    "the groups that can hold roles and their owners",
                    MEMBERS_READ,
                ))
            },
            async {
                let api = self.api_facts(graph).await?;
                let mut named: Vec<String> = self.protected_groups.iter().map(Uuid::to_string).collect();
                named.extend(api.role_groups.iter().cloned());
                named.sort();
                named.dedup();
                let more = graph.owners_of_groups(&named).await.map_err(read_failed(
                    "the owners of the protected groups and of the groups holding this API's app roles",
                    MEMBERS_READ,
                ))?;
                Ok::<_, RecoveryError>((api, more))
            },
        );
        let (api, more) = named?;
        let mut groups = listing?;
        groups.extend(more);
        Ok((api.service_principal.clone(), api.owners.clone(), groups))
    }

    /// Who owns this API's service principal and application, and which groups hold its app
    /// roles, at most 60 s old (read outside the recovery's scope, as the TAP policy is: other
    /// recoveries wait for this read). Nothing about the user is kept.
    async fn api_facts(&self, graph: &GraphClient) -> Result<std::sync::Arc<ApiFacts>, RecoveryError> {
        let graph = graph.unscoped();
        self.api_facts
            .get(|| async {
                let api = self.api_objects(&graph).await?.clone();
                let (sp_owners, app_owners, holders) = tokio::try_join!(
                    async {
                        graph
                            .owner_ids("servicePrincipals", &api.service_principal)
                            .await
                            .map_err(read_failed("the owners of this API's service principal", APP_READ))
                    },
                    async {
                        match &api.application {
                            Some(app) => graph
                                .owner_ids("applications", app)
                                .await
                                .map_err(read_failed("the owners of this API's application", APP_READ)),
                            None => Ok(Vec::new()),
                        }
                    },
                    async {
                        graph
                            .app_role_assigned_to(&api.service_principal)
                            .await
                            .map_err(read_failed("the holders of this API's app roles", APP_READ))
                    },
                )?;
                let mut role_groups: Vec<String> = holders
                    .into_iter()
                    .filter(|h| h.principal_type.as_deref() == Some("Group"))
                    .map(|h| h.principal_id.to_ascii_lowercase())
                    .collect();
                role_groups.sort();
                role_groups.dedup();
                Ok(ApiFacts {
                    service_principal: api.service_principal,
                    owners: sp_owners.into_iter().chain(app_owners).collect(),
                    role_groups,
                })
            })
            .await
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
}

/// What Graph said about a user that the judgement needs (the gathering stage's output). Built
/// only here, by `find` and `gather` (every read succeeded, or the check refused): "not read"
/// never passes for "nothing found".
#[derive(Debug, Default, Clone)]
struct Evidence {
    /// The user's transitive memberships (directory roles, groups).
    memberships: Vec<DirectoryObject>,
    /// The groups the user may join or own through PIM for Groups.
    eligible_groups: Vec<GroupEligibility>,
    /// Each protected group with the ids of the groups nested in it (read only when the user is
    /// eligible for some group).
    protected_nesting: Vec<(Uuid, Vec<String>)>,
    /// The user's assignments of this API's app roles: its own and its direct groups'
    /// (`users/{id}/appRoleAssignments`), and those of the groups it is eligible for.
    app_role_holders: Vec<AppRoleAssignment>,
    /// This API's service principal id, and the owners of it and of its application.
    api: Option<(String, Vec<String>)>,
    /// Each group that can hold roles, is protected or holds one of this API's app roles, with
    /// its owners.
    group_owners: Vec<(String, Vec<String>)>,
    /// The directory roles each principal that may hold one holds, active and eligible.
    roles: Vec<RolesOf>,
}

/// The directory roles one principal (the user, or a group it is in or eligible for) holds.
#[derive(Debug, Clone)]
struct RolesOf {
    /// `None` for the user, `group:{id}` or `pimGroup:{id}`.
    via: Option<String>,
    active: Vec<RoleInstance>,
    eligible: Vec<RoleInstance>,
}

/// The principals whose directory roles count as the user's, in the order they are judged.
fn role_principals(user_id: &str, evidence: &Evidence) -> Vec<(String, Option<String>)> {
    let mut principals: Vec<(String, Option<String>)> = vec![(user_id.to_owned(), None)];
    principals.extend(
        evidence
            .memberships
            .iter()
            .filter(|g| g.is_group() && g.is_assignable_to_role != Some(false))
            .map(|g| (g.id.clone(), Some(format!("group:{}", g.id)))),
    );
    principals.extend(
        evidence
            .eligible_groups
            .iter()
            .map(|e| (e.group_id.clone(), Some(format!("pimGroup:{}", e.group_id)))),
    );
    principals
}

fn is_protected(protected: &[Uuid], id: &str) -> bool {
    Uuid::parse_str(id).is_ok_and(|g| protected.contains(&g))
}

/// Held through a PIM-eligible group: eligible, whatever the group's own assignment.
fn through(via: Option<&str>, held: &'static str) -> &'static str {
    if via.is_some_and(|v| v.starts_with("pimGroup:")) {
        "eligible"
    } else {
        held
    }
}

/// The first privilege `evidence` shows (pure: no reads), in this order: an active directory role
/// among the memberships, a protected group (member, eligible, or eligible for a group nested in
/// it), one of this API's app roles, ownership of the API or of a privileged group, a directory
/// role at any scope held by the user or a group it is in or eligible for.
fn judge(user_id: &str, protected: &[Uuid], evidence: &Evidence) -> Option<Privilege> {
    let groups: Vec<&DirectoryObject> = evidence.memberships.iter().filter(|m| m.is_group()).collect();
    if let Some(role) = evidence.memberships.iter().find(|m| m.is_role()) {
        return Some(Privilege {
            kind: "directoryRole",
            assignment: "active",
            id: role.role_template_id.clone().unwrap_or_else(|| role.id.clone()),
            name: role.display_name.clone(),
            scope: Some("/".into()),
            via: None,
        });
    }
    if let Some(g) = groups.iter().find(|g| is_protected(protected, &g.id)) {
        return Some(protected_group(g.id.clone(), g.display_name.clone(), "active", None));
    }
    let eligible = &evidence.eligible_groups;
    if let Some(e) = eligible.iter().find(|e| is_protected(protected, &e.group_id)) {
        let via = Some(format!("pimGroup:{}", e.group_id));
        return Some(protected_group(e.group_id.clone(), None, "eligible", via));
    }
    for (p, nested) in &evidence.protected_nesting {
        if let Some(e) = eligible
            .iter()
            .find(|e| nested.iter().any(|n| n.eq_ignore_ascii_case(&e.group_id)))
        {
            let via = Some(format!("pimGroup:{}", e.group_id));
            return Some(protected_group(p.to_string(), None, "eligible", via));
        }
    }
    if let Some(found) = app_role_held(user_id, &groups, eligible, &evidence.app_role_holders) {
        return Some(found);
    }
    if let Some(found) = owned(user_id, evidence) {
        return Some(found);
    }
    role_held(evidence)
}

/// Ownership of this API's application or service principal, of a group that can hold roles, of
/// a protected group or of a group holding one of this API's app roles: each lets its owner make
/// themselves privileged.
fn owned(user_id: &str, evidence: &Evidence) -> Option<Privilege> {
    let owns = |owners: &[String]| owners.iter().any(|o| o.eq_ignore_ascii_case(user_id));
    let owner = |kind: &'static str, id: &str| Privilege {
        kind,
        assignment: "active",
        id: id.to_owned(),
        name: None,
        scope: None,
        via: None,
    };
    if let Some((sp, owners)) = &evidence.api
        && owns(owners)
    {
        return Some(owner("apiOwner", sp));
    }
    evidence
        .group_owners
        .iter()
        .find(|(_, owners)| owns(owners))
        .map(|(group, _)| owner("groupOwner", group))
}

/// The first directory role (active before eligible) of the first principal holding one.
fn role_held(evidence: &Evidence) -> Option<Privilege> {
    evidence.roles.iter().find_map(|r| {
        let (role, held) = r
            .active
            .first()
            .map(|role| (role, "active"))
            .or_else(|| r.eligible.first().map(|role| (role, "eligible")))?;
        let scope = match (&role.directory_scope_id, &role.app_scope_id) {
            (_, Some(app)) if app != "/" => Some(format!("app:{app}")),
            (Some(dir), _) => Some(dir.clone()),
            _ => None,
        };
        Some(Privilege {
            kind: "directoryRole",
            assignment: through(r.via.as_deref(), held),
            id: role.role_definition_id.clone(),
            name: None,
            scope,
            via: r.via.clone(),
        })
    })
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
    Some(Privilege {
        kind: "appRole",
        assignment: through(via.as_deref(), "active"),
        id: app_role_id,
        name: None,
        scope: None,
        via,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "11111111-1111-1111-1111-111111111111";
    const PROTECTED: &str = "22222222-2222-2222-2222-222222222222";
    const GROUP: &str = "33333333-3333-3333-3333-333333333333";
    const PIM_GROUP: &str = "44444444-4444-4444-4444-444444444444";
    const ROLE: &str = "62e90394-69f5-4237-9190-012177145e10";

    fn object(kind: &str, id: &str, assignable: Option<bool>) -> DirectoryObject {
        serde_json::from_value(
            serde_json::json!({"@odata.type": format!("#microsoft.graph.{kind}"), "id": id,
            "displayName": "x", "roleTemplateId": (kind == "directoryRole").then_some(ROLE),
            "isAssignableToRole": assignable}),
        )
        .unwrap()
    }
    fn eligible_for(group: &str) -> GroupEligibility {
        GroupEligibility {
            principal_id: USER.into(),
            group_id: group.into(),
            access_id: "member".into(),
        }
    }
    fn role(dir: Option<&str>, app: Option<&str>) -> RoleInstance {
        RoleInstance {
            principal_id: "p".into(),
            role_definition_id: ROLE.into(),
            directory_scope_id: dir.map(str::to_owned),
            app_scope_id: app.map(str::to_owned),
        }
    }
    fn roles_of(via: Option<&str>, active: Vec<RoleInstance>, eligible: Vec<RoleInstance>) -> RolesOf {
        RolesOf {
            via: via.map(str::to_owned),
            active,
            eligible,
        }
    }
    fn holder(principal: &str) -> AppRoleAssignment {
        AppRoleAssignment {
            principal_id: principal.into(),
            principal_type: None,
            app_role_id: "recovery-operator".into(),
        }
    }

    /// (case, evidence, expected (kind, assignment, scope, via) or None).
    #[allow(clippy::type_complexity)]
    fn cases() -> Vec<(
        &'static str,
        Evidence,
        Option<(&'static str, &'static str, Option<String>, Option<String>)>,
    )> {
        let e = Evidence::default;
        let pim = Some(format!("pimGroup:{PIM_GROUP}"));
        let grp = Some(format!("group:{GROUP}"));
        vec![
            ("nothing at all", e(), None),
            (
                "a plain group, no roles",
                Evidence {
                    memberships: vec![object("group", GROUP, Some(false))],
                    ..e()
                },
                None,
            ),
            (
                "an active tenant-wide role among the memberships",
                Evidence {
                    memberships: vec![object("directoryRole", "r1", None)],
                    ..e()
                },
                Some(("directoryRole", "active", Some("/".into()), None)),
            ),
            (
                "a member of a protected group",
                Evidence {
                    memberships: vec![object("group", PROTECTED, None)],
                    ..e()
                },
                Some(("protectedGroup", "active", None, None)),
            ),
            (
                "eligible for a protected group through PIM for Groups",
                Evidence {
                    eligible_groups: vec![eligible_for(PROTECTED)],
                    ..e()
                },
                Some((
                    "protectedGroup",
                    "eligible",
                    None,
                    Some(format!("pimGroup:{PROTECTED}")),
                )),
            ),
            (
                "eligible for a group nested in a protected group",
                Evidence {
                    eligible_groups: vec![eligible_for(PIM_GROUP)],
                    protected_nesting: vec![(PROTECTED.parse().unwrap(), vec![PIM_GROUP.to_uppercase()])],
                    ..e()
                },
                Some(("protectedGroup", "eligible", None, pim.clone())),
            ),
            (
                "this API's app role held directly",
                Evidence {
                    app_role_holders: vec![holder(USER)],
                    ..e()
                },
                Some(("appRole", "active", None, None)),
            ),
            (
                "this API's app role through a group",
                Evidence {
                    memberships: vec![object("group", GROUP, Some(false))],
                    app_role_holders: vec![holder(GROUP)],
                    ..e()
                },
                Some(("appRole", "active", None, grp.clone())),
            ),
            (
                "this API's app role through a PIM-eligible group",
                Evidence {
                    eligible_groups: vec![eligible_for(PIM_GROUP)],
                    app_role_holders: vec![holder(PIM_GROUP)],
                    ..e()
                },
                Some(("appRole", "eligible", None, pim.clone())),
            ),
            (
                "an owner of this API's service principal or application",
                Evidence {
                    api: Some(("sp".into(), vec![USER.to_uppercase()])),
                    ..e()
                },
                Some(("apiOwner", "active", None, None)),
            ),
        ]
    }

    /// Directory roles read per principal: (case, evidence, expected).
    #[allow(clippy::type_complexity)]
    fn role_cases() -> Vec<(
        &'static str,
        Evidence,
        Option<(&'static str, &'static str, Option<String>, Option<String>)>,
    )> {
        let e = Evidence::default;
        let pim = Some(format!("pimGroup:{PIM_GROUP}"));
        let grp = Some(format!("group:{GROUP}"));
        vec![
            (
                "an owner of a role-assignable or protected group",
                Evidence {
                    api: Some(("sp".into(), vec![])),
                    group_owners: vec![
                        (GROUP.into(), vec!["other".into()]),
                        (PROTECTED.into(), vec![USER.into()]),
                    ],
                    ..e()
                },
                Some(("groupOwner", "active", None, None)),
            ),
            (
                "an active role at an administrative unit",
                Evidence {
                    roles: vec![roles_of(
                        None,
                        vec![role(Some("/administrativeUnits/au1"), None)],
                        vec![],
                    )],
                    ..e()
                },
                Some(("directoryRole", "active", Some("/administrativeUnits/au1".into()), None)),
            ),
            (
                "a PIM-eligible role, tenant-wide",
                Evidence {
                    roles: vec![roles_of(None, vec![], vec![role(Some("/"), None)])],
                    ..e()
                },
                Some(("directoryRole", "eligible", Some("/".into()), None)),
            ),
            (
                "a role scoped to one application",
                Evidence {
                    roles: vec![roles_of(None, vec![role(Some("/"), Some("app-1"))], vec![])],
                    ..e()
                },
                Some(("directoryRole", "active", Some("app:app-1".into()), None)),
            ),
            (
                "an active role held by a group the user is in",
                Evidence {
                    roles: vec![
                        roles_of(None, vec![], vec![]),
                        roles_of(grp.as_deref(), vec![role(Some("/"), None)], vec![]),
                    ],
                    ..e()
                },
                Some(("directoryRole", "active", Some("/".into()), grp.clone())),
            ),
            (
                "an active role of a group the user is only eligible for counts as eligible",
                Evidence {
                    roles: vec![roles_of(pim.as_deref(), vec![role(Some("/"), None)], vec![])],
                    ..e()
                },
                Some(("directoryRole", "eligible", Some("/".into()), pim.clone())),
            ),
            (
                "the active role wins over the eligible one of the same principal",
                Evidence {
                    roles: vec![roles_of(
                        None,
                        vec![role(Some("/administrativeUnits/au1"), None)],
                        vec![role(Some("/"), None)],
                    )],
                    ..e()
                },
                Some(("directoryRole", "active", Some("/administrativeUnits/au1".into()), None)),
            ),
            (
                "somebody else owning the API and the groups is no privilege of the user's",
                Evidence {
                    api: Some(("sp".into(), vec!["someone".into()])),
                    group_owners: vec![(GROUP.into(), vec!["someone".into()])],
                    app_role_holders: vec![holder("someone")],
                    ..e()
                },
                None,
            ),
        ]
    }

    #[test]
    fn each_way_of_holding_privilege_is_judged_privileged_and_nothing_else_is() {
        let protected: Vec<Uuid> = vec![PROTECTED.parse().unwrap()];
        for (case, evidence, expected) in cases().into_iter().chain(role_cases()) {
            let found = judge(USER, &protected, &evidence).map(|p| (p.kind, p.assignment, p.scope, p.via));
            assert_eq!(found, expected, "{case}");
        }
    }

    #[test]
    fn the_user_is_judged_before_the_groups_and_memberships_before_reads() {
        let protected: Vec<Uuid> = vec![PROTECTED.parse().unwrap()];
        // A role among the memberships is found even when the app role read says more.
        let both = Evidence {
            memberships: vec![object("directoryRole", "r1", None), object("group", PROTECTED, None)],
            app_role_holders: vec![holder(USER)],
            ..Evidence::default()
        };
        assert_eq!(judge(USER, &protected, &both).unwrap().kind, "directoryRole");
        // Only groups that may hold roles are asked for theirs.
        let evidence = Evidence {
            memberships: vec![object("group", GROUP, Some(false)), object("group", PIM_GROUP, None)],
            eligible_groups: vec![eligible_for("55555555-5555-5555-5555-555555555555")],
            ..Evidence::default()
        };
        let asked: Vec<Option<String>> = role_principals(USER, &evidence)
            .into_iter()
            .map(|(_, via)| via)
            .collect();
        assert_eq!(
            asked,
            vec![
                None,
                Some(format!("group:{PIM_GROUP}")),
                Some("pimGroup:55555555-5555-5555-5555-555555555555".into())
            ]
        );
    }
}
