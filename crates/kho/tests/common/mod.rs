//! A real `kho serve` process on a free port with its own data folder, and a small HTTP client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

pub fn kho_bin() -> &'static str {
    env!("CARGO_BIN_EXE_kho")
}

pub struct Server {
    pub child: Child,
    pub base: String,
    pub dir: tempfile::TempDir,
    pub stdout: Vec<String>,
}

impl Server {
    pub fn start(demo: bool) -> Server {
        Self::start_with(demo, &[])
    }

    /// A server on the embedded backends in every test run (see [`pin_embedded`]).
    pub fn embedded(demo: bool) -> Server {
        let dir = tempfile::tempdir().unwrap();
        pin_embedded(&dir.path().join("data"));
        Self::start_in(dir, demo, &[])
    }

    pub fn start_with(demo: bool, env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, demo, env)
    }

    pub fn start_in(dir: tempfile::TempDir, demo: bool, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(kho_bin());
        cmd.arg("serve").arg("--listen").arg("127.0.0.1:0").arg("--data-dir").arg(dir.path().join("data"));
        for (k, v) in backend_env(&dir.path().join("data")) {
            cmd.env(k, v);
        }
        if demo {
            cmd.arg("--demo");
        }
        // Tests call the API from one address far faster than any visitor; the test of the
        // limit itself sets one.
        cmd.env("KHO_INITIAL_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("KHO_LOG", "warn")
            .env("KHO_ANONYMOUS_API_PER_MINUTE", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start kho serve");
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut stdout = Vec::new();
        let mut base = None;
        while base.is_none() {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                panic!("kho serve exited before listening: {stdout:?}");
            }
            if let Some(rest) = line.split("listening on ").nth(1) {
                base = rest.split_whitespace().next().map(str::to_string);
            }
            stdout.push(line);
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in reader.lines() {});
        Server { child, base: base.unwrap(), dir, stdout }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base)
    }

    pub async fn admin(&self) -> Client {
        let c = self.client();
        c.sign_in("admin", ADMIN_PASSWORD).await;
        c
    }

    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client with its own cookie jar, optional bearer token and CSRF header.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
    pub csrf: Option<String>,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body.get("code").and_then(Value::as_str).unwrap_or("")
    }
}

impl Client {
    pub fn new(base: &str) -> Client {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Client { http, base: base.to_string(), token: None, csrf: None }
    }

    pub fn with_token(base: &str, token: &str) -> Client {
        let mut c = Client::new(base);
        c.token = Some(token.to_string());
        c
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>, headers: &[(&str, &str)]) -> Resp {
        self.send_request(method, path, headers, |req| match body {
            Some(b) => req.json(&b),
            None => req,
        })
        .await
    }

    /// POST a file as the raw body (kho tells the format from the bytes).
    #[allow(dead_code)] // not every test binary uploads files
    pub async fn post_file(&self, path: &str, file: Vec<u8>) -> Resp {
        self.send_request(Method::POST, path, &[], |req| req.header("content-type", "text/csv").body(file)).await
    }

    pub async fn send_request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        with_body: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Resp {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(c) = &self.csrf {
            req = req.header("X-CSRF-Token", c);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = with_body(req).send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, headers, body, text }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(body), &[]).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PUT, path, Some(body), &[]).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, None, &[]).await
    }

    /// Sign in through the JSON API; keeps the session cookie and CSRF token.
    pub async fn sign_in(&self, username: &str, password: &str) -> Resp {
        self.post("/api/v1/auth/sign-in", json!({"username": username, "password": password})).await
    }

    pub async fn signed_in(base: &str, username: &str, password: &str) -> Client {
        let mut c = Client::new(base);
        let r = c.sign_in(username, password).await;
        assert_eq!(r.status, StatusCode::OK, "sign in {username}: {}", r.text);
        c.csrf = r.body["csrf_token"].as_str().map(str::to_string);
        c
    }

    /// Submit an HTML form as a browser would, with the page's CSRF token.
    pub async fn form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(format!("{}{}", self.base, path)).form(fields).send().await.expect("form post")
    }

    pub async fn page(&self, path: &str) -> (StatusCode, String) {
        let r = self.http.get(format!("{}{}", self.base, path)).send().await.expect("page");
        (r.status(), r.text().await.unwrap_or_default())
    }
}

