//! The operator console: pages the daemon serves itself at `/console` (`/` redirects there),
//! rendered on the server with maud (every value escaped), its CSS and a few lines of plain
//! JavaScript embedded in the binary and served from `/console/assets/`.
//!
//! It reads only through the store and the engine, like the JSON API; the pause, resume and
//! trigger buttons call the JSON API (`POST /api/v1/sync/…`) from the browser with the admin
//! token as `Authorization: Bearer`, so the console itself holds no secret and takes no
//! cookie (nothing to forge across sites). Every console answer carries a
//! `Content-Security-Policy` that allows only the console's own script and style.

mod chart;
mod views;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Router};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use maud::Markup;

use super::AppState;
use super::error::AppError;
use crate::domain::{ExperienceId, Price, Seats};
use crate::ledger::AccountKind;
use crate::storage::{Booking, BookingTotals, Bookings, Inventory, Ledger, Mirror, ServedSlot};
use crate::sync::status::SyncStatus;

/// Only the console's own files may run or style the page; it talks only to its own origin;
/// no form submits anywhere by itself (the token can never leave in a URL); no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'none'; \
     frame-ancestors 'none'; base-uri 'none'";

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// Bookings the bookings panel lists.
const RECENT_BOOKINGS: i64 = 20;

/// The console's routes; [`super::router`] merges them beside the API.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(overview))
        .route("/console/status", get(status_fragment))
        .route("/console/bookings", get(bookings_fragment))
        .route("/console/experience/{id}/{date}", get(day))
        .route("/console/experience/{id}/{date}/{time}", get(slot))
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
        .layer(axum::middleware::map_response(secure_headers))
        .layer(Extension(Arc::new(CallRate::default())))
}

async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ] {
        headers.insert(name, value);
    }
    response
}

async fn css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [(
            HeaderName::from_static("content-type"),
            HeaderValue::from_static(content_type),
        )],
        body,
    )
}

/// An error as a small HTML page: its status and a plain message (a database failure's
/// details stay in the log, as in the JSON API).
pub struct ConsoleError {
    status: StatusCode,
    message: String,
}

impl From<AppError> for ConsoleError {
    fn from(error: AppError) -> Self {
        let message = error.to_string();
        let status = error.into_response().status();
        let message = if status.is_server_error() {
            "internal error; the details are in the service log".to_string()
        } else {
            message
        };
        Self { status, message }
    }
}

impl From<crate::storage::StoreError> for ConsoleError {
    fn from(error: crate::storage::StoreError) -> Self {
        AppError::Store(error).into()
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        (self.status, views::error_page(self.status, &self.message)).into_response()
    }
}

type Page = Result<Markup, ConsoleError>;

/// Partner calls in about the last minute, from the status's call counter sampled whenever
/// the sync panel is rendered (the status counts calls since start, not per minute).
#[derive(Default)]
struct CallRate {
    samples: Mutex<VecDeque<(Instant, u64)>>,
}

/// What [`CallRate`] saw: `calls` over the last `window`.
pub struct RecentCalls {
    pub calls: u64,
    pub window: Duration,
}

impl CallRate {
    const MINUTE: Duration = Duration::from_secs(60);

    fn observe(&self, calls: u64) -> RecentCalls {
        let now = Instant::now();
        let mut samples = self
            .samples
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // One sample a second is plenty, however many tabs refresh.
        if samples
            .back()
            .is_none_or(|(at, _)| now.duration_since(*at) >= Duration::from_secs(1))
        {
            samples.push_back((now, calls));
        }
        // Keep the newest sample at least a minute old, and everything after it.
        while samples
            .get(1)
            .is_some_and(|(at, _)| now.duration_since(*at) >= Self::MINUTE)
        {
            samples.pop_front();
        }
        let (oldest_at, oldest_calls) = samples.front().copied().unwrap_or((now, calls));
        RecentCalls {
            calls: calls.saturating_sub(oldest_calls),
            window: now.duration_since(oldest_at).min(Self::MINUTE),
        }
    }
}

