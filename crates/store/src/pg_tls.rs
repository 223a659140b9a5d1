//! TLS to Postgres: libpq's `sslmode` and `sslrootcert` on rustls, for both
//! the pool (through diesel-async's `custom_setup`) and the migrations.
//!
//! tokio-postgres knows only `disable`, `prefer` and `require`, and rejects
//! `sslrootcert`, so both are taken out of the URL here; the certificate
//! checks each mode needs live in the rustls verifier instead.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use diesel::{ConnectionError, ConnectionResult};
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::ManagerConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_postgres::config::{Host, SslMode as WireSslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{Error, SslMode, StoreOptions};

/// What opens one Postgres connection: tokio-postgres's configuration (our
/// parameters removed) and the TLS connector for the chosen `sslmode`.
#[derive(Clone)]
pub(crate) struct PgConnector {
    config: tokio_postgres::Config,
    sslmode: SslMode,
    tls: MakeRustlsConnect,
}

/// Where the trusted roots come from.
enum Roots {
    /// Neither `sslrootcert` nor `StoreOptions::tls_ca_file`.
    Unset,
    /// `sslrootcert=system`: the bundled webpki roots (Mozilla's set), as
    /// the machine may have no CA bundle of its own.
    System,
    File(PathBuf),
}

impl PgConnector {
    /// Reads `sslmode` and `sslrootcert` from `url`, falling back to
    /// `options`, and prepares the TLS configuration (CA file read once here).
    pub(crate) fn new(url: &str, options: &StoreOptions) -> Result<Self, Error> {
        let params = TlsParams::split(url)?;
        let roots = match params.sslrootcert.as_deref() {
            Some("system") => Roots::System,
            Some(path) => Roots::File(PathBuf::from(path)),
            None => options
                .tls_ca_file
                .clone()
                .map_or(Roots::Unset, Roots::File),
        };
        let sslmode = match params.sslmode.as_deref() {
            Some(mode) => mode.parse()?,
            // As libpq: trusting the public roots only makes sense with the host name checked.
            None if matches!(roots, Roots::System) => SslMode::VerifyFull,
            None => options.default_sslmode,
        };
        if matches!(roots, Roots::System) && sslmode != SslMode::VerifyFull {
            return Err(Error::InvalidUrl(format!(
                "sslmode={sslmode} may not be used with sslrootcert=system (use verify-full)"
            )));
        }

        let mut config = tokio_postgres::Config::from_str(&params.rest)
            .map_err(|error| Error::InvalidUrl(error.to_string()))?;
        // libpq ignores sslmode on Unix sockets: Postgres has no TLS there,
        // and the traffic does not leave the machine.
        let unix_only = config.get_hostaddrs().is_empty()
            && !config.get_hosts().is_empty()
            && config
                .get_hosts()
                .iter()
                .all(|host| !matches!(host, Host::Tcp(_)));
        config.ssl_mode(match sslmode {
            _ if unix_only => WireSslMode::Disable,
            SslMode::Disable => WireSslMode::Disable,
            SslMode::Prefer => WireSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => WireSslMode::Require,
        });

        let tls = if sslmode == SslMode::Disable || unix_only {
            client_config(sslmode, None)?
        } else {
            let store = match &roots {
                Roots::File(path) => Some(load_roots(path)?),
                Roots::System => Some(webpki_roots()),
                // verify-ca / verify-full need roots; the others verify nothing without a CA.
                Roots::Unset => match sslmode {
                    SslMode::VerifyCa | SslMode::VerifyFull => Some(webpki_roots()),
                    _ => None,
                },
            };
            client_config(sslmode, store)?
        };
        Ok(Self {
            config,
            sslmode,
            tls: MakeRustlsConnect::new(tls),
        })
    }

    pub(crate) async fn establish(&self) -> ConnectionResult<AsyncPgConnection> {
        let (client, connection) = self
            .config
            .connect(self.tls.clone())
            .await
            .map_err(|error| ConnectionError::BadConnection(self.describe(&error)))?;
        AsyncPgConnection::try_from_client_and_connection(client, connection).await
    }

    /// diesel-async's pool settings, with connections opened by `self`.
    pub(crate) fn manager_config(self) -> ManagerConfig<AsyncPgConnection> {
        let mut config = ManagerConfig::default();
        // The default (`Verified`) runs `SELECT 1` on every check-out: a
        // round trip added to each store call. `Fast` still refuses a
        // connection left in a transaction or broken; one the server
        // closed meanwhile fails its first query, is dropped as broken,
        // and the caller's retry (the workers') or the client's (a 503)
        // gets a fresh one.
        config.recycling_method = diesel_async::pooled_connection::RecyclingMethod::Fast;
        config.custom_setup = Box::new(move |_url| {
            let connector = self.clone();
            Box::pin(async move { connector.establish().await })
        });
        config
    }

    /// An operator-facing account of a failed connection: which `sslmode`
    /// was in force and, for TLS failures, what exactly failed.
    fn describe(&self, error: &tokio_postgres::Error) -> String {
        let mode = self.sslmode;
        let mut cause = std::error::Error::source(error);
        while let Some(current) = cause {
            let tls = current
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
                .and_then(|inner| inner.downcast_ref::<rustls::Error>());
            match tls {
                Some(rustls::Error::InvalidCertificate(reason)) => {
                    return format!(
                        "sslmode={mode}: certificate verification failed: {}",
                        describe_certificate_error(reason)
                    );
                }
                Some(other) => return format!("sslmode={mode}: TLS handshake failed: {other}"),
                None => {}
            }
            // tokio-postgres's words for an 'N' answer to the TLS request
            // (tests/tls.rs pins them).
            if current.to_string() == "server does not support TLS" {
                return format!("sslmode={mode} but the server does not support TLS");
            }
            cause = current.source();
        }
        // tokio-postgres's Display omits some causes (a server's refusal
        // shows as just "db error"), so append the chain.
        let mut text = format!("sslmode={mode}: {error}");
        let mut cause = std::error::Error::source(error);
        while let Some(current) = cause {
            let line = current.to_string();
            if !text.contains(&line) {
                text = format!("{text}: {line}");
            }
            cause = current.source();
        }
        text
    }
}

fn describe_certificate_error(error: &CertificateError) -> String {
    match error {
        CertificateError::UnknownIssuer => {
            "the server's certificate is not signed by a trusted CA \
            (check sslrootcert or the CA file)"
                .to_owned()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("the server's certificate does not name the host: {error}")
        }
        other => other.to_string(),
    }
}

/// The URL split into what tokio-postgres parses and the two parameters it
/// doesn't (or, for `sslmode`, only partly) understand.
struct TlsParams {
    rest: String,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

impl TlsParams {
    fn split(url: &str) -> Result<Self, Error> {
        // Same boundaries as tokio-postgres's parser: the credentials run to
        // the first '@', and the query starts at the first '?' after them.
        let authority = url.find("://").map_or(0, |at| at + 3);
        let after_credentials = url[authority..]
            .find('@')
            .map_or(authority, |at| authority + at + 1);
        let mut params = Self {
            rest: url.to_owned(),
            sslmode: None,
            sslrootcert: None,
        };
        let Some(query_at) = url[after_credentials..].find('?') else {
            return Ok(params);
        };
        let (base, query) = url.split_at(after_credentials + query_at);
        let mut kept = Vec::new();
        for pair in query[1..].split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match percent_decode(key)?.as_str() {
                "sslmode" => params.sslmode = Some(percent_decode(value)?),
                "sslrootcert" => params.sslrootcert = Some(percent_decode(value)?),
                // Anything else goes to tokio-postgres verbatim, errors included.
                _ => kept.push(pair),
            }
        }
        params.rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok(params)
    }
}

fn percent_decode(text: &str) -> Result<String, Error> {
    String::from_utf8(crate::url::percent_decode(text))
        .map_err(|_| Error::InvalidUrl("a URL parameter is not valid UTF-8".into()))
}

fn webpki_roots() -> RootCertStore {
    webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect()
}

fn load_roots(path: &Path) -> Result<RootCertStore, Error> {
    let unusable =
        |why: String| Error::Connect(format!("CA file {} is unusable: {why}", path.display()));
    let mut store = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|error| unusable(error.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|error| unusable(error.to_string()))?;
        store
            .add(cert)
            .map_err(|error| unusable(error.to_string()))?;
    }
    if store.is_empty() {
        return Err(unusable("it holds no PEM certificate".into()));
    }
    Ok(store)
}

