//! Configuration: built-in defaults that run out of the box, overridden by a TOML file
//! (`--config`, `KHO_CONFIG`, or `kho.toml` in the working directory), then by `KHO_*`
//! environment variables, then by command-line flags.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where kho keeps its metadata database and data files.
    pub data_dir: PathBuf,
    /// The metadata database: empty for the SQLite file `kho.db` in `data_dir` (one server), or
    /// `postgres://user:password@host:5432/kho` for a PostgreSQL database that several kho
    /// nodes share.
    pub database_url: Option<String>,
    /// Connections each node keeps to a PostgreSQL database.
    pub database_connections: u32,
    /// Where versions and other data files are kept: empty for `objects/` in `data_dir`, or
    /// `s3://bucket/prefix` for an S3-compatible store that several kho nodes share.
    pub object_store_url: Option<String>,
    /// The S3-compatible store's address when it is not Amazon's, e.g. `http://minio:9000`.
    pub s3_endpoint: Option<String>,
    pub s3_region: Option<String>,
    /// Credentials of the store; without them the standard `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY` environment variables are used.
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<String>,
    /// Address to listen on.
    pub listen: String,
    /// GSO code of the province this instance serves.
    #[serde(deserialize_with = "gso_code")]
    pub province_code: String,
    /// Mark cookies Secure; turn on when users reach kho over HTTPS.
    pub cookie_secure: bool,
    pub max_body_bytes: usize,
    /// Largest data file accepted for upload.
    pub max_upload_bytes: u64,
    /// Read the client address from X-Forwarded-For when the connection comes from one of
    /// `trusted_proxies` (your own reverse proxies).
    pub trust_proxy: bool,
    /// Addresses or networks (`10.0.0.0/24`) of your reverse proxies; a list, or one string
    /// with commas.
    #[serde(deserialize_with = "list")]
    pub trusted_proxies: Vec<String>,
    /// The address the public reaches kho at, e.g. `https://dulieu.sonla.gov.vn`, for absolute
    /// links (API answers, the catalog harvesters read); without it links follow the request's
    /// Host header.
    pub public_url: Option<String>,
    pub session_ttl_hours: i64,
    pub lockout_threshold: i64,
    pub lockout_minutes: i64,
    /// Password for the first administrator, instead of a generated one (for automated setups).
    pub initial_admin_password: Option<String>,
    /// Log filter, e.g. "info" or "kho=debug,tower_http=info".
    pub log: String,
    /// Memory for published versions kept ready for queries (least recently used dropped).
    pub query_cache_bytes: u64,
    /// Memory all running queries may use together for sorting and grouping.
    pub query_memory_bytes: u64,
    /// Time limit of one SQL statement.
    pub sql_timeout_secs: u64,
    /// Most rows one SQL answer returns (it says when it was cut).
    pub sql_max_rows: usize,
    /// API requests a minute one address may make without an API key (0: no limit).
    pub anonymous_api_per_minute: u32,
    /// Ratings, problem reports and data requests an hour one address may send without signing in (0: no limit).
    pub feedback_per_hour: u32,
}

/// `scheme://user:password@host/…` with the password replaced by `***`.
fn hide_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((credentials, host)) = rest.rsplit_once('@') else { return url.to_string() };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// A list given as a list, or as one string with commas (as environment variables are).
fn list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        One(String),
        Many(Vec<String>),
    }
    Ok(match List::deserialize(d)? {
        List::One(s) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect(),
        List::Many(v) => v,
    })
}

/// Environment values that look like numbers reach us as numbers ("01" as 1): accept both and
/// restore the zero-padded two-digit code.
fn gso_code<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Code {
        Text(String),
        Number(u64),
    }
    Ok(match Code::deserialize(d)? {
        Code::Text(s) => s,
        Code::Number(n) => format!("{n:02}"),
    })
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./kho-data"),
            database_url: None,
            database_connections: 16,
            object_store_url: None,
            s3_endpoint: None,
            s3_region: None,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            listen: "127.0.0.1:8080".into(),
            province_code: "14".into(),
            cookie_secure: false,
            max_body_bytes: 2 * 1024 * 1024,
            max_upload_bytes: 1024 * 1024 * 1024,
            trust_proxy: false,
            trusted_proxies: vec!["127.0.0.1".into(), "::1".into()],
            public_url: None,
            session_ttl_hours: 12,
            lockout_threshold: 5,
            lockout_minutes: 15,
            initial_admin_password: None,
            log: "info,tower_http=warn,sqlx=warn".into(),
            query_cache_bytes: 1 << 30,
            query_memory_bytes: 2 << 30,
            sql_timeout_secs: 30,
            sql_max_rows: 10_000,
            anonymous_api_per_minute: 300,
            feedback_per_hour: 10,
        }
    }
}

/// Values given as flags; only those present override the other sources.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub province_code: Option<String>,
}

pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
    let mut fig = Figment::from(Serialized::defaults(Config::default()));
    let file = file.map(Path::to_path_buf).or_else(|| std::env::var_os("KHO_CONFIG").map(PathBuf::from));
    match file {
        Some(f) => {
            if !f.exists() {
                anyhow::bail!("configuration file {} does not exist", f.display());
            }
            fig = fig.merge(Toml::file(f));
        }
        None => {
            if Path::new("kho.toml").exists() {
                fig = fig.merge(Toml::file("kho.toml"));
            }
        }
    }
    // Only the variables that are settings: others with the prefix (KHO_BIN in scripts, KHO_LOG
    // read by the logger) are not configuration mistakes.
    let keys = [
        "data_dir",
        "database_url",
        "database_connections",
        "object_store_url",
        "s3_endpoint",
        "s3_region",
        "s3_access_key_id",
        "s3_secret_access_key",
        "listen",
        "province_code",
        "cookie_secure",
        "max_body_bytes",
        "max_upload_bytes",
        "trust_proxy",
        "trusted_proxies",
        "public_url",
        "session_ttl_hours",
        "lockout_threshold",
        "lockout_minutes",
        "initial_admin_password",
        "log",
        "query_cache_bytes",
        "query_memory_bytes",
        "sql_timeout_secs",
        "sql_max_rows",
        "anonymous_api_per_minute",
        "feedback_per_hour",
    ];
    fig = fig.merge(Env::prefixed("KHO_").only(&keys)).merge(Serialized::globals(overrides));
    let config = fig.extract::<Config>().map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    config.proxies()?;
    config.public_url()?;
    config.database()?;
    config
        .objects()
        .location(&config.data_dir.join("objects"))
        .map_err(|e| anyhow::anyhow!("invalid configuration: object_store_url: {}", e.message))?;
    Ok(config)
}

impl Config {
    /// `trusted_proxies` as networks; an entry that is neither an address nor a network is named.
    pub fn proxies(&self) -> anyhow::Result<Vec<ipnet::IpNet>> {
        self.trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| anyhow::anyhow!("invalid configuration: trusted_proxies: '{p}' is not an address or a network such as 10.0.0.0/24"))
            })
            .collect()
    }

    /// The configuration as it may be shown: passwords replaced by `***`.
    pub fn printable(&self) -> Config {
        let mut shown = self.clone();
        if shown.initial_admin_password.is_some() {
            shown.initial_admin_password = Some("***".into());
        }
        shown.database_url = shown.database_url.map(|url| hide_password(&url));
        if shown.s3_secret_access_key.is_some() {
            shown.s3_secret_access_key = Some("***".into());
        }
        shown
    }

    /// Where the objects live, from `object_store_url` and the `s3_*` settings.
    pub fn objects(&self) -> kho_service::ObjectsConfig {
        kho_service::ObjectsConfig {
            url: self.object_store_url.clone(),
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            access_key_id: self.s3_access_key_id.clone(),
            secret_access_key: self.s3_secret_access_key.clone(),
        }
    }

    /// Where the metadata lives, from `database_url`.
    pub fn database(&self) -> anyhow::Result<kho_service::Database> {
        kho_service::Database::from_config(self.database_url.as_deref(), &self.data_dir, self.database_connections)
            .map_err(|e| anyhow::anyhow!("invalid configuration: database_url: {}", e.message))
    }

    /// `public_url` without a trailing slash, checked to be an http(s) address.
    pub fn public_url(&self) -> anyhow::Result<Option<String>> {
        let Some(u) = self.public_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) else { return Ok(None) };
        let u = u.trim_end_matches('/');
        let rest = u.strip_prefix("https://").or_else(|| u.strip_prefix("http://"));
        let ok = rest.is_some_and(|r| {
            !r.is_empty()
                && r.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '/' | '[' | ']' | '_'))
        });
        if !ok {
            anyhow::bail!(
                "invalid configuration: public_url: '{u}' is not an address such as https://dulieu.sonla.gov.vn"
            );
        }
        Ok(Some(u.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // figment's Jail fixes the closure's error type; its size is not ours to choose.
    #[allow(clippy::result_large_err)]
    fn defaults_then_file_then_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("k.toml", "listen = \"0.0.0.0:9000\"\nprovince_code = \"40\"")?;
            jail.set_env("KHO_PROVINCE_CODE", "01");
            jail.set_env("KHO_BIN", "/somewhere/kho");
            let c = load(Some(Path::new("k.toml")), &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(c.listen, "0.0.0.0:9000");
            assert_eq!(c.province_code, "01");
            assert_eq!(c.data_dir, PathBuf::from("./kho-data"));
            let o = Overrides { province_code: Some("14".into()), ..Default::default() };
            let c = load(Some(Path::new("k.toml")), &o).map_err(|e| e.to_string())?;
            assert_eq!(c.province_code, "14");
            jail.create_file("bad.toml", "lisen = 1")?;
            assert!(load(Some(Path::new("bad.toml")), &Overrides::default()).is_err());
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn the_database_comes_from_its_address_and_is_printed_without_its_password() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("KHO_DATABASE_URL", "postgres://kho:bi-mat@db.tinh:5432/kho");
            jail.set_env("KHO_INITIAL_ADMIN_PASSWORD", "mat-khau-dau");
            let c = load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert!(matches!(c.database(), Ok(kho_service::Database::Postgres { .. })));
            let shown = serde_json::to_string(&c.printable()).map_err(|e| e.to_string())?;
            assert!(shown.contains("postgres://kho:***@db.tinh:5432/kho"), "{shown}");
            assert!(!shown.contains("bi-mat") && !shown.contains("mat-khau-dau"), "{shown}");
            jail.set_env("KHO_DATABASE_URL", "mongodb://db/kho");
            let err = load(None, &Overrides::default()).map(|_| ()).unwrap_err().to_string();
            assert!(err.contains("database_url") && err.contains("postgres://"), "{err}");
            Ok(())
        });
    }
}
