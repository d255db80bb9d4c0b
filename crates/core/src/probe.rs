//! Database probes of the SanityCheck step: connect to a cluster's writer and
//! check that the restored data is usable before the old cluster is deleted.
//!
//! One [`Plan`] of probes runs over one connection ([`Login`]), in order:
//! - `connectivity`: connect (TLS as configured), log in, `SELECT 1`; the
//!   session is then made read-only, so no probe can change the data;
//! - `query`: the configured SQL must return at least one row;
//! - `minRows(<table>)`: `SELECT COUNT(*)` of each listed table must reach its minimum;
//! - `freshness(<table>.<column>)`: the newest value of the column must be at
//!   most the RPO older than the recovery point (the source snapshot's time).
//!
//! Every probe yields one [`ProbeResult`] `{probe, ok, detail}`; when the
//! connection fails the other probes are reported as not run. A failed
//! probe says why ([`ProbeFailure`]): no connection could be opened
//! (network, TLS, no answer in time: it may work a moment later), or the
//! server answered and the answer was wrong or a refusal. Each probe is
//! bounded by the login's timeout. Table and column names are validated
//! identifiers ([`TableName`]), quoted for the engine, never free SQL.
//!
//! Engines: aurora-postgresql (`tokio-postgres`) and aurora-mysql
//! (`mysql_async`). TLS ([`TlsMode`]) uses rustls with the ring provider
//! the AWS SDK already builds.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::ids::InvalidValue;

fn invalid(rule: impl Into<String>, value: &str) -> InvalidValue {
    InvalidValue { rule: rule.into(), value: value.chars().take(80).collect() }
}

/// Which wire protocol a cluster speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbEngine {
    Postgres,
    Mysql,
}

impl DbEngine {
    /// From an RDS engine name (`aurora-postgresql`, `aurora-mysql`, ...).
    pub fn from_rds(engine: &str) -> Option<Self> {
        match engine {
            "aurora-postgresql" | "postgres" | "postgresql" => Some(Self::Postgres),
            "aurora-mysql" | "aurora" | "mysql" | "mariadb" => Some(Self::Mysql),
            _ => None,
        }
    }

    fn quote(self, ident: &str) -> String {
        match self {
            Self::Postgres => format!("\"{ident}\""),
            Self::Mysql => format!("`{ident}`"),
        }
    }
}

/// A `[schema.]table` name: each part 1–63 ASCII letters, digits, `_` or
/// `$`, not starting with a digit. Quoted per engine when used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName(Vec<String>);

fn check_ident(part: &str, whole: &str) -> Result<(), InvalidValue> {
    let ok = !part.is_empty()
        && part.len() <= 63
        && !part.starts_with(|c: char| c.is_ascii_digit())
        && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "must be [schema.]table names of ASCII letters, digits, _ or $ (not starting with a digit)",
            whole,
        ))
    }
}

impl TableName {
    fn sql(&self, engine: DbEngine) -> String {
        self.0.iter().map(|p| engine.quote(p)).collect::<Vec<_>>().join(".")
    }
}

impl FromStr for TableName {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<String> = s.trim().split('.').map(str::to_owned).collect();
        if parts.len() > 2 {
            return Err(invalid("a table is `table` or `schema.table`", s));
        }
        for p in &parts {
            check_ident(p, s)?;
        }
        Ok(Self(parts))
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// `table=count`: the table must have at least `count` rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinRows {
    pub table: TableName,
    pub min: u64,
}

impl FromStr for MinRows {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (table, count) =
            s.split_once('=').ok_or_else(|| invalid("each item is `[schema.]table=count`", s))?;
        let min = count
            .trim()
            .parse::<u64>()
            .map_err(|_| invalid("the count after `=` must be a whole number", s))?;
        Ok(Self { table: table.parse()?, min })
    }
}

/// `[schema.]table.column`: the timestamp column the freshness probe reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreshnessColumn {
    pub table: TableName,
    pub column: String,
}

