//! The console's HTML. maud escapes every value it renders, so a pause reason or a partner's
//! text containing markup shows as text.

use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use maud::{DOCTYPE, Markup, html};

use super::chart::{self, Point, Series};
use super::{Calendar, DayKind, DaySlot, SyncView};
use crate::domain::{ExperienceId, Price};
use crate::storage::{Booking, BookingStatus, SlotHistory};

/// Holds ending within this are flagged as about to expire.
const EXPIRING_SOON_SECONDS: i64 = 60;

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · invsync console" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/console" { "invsync" }
                    span.muted { "operator console" }
                    nav aria-label="API" {
                        a href="/api/v1/sync/status" { "status JSON" }
                        a href="/openapi.json" { "OpenAPI" }
                        a href="/metrics" { "metrics" }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

pub fn error_page(status: StatusCode, message: &str) -> Markup {
    layout(
        status.canonical_reason().unwrap_or("Error"),
        html! {
            section.panel role="alert" {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                p #error-message { (message) }
                p { a href="/console" { "Back to the console" } }
            }
        },
    )
}

/// "12:04:31 UTC, 5 s ago"
fn when(at: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) title=(at.format("%Y-%m-%d %H:%M:%S UTC").to_string()) {
            (at.format("%m-%d %H:%M:%S").to_string()) " UTC"
        }
        span.muted { " (" (relative(at, now)) ")" }
    }
}

fn when_opt(at: Option<DateTime<Utc>>, now: DateTime<Utc>, none: &str) -> Markup {
    match at {
        Some(at) => when(at, now),
        None => html! { span.muted { (none) } },
    }
}

/// "5 s ago", "in 3 min".
pub fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds();
    let amount = |s: i64| match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d", s / 86_400),
    };
    if seconds >= 0 {
        format!("{} ago", amount(seconds))
    } else {
        format!("in {}", amount(-seconds))
    }
}

fn price(price: &Price) -> String {
    format!("{} {}", price.currency, price.final_price.normalize())
}

pub struct Overview<'a> {
    pub sync: &'a SyncView,
    pub calendars: &'a [Calendar],
    pub bookings: &'a [Booking],
    pub bookings_now: DateTime<Utc>,
    pub experiences: &'a [ExperienceId],
    pub horizon: (NaiveDate, NaiveDate),
}

pub fn overview(page: &Overview<'_>) -> Markup {
    let (first, last) = page.horizon;
    layout(
        "Sync",
        html! {
            h1.visually-hidden { "invsync operator console" }
            div.grid {
                section.panel #sync aria-labelledby="sync-heading"
                    data-refresh="/console/status" aria-live="polite" {
                    (sync_panel(page.sync))
                }
                div.side {
                    (controls(page.experiences, first, last))
                    section.panel #bookings aria-labelledby="bookings-heading"
                        data-refresh="/console/bookings" {
                        (bookings_panel(page.bookings, page.bookings_now))
                    }
                }
            }
            section.panel #calendars aria-labelledby="calendar-heading" {
                h2 #calendar-heading { "Calendar " span.muted { (first.to_string()) " … " (last.to_string()) } }
                p.legend-line {
                    span.day.open.sample { "12 left" } " seats left, from-price · "
                    span.day.soldout.sample { "Sold out" } " · "
                    span.day.closed.sample { "Closed" } " · "
                    span.day.unknown.sample { "Not fetched" } " — a day opens its slots."
                }
                @for calendar in page.calendars {
                    (calendar_view(calendar))
                }
            }
        },
    )
}

