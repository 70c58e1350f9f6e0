//! A built-in simulator of the partner's inventory API, for demos (`invsync partner-sim`) and
//! for tests that need a real HTTP peer.
//!
//! It serves products from `fixtures/products/` on the partner's routes, enforces the API key
//! and a sliding-window rate limit like the partner, and lets callers change inventory, inject
//! faults and inspect every call, both in-process and over `/_sim/...` control routes.
//!
//! The same catalogue and state are also served as an OCTO supplier under `/octo` (see
//! `src/simulator/octo.rs`), behind the same key, rate window, faults and call log.
//!
//! The answer for a (product, date) is generated from the product's definition until the
//! first change to that day; from then on the changed copy is served, so changes persist
//! per date.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! use invsync::domain::Secret;
//! use invsync::simulator::{Faults, Simulator, SimulatorConfig};
//!
//! let handle = Simulator::new(SimulatorConfig::new(Secret::new("sim-key")))
//!     .spawn_local()
//!     .await?;
//! // Point a `PartnerClient` at `handle.base_url()` with key "sim-key", then for example:
//! handle.sim.set_faults(Faults { server_error_percent: 20, ..Faults::default() }).ok();
//! let calls_so_far = handle.sim.calls();
//! # drop(calls_so_far);
//! handle.shutdown().await
//! # }
//! ```

mod catalog;
mod faults;
mod http;
mod in_process;
mod octo;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Number;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::domain::{ExperienceId, Secret};
use crate::partner::wire::WireSlot;

pub use catalog::{
    FixtureError, PaxTypeDefinition, ProductDefinition, SYNTHETIC_FIRST_ID, SlotDefinition,
    SlotPaxDefinition, builtin_products, synthetic_products,
};
pub use faults::{Fault, Faults};
pub use in_process::InProcessPartner;

/// The length of the partner's rate-limit window.
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Oldest calls are forgotten beyond this, so a long demo has bounded memory.
const MAX_CALL_LOG: usize = 100_000;
/// Churn sells seats on dates this many days ahead at most: where a sync looks most often.
const CHURN_HORIZON_DAYS: u64 = 14;
const MAX_SEATS_PER_SALE: i64 = 3;
const MAX_RATE_LIMIT_STORM: Duration = Duration::from_secs(24 * 60 * 60);
/// The real partner's limit per key.
const PARTNER_RATE_LIMIT_PER_MINUTE: NonZeroU32 = NonZeroU32::new(30).expect("30 is not zero");

#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// The only key the simulator accepts: in `x-api-key` on the partner's route, as
    /// `Authorization: Bearer` on the OCTO routes.
    pub api_key: Secret,
    /// Accepted calls per key in any sliding 60-second window; the partner's is 30.
    pub rate_limit_per_minute: NonZeroU32,
    /// When set, sells a few random seats this often so a running demo records postings.
    pub churn_every: Option<Duration>,
    /// Seeds fault rolls and churn, so a test run can be replayed.
    pub seed: u64,
    pub products: Vec<ProductDefinition>,
    /// The partner's zone: its dates and start times are local to it. Only the OCTO routes
    /// use it, to write offsets and UTC instants.
    pub time_zone: Tz,
}

impl SimulatorConfig {
    /// The built-in products 14 and 15, the partner's 30 requests per minute, no churn, in
    /// the partner's zone Asia/Singapore.
    pub fn new(api_key: Secret) -> Self {
        Self {
            api_key,
            rate_limit_per_minute: PARTNER_RATE_LIMIT_PER_MINUTE,
            churn_every: None,
            seed: 0,
            time_zone: chrono_tz::Asia::Singapore,
            products: builtin_products()
                .expect("embedded fixtures are valid (checked by the simulator tests)"),
        }
    }
}

/// A handle on one simulated partner. Clones share the same state.
#[derive(Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
}

struct Shared {
    api_key: Secret,
    rate_limit_per_minute: NonZeroU32,
    churn_every: Option<Duration>,
    products: BTreeMap<ExperienceId, ProductDefinition>,
    time_zone: Tz,
    state: Mutex<State>,
}

struct State {
    /// Days that were changed; every other day is generated from its definition on demand.
    changed_days: HashMap<(ExperienceId, NaiveDate), Vec<WireSlot>>,
    faults: Faults,
    rate_limit_storm_until: Option<Instant>,
    rng: StdRng,
    /// Arrival times of accepted calls within the current rate window, oldest first.
    rate_window: VecDeque<Instant>,
    calls: VecDeque<CallRecord>,
}

