//! The read cache behind `/slots` and `/dates`: a read after an apply always shows it, on both
//! backends, whether through the real daemon or many random applies interleaved with reads,
//! and a read that raced an apply never keeps its older answer.

mod common;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use common::*;
use invsync::domain::{DayFetch, ExperienceId};
use invsync::storage::{CachedStore, Fence, Lease, Leases, Mirror, Rendered, Store, StoreError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const HOLDER: &str = "read-cache-test";

/// A test rendering: everything the store answered, in its `Debug` form.
fn render<T: Debug>(answer: Vec<T>) -> Result<Vec<u8>, StoreError> {
    Ok(format!("{answer:?}").into_bytes())
}

/// The test rendering, once its read has reached the database: reports that on `reached`,
/// then waits for `resume`, blocking as a slow serialization would. `block_in_place` hands the
/// thread's other tasks to another worker meanwhile (the database pool's own tasks among
/// them), as tokio would for a long computation.
fn gated<T: Debug>(
    reached: tokio::sync::mpsc::UnboundedSender<()>,
    resume: std::sync::mpsc::Receiver<()>,
) -> impl FnOnce(Vec<T>) -> Result<Vec<u8>, StoreError> {
    move |answer| {
        reached.send(()).expect("the test waits");
        tokio::task::block_in_place(|| resume.recv()).expect("the test resumes the read");
        render(answer)
    }
}

async fn cached_slots(cached: &CachedStore, id: ExperienceId, day: NaiveDate) -> Rendered {
    cached.rendered_slots(id, day, render).await.expect("slots")
}

async fn cached_dates(
    cached: &CachedStore,
    id: ExperienceId,
    (from, to): (NaiveDate, NaiveDate),
) -> Rendered {
    cached
        .rendered_dates(id, from, to, render)
        .await
        .expect("dates")
}

async fn fresh_slots(store: &dyn Store, id: ExperienceId, day: NaiveDate) -> Vec<u8> {
    render(store.slots_on(id, day).await.expect("slots")).expect("rendering")
}

async fn fresh_dates(
    store: &dyn Store,
    id: ExperienceId,
    (from, to): (NaiveDate, NaiveDate),
) -> Vec<u8> {
    render(store.sellable_dates(id, from, to).await.expect("dates")).expect("rendering")
}

async fn take_lease(cached: &CachedStore, ttl: Duration) -> Lease {
    cached
        .acquire_lease(HOLDER, ttl)
        .await
        .expect("lease call")
        .expect("the lease is free")
}

async fn apply(store: &dyn Store, fetch: &DayFetch, lease: Option<&Lease>) {
    let fence = lease.map(|lease| Fence {
        lease: lease.clone(),
    });
    store
        .apply_fetch(fetch, fence.as_ref())
        .await
        .expect("apply");
}

/// One slot at 09:00 with `remaining` seats and its adult at `price`.
fn one_slot_day(
    id: ExperienceId,
    day: NaiveDate,
    second: i64,
    remaining: i64,
    price: &str,
) -> DayFetch {
    fetch_at(
        id,
        day,
        second,
        vec![slot(
            day,
            "09:00",
            remaining,
            vec![pax("ADULT_12~99", remaining, price, true)],
        )],
    )
}

/// A random day: each of three slots present or not (a vanished slot closes), with 0–2 seats
/// (0 makes it unsellable) and a random adult price; the child's price never changes.
fn random_day(rng: &mut StdRng, id: ExperienceId, day: NaiveDate, second: i64) -> DayFetch {
    const PRICES: [&str; 4] = ["10", "12.5", "9.99", "15"];
    let slots = ["09:00", "11:00", "14:00"]
        .into_iter()
        .filter_map(|start| {
            if !rng.random_bool(0.7) {
                return None;
            }
            let adult = pax(
                "ADULT_12~99",
                rng.random_range(0..=2),
                PRICES[rng.random_range(0..PRICES.len())],
                true,
            );
            let child = pax("CHILD_3~11", rng.random_range(0..=2), "5", false);
            Some(slot(
                day,
                start,
                rng.random_range(0..=2),
                vec![adult, child],
            ))
        })
        .collect();
    fetch_at(id, day, second, slots)
}

#[tokio::test]
async fn reads_interleaved_with_random_applies_always_match_the_database() {
    const STEPS: i64 = 300;
    for backend in backends().await {
        let name = backend.name;
        let database = backend.store.clone();
        let cached = CachedStore::new(database.clone());
        let ids = [experience(14), experience(15)];
        cached.ensure_experiences(&ids).await.expect("experiences");
        let lease = take_lease(&cached, Duration::from_secs(600)).await;
        let days: Vec<NaiveDate> = date("2030-03-01").iter_days().take(3).collect();
        let ranges = [(days[0], days[2]), (days[1], days[1]), (days[0], days[1])];
        let mut rng = StdRng::seed_from_u64(6);
        for step in 0..STEPS {
            let id = ids[rng.random_range(0..ids.len())];
            let day = days[rng.random_range(0..days.len())];
            if rng.random_bool(0.4) {
                apply(&cached, &random_day(&mut rng, id, day, step), Some(&lease)).await;
            } else {
                let range = ranges[rng.random_range(0..ranges.len())];
                assert_eq!(
                    *cached_slots(&cached, id, day).await,
                    *fresh_slots(database.as_ref(), id, day).await,
                    "{name}: step {step}, slots of {id} on {day}"
                );
                assert_eq!(
                    *cached_dates(&cached, id, range).await,
                    *fresh_dates(database.as_ref(), id, range).await,
                    "{name}: step {step}, dates of {id} in {range:?}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_read_that_raced_an_apply_does_not_keep_its_older_answer() {
    for backend in backends().await {
        let name = backend.name;
        let database = backend.store.clone();
        let cached = Arc::new(CachedStore::new(database.clone()));
        let id = experience(14);
        cached.ensure_experiences(&[id]).await.expect("experiences");
        let lease = take_lease(&cached, Duration::from_secs(600)).await;
        let day = date("2030-03-01");
        let range = (day, day);
        apply(
            cached.as_ref(),
            &one_slot_day(id, day, 1, 5, "10"),
            Some(&lease),
        )
        .await;
        let (old_slots, old_dates) = (
            fresh_slots(database.as_ref(), id, day).await,
            fresh_dates(database.as_ref(), id, range).await,
        );

        // Both reads miss, read the database, then wait inside their rendering (before the
        // cache may keep the answer) while a newer day commits.
        let (reached_tx, mut reached) = tokio::sync::mpsc::unbounded_channel();
        let (resume_slots, slots_wait) = std::sync::mpsc::channel();
        let (resume_dates, dates_wait) = std::sync::mpsc::channel();
        let slots_read = tokio::spawn({
            let (cached, gate) = (cached.clone(), gated(reached_tx.clone(), slots_wait));
            async move { cached.rendered_slots(id, day, gate).await }
        });
        let dates_read = tokio::spawn({
            let (cached, gate) = (cached.clone(), gated(reached_tx, dates_wait));
            async move { cached.rendered_dates(id, day, day, gate).await }
        });
        for _ in 0..2 {
            reached.recv().await.expect("a read reached the database");
        }
        apply(
            cached.as_ref(),
            &one_slot_day(id, day, 2, 3, "12"),
            Some(&lease),
        )
        .await;
        for resume in [resume_slots, resume_dates] {
            resume.send(()).expect("the read waits");
        }
        // They began before the apply: their older answers are fine to return...
        let raced_slots = slots_read.await.expect("task").expect("slots");
        let raced_dates = dates_read.await.expect("task").expect("dates");
        assert_eq!(*raced_slots, *old_slots, "{name}");
        assert_eq!(*raced_dates, *old_dates, "{name}");
        // ...but never to keep.
        let (new_slots, new_dates) = (
            fresh_slots(database.as_ref(), id, day).await,
            fresh_dates(database.as_ref(), id, range).await,
        );
        assert_ne!(new_slots, old_slots, "{name}");
        assert_ne!(new_dates, old_dates, "{name}");
        assert_eq!(*cached_slots(&cached, id, day).await, *new_slots, "{name}");
        assert_eq!(
            *cached_dates(&cached, id, range).await,
            *new_dates,
            "{name}"
        );
    }
}

#[tokio::test]
async fn only_the_lease_holder_serves_from_memory() {
    for backend in backends().await {
        let name = backend.name;
        let database = backend.store.clone();
        let cached = CachedStore::new(database.clone());
        let id = experience(14);
        cached.ensure_experiences(&[id]).await.expect("experiences");
        let day = date("2030-03-01");
        let version = |second: i64| one_slot_day(id, day, second, second, "10");
        let served = || async { cached_slots(&cached, id, day).await };
        let stored = || async { fresh_slots(database.as_ref(), id, day).await };

        // Without the lease (a follower, an API-only instance) every read is the database's:
        // a day applied by another process shows at once.
        apply(&cached, &version(1), None).await;
        assert_eq!(*served().await, *stored().await, "{name}");
        apply(database.as_ref(), &version(2), None).await;
        assert_eq!(*served().await, *stored().await, "{name}");

        // The holder answers from memory: a write behind its back (which the lease refuses to
        // every other process) does not show...
        let lease = take_lease(&cached, Duration::from_secs(600)).await;
        let remembered = served().await;
        apply(database.as_ref(), &version(3), None).await;
        assert_ne!(*remembered, *stored().await, "{name}");
        assert_eq!(served().await, remembered, "{name}: not from memory");
        // ...until it hands the lease back,
        cached
            .release_lease(&lease, Duration::ZERO)
            .await
            .expect("release");
        assert_eq!(*served().await, *stored().await, "{name}");
        // or its lease runs out.
        take_lease(&cached, Duration::from_millis(300)).await;
        let remembered = served().await;
        apply(database.as_ref(), &version(4), None).await;
        assert_eq!(served().await, remembered, "{name}: not from memory");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(*served().await, *stored().await, "{name}");
    }
}

/// Through the real daemon and HTTP: the leader serves `/slots` and `/dates` from memory, and
/// a re-synced day shows at once. A stale answer would stay forever (the leader keeps its
/// lease), so waiting for the change cannot pass by luck.
#[tokio::test]
async fn the_daemon_serves_a_resynced_day_at_once() {
    for backend in backends().await {
        let name = backend.name;
        let app = spawn_daemon(backend).await;
        app.wait_for_status(Duration::from_secs(30), drained).await;
        let (_, dates) = app.get("/api/v1/experience/14/dates").await;
        let day: NaiveDate = serde_json::from_value(dates["dates"][0]["date"].clone())
            .expect("product 14 runs within the horizon");
        // Read twice, so both answers are in memory before the partner changes.
        for _ in 0..2 {
            app.assert_served_equals_simulator(day).await;
            let (_, again) = app.get("/api/v1/experience/14/dates").await;
            assert_eq!(again, dates, "{name}");
        }

        // The partner cancels every slot of that day: it must vanish from both answers.
        let id = experience(14);
        for slot in app.sim.sim.inventory(id, day).expect("simulator day") {
            app.sim
                .sim
                .remove_slot(id, day, time(&slot.start_time))
                .expect("remove slot");
        }
        let (status, body) = app
            .post(
                "/api/v1/sync/trigger",
                Some(ADMIN_TOKEN),
                Some(serde_json::json!({"experience": 14, "from": day, "to": day})),
            )
            .await;
        assert_eq!(status, 202, "{name}: {body}");
        let started = std::time::Instant::now();
        loop {
            let (_, slots) = app
                .get(&format!("/api/v1/experience/14/slots?date={day}"))
                .await;
            let (_, dates) = app.get("/api/v1/experience/14/dates").await;
            let listed = dates["dates"]
                .as_array()
                .expect("dates")
                .iter()
                .any(|listed| listed["date"] == serde_json::json!(day));
            if slots == serde_json::json!([]) && !listed {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{name}: {day} still served after its re-sync: {slots} {dates}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        app.assert_served_equals_simulator(day).await;
    }
}