/// The sync panel, also served alone as `/console/status` for the page to refresh.
pub fn sync_panel(view: &SyncView) -> Markup {
    let status = &view.status;
    let now = view.now;
    let paused = status.is_paused();
    html! {
        h2 #sync-heading { "Sync" }
        p.state {
            span #sync-state data-state=(status.state) class=(if paused { "badge paused" } else { "badge running" }) {
                @if paused { "‖ Paused" } @else { "▶ Running" }
            }
            @if paused {
                " since " (when_opt(status.paused_since, now, "—"))
            }
        }
        @if let Some(reason) = &status.pause_reason {
            p.reason { "Reason: " q #pause-reason-shown { (reason) } }
        }
        dl.facts {
            dt { "This instance" }
            dd { code { (status.instance) } " — " strong #sync-role { (status.role) } }
            dt { "Leader" }
            dd { @match &status.leader { Some(leader) => code { (leader) }, None => span.muted { "none (lease free)" } }
                 span.muted { " · lease until " } (when(status.lease_expires_at, now)) }
            dt { "Queue" }
            dd { (status.pending) " pending · " (status.in_flight) " in flight" }
            dt { "Partner calls" }
            dd #call-rate {
                @if view.recent_calls.window.as_secs() == 0 {
                    "measuring (the panel refreshes every 3 s)"
                } @else {
                    strong { (view.recent_calls.calls) }
                    " in the last " (view.recent_calls.window.as_secs()) " s"
                }
                " · limit " (status.rate_limit_per_minute) "/min, one call every "
                (status.pacing_period_ms) " ms"
            }
            dt { "Seats on hold" }
            dd { (view.bookings.seats_on_hold) }
            @let short: Vec<_> = view.bookings.shortfall.iter().filter(|(_, seats)| *seats > 0).collect();
            @if !short.is_empty() {
                dt { "Shortfall" }
                dd.warn { @for (experience, seats) in short { "⚠ experience " (experience.as_str()) ": " (seats) " seats beyond the allotment. " } }
            }
        }
        @if !view.partners.is_empty() {
            h3 { "Partners" }
            table.partners {
                thead { tr { th scope="col" { "Partner" } th scope="col" { "State" } th scope="col" { "Queue" } th scope="col" { "Calls" } th scope="col" { "Limit" } th scope="col" { "Parked" } } }
                tbody {
                    @for partner in &view.partners {
                        @let paused = partner.is_paused();
                        tr {
                            th scope="row" {
                                @if let Some(of) = &partner.partner { (of.name) br; span.muted { (of.kind) } }
                            }
                            td {
                                span class=(if paused { "badge paused" } else { "badge running" }) {
                                    @if paused { "‖ Paused" } @else { "▶ Running" }
                                }
                                @if let Some(reason) = partner.pause_reason.as_ref().filter(|_| paused) { br; span.muted { (reason) } }
                            }
                            td { (partner.pending) " pending · " (partner.in_flight) " in flight" }
                            td { (partner.counters.calls) }
                            td { (partner.rate_limit_per_minute) "/min" @if partner.days_per_call > 1 { ", " (partner.days_per_call) " days a call" } }
                            td { (partner.parked.len()) }
                        }
                    }
                }
            }
        }
        h3 { "Tiers" }
        table.tiers {
            thead { tr { th scope="col" { "Tier" } th scope="col" { "Days" } th scope="col" { "Last run" } th scope="col" { "Last success" } th scope="col" { "Next run" } th scope="col" { "Keeping up" } } }
            tbody {
                @for tier in &status.tiers {
                    tr {
                        th scope="row" { (tier.name) br; code.muted { (tier.cron) } }
                        td { "+" (tier.first_day) " … +" (tier.last_day) }
                        td { (when_opt(tier.last_start, now, "not yet")) br; span.muted { (tier.last_queued) " days queued" } }
                        td { (when_opt(tier.last_success, now, "not yet")) }
                        td { (when_opt(tier.next_run, now, "—")) }
                        td {
                            @if tier.behind { span.badge.warn { "⚠ behind" } }
                            @else { span.badge.ok { "✓ yes" } }
                            @if tier.skipped_runs > 0 { br; span.muted { (tier.skipped_runs) " runs skipped" } }
                        }
                    }
                }
            }
        }
        h3 { "Freshness" }
        table.freshness {
            thead { tr { th scope="col" { "Window" } th scope="col" { "Product-days" } th scope="col" { "Never fetched" } th scope="col" { "Oldest fetch" } } }
            tbody {
                @for window in &status.freshness {
                    tr {
                        th scope="row" { (window.window) }
                        td { (window.product_dates) }
                        td { @if window.never_fetched > 0 { span.badge.warn { (window.never_fetched) } } @else { "0" } }
                        td { (when_opt(window.oldest_fetch, now, "none yet")) }
                    }
                }
            }
        }
        h3 { "Parked days " span.muted { "(" (status.parked.len()) ")" } }
        @if status.parked.is_empty() {
            p.muted { "None: every day's last attempt succeeded or is still being retried." }
        } @else {
            ul.parked {
                @for day in &status.parked {
                    li { "⚠ experience " (day.experience) ", " (day.date.to_string()) ": " (day.error) " — since " (when(day.since, now)) }
                }
            }
        }
        @if let Some(error) = &status.last_error {
            p.last-error { "Last error: " code { (error.code) } " on experience " (error.experience) ", " (error.date.to_string()) ": " (error.message) " — " (when(error.at, now)) }
        }
        h3 { "Counters " span.muted { "(since this process started)" } }
        dl.counters {
            dt { "calls" } dd { (status.counters.calls) }
            dt { "rate limited" } dd { (status.counters.rate_limited) }
            dt { "retries" } dd { (status.counters.retries) }
            dt { "failures" } dd { (status.counters.failures) }
            dt { "days applied" } dd { (status.counters.days_applied) }
            dt { "transfers posted" } dd { (status.counters.transfers_posted) }
        }
        p.muted.small { "Refreshed " (when(now, now)) }
    }
}