impl FromStr for FreshnessColumn {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (table, column) =
            s.rsplit_once('.').ok_or_else(|| invalid("must be `[schema.]table.column`", s))?;
        check_ident(column, s)?;
        Ok(Self { table: table.parse()?, column: column.to_owned() })
    }
}

impl fmt::Display for FreshnessColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.table, self.column)
    }
}

/// `host:port` (`[v6]:port` for IPv6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl FromStr for HostPort {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rule = "must be HOST:PORT, e.g. 127.0.0.1:5432";
        let (host, port) = s.trim().rsplit_once(':').ok_or_else(|| invalid(rule, s))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| invalid(rule, s))?;
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(invalid(rule, s));
        }
        Ok(Self { host: host.to_owned(), port })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Where the probes connect for a cluster: the seam between the cluster RDS
/// describes and the server the probes reach. Deployed functions use
/// [`WriterEndpoint`]; a local drill, whose emulator's endpoints are names
/// nothing answers on, points it at a local test server.
pub trait ProbeTarget: Send + Sync + fmt::Debug {
    /// The `host:port` to probe for `cluster` (the one under the existing
    /// name); `None` while the cluster has no endpoint yet.
    fn endpoint(&self, cluster: &aws_sdk_rds::types::DbCluster, engine: DbEngine) -> Option<HostPort>;
}

/// The cluster's writer endpoint and port, as `DescribeDBClusters` reports
/// them (the engine's default port when it reports none).
#[derive(Debug, Clone, Copy, Default)]
pub struct WriterEndpoint;

impl ProbeTarget for WriterEndpoint {
    fn endpoint(&self, cluster: &aws_sdk_rds::types::DbCluster, engine: DbEngine) -> Option<HostPort> {
        let host = cluster.endpoint().filter(|h| !h.is_empty())?;
        let port = cluster.port().and_then(|p| u16::try_from(p).ok()).unwrap_or(match engine {
            DbEngine::Postgres => 5432,
            DbEngine::Mysql => 3306,
        });
        Some(HostPort { host: host.to_owned(), port })
    }
}

/// Transport security of the probe connection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Plain TCP (loopback test servers of local drills and tests).
    Disable,
    /// TLS, server certificate not verified (libpq's `sslmode=require`):
    /// encrypted, but not proof against a man in the middle. The default.
    #[default]
    Require,
    /// TLS, certificate verified against the PEM bundle (e.g. the RDS CA
    /// bundle shipped with the function) and the host name checked.
    VerifyFull { ca_file: PathBuf },
}

impl TlsMode {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Require => "require",
            Self::VerifyFull { .. } => "verify-full",
        }
    }
}

/// Where and how to log in.
#[derive(Clone)]
pub struct Login {
    pub engine: DbEngine,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    /// `None`: PostgreSQL's `postgres` database; MySQL without a default schema.
    pub database: Option<String>,
    pub tls: TlsMode,
    /// Bound of the connection and of each probe.
    pub timeout: Duration,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("engine", &self.engine)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("database", &self.database)
            .field("tls", &self.tls)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The probes to run beyond connectivity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub query: Option<String>,
    pub min_rows: Vec<MinRows>,
    pub freshness: Option<FreshnessColumn>,
    /// Largest allowed age of the newest row at the recovery point.
    pub rpo: Duration,
    /// The source snapshot's time (the data the restored cluster holds).
    pub recovery_point: OffsetDateTime,
}

/// Why a probe failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeFailure {
    /// No connection could be opened: refused or reset at the network level,
    /// a TLS failure, or no answer in time. A just-renamed endpoint can do
    /// this for a while.
    Unreachable,
    /// The server answered: the data is wrong (too few rows, stale, no row)
    /// or it refused the login, the database or the query.
    Failed,
}

/// One probe's outcome, as logged and reported in a failure notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub probe: String,
    pub ok: bool,
    pub detail: String,
    /// Why it failed (`None` when it passed); not part of the report.
    #[serde(skip)]
    pub failure: Option<ProbeFailure>,
}

