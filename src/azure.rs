//! Azure SDK plumbing shared by the clients: the managed identity credential, and the seams
//! tests use to point the SDK at local stand-ins.

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::http::Transport;
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};

use crate::config::Settings;

/// What tests and `dev` may replace; production leaves both `None`.
#[derive(Debug, Clone, Default)]
pub struct AzureOverrides {
    /// A credential to use instead of the managed identity.
    pub credential: Option<Arc<dyn TokenCredential>>,
    /// An HTTP transport for the Azure SDK clients (e.g. one that trusts a local CA).
    pub transport: Option<Transport>,
}

/// The function app's managed identity: user-assigned when `AZURE_CLIENT_ID` is set. The
/// credential reads `IDENTITY_ENDPOINT`/`IDENTITY_HEADER`, which the platform sets.
///
/// # Errors
/// The credential cannot be built.
pub fn managed_identity(settings: &Settings) -> anyhow::Result<Arc<dyn TokenCredential>> {
    managed_identity_with(settings, None)
}

/// `managed_identity`, on a given transport (the app's shared one).
///
/// # Errors
/// The credential cannot be built.
pub(crate) fn managed_identity_with(
    settings: &Settings,
    transport: Option<Transport>,
) -> anyhow::Result<Arc<dyn TokenCredential>> {
    let options = ManagedIdentityCredentialOptions {
        user_assigned_id: settings
            .managed_identity_client_id
            .map(|id| UserAssignedId::ClientId(id.to_string())),
        client_options: azure_core::http::ClientOptions {
            transport,
            ..Default::default()
        },
    };
    let credential = ManagedIdentityCredential::new(Some(options))
        .map_err(|e| anyhow::anyhow!("building the managed identity credential: {e}"))?;
    Ok(credential)
}

/// For the command line: the managed identity where the platform provides one
/// (`IDENTITY_ENDPOINT`), otherwise the developer's own sign-in (Azure CLI, then azd).
///
/// # Errors
/// No credential can be built.
pub(crate) fn cli_credential(settings: &Settings) -> anyhow::Result<Arc<dyn TokenCredential>> {
    if crate::config::platform_identity_available() {
        return managed_identity(settings);
    }
    let credential = azure_identity::DeveloperToolsCredential::new(None).map_err(|e| {
        anyhow::anyhow!("no managed identity and no developer sign-in (az login or azd auth login): {e}")
    })?;
    Ok(credential)
}

/// The credential to use: an override, or the managed identity.
///
/// # Errors
/// The managed identity credential cannot be built.
pub fn credential(settings: &Settings, overrides: &AzureOverrides) -> anyhow::Result<Arc<dyn TokenCredential>> {
    match &overrides.credential {
        Some(c) => Ok(c.clone()),
        None => managed_identity(settings),
    }
}

/// Client options for every Azure SDK client of the app: the transport override, and short
/// retries. A caller waits on these calls (an audit record, a signing secret), so a few quick
/// attempts and then a clear 503 beat the SDK default of retrying for minutes.
pub fn client_options(transport: Option<Transport>) -> azure_core::http::ClientOptions {
    use azure_core::http::{ExponentialRetryOptions, RetryOptions};
    use azure_core::time::Duration;
    let retry = RetryOptions::exponential(ExponentialRetryOptions {
        initial_delay: Duration::milliseconds(200),
        max_retries: 3,
        max_total_elapsed: Duration::seconds(10),
        max_delay: Duration::seconds(2),
    });
    azure_core::http::ClientOptions {
        transport,
        retry,
        ..Default::default()
    }
}
