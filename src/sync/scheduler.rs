//! Fires each tier when its cron (UTC, 6 fields) comes due on the engine's clock: real time in
//! production, simulated time under tokio's paused clock, so tests and benchmarks run the real
//! schedule through days in seconds. The engine's per-tier lock keeps one run at a time per
//! tier; a firing that finds the previous run still going is skipped and counted.

use tokio::task::JoinSet;

use super::engine::Engine;

/// One task per tier; they end when the engine shuts down.
pub fn start(engine: &Engine) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    for index in 0..engine.tiers().len() {
        tasks.spawn(fire_on_schedule(engine.clone(), index));
    }
    tasks
}

async fn fire_on_schedule(engine: Engine, index: usize) {
    let clock = engine.clock();
    let tier = engine.tiers()[index].clone();
    let mut after = clock.now();
    while let Some(next) = tier.next_run(after) {
        let wait = (next - clock.now()).to_std().unwrap_or_default();
        tokio::select! {
            () = engine.stopped() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let run = engine.clone();
        // A run lasts until its days are done; the next firing must not wait for it.
        tokio::spawn(async move { run.run_tier(index).await });
        // Firings missed while the host was suspended are not replayed.
        after = next.max(clock.now());
    }
}