impl ProbeResult {
    fn new(probe: impl Into<String>, ok: bool, detail: impl Into<String>) -> Self {
        let failure = (!ok).then_some(ProbeFailure::Failed);
        Self { probe: probe.into(), ok, detail: detail.into(), failure }
    }

    fn unreachable(probe: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            probe: probe.into(),
            ok: false,
            detail: detail.into(),
            failure: Some(ProbeFailure::Unreachable),
        }
    }
}

/// Whether the probes failed only because no connection could be opened.
pub fn unreachable(results: &[ProbeResult]) -> bool {
    results.first().is_some_and(|r| r.failure == Some(ProbeFailure::Unreachable))
}

/// Why a connection could not be opened.
#[derive(Debug)]
struct OpenError {
    /// No connection (network, TLS, time) rather than the server's refusal.
    unreachable: bool,
    message: String,
}

impl OpenError {
    fn answered(message: String) -> Self {
        Self { unreachable: false, message }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for ProbeResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.probe, if self.ok { "ok" } else { "FAILED" }, self.detail)
    }
}

/// Runs the connectivity probe, then every probe of `plan`, and reports each.
pub async fn run(login: &Login, plan: &Plan) -> Vec<ProbeResult> {
    let mut results = Vec::new();
    let opened = match tokio::time::timeout(login.timeout, Conn::open(login)).await {
        Ok(r) => r,
        Err(_) => Err(OpenError {
            unreachable: true,
            message: format!("no answer within {} s", login.timeout.as_secs_f64()),
        }),
    };
    let mut conn = match opened {
        Ok(conn) => {
            results.push(ProbeResult::new(
                "connectivity",
                true,
                format!(
                    "logged in to {}:{} as {} (TLS {}), SELECT 1 answered",
                    login.host,
                    login.port,
                    login.user,
                    login.tls.name()
                ),
            ));
            conn
        }
        Err(e) => {
            let detail =
                format!("{}:{} as {} (TLS {}): {e}", login.host, login.port, login.user, login.tls.name());
            results.push(if e.unreachable {
                ProbeResult::unreachable("connectivity", detail)
            } else {
                ProbeResult::new("connectivity", false, detail)
            });
            for name in probe_names(plan) {
                results.push(ProbeResult::new(name, false, "not run: no connection"));
            }
            return results;
        }
    };
    let engine = login.engine;
    if let Some(sql) = &plan.query {
        let r = bounded(login.timeout, conn.has_a_row(sql)).await;
        results.push(match r {
            Ok(true) => ProbeResult::new("query", true, "returned at least one row"),
            Ok(false) => ProbeResult::new("query", false, format!("returned no rows: {}", short(sql))),
            Err(e) => ProbeResult::new("query", false, format!("{e}: {}", short(sql))),
        });
    }
    for m in &plan.min_rows {
        let name = format!("minRows({})", m.table);
        let sql = format!("SELECT COUNT(*) FROM {}", m.table.sql(engine));
        results.push(match bounded(login.timeout, conn.scalar(&sql)).await {
            Ok(Some(v)) => match v.trim().parse::<u64>() {
                Ok(n) if n >= m.min => ProbeResult::new(name, true, format!("{n} rows, at least {}", m.min)),
                Ok(n) => ProbeResult::new(name, false, format!("{n} rows, below the minimum {}", m.min)),
                Err(_) => ProbeResult::new(name, false, format!("COUNT(*) answered {v:?}")),
            },
            Ok(None) => ProbeResult::new(name, false, "COUNT(*) answered no value"),
            Err(e) => ProbeResult::new(name, false, e),
        });
    }
    if let Some(f) = &plan.freshness {
        results.push(freshness(&mut conn, engine, f, plan, login.timeout).await);
    }
    conn.close().await;
    results
}

fn probe_names(plan: &Plan) -> Vec<String> {
    let mut names = Vec::new();
    if plan.query.is_some() {
        names.push("query".to_owned());
    }
    names.extend(plan.min_rows.iter().map(|m| format!("minRows({})", m.table)));
    if let Some(f) = &plan.freshness {
        names.push(format!("freshness({f})"));
    }
    names
}

