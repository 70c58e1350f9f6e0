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
use crate::config::Settings;
use crate::partner::{PartnerClient, PartnerClientConfig};
use crate::storage::{self, CachedStore, Mirror, Store};
use crate::sync::clock::Clock;
use crate::sync::engine::{Engine, EngineConfig};
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
            .ensure_experiences(&settings.partner.experiences)
            .await
            .context("registering the configured experiences")?;
        let partner = partner_client(&settings)?;
        let engine = Engine::new(
            EngineConfig::from_settings(&settings),
            store.clone(),
            Arc::new(partner),
            Clock::system(),
        )
        .await
        .context("loading the sync state")?;
        let listener = bind(settings.server.listen, settings.server.listen_backlog())
            .with_context(|| format!("binding server.listen {}", settings.server.listen))?;
        Ok(Self {
            listener,
            state: AppState {
                bookings: BookingDesk::new(store.clone()),
                store,
                engine,
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

    pub fn engine(&self) -> Engine {
        self.state.engine.clone()
    }

    /// Syncs and serves until `shutdown` resolves; then answers `/readyz` with 503, stops
    /// partner calls, keeps serving for `server.shutdown_delay_seconds` (so a load balancer
    /// sees the 503 and moves traffic away), lets the day in flight commit or roll back, and
    /// drains open requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let engine = self.state.engine.clone();
        let sync_enabled = self.state.settings.sync.enabled;
        let mut workers = if sync_enabled {
            engine.start()
        } else {
            tracing::info!("sync.enabled = false: serving only, never calling the partner");
            tokio::task::JoinSet::new()
        };
        // Ends with the engine's shutdown.
        let _schedule = scheduler::start(&engine);
        // Every instance sweeps; each lapsed hold is released once (see the sweeper).
        let sweeping = CancellationToken::new();
        let sweeper = tokio::spawn(
            self.state
                .bookings
                .clone()
                .sweep_lapsed_holds(sweeping.clone()),
        );
        tracing::info!(addr = %self.local_addr(), "serving");
        let stopping = engine.clone();
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
        let router = api::router(self.state);
        api::server::serve(
            self.listener,
            router,
            limits,
            stop_accepting,
            SHUTDOWN_GRACE,
        )
        .await;
        engine.shutdown();
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

pub fn partner_client(settings: &Settings) -> anyhow::Result<PartnerClient> {
    Ok(PartnerClient::for_instance(
        PartnerClientConfig {
            base_url: settings.partner.base_url.0.to_string(),
            api_key: settings.partner.api_key()?.clone(),
            rate_limit_per_minute: settings.partner.rate_limit_per_minute,
            request_timeout: settings.partner.request_timeout(),
            protocol: settings.partner.protocol()?,
        },
        &settings.sync.instance_id,
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
