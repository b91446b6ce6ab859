//! A simulated Microsoft Entra tenant for `mfa-recovery dev` and the tests.
//!
//! One HTTP server plays every remote party the function set talks to, behaving as the
//! Microsoft docs describe (see `docs/simulator.md` for the list of rules and their sources):
//!
//! | Path | Plays |
//! |---|---|
//! | `/v1.0/…`, `/beta/…` | Microsoft Graph (`GRAPH_ENDPOINT`) |
//! | `/msi/token` | the App Service managed identity endpoint (`IDENTITY_ENDPOINT`) |
//! | `/{tenant}/discovery/v2.0/keys`, `/{tenant}/v2.0/.well-known/openid-configuration` | Entra ID's token issuer for callers (`AUTH_AUTHORITY`) |
//! | `/{tenant}/oauth2/v2.0/authorize`, `/token`, `/logout` | Entra ID sign-in for single-page apps (authorization code with PKCE: the console), `signin` |
//! | `/secrets/{name}` | Azure Key Vault secrets |
//! | `/dataCollectionRules/{id}/streams/{stream}` | the Azure Monitor Logs Ingestion API |
//! | `/acs/sms`, `/acs/emails:send` | Azure Communication Services SMS and Email |
//! | `/twilio/2010-04-01/Accounts/{sid}/Messages.json` | Twilio Programmable Messaging |
//! | `/sim/…` | control routes for tests and demos (tokens, outbox, faults, reset) |
//!
//! It is test and demo code: the package deployed to Azure is built without it.
//!
//! Layout: `seed` (the JSON a tenant starts from), `state` and `methods` (the tenant and the
//! authentication-method rules), `jwt` (the token issuer), `graph`, `identity`, `keyvault`,
//! `providers`, `control` (one module per remote party), `faults` and `odata` (shared helpers).

mod control;
pub mod cost;
mod error;
mod faults;
mod graph;
mod identity;
pub mod itsm;
mod jwt;
mod keyvault;
pub mod methods;
mod monitor;
mod odata;
mod providers;
mod roles;
pub mod seed;
mod signin;
pub mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use base64::Engine;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use control::TokenRequest;
/// A fault's route glob (`*` within a segment, `**` across), for tests that match the request log.
pub use faults::glob_match as faults_glob;
pub use seed::Seed;
pub use state::{OutboxItem, RequestRecord};

use faults::Fault;
pub use state::Tenant;

/// Everything the simulator's endpoints share.
pub(crate) struct SimState {
    pub seed: Seed,
    pub tenant: Mutex<Tenant>,
    pub keys: jwt::Keys,
    pub secrets: Mutex<BTreeMap<String, String>>,
    /// Earlier versions of rotated secrets, by (name, version): still readable by version, as
    /// Key Vault keeps them.
    pub retired: Mutex<BTreeMap<(String, String), String>>,
    /// When each rotated version was made (Unix seconds); seeded versions are older than all.
    pub created: Mutex<BTreeMap<(String, String), i64>>,
    pub outbox: Mutex<Vec<OutboxItem>>,
    pub faults: Mutex<Vec<Fault>>,
    pub requests: Mutex<Vec<RequestRecord>>,
    pub itsm: Mutex<Vec<itsm::ItsmItem>>,
    /// Registration-report knobs for sweeps and benchmarks (`POST /sim/report`).
    pub report: Mutex<graph::ReportKnobs>,
    pub base_url: String,
    pub identity_header: String,
    /// The whole router, for `$batch` to dispatch its parts through.
    pub router: OnceLock<Router>,
    /// Sign-in (authorization codes, refresh tokens, SPA redirect URIs).
    pub signin: Mutex<signin::SignIn>,
    /// Added to every Graph answer (`POST /sim/latency`): Graph far away. A `$batch` waits once,
    /// its sub-requests not again (Graph runs them together).
    pub graph_latency_ms: std::sync::atomic::AtomicU64,
    /// When the simulator started (the request log's clock).
    pub epoch: std::time::Instant,
}

