//! Fires each tier on its cron schedule (UTC, 6 fields) with tokio-cron-scheduler. The engine's
//! per-tier lock keeps one run at a time per tier; a run that overlaps is skipped and counted.

use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use super::engine::Engine;

pub async fn start(engine: &Engine) -> Result<JobScheduler, JobSchedulerError> {
    let scheduler = JobScheduler::new().await?;
    for (index, tier) in engine.tiers().iter().enumerate() {
        let engine = engine.clone();
        let job = Job::new_async(tier.settings.cron.text.as_str(), move |_id, _scheduler| {
            let engine = engine.clone();
            Box::pin(async move {
                // A run lasts until its days are done; don't hold up the scheduler meanwhile.
                tokio::spawn(async move { engine.run_tier(index).await });
            })
        })?;
        scheduler.add(job).await?;
    }
    scheduler.start().await?;
    Ok(scheduler)
}