/// The value of `<input type="hidden" name="_csrf" value="…">` in a page.
pub fn csrf_of(html: &str) -> String {
    html.split("name=\"_csrf\" value=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or("").to_string()
}

pub fn dataset(slug: &str, level: &str) -> Value {
    json!({
        "slug": slug,
        "title": format!("Bộ dữ liệu {slug}"),
        "access_level": level,
        "frequency": "annual",
        "tags": ["thử nghiệm"],
        "resources": [{
            "name": "bang-chinh",
            "schema": {"fields": [
                {"name": "ma_xa", "dictionaryTerm": "commune_code"},
                {"name": "so_luong", "type": "integer", "constraints": {"minimum": 0}}
            ], "primaryKey": "ma_xa"}
        }]
    })
}

pub fn db_path(dir: &Path) -> PathBuf {
    dir.join("kho.db")
}

/// Run the `kho` command on a data folder (with the test administrator's password).
pub fn kho_cli(data: &Path, args: &[&str]) -> std::process::Output {
    kho_cli_with(data, args, &[])
}

/// [`kho_cli`] with more environment variables (another database, a bucket).
pub fn kho_cli_with(data: &Path, args: &[&str], env: &[(&'static str, String)]) -> std::process::Output {
    let mut cmd = Command::new(kho_bin());
    cmd.args(args).arg("--data-dir").arg(data).env("KHO_LOG", "warn").env("KHO_INITIAL_ADMIN_PASSWORD", ADMIN_PASSWORD);
    for (k, v) in backend_env(data) {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run kho")
}

/// Run a statement in DuckDB (PyPI `duckdb`), the peer kho's Parquet versions are read with;
/// the first row of its answer, as JSON.
#[allow(dead_code)] // not every test binary reads with DuckDB
pub fn duckdb(sql: &str) -> Value {
    let script = "import duckdb, json, sys\n\
                  r = duckdb.sql(sys.argv[1])\n\
                  print(json.dumps(list(r.fetchall()[0]) if r is not None else None))";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(sql)
        .output()
        .expect("python3 with duckdb (pip install duckdb)");
    assert!(out.status.success(), "duckdb failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("duckdb's answer as JSON")
}

/// Upload a file to a table (not yet published).
#[allow(dead_code)] // not every test binary uploads files
pub async fn upload_file(c: &Client, dataset: &str, resource: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let r = c.post_file(&format!("/api/v1/datasets/{dataset}/resources/{resource}/uploads?file_name=data"), body).await;
    (r.status, r.body)
}

/// Upload CSV text to a table and publish it (it must be valid).
#[allow(dead_code)]
pub async fn publish_csv(c: &Client, dataset: &str, resource: &str, csv: String) -> Value {
    publish_file(c, dataset, resource, csv.into_bytes()).await
}

/// Upload a file to a table and publish it as the whole table (it must be valid; rows of the
/// table not in it are removed, as the steward confirms); the new version.
#[allow(dead_code)]
pub async fn publish_file(c: &Client, dataset: &str, resource: &str, body: Vec<u8>) -> Value {
    let (status, u) = upload_file(c, dataset, resource, body).await;
    assert_eq!(status, StatusCode::CREATED, "{u}");
    assert_eq!(u["invalid_rows"], 0, "{u}");
    let body = json!({"mode": "replace", "confirm_removal": true});
    let r = c.post(&format!("/api/v1/uploads/{}/publish", u["id"].as_str().unwrap()), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body
}

/// An S3-compatible server on a free port, stopped when dropped.
pub struct S3Server {
    child: Child,
    pub endpoint: String,
}

impl S3Server {
    pub fn start() -> S3Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server, an S3-compatible server (pip install 'moto[server]')");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the S3 server did not start within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        S3Server { child, endpoint: format!("http://127.0.0.1:{port}") }
    }

    pub async fn bucket(&self, name: &str) {
        let r = reqwest::Client::new().put(format!("{}/{name}", self.endpoint)).send().await.unwrap();
        assert!(r.status().is_success(), "creating the bucket: {}", r.status());
    }

    /// The keys in a bucket under a prefix.
    pub async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let url = format!("{}/{bucket}?list-type=2&prefix={prefix}", self.endpoint);
        let xml = reqwest::get(url).await.unwrap().text().await.unwrap();
        xml.split("<Key>").skip(1).filter_map(|k| k.split("</Key>").next()).map(str::to_string).collect()
    }

    pub fn env(&self, url: &str) -> Vec<(&'static str, String)> {
        vec![
            ("KHO_OBJECT_STORE_URL", url.to_string()),
            ("KHO_S3_ENDPOINT", self.endpoint.clone()),
            ("KHO_S3_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "kho-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "kho-test-secret".into()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real nginx in front of kho, as a data center runs it: it connects to kho from 127.0.0.2,
/// appends the address it received each request from to `X-Forwarded-For`, and spreads requests
/// over several nodes in turn (round robin, no sticky sessions), logging which one answered.
pub struct Nginx {
    child: Child,
    pub base: String,
    dir: tempfile::TempDir,
}

impl Nginx {
    pub fn start(nodes: &[&str]) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let d = dir.path().display();
        let servers: String =
            nodes.iter().map(|n| format!("  server {};\n", n.trim_start_matches("http://"))).collect();
        let conf = format!(
            "user root;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n log_format node '$request_method $uri $status $upstream_addr';\n\
             access_log {d}/access.log node;\n client_max_body_size 100m;\n\
             client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
             upstream kho {{\n{servers} }}\n\
             server {{\n  listen 127.0.0.1:{port};\n  location / {{\n   proxy_pass http://kho;\n\
             proxy_bind 127.0.0.2;\n   proxy_set_header Host $host;\n\
             proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n  }}\n }}\n}}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-g")
            .arg("daemon off;")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx must be installed for this test (Debian: apt-get install nginx-light)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx { child, base: format!("http://127.0.0.1:{port}"), dir }
    }

    /// Each request nginx passed on, as "METHOD /path STATUS node-address".
    pub fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Nginx {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // TERM lets the master stop its workers; KILL would leave them running.
        // SAFETY: signalling a child process this test started and still owns.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// The backends the integration tests run kho on. By default the embedded ones (SQLite and the
/// local folder, in each test's data folder). With `KHO_TEST_BACKENDS=postgres+s3` every data
/// folder a test uses — by its server or its commands, whichever comes first — gets a database
/// of its own on one PostgreSQL server and a prefix of its own in one bucket of one S3 server,
/// both started for the test binary and stopped when it exits.
pub fn backend_env(data: &Path) -> Vec<(&'static str, String)> {
    use std::sync::OnceLock;
    static CLUSTER: OnceLock<Option<(kho_meta_postgres::testing::TempPostgres, S3Server)>> = OnceLock::new();
    let cluster = CLUSTER.get_or_init(|| match std::env::var("KHO_TEST_BACKENDS").as_deref() {
        Ok("postgres+s3") => {
            let pg = kho_meta_postgres::testing::TempPostgres::start();
            let s3 = S3Server::start();
            create_bucket(&s3.endpoint, "kho-tests");
            // Statics are never dropped: stop both servers when the test binary exits.
            CLUSTER_PIDS[0].store(pg.postmaster_pid().unwrap_or(0), std::sync::atomic::Ordering::SeqCst);
            CLUSTER_PIDS[1].store(s3.child.id(), std::sync::atomic::Ordering::SeqCst);
            // SAFETY: registering a plain function that captures nothing.
            #[allow(unsafe_code)]
            unsafe {
                libc::atexit(stop_cluster)
            };
            Some((pg, s3))
        }
        Ok("") | Err(_) => None,
        Ok(other) => panic!("KHO_TEST_BACKENDS={other}: expected postgres+s3 (or nothing, for the embedded default)"),
    });
    let Some((pg, s3)) = cluster else { return Vec::new() };
    let mut assigned = assigned().lock().unwrap();
    let n = assigned.len();
    assigned
        .entry(data.to_path_buf())
        .or_insert_with(|| {
            let database = format!("kho_node_{n}");
            let created = Command::new("psql")
                .args([&pg.url(), "-q", "-c", &format!("CREATE DATABASE {database}")])
                .output()
                .expect("psql, PostgreSQL's client");
            assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
            let mut env = s3.env(&format!("s3://kho-tests/node-{n}"));
            env.push(("KHO_DATABASE_URL", pg.url_of(&database)));
            // Many servers share one PostgreSQL server in a test run.
            env.push(("KHO_DATABASE_CONNECTIONS", "4".into()));
            env
        })
        .clone()
}

/// Whether the tests run kho on PostgreSQL and S3 (see [`backend_env`]).
pub fn on_cluster_backends() -> bool {
    std::env::var("KHO_TEST_BACKENDS").is_ok_and(|b| !b.is_empty())
}

/// The PostgreSQL postmaster and the S3 server shared by a test binary's servers.
static CLUSTER_PIDS: [std::sync::atomic::AtomicU32; 2] =
    [std::sync::atomic::AtomicU32::new(0), std::sync::atomic::AtomicU32::new(0)];

extern "C" fn stop_cluster() {
    // SIGINT is PostgreSQL's fast shutdown; the S3 server just stops.
    for (pid, signal) in CLUSTER_PIDS.iter().zip([libc::SIGINT, libc::SIGTERM]) {
        let pid = pid.load(std::sync::atomic::Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: signalling processes this test binary started and still owns.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(pid as i32, signal)
            };
        }
    }
}

/// Create a bucket without an async runtime (the backends are chosen from synchronous code).
fn create_bucket(endpoint: &str, bucket: &str) {
    use std::io::{Read, Write};
    let host = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(stream, "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "creating the bucket: {answer}");
}

type Assigned = std::sync::Mutex<std::collections::HashMap<PathBuf, Vec<(&'static str, String)>>>;

/// The backends each data folder was given (see [`backend_env`]).
fn assigned() -> &'static Assigned {
    static ASSIGNED: std::sync::OnceLock<Assigned> = std::sync::OnceLock::new();
    ASSIGNED.get_or_init(Default::default)
}

/// Keep the kho on `data` on the embedded backends whatever `KHO_TEST_BACKENDS` says: for the
/// tests of the embedded layout itself (the SQLite file, the objects folder).
pub fn pin_embedded(data: &Path) {
    assigned().lock().unwrap().entry(data.to_path_buf()).or_default();
}

/// Run one statement on the metadata database of the kho on `data`, SQLite or PostgreSQL: for
/// tests that put the store in a state kho itself never would.
pub async fn store_sql(data: &Path, sql: &str) {
    let env = backend_env(data);
    match env.iter().find(|(k, _)| *k == "KHO_DATABASE_URL") {
        Some((_, url)) => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&pool).await.unwrap();
        }
        None => {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db_path(data).display())).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&pool).await.unwrap();
        }
    }
}
