//! The command line: `serve`, `sync`, `verify`, `partner-sim` and `demo`.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{Days, NaiveDate};
use clap::{Parser, Subcommand};

use crate::app::{Application, shutdown_signal};
use crate::config::{BaseUrl, Settings};
use crate::domain::{ExperienceId, Secret};
use crate::partner::{PartnerClient, PartnerClientConfig};
use crate::simulator::{Simulator, SimulatorConfig};
use crate::storage;
use crate::sync::{self, RetryPolicy};
use crate::telemetry;

#[derive(Debug, Parser)]
#[command(
    name = "invsync",
    version,
    about = "Keeps a partner's inventory in sync, audited by a ledger"
)]
pub struct Cli {
    /// Configuration file (default: ./config.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the read API from the database.
    Serve,
    /// Fetch a range of days from the partner once and apply them.
    Sync {
        /// Only this experience (default: every configured experience).
        #[arg(long)]
        experience: Option<ExperienceId>,
        /// First date, YYYY-MM-DD (default: today in the partner's time zone).
        #[arg(long)]
        from: Option<NaiveDate>,
        /// Last date, YYYY-MM-DD (default: the end of the horizon).
        #[arg(long)]
        to: Option<NaiveDate>,
    },
    /// Check every ledger invariant; exits 1 naming each violation.
    Verify,
    /// Run the built-in partner simulator (the Leap inventory API on fixture data).
    PartnerSim {
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: SocketAddr,
        /// The x-api-key it accepts.
        #[arg(long, env = "INVSYNC_SIM_API_KEY", default_value = "sim-key")]
        api_key: String,
        #[arg(long, default_value_t = NonZeroU32::new(30).expect("non-zero"))]
        rate_limit_per_minute: NonZeroU32,
        /// Sell a few random seats every N seconds, so a re-sync has changes to record.
        #[arg(long, value_name = "SECONDS")]
        churn_every: Option<u64>,
    },
    /// Run the simulator and the service together on the embedded SQLite default.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(cli.config.as_deref())?;
    telemetry::init(settings.log.format);
    match cli.command {
        Command::Serve => {
            Application::build(settings)
                .await?
                .run_until_stopped(shutdown_signal())
                .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sync {
            experience,
            from,
            to,
        } => sync_once(&settings, experience, from, to).await,
        Command::Verify => verify(&settings).await,
        Command::PartnerSim {
            listen,
            api_key,
            rate_limit_per_minute,
            churn_every,
        } => {
            let simulator = Simulator::new(SimulatorConfig {
                rate_limit_per_minute,
                churn_every: churn_every.map(Duration::from_secs),
                ..SimulatorConfig::new(Secret::new(api_key))
            });
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            tracing::info!(%listen, "partner simulator serving");
            crate::simulator::serve(listener, simulator, shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { listen } => demo(settings, listen).await,
    }
}

fn partner_client(settings: &Settings) -> anyhow::Result<PartnerClient> {
    Ok(PartnerClient::new(PartnerClientConfig {
        base_url: settings.partner.base_url.0.to_string(),
        api_key: settings.partner.api_key()?.clone(),
        rate_limit_per_minute: settings.partner.rate_limit_per_minute,
        request_timeout: settings.partner.request_timeout(),
    })?)
}

/// The configured horizon: today in the partner's zone and the following days.
fn horizon(settings: &Settings) -> (NaiveDate, NaiveDate) {
    let today = settings.partner.today();
    let days = u64::from(settings.sync.horizon_days.get() - 1);
    (
        today,
        today.checked_add_days(Days::new(days)).unwrap_or(today),
    )
}

async fn sync_once(
    settings: &Settings,
    experience: Option<ExperienceId>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> anyhow::Result<ExitCode> {
    let (first, last) = horizon(settings);
    let (from, to) = (from.unwrap_or(first), to.unwrap_or(last));
    if from > to {
        bail!("--from {from} is after --to {to}");
    }
    let experiences = match experience {
        Some(id) => vec![id],
        None => settings.partner.experiences.clone(),
    };
    let partner = partner_client(settings)?;
    let store = storage::connect(settings.database.url.expose()).await?;
    store.ensure_experiences(&experiences).await?;
    let summary = sync::sync_days(
        &partner,
        store.as_ref(),
        sync::product_dates(&experiences, from, to),
        RetryPolicy::default(),
    )
    .await?;
    println!(
        "fetched {} product-days, {} changed ({} transfers posted)",
        summary.fetched, summary.changed, summary.transfers
    );
    for (day, error) in &summary.failed {
        println!("FAILED {day}: {error}");
    }
    Ok(if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn verify(settings: &Settings) -> anyhow::Result<ExitCode> {
    let store = storage::connect(settings.database.url.expose()).await?;
    let report = store.verify().await?;
    println!(
        "checked {} accounts, {} transactions, {} entries",
        report.accounts, report.transactions, report.entries
    );
    for violation in &report.violations {
        let invariant = serde_json::to_value(violation.invariant)?;
        println!(
            "VIOLATION {}: {}",
            invariant.as_str().unwrap_or("?"),
            violation.detail
        );
    }
    if report.ok {
        println!("ledger OK");
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::FAILURE)
    }
}

/// The newcomer's first run: the simulator in-process, the service on `listen`, and a sync of
/// the whole horizon in the background (nearest days first, paced at the partner's limit).
async fn demo(mut settings: Settings, listen: SocketAddr) -> anyhow::Result<ExitCode> {
    const DEMO_KEY: &str = "demo-key";
    let simulator = Simulator::new(SimulatorConfig {
        rate_limit_per_minute: settings.partner.rate_limit_per_minute,
        churn_every: Some(Duration::from_secs(30)),
        ..SimulatorConfig::new(Secret::new(DEMO_KEY))
    });
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the simulator")?;
    let sim_addr = sim_listener.local_addr()?;
    tokio::spawn(crate::simulator::serve(
        sim_listener,
        simulator,
        std::future::pending(),
    ));
    settings.partner.base_url = BaseUrl(format!("http://{sim_addr}").parse()?);
    settings.partner.api_key = Some(Secret::new(DEMO_KEY));
    settings.server.listen = listen;

    let app = Application::build(settings.clone()).await?;
    let store = app.store();
    let partner = partner_client(&settings)?;
    let (from, to) = horizon(&settings);
    let experiences = settings.partner.experiences.clone();
    tokio::spawn(async move {
        let days = sync::product_dates(&experiences, from, to);
        match sync::sync_days(&partner, store.as_ref(), days, RetryPolicy::default()).await {
            Ok(summary) => tracing::info!(?summary, "demo backfill finished"),
            Err(error) => tracing::error!(%error, "demo backfill stopped"),
        }
    });
    let base = format!("http://{}", app.local_addr());
    println!("invsync demo: partner simulator on http://{sim_addr}, API on {base}");
    println!("syncing {from} … {to} at the partner's rate limit, nearest days first; try:");
    println!("  curl {base}/api/v1/experience/14/dates");
    println!("  curl '{base}/api/v1/experience/14/slots?date={from}'");
    println!("  curl {base}/api/v1/ledger/verify");
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