async fn freshness(
    conn: &mut Conn,
    engine: DbEngine,
    f: &FreshnessColumn,
    plan: &Plan,
    timeout: Duration,
) -> ProbeResult {
    let name = format!("freshness({f})");
    let column = engine.quote(&f.column);
    let table = f.table.sql(engine);
    // Seconds since the epoch. PostgreSQL: a `timestamp` without zone counts
    // as UTC, `timestamptz` is absolute. MySQL: the session zone is UTC, so a
    // DATETIME counts as UTC and a TIMESTAMP converts exactly.
    let sql = match engine {
        DbEngine::Postgres => format!("SELECT EXTRACT(EPOCH FROM MAX({column}))::float8 FROM {table}"),
        DbEngine::Mysql => format!("SELECT UNIX_TIMESTAMP(MAX({column})) FROM {table}"),
    };
    let newest = match bounded(timeout, conn.scalar(&sql)).await {
        Ok(Some(v)) => match v.trim().parse::<f64>() {
            Ok(secs) if secs.is_finite() => secs,
            _ => return ProbeResult::new(name, false, format!("newest value {v:?} is not a timestamp")),
        },
        Ok(None) => return ProbeResult::new(name, false, "the table has no rows (no newest value)"),
        Err(e) => return ProbeResult::new(name, false, e),
    };
    let point = plan.recovery_point.unix_timestamp_nanos() as f64 / 1e9;
    let lag = point - newest;
    let newest_text = OffsetDateTime::from_unix_timestamp(newest.floor() as i64)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("{newest}"));
    let point_text = plan
        .recovery_point
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| plan.recovery_point.to_string());
    let rpo = plan.rpo.as_secs();
    if lag < 0.0 {
        // Rows written after the snapshot time: clocks differ, or the column
        // holds future times; either way the data is not stale.
        ProbeResult::new(
            name,
            true,
            format!("newest {newest_text} is {:.0} s after the snapshot time {point_text}", -lag),
        )
    } else if lag <= plan.rpo.as_secs_f64() {
        ProbeResult::new(
            name,
            true,
            format!(
                "newest {newest_text} is {lag:.0} s before the snapshot time {point_text}, within the RPO of {rpo} s"
            ),
        )
    } else {
        ProbeResult::new(
            name,
            false,
            format!(
                "newest {newest_text} is {lag:.0} s before the snapshot time {point_text}, more than the RPO of {rpo} s"
            ),
        )
    }
}

fn short(sql: &str) -> String {
    let one_line: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 120 {
        format!("{}…", one_line.chars().take(120).collect::<String>())
    } else {
        one_line
    }
}

async fn bounded<T>(limit: Duration, work: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    match tokio::time::timeout(limit, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} s", limit.as_secs_f64())),
    }
}

/// One open probe connection.
enum Conn {
    Postgres { client: tokio_postgres::Client, task: tokio::task::JoinHandle<()> },
    Mysql(mysql_async::Conn),
}

impl Conn {
    async fn open(login: &Login) -> Result<Self, OpenError> {
        if login.tls == TlsMode::Disable {
            plain_text_only_to_loopback(login).await?;
        }
        let mut conn = match login.engine {
            DbEngine::Postgres => open_postgres(login).await?,
            DbEngine::Mysql => open_mysql(login).await?,
        };
        // Logged in: from here on every failure is the server's answer.
        conn.set_up(login).await.map_err(OpenError::answered)?;
        Ok(conn)
    }

    async fn set_up(&mut self, login: &Login) -> Result<(), String> {
        let conn = self;
        match conn.scalar("SELECT 1").await?.as_deref().map(str::trim) {
            Some("1") => {}
            other => return Err(format!("SELECT 1 answered {other:?}")),
        }
        // Probes read; the session refuses writes, so a mistaken SANITY_QUERY
        // cannot change the DR copy.
        let read_only = match login.engine {
            DbEngine::Postgres => "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
            DbEngine::Mysql => "SET SESSION TRANSACTION READ ONLY",
        };
        conn.execute(read_only).await?;
        if login.engine == DbEngine::Mysql {
            conn.execute("SET time_zone = '+00:00'").await?;
        }
        Ok(())
    }

