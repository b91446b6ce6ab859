//! The composition root: turns `Settings` into the services (clients, stores, the trail, the
//! intake) and lends them to whoever runs them: the Functions protocol and HTTP API (`host`), the
//! CLI and `dev`. The only module that knows every other; nothing imports it but those entry
//! points.

use std::sync::Arc;

use crate::audit::AuditTrail;
use crate::auth::Authenticator;
use crate::auth::webhook::WebhookVerifier;
use crate::azure::AzureOverrides;
use crate::config::{AuditSettings, Settings};
use crate::delivery::Deliverer;
use crate::graph::GraphClient;

use crate::intake::Intake;
use crate::recovery::Answers;
use crate::secrets::SecretCache;
use crate::storage::chains::{AuditStorage, BlobStorage, FileStorage};

/// The services, built once from the settings: what every HTTP handler, function, the CLI and
/// `dev` share.
#[derive(Clone)]
pub struct App {
    pub settings: Arc<Settings>,
    pub auth: Arc<Authenticator>,
    pub audit: Arc<AuditTrail>,
    pub webhooks: Arc<WebhookVerifier>,
    pub graph: Arc<GraphClient>,
    pub secrets: Arc<SecretCache>,
    pub deliverer: Arc<Deliverer>,
    /// Who tells people of a pass, a reset or a waiting approval: email through the deliverer
    /// (`EMAIL_PROVIDER`). Another channel is one `vocab::ports::Notifier` wired here.
    pub notifier: Arc<dyn crate::vocab::ports::Notifier>,
    /// The asynchronous intake; `None` when neither storage nor `REQUESTS_DIR` is set.
    pub intake: Option<Arc<Intake>>,
    /// Where notices wait to be sent after the answer (`recovery-notices`), on the intake's
    /// storage; `None` (notices sent at once) without it, and on the command line.
    pub outbox: Option<Arc<crate::recovery::notice::Outbox>>,
    /// Where sweeps are kept; `None` when neither storage nor `SWEEP_DIR` is set.
    pub sweeps: Option<Arc<dyn crate::storage::reports::ReportStore>>,
    /// Whether a target is privileged (caches the API's service principal).
    pub privilege: Arc<crate::recovery::privilege::PrivilegeCheck>,
    /// The tenant's facts a recovery may take at most 60 s old (the TAP policy).
    pub facts: Arc<crate::recovery::fresh::TenantFacts>,
    /// Rate-limit slots.
    pub limits: Arc<crate::recovery::limits::Limits>,
    /// Verifications the service made (kept beside the rate-limit slots).
    pub verifications: Arc<crate::recovery::verification::Verifications>,
    /// How the user proves it is them: a code read back. Another method (a confirmation link,
    /// a Verified ID Face Check) is one `recovery::verifier::Verifier` wired here.
    pub verifier: Arc<dyn crate::recovery::verifier::Verifier>,
    /// A confirmation link the user answers on their own device (`mode: link`).
    pub link: Arc<dyn crate::recovery::verifier::Verifier>,
    /// Unauthenticated refusals, recorded in aggregate.
    pub refusals: Arc<crate::audit::refusals::RefusalTally>,
    /// Set while a sweep started through the API (`POST /api/sweeps`) runs in this process.
    pub sweep_started: Arc<std::sync::atomic::AtomicBool>,
    /// `GET /api/doctor`: the identity's reads, checked at most once a minute.
    pub doctor: Arc<crate::doctor::Checkup>,
    /// The trail's copy in Log Analytics (`audit-export`); `None` when not configured or
    /// without the intake's storage (its marks live there).
    pub exporter: Option<Arc<crate::audit::export::Exporter>>,
}

