//! The Azure Functions custom-handler protocol: the axum application the host starts.
//!
//! Owns: binding `127.0.0.1:FUNCTIONS_CUSTOMHANDLER_PORT`, the readiness probe, forwarded HTTP
//! routes, `POST /{function}` invocation envelopes, per-invocation log context, `ApiError`, and
//! graceful shutdown. Keeps out: recovery rules (in `recovery`), remote calls (in `graph`,
//! `delivery`, `audit`).

pub mod admin;
pub mod answers;
pub mod envelope;
pub mod error;
pub mod functions;
pub mod http;
pub mod invocation;
pub mod invoke;
pub mod refusals;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::audit::AuditTrail;
use crate::storage::chains::{AuditStorage, BlobStorage, FileStorage};
use crate::auth::Authenticator;
use crate::auth::webhook::WebhookVerifier;
use crate::azure::AzureOverrides;
use crate::config::{AuditSettings, Settings};
use crate::delivery::Deliverer;
use crate::graph::GraphClient;
use crate::intake::Intake;
use crate::secrets::SecretCache;
use error::ApiError;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub auth: Arc<Authenticator>,
    pub audit: Arc<AuditTrail>,
    pub webhooks: Arc<WebhookVerifier>,
    pub graph: Arc<GraphClient>,
    pub secrets: Arc<SecretCache>,
    pub deliverer: Arc<Deliverer>,
    /// The asynchronous intake; `None` when neither storage nor `REQUESTS_DIR` is set.
    pub intake: Option<Arc<Intake>>,
    /// Where sweeps are kept; `None` when neither storage nor `SWEEP_DIR` is set.
    pub sweeps: Option<Arc<dyn crate::storage::reports::ReportStore>>,
    /// Whether a target is privileged (caches the API's service principal).
    pub privilege: Arc<crate::recovery::privilege::PrivilegeCheck>,
    /// Rate-limit slots.
    pub limits: Arc<crate::recovery::limits::Limits>,
    /// Unauthenticated refusals, recorded in aggregate.
    pub refusals: Arc<refusals::RefusalTally>,
}

impl AppState {
    /// Build the shared clients: one HTTP client (with timeouts) for every outbound call, the
    /// caller authenticator and the audit trail.
    ///
    /// # Errors
    /// A client cannot be built.
    pub async fn new(settings: Settings, azure: &AzureOverrides) -> anyhow::Result<AppState> {
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(30))
            .user_agent(concat!("mfa-recovery/", env!("CARGO_PKG_VERSION")))
            .build()?;
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
        // Write-back (ServiceNow, Jira, callbacks) never follows a redirect: a callback host on
        // the allow-list must not be able to send the signed result (or a Power Automate `sig=`
        // in a Referer) to a host that is not. reqwest sends a Referer only on redirects.
        let http_for_write_back = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(30))
            .user_agent(concat!("mfa-recovery/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .build()?;
        let graph = Arc::new(GraphClient::new(
            http,
            settings.graph_endpoint.clone(),
            crate::azure::credential(&settings, azure)?,
        ));
        let audit = Arc::new(AuditTrail::new(audit_storage(&settings, azure).await?));
        let secrets = Arc::new(SecretCache::new(
            settings.key_vault_uri.as_ref(),
            crate::azure::credential(&settings, azure)?,
            azure.transport.clone(),
        )?);
        let webhooks = Arc::new(WebhookVerifier::new(settings.webhook_senders.clone(), secrets.clone()));
        let deliverer = Arc::new(Deliverer::new(
            http_for_delivery,
            graph.clone(),
            secrets.clone(),
            settings.tap.clone(),
        ));
        let intake = intake(&settings, azure, http_for_write_back, secrets.clone()).await?;
        let sweeps = sweep_store(&settings, azure).await?;
        let privilege = Arc::new(crate::recovery::privilege::PrivilegeCheck::new(
            settings.tap.protected_groups.clone(),
            settings.auth.audience.clone(),
        ));
        let limits = Arc::new(crate::recovery::limits::Limits::new(limits_store(&settings, azure)?));
        Ok(AppState {
            settings: Arc::new(settings),
            auth,
            audit,
            webhooks,
            graph,
            secrets,
            deliverer,
            intake,
            sweeps,
            privilege,
            limits,
            refusals: Arc::new(refusals::RefusalTally::default()),
        })
    }
}

/// The rate-limit slots' store from the settings.
///
/// # Errors
/// The storage client cannot be built.
pub fn limits_store(
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
pub async fn audit_storage(settings: &Settings, azure: &AzureOverrides) -> anyhow::Result<Arc<dyn AuditStorage>> {
    Ok(match &settings.audit {
        AuditSettings::Directory(dir) => Arc::new(FileStorage::new(dir.clone())),
        AuditSettings::Blob { service_uri, container } => {
            let credential = crate::azure::credential(settings, azure)?;
            let blob = BlobStorage::new(service_uri, container, credential, azure.transport.clone())?;
            Arc::new(blob)
        }
    })
}

/// The sweep's store from the settings.
///
/// # Errors
/// The storage client cannot be built.
pub async fn sweep_store(
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

/// The intake's record store and queue from the settings.
async fn intake(
    settings: &Settings,
    azure: &AzureOverrides,
    http: reqwest::Client,
    secrets: Arc<SecretCache>,
) -> anyhow::Result<Option<Arc<Intake>>> {
    use crate::config::IntakeStore;
    use crate::intake::queue::{LocalQueue, StorageQueue};
    use crate::storage::records::{BlobRecords, FileRecords};
    let writeback = crate::intake::writeback::WriteBack::new(http, secrets, settings.intake.clone());
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
                Arc::new(answers::HttpAnswers),
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
                Arc::new(answers::HttpAnswers),
                None,
            )))
        }
    })
}