fn controls(experiences: &[ExperienceId], first: NaiveDate, last: NaiveDate) -> Markup {
    html! {
        section.panel #controls aria-labelledby="controls-heading" {
            h2 #controls-heading { "Controls" }
            // No input here has a `name` and the policy forbids form submission: whatever
            // happens, the token cannot leave the page in a URL.
            div #token-ask {
                label for="admin-token" { "Admin token" }
                input #admin-token type="password" autocomplete="off" spellcheck="false"
                    aria-describedby="token-help";
                p #token-help .muted.small { "Asked once, kept in this tab's session storage only, sent as "
                    code { "Authorization: Bearer" } " to the API." }
            }
            p #token-kept hidden {
                "Admin token kept for this tab. "
                button #forget-token type="button" { "Forget token" }
            }
            form #pause-form {
                label for="pause-reason" { "Pause reason" }
                input #pause-reason type="text" maxlength="500" placeholder="partner incident INC-123";
                button #pause-button type="submit" { "‖ Pause" }
            }
            p { button #resume-button type="button" { "▶ Resume" } }
            form #trigger-form {
                fieldset {
                    legend { "Re-sync now" }
                    label for="trigger-experience" { "Experience" }
                    select #trigger-experience {
                        option value="" { "all" }
                        @for experience in experiences { option value=(experience.as_str()) { (experience.as_str()) } }
                    }
                    label for="trigger-from" { "From" }
                    input #trigger-from type="date" value=(first.to_string()) min=(first.to_string()) max=(last.to_string());
                    label for="trigger-to" { "To" }
                    input #trigger-to type="date" value=(last.to_string()) min=(first.to_string()) max=(last.to_string());
                    button #trigger-button type="submit" { "⟳ Trigger" }
                }
            }
            p #control-result role="status" {}
            p #control-error .error role="alert" {}
        }
    }
}