    /// The first column of the first row, as text (`None`: no row or NULL).
    async fn scalar(&mut self, sql: &str) -> Result<Option<String>, String> {
        match self {
            Self::Postgres { client, .. } => {
                let stream = client.simple_query_raw(sql).await.map_err(pg_error)?;
                let row = first_row(stream).await.map_err(pg_error)?;
                Ok(row.and_then(|r| r.get(0).map(str::to_owned)))
            }
            Self::Mysql(conn) => {
                use mysql_async::prelude::Queryable;
                let row: Option<mysql_async::Row> = conn.query_first(sql).await.map_err(my_error)?;
                Ok(row.and_then(|mut r| r.take::<mysql_async::Value, _>(0)).and_then(|v| match v {
                    mysql_async::Value::NULL => None,
                    mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                    other => Some(other.as_sql(true).trim_matches('\'').to_owned()),
                }))
            }
        }
    }

    /// Whether `sql` returns at least one row (only the first is read).
    async fn has_a_row(&mut self, sql: &str) -> Result<bool, String> {
        match self {
            Self::Postgres { client, .. } => {
                let stream = client.simple_query_raw(sql).await.map_err(pg_error)?;
                Ok(first_row(stream).await.map_err(pg_error)?.is_some())
            }
            Self::Mysql(conn) => {
                use mysql_async::prelude::Queryable;
                let row: Option<mysql_async::Row> = conn.query_first(sql).await.map_err(my_error)?;
                Ok(row.is_some())
            }
        }
    }

    async fn execute(&mut self, sql: &str) -> Result<(), String> {
        match self {
            Self::Postgres { client, .. } => client.batch_execute(sql).await.map_err(pg_error),
            Self::Mysql(conn) => {
                use mysql_async::prelude::Queryable;
                conn.query_drop(sql).await.map_err(my_error)
            }
        }
    }

    async fn close(self) {
        match self {
            Self::Postgres { client, task } => {
                drop(client);
                let _ = task.await;
            }
            Self::Mysql(conn) => {
                let _ = conn.disconnect().await;
            }
        }
    }
}

/// The first row of a simple-query stream, without reading the rest.
async fn first_row(
    stream: tokio_postgres::SimpleQueryStream,
) -> Result<Option<tokio_postgres::SimpleQueryRow>, tokio_postgres::Error> {
    use futures::StreamExt;
    let mut stream = Box::pin(stream);
    while let Some(item) = stream.next().await {
        if let tokio_postgres::SimpleQueryMessage::Row(row) = item? {
            return Ok(Some(row));
        }
    }
    Ok(None)
}

fn pg_error(e: tokio_postgres::Error) -> String {
    // The server's own message (e.g. `relation "x" does not exist`) when there is one.
    match e.as_db_error() {
        Some(db) => format!("PostgreSQL error {}: {}", db.code().code(), db.message()),
        None => {
            let mut out = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                out.push_str(": ");
                out.push_str(&s.to_string());
                source = s.source();
            }
            out
        }
    }
}

fn my_error(e: mysql_async::Error) -> String {
    format!("MySQL error: {e}")
}

/// A failed PostgreSQL connection: the server's refusal (an error it sent)
/// or no connection at all.
fn pg_open_error(e: tokio_postgres::Error) -> OpenError {
    OpenError { unreachable: e.as_db_error().is_none(), message: pg_error(e) }
}

/// A failed MySQL connection: I/O (network or TLS) is no connection; the
/// rest is the server's (or the driver's) refusal.
fn my_open_error(e: mysql_async::Error) -> OpenError {
    OpenError { unreachable: matches!(e, mysql_async::Error::Io(_)), message: my_error(e) }
}