/// `dev`: play the host's part for the in-process queue. Each request is run by the worker, retried
/// with backoff when it asks to be, and handed to the poison function after five attempts.
pub async fn pump_local_queue(state: AppState) {
    let Some(intake) = state.intake.clone() else {
        return;
    };
    let Some(mut rx) = intake.local.lock().await.take() else {
        return;
    };
    while let Some(id) = rx.recv().await {
        let state = state.clone();
        tokio::spawn(async move {
            let Some(intake) = state.intake.clone() else {
                return;
            };
            let context = state.tap_context();
            let message_id = Some(format!("local-{}", uuid::Uuid::new_v4()));
            for dequeue_count in 1..=5u32 {
                let delivery = crate::intake::Delivery {
                    message_id: message_id.clone(),
                    dequeue_count,
                };
                match intake.work(&context, &delivery, id).await {
                    crate::intake::WorkOutcome::Done(why) => {
                        tracing::info!(request_id = %id, %why, "local queue: message complete");
                        return;
                    }
                    crate::intake::WorkOutcome::Retry(why) => {
                        tracing::warn!(request_id = %id, %why, dequeue_count, "local queue: will retry");
                        tokio::time::sleep(std::time::Duration::from_secs(1 << dequeue_count)).await;
                    }
                }
            }
            let outcome = intake.poison(&context, id).await;
            tracing::warn!(request_id = %id, ?outcome, "local queue: moved to poison");
        });
    }
}

impl AppState {
    /// The recovery procedures' view of the shared clients.
    pub fn tap_context(&self) -> crate::recovery::tap::TapContext<'_> {
        crate::recovery::tap::TapContext {
            graph: &self.graph,
            audit: &self.audit,
            deliverer: &self.deliverer,
            settings: &self.settings.tap,
            privilege: &self.privilege,
            limits: &self.limits,
        }
    }
}

/// Options that differ between a real host, `mfa-recovery dev` and the tests.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Serve `POST /admin/functions/{name}` (the host's admin API; `dev` only).
    pub admin_api: bool,
    pub bind: IpAddr,
    pub azure: AzureOverrides,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            admin_api: false,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            azure: AzureOverrides::default(),
        }
    }
}

/// The router for the whole function set.
pub fn router(state: AppState, options: HostOptions) -> Router {
    let mut router = Router::new()
        .route("/", get(http::ready))
        .route("/api/health", get(http::health))
        .route("/api/users/{user}/tap", post(http::tap))
        .route("/api/users/{user}/mfa/reset", post(http::reset))
        .route("/api/audit", get(http::audit))
        .route("/api/requests", post(http::submit_request))
        .route("/api/requests/{id}", get(http::get_request))
        .route("/api/sweeps/{run}", get(http::sweep_summary))
        .route("/api/sweeps/{run}/{file}", get(http::sweep_file))
        .route("/{function}", post(invoke::invoke));
    if options.admin_api {
        router = router.route("/admin/functions/{name}", post(admin::run_function));
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(invocation::middleware))
        .with_state(state)
}

async fn not_found(request: Request) -> ApiError {
    ApiError::NotFound {
        method: request.method().to_string(),
        path: invocation::redact_path(request.uri().path()),
    }
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::MethodNotAllowed {
        method: request.method().to_string(),
        path: invocation::redact_path(request.uri().path()),
    }
}

/// A bound, not yet serving, function app.
pub struct Application {
    listener: TcpListener,
    router: Router,
}

impl Application {
    /// Bind `127.0.0.1:{settings.port}` (port 0 picks a free port) and build the router.
    ///
    /// # Errors
    /// The port cannot be bound.
    pub async fn build(settings: Settings, options: HostOptions) -> anyhow::Result<Application> {
        let addr = SocketAddr::new(options.bind, settings.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("binding {addr} (FUNCTIONS_CUSTOMHANDLER_PORT): {e}"))?;
        let state = AppState::new(settings, &options.azure).await?;
        tokio::spawn(pump_local_queue(state.clone()));
        tokio::spawn(refusals::run(
            state.refusals.clone(),
            state.audit.clone(),
            std::time::Duration::from_secs(u64::from(state.settings.refusal_flush_seconds)),
        ));
        Ok(Application {
            listener,
            router: router(state, options),
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    /// Serve until `shutdown` completes, then finish in-flight invocations and return.
    ///
    /// # Errors
    /// The server failed.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        tracing::info!(port = self.port(), "function app listening");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await?;
        tracing::info!("function app stopped");
        Ok(())
    }
}

/// Completes on SIGTERM (what the host and the platform send) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested: finishing in-flight invocations");
}
