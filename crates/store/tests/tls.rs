//! TLS to Postgres, end to end: a private cluster started here, with a CA and
//! a server certificate (for `localhost` only) made at test time, and
//! `hostssl`-only access so that any successful login went over TLS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code fails loudly

use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use calsync_store::{DatabaseUrl, SslMode, StoreOptions};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

const DEFAULT_PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A throw-away cluster, stopped and deleted on drop (a failed assertion
/// included).
struct Cluster {
    root: PathBuf,
    data: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Running as root: initdb and postgres refuse that, so they run as
    /// the `postgres` user.
    postgres_user: Option<(u32, u32)>,
}

impl Cluster {
    /// `None` (with a notice) when no Postgres binaries exist outside CI.
    fn init() -> Option<Self> {
        let bin = std::env::var_os("CALSYNC_TEST_PG_BIN")
            .map_or_else(|| PathBuf::from(DEFAULT_PG_BIN), PathBuf::from);
        if !bin.join("initdb").exists() {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "PostgreSQL binaries are required in CI: none in {}",
                    bin.display()
                );
            }
            eprintln!(
                "SKIPPED: TLS test: no initdb in {} (set CALSYNC_TEST_PG_BIN)",
                bin.display()
            );
            return None;
        }
        let root =
            std::env::temp_dir().join(format!("calsync-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&root).unwrap();
        let postgres_user = if std::fs::metadata(&root).unwrap().uid() == 0 {
            let id = |flag: &str| -> u32 {
                let out = Command::new("id")
                    .args([flag, "postgres"])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "running as root needs a postgres user"
                );
                String::from_utf8(out.stdout)
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap()
            };
            let ids = (id("-u"), id("-g"));
            std::os::unix::fs::chown(&root, Some(ids.0), Some(ids.1)).unwrap();
            Some(ids)
        } else {
            None
        };
        let cluster = Self {
            data: root.join("data"),
            root,
            bin,
            port: free_port(),
            postgres_user,
        };
        cluster.run(
            "initdb",
            &[
                "-D".as_ref(),
                cluster.data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--auth=trust".as_ref(),
                "--no-sync".as_ref(),
                "--no-instructions".as_ref(),
            ],
        );
        Some(cluster)
    }

    /// A Postgres program, run as the `postgres` user when we are root.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.postgres_user.is_none() {
            return Command::new(program);
        }
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    }

    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) {
        let out = self.command(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} failed: {}{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default()
        );
    }

    /// Writes a file the server reads; `private` for its key (Postgres
    /// refuses a key others can read).
    fn write(&self, path: &Path, contents: &str, private: bool) {
        std::fs::write(path, contents).unwrap();
        let mode = if private { 0o600 } else { 0o644 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        if let Some((uid, gid)) = self.postgres_user {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
        }
    }

    fn configure(&self, ssl: bool, hba: &str) {
        let cert = self.root.join("server.crt");
        let key = self.root.join("server.key");
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\n\
             fsync = off\nssl = {ssl}\nssl_cert_file = '{cert}'\nssl_key_file = '{key}'\n",
            port = self.port,
            root = self.root.display(),
            ssl = if ssl { "on" } else { "off" },
            cert = cert.display(),
            key = key.display(),
        );
        self.write(&self.data.join("postgresql.auto.conf"), &conf, true);
        self.write(&self.data.join("pg_hba.conf"), hba, true);
    }

    fn pg_ctl(&self, action: &str) {
        let log = self.root.join("server.log");
        let data = self.data.as_os_str();
        self.run(
            "pg_ctl",
            &[
                action.as_ref(),
                "-D".as_ref(),
                data,
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "-m".as_ref(),
                "fast".as_ref(),
            ],
        );
    }

    fn url(&self, host: &str, params: &str) -> String {
        let separator = if params.is_empty() { "" } else { "&" };
        format!(
            "postgres://postgres@{host}:{}/postgres?connect_timeout=10{separator}{params}",
            self.port
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.data.join("postmaster.pid").exists() {
            let stop = self
                .command("pg_ctl")
                .args(["stop", "-m", "immediate", "-w", "-D"])
                .arg(&self.data)
                .output();
            if let Err(error) = stop {
                eprintln!(
                    "could not stop the test cluster in {}: {error}",
                    self.data.display()
                );
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A self-signed CA that can sign server certificates.
fn make_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A server certificate for `localhost` only (no IP address), and its key.
fn make_server_cert(ca: &CertifiedIssuer<'static, KeyPair>) -> (String, String) {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn options() -> StoreOptions {
    StoreOptions {
        max_connections: 2,
        connection_timeout: Duration::from_secs(10),
        ..StoreOptions::default()
    }
}

/// Connects as the binary does (migrations, then the pool) and runs a
/// query through the pool.
async fn open(url: &str, options: &StoreOptions) -> Result<(), String> {
    let url = DatabaseUrl::parse(Some(url)).map_err(|error| error.to_string())?;
    let store = calsync_store::connect(&url, options)
        .await
        .map_err(|error| error.to_string())?;
    store.check_ready().await.map_err(|error| error.to_string())
}

async fn succeeds(label: &str, url: &str, options: &StoreOptions) {
    if let Err(error) = open(url, options).await {
        panic!("{label}: expected to connect, got: {error}");
    }
}

async fn fails(label: &str, url: &str, options: &StoreOptions, needles: &[&str]) {
    match open(url, options).await {
        Ok(()) => panic!("{label}: connected, but must not"),
        Err(error) => {
            eprintln!("{label}: {error}");
            for needle in needles {
                assert!(
                    error.contains(needle),
                    "{label}: {error:?} lacks {needle:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn sslmode_is_enforced_against_a_tls_only_server() {
    let Some(cluster) = Cluster::init() else {
        return;
    };
    let ca = make_ca("calsync test CA");
    let other_ca = make_ca("some other CA");
    let (cert, key) = make_server_cert(&ca);
    cluster.write(&cluster.root.join("server.crt"), &cert, false);
    cluster.write(&cluster.root.join("server.key"), &key, true);
    let ca_file = cluster.root.join("ca.pem");
    let other_ca_file = cluster.root.join("other-ca.pem");
    cluster.write(&ca_file, &ca.pem(), false);
    cluster.write(&other_ca_file, &other_ca.pem(), false);
    let ca = ca_file.display();
    let other = other_ca_file.display();

    // TLS only: a login without TLS has no pg_hba line to match.
    cluster.configure(
        true,
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
    );
    cluster.pg_ctl("start");
    let o = options();

    let url = cluster.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    succeeds("verify-full, right CA and host", &url, &o).await;

    let url = cluster.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={other}"),
    );
    fails(
        "verify-full, wrong CA",
        &url,
        &o,
        &[
            "sslmode=verify-full",
            "certificate verification failed",
            "trusted CA",
        ],
    )
    .await;

    // The certificate names localhost, not 127.0.0.1.
    let url = cluster.url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    fails(
        "verify-full, wrong host name",
        &url,
        &o,
        &[
            "certificate verification failed",
            "does not name the host",
            "127.0.0.1",
        ],
    )
    .await;

    // No CA named: the webpki roots, which do not know our CA.
    let url = cluster.url("localhost", "sslmode=verify-full");
    fails("verify-full, public roots", &url, &o, &["trusted CA"]).await;

    let url = cluster.url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}"));
    succeeds("verify-ca ignores the host name", &url, &o).await;
    let url = cluster.url(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={other}"),
    );
    fails(
        "verify-ca, wrong CA",
        &url,
        &o,
        &["sslmode=verify-ca", "trusted CA"],
    )
    .await;

    let url = cluster.url("127.0.0.1", "sslmode=require");
    succeeds("require, no CA: encrypted, unverified", &url, &o).await;
    // As libpq: given a CA, require checks the chain.
    let url = cluster.url("127.0.0.1", &format!("sslmode=require&sslrootcert={other}"));
    fails("require with a wrong CA", &url, &o, &["trusted CA"]).await;

    let url = cluster.url("127.0.0.1", "sslmode=prefer");
    succeeds("prefer against a TLS server", &url, &o).await;

    // The plain login is refused by the server: so every success above
    // (pool and migrations alike) logged in over TLS.
    let url = cluster.url("127.0.0.1", "sslmode=disable");
    fails(
        "disable against hostssl only",
        &url,
        &o,
        &["sslmode=disable", "no encryption"],
    )
    .await;

    // The caller's defaults apply when the URL names no sslmode.
    let production = StoreOptions {
        default_sslmode: SslMode::VerifyFull,
        tls_ca_file: Some(ca_file.clone()),
        ..options()
    };
    succeeds(
        "default verify-full with the CA option",
        &cluster.url("localhost", ""),
        &production,
    )
    .await;
    fails(
        "default verify-full, wrong host",
        &cluster.url("127.0.0.1", ""),
        &production,
        &["sslmode=verify-full", "does not name the host"],
    )
    .await;
    let wrong_ca = StoreOptions {
        tls_ca_file: Some(other_ca_file.clone()),
        ..production.clone()
    };
    fails(
        "default verify-full, wrong CA option",
        &cluster.url("localhost", ""),
        &wrong_ca,
        &["trusted CA"],
    )
    .await;
    // The URL's sslrootcert wins over the option.
    let url = cluster.url("localhost", &format!("sslrootcert={ca}"));
    succeeds("sslrootcert over the option", &url, &wrong_ca).await;
    // So does its sslmode over the default.
    let url = cluster.url("127.0.0.1", "sslmode=disable");
    fails(
        "URL sslmode over the default",
        &url,
        &production,
        &["no encryption"],
    )
    .await;

    // Now a server without TLS, accepting plain logins.
    cluster.configure(
        false,
        "local all all trust\nhost all all 127.0.0.1/32 trust\n",
    );
    cluster.pg_ctl("restart");
    let url = cluster.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    fails(
        "verify-full without server TLS",
        &url,
        &o,
        &["sslmode=verify-full but the server does not support TLS"],
    )
    .await;
    let url = cluster.url("127.0.0.1", "sslmode=require");
    fails(
        "require without server TLS",
        &url,
        &o,
        &["sslmode=require but the server does not support TLS"],
    )
    .await;
    let url = cluster.url("127.0.0.1", "sslmode=prefer");
    succeeds("prefer falls back when the server refuses TLS", &url, &o).await;
    let url = cluster.url("127.0.0.1", "sslmode=disable");
    succeeds("disable against a plain server", &url, &o).await;
}