/// The day as it may be changed: copied from its definition on its first change.
fn changed_day<'a>(
    changed_days: &'a mut HashMap<(ExperienceId, NaiveDate), Vec<WireSlot>>,
    product: &ProductDefinition,
    date: NaiveDate,
) -> &'a mut Vec<WireSlot> {
    changed_days
        .entry((product.product_id, date))
        .or_insert_with(|| product.day(date))
}

impl State {
    fn day(&self, product: &ProductDefinition, date: NaiveDate) -> Vec<WireSlot> {
        match self.changed_days.get(&(product.product_id, date)) {
            Some(day) => day.clone(),
            None => product.day(date),
        }
    }
}

/// One call to a partner route (the partner's own or an OCTO one), as the simulator saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    pub at: DateTime<Utc>,
    /// Monotonic arrival time, for pacing assertions.
    #[serde(skip)]
    pub arrived: Instant,
    /// Which route was called.
    pub route: CallRoute,
    /// `None` when the call named no valid product id (or, for the OCTO product list, none).
    pub experience: Option<ExperienceId>,
    /// `None` when the `date` query parameter was missing or invalid; for an OCTO
    /// availability range, its first date.
    pub date: Option<NaiveDate>,
    /// The last date of an OCTO availability range; `None` on any other call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_date: Option<NaiveDate>,
    /// The status sent (for a slow response, the one the client may not have waited for).
    pub status: u16,
    /// The fault injected into this call, if any (a 429 shows in `status`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
    /// The caller's User-Agent (invsync names its instance there); `None` in process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

/// The partner routes whose calls are authenticated, rate limited, faulted and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CallRoute {
    /// `GET /api/v1/inventory/{productId}?date=`, the partner's own.
    Inventory,
    /// `GET /octo/products`.
    OctoProducts,
    /// `GET /octo/products/{productId}`.
    OctoProduct,
    /// `POST /octo/availability`.
    OctoAvailability,
}

impl CallRoute {
    pub fn is_octo(self) -> bool {
        !matches!(self, Self::Inventory)
    }
}

/// Seats taken by one churn step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sale {
    pub experience: ExperienceId,
    pub date: NaiveDate,
    pub start_time: String,
    pub pax_type: String,
    pub seats: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("product {0} is not defined in the simulator")]
    UnknownProduct(ExperienceId),
    #[error("product {experience} has no slot at {} on {date}", start_time.format("%H:%M"))]
    NoSuchSlot {
        experience: ExperienceId,
        date: NaiveDate,
        start_time: NaiveTime,
    },
    #[error(
        "the {} slot of product {experience} on {date} has no pax type {pax_type:?}",
        start_time.format("%H:%M")
    )]
    NoSuchPax {
        experience: ExperienceId,
        date: NaiveDate,
        start_time: NaiveTime,
        pax_type: String,
    },
    #[error("fault percentages add up to {0}, more than 100")]
    InvalidFaults(u16),
}

impl Simulator {
    pub fn new(config: SimulatorConfig) -> Self {
        let products = config
            .products
            .into_iter()
            .map(|product| (product.product_id, product))
            .collect();
        Self {
            shared: Arc::new(Shared {
                api_key: config.api_key,
                rate_limit_per_minute: config.rate_limit_per_minute,
                churn_every: config.churn_every,
                products,
                time_zone: config.time_zone,
                state: Mutex::new(State {
                    changed_days: HashMap::new(),
                    faults: Faults::default(),
                    rate_limit_storm_until: None,
                    rng: StdRng::seed_from_u64(config.seed),
                    rate_window: VecDeque::new(),
                    calls: VecDeque::new(),
                }),
            }),
        }
    }

