//! Configuration: `config.toml` (or `--config FILE`) overlaid with `INVSYNC_<SECTION>__<KEY>`
//! environment variables. Every value is parsed into its final type here, so a wrong or
//! missing value stops start-up with one line naming the key.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroU64};
use std::path::Path;
use std::time::Duration;

use chrono::NaiveDate;
use chrono_tz::Tz;
use reqwest::Url;
use serde::Deserialize;

use crate::domain::{ExperienceId, Secret};
use crate::partner::{OctoProductRef, Protocol};

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

/// The name of the partner `[partner]` configures.
pub const DEFAULT_PARTNER: &str = "default";

/// One partner the daemon syncs from, by name.
#[derive(Debug, Clone, Copy)]
pub struct NamedPartner<'a> {
    pub name: &'a str,
    pub settings: &'a PartnerSettings,
    /// Configured by `[partner]` rather than `[partners.NAME]`.
    shorthand: bool,
}

impl NamedPartner<'_> {
    /// Where its settings live: `partner` or `partners.NAME`.
    pub fn key(&self) -> String {
        if self.shorthand {
            "partner".to_string()
        } else {
            format!("partners.{}", self.name)
        }
    }

    /// The key from the environment, refused when missing with the variable to set.
    pub fn api_key(&self) -> Result<&Secret, ConfigError> {
        self.settings
            .api_key
            .as_ref()
            .filter(|key| !key.is_empty())
            .ok_or_else(|| {
                let variable =
                    format!("INVSYNC_{}__API_KEY", self.key().replace('.', "__")).to_uppercase();
                ConfigError(format!("{}.api_key is missing: set {variable}", self.key()))
            })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub server: ServerSettings,
    #[serde(default)]
    pub database: DatabaseSettings,
    /// The one-partner shorthand: a single partner named [`DEFAULT_PARTNER`].
    #[serde(default)]
    pub partner: PartnerSettings,
    /// `[partners.NAME]`: several partners synced side by side, each with its own key, rate
    /// limit, pacer, pause and experiences. Replaces `[partner]`.
    #[serde(default)]
    pub partners: BTreeMap<String, PartnerSettings>,
    #[serde(default)]
    pub sync: SyncSettings,
    #[serde(default)]
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// Bearer token for the admin endpoints; set it through `INVSYNC_SERVER__ADMIN_TOKEN`.
    pub admin_token: Option<Secret>,
    /// Bearer token for the booking endpoints (the admin token works too); set it through
    /// `INVSYNC_SERVER__SALES_TOKEN`.
    pub sales_token: Option<Secret>,
    /// A request not answered within this gets `503 timeout`.
    pub request_timeout_seconds: NonZeroU32,
    /// After SIGTERM, how long `/readyz` answers 503 while requests are still served, so a
    /// load balancer stops routing here before the listener closes.
    pub shutdown_delay_seconds: u32,
    /// Connections the kernel queues before they are accepted; `None` takes the kernel's
    /// maximum (`net.core.somaxconn`), so a burst of connects is not dropped into TCP retries.
    pub listen_backlog: Option<NonZeroU32>,
    /// Reads (GET) handled at once; more wait for a slot. Four requests per slot are read
    /// off the sockets at most; the rest wait unread (`api::intake`).
    pub max_concurrent_reads: NonZeroU32,
    /// Writes (POST and the rest) handled at once, apart from the reads' slots (and read off
    /// the sockets four per slot at most).
    pub max_concurrent_writes: NonZeroU32,
    /// The longest a request waits for a slot before it is shed with `503 overloaded`.
    pub queue_budget_ms: NonZeroU32,
    /// Connections open at once; further ones wait in the listen backlog. Each open
    /// connection that has made a request holds about 11.5 KiB of the daemon's memory (a page
    /// of each of hyper's 8 KiB read and write buffers, its task and state), so 10,000 take
    /// some 112 MiB (`cargo bench --bench connections`).
    pub max_connections: NonZeroU32,
    /// A connection that sends no complete request head within this (a slow client, or an
    /// idle keep-alive) is closed. Keep it above a load balancer's idle timeout.
    pub header_read_timeout_seconds: NonZeroU32,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_token: None,
            sales_token: None,
            request_timeout_seconds: NonZeroU32::new(30).expect("non-zero literal"),
            shutdown_delay_seconds: 0,
            listen_backlog: None,
            max_concurrent_reads: NonZeroU32::new(256).expect("non-zero literal"),
            max_concurrent_writes: NonZeroU32::new(64).expect("non-zero literal"),
            queue_budget_ms: NonZeroU32::new(1000).expect("non-zero literal"),
            max_connections: NonZeroU32::new(16_384).expect("non-zero literal"),
            header_read_timeout_seconds: NonZeroU32::new(75).expect("non-zero literal"),
        }
    }
}