/// `SANITY_TLS=disable` sends the probe's password in clear text, so it may
/// only reach loopback addresses (the local drills' and tests' servers):
/// a host that resolves to any other address is refused before anything is
/// sent, as a failed probe (a configuration to fix), not an unreachable one.
async fn plain_text_only_to_loopback(login: &Login) -> Result<(), OpenError> {
    let addrs = tokio::net::lookup_host((login.host.as_str(), login.port)).await.map_err(|e| OpenError {
        unreachable: true,
        message: format!("cannot resolve {}: {e}", login.host),
    })?;
    let outside: Vec<String> = addrs.filter(|a| !a.ip().is_loopback()).map(|a| a.ip().to_string()).collect();
    if outside.is_empty() {
        return Ok(());
    }
    Err(OpenError::answered(format!(
        "TLS disable only connects to loopback addresses (local tests), and {} resolves to {}; set SANITY_TLS \
         (TOML target.sanity_tls) to require or verify-full",
        login.host,
        outside.join(", ")
    )))
}

async fn open_postgres(login: &Login) -> Result<Conn, OpenError> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&login.host)
        .port(login.port)
        .user(&login.user)
        .password(login.password.as_bytes())
        .dbname(login.database.as_deref().unwrap_or("postgres"))
        .application_name("aurora-dr-sanity-check")
        .connect_timeout(login.timeout);
    let (client, task) = match &login.tls {
        TlsMode::Disable => {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(pg_open_error)?;
            (client, tokio::spawn(async move { drop(connection.await) }))
        }
        tls => {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            let connector = pg_tls::MakeRustls(rustls_config(tls).map_err(OpenError::answered)?);
            let (client, connection) = config.connect(connector).await.map_err(pg_open_error)?;
            (client, tokio::spawn(async move { drop(connection.await) }))
        }
    };
    Ok(Conn::Postgres { client, task })
}

async fn open_mysql(login: &Login) -> Result<Conn, OpenError> {
    let mut opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(login.host.clone())
        .tcp_port(login.port)
        .user(Some(login.user.clone()))
        .pass(Some(login.password.clone()))
        .db_name(login.database.clone())
        // Stay on the TCP endpoint: with a loopback host mysql_async would
        // otherwise switch to the server's Unix socket.
        .prefer_socket(false);
    match &login.tls {
        TlsMode::Disable => {}
        TlsMode::Require => {
            opts = opts.ssl_opts(
                mysql_async::SslOpts::default()
                    .with_danger_accept_invalid_certs(true)
                    .with_danger_skip_domain_validation(true),
            );
        }
        TlsMode::VerifyFull { ca_file } => {
            opts = opts.ssl_opts(
                mysql_async::SslOpts::default()
                    .with_root_certs(vec![ca_file.clone().into()])
                    .with_disable_built_in_roots(true),
            );
        }
    }
    mysql_async::Conn::new(opts).await.map(Conn::Mysql).map_err(my_open_error)
}