/// Everything the sync panel shows.
pub struct SyncView {
    /// Every partner's sync together.
    pub status: SyncStatus,
    /// Each partner's, where there are several.
    pub partners: Vec<SyncStatus>,
    pub bookings: BookingTotals,
    pub recent_calls: RecentCalls,
    pub now: DateTime<Utc>,
}

async fn sync_view(state: &AppState, rate: &CallRate) -> Result<SyncView, ConsoleError> {
    let (status, mut partners) = state.sync.combined_status().await?;
    if partners.len() == 1 {
        partners.clear();
    }
    let bookings = state.store.booking_totals().await?;
    let recent_calls = rate.observe(status.counters.calls);
    Ok(SyncView {
        status,
        partners,
        bookings,
        recent_calls,
        now: state.sync.clock().now(),
    })
}

/// One date of an experience's calendar.
pub struct CalendarDay {
    pub date: NaiveDate,
    pub kind: DayKind,
}

pub enum DayKind {
    /// Not fetched from the partner yet.
    Unknown,
    /// Fetched; the partner has no open slot that day.
    Closed,
    /// Open slots, none with seats left.
    SoldOut,
    Open {
        seats: Seats,
        from: Option<Price>,
    },
}

pub struct Calendar {
    pub experience: ExperienceId,
    pub days: Vec<CalendarDay>,
}

async fn calendars(state: &AppState) -> Result<Vec<Calendar>, ConsoleError> {
    let horizon = state.horizon();
    let fetched: HashMap<(ExperienceId, NaiveDate), u32> = state
        .store
        .last_fetches(horizon.first, horizon.last)
        .await?
        .into_iter()
        .map(|fetch| ((fetch.experience, fetch.date), fetch.slot_count))
        .collect();
    let mut calendars = Vec::new();
    for experience in state.sync.experiences() {
        let prices: HashMap<NaiveDate, Price> = state
            .store
            .sellable_dates(experience, horizon.first, horizon.last)
            .await?
            .into_iter()
            .map(|day| (day.date, day.price))
            .collect();
        let mut days = Vec::new();
        for date in horizon.first.iter_days().take_while(|d| *d <= horizon.last) {
            let kind = if !fetched.contains_key(&(experience, date)) {
                DayKind::Unknown
            } else {
                let slots = state.store.slots_on(experience, date).await?;
                let seats: Seats = slots.iter().map(|slot| slot.remaining.max(0)).sum();
                if slots.is_empty() {
                    DayKind::Closed
                } else if seats == 0 {
                    DayKind::SoldOut
                } else {
                    DayKind::Open {
                        seats,
                        from: prices.get(&date).cloned(),
                    }
                }
            };
            days.push(CalendarDay { date, kind });
        }
        calendars.push(Calendar { experience, days });
    }
    Ok(calendars)
}

async fn recent_bookings(state: &AppState) -> Result<(Vec<Booking>, DateTime<Utc>), ConsoleError> {
    let now = state.sync.clock().now();
    let bookings = state.store.recent_bookings(RECENT_BOOKINGS, now).await?;
    Ok((bookings, now))
}

async fn overview(
    State(state): State<AppState>,
    Extension(rate): Extension<Arc<CallRate>>,
) -> Page {
    let sync = sync_view(&state, &rate).await?;
    let calendars = calendars(&state).await?;
    let (bookings, now) = recent_bookings(&state).await?;
    let horizon = state.horizon();
    Ok(views::overview(&views::Overview {
        sync: &sync,
        calendars: &calendars,
        bookings: &bookings,
        bookings_now: now,
        experiences: &state.sync.experiences().collect::<Vec<_>>(),
        horizon: (horizon.first, horizon.last),
    }))
}

async fn status_fragment(
    State(state): State<AppState>,
    Extension(rate): Extension<Arc<CallRate>>,
) -> Page {
    Ok(views::sync_panel(&sync_view(&state, &rate).await?))
}

