//! The demo's customer: now and then it holds a seat on a slot of the first sellable day, then
//! confirms it, cancels it or lets the hold lapse, so a newcomer sees holds in `/slots`, in the slot
//! history and in the status.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;

use super::{BookingDesk, HoldBody, IdempotencyKey, PaxBody};
use crate::domain::ExperienceId;
use crate::storage::{Inventory, ServedSlot};

const EVERY: Duration = Duration::from_secs(10);
/// Long enough to see in `/slots`, short enough to see lapse.
const HOLD_SECONDS: i64 = 30;
const DECIDE_AFTER: Duration = Duration::from_secs(15);

/// What the customer does with its next hold.
#[derive(Debug, Clone, Copy)]
enum Decision {
    Confirm,
    Cancel,
    LetLapse,
}

/// Books on `experience` until `shutdown`; `horizon` gives the first and last dates kept.
pub async fn run(
    desk: BookingDesk,
    inventory: Arc<dyn Inventory>,
    experience: ExperienceId,
    horizon: impl Fn() -> (NaiveDate, NaiveDate) + Send + 'static,
    shutdown: CancellationToken,
) {
    let decisions = [Decision::Confirm, Decision::Cancel, Decision::LetLapse];
    for round in 0usize.. {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
        let decision = decisions[round % decisions.len()];
        let booked = book_once(&desk, inventory.as_ref(), experience, horizon(), decision);
        if let Err(error) = booked.await {
            tracing::debug!(%error, "the demo customer's booking did not go through");
        }
    }
}

async fn book_once(
    desk: &BookingDesk,
    inventory: &dyn Inventory,
    experience: ExperienceId,
    (first, last): (NaiveDate, NaiveDate),
    decision: Decision,
) -> anyhow::Result<()> {
    let Some(day) = inventory
        .sellable_dates(experience, first, last)
        .await?
        .first()
        .map(|sellable| sellable.date)
    else {
        return Ok(());
    };
    let slots = inventory.slots_on(experience, day).await?;
    let Some((day, slot, pax_type)) = slots.into_iter().find_map(|slot| bookable(day, slot)) else {
        return Ok(());
    };
    let body = HoldBody {
        experience: Some(experience),
        date: day.to_string(),
        start_time: slot.start_time.format("%H:%M").to_string(),
        pax: vec![PaxBody {
            pax_type,
            quantity: 1,
        }],
        hold_seconds: Some(HOLD_SECONDS),
    };
    let key = IdempotencyKey::parse(Some(uuid::Uuid::new_v4().to_string().as_bytes()))?;
    let held = desk.hold(key, body).await?.booking;
    tracing::info!(booking = %held.id, %day, slot = %slot.provider_slot_id, ?decision, "demo customer holds a seat");
    // Decided later, while the next holds are taken.
    let desk = desk.clone();
    tokio::spawn(async move {
        tokio::time::sleep(DECIDE_AFTER).await;
        let decided = match decision {
            Decision::Confirm => desk.confirm(held.id).await.map(drop),
            Decision::Cancel => desk.cancel(held.id).await.map(drop),
            Decision::LetLapse => Ok(()),
        };
        if let Err(error) = decided {
            tracing::debug!(%error, "the demo customer's decision did not go through");
        }
    });
    Ok(())
}

/// The slot and a pax type sold one at a time with a seat left, if any.
fn bookable(day: NaiveDate, slot: ServedSlot) -> Option<(NaiveDate, ServedSlot, String)> {
    if slot.remaining < 1 {
        return None;
    }
    let pax_type = slot
        .pax
        .iter()
        .find(|pax| pax.remaining >= 1 && pax.min <= 1)?
        .pax_type
        .clone();
    Some((day, slot, pax_type))
}
