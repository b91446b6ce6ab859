//! The edge the Functions host talks to: the axum application it starts.
//!
//! Owns: binding `127.0.0.1:FUNCTIONS_CUSTOMHANDLER_PORT`, the router (the readiness probe, the
//! forwarded HTTP routes of `api`, the `POST /{function}` invocations of `protocol`), and
//! graceful shutdown. The services come from `app` (the composition root). Keeps out: recovery
//! rules (in `recovery`), remote calls (in the adapters).

pub mod api;
pub mod confirm;
pub mod console;
pub mod protocol;
pub mod routes;

use crate::audit::refusals;
pub use api::{answers, error};
pub use protocol::{admin, envelope, functions, invocation, invoke};

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::azure::AzureOverrides;
use crate::config::Settings;
use error::ApiError;

use crate::app::App as AppState;

/// `dev`: play the host's part for the in-process queue. Each request is run by the worker, retried
/// with backoff when it asks to be, and handed to the poison function after five attempts.
pub(crate) async fn pump_local_queue(state: AppState) {
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

/// `dev`: play the host's part for the notice outbox's in-process queue, trying each notice
/// as often as the host would (`notice::ATTEMPTS`), a little later each time.
pub(crate) async fn pump_local_notices(state: AppState) {
    let Some(outbox) = state.outbox.clone() else {
        return;
    };
    let Some(mut rx) = outbox.local.lock().await.take() else {
        return;
    };
    while let Some(text) = rx.recv().await {
        let state = state.clone();
        let outbox = outbox.clone();
        tokio::spawn(async move {
            for dequeue_count in 1..=crate::recovery::notice::ATTEMPTS {
                let sent = outbox
                    .deliver(state.notifier.as_ref(), &state.audit, &text, dequeue_count)
                    .await;
                match sent {
                    crate::recovery::notice::Sent::Done(why) => {
                        tracing::info!(%why, "local notice queue: message complete");
                        return;
                    }
                    crate::recovery::notice::Sent::Retry(why) => {
                        tracing::warn!(%why, dequeue_count, "local notice queue: will retry");
                        tokio::time::sleep(std::time::Duration::from_millis(250 << dequeue_count)).await;
                    }
                }
            }
        });
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
    let mut router = Router::new().route("/", get(api::health::ready));
    for (path, handler) in routes::served() {
        router = router.route(path, handler);
    }
    let mut router = router.route("/{function}", post(invoke::invoke));
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
        let state = AppState::new(settings, &options.azure, Arc::new(answers::HttpAnswers)).await?;
        tokio::spawn(pump_local_queue(state.clone()));
        tokio::spawn(pump_local_notices(state.clone()));
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
pub(crate) async fn shutdown_signal() {
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