fn calendar_view(calendar: &Calendar) -> Markup {
    let id = calendar.experience;
    html! {
        h3 { "Experience " (id) }
        ol.calendar aria-label=(format!("Experience {id}: days of the horizon")) {
            @for day in &calendar.days {
                @let date = day.date.to_string();
                @let href = format!("/console/experience/{id}/{date}");
                li {
                    @match &day.kind {
                        DayKind::Open { seats, from } => {
                            a.day.open href=(href) data-experience=(id) data-date=(date) data-seats=(seats) {
                                span.date { (day.date.format("%a %d %b").to_string()) }
                                span.seats { (seats) " left" }
                                @if let Some(from) = from { span.price { "from " (price(from)) } }
                            }
                        }
                        DayKind::SoldOut => {
                            a.day.soldout href=(href) data-experience=(id) data-date=(date) data-seats="0" {
                                span.date { (day.date.format("%a %d %b").to_string()) }
                                span.seats { "✕ Sold out" }
                            }
                        }
                        DayKind::Closed => {
                            a.day.closed href=(href) data-experience=(id) data-date=(date) {
                                span.date { (day.date.format("%a %d %b").to_string()) }
                                span.seats { "— Closed" }
                            }
                        }
                        DayKind::Unknown => {
                            a.day.unknown href=(href) data-experience=(id) data-date=(date) {
                                span.date { (day.date.format("%a %d %b").to_string()) }
                                span.seats { "? Not fetched" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The bookings panel, also served alone as `/console/bookings` for the page to refresh.
pub fn bookings_panel(bookings: &[Booking], now: DateTime<Utc>) -> Markup {
    let mut expiring: Vec<&Booking> = bookings
        .iter()
        .filter(|b| b.status == BookingStatus::OnHold)
        .collect();
    expiring.sort_by_key(|b| b.expires_at);
    html! {
        h2 #bookings-heading { "Bookings" }
        h3 { "Holds about to expire" }
        @if expiring.is_empty() {
            p.muted { "No seats on hold." }
        } @else {
            ul.expiring {
                @for booking in &expiring {
                    @let left = (booking.expires_at - now).num_seconds();
                    li class=(if left <= EXPIRING_SOON_SECONDS { "soon" } else { "" }) {
                        @if left <= EXPIRING_SOON_SECONDS { "⚠ " }
                        code { (short_id(booking)) } " · experience " (booking.experience.as_str()) " "
                        (booking.date.to_string()) " " (booking.start_time.format("%H:%M").to_string())
                        " · " (seats(booking)) " seats · expires " (relative(booking.expires_at, now))
                    }
                }
            }
        }
        h3 { "Recent" }
        @if bookings.is_empty() {
            p.muted { "No bookings yet." }
        } @else {
            table.bookings {
                thead { tr { th scope="col" { "Booking" } th scope="col" { "Status" } th scope="col" { "Slot" } th scope="col" { "Seats" } th scope="col" { "Created" } } }
                tbody {
                    @for booking in bookings {
                        tr {
                            td { code title=(booking.id.to_string()) { (short_id(booking)) } }
                            td { span class=(format!("badge {}", booking.status.as_str())) { (status_label(booking.status)) } }
                            td {
                                a href=(format!("/console/experience/{}/{}/{}", booking.experience, booking.date, booking.start_time.format("%H:%M"))) {
                                    (booking.experience.as_str()) " · " (booking.date.to_string()) " " (booking.start_time.format("%H:%M").to_string())
                                }
                            }
                            td { (seats(booking)) }
                            td { (relative(booking.created_at, now)) }
                        }
                    }
                }
            }
        }
    }
}

fn short_id(booking: &Booking) -> String {
    booking.id.simple().to_string()[..8].to_string()
}

fn seats(booking: &Booking) -> i64 {
    booking.pax.iter().map(|pax| pax.quantity).sum()
}

fn status_label(status: BookingStatus) -> &'static str {
    match status {
        BookingStatus::OnHold => "◔ on hold",
        BookingStatus::Confirmed => "✓ confirmed",
        BookingStatus::Cancelled => "✕ cancelled",
        BookingStatus::Expired => "○ expired",
    }
}

pub fn day_page(
    experience: ExperienceId,
    date: NaiveDate,
    slots: &[DaySlot],
    now: DateTime<Utc>,
) -> Markup {
    let id = experience;
    layout(
        &format!("Experience {id}, {date}"),
        html! {
            nav.crumbs aria-label="Breadcrumb" { a href="/console" { "Console" } " › experience " (id) " › " (date.to_string()) }
            section.panel {
                h1 #day-heading { "Experience " (id) ", " (date.format("%A %d %B %Y").to_string()) }
                @if slots.is_empty() {
                    p #no-slots { "No open slots this day." }
                } @else {
                    table.day-slots {
                        caption.muted { "Remaining is what " code { "/slots" } " serves (the ledger's available balance); held and sold come from the slot's history." }
                        thead { tr {
                            th scope="col" { "Start" } th scope="col" { "Remaining" } th scope="col" { "Held" } th scope="col" { "Sold" }
                            th scope="col" { "Price" } th scope="col" { "Pax types" } th scope="col" { "History" }
                        } }
                        tbody {
                            @for day_slot in slots {
                                @let slot = &day_slot.slot;
                                @let start = slot.start_time.format("%H:%M").to_string();
                                tr.slot data-start-time=(start) {
                                    th scope="row" { (start) }
                                    td class=(if slot.remaining <= 0 { "remaining none" } else { "remaining" }) { (slot.remaining) }
                                    td.held { (day_slot.pool.held) }
                                    td.sold { (day_slot.pool.sold) }
                                    td { @if let Some(pax) = slot.primary_pax() { (price(&pax.price)) } }
                                    td {
                                        table.pax {
                                            @for pax in &slot.pax {
                                                @let pools = day_slot.pax_pools.get(&pax.pax_type).copied().unwrap_or_default();
                                                tr.pax data-pax-type=(pax.pax_type) {
                                                    th scope="row" { (pax.name) br; code.muted { (pax.pax_type) } }
                                                    td.pax-remaining { (pax.remaining) }
                                                    td { span.muted { "held " } (pools.held) span.muted { " · sold " } (pools.sold) }
                                                    td { (price(&pax.price)) @if pax.price.original_price > pax.price.final_price { " " s.muted { (pax.price.original_price.normalize().to_string()) } } }
                                                    td.muted { (pax.min) "–" (pax.max) " per booking" }
                                                }
                                            }
                                        }
                                    }
                                    td {
                                        a.history-link href=(format!("/console/experience/{id}/{date}/{start}"))
                                            aria-label=(format!("History of the {start} slot ({} postings)", day_slot.postings)) {
                                            (chart::sparkline(&day_slot.remaining_over_time, now))
                                            br; (day_slot.postings) " postings ›"
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

pub fn slot_page(experience: ExperienceId, history: &SlotHistory, now: DateTime<Utc>) -> Markup {
    let id = experience;
    let date = history.start_date;
    let start = history.start_time.format("%H:%M").to_string();
    // One series per account (slot pool first, then each pax type's), in first-seen order.
    let mut series: Vec<(String, Series)> = Vec::new();
    for (index, posting) in history.postings.iter().enumerate() {
        let key = format!(
            "{} {}",
            posting.account_kind.as_str(),
            posting.pax_type.as_deref().unwrap_or("(slot)")
        );
        let cause = match (&posting.fetch_id, &posting.booking_id) {
            (Some(fetch), _) => format!("fetch {fetch}"),
            (None, Some(booking)) => format!("booking {booking}"),
            (None, None) => "no recorded cause".to_string(),
        };
        let point = Point {
            at: posting.at,
            value: posting.balance_after,
            title: format!(
                "{} UTC · {key}: {:+} → {} · {} · {cause}",
                posting.at.format("%Y-%m-%d %H:%M:%S"),
                posting.amount,
                posting.balance_after,
                posting.reason
            ),
            href: format!("#posting-{index}"),
        };
        match series.iter_mut().find(|(k, _)| *k == key) {
            Some((_, one)) => one.points.push(point),
            None => series.push((
                key.clone(),
                Series {
                    label: key,
                    points: vec![point],
                },
            )),
        }
    }
    series.sort_by_key(|(key, _)| !key.ends_with("(slot)"));
    let series: Vec<Series> = series.into_iter().map(|(_, one)| one).collect();
    layout(
        &format!("Slot {date} {start}"),
        html! {
            nav.crumbs aria-label="Breadcrumb" {
                a href="/console" { "Console" } " › experience " (id) " › "
                a href=(format!("/console/experience/{id}/{date}")) { (date.to_string()) } " › " (start)
            }
            section.panel {
                h1 #slot-heading { "Slot " (date.to_string()) " " (start) " " span.muted { "experience " (id) ", partner slot " code { (history.provider_slot_id) } } }
                p { @if history.is_open { "Open." } @else { "Closed by the partner." } " "
                    span #posting-count { (history.postings.len()) } " postings, charted per account on its own scale; each point is one posting, linked to its row below with the fetch or booking that caused it." }
                @if history.postings.is_empty() {
                    p.muted { "No postings yet." }
                } @else {
                    div.charts {
                        @for (style, one) in series.iter().enumerate() {
                            (chart::step_chart(one, style, now, &format!("{} over time on the slot {date} {start}, one point per posting", one.label)))
                        }
                    }
                }
                table.postings {
                    thead { tr {
                        th scope="col" { "#" } th scope="col" { "At (UTC)" } th scope="col" { "Account" } th scope="col" { "Amount" }
                        th scope="col" { "Balance after" } th scope="col" { "Reason" } th scope="col" { "Caused by" }
                    } }
                    tbody {
                        @for (index, posting) in history.postings.iter().enumerate() {
                            tr id=(format!("posting-{index}")) {
                                td { (index) }
                                td { (posting.at.format("%Y-%m-%d %H:%M:%S%.3f").to_string()) }
                                td { (posting.account_kind.as_str()) " " (posting.pax_type.as_deref().unwrap_or("(slot)")) }
                                td.num { (format!("{:+}", posting.amount)) }
                                td.num { (posting.balance_after) }
                                td { (posting.reason) }
                                td {
                                    @if let Some(fetch) = &posting.fetch_id {
                                        "partner fetch " code.cause { (fetch) }
                                        @if let Some(at) = posting.fetched_at { span.muted { " at " (at.format("%H:%M:%S").to_string()) } }
                                    }
                                    @if let Some(booking) = &posting.booking_id { "booking " code.cause { (booking) } }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}
