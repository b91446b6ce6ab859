//! The target stage: the user found, not the caller, and (`privilege`) not privileged unless a
//! second approver will agree.

use super::RecoveryError;
use super::context::{TapContext, graph_failed};
use crate::audit::Target;
use crate::config::ApprovalTrigger as Trigger;
use crate::graph::models::{User, UserRef};
use crate::vocab::CallerRecord;
use crate::vocab::{Fault, Refusal};

impl TapContext<'_> {
    /// The user, refused when it is the caller or privileged in any way (`privilege`), unless
    /// privileged targets wait for a second approver (then `true`); what was found goes into the
    /// audit record's `privilege`, not to the caller.
    pub(crate) async fn find_target(
        &self,
        caller: &CallerRecord,
        user: &UserRef,
        target: &mut Target,
        details: &mut super::details::Details,
    ) -> Result<(User, Vec<crate::graph::models::DirectoryObject>, bool), RecoveryError> {
        let user = self
            .graph
            .get_user(user)
            .await
            .map_err(graph_failed)?
            .ok_or_else(|| RecoveryError::refused(Refusal::UserNotFound, "no such user"))?;
        *target = Target {
            object_id: Some(user.id.to_string()),
            upn: Some(user.user_principal_name.clone()),
        };
        // Separation of duties: nobody recovers their own account through this service.
        if caller
            .object_id
            .as_deref()
            .is_some_and(|me| me.eq_ignore_ascii_case(&user.id.to_string()))
            || caller.is_person(&user.id.to_string())
        {
            return Err(RecoveryError::refused(
                Refusal::SelfRecoveryForbidden,
                "a caller cannot recover its own account; ask another agent",
            ));
        }
        let memberships = self
            .graph
            .transitive_member_of(&user.id)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "the target's memberships could not be read; refusing");
                let (code, message) = if e.is_forbidden() {
                    (Fault::PermissionMissing, "Microsoft Graph refused to read the user's group and role memberships, so the service cannot tell whether the user is privileged and changed nothing. Grant the function app's identity User.Read.All (docs/deploy.md).")
                } else {
                    (Fault::PrivilegeCheckUnavailable, "Microsoft Graph could not be read (the user's memberships), so the service cannot tell whether the user is privileged and changed nothing. Try again later.")
                };
                RecoveryError::failed(code, message)
            })?;
        let privileged = match self.privilege.find(self.graph, &user.id, &memberships).await? {
            None => false,
            Some(privilege) => {
                details.privilege = Some(privilege.clone());
                if !self.settings.approval.requires(Trigger::Privileged) {
                    tracing::warn!(
                        kind = privilege.kind,
                        assignment = privilege.assignment,
                        "the target is privileged; refusing"
                    );
                    return Err(RecoveryError::refused(
                        Refusal::TargetProtected,
                        "the user holds or is eligible for an administrative role, is in a protected group, or holds a role of this service; a person with the Privileged Authentication Administrator role must do this",
                    ));
                }
                tracing::warn!(
                    kind = privilege.kind,
                    assignment = privilege.assignment,
                    "the target is privileged; a second approver must agree"
                );
                true
            }
        };
        Ok((user, memberships, privileged))
    }
}