impl ServerSettings {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds.get().into())
    }

    pub fn shutdown_delay(&self) -> Duration {
        Duration::from_secs(self.shutdown_delay_seconds.into())
    }

    pub fn connection_limits(&self) -> crate::api::server::ConnectionLimits {
        crate::api::server::ConnectionLimits {
            max_connections: usize::try_from(self.max_connections.get()).unwrap_or(usize::MAX),
            header_read_timeout: Duration::from_secs(self.header_read_timeout_seconds.get().into()),
        }
    }

    pub fn queue_budget(&self) -> Duration {
        Duration::from_millis(self.queue_budget_ms.get().into())
    }

    /// The configured backlog, else the kernel's maximum (4096 where it cannot be read).
    pub fn listen_backlog(&self) -> u32 {
        self.listen_backlog.map_or_else(
            || {
                std::fs::read_to_string("/proc/sys/net/core/somaxconn")
                    .ok()
                    .and_then(|text| text.trim().parse().ok())
                    .unwrap_or(4096)
            },
            NonZeroU32::get,
        )
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    pub url: Secret,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: Secret::new("sqlite://data/invsync.db"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PartnerSettings {
    /// `leap` (the default) or `octo`: which form of the partner API `base_url` speaks.
    pub kind: PartnerKind,
    pub base_url: BaseUrl,
    /// Set it through `INVSYNC_PARTNER__API_KEY`; never in a committed file.
    pub api_key: Option<Secret>,
    pub rate_limit_per_minute: NonZeroU32,
    pub timezone: PartnerTimeZone,
    /// A TOML array, or comma-separated text from the environment (`14,15`).
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub experiences: Vec<ExperienceId>,
    pub request_timeout_seconds: u64,
    /// OCTO only: the supplier's product (and option) of an experience whose OCTO product id
    /// is not its own id, keyed by experience id.
    pub octo_products: BTreeMap<String, OctoProductSetting>,
    /// OCTO only: the most consecutive days of a product asked for in one call.
    pub days_per_call: NonZeroU32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartnerKind {
    #[default]
    Leap,
    Octo,
}

impl PartnerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Leap => "leap",
            Self::Octo => "octo",
        }
    }
}

/// `[partner.octo_products] 14 = { product = "6b90…", option = "DEFAULT" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OctoProductSetting {
    pub product: String,
    /// The product's default option when absent.
    pub option: Option<String>,
}

impl Default for PartnerSettings {
    fn default() -> Self {
        Self {
            kind: PartnerKind::Leap,
            base_url: BaseUrl(Url::parse("http://127.0.0.1:9090").expect("literal URL")),
            api_key: None,
            rate_limit_per_minute: NonZeroU32::new(30).expect("non-zero literal"),
            timezone: PartnerTimeZone(chrono_tz::Asia::Singapore),
            experiences: [14, 15]
                .into_iter()
                .map(|id| ExperienceId::try_from(id).expect("positive literal"))
                .collect(),
            request_timeout_seconds: 20,
            octo_products: BTreeMap::new(),
            days_per_call: NonZeroU32::new(31).expect("non-zero literal"),
        }
    }
}

