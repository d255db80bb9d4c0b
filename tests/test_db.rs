//! Real database servers for the SanityCheck tests: PostgreSQL and MariaDB
//! from Debian's packages, each started at most once per test binary by
//! `scripts/test-db.sh serve` on a free loopback port, in a data directory
//! the script creates under the temp dir.
//!
//! Clean-up: the script serves until its standard input closes. The write
//! end of that pipe lives in a static of this process and nowhere else (Rust
//! opens pipes close-on-exec), so when the test binary exits — passed,
//! failed, panicked or killed — the script sees end-of-file, stops its
//! server and removes the data directory. No test has to remember to stop it.
//!
//! Installing: a machine without the packages gets them from
//! `scripts/test-db.sh install` (apt-get as root; otherwise it fails naming
//! the packages to install).

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// One running server and the login the script created on it.
pub struct DbServer {
    /// `postgres` or `mariadb`.
    pub kind: &'static str,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub database: String,
    /// The CA that signed the server's certificate (for 127.0.0.1 and localhost).
    pub ca_file: PathBuf,
    /// A CA that signed nothing the server has.
    pub other_ca_file: PathBuf,
    /// Holding it open keeps the server up (see the module doc).
    _stdin: Mutex<ChildStdin>,
    _child: Mutex<Child>,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/test-db.sh")
}

fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let out = Command::new("bash").arg(script()).arg("install").output().expect("run scripts/test-db.sh");
        assert!(
            out.status.success(),
            "scripts/test-db.sh install failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn start(kind: &'static str) -> DbServer {
    install();
    for _ in 0..5 {
        let port = free_port();
        let log = tempfile::NamedTempFile::new().expect("log file");
        let mut child = Command::new("bash")
            .arg(script())
            .args(["serve", kind, &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log.reopen().expect("log"))
            .spawn()
            .expect("start scripts/test-db.sh serve");
        let stdin = child.stdin.take().expect("stdin");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read ready line");
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let ["ready", _, host, port, user, password, database, ca, other_ca] = fields[..] {
            return DbServer {
                kind,
                host: host.to_owned(),
                port: port.parse().expect("port"),
                user: user.to_owned(),
                password: password.to_owned(),
                database: database.to_owned(),
                ca_file: PathBuf::from(ca),
                other_ca_file: PathBuf::from(other_ca),
                _stdin: Mutex::new(stdin),
                _child: Mutex::new(child),
            };
        }
        drop(stdin);
        let status = child.wait().expect("wait");
        if status.code() == Some(3) {
            continue; // The port was taken between our probe and the server's bind.
        }
        let mut err = String::new();
        let _ = log.reopen().expect("log").read_to_string(&mut err);
        panic!("{kind} did not start ({status}):\n{err}");
    }
    panic!("{kind}: no free port after 5 tries");
}

/// The PostgreSQL server of this test binary.
pub fn postgres() -> &'static DbServer {
    static SERVER: OnceLock<DbServer> = OnceLock::new();
    SERVER.get_or_init(|| start("postgres"))
}

/// The MariaDB server of this test binary.
pub fn mariadb() -> &'static DbServer {
    static SERVER: OnceLock<DbServer> = OnceLock::new();
    SERVER.get_or_init(|| start("mariadb"))
}

impl DbServer {
    /// `host:port`.
    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Runs SQL statements with the server's own client, as the test login.
    pub fn exec(&self, sql: &str) {
        let out = match self.kind {
            "postgres" => Command::new("psql")
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", &self.host, "-p", &self.port.to_string()])
                .args(["-U", &self.user, "-d", &self.database, "-c", sql])
                .env("PGPASSWORD", &self.password)
                .output(),
            _ => Command::new("mariadb")
                .args(["--no-defaults", "-h", &self.host, "-P", &self.port.to_string(), "-u", &self.user])
                .args(["-D", &self.database, "-e", sql])
                .env("MYSQL_PWD", &self.password)
                .output(),
        }
        .expect("run the database client");
        assert!(
            out.status.success(),
            "{} failed on {sql}:\n{}",
            self.kind,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
