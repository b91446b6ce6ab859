//! The target stage: the user found, not the caller, and (`privilege`) not privileged unless a
//! second approver will agree.

use super::RecoveryError;
use super::context::{TapContext, graph_failed};
use crate::audit::Target;
use crate::config::ApprovalTrigger as Trigger;
use crate::graph::models::{User, UserRef};
use crate::vocab::CallerRecord;
use crate::vocab::{Fault, Refusal};

/// What the stages after the target will read, so it is asked for with the memberships.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Wants {
    /// The channel a pass or a code would take: its address, whether it changed lately, and
    /// whether it is the caller's.
    pub channel: Option<crate::vocab::Channel>,
    /// The TAP policy (a pass is coming, or the console shows it).
    pub policy: bool,
    /// The user's methods (a reset, the console).
    pub methods: bool,
    /// The user's default method (a reset: a default phone is moved off before it is removed).
    pub default_method: bool,
    /// Whether the channel's address is the caller's (a pass or a code is coming).
    pub callers: bool,
}

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
        wants: Wants,
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
        // Every read about the user that waits on nothing else, asked together with the
        // memberships: one round trip; the stages that judge them find them read.
        let (memberships, ()) = tokio::join!(
            self.graph.transitive_member_of(&user.id),
            Box::pin(self.prefetch(caller, &user, wants))
        );
        let memberships = memberships
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

impl TapContext<'_> {
    /// Ask, together, for the reads about `user` the later stages make and that wait on nothing
    /// else: the privilege check's, the risk, the policy and, for a channel, its address and
    /// whether it changed lately. Their answers (or failures) stay with the recovery's scoped
    /// client; each stage still judges its own, in its order, failing closed as before.
    async fn prefetch(&self, caller: &CallerRecord, user: &User, wants: Wants) {
        use crate::config::RiskCheck;
        use crate::vocab::Channel;
        let channel = wants.channel;
        let risk = async {
            if self.settings.risk_check != RiskCheck::Off {
                let _ = self.graph.risky_user(&user.id).await;
            }
        };
        let policy = async {
            if wants.policy {
                let _ = self.tap_policy().await;
            }
        };
        let phone = async {
            if channel == Some(Channel::Sms) && !self.settings.sms_from_attribute {
                let _ = self.graph.mobile_phone_method(&user.id).await;
            }
        };
        let changes = async {
            if let Some(c) = channel {
                let _ = self.address_changes(user, c).await;
            }
        };
        let callers = async {
            if let Some(c) = channel.filter(|_| wants.callers) {
                self.prefetch_callers_addresses(caller, c).await;
            }
        };
        let methods = async {
            if wants.methods {
                let _ = self.graph.list_methods(&user.id).await;
            }
        };
        let default_method = async {
            if wants.default_method {
                let _ = self.graph.default_method(&user.id).await;
            }
        };
        tokio::join!(
            risk,
            policy,
            phone,
            changes,
            callers,
            methods,
            default_method,
            self.privilege.prefetch(self.graph, &user.id)
        );
    }
}
