//! A real PostgreSQL server for tests, started in a temporary folder and stopped when dropped:
//! no shared server, no leftovers, and a missing PostgreSQL fails the test with how to install
//! it rather than skipping it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TempPostgres {
    child: Child,
    port: u16,
    bin: PathBuf,
    root: bool,
    // Kept until drop: the cluster's files.
    dir: tempfile::TempDir,
    next_db: std::sync::atomic::AtomicU32,
}

/// PostgreSQL's server programs: `KHO_PG_BIN`, else the newest Debian install, else the PATH.
fn bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("KHO_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, p)| p.join("initdb").exists())
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Some(dir);
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.join("initdb").exists())
}

/// PostgreSQL refuses to run as root: as root, its programs run as the `postgres` account.
fn command(bin: &Path, program: &str, as_postgres: bool) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(program));
        c
    } else {
        Command::new(bin.join(program))
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

impl TempPostgres {
    /// Start a fresh server; panics (failing the test) when PostgreSQL is not installed.
    pub fn start() -> TempPostgres {
        let bin = bin_dir().expect(
            "PostgreSQL's server programs (initdb, postgres) were not found: install Debian's `postgresql` \
             package, or set KHO_PG_BIN to the folder holding them",
        );
        let root = is_root();
        let dir = tempfile::Builder::new().prefix("kho-pg-").tempdir().expect("a temporary folder");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("the cluster folder");
        if root {
            let owned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(owned, "could not give the test cluster's folder to the postgres account");
        }
        let init = command(&bin, "initdb", root)
            .arg("-D")
            .arg(&data)
            .args(["-U", "kho", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"])
            .stdout(Stdio::null())
            .output()
            .expect("initdb runs");
        assert!(init.status.success(), "initdb failed: {}", String::from_utf8_lossy(&init.stderr));
        let port =
            TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port");
        let child = spawn(&bin, root, dir.path(), port);
        TempPostgres { child, port, bin, root, dir, next_db: Default::default() }
    }

    /// The server's own process (not the `runuser` that started it as root), for a test
    /// harness that must stop a server it keeps in a static, which is never dropped.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.dir.path().join("data").join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// Stop the server (its sessions end), keeping its data and port: a database outage.
    pub fn stop(&mut self) {
        shut_down(&mut self.child, self.dir.path());
    }

    /// Start the server again after [`TempPostgres::stop`], on the same data and port.
    pub fn start_again(&mut self) {
        self.child = spawn(&self.bin, self.root, self.dir.path(), self.port);
    }

    /// The address of the server's default database.
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    pub fn url_of(&self, database: &str) -> String {
        format!("postgres://kho@127.0.0.1:{}/{database}", self.port)
    }

    /// A new, empty database on this server, for one test.
    pub async fn database(&self) -> String {
        use sqlx::Connection;
        let n = self.next_db.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("kho_test_{n}");
        let deadline = Instant::now() + Duration::from_secs(30);
        // The port opens a moment before the server accepts sessions.
        let mut conn = loop {
            match sqlx::PgConnection::connect(&self.url()).await {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "waiting for PostgreSQL");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot connect to the test PostgreSQL: {e}"),
            }
        };
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("the test database is created");
        self.url_of(&name)
    }
}

/// Start the server on the cluster in `dir`, and wait until it listens.
fn spawn(bin: &Path, root: bool, dir: &Path, port: u16) -> Child {
    // Durability is not under test here: without fsync the server is fast on a busy machine.
    let child = command(bin, "postgres", root)
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
        .args(["-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200"])
        .arg("-k")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("postgres starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "PostgreSQL did not start within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// SIGINT is PostgreSQL's fast shutdown: it ends its sessions and its own processes, which a
/// plain kill of the postmaster would leave behind. The signal goes to the postmaster itself
/// (its pid is the first line of `postmaster.pid`): as root, `child` is `runuser`, which does
/// not pass it on.
fn shut_down(child: &mut Child, dir: &Path) {
    let pid = std::fs::read_to_string(dir.join("data").join("postmaster.pid"))
        .ok()
        .and_then(|t| t.lines().next().map(str::to_string))
        .unwrap_or_else(|| child.id().to_string());
    let _ = Command::new("kill").args(["-INT", &pid]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        shut_down(&mut self.child, self.dir.path());
    }
}