impl SimState {
    pub fn tenant(&self) -> std::sync::MutexGuard<'_, Tenant> {
        self.tenant.lock().expect("tenant lock")
    }

    pub fn signin(&self) -> std::sync::MutexGuard<'_, signin::SignIn> {
        self.signin.lock().expect("sign-in lock")
    }

    /// The Key Vault URI the simulated vault answers for.
    pub fn vault_uri(&self) -> String {
        format!("https://{}.vault.azure.net/", self.seed.key_vault.name)
    }

    fn reset(&self) -> Result<(), String> {
        *self.tenant() = Tenant::from_seed(&self.seed)?;
        self.outbox.lock().unwrap().clear();
        self.faults.lock().unwrap().clear();
        self.requests.lock().unwrap().clear();
        self.itsm.lock().unwrap().clear();
        *self.report.lock().unwrap() = graph::ReportKnobs::default();
        Ok(())
    }
}

/// Random bytes from the system generator.
pub(crate) fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut buf).expect("system random");
    buf
}

fn generate_secret(kind: Option<&str>) -> String {
    match kind {
        Some("hex") => random_bytes(32).iter().map(|b| format!("{b:02x}")).collect(),
        _ => base64::engine::general_purpose::STANDARD.encode(random_bytes(64)),
    }
}

/// 32 random bytes as base64url: authorization codes and refresh tokens.
pub(crate) fn random_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes(32))
}

/// A running simulator.
pub struct Simulator {
    state: Arc<SimState>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Start the simulator on `addr` (use port 0 for a free port).
    ///
    /// # Errors
    /// The address cannot be bound, or the seed is not valid.
    pub async fn start(seed: Seed, addr: &str) -> anyhow::Result<Simulator> {
        let listener = TcpListener::bind(addr).await?;
        Self::serve(seed, listener)
    }