/// The rustls client configuration of a TLS mode (ring provider).
fn rustls_config(tls: &TlsMode) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let config = match tls {
        TlsMode::Disable => return Err("TLS is disabled".into()),
        TlsMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(pg_tls::AnyCertificate(provider)))
            .with_no_client_auth(),
        TlsMode::VerifyFull { ca_file } => {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(ca_file)
                .map_err(|e| format!("TLS CA file {}: {e}", ca_file.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("TLS CA file {}: {e}", ca_file.display()))?;
                roots.add(cert).map_err(|e| format!("TLS CA file {}: {e}", ca_file.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("TLS CA file {} holds no certificate", ca_file.display()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}

/// tokio-postgres over tokio-rustls: the few trait impls its TLS hook needs,
/// instead of another crate (and a second crypto provider).
mod pg_tls {
    use super::*;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};
    use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

    #[derive(Clone)]
    pub(super) struct MakeRustls(pub(super) Arc<rustls::ClientConfig>);

    pub(super) struct ConnectRustls {
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
    }

    pub(super) struct Stream<S>(tokio_rustls::client::TlsStream<S>);

    impl<S> MakeTlsConnect<S> for MakeRustls
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        type Stream = Stream<S>;
        type TlsConnect = ConnectRustls;
        type Error = rustls::pki_types::InvalidDnsNameError;

        fn make_tls_connect(&mut self, domain: &str) -> Result<ConnectRustls, Self::Error> {
            let name = ServerName::try_from(domain.to_owned())?;
            Ok(ConnectRustls { config: Arc::clone(&self.0), name })
        }
    }

    impl<S> TlsConnect<S> for ConnectRustls
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        type Stream = Stream<S>;
        type Error = std::io::Error;
        type Future = Pin<Box<dyn Future<Output = std::io::Result<Stream<S>>> + Send>>;

        fn connect(self, stream: S) -> Self::Future {
            let connector = tokio_rustls::TlsConnector::from(self.config);
            Box::pin(async move { connector.connect(self.name, stream).await.map(Stream) })
        }
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, buf)
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for Stream<S> {
        fn channel_binding(&self) -> ChannelBinding {
            // SCRAM without channel binding (`SCRAM-SHA-256`), as libpq's default `prefer`.
            ChannelBinding::none()
        }
    }

    /// `TlsMode::Require`: any certificate is accepted (signatures are still
    /// checked, so the session is encrypted to whoever holds the key).
    #[derive(Debug)]
    pub(super) struct AnyCertificate(pub(super) Arc<CryptoProvider>);

    impl ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_quote() {
        let t: TableName = "public.orders".parse().expect("table");
        assert_eq!(t.sql(DbEngine::Postgres), "\"public\".\"orders\"");
        assert_eq!(t.sql(DbEngine::Mysql), "`public`.`orders`");
        assert_eq!(t.to_string(), "public.orders");
        for bad in ["", "1orders", "orders;drop", "a.b.c", "or ders", "o\"x", "o`x", "a..b"] {
            assert!(bad.parse::<TableName>().is_err(), "{bad:?}");
        }
        let m: MinRows = "orders=10".parse().expect("min rows");
        assert_eq!((m.table.to_string(), m.min), ("orders".to_owned(), 10));
        for bad in ["orders", "orders=", "orders=-1", "orders=ten", "=3"] {
            assert!(bad.parse::<MinRows>().is_err(), "{bad:?}");
        }
        let f: FreshnessColumn = "sales.orders.updated_at".parse().expect("column");
        assert_eq!((f.table.to_string(), f.column.as_str()), ("sales.orders".to_owned(), "updated_at"));
        for bad in ["orders", "a.b.c.d", "orders.", ".updated_at"] {
            assert!(bad.parse::<FreshnessColumn>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn host_ports_parse() {
        let h: HostPort = "127.0.0.1:5432".parse().expect("host:port");
        assert_eq!((h.host.as_str(), h.port), ("127.0.0.1", 5432));
        let h: HostPort = "[::1]:3306".parse().expect("v6");
        assert_eq!((h.host.as_str(), h.port, h.to_string()), ("::1", 3306, "[::1]:3306".to_owned()));
        for bad in ["localhost", "localhost:", "localhost:0", "localhost:70000", ":5432", "a b:1"] {
            assert!(bad.parse::<HostPort>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn engines_map_from_rds_names() {
        assert_eq!(DbEngine::from_rds("aurora-postgresql"), Some(DbEngine::Postgres));
        assert_eq!(DbEngine::from_rds("aurora-mysql"), Some(DbEngine::Mysql));
        assert_eq!(DbEngine::from_rds("oracle-ee"), None);
    }

    #[test]
    fn a_login_never_prints_its_password() {
        let login = Login {
            engine: DbEngine::Postgres,
            host: "h".into(),
            port: 1,
            user: "u".into(),
            password: "hunter2".into(),
            database: None,
            tls: TlsMode::Disable,
            timeout: Duration::from_secs(1),
        };
        assert!(!format!("{login:?}").contains("hunter2"));
    }

    /// A plan without probes beyond connectivity.
    fn connectivity_only() -> Plan {
        Plan {
            query: None,
            min_rows: Vec::new(),
            freshness: None,
            rpo: Duration::from_secs(60),
            recovery_point: OffsetDateTime::now_utc(),
        }
    }

    /// Without TLS the password would cross the network in clear text: an
    /// address that is not loopback is refused before any connection (a
    /// failed probe, not an unreachable server). 192.0.2.1 is TEST-NET-1
    /// (RFC 5737): nothing answers there.
    #[tokio::test]
    async fn tls_disable_refuses_an_address_that_is_not_loopback() {
        let login = |host: &str| Login {
            engine: DbEngine::Postgres,
            host: host.into(),
            port: 5432,
            user: "u".into(),
            password: "p".into(),
            database: None,
            tls: TlsMode::Disable,
            timeout: Duration::from_secs(5),
        };
        let plan = connectivity_only();
        let results = run(&login("192.0.2.1"), &plan).await;
        let first = &results[0];
        assert_eq!(first.failure, Some(ProbeFailure::Failed), "{first:?}");
        assert!(first.detail.contains("only connects to loopback addresses"), "{first:?}");
        assert!(first.detail.contains("192.0.2.1") && first.detail.contains("SANITY_TLS"), "{first:?}");
        // Loopback passes the rule; nothing listens on port 1, so it is unreachable.
        let results = run(&Login { port: 1, ..login("127.0.0.1") }, &plan).await;
        assert_eq!(results[0].failure, Some(ProbeFailure::Unreachable), "{:?}", results[0]);
    }

    /// A server that answers every PostgreSQL start-up with a FATAL
    /// `password authentication failed` (SQLSTATE 28P01), as PostgreSQL does
    /// for a wrong password: the server answered, so this is not "unreachable".
    #[tokio::test]
    async fn a_refused_login_is_a_failure_not_an_unreachable_server() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut startup = [0u8; 512];
            let _ = socket.read(&mut startup).await;
            let mut fields = Vec::new();
            for (code, text) in [(b'S', "FATAL"), (b'C', "28P01"), (b'M', "password authentication failed")] {
                fields.push(code);
                fields.extend_from_slice(text.as_bytes());
                fields.push(0);
            }
            fields.push(0);
            let mut message = vec![b'E'];
            message.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
            message.extend_from_slice(&fields);
            let _ = socket.write_all(&message).await;
        });
        let login = Login {
            engine: DbEngine::Postgres,
            host: "127.0.0.1".into(),
            port,
            user: "u".into(),
            password: "wrong".into(),
            database: None,
            tls: TlsMode::Disable,
            timeout: Duration::from_secs(5),
        };
        let plan = connectivity_only();
        let results = run(&login, &plan).await;
        server.abort();
        assert_eq!(results.len(), 1, "{results:?}");
        assert!(results[0].detail.contains("28P01"), "{results:?}");
        assert_eq!(results[0].failure, Some(ProbeFailure::Failed), "{results:?}");
        assert!(!unreachable(&results));
    }

    #[tokio::test]
    async fn an_unreachable_server_fails_connectivity_and_reports_the_rest_as_not_run() {
        // A port nothing listens on: bind, note the port, close.
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let plan = Plan {
            query: Some("SELECT 1".into()),
            min_rows: vec!["orders=1".parse().expect("min")],
            freshness: Some("orders.updated_at".parse().expect("col")),
            rpo: Duration::from_secs(60),
            recovery_point: OffsetDateTime::now_utc(),
        };
        for engine in [DbEngine::Postgres, DbEngine::Mysql] {
            let login = Login {
                engine,
                host: "127.0.0.1".into(),
                port,
                user: "u".into(),
                password: "p".into(),
                database: None,
                tls: TlsMode::Disable,
                timeout: Duration::from_secs(5),
            };
            let results = run(&login, &plan).await;
            let names: Vec<&str> = results.iter().map(|r| r.probe.as_str()).collect();
            assert_eq!(names, ["connectivity", "query", "minRows(orders)", "freshness(orders.updated_at)"]);
            assert!(results.iter().all(|r| !r.ok), "{results:?}");
            assert!(results[1].detail.contains("not run"), "{results:?}");
            assert_eq!(results[0].failure, Some(ProbeFailure::Unreachable), "{results:?}");
            assert!(unreachable(&results), "a closed port is no connection, not wrong data");
        }
    }
}