impl App {
    /// Build the shared clients: one HTTP client (with timeouts) for every outbound call, the
    /// caller authenticator and the audit trail.
    ///
    /// # Errors
    /// A client cannot be built.
    pub async fn new(settings: Settings, azure: &AzureOverrides, answers: Arc<dyn Answers>) -> anyhow::Result<App> {
        let (http, http_for_write_back) = http_clients()?;
        // One transport and one credential for every Azure SDK client: the root certificates are
        // loaded once and tokens cached once, so a cold start builds one HTTP client, not six.
        let transport = azure
            .transport
            .clone()
            .unwrap_or_else(|| azure_core::http::Transport::new(Arc::new(http.clone())));
        let credential = match &azure.credential {
            Some(c) => c.clone(),
            None => crate::azure::managed_identity_with(&settings, Some(transport.clone()))?,
        };
        let azure = &AzureOverrides {
            credential: Some(credential),
            transport: Some(transport),
        };
        let auth = Arc::new(Authenticator::new(&settings.auth, http.clone()));
        let http_for_delivery = http.clone();
        let exporter = exporter(&settings, azure, http.clone())?;
        let graph = Arc::new(GraphClient::new(
            http,
            settings.graph_endpoint.clone(),
            crate::azure::credential(&settings, azure)?,
        ));
        let secrets = Arc::new(SecretCache::new(
            settings.key_vault_uri.as_ref(),
            crate::azure::credential(&settings, azure)?,
            azure.transport.clone(),
        )?);
        let audit = Arc::new(audit_trail(&settings, azure, secrets.clone()).await?);
        let webhooks = Arc::new(WebhookVerifier::new(settings.webhook_senders.clone(), secrets.clone()));
        let deliverer = Arc::new(Deliverer::new(
            http_for_delivery,
            graph.clone(),
            secrets.clone(),
            settings.tap.clone(),
        ));
        let intake = intake(&settings, azure, http_for_write_back, secrets.clone(), answers).await?;
        let outbox = outbox(&settings, azure, secrets.clone())?;
        let sweeps = sweep_store(&settings, azure).await?;
        let privilege = Arc::new(crate::recovery::privilege::PrivilegeCheck::new(
            settings.tap.protected_groups.clone(),
            settings.auth.audience.clone(),
        ));
        let slots = limits_store(&settings, azure)?;
        let limits = Arc::new(crate::recovery::limits::Limits::new(slots.clone()));
        let verifications = Arc::new(crate::recovery::verification::Verifications::new(slots));
        let verifier = Arc::new(crate::recovery::code::CodeVerifier::new(
            secrets.clone(),
            settings.tap.verification_key_secret.clone(),
        ));
        let link = Arc::new(crate::recovery::link::LinkVerifier::new(
            crate::recovery::code::KeyedHash::new(secrets.clone(), settings.tap.verification_key_secret.clone()),
            settings
                .tap
                .approval
                .console_url
                .as_ref()
                .map(|u| u.origin().ascii_serialization()),
        ));
        Ok(App {
            settings: Arc::new(settings),
            auth,
            audit,
            webhooks,
            graph,
            secrets,
            notifier: deliverer.clone(),
            deliverer,
            intake,
            outbox,
            sweeps,
            privilege,
            facts: Arc::default(),
            limits,
            verifications,
            verifier,
            link,
            refusals: Arc::new(crate::audit::refusals::RefusalTally::default()),
            sweep_started: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            doctor: Arc::new(crate::doctor::Checkup::default()),
            exporter,
        })
    }
}

