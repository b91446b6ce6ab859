//! Simulated Microsoft Graph: `/identityProtection/riskyUsers/{id}`: Entra ID Protection's rating.

#[allow(unused_imports)]
use super::*;

/// IdentityRiskyUser.Read.All, or the write permission (least to most privileged).
/// https://learn.microsoft.com/graph/api/riskyuser-get (Permissions).
pub(crate) const READ_RISK: &[&str] = &["IdentityRiskyUser.Read.All", "IdentityRiskyUser.ReadWrite.All"];

/// GET /identityProtection/riskyUsers/{id}
/// https://learn.microsoft.com/graph/api/riskyuser-get
///
/// The docs list the permission, the P2 licence ("requires a Microsoft Entra ID P2 license") and
/// the `200` with a riskyUser. They are silent on two answers; the simulator chooses what fails
/// safe for a caller that must decide on them:
/// - a tenant without P2: `403 Forbidden`, "Your tenant is not licensed for this feature." (the
///   wording Identity Protection's APIs use; a caller must tell it from a missing permission,
///   `403 Authorization_RequestDenied`, which must refuse);
/// - a user Identity Protection never rated (or no such user): `404 itemNotFound`.
pub(crate) async fn get_risky_user(
    State(state): S,
    Extension(v): Extension<Version>,
    Extension(p): Extension<Permissions>,
    Path(id): Path<String>,
) -> GraphResult {
    p.require(READ_RISK)?;
    let tenant = state.tenant();
    if !tenant.entra_id_p2 {
        return Err(GraphError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Your tenant is not licensed for this feature.",
        ));
    }
    // Looked up by object id only (the resource's key is the user's id).
    let user = tenant
        .users
        .iter()
        .find(|u| u.id.eq_ignore_ascii_case(&id))
        .ok_or_else(|| GraphError::item_not_found(&id))?;
    let risk = user.risk.clone().ok_or_else(|| GraphError::item_not_found(&id))?;
    let text = |k: &str, d: &str| risk.get(k).and_then(Value::as_str).unwrap_or(d).to_owned();
    ok(json!({
        "@odata.context": context(&state, v, "identityProtection/riskyUsers/$entity"),
        "id": user.id,
        "isDeleted": false,
        "isProcessing": false,
        "riskLastUpdatedDateTime": text("riskLastUpdatedDateTime", "2026-12-01T08:00:00Z"),
        "riskLevel": text("riskLevel", "none"),
        "riskState": text("riskState", "none"),
        "riskDetail": text("riskDetail", "none"),
        "userDisplayName": user.display_name,
        "userPrincipalName": user.upn,
    }))
}
