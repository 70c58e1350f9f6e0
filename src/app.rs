//! Wiring: builds the store and the HTTP server from settings. Tests build it on port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::config::Settings;
use crate::storage::{self, Store};

pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Opens (and migrates) the database, registers the configured experiences, and binds
    /// the listener; `server.listen` with port 0 picks a free port.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = storage::connect(settings.database.url.expose())
            .await
            .context("opening the database (database.url)")?;
        store
            .ensure_experiences(&settings.partner.experiences)
            .await
            .context("registering the configured experiences")?;
        let listener = TcpListener::bind(settings.server.listen)
            .await
            .with_context(|| format!("binding server.listen {}", settings.server.listen))?;
        Ok(Self {
            listener,
            state: AppState {
                store,
                settings: Arc::new(settings),
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

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(addr = %self.local_addr(), "serving");
        axum::serve(self.listener, api::router(self.state))
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")
    }
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