    /// Serves this simulator on `127.0.0.1` at a free port until the handle is shut down or
    /// dropped.
    pub async fn spawn_local(self) -> io::Result<SimulatorHandle> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, self.clone(), async {
            // A dropped sender means the handle is gone: stop as well.
            let _ = stopped.await;
        }));
        Ok(SimulatorHandle {
            addr,
            sim: self,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// What the partner route answers for (product, date) right now, ignoring faults.
    pub fn inventory(
        &self,
        experience: ExperienceId,
        date: NaiveDate,
    ) -> Result<Vec<WireSlot>, SimError> {
        let product = self.product(experience)?;
        Ok(self.lock().day(product, date))
    }

    pub fn set_slot_remaining(
        &self,
        experience: ExperienceId,
        date: NaiveDate,
        start_time: NaiveTime,
        remaining: i64,
    ) -> Result<WireSlot, SimError> {
        self.change_slot(experience, date, start_time, |slot| {
            slot.remaining = Number::from(remaining);
            Ok(())
        })
    }

    /// Negative values are served as-is: they exercise the client's validation.
    pub fn set_pax_remaining(
        &self,
        experience: ExperienceId,
        date: NaiveDate,
        start_time: NaiveTime,
        pax_type: &str,
        remaining: i64,
    ) -> Result<WireSlot, SimError> {
        self.change_slot(experience, date, start_time, |slot| {
            let pax = find_pax(slot, experience, date, start_time, pax_type)?;
            pax.remaining = Number::from(remaining);
            Ok(())
        })
    }

    pub fn set_pax_price(
        &self,
        experience: ExperienceId,
        date: NaiveDate,
        start_time: NaiveTime,
        pax_type: &str,
        final_price: Decimal,
        original_price: Decimal,
    ) -> Result<WireSlot, SimError> {
        self.change_slot(experience, date, start_time, |slot| {
            let pax = find_pax(slot, experience, date, start_time, pax_type)?;
            pax.price.final_price = final_price;
            pax.price.original_price = original_price;
            Ok(())
        })
    }

    /// The slot disappears from that day's answer, as when the partner cancels it.
    pub fn remove_slot(
        &self,
        experience: ExperienceId,
        date: NaiveDate,
        start_time: NaiveTime,
    ) -> Result<WireSlot, SimError> {
        let product = self.product(experience)?;
        let mut state = self.lock();
        let day = changed_day(&mut state.changed_days, product, date);
        let index = slot_index(day, start_time).ok_or(SimError::NoSuchSlot {
            experience,
            date,
            start_time,
        })?;
        Ok(day.remove(index))
    }

    pub fn faults(&self) -> Faults {
        self.lock().faults.clone()
    }

    pub fn set_faults(&self, faults: Faults) -> Result<(), SimError> {
        let total = faults.total_percent();
        if total > 100 {
            return Err(SimError::InvalidFaults(total));
        }
        self.lock().faults = faults;
        Ok(())
    }

    /// Every authenticated call answers `429` for `duration`, with `reset` at its end, as when
    /// another client shares the key and burns its quota.
    /// Storms longer than a day are cut to a day.
    pub fn start_rate_limit_storm(&self, duration: Duration) {
        let until = Instant::now() + duration.min(MAX_RATE_LIMIT_STORM);
        self.lock().rate_limit_storm_until = Some(until);
    }

    /// Every call to a partner route so far (up to the most recent 100 000), oldest first.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.lock().calls.iter().cloned().collect()
    }

    /// The largest number of logged calls that arrived within any span of `window`.
    pub fn max_calls_in_any_window(&self, window: Duration) -> usize {
        let state = self.lock();
        let arrivals: Vec<Instant> = state.calls.iter().map(|call| call.arrived).collect();
        let mut most = 0;
        let mut first = 0;
        for (last, arrived) in arrivals.iter().enumerate() {
            while arrived.duration_since(arrivals[first]) >= window {
                first += 1;
            }
            most = most.max(last - first + 1);
        }
        most
    }

    /// Sells 1–3 seats of a random pax with seats left, on a random running day within the
    /// next two weeks from `today`. `None` when nothing is left to sell there.
    pub fn sell_random_seats(&self, today: NaiveDate) -> Option<Sale> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let products: Vec<&ProductDefinition> = self.shared.products.values().collect();
        let product = *products.choose(&mut state.rng)?;
        let running_days: Vec<NaiveDate> = (0..CHURN_HORIZON_DAYS)
            .filter_map(|offset| today.checked_add_days(Days::new(offset)))
            .filter(|date| product.weekdays.contains(&date.weekday()))
            .collect();
        let date = *running_days.choose(&mut state.rng)?;
        let day = changed_day(&mut state.changed_days, product, date);

        let sellable: Vec<(usize, usize)> = day
            .iter()
            .enumerate()
            .filter(|(_, slot)| seats_left(&slot.remaining) > 0)
            .flat_map(|(slot_index, slot)| {
                slot.pax_availability
                    .iter()
                    .enumerate()
                    .filter(|(_, pax)| seats_left(&pax.remaining) > 0)
                    .map(move |(pax_index, _)| (slot_index, pax_index))
            })
            .collect();
        let &(slot_index, pax_index) = sellable.choose(&mut state.rng)?;
        let slot = &mut day[slot_index];
        let slot_left = seats_left(&slot.remaining);
        let pax = &mut slot.pax_availability[pax_index];
        let pax_left = seats_left(&pax.remaining);
        let seats = state
            .rng
            .random_range(1..=MAX_SEATS_PER_SALE.min(slot_left).min(pax_left));
        pax.remaining = Number::from(pax_left - seats);
        let pax_type = pax.pax_type.clone();
        slot.remaining = Number::from(slot_left - seats);

        Some(Sale {
            experience: product.product_id,
            date,
            start_time: slot.start_time.clone(),
            pax_type,
            seats,
        })
    }

    fn product(&self, experience: ExperienceId) -> Result<&ProductDefinition, SimError> {
        self.shared
            .products
            .get(&experience)
            .ok_or(SimError::UnknownProduct(experience))
    }

    fn change_slot(
        &self,
        experience: ExperienceId,
        date: NaiveDate,
        start_time: NaiveTime,
        change: impl FnOnce(&mut WireSlot) -> Result<(), SimError>,
    ) -> Result<WireSlot, SimError> {
        let product = self.product(experience)?;
        let mut state = self.lock();
        let day = changed_day(&mut state.changed_days, product, date);
        let slot = slot_index(day, start_time)
            .and_then(|index| day.get_mut(index))
            .ok_or(SimError::NoSuchSlot {
                experience,
                date,
                start_time,
            })?;
        change(slot)?;
        Ok(slot.clone())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic under the lock could at worst leave one day half-sold, which is harmless
        // in a simulator; keep serving rather than failing every later call.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("products", &self.shared.products.keys().collect::<Vec<_>>())
            .field("rate_limit_per_minute", &self.shared.rate_limit_per_minute)
            .finish_non_exhaustive()
    }
}

