//! Entra ID Protection's risk of the user, read before a code or a pass (`RISK_CHECK`).
//!
//! A user rated `high`, or whose compromise an admin confirmed, is likely an attacker's account
//! already: a helpdesk recovery would hand it over. Such a user is refused (`user_at_risk`) or,
//! where approvals are on, the recovery waits for a second approver (reason `at_risk`). `medium`
//! is shown to the agent and recorded. A tenant without Entra ID P2 has no risk to read: under
//! `if_available` (the default) that is recorded and the recovery goes on; any other failed read
//! refuses (fail closed).

use super::RecoveryError;
use super::context::TapContext;
use super::details::RiskSeen;
use crate::config::RiskCheck;
use crate::graph::RiskRead;
use crate::graph::models::User;
use crate::vocab::{Fault, Refusal};

/// What the risk read found, as the rules use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Risk {
    /// `riskLevel`, when Identity Protection has a record.
    pub level: Option<String>,
    /// `riskState`, when Identity Protection has a record.
    pub state: Option<String>,
    /// High risk, or confirmed compromised: refused, or held for an approver.
    pub at_risk: bool,
    /// Worth the agent's attention (`medium`), not a refusal.
    pub elevated: bool,
}

/// Whether a rating makes the user "at risk" (refused or held) or "elevated" (shown). A risk an
/// admin dismissed or remediated is no risk now, whatever its level says.
pub(crate) fn judge(level: Option<&str>, state: Option<&str>) -> (bool, bool) {
    let cleared = matches!(state, Some("dismissed" | "remediated" | "confirmedSafe" | "none"));
    let compromised = state == Some("confirmedCompromised");
    // `hidden`: Graph does not say the level, which may be high: fail safe.
    let at_risk = compromised || (!cleared && matches!(level, Some("high" | "hidden")));
    let elevated = !at_risk && !cleared && level == Some("medium");
    (at_risk, elevated)
}

impl Risk {
    /// What the agent and the audit record are told.
    pub fn view(&self) -> RiskSeen {
        RiskSeen::Rated {
            level: self.level.clone(),
            state: self.state.clone(),
        }
    }
}

/// The refusal for a user at risk where nobody can approve.
pub(crate) fn at_risk_refused() -> RecoveryError {
    RecoveryError::refused(
        Refusal::UserAtRisk,
        "Microsoft Entra ID Protection rates this user high risk (or their compromise was confirmed): the account may already be an attacker's. Nothing was sent. Investigate the risk in the Entra admin center (Identity Protection > Risky users), remediate it, then recover the user; or turn on approvals so a second approver can decide (docs/security.md)",
    )
}

fn unavailable(e: &crate::graph::GraphError) -> RecoveryError {
    tracing::error!(error = %e, "the user's risk could not be read; refusing");
    let (why, fix) = if e.is_forbidden() {
        (
            "Microsoft Graph refused to read the user's risk (403)",
            " Grant the function app's identity IdentityRiskyUser.Read.All (docs/deploy.md), or set RISK_CHECK=off.",
        )
    } else {
        ("Microsoft Graph could not read the user's risk", " Try again later.")
    };
    RecoveryError::failed(
        Fault::RiskCheckUnavailable,
        format!("{why}, so the service cannot tell whether the account is compromised and changed nothing.{fix}"),
    )
}

impl TapContext<'_> {
    /// Read the user's risk as `RISK_CHECK` says and record what was found in `details.risk`.
    /// `None` when the check is off or the tenant has no licence for it (under `if_available`).
    ///
    /// # Errors
    /// `risk_check_unavailable` when a read the check needs fails (every failed read under
    /// `required`; all but a missing licence under `if_available`).
    pub(crate) async fn read_risk(
        &self,
        user: &User,
        details: &mut super::details::Details,
    ) -> Result<Option<Risk>, RecoveryError> {
        let mode = self.settings.risk_check;
        if mode == RiskCheck::Off {
            return Ok(None);
        }
        let read = self.graph.risky_user(&user.id).await.map_err(|e| unavailable(&e))?;
        let risk = match read {
            RiskRead::NotLicensed if mode == RiskCheck::IfAvailable => {
                details.risk = Some(RiskSeen::Skipped {
                    checked: false,
                    why: "the tenant has no Microsoft Entra ID P2 licence (Identity Protection); RISK_CHECK=if_available skipped the check",
                });
                return Ok(None);
            }
            RiskRead::NotLicensed => {
                tracing::error!("RISK_CHECK=required, but the tenant has no Entra ID P2 licence; refusing");
                return Err(RecoveryError::failed(
                    Fault::RiskCheckUnavailable,
                    "RISK_CHECK=required, but Microsoft Graph says the tenant has no Microsoft Entra ID P2 licence (Identity Protection), so the user's risk cannot be read and nothing was changed. License the tenant, or set RISK_CHECK=if_available",
                ));
            }
            RiskRead::NoRecord => Risk {
                level: None,
                state: None,
                at_risk: false,
                elevated: false,
            },
            RiskRead::Rated(r) => {
                let (at_risk, elevated) = judge(r.risk_level.as_deref(), r.risk_state.as_deref());
                Risk {
                    level: r.risk_level,
                    state: r.risk_state,
                    at_risk,
                    elevated,
                }
            }
        };
        details.risk = Some(risk.view());
        if risk.at_risk {
            tracing::warn!(level = ?risk.level, state = ?risk.state, "the target is at risk in Identity Protection");
        }
        Ok(Some(risk))
    }
}

#[cfg(test)]
mod tests {
    use super::judge;

    #[test]
    fn high_or_confirmed_compromised_is_at_risk_unless_cleared() {
        assert_eq!(judge(Some("high"), Some("atRisk")), (true, false));
        assert_eq!(judge(Some("low"), Some("confirmedCompromised")), (true, false));
        assert_eq!(judge(Some("high"), Some("dismissed")), (false, false));
        assert_eq!(judge(Some("high"), Some("remediated")), (false, false));
        assert_eq!(judge(Some("medium"), Some("atRisk")), (false, true));
        assert_eq!(judge(Some("low"), Some("atRisk")), (false, false));
        assert_eq!(judge(Some("hidden"), Some("atRisk")), (true, false));
        assert_eq!(judge(None, None), (false, false));
    }
}