/// The HTTP clients every outbound call goes through, on one TLS configuration (the platform's
/// roots loaded once, on a thread of their own while the process starts: src/tls.rs): one for
/// Microsoft and the connectors, and one for write-back that never follows a redirect.
///
/// # Errors
/// A client cannot be built.
fn http_clients() -> anyhow::Result<(reqwest::Client, reqwest::Client)> {
    let tls = crate::tls::process_client_config()?;
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls.clone())
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(30))
        .user_agent(concat!("mfa-recovery/", env!("CARGO_PKG_VERSION")))
        .build()?;
    // Write-back (ServiceNow, Jira, callbacks) never follows a redirect: a callback host on
    // the allow-list must not be able to send the signed result (or a Power Automate `sig=`
    // in a Referer) to a host that is not. reqwest sends a Referer only on redirects.
    let http_for_write_back = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(30))
        .user_agent(concat!("mfa-recovery/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .build()?;
    Ok((http, http_for_write_back))
}

/// The rate-limit slots' store from the settings.
///
/// # Errors
/// The storage client cannot be built.
pub(crate) fn limits_store(
    settings: &Settings,
    azure: &AzureOverrides,
) -> anyhow::Result<Arc<dyn crate::storage::records::RecordStore>> {
    use crate::config::LimitsStore;
    use crate::storage::records::{BlobRecords, FileRecords};
    Ok(match &settings.limits {
        LimitsStore::Directory(dir) => Arc::new(FileRecords::new(dir.clone())),
        LimitsStore::Blob { service_uri, container } => {
            let credential = crate::azure::credential(settings, azure)?;
            Arc::new(BlobRecords::new(
                service_uri,
                container,
                credential,
                azure.transport.clone(),
            )?)
        }
    })
}

/// The audit trail's storage from the settings.
///
/// # Errors
/// The storage client cannot be built.
pub(crate) async fn audit_storage(
    settings: &Settings,
    azure: &AzureOverrides,
) -> anyhow::Result<Arc<dyn AuditStorage>> {
    Ok(match &settings.audit {
        AuditSettings::Directory(dir) => Arc::new(FileStorage::new(dir.clone())),
        AuditSettings::Blob { service_uri, container } => {
            let credential = crate::azure::credential(settings, azure)?;
            let blob = BlobStorage::new(service_uri, container, credential, azure.transport.clone())?;
            Arc::new(blob)
        }
    })
}

/// The audit trail from the settings: its storage, signed with `AUDIT_KEY_SECRET` when a Key
/// Vault is configured.
///
/// # Errors
/// The storage client cannot be built.
pub(crate) async fn audit_trail(
    settings: &Settings,
    azure: &AzureOverrides,
    secrets: Arc<SecretCache>,
) -> anyhow::Result<AuditTrail> {
    let trail = AuditTrail::new(audit_storage(settings, azure).await?);
    Ok(match &settings.audit_key_secret {
        Some(name) => trail.with_key(crate::audit::seal::AuditKey::new(secrets, name.clone())),
        None => trail,
    })
}

/// The audit trail as an operator's command reads it: storage and the audit key with the
/// operator's credential (`vault`: the managed identity where there is one, else their `az
/// login`), storage on the default transport.
///
/// # Errors
/// A client cannot be built.
pub(crate) async fn operator_trail(settings: &Settings, vault: &AzureOverrides) -> anyhow::Result<AuditTrail> {
    let secrets = Arc::new(SecretCache::new(
        settings.key_vault_uri.as_ref(),
        crate::azure::credential(settings, vault)?,
        vault.transport.clone(),
    )?);
    let storage = AzureOverrides {
        credential: vault.credential.clone(),
        transport: None,
    };
    audit_trail(settings, &storage, secrets).await
}

/// The sweep's store from the settings.
///
/// # Errors
/// The storage client cannot be built.
pub(crate) async fn sweep_store(
    settings: &Settings,
    azure: &AzureOverrides,
) -> anyhow::Result<Option<Arc<dyn crate::storage::reports::ReportStore>>> {
    use crate::config::SweepStore;
    use crate::storage::reports::{BlobStore, DirStore};
    Ok(match &settings.sweep.store {
        None => None,
        Some(SweepStore::Directory(dir)) => Some(Arc::new(DirStore::new(dir.clone()))),
        Some(SweepStore::Blob { service_uri, container }) => {
            let credential = crate::azure::credential(settings, azure)?;
            let store = BlobStore::new(service_uri, container, credential, azure.transport.clone())?;
            Some(Arc::new(store))
        }
    })
}

/// The notice outbox on the intake's storage: the `recovery-notices` queue, or in `dev` an
/// in-process queue the host's pump drains.
///
/// # Errors
/// The queue client cannot be built.
/// The exporter of the trail to Log Analytics, its marks in the intake's store.
fn exporter(
    settings: &Settings,
    azure: &AzureOverrides,
    http: reqwest::Client,
) -> anyhow::Result<Option<Arc<crate::audit::export::Exporter>>> {
    use crate::config::IntakeStore;
    use crate::storage::records::{BlobRecords, FileRecords, RecordStore};
    let (Some(export), Some(store)) = (&settings.audit_export, &settings.intake.store) else {
        return Ok(None);
    };
    let credential = crate::azure::credential(settings, azure)?;
    let store: Arc<dyn RecordStore> = match store {
        IntakeStore::Directory(dir) => Arc::new(FileRecords::new(dir.clone())),
        IntakeStore::Storage {
            blob_service_uri,
            container,
            ..
        } => Arc::new(BlobRecords::new(
            blob_service_uri,
            container,
            credential.clone(),
            azure.transport.clone(),
        )?),
    };
    let sink = crate::monitor::LogsIngestion::new(http, credential, &export.endpoint, &export.rule_id, &export.stream)?;
    Ok(Some(Arc::new(crate::audit::export::Exporter::new(
        Arc::new(sink),
        store,
    ))))
}

fn outbox(
    settings: &Settings,
    azure: &AzureOverrides,
    secrets: Arc<SecretCache>,
) -> anyhow::Result<Option<Arc<crate::recovery::notice::Outbox>>> {
    let keyed = crate::recovery::code::KeyedHash::new(secrets.clone(), settings.tap.verification_key_secret.clone());
    let key = settings
        .audit_key_secret
        .as_ref()
        .map(|name| crate::audit::seal::AuditKey::new(secrets, name.clone()));
    use crate::config::IntakeStore;
    use crate::recovery::notice::{Outbox, QUEUE};
    use crate::storage::queue::{LocalQueue, StorageQueue};
    use crate::storage::records::{BlobRecords, FileRecords};
    Ok(match &settings.intake.store {
        None => None,
        Some(IntakeStore::Directory(dir)) => {
            let (queue, rx) = LocalQueue::<String>::new();
            Some(Arc::new(Outbox {
                keyed: keyed.clone(),
                key: key.clone(),
                store: Arc::new(FileRecords::new(dir.clone())),
                queue: Arc::new(queue),
                local: tokio::sync::Mutex::new(Some(rx)),
            }))
        }
        Some(IntakeStore::Storage {
            blob_service_uri,
            queue_service_uri,
            container,
        }) => {
            let credential = crate::azure::credential(settings, azure)?;
            let store = BlobRecords::new(blob_service_uri, container, credential.clone(), azure.transport.clone())?;
            let queue = StorageQueue::new(queue_service_uri, QUEUE, credential, azure.transport.clone())?;
            Some(Arc::new(Outbox {
                keyed: keyed.clone(),
                key: key.clone(),
                store: Arc::new(store),
                queue: Arc::new(queue),
                local: tokio::sync::Mutex::new(None),
            }))
        }
    })
}

/// The intake's record store and queue from the settings.
async fn intake(
    settings: &Settings,
    azure: &AzureOverrides,
    http: reqwest::Client,
    secrets: Arc<SecretCache>,
    answers: Arc<dyn Answers>,
) -> anyhow::Result<Option<Arc<Intake>>> {
    use crate::config::IntakeStore;
    use crate::storage::queue::{LocalQueue, StorageQueue};
    use crate::storage::records::{BlobRecords, FileRecords};
    let writeback = crate::intake::writeback::WriteBack::new(
        crate::itsm::ItsmClient::new(http, secrets, settings.intake.clone()),
        settings.intake.clone(),
    );
    let claim = settings.intake.claim_seconds;
    Ok(match &settings.intake.store {
        None => None,
        Some(IntakeStore::Directory(dir)) => {
            let (queue, rx) = LocalQueue::new();
            let store = Arc::new(FileRecords::new(dir.clone()));
            Some(Arc::new(Intake::new(
                store,
                Arc::new(queue),
                writeback,
                claim,
                answers.clone(),
                Some(rx),
            )))
        }
        Some(IntakeStore::Storage {
            blob_service_uri,
            queue_service_uri,
            container,
        }) => {
            let credential = crate::azure::credential(settings, azure)?;
            let store = BlobRecords::new(blob_service_uri, container, credential.clone(), azure.transport.clone())?;
            let queue = StorageQueue::new(
                queue_service_uri,
                crate::intake::QUEUE,
                credential,
                azure.transport.clone(),
            )?;
            Some(Arc::new(Intake::new(
                Arc::new(store),
                Arc::new(queue),
                writeback,
                claim,
                answers.clone(),
                None,
            )))
        }
    })
}

impl App {
    /// The recovery procedures' view of the shared clients.
    pub(crate) fn tap_context(&self) -> crate::recovery::context::TapContext<'_> {
        crate::recovery::context::TapContext {
            graph: &self.graph,
            audit: &self.audit,
            deliverer: &self.deliverer,
            settings: &self.settings.tap,
            privilege: &self.privilege,
            limits: &self.limits,
            notifier: self.notifier.as_ref(),
            verifications: &self.verifications,
            verifier: self.verifier.as_ref(),
            link: self.link.as_ref(),
            facts: &self.facts,
            outbox: self.outbox.as_deref(),
            started: time::OffsetDateTime::now_utc(),
        }
    }

    /// The compliance sweep on the shared clients, within the time budget of one invocation;
    /// `None` when it has no storage.
    pub fn sweep(&self) -> Option<crate::sweep::Sweep<'_>> {
        Some(crate::sweep::Sweep {
            graph: &self.graph,
            store: self.sweeps.clone()?,
            settings: &self.settings.sweep,
            deliverer: Some(&self.deliverer),
            audit: Some(&self.audit),
            budget: Some(std::time::Duration::from_secs(u64::from(
                self.settings.sweep.time_budget_seconds,
            ))),
        })
    }
}
