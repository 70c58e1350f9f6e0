//! Wiring: builds the store, the partner client, the sync engine and the HTTP server from
//! settings. Tests build it on port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::bookings::BookingDesk;
use crate::config::{NamedPartner, Settings};
use crate::partner::{PartnerClient, PartnerClientConfig};
use crate::storage::{self, CachedStore, Mirror, Store};
use crate::sync::clock::Clock;
use crate::sync::engine::{Engine, EngineConfig};
use crate::sync::partners::SyncPartners;
use crate::sync::scheduler;
use crate::telemetry;

/// How long a shutdown waits for the day being applied and for open requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Opens (and migrates) the database, registers the configured experiences, prepares the
    /// sync engine and binds the listener; `server.listen` with port 0 picks a free port.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let database = storage::connect(settings.database.url.expose())
            .await
            .context("opening the database (database.url)")?;
        // Serves reads from memory only while this process holds the sync lease (see the type).
        let store = Arc::new(CachedStore::new(database));
        store
            .ensure_experiences(&settings.experiences())
            .await
            .context("registering the configured experiences")?;
        let mut engines = Vec::new();
        for partner in settings.partners() {
            let client = partner_client(partner, &settings.sync.instance_id)?;
            let engine = Engine::new(
                EngineConfig::for_partner(&settings, partner),
                store.clone(),
                Arc::new(client),
                Clock::system(),
            )
            .await
            .with_context(|| format!("loading the sync state of {}", partner.key()))?;
            engines.push(engine);
        }
        let sync = SyncPartners::new(engines).context("no partner is configured")?;
        let listener = bind(settings.server.listen, settings.server.listen_backlog())
            .with_context(|| format!("binding server.listen {}", settings.server.listen))?;
        Ok(Self {
            listener,
            state: AppState {
                bookings: BookingDesk::new(store.clone()),
                store,
                sync,
                settings: Arc::new(settings),
                metrics: telemetry::metrics(),
                shutdown: CancellationToken::new(),
            },
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has an address")
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.state.store.clone()
    }

    pub fn bookings(&self) -> BookingDesk {
        self.state.bookings.clone()
    }

    /// The first configured partner's sync engine (the only one of a one-partner
    /// configuration).
    pub fn engine(&self) -> Engine {
        self.state.sync.first().clone()
    }

    /// Every partner's sync engine.
    pub fn sync(&self) -> SyncPartners {
        self.state.sync.clone()
    }

    /// Syncs and serves until `shutdown` resolves; then answers `/readyz` with 503, stops
    /// partner calls, keeps serving for `server.shutdown_delay_seconds` (so a load balancer
    /// sees the 503 and moves traffic away), lets the day in flight commit or roll back, and
    /// drains open requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let engines = self.state.sync.clone();
        let sync_enabled = self.state.settings.sync.enabled;
        let mut workers = if sync_enabled {
            engines.start()
        } else {
            tracing::info!("sync.enabled = false: serving only, never calling a partner");
            tokio::task::JoinSet::new()
        };
        // Each ends with its engine's shutdown.
        let _schedules: Vec<_> = engines.engines().iter().map(scheduler::start).collect();
        // Every instance sweeps; each lapsed hold is released once (see the sweeper).
        let sweeping = CancellationToken::new();
        let sweeper = tokio::spawn(
            self.state
                .bookings
                .clone()
                .sweep_lapsed_holds(sweeping.clone()),
        );
        tracing::info!(addr = %self.local_addr(), "serving");
        let stopping = engines.clone();
        let not_ready = self.state.shutdown.clone();
        let delay = self.state.settings.server.shutdown_delay();
        let limits = self.state.settings.server.connection_limits();
        let stop_accepting = async move {
            shutdown.await;
            not_ready.cancel();
            stopping.shutdown();
            if !delay.is_zero() {
                tracing::info!(?delay, "not ready; serving on before closing the listener");
                tokio::time::sleep(delay).await;
            }
        };
        let admission = api::admission::Admission::new(&self.state.settings.server);
        let intake = api::intake::Intake::new(&self.state.settings.server);
        let router = api::router(self.state);
        api::server::serve(
            self.listener,
            router,
            admission,
            intake,
            limits,
            stop_accepting,
            SHUTDOWN_GRACE,
        )
        .await;
        engines.shutdown();
        sweeping.cancel();
        if let Err(error) = sweeper.await {
            tracing::warn!(%error, "the hold sweeper ended abnormally");
        }
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while workers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("sync workers did not stop in time");
        }
        Ok(())
    }
}

/// Binds with a backlog of its own: tokio's default (1,024) lets a burst of connects overflow
/// the accept queue, and those clients wait seconds for TCP to retransmit their handshake.
fn bind(address: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // A restarted daemon rebinds at once, whatever connections of the last one linger.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(backlog)
}

/// The HTTP client of one partner, with its own key and pacer.
pub fn partner_client(partner: NamedPartner<'_>, instance: &str) -> anyhow::Result<PartnerClient> {
    let settings = partner.settings;
    Ok(PartnerClient::for_instance(
        PartnerClientConfig {
            base_url: settings.base_url.0.to_string(),
            api_key: partner.api_key()?.clone(),
            rate_limit_per_minute: settings.rate_limit_per_minute,
            request_timeout: settings.request_timeout(),
            protocol: settings.protocol()?,
        },
        instance,
    )?)
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested");
}
