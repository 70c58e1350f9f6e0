//! The command line: `serve`, `sync`, `verify`, `partner-sim` and `demo`.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::app::{Application, partner_client, shutdown_signal};
use crate::config::{BaseUrl, PartnerKind, PartnerSettings, Settings};
use crate::domain::{ExperienceId, Secret};
use crate::partner::Protocol;
use crate::simulator::{Simulator, SimulatorConfig};
use crate::storage;
use crate::sync::tiers::{self, Tier};
use crate::sync::{self, RetryPolicy, SyncError, quiet};
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
    /// Run the daemon: tiered sync under the partner's rate limit, and the HTTP API.
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
        /// Also serve N made-up products (ids from 1000, 1 to 4 running days a week), for
        /// scale runs.
        #[arg(long, default_value_t = 0)]
        synthetic_products: usize,
    },
    /// Run the built-in simulator and the daemon together on the embedded SQLite default.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// Print what the configured tiers cost per day for N products against the budget.
    Plan {
        #[arg(long, default_value_t = 2)]
        products: u64,
        /// Weekdays each product runs on, on average (1 to 7): the others are probed every
        /// 48 h once learned quiet.
        #[arg(long, default_value_t = 7.0, value_parser = running_weekdays)]
        running_weekdays: f64,
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
            synthetic_products,
        } => {
            let mut config = SimulatorConfig {
                rate_limit_per_minute,
                churn_every: churn_every.map(Duration::from_secs),
                ..SimulatorConfig::new(Secret::new(api_key))
            };
            config
                .products
                .extend(crate::simulator::synthetic_products(synthetic_products, 0));
            let simulator = Simulator::new(config);
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            tracing::info!(%listen, "partner simulator serving");
            crate::simulator::serve(listener, simulator, shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { listen } => demo(settings, listen).await,
        Command::Plan {
            products,
            running_weekdays,
        } => {
            print_plan(&settings, products, running_weekdays);
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn sync_once(
    settings: &Settings,
    experience: Option<ExperienceId>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> anyhow::Result<ExitCode> {
    if let Some(id) = experience
        && !settings.experiences().contains(&id)
    {
        bail!("experience {id} is not in any partner's experiences");
    }
    let store = storage::connect(settings.database.url.expose()).await?;
    let mut failed = false;
    for partner in settings.partners() {
        let experiences = match experience {
            Some(id) if partner.settings.experiences.contains(&id) => vec![id],
            Some(_) => continue,
            None => partner.settings.experiences.clone(),
        };
        let (first, last) =
            sync::horizon(partner.settings.today(), settings.sync.horizon_days.get());
        let (from, to) = (from.unwrap_or(first), to.unwrap_or(last));
        if from > to {
            bail!("--from {from} is after --to {to}");
        }
        let client = partner_client(partner, &settings.sync.instance_id)?;
        store.ensure_experiences(&experiences).await?;
        let summary = sync::sync_days(
            &client,
            store.as_ref(),
            sync::product_dates(&experiences, from, to),
            RetryPolicy::default(),
            &settings.sync.lease_claim(),
        )
        .await
        .map_err(|error| match error {
            SyncError::LeaseHeldElsewhere { .. } => {
                anyhow::anyhow!(
                    "{error}:\n  {}",
                    trigger_curl(settings, experience, from, to)
                )
            }
            other => other.into(),
        })?;
        println!(
            "{}: fetched {} product-days, {} changed ({} transfers posted)",
            partner.name, summary.fetched, summary.changed, summary.transfers
        );
        for (day, error) in &summary.failed {
            println!("FAILED {day}: {error}");
        }
        failed |= !summary.failed.is_empty();
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The request that asks a running daemon for the re-sync `invsync sync` was asked for.
fn trigger_curl(
    settings: &Settings,
    experience: Option<ExperienceId>,
    from: NaiveDate,
    to: NaiveDate,
) -> String {
    let mut body = serde_json::json!({ "from": from, "to": to });
    if let Some(id) = experience {
        body["experience"] = serde_json::json!(id);
    }
    let listen = settings.server.listen;
    let address = if listen.port() == 0 {
        "HOST:PORT".to_string()
    } else {
        listen.to_string()
    };
    format!(
        "curl -X POST -H \"Authorization: Bearer $INVSYNC_SERVER__ADMIN_TOKEN\" \
         -H 'Content-Type: application/json' -d '{body}' http://{address}/api/v1/sync/trigger"
    )
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
    let unlisted = report.violation_count - report.violations.len() as u64;
    if unlisted > 0 {
        println!("… and {unlisted} more violations");
    }
    if report.ok {
        println!("ledger OK");
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::FAILURE)
    }
}

/// The newcomer's first run: the simulator in-process and the real daemon on `listen`, on the
/// embedded SQLite default. The start-up backfill fills the horizon, nearest days first, at the
/// partner's rate limit; the simulator sells a few seats now and then for the tiers to record.
async fn demo(mut settings: Settings, listen: SocketAddr) -> anyhow::Result<ExitCode> {
    const DEMO_KEY: &str = "demo-key";
    const DEMO_ADMIN_TOKEN: &str = "demo-admin-token";
    // One simulator stands in for every partner, one key for all: it allows their sum.
    let all_partners = settings
        .partners()
        .iter()
        .map(|partner| partner.settings.rate_limit_per_minute)
        .reduce(|sum, limit| sum.saturating_add(limit.get()))
        .unwrap_or(settings.partner.rate_limit_per_minute);
    let simulator = Simulator::new(SimulatorConfig {
        rate_limit_per_minute: all_partners,
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
    // The simulator speaks both kinds: Leap at its root, OCTO under `/octo`. Every partner
    // configured is pointed at it.
    let partners = std::iter::once(&mut settings.partner).chain(settings.partners.values_mut());
    for partner in partners {
        let url = match partner.kind {
            PartnerKind::Leap => format!("http://{sim_addr}"),
            PartnerKind::Octo => format!("http://{sim_addr}/octo"),
        };
        partner.base_url = BaseUrl(url.parse()?);
        partner.api_key = Some(Secret::new(DEMO_KEY));
    }
    settings.server.listen = listen;
    // The token chosen through the environment is never printed; the demo's own is.
    let admin_token_shown = if settings.server.admin_token.is_none() {
        settings.server.admin_token = Some(Secret::new(DEMO_ADMIN_TOKEN));
        println!(
            "admin token for this demo: {DEMO_ADMIN_TOKEN} (set INVSYNC_SERVER__ADMIN_TOKEN to choose one)"
        );
        DEMO_ADMIN_TOKEN
    } else {
        "$INVSYNC_SERVER__ADMIN_TOKEN"
    };

    const DEMO_SALES_TOKEN: &str = "demo-sales-token";
    let sales_token_shown = if settings.server.sales_token.is_none() {
        settings.server.sales_token = Some(Secret::new(DEMO_SALES_TOKEN));
        DEMO_SALES_TOKEN
    } else {
        "$INVSYNC_SERVER__SALES_TOKEN"
    };
    let synced_as = settings
        .partners()
        .iter()
        .map(|partner| format!("{} as {}", partner.name, partner.settings.kind.as_str()))
        .collect::<Vec<_>>()
        .join(", ");

    let app = Application::build(settings).await?;
    let base = format!("http://{}", app.local_addr());
    let (today, _) = app.engine().horizon();
    let customer_stops = CancellationToken::new();
    let engine = app.engine();
    if let Some(&experience) = engine.experiences().first() {
        tokio::spawn(crate::bookings::demo::run(
            app.bookings(),
            app.store(),
            experience,
            move || engine.horizon(),
            customer_stops.clone(),
        ));
    }
    println!(
        "invsync demo: partner simulator on http://{sim_addr} (synced: {synced_as}), API on {base}"
    );
    println!(
        "operator console: {base}/console (pause, resume and trigger ask for the admin token)"
    );
    println!("backfilling the horizon at the partner's rate limit, nearest days first; try:");
    println!("  curl {base}/api/v1/sync/status");
    println!("  curl {base}/api/v1/experience/14/dates");
    println!("  curl '{base}/api/v1/experience/14/slots?date={today}'");
    println!("  curl -H \"Authorization: Bearer {admin_token_shown}\" {base}/api/v1/ledger/verify");
    println!(
        "a demo customer holds a seat every 10 s, then confirms, cancels or lets it lapse; book one:"
    );
    println!(
        "  curl -X POST {base}/api/v1/bookings -H \"Authorization: Bearer {sales_token_shown}\" \\\n    -H 'Idempotency-Key: my-first-booking' -H 'Content-Type: application/json' \\\n    -d '{{\"experience\": 14, \"date\": \"YYYY-MM-DD from /dates\", \"startTime\": \"HH:MM from /slots\", \"pax\": [{{\"type\": \"ADULT_12~99\", \"quantity\": 1}}]}}'"
    );
    app.run_until_stopped(shutdown_signal()).await?;
    customer_stops.cancel();
    Ok(ExitCode::SUCCESS)
}

fn running_weekdays(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(days) if (1.0..=7.0).contains(&days) => Ok(days),
        _ => Err(format!("{text:?} is not a number of weekdays from 1 to 7")),
    }
}

fn print_plan(settings: &Settings, products: u64, running_weekdays: f64) {
    let partners = settings.partners();
    for partner in &partners {
        if partners.len() > 1 {
            println!("{}:", partner.key());
        }
        print_partner_plan(settings, partner.settings, products, running_weekdays);
    }
}

/// The budget of one partner's rate limit for `products` products.
fn print_partner_plan(
    settings: &Settings,
    partner: &PartnerSettings,
    products: u64,
    running_weekdays: f64,
) {
    let tiers: Vec<Tier> = settings
        .sync
        .tiers()
        .into_iter()
        .map(|settings| Tier { settings })
        .collect();
    let rpm = u64::from(partner.rate_limit_per_minute.get());
    let budget = rpm * 1440;
    let days_per_call = partner.protocol().map_or(1, |protocol| match protocol {
        Protocol::Leap => 1,
        Protocol::Octo { days_per_call, .. } => days_per_call.get(),
    });
    let plan = tiers::plan(
        &tiers,
        products,
        running_weekdays,
        days_per_call,
        budget,
        chrono::Utc::now(),
    );
    let fetching = if days_per_call > 1 {
        format!(
            "up to {days_per_call} days of a product per call ({} partner), quiet weekdays \
             read in the ranges of running days, probed every {} h alone",
            partner.kind.as_str(),
            quiet::PROBE_PERIOD.as_secs() / 3600
        )
    } else {
        format!(
            "one day per call, quiet weekdays probed every {} h",
            quiet::PROBE_PERIOD.as_secs() / 3600
        )
    };
    println!(
        "{products} products running {running_weekdays} of 7 weekdays, {rpm} requests/minute: \
         {budget} calls/day; {fetching}"
    );
    println!(
        "{:<10} {:>10} {:>10} {:>12} {:>12} {:>9}",
        "tier", "days", "runs/day", "calls/day", "quiet", "covered"
    );
    for tier in &plan {
        println!(
            "{:<10} {:>10} {:>10.1} {:>12} {:>12} {:>8.0}%",
            tier.name,
            tier.owned_days,
            tier.runs_per_day,
            tier.calls_per_day,
            tier.quiet_calls_per_day,
            tier.covered * 100.0
        );
    }
    let wanted: u64 = plan.iter().map(|tier| tier.calls_per_day).sum();
    println!("total wanted {wanted} calls/day of {budget}");
    for tier in plan.iter().filter(|tier| tier.covered < 1.0) {
        let wanted_hours = 24.0 / tier.runs_per_day;
        if tier.covered == 0.0 {
            println!(
                "{} lags: no budget is left for it; its days (wanted every {wanted_hours:.1} h) \
                 are refreshed only when nearer tiers leave room",
                tier.name
            );
        } else {
            println!(
                "{} lags: its days are refreshed about every {:.1} h instead of every \
                 {wanted_hours:.1} h",
                tier.name,
                wanted_hours / tier.covered
            );
        }
    }
}