/// Accepts `[14, 15]` from a file or `"14,15"` from an environment variable.
fn list_or_comma_separated<'de, D>(deserializer: D) -> Result<Vec<ExperienceId>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrText {
        List(Vec<ExperienceId>),
        Text(String),
    }
    match ListOrText::deserialize(deserializer)? {
        ListOrText::List(ids) => Ok(ids),
        ListOrText::Text(text) => text
            .split(',')
            .map(|id| id.trim().parse().map_err(serde::de::Error::custom))
            .collect(),
    }
}

impl PartnerSettings {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }

    /// The form of the partner API to speak, with OCTO's product of each experience.
    pub fn protocol(&self) -> Result<Protocol, ConfigError> {
        if self.kind == PartnerKind::Leap {
            if !self.octo_products.is_empty() {
                return Err(ConfigError(
                    "octo_products is set but kind is \"leap\" (set kind = \"octo\")".into(),
                ));
            }
            return Ok(Protocol::Leap);
        }
        let mut products = HashMap::new();
        for (key, setting) in &self.octo_products {
            let experience = key
                .parse::<ExperienceId>()
                .ok()
                .filter(|id| self.experiences.contains(id))
                .ok_or_else(|| {
                    ConfigError(format!(
                        "octo_products.{key}: not one of the partner's experiences"
                    ))
                })?;
            products.insert(
                experience,
                OctoProductRef {
                    product_id: setting.product.clone(),
                    option_id: setting.option.clone(),
                },
            );
        }
        Ok(Protocol::Octo {
            products,
            days_per_call: self.days_per_call,
        })
    }

    /// Today as a calendar date in the partner's time zone.
    pub fn today(&self) -> NaiveDate {
        chrono::Utc::now()
            .with_timezone(&self.timezone.0)
            .date_naive()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSettings {
    pub horizon_days: HorizonDays,
    /// `[[sync.tiers]]`; when absent, the partner contract's four tiers. An empty list
    /// schedules nothing (only manual triggers run).
    pub tiers: Option<Vec<TierSettings>>,
    /// `false` makes an API-only instance: it serves reads and controls but never competes
    /// for the lease or calls the partner.
    pub enabled: bool,
    /// This instance's name in the sync lease; unique per running instance.
    pub instance_id: String,
    /// How long the sync lease lasts unless renewed (renewed every third of it): the longest a
    /// dead leader keeps the others waiting.
    pub lease_seconds: NonZeroU64,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            horizon_days: HorizonDays(60),
            tiers: None,
            enabled: true,
            instance_id: default_instance_id(),
            lease_seconds: NonZeroU64::new(10).expect("non-zero literal"),
        }
    }
}

/// The host's name and a random suffix: unique per process, readable in the status.
fn default_instance_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "invsync".to_string());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}", &suffix[..8])
}

impl SyncSettings {
    pub fn lease_claim(&self) -> crate::sync::LeaseClaim {
        crate::sync::LeaseClaim {
            holder: self.instance_id.clone(),
            ttl: std::time::Duration::from_secs(self.lease_seconds.get()),
        }
    }

    /// The configured tiers, or the defaults: today every 15 minutes, the next 7 days every
    /// 4 hours, the next 30 days daily, the whole horizon daily at the lowest priority.
    pub fn tiers(&self) -> Vec<TierSettings> {
        if let Some(tiers) = &self.tiers {
            return tiers.clone();
        }
        let horizon_last = self.horizon_days.get() - 1;
        [
            ("today", "0 */15 * * * *", 0, 0),
            ("week", "0 0 */4 * * *", 0, 6.min(horizon_last)),
            ("month", "0 30 1 * * *", 0, 29.min(horizon_last)),
            ("horizon", "0 0 2 * * *", 0, horizon_last),
        ]
        .into_iter()
        .map(|(name, cron, first_day, last_day)| TierSettings {
            name: name.to_string(),
            cron: CronSchedule::try_from(cron.to_string()).expect("valid default cron"),
            first_day,
            last_day,
        })
        .collect()
    }
}