    /// Start the simulator on a listener the caller bound.
    ///
    /// # Errors
    /// The seed is not valid.
    pub fn serve(seed: Seed, listener: TcpListener) -> anyhow::Result<Simulator> {
        let addr = listener.local_addr()?;
        let tenant = Tenant::from_seed(&seed).map_err(|e| anyhow::anyhow!("seed: {e}"))?;
        let secrets = seed
            .key_vault
            .secrets
            .iter()
            .map(|s| {
                let value = s
                    .value
                    .clone()
                    .unwrap_or_else(|| generate_secret(s.generate.as_deref()));
                (s.name.clone(), value)
            })
            .collect();
        let state = Arc::new(SimState {
            seed,
            tenant: Mutex::new(tenant),
            keys: jwt::Keys::generate(),
            secrets: Mutex::new(secrets),
            retired: Mutex::new(BTreeMap::new()),
            created: Mutex::new(BTreeMap::new()),
            outbox: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            itsm: Mutex::new(Vec::new()),
            report: Mutex::new(graph::ReportKnobs::default()),
            base_url: format!("http://{addr}"),
            identity_header: uuid::Uuid::new_v4().to_string(),
            router: OnceLock::new(),
            signin: Mutex::new(signin::SignIn::default()),
            graph_latency_ms: std::sync::atomic::AtomicU64::new(0),
            epoch: std::time::Instant::now(),
        });
        let router = router(state.clone());
        let _ = state.router.set(router.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Simulator {
            state,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`, with no trailing slash.
    pub fn base_url(&self) -> &str {
        &self.state.base_url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `GRAPH_ENDPOINT` for an app under test.
    pub fn graph_endpoint(&self) -> String {
        self.state.base_url.clone()
    }

    /// `IDENTITY_ENDPOINT` for an app under test.
    pub fn identity_endpoint(&self) -> String {
        format!("{}/msi/token", self.state.base_url)
    }

    /// `IDENTITY_HEADER` for an app under test (drawn at start-up).
    pub fn identity_header(&self) -> &str {
        &self.state.identity_header
    }

    /// `AUTH_AUTHORITY` for an app under test.
    /// Register a single-page app's redirect URI for the API's app registration (as the
    /// templates register the console's), so the sign-in flow accepts it.
    pub fn register_spa_redirect(&self, uri: &str) {
        let mut signin = self.state.signin();
        if !signin.spa_redirect_uris.iter().any(|r| r == uri) {
            signin.spa_redirect_uris.push(uri.to_owned());
        }
    }

    pub fn authority(&self) -> String {
        self.state.base_url.clone()
    }

    /// The vault URI the simulated Key Vault answers for (`KEY_VAULT_URI`).
    pub fn key_vault_uri(&self) -> String {
        self.state.vault_uri()
    }

    pub fn seed(&self) -> &Seed {
        &self.state.seed
    }

    /// Issue a caller token in-process (the same as `POST /sim/token`).
    pub fn issue_token(&self, request: &TokenRequest) -> String {
        control::issue(&self.state, request)
    }

    /// The live tenant, for tests that arrange what the seed does not (a permission never
    /// granted, a group membership added). Hold the guard only briefly.
    pub fn tenant(&self) -> std::sync::MutexGuard<'_, Tenant> {
        self.state.tenant()
    }

    /// Every request the simulator served so far (`GET /sim/requests`).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Forget the request log (`DELETE /sim/requests`).
    pub fn clear_requests(&self) {
        self.state.requests.lock().unwrap().clear();
    }

    /// Graph calls and sequential round trips since the log was last cleared.
    pub fn graph_cost(&self) -> cost::GraphCost {
        cost::graph_cost(&self.state.requests.lock().unwrap())
    }

    /// The request log's clock now (microseconds, as `startedUs` and `endedUs`).
    pub fn clock_us(&self) -> u64 {
        u64::try_from(self.state.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Graph calls and round trips of the requests answered by `us` on the log's clock: what a
    /// caller waited for when its answer came at `us` (work that goes on after the answer, such
    /// as the outbox's notices, is left out).
    pub fn graph_cost_until(&self, us: u64) -> cost::GraphCost {
        let log = self.state.requests.lock().unwrap();
        let answered: Vec<_> = log.iter().filter(|r| r.ended_us <= us).cloned().collect();
        cost::graph_cost(&answered)
    }

    /// Every Graph answer waits `ms` (the same as `POST /sim/latency`).
    pub fn set_graph_latency(&self, ms: u64) {
        self.state
            .graph_latency_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Grow the tenant (the same as `POST /sim/scale`).
    ///
    /// # Errors
    /// A user `scale` names does not exist.
    pub fn scale(&self, scale: &cost::Scale) -> Result<(), String> {
        cost::apply_scale(&self.state, scale)
    }

    /// What the simulated providers have sent so far.
    pub fn outbox(&self) -> Vec<OutboxItem> {
        self.state.outbox.lock().unwrap().clone()
    }

    /// Set the registration report's knobs (the same as `POST /sim/report`).
    ///
    /// # Errors
    /// The JSON is not `{syntheticUsers?, pageSize?, emptyPages?, throttle?: {limit, windowSeconds}}`.
    pub fn configure_report(&self, knobs: Value) -> Result<(), String> {
        graph::configure_report(&self.state, knobs)
    }

    /// What the simulated ServiceNow, Jira and callback receiver were sent.
    pub fn itsm(&self) -> Vec<itsm::ItsmItem> {
        self.state.itsm.lock().unwrap().clone()
    }

    /// The current value of a Key Vault secret (for tests that play a webhook sender).
    pub fn secret(&self, name: &str) -> Option<String> {
        self.state.secrets.lock().unwrap().get(name).cloned()
    }

    /// Demo users with their notes, for `mfa-recovery dev` to print.
    pub fn demo_users(&self) -> Vec<(String, String, String)> {
        self.state
            .tenant()
            .users
            .iter()
            .map(|u| {
                (
                    u.upn.clone(),
                    u.display_name.clone(),
                    u.demo_note.clone().unwrap_or_default(),
                )
            })
            .collect()
    }

    /// A summary of the simulator's endpoints as JSON (`GET /sim/info`).
    pub fn info(&self) -> Value {
        control::info(&self.state)
    }

    /// Stop serving and wait for in-flight requests.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn router(state: Arc<SimState>) -> Router {
    let remote = Router::new()
        .merge(graph::router(state.clone()))
        .merge(identity::router())
        .merge(signin::router())
        .merge(keyvault::router())
        .merge(monitor::router())
        .merge(providers::router())
        .merge(itsm::router())
        .layer(axum::middleware::from_fn_with_state(state.clone(), faults::middleware));
    Router::new().merge(remote).merge(control::router()).with_state(state)
}
