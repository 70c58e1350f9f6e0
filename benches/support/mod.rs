//! What the benchmarks share: scratch databases on the PostgreSQL server the tests use.

use sqlx::{Connection, PgConnection};

/// The server at `TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
/// on which each bench run creates databases of its own and drops them after.
pub struct PostgresServer {
    admin_url: String,
    admin: PgConnection,
}

impl PostgresServer {
    /// `None`, saying so, when no server answers: the bench then measures SQLite only.
    pub async fn connect() -> Option<Self> {
        let admin_url = std::env::var("TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        match PgConnection::connect(&admin_url).await {
            Ok(admin) => Some(Self { admin_url, admin }),
            Err(error) => {
                println!("postgres  skipped: {admin_url} unreachable ({error})");
                None
            }
        }
    }

    /// Creates the empty database `invsync_bench_<role>_<pid>` and returns its URL.
    pub async fn create_database(&mut self, role: &str) -> String {
        let name = database_name(role);
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut self.admin)
            .await
            .expect("create bench database");
        let mut url = reqwest::Url::parse(&self.admin_url).expect("PostgreSQL URL");
        url.set_path(&name);
        url.into()
    }

    /// Drops what [`Self::create_database`] made for `role`, closing its connections.
    pub async fn drop_database(&mut self, role: &str) {
        sqlx::query(&format!(
            "DROP DATABASE {} WITH (FORCE)",
            database_name(role)
        ))
        .execute(&mut self.admin)
        .await
        .expect("drop bench database");
    }
}

/// Unique per process, so a bench can run beside the tests or another bench.
fn database_name(role: &str) -> String {
    format!("invsync_bench_{role}_{}", std::process::id())
}