/// One sync tier: every day from `first_day` to `last_day` (offsets from today in the
/// partner's time zone, inclusive) is refreshed when `cron` fires (UTC, 6 fields with seconds).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierSettings {
    pub name: String,
    pub cron: CronSchedule,
    pub first_day: u32,
    pub last_day: u32,
}

/// A parsed 6-field cron expression (seconds first), evaluated in UTC.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct CronSchedule {
    pub text: String,
    pub schedule: croner::Cron,
}

impl TryFrom<String> for CronSchedule {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        // Seconds first, and day-of-month and day-of-week both must match, as in Quartz.
        let schedule = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(&text)
            .map_err(|e| format!("{text:?} is not a 6-field cron expression: {e}"))?;
        Ok(Self { text, schedule })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct BaseUrl(pub Url);

impl TryFrom<String> for BaseUrl {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let url = Url::parse(&text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        match url.scheme() {
            "http" | "https" => Ok(Self(url)),
            other => Err(format!("{text:?} must be http or https, not {other}")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct PartnerTimeZone(pub Tz);

impl TryFrom<String> for PartnerTimeZone {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        name.parse::<Tz>()
            .map(Self)
            .map_err(|_| format!("{name:?} is not an IANA time zone name"))
    }
}

/// How many days, starting today, the sync keeps; at least 1, at most a year and a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct HorizonDays(u32);

impl HorizonDays {
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<i64> for HorizonDays {
    type Error = String;
    fn try_from(days: i64) -> Result<Self, String> {
        match u32::try_from(days) {
            Ok(days @ 1..=366) => Ok(Self(days)),
            _ => Err(format!("{days} is not between 1 and 366")),
        }
    }
}

impl Settings {
    /// Every partner to sync from: those of `[partners.NAME]`, or the one of `[partner]`.
    pub fn partners(&self) -> Vec<NamedPartner<'_>> {
        if self.partners.is_empty() {
            return vec![NamedPartner {
                name: DEFAULT_PARTNER,
                settings: &self.partner,
                shorthand: true,
            }];
        }
        self.partners
            .iter()
            .map(|(name, settings)| NamedPartner {
                name,
                settings,
                shorthand: false,
            })
            .collect()
    }

    /// Every synced experience, of every partner.
    pub fn experiences(&self) -> Vec<ExperienceId> {
        self.partners()
            .iter()
            .flat_map(|partner| partner.settings.experiences.iter().copied())
            .collect()
    }

    /// Each partner's name, settings and protocol checked, and every experience synced from
    /// exactly one partner.
    fn check_partners(&self, has_partner_table: bool) -> Result<(), ConfigError> {
        if has_partner_table && !self.partners.is_empty() {
            return Err(ConfigError(
                "both [partner] (or an INVSYNC_PARTNER__ variable) and [partners.NAME] are \
                 set: [partner] is the one-partner shorthand, name it under [partners] instead"
                    .into(),
            ));
        }
        let mut owners: HashMap<ExperienceId, String> = HashMap::new();
        for partner in self.partners() {
            let key = partner.key();
            let name_ok = !partner.name.is_empty()
                && !partner.name.contains("__")
                && partner
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !name_ok {
                return Err(ConfigError(format!(
                    "{key}: a partner's name is lowercase letters, digits, '-' and '_' (it \
                     names the partner's environment variables)"
                )));
            }
            partner
                .settings
                .protocol()
                .map_err(|error| ConfigError(format!("{key}.{}", error.0)))?;
            if partner.settings.experiences.is_empty() {
                return Err(ConfigError(format!(
                    "{key}.experiences must list at least one product id"
                )));
            }
            for &experience in &partner.settings.experiences {
                if let Some(other) = owners.insert(experience, key.clone()) {
                    return Err(ConfigError(format!(
                        "experience {experience} is in both {other}.experiences and \
                         {key}.experiences: each experience is synced from one partner"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Loads `path` (required when given explicitly, else `config.toml` if present) and the
    /// `INVSYNC_` environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let file = match path {
            Some(path) => config::File::from(path).required(true),
            None => config::File::with_name("config.toml").required(false),
        };
        Self::from_sources(file, std::env::vars())
    }

    fn from_sources(
        file: config::File<config::FileSourceFile, config::FileFormat>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env = config::Environment::with_prefix("INVSYNC")
            .prefix_separator("_")
            .separator("__")
            // No `try_parsing`: it turns "007" into 7 and back, rewriting secrets. Values stay
            // text; numbers and lists parse from it when they are deserialised.
            .source(Some(env.into_iter().collect()));
        let sources = config::Config::builder()
            .add_source(file)
            .add_source(env)
            .build()
            .map_err(|e| ConfigError(e.to_string()))?;
        let has_partner_table = sources.get_table("partner").is_ok();
        let settings: Self = sources
            .try_deserialize()
            .map_err(|e| ConfigError(e.to_string()))?;
        settings.check_partners(has_partner_table)?;
        let horizon = settings.sync.horizon_days.get();
        let tiers = settings.sync.tiers();
        for (index, tier) in tiers.iter().enumerate() {
            if tier.first_day > tier.last_day || tier.last_day >= horizon {
                return Err(ConfigError(format!(
                    "sync.tiers[{index}] ({}): first_day {} … last_day {} must be ordered and \
                     inside sync.horizon_days ({horizon})",
                    tier.name, tier.first_day, tier.last_day
                )));
            }
            if tiers[..index].iter().any(|other| other.name == tier.name) {
                return Err(ConfigError(format!(
                    "sync.tiers[{index}]: the name {:?} is used twice",
                    tier.name
                )));
            }
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, toml).unwrap();
        Settings::from_sources(
            config::File::from(path.as_path()).required(true),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn defaults_match_the_partner_contract() {
        let settings = load("", &[]).unwrap();
        assert_eq!(settings.partner.rate_limit_per_minute.get(), 30);
        assert_eq!(settings.partner.timezone.0, chrono_tz::Asia::Singapore);
        assert_eq!(settings.sync.horizon_days.get(), 60);
        let ids: Vec<&str> = settings
            .partner
            .experiences
            .iter()
            .map(ExperienceId::as_str)
            .collect();
        assert_eq!(ids, ["14", "15"]);
    }

    #[test]
    fn environment_overrides_the_file() {
        let settings = load(
            "[partner]\nrate_limit_per_minute = 10\n",
            &[
                ("INVSYNC_PARTNER__RATE_LIMIT_PER_MINUTE", "45"),
                ("INVSYNC_PARTNER__EXPERIENCES", "7,8,9"),
                ("INVSYNC_PARTNER__API_KEY", "12345"),
                ("INVSYNC_DATABASE__URL", "sqlite://x.db"),
            ],
        )
        .unwrap();
        assert_eq!(settings.partner.rate_limit_per_minute.get(), 45);
        assert_eq!(settings.partner.experiences.len(), 3);
        assert_eq!(settings.partners()[0].api_key().unwrap().expose(), "12345");
        assert_eq!(settings.database.url.expose(), "sqlite://x.db");
    }

    #[test]
    fn a_bad_value_names_its_key() {
        for (toml, env, key) in [
            (
                "",
                ("INVSYNC_PARTNER__TIMEZONE", "Mars/Olympus"),
                "partner.timezone",
            ),
            (
                "",
                ("INVSYNC_PARTNER__RATE_LIMIT_PER_MINUTE", "0"),
                "partner.rate_limit_per_minute",
            ),
            ("", ("INVSYNC_SYNC__HORIZON_DAYS", "0"), "sync.horizon_days"),
            (
                "",
                ("INVSYNC_PARTNER__BASE_URL", "ftp://x"),
                "partner.base_url",
            ),
            ("", ("INVSYNC_SERVER__LISTEN", "nowhere"), "server.listen"),
            (
                "",
                ("INVSYNC_PARTNER__EXPERIENCES", "14,-1"),
                "partner.experiences",
            ),
            ("[partner]\nrate_limit = 3\n", ("X", "y"), "rate_limit"),
            (
                "[[sync.tiers]]\nname = \"t\"\ncron = \"*/15 * * * *\"\nfirst_day = 0\nlast_day = 0\n",
                ("X", "y"),
                "sync.tiers",
            ),
            (
                "[[sync.tiers]]\nname = \"t\"\ncron = \"0 * * * * *\"\nfirst_day = 0\nlast_day = 60\n",
                ("X", "y"),
                "sync.tiers[0]",
            ),
        ] {
            let error = load(toml, &[env]).unwrap_err().to_string();
            assert!(error.contains(key), "{error} does not name {key}");
            assert!(!error.contains('\n'), "{error} is not one line");
        }
    }

    #[test]
    fn string_settings_are_taken_byte_for_byte() {
        for value in [
            "007",
            "0012",
            "12345678901234567890123",
            "true",
            "1e3",
            "-0",
            " spaced ",
        ] {
            let settings = load(
                "",
                &[
                    ("INVSYNC_SERVER__ADMIN_TOKEN", value),
                    ("INVSYNC_PARTNER__API_KEY", value),
                    ("INVSYNC_SYNC__INSTANCE_ID", value),
                ],
            )
            .unwrap();
            let admin = settings.server.admin_token.as_ref().map(Secret::expose);
            assert_eq!(admin, Some(value));
            assert_eq!(settings.partners()[0].api_key().unwrap().expose(), value);
            assert_eq!(settings.sync.instance_id, value);
        }
    }

    #[test]
    fn numbers_booleans_and_lists_still_parse_from_the_environment() {
        let settings = load(
            "",
            &[
                ("INVSYNC_SYNC__ENABLED", "false"),
                ("INVSYNC_SYNC__LEASE_SECONDS", "07"),
                ("INVSYNC_SERVER__SHUTDOWN_DELAY_SECONDS", "3"),
                ("INVSYNC_PARTNER__EXPERIENCES", "14, 15,6b90-tour"),
            ],
        )
        .unwrap();
        assert!(!settings.sync.enabled);
        assert_eq!(settings.sync.lease_seconds.get(), 7);
        assert_eq!(settings.server.shutdown_delay_seconds, 3);
        let ids: Vec<&str> = settings
            .partner
            .experiences
            .iter()
            .map(ExperienceId::as_str)
            .collect();
        assert_eq!(ids, ["14", "15", "6b90-tour"]);
    }

    #[test]
    fn a_missing_api_key_names_its_variable() {
        let settings = load("", &[]).unwrap();
        let error = settings.partners()[0].api_key().unwrap_err().to_string();
        assert!(error.contains("INVSYNC_PARTNER__API_KEY"), "{error}");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let settings = load(
            "",
            &[
                ("INVSYNC_PARTNER__API_KEY", "partner-secret"),
                ("INVSYNC_SERVER__ADMIN_TOKEN", "admin-secret"),
                (
                    "INVSYNC_DATABASE__URL",
                    "postgres://u:db-secret@localhost/x",
                ),
            ],
        )
        .unwrap();
        let debug = format!("{settings:?}");
        for secret in ["partner-secret", "admin-secret", "db-secret"] {
            assert!(!debug.contains(secret), "{secret} leaked: {debug}");
        }
    }

    #[test]
    fn an_octo_partner_names_the_product_of_an_experience_where_it_differs() {
        let settings = load(
            "[partner]\nkind = \"octo\"\n\
             [partner.octo_products]\n14 = { product = \"6b90-tour\", option = \"MORNING\" }\n",
            &[],
        )
        .unwrap();
        let Protocol::Octo { products, .. } = settings.partner.protocol().unwrap() else {
            panic!("an OCTO partner");
        };
        let tour = products
            .get(&ExperienceId::try_from(14).unwrap())
            .expect("14 is mapped");
        assert_eq!(tour.product_id, "6b90-tour");
        assert_eq!(tour.option_id.as_deref(), Some("MORNING"));
        assert!(!products.contains_key(&ExperienceId::try_from(15).unwrap()));
        assert_eq!(
            load("", &[]).unwrap().partner.protocol().unwrap(),
            Protocol::Leap
        );
    }

    #[test]
    fn octo_products_must_be_synced_experiences_of_an_octo_partner() {
        let error = load(
            "[partner]\nkind = \"octo\"\n[partner.octo_products]\n99 = { product = \"x\" }\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("partner.octo_products.99"), "{error}");
        let error = load("[partner.octo_products]\n14 = { product = \"x\" }\n", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("partner.octo_products"), "{error}");
        assert!(error.contains("kind = \"octo\""), "{error}");
        let error = load("[partner]\nkind = \"soap\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("soap"), "{error}");
    }

    const TWO_PARTNERS: &str = "
[partners.leap]
experiences = [14]
rate_limit_per_minute = 30

[partners.acme-octo]
kind = \"octo\"
base_url = \"http://127.0.0.1:9191/octo\"
experiences = [15, 16]
rate_limit_per_minute = 100
timezone = \"Europe/Berlin\"
";

    #[test]
    fn several_partners_each_keep_their_own_settings_and_key() {
        let settings = load(
            TWO_PARTNERS,
            &[
                ("INVSYNC_PARTNERS__LEAP__API_KEY", "leap-key"),
                ("INVSYNC_PARTNERS__ACME-OCTO__API_KEY", "octo-key"),
            ],
        )
        .unwrap();
        let partners = settings.partners();
        let named: Vec<_> = partners
            .iter()
            .map(|p| {
                (
                    p.name,
                    p.settings.kind,
                    p.settings.rate_limit_per_minute.get(),
                )
            })
            .collect();
        assert_eq!(
            named,
            [
                ("acme-octo", PartnerKind::Octo, 100),
                ("leap", PartnerKind::Leap, 30)
            ]
        );
        assert_eq!(partners[0].api_key().unwrap().expose(), "octo-key");
        assert_eq!(partners[1].api_key().unwrap().expose(), "leap-key");
        assert_eq!(partners[0].settings.timezone.0, chrono_tz::Europe::Berlin);
        assert_eq!(settings.experiences().len(), 3);
    }

    #[test]
    fn a_named_partner_without_a_key_names_its_variable() {
        let settings = load(TWO_PARTNERS, &[]).unwrap();
        let error = settings.partners()[0].api_key().unwrap_err().to_string();
        assert!(
            error.contains("partners.acme-octo.api_key")
                && error.contains("INVSYNC_PARTNERS__ACME-OCTO__API_KEY"),
            "{error}"
        );
    }

    #[test]
    fn an_experience_of_two_partners_is_refused_naming_both() {
        let clash = TWO_PARTNERS.replace("experiences = [14]", "experiences = [14, 16]");
        let error = load(&clash, &[]).unwrap_err().to_string();
        assert!(
            error.contains("experience 16")
                && error.contains("partners.acme-octo.experiences")
                && error.contains("partners.leap.experiences"),
            "{error}"
        );
    }

    #[test]
    fn the_shorthand_and_named_partners_together_are_refused() {
        let both = format!("[partner]\nexperiences = [20]\n{TWO_PARTNERS}");
        let error = load(&both, &[]).unwrap_err().to_string();
        assert!(
            error.contains("[partner]") && error.contains("[partners.NAME]"),
            "{error}"
        );
        let error = load("[partners.Big__One]\nexperiences = [1]\n", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("lowercase"), "{error}");
    }
}
