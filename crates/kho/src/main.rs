//! The `kho` command: the server and the operator's tools.

mod config;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use kho_core::model::{AgencyKind, NewAgency, Role};
use kho_service::users::{NewToken, NewUser, UserChanges};
use kho_service::{Ctx, Kho, ServiceConfig};

use crate::config::{Config, Overrides};

#[derive(Parser)]
#[command(name = "kho", version, about = "kho — the provincial data platform (kho dữ liệu dùng chung)")]
struct Cli {
    /// Configuration file (TOML). Default: $KHO_CONFIG, else ./kho.toml if present.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Data folder (metadata database and data files). Default: ./kho-data.
    #[arg(long, global = true, env = "KHO_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// GSO code of the province this instance serves. Default: 14 (Sơn La).
    #[arg(long, global = true, env = "KHO_PROVINCE_CODE")]
    province: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server (creates the data folder and the first administrator on first start).
    Serve {
        /// Address to listen on. Default: 127.0.0.1:8080.
        #[arg(long, env = "KHO_LISTEN")]
        listen: Option<String>,
        /// Load demo content (departments, users, datasets) before serving.
        #[arg(long)]
        demo: bool,
    },
    /// Demo content.
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
    /// Manage user accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage datasets.
    Dataset {
        #[command(subcommand)]
        command: DatasetCommand,
    },
    /// Manage agencies.
    Agency {
        #[command(subcommand)]
        command: AgencyCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Check a CSV file against a dataset table's schema without storing it; exit status 1 when
    /// it has problems.
    Check {
        /// The CSV file (UTF-8 or UTF-16; the delimiter is detected).
        file: PathBuf,
        /// Dataset slug or id.
        #[arg(long)]
        dataset: String,
        /// Table (resource) name; default: the dataset's only table.
        #[arg(long)]
        resource: Option<String>,
        /// Also write every problem to this CSV file.
        #[arg(long)]
        report: Option<PathBuf>,
        /// For spreadsheets: the sheet (default: the first).
        #[arg(long)]
        sheet: Option<String>,
        /// For spreadsheets: the 1-based header row (default: the first non-empty).
        #[arg(long)]
        header_row: Option<u32>,
    },
    /// Load a CSV file into a dataset table: check it, and publish it as the next version.
    Import {
        file: PathBuf,
        /// Dataset slug or id.
        #[arg(long)]
        dataset: String,
        /// Table (resource) name; default: the dataset's only table.
        #[arg(long)]
        resource: Option<String>,
        /// Publish the valid rows even if some rows are invalid (those go to quarantine).
        #[arg(long)]
        skip_invalid: bool,
        /// For spreadsheets: the sheet (default: the first).
        #[arg(long)]
        sheet: Option<String>,
        /// For spreadsheets: the 1-based header row (default: found in the sheet).
        #[arg(long)]
        header_row: Option<u32>,
        /// How the file changes the table: replace (the file is the whole table), append (its
        /// rows are added) or upsert (by primary key: new keys added, known keys updated).
        #[arg(long, default_value = "replace", value_parser = ["replace", "append", "upsert"])]
        mode: String,
        /// Allow the publication to remove rows from the table.
        #[arg(long)]
        confirm_removal: bool,
    },
    /// Print the effective configuration.
    Config,
    /// Write an archive of this instance (metadata and objects, with the size and SHA-256 of
    /// every file) into a new folder; safe while the server runs. `kho backup verify DIR`
    /// checks one without restoring it.
    #[command(args_conflicts_with_subcommands = true)]
    Backup {
        #[command(subcommand)]
        command: Option<BackupCommand>,
        /// The archive folder (new, or empty).
        dir: Option<PathBuf>,
    },
    /// Bring an archive into this instance's database and object store, which must be empty;
    /// then check the row counts, the audit chain and every version's files.
    Restore {
        /// The archive folder written by `kho backup`.
        dir: PathBuf,
    },
    /// Copy this instance to other backends (PostgreSQL, an S3-compatible bucket) and check the
    /// copy: row counts, the audit chain, every version's files. Stop the server first.
    Migrate {
        /// The target database: postgres://user:password@host:5432/kho.
        #[arg(long)]
        to: String,
        /// The target object store: s3://bucket/prefix (reached with this configuration's
        /// s3_endpoint, s3_region and credentials, or the AWS_* variables).
        #[arg(long)]
        objects: String,
    },
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Check an archive without restoring it; exit status 1 naming each problem.
    Verify {
        /// The archive folder.
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum DemoCommand {
    /// Load demo departments, users and datasets (idempotent).
    Load,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user. Without --password, a random one is generated and printed once.
    Create(UserCreate),
    /// List users.
    List,
    /// Set a user's password (generated if --password is not given).
    SetPassword {
        username: String,
        #[arg(long)]
        password: Option<String>,
    },
    /// Lock a user out (their sessions end).
    Deactivate { username: String },
    /// Let a locked user sign in again.
    Activate { username: String },
}

#[derive(Args)]
struct UserCreate {
    #[arg(long)]
    username: String,
    #[arg(long)]
    display_name: Option<String>,
    #[arg(long)]
    email: Option<String>,
    /// Agency code (e.g. so-y-te). Default: the data center.
    #[arg(long)]
    agency: Option<String>,
    /// admin, steward or viewer.
    #[arg(long, default_value = "steward")]
    role: String,
    /// Shorthand for --role admin.
    #[arg(long)]
    admin: bool,
    #[arg(long)]
    password: Option<String>,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token for a user; the secret is printed once.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
        /// The token's role (at most the user's).
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        expires_in_days: Option<i64>,
    },
    /// List tokens.
    List,
    /// Revoke a token by id.
    Revoke { id: i64 },
}

#[derive(Subcommand)]
enum DatasetCommand {
    /// Create a dataset from a JSON description (the body of POST /api/v1/datasets, with an
    /// `owner_agency_code` instead of an id if you like), or several from a JSON array.
    Create {
        /// The JSON file.
        #[arg(long)]
        file: PathBuf,
    },
    /// List datasets.
    List,
}

#[derive(Subcommand)]
enum AgencyCommand {
    /// List agencies as a tree.
    List,
    /// Create an agency.
    Create {
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        name_en: Option<String>,
        /// province_committee, department, data_center, commune_committee, other.
        #[arg(long, default_value = "department")]
        kind: String,
        /// Parent agency code. Default: the province People's Committee.
        #[arg(long)]
        parent: Option<String>,
        /// GSO code of the administrative unit it governs.
        #[arg(long)]
        admin_unit: Option<String>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain; exit with status 1 and name the first broken entry if any.
    Verify,
    /// Show the newest entries.
    Tail {
        #[arg(short = 'n', long, default_value_t = 20)]
        count: i64,
    },
}

/// An exclusive lock on the data folder, held while `kho serve` runs, so that a second server
/// on the same folder refuses to start instead of corrupting it.
struct DataLock {
    _file: File,
}

fn lock_data_dir(dir: &Path) -> anyhow::Result<DataLock> {
    let path = dir.join("kho.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0)?;
            writeln!(file, "{}", std::process::id())?;
            Ok(DataLock { _file: file })
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let pid = std::fs::read_to_string(&path).unwrap_or_default();
            bail!(
                "another kho server (pid {}) is already using the data folder {}; stop it first or choose another folder with --data-dir",
                pid.trim(),
                dir.display()
            )
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
    }
}

async fn open(cfg: &Config) -> anyhow::Result<Kho> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create the data folder {}", cfg.data_dir.display()))?;
    let service = ServiceConfig {
        province_code: cfg.province_code.clone(),
        session_ttl: time::Duration::hours(cfg.session_ttl_hours.max(1)),
        lockout_threshold: cfg.lockout_threshold.max(1),
        lockout_window: time::Duration::minutes(cfg.lockout_minutes.max(1)),
        upload_dir: cfg.data_dir.join("uploads"),
        query: kho_service::query::QueryLimits {
            cache_bytes: cfg.query_cache_bytes,
            memory_bytes: usize::try_from(cfg.query_memory_bytes).unwrap_or(usize::MAX),
            sql_timeout: std::time::Duration::from_secs(cfg.sql_timeout_secs.max(1)),
            sql_max_rows: cfg.sql_max_rows.max(1),
            ..Default::default()
        },
    };
    Kho::open(&cfg.database()?, &cfg.objects(), &cfg.data_dir, service).await.map_err(e)
}

/// Open and make sure the instance is initialised (reference data, agencies, first admin).
async fn ready(cfg: &Config) -> anyhow::Result<(Kho, kho_service::bootstrap::InitReport)> {
    let kho = open(cfg).await?;
    let report = kho.init(cfg.initial_admin_password.as_deref()).await.map_err(|e| anyhow::anyhow!(e.message))?;
    Ok((kho, report))
}

fn e(err: kho_core::Error) -> anyhow::Error {
    let mut msg = format!("{} ({})", err.message, err.code);
    for d in &err.details {
        msg.push_str(&format!("\n  {}: {}", d.path, d.message));
    }
    anyhow::anyhow!(msg)
}

fn print_first_admin(report: &kho_service::bootstrap::InitReport) {
    if let Some((user, password)) = &report.first_admin {
        println!("  first administrator: {user} / {password}");
        println!("  (this password is shown only once: sign in and change it at /account,");
        println!("   or set another with `kho user set-password {user}`)");
    }
}

async fn serve(cfg: Config, demo: bool) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create the data folder {}", cfg.data_dir.display()))?;
    let _lock = lock_data_dir(&cfg.data_dir)?;
    let (kho, report) = ready(&cfg).await?;
    // Bodies half-received when the server stopped are never resumed: clear them. Staged
    // uploads (checked, waiting for a decision) stay.
    let _ = std::fs::remove_dir_all(cfg.data_dir.join("uploads").join("incoming"));
    let orphans = kho.clean_orphans().await.map_err(e)?;
    if orphans > 0 {
        println!("  removed {orphans} object(s) left by an interrupted publish");
    }
    let demo_users = if demo { kho.load_demo().await.map_err(e)? } else { vec![] };
    let indexed = kho.rebuild_search().await.map_err(e)?;
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {} (is another program using it?)", cfg.listen))?;
    let addr = listener.local_addr()?;
    let province = kho
        .get_admin_unit(kho_core::model::AdminEra::Current, &cfg.province_code)
        .await
        .map(|u| u.full_name)
        .unwrap_or_default();
    println!("kho {} — {} (GSO {})", env!("CARGO_PKG_VERSION"), province, cfg.province_code);
    println!("  data folder: {}", cfg.data_dir.display());
    println!("  metadata: {}", cfg.database()?.describe());
    if let Ok(kho_service::ObjectsLocation::S3 { bucket, prefix }) =
        cfg.objects().location(&cfg.data_dir.join("objects"))
    {
        println!("  objects: s3://{bucket}/{prefix}");
    }
    println!("  search index: {indexed} dataset(s)");
    println!("  listening on http://{addr}  (ready in {} ms)", started.elapsed().as_millis());
    print_first_admin(&report);
    if !demo_users.is_empty() {
        println!("  demo users (username / password):");
        for (u, p) in &demo_users {
            println!("    {u} / {p}");
        }
    }
    if report.first_admin.is_none() && demo_users.is_empty() {
        println!("  sign in at http://{addr}/sign-in (create users with `kho user create`)");
    }
    let web = kho_web::WebConfig {
        cookie_secure: cfg.cookie_secure,
        max_body_bytes: cfg.max_body_bytes,
        trust_proxy: cfg.trust_proxy,
        trusted_proxies: cfg.proxies()?,
        public_url: cfg.public_url()?,
        max_upload_bytes: cfg.max_upload_bytes,
        upload_dir: cfg.data_dir.join("uploads").join("incoming"),
        anonymous_api_per_minute: cfg.anonymous_api_per_minute,
        feedback_per_hour: cfg.feedback_per_hour,
    };
    let app = kho_web::app(kho.clone(), web);
    every(3600, kho.clone(), |k| async move {
        if let Err(e) = k.purge_expired_sessions().await {
            tracing::warn!(error = %e.message, "could not remove expired sessions; will retry");
        }
    });
    // Changes made beside the server (the command line) reach search and the CKAN and DCAT
    // answers within a few seconds.
    every(2, kho.clone(), |k| async move {
        if let Err(e) = k.follow_changes().await {
            tracing::warn!(error = %e.message, "could not read the catalog's changes; will retry");
        }
    });
    // Views and downloads are counted in memory and written every few seconds.
    every(10, kho.clone(), |k| async move {
        if let Err(e) = k.flush_usage().await {
            tracing::warn!(error = %e.message, "could not write usage counts; will retry");
        }
    });
    kho_web::serve(listener, app, shutdown_signal()).await?;
    if let Err(e) = kho.flush_usage().await {
        eprintln!("could not write the last usage counts: {}", e.message);
    }
    println!("kho stopped");
    Ok(())
}

/// Run `task` every `seconds` in the background while the server runs.
fn every<F>(seconds: u64, kho: Kho, task: impl Fn(Kho) -> F + Send + 'static)
where
    F: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(seconds));
        loop {
            tick.tick().await;
            task(kho.clone()).await;
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Let a user sign in again, or lock them out (their sessions end).
async fn set_active(kho: &Kho, ctx: &Ctx, username: &str, active: bool) -> anyhow::Result<()> {
    let id = user_named(kho, username).await?.id;
    kho.update_user(ctx, id, UserChanges { active: Some(active), ..Default::default() }).await.map_err(e)?;
    println!("{username} {}", if active { "can sign in again" } else { "can no longer sign in" });
    Ok(())
}

/// The named table, or the dataset's only one.
async fn pick_resource(kho: &Kho, ctx: &Ctx, dataset: &str, resource: Option<String>) -> anyhow::Result<String> {
    let d = kho.get_dataset(ctx, dataset).await.map_err(e)?;
    match resource {
        Some(r) => Ok(r),
        None if d.resources.len() == 1 => Ok(d.resources[0].input.name.clone()),
        None => {
            let names: Vec<&str> = d.resources.iter().map(|r| r.input.name.as_str()).collect();
            bail!(
                "dataset '{}' has {} tables ({}); choose one with --resource",
                d.input.slug,
                names.len(),
                names.join(", ")
            )
        }
    }
}

fn parse_role(s: &str) -> anyhow::Result<Role> {
    s.parse::<Role>().map_err(e)
}

async fn user_named(kho: &Kho, username: &str) -> anyhow::Result<kho_core::model::User> {
    kho.user_by_name(&Ctx::system(), username).await.map_err(e)?.with_context(|| format!("no user named '{username}'"))
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    let listen = match &cli.command {
        Command::Serve { listen, .. } => listen.clone(),
        _ => None,
    };
    let overrides = Overrides { data_dir: cli.data_dir.clone(), listen, province_code: cli.province.clone() };
    let cfg = config::load(cli.config.as_deref(), &overrides)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KHO_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log)),
        )
        .with_writer(std::io::stderr)
        .init();
    let system = Ctx::system();
    match cli.command {
        Command::Serve { demo, .. } => serve(cfg, demo).await?,
        Command::Import { file, dataset, resource, skip_invalid, sheet, header_row, mode, confirm_removal } => {
            let opts = kho_service::SheetOptions { sheet, header_row, ..Default::default() };
            let (kho, _) = ready(&cfg).await?;
            let resource = pick_resource(&kho, &system, &dataset, resource).await?;
            let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let u = kho.stage_upload(&system, &dataset, &resource, &file, &name, &opts).await.map_err(e)?;
            println!("{}: {} rows, {} valid, {} invalid", file.display(), u.rows, u.valid_rows, u.invalid_rows);
            if u.invalid_rows > 0 && !skip_invalid {
                for p in u.report["problems"].as_array().into_iter().flatten().take(20) {
                    println!(
                        "  line {:>6}  {:<16} {:<12} {}",
                        p["row"],
                        p["column"].as_str().unwrap_or(""),
                        p["rule"].as_str().unwrap_or(""),
                        p["message_vi"].as_str().unwrap_or("")
                    );
                }
                kho.reject_upload(&system, &u.id).await.map_err(e)?;
                println!("not published: fix the file, or pass --skip-invalid to publish the valid rows only");
                return Ok(1);
            }
            let mode = kho_service::PublishMode::parse(&mode).unwrap_or_default();
            let opts = kho_service::PublishOptions { skip_invalid, mode, confirm_removal };
            let v = kho.publish_upload(&system, &u.id, opts).await.map_err(e)?;
            println!(
                "published version {} of {}/{}: {} rows ({} added, {} removed, {} changed; {} quarantined)",
                v.version, dataset, resource, v.rows, v.rows_added, v.rows_removed, v.rows_changed, v.quarantined_rows
            );
        }
        Command::Check { file, dataset, resource, report, sheet, header_row } => {
            let opts = kho_service::SheetOptions { sheet, header_row, ..Default::default() };
            let (kho, _) = ready(&cfg).await?;
            let resource = pick_resource(&kho, &system, &dataset, resource).await?;
            let r = kho.validate_upload(&system, &dataset, &resource, &file, &opts).await.map_err(e)?;
            println!(
                "{}: {} rows, {} valid, {} with problems ({} problems; encoding {}, delimiter '{}')",
                file.display(),
                r.rows,
                r.valid_rows,
                r.invalid_rows,
                r.problems_total,
                r.encoding,
                r.delimiter
            );
            // What was left out of a sheet, and why, before the problems.
            for n in &r.notes {
                println!("  * {}", n.message_vi);
            }
            for c in &r.by_rule {
                println!("  {:<16} {}", c.rule, c.count);
            }
            for p in r.problems.iter().take(20) {
                println!(
                    "  line {:>6}  {:<16} {:<12} {}",
                    p.row,
                    p.column.as_deref().unwrap_or(""),
                    p.rule,
                    p.message_vi
                );
            }
            if r.problems.len() > 20 {
                println!("  … {} more", r.problems_total - 20);
            }
            if let Some(path) = report {
                std::fs::write(&path, r.to_csv()).with_context(|| format!("cannot write {}", path.display()))?;
                println!("report written to {}", path.display());
            }
            if !r.is_valid() {
                return Ok(1);
            }
        }
        Command::Config => println!("{}", serde_json::to_string_pretty(&cfg.printable())?),
        Command::Demo { command: DemoCommand::Load } => {
            let (kho, report) = ready(&cfg).await?;
            print_first_admin(&report);
            let users = kho.load_demo().await.map_err(e)?;
            if users.is_empty() {
                println!("demo content was already loaded");
            } else {
                println!("demo content loaded; demo users (username / password):");
                for (u, p) in users {
                    println!("  {u} / {p}");
                }
            }
        }
        Command::User { command } => {
            let (kho, report) = ready(&cfg).await?;
            print_first_admin(&report);
            match command {
                UserCommand::Create(u) => {
                    let agency = match &u.agency {
                        Some(code) => kho.get_agency(code).await.map_err(e)?,
                        None => kho.get_agency(kho_service::bootstrap::DATA_CENTER_CODE).await.map_err(e)?,
                    };
                    let role = if u.admin { Role::Admin } else { parse_role(&u.role)? };
                    let generated = u.password.is_none();
                    let password = u.password.unwrap_or_else(|| kho_service::auth::random_secret(9));
                    let user = kho
                        .create_user(
                            &system,
                            NewUser {
                                display_name: u.display_name.unwrap_or_else(|| u.username.clone()),
                                username: u.username,
                                email: u.email,
                                agency_id: agency.id,
                                role,
                                password: password.clone(),
                                must_change_password: true,
                            },
                        )
                        .await
                        .map_err(e)?;
                    println!("created {} ({}, {}) in {}", user.username, user.id, user.role, agency.name);
                    if generated {
                        println!("password: {password}  (shown only once)");
                    }
                }
                UserCommand::List => {
                    let agencies = kho.list_agencies().await.map_err(e)?;
                    for u in kho.list_users(&system, None).await.map_err(e)? {
                        let agency = agencies.iter().find(|a| a.id == u.agency_id).map_or("", |a| a.code.as_str());
                        println!(
                            "{:>4}  {:<24} {:<8} {:<8} {}  {}",
                            u.id,
                            u.username,
                            u.role,
                            if u.active { "active" } else { "locked" },
                            agency,
                            u.display_name
                        );
                    }
                }
                UserCommand::SetPassword { username, password } => {
                    let id = user_named(&kho, &username).await?.id;
                    let generated = password.is_none();
                    let password = password.unwrap_or_else(|| kho_service::auth::random_secret(9));
                    kho.update_user(
                        &system,
                        id,
                        UserChanges { password: Some(password.clone()), ..Default::default() },
                    )
                    .await
                    .map_err(e)?;
                    println!("password of {username} changed; their sessions were ended");
                    if generated {
                        println!("password: {password}  (shown only once)");
                    }
                }
                UserCommand::Deactivate { username } => set_active(&kho, &system, &username, false).await?,
                UserCommand::Activate { username } => set_active(&kho, &system, &username, true).await?,
            }
        }
        Command::Token { command } => {
            let (kho, _) = ready(&cfg).await?;
            match command {
                TokenCommand::Create { user, name, role, expires_in_days } => {
                    let owner = user_named(&kho, &user).await?;
                    let role = role.as_deref().map(parse_role).transpose()?;
                    let created = kho
                        .create_token(&system, NewToken { name, role, expires_in_days, user_id: Some(owner.id) })
                        .await
                        .map_err(e)?;
                    eprintln!(
                        "token {} created for {user} ({}); the secret below is shown only once:",
                        created.token.id, created.token.role
                    );
                    if owner.must_change_password {
                        eprintln!(
                            "note: {user} still has a password set by an administrator; the token answers \
                             'password_change_required' until {user} signs in and chooses their own"
                        );
                    }
                    println!("{}", created.secret);
                }
                TokenCommand::List => {
                    for t in kho.list_tokens(&system).await.map_err(e)? {
                        let status = if t.revoked_at.is_some() {
                            "revoked"
                        } else if t.expires_at.is_some_and(|x| x <= time::OffsetDateTime::now_utc()) {
                            "expired"
                        } else {
                            "active"
                        };
                        println!(
                            "{:>4}  {:<24} {}…  user {:<4} {:<8} {}",
                            t.id, t.name, t.prefix, t.user_id, t.role, status
                        );
                    }
                }
                TokenCommand::Revoke { id } => {
                    kho.revoke_token(&system, id).await.map_err(e)?;
                    println!("token {id} revoked");
                }
            }
        }
        Command::Dataset { command } => {
            let (kho, _) = ready(&cfg).await?;
            match command {
                DatasetCommand::Create { file } => {
                    let text =
                        std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
                    let value: serde_json::Value =
                        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", file.display()))?;
                    // One description, or an array of them (a whole catalog registered at once);
                    // each is created in turn and a bad one stops the run, naming its position.
                    let many = value.is_array();
                    let items = match value {
                        serde_json::Value::Array(items) => items,
                        one => vec![one],
                    };
                    let total = items.len();
                    for (n, mut value) in items.into_iter().enumerate() {
                        let place = if many {
                            format!("dataset {} of {total} in {}", n + 1, file.display())
                        } else {
                            file.display().to_string()
                        };
                        if let Some(code) = value.as_object_mut().and_then(|o| o.remove("owner_agency_code")) {
                            let a = kho
                                .get_agency(code.as_str().unwrap_or(""))
                                .await
                                .map_err(|err| anyhow::anyhow!("{place}: {}", err.message))?;
                            value["owner_agency_id"] = serde_json::json!(a.id);
                        }
                        let mut input: kho_core::model::DatasetInput = serde_json::from_value(value)
                            .with_context(|| format!("{place} does not describe a dataset"))?;
                        let resources = std::mem::take(&mut input.resources);
                        let d = kho.create_dataset(&system, input, resources).await.map_err(|err| {
                            let details: Vec<String> =
                                err.details.iter().map(|d| format!("{}: {}", d.path, d.message)).collect();
                            anyhow::anyhow!("{place}: {} {}", err.message, details.join("; "))
                        })?;
                        if !many {
                            println!("created dataset {} ({})", d.input.slug, d.id);
                        }
                    }
                    if many {
                        println!("created {total} datasets");
                    }
                }
                DatasetCommand::List => {
                    let (list, _) = kho
                        .list_datasets(
                            &system,
                            &kho_service::catalog::DatasetQuery { limit: 1000, ..Default::default() },
                        )
                        .await
                        .map_err(e)?;
                    for d in list {
                        println!(
                            "{:<40} {:<10} rev {:<3} {}",
                            d.input.slug, d.input.access_level, d.revision, d.input.title
                        );
                    }
                }
            }
        }
        Command::Agency { command } => {
            let (kho, _) = ready(&cfg).await?;
            match command {
                AgencyCommand::List => {
                    fn print(nodes: &[kho_service::agencies::AgencyNode], depth: usize) {
                        for n in nodes {
                            println!(
                                "{}{} [{}] {}",
                                "  ".repeat(depth),
                                n.agency.name,
                                n.agency.code,
                                n.agency.admin_unit_code.as_deref().unwrap_or("")
                            );
                            print(&n.children, depth + 1);
                        }
                    }
                    print(&kho.agency_tree().await.map_err(e)?, 0);
                }
                AgencyCommand::Create { code, name, name_en, kind, parent, admin_unit } => {
                    let kind = kind.parse::<AgencyKind>().map_err(e)?;
                    let parent = kho
                        .get_agency(parent.as_deref().unwrap_or(kho_service::bootstrap::PROVINCE_COMMITTEE_CODE))
                        .await
                        .map_err(e)?;
                    let a = kho
                        .create_agency(
                            &system,
                            NewAgency {
                                code,
                                name,
                                name_en,
                                kind,
                                parent_id: Some(parent.id),
                                admin_unit_code: admin_unit,
                            },
                        )
                        .await
                        .map_err(e)?;
                    println!("created agency {} [{}] under {}", a.name, a.code, parent.name);
                }
            }
        }
        Command::Backup { command: Some(BackupCommand::Verify { dir }), .. } => {
            let (manifest, report) = kho_service::backup::verify_archive(&dir).await.map_err(e)?;
            print_archive("archive", &report);
            let made = manifest.created_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
            println!("  made {made} by kho {}", manifest.kho_version);
            if !report.problems.is_empty() {
                return Ok(1);
            }
            println!("archive intact");
        }
        Command::Backup { command: None, dir } => {
            let Some(dir) = dir else { bail!("name the archive folder: kho backup DIR (or kho backup verify DIR)") };
            let kho = open(&cfg).await?;
            let report = kho.backup(&dir).await.map_err(e)?;
            print_archive(&format!("archive written to {}", dir.display()), &report);
            println!("  check it any time with: kho backup verify {}", dir.display());
            if !report.problems.is_empty() {
                return Ok(1);
            }
        }
        Command::Restore { dir } => {
            // An embedded target is written while no server uses it.
            std::fs::create_dir_all(&cfg.data_dir)
                .with_context(|| format!("cannot create the data folder {}", cfg.data_dir.display()))?;
            let _lock = match cfg.database()? {
                kho_service::Database::Sqlite(_) => Some(lock_data_dir(&cfg.data_dir)?),
                kho_service::Database::Postgres { .. } => None,
            };
            let kho = open(&cfg).await?;
            let report = kho.restore(&dir).await.map_err(e)?;
            print_archive(&format!("restored into {}", cfg.database()?.describe()), &report);
            if !report.problems.is_empty() {
                return Ok(1);
            }
        }
        Command::Migrate { to, objects } => {
            // Nothing may be written to the source after it is read.
            let _lock = lock_data_dir(&cfg.data_dir)?;
            let source = open(&cfg).await?;
            let target_db = kho_service::Database::from_config(Some(&to), &cfg.data_dir, cfg.database_connections)
                .map_err(|err| anyhow::anyhow!("--to: {}", err.message))?;
            let mut target_objects = cfg.objects();
            target_objects.url = Some(objects.clone());
            target_objects
                .location(&cfg.data_dir.join("objects"))
                .map_err(|err| anyhow::anyhow!("--objects: {}", err.message))?;
            let target =
                Kho::open(&target_db, &target_objects, &cfg.data_dir, source.config().clone()).await.map_err(e)?;
            let scratch = cfg.data_dir.join(format!("migrate-{}", std::process::id()));
            let report = source.migrate_to(&target, &scratch).await.map_err(e)?;
            print_archive(&format!("copied to {} and {objects}", target_db.describe()), &report);
            if !report.problems.is_empty() {
                return Ok(1);
            }
            println!("  to run on them, set in kho.toml (or the KHO_* variables):");
            println!("    database_url = the address given to --to");
            println!("    object_store_url = \"{objects}\"");
        }
        Command::Audit { command } => {
            let kho = open(&cfg).await?;
            match command {
                AuditCommand::Verify => {
                    let r = kho.verify_audit().await.map_err(e)?;
                    match r.broken_at {
                        None => println!("audit log intact: {} entries verified", r.entries_checked),
                        Some(seq) => {
                            println!(
                                "audit log BROKEN at entry {seq}: {} ({} entries before it verified)",
                                r.reason.unwrap_or_default(),
                                r.entries_checked
                            );
                            return Ok(1);
                        }
                    }
                }
                AuditCommand::Tail { count } => {
                    let filter = kho_service::audit::AuditFilter { limit: count.clamp(1, 500), ..Default::default() };
                    for r in kho.list_audit(&system, filter).await.map_err(e)?.into_iter().rev() {
                        println!(
                            "{:>6} {} {:<32} {:<24} {}:{} {} {}",
                            r.seq,
                            r.at,
                            r.actor,
                            r.action,
                            r.object_type,
                            r.object_id,
                            r.outcome,
                            r.ip.unwrap_or_default()
                        );
                    }
                }
            }
        }
    }
    Ok(0)
}