async fn bookings_fragment(State(state): State<AppState>) -> Page {
    let (bookings, now) = recent_bookings(&state).await?;
    Ok(views::bookings_panel(&bookings, now))
}

fn parse_experience(state: &AppState, id: &str) -> Result<ExperienceId, ConsoleError> {
    let id: ExperienceId = id
        .parse()
        .map_err(|_| AppError::InvalidExperienceId(id.to_string()))?;
    if state.sync.of(id).is_some() {
        Ok(id)
    } else {
        Err(AppError::UnknownExperience(id).into())
    }
}

fn parse_date(date: &str) -> Result<NaiveDate, ConsoleError> {
    NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| {
        AppError::InvalidDate(format!("date {date:?} is not a YYYY-MM-DD date")).into()
    })
}

/// What a slot's pools hold besides what is available, from its ledger history.
#[derive(Default, Clone, Copy)]
pub struct PoolBalances {
    pub held: Seats,
    pub sold: Seats,
}

/// A slot of the day view, with what its history says.
pub struct DaySlot {
    pub slot: ServedSlot,
    /// The slot pool's held and sold seats; per pax type the same.
    pub pool: PoolBalances,
    pub pax_pools: BTreeMap<String, PoolBalances>,
    /// The slot pool's available balance after each posting on it, oldest first.
    pub remaining_over_time: Vec<(DateTime<Utc>, Seats)>,
    pub postings: usize,
}

async fn day(State(state): State<AppState>, Path((id, date)): Path<(String, String)>) -> Page {
    let experience = parse_experience(&state, &id)?;
    let date = parse_date(&date)?;
    state.horizon().check(date)?;
    let slots = state.store.slots_on(experience, date).await?;
    let mut day_slots = Vec::with_capacity(slots.len());
    for slot in slots {
        let history = state
            .store
            .slot_history(experience, date, slot.start_time)
            .await?;
        let mut pool = PoolBalances::default();
        let mut pax_pools: BTreeMap<String, PoolBalances> = BTreeMap::new();
        let mut remaining_over_time = Vec::new();
        let postings = history.as_ref().map_or(0, |h| h.postings.len());
        for posting in history.into_iter().flat_map(|history| history.postings) {
            let balances = match &posting.pax_type {
                None => &mut pool,
                Some(pax) => pax_pools.entry(pax.clone()).or_default(),
            };
            match posting.account_kind {
                AccountKind::Held => balances.held = posting.balance_after,
                AccountKind::Sold => balances.sold = posting.balance_after,
                AccountKind::Available if posting.pax_type.is_none() => {
                    remaining_over_time.push((posting.at, posting.balance_after));
                }
                _ => {}
            }
        }
        day_slots.push(DaySlot {
            slot,
            pool,
            pax_pools,
            remaining_over_time,
            postings,
        });
    }
    Ok(views::day_page(
        experience,
        date,
        &day_slots,
        state.sync.clock().now(),
    ))
}

async fn slot(
    State(state): State<AppState>,
    Path((id, date, time)): Path<(String, String, String)>,
) -> Page {
    let experience = parse_experience(&state, &id)?;
    let date = parse_date(&date)?;
    let start_time = NaiveTime::parse_from_str(&time, "%H:%M")
        .map_err(|_| AppError::InvalidStartTime(format!("startTime {time:?} is not HH:MM")))?;
    let history = state
        .store
        .slot_history(experience, date, start_time)
        .await?
        .ok_or_else(|| AppError::SlotNotFound {
            date: date.to_string(),
            time: start_time.format("%H:%M").to_string(),
        })?;
    Ok(views::slot_page(
        experience,
        &history,
        state.sync.clock().now(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_rate_counts_calls_since_the_first_sample() {
        let rate = CallRate::default();
        let first = rate.observe(10);
        assert_eq!(first.calls, 0);
        let again = rate.observe(14);
        // Within the same second no new sample is kept, but the count is still against the
        // oldest one.
        assert_eq!(again.calls, 4);
    }
}