/// A simulator served on a local port. Dropping it stops the server.
#[derive(Debug)]
pub struct SimulatorHandle {
    pub addr: SocketAddr,
    pub sim: Simulator,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl SimulatorHandle {
    /// e.g. `http://127.0.0.1:41234`, for a client's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections and waits for in-flight calls (slow faults included).
    pub async fn shutdown(mut self) -> io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for SimulatorHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Serves the partner API and the `/_sim` control routes on `listener` until `shutdown`
/// resolves; also runs churn when configured.
pub async fn serve(
    listener: TcpListener,
    sim: Simulator,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let _churn = sim
        .shared
        .churn_every
        .map(|every| AbortOnDrop(tokio::spawn(churn(sim.clone(), every))));
    axum::serve(listener, http::router(sim))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn churn(sim: Simulator, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // the first tick is immediate; start selling one period in
    loop {
        ticks.tick().await;
        match sim.sell_random_seats(Utc::now().date_naive()) {
            Some(sale) => tracing::info!(?sale, "simulator sold seats"),
            None => tracing::debug!("simulator churn found nothing to sell"),
        }
    }
}

/// Stops the churn task when `serve` ends or is cancelled.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn slot_index(day: &[WireSlot], start_time: NaiveTime) -> Option<usize> {
    let wanted = start_time.format("%H:%M").to_string();
    day.iter().position(|slot| slot.start_time == wanted)
}

fn find_pax<'a>(
    slot: &'a mut WireSlot,
    experience: ExperienceId,
    date: NaiveDate,
    start_time: NaiveTime,
    pax_type: &str,
) -> Result<&'a mut crate::partner::wire::WirePax, SimError> {
    slot.pax_availability
        .iter_mut()
        .find(|pax| pax.pax_type == pax_type)
        .ok_or_else(|| SimError::NoSuchPax {
            experience,
            date,
            start_time,
            pax_type: pax_type.to_string(),
        })
}

/// Seats a counter holds; a value a test set to something odd counts as none.
fn seats_left(remaining: &Number) -> i64 {
    remaining.as_i64().unwrap_or(0).max(0)
}