/// What an archive holds or a restore brought, and each problem found.
fn print_archive(title: &str, r: &kho_service::backup::ArchiveReport) {
    let rows: u64 = r.tables.values().sum();
    println!("{title}");
    println!("  metadata: {} tables, {rows} rows", r.tables.len());
    println!("  objects: {} files, {:.1} MB", r.objects, r.object_bytes as f64 / 1e6);
    if r.problems.iter().any(|p| p.starts_with("audit log")) {
        println!("  audit log: {} entries verified before the break named below", r.audit_entries);
    } else {
        println!("  audit log: {} entries, chain verified", r.audit_entries);
    }
    for p in &r.problems {
        println!("  PROBLEM: {p}");
    }
}

/// `kho import` is a batch job that stages a large file: chunk buffers are allocated on some
/// threads and freed on others, and glibc's default of up to eight arenas per core keeps freed
/// memory in each thread's arena, tens of megabytes that nothing uses. Two arenas are enough for
/// its few busy threads. The server keeps the default: many request threads allocating at once
/// would queue on fewer arenas.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_allocator_for_batch() {
    // SAFETY: mallopt only sets an allocator parameter; it is called before any other thread
    // exists, and M_ARENA_MAX takes any positive count.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator_for_batch() {}

fn main() {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Import { .. }) {
        tune_allocator_for_batch();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            std::process::exit(2);
        }
    };
    runtime.block_on(main_async(cli));
}

async fn main_async(cli: Cli) {
    match run(cli).await {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(2);
        }
    }
}