/// rustls with the ring provider, named here rather than taken from the
/// process default so the store works whoever installed what.
fn client_config(sslmode: SslMode, roots: Option<RootCertStore>) -> Result<ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|error| Error::Connect(format!("TLS set-up failed: {error}")))?;
    let mut config = match (sslmode, roots) {
        (SslMode::VerifyFull, Some(roots)) => {
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        (_, roots) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(LibpqVerifier {
                // verify-full always has roots; this arm sees the weaker modes.
                roots: roots.map(Arc::new),
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
    };
    // Postgres 17's direct TLS negotiation requires this ALPN; older servers ignore it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(config)
}

/// The weaker libpq checks: with roots, the chain (verify-ca, or prefer and
/// require given a CA), without, nothing (require: encrypt, don't
/// authenticate). The handshake signatures are checked either way.
#[derive(Debug)]
struct LibpqVerifier {
    roots: Option<Arc<RootCertStore>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for LibpqVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connector(url: &str, options: &StoreOptions) -> Result<PgConnector, Error> {
        PgConnector::new(url, options)
    }

    #[test]
    fn takes_our_parameters_out_and_keeps_the_rest() {
        let params = TlsParams::split(
            "postgres://u:p%40?x@h:5432/db?options=-csearch_path%3Ds&sslmode=verify-full\
             &sslrootcert=%2Fetc%2Fca.pem&application_name=a",
        )
        .unwrap();
        assert_eq!(
            params.rest,
            "postgres://u:p%40?x@h:5432/db?options=-csearch_path%3Ds&application_name=a"
        );
        assert_eq!(params.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(params.sslrootcert.as_deref(), Some("/etc/ca.pem"));

        let params = TlsParams::split("postgres://h/db?sslmode=require").unwrap();
        assert_eq!(params.rest, "postgres://h/db");
        let params = TlsParams::split("postgres://h/db").unwrap();
        assert_eq!(
            (params.rest.as_str(), params.sslmode),
            ("postgres://h/db", None)
        );
    }

    #[test]
    fn the_url_wins_over_the_default_mode() {
        let options = StoreOptions {
            default_sslmode: SslMode::VerifyFull,
            ..StoreOptions::default()
        };
        let url = "postgres://h/db?sslmode=disable";
        assert_eq!(connector(url, &options).unwrap().sslmode, SslMode::Disable);
        let url = "postgres://h/db";
        assert_eq!(
            connector(url, &options).unwrap().sslmode,
            SslMode::VerifyFull
        );
        assert_eq!(
            connector(url, &StoreOptions::default()).unwrap().sslmode,
            SslMode::Prefer
        );
    }

    #[test]
    fn maps_to_what_tokio_postgres_enforces() {
        let wire = |mode: &str| {
            connector(
                &format!("postgres://h/db?sslmode={mode}"),
                &StoreOptions::default(),
            )
            .unwrap()
            .config
            .get_ssl_mode()
        };
        assert_eq!(wire("disable"), WireSslMode::Disable);
        assert_eq!(wire("prefer"), WireSslMode::Prefer);
        assert_eq!(wire("require"), WireSslMode::Require);
        assert_eq!(wire("verify-ca"), WireSslMode::Require);
        assert_eq!(wire("verify-full"), WireSslMode::Require);
        // A Unix socket has no TLS in Postgres, whatever the mode.
        let url = "postgres:///db?host=%2Fvar%2Frun%2Fpostgresql&sslmode=verify-full";
        let unix = connector(url, &StoreOptions::default()).unwrap();
        assert_eq!(unix.config.get_ssl_mode(), WireSslMode::Disable);
    }

    #[test]
    fn refuses_bad_settings_by_name() {
        let error = connector("postgres://h/db?sslmode=verify", &StoreOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("sslmode=verify"), "{error}");
        let error = connector(
            "postgres://h/db?sslmode=require&sslrootcert=system",
            &StoreOptions::default(),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(error.contains("sslrootcert=system"), "{error}");
        let url = "postgres://h/db?sslrootcert=system";
        let system = connector(url, &StoreOptions::default()).unwrap();
        assert_eq!(system.sslmode, SslMode::VerifyFull);

        let options = StoreOptions {
            tls_ca_file: Some("/nonexistent/ca.pem".into()),
            ..StoreOptions::default()
        };
        let error = connector("postgres://h/db?sslmode=verify-full", &options)
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("/nonexistent/ca.pem"), "{error}");
        // A CA file is only read when TLS is on.
        assert!(connector("postgres://h/db?sslmode=disable", &options).is_ok());
    }
}
