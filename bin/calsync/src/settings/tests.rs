//! `ServeArgs` parsed as the command line would, then validated.

use super::*;
use clap::Parser;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    serve: ServeArgs,
}

/// A file holding `content`, for the `*_FILE` settings.
fn file(content: &str) -> String {
    let path = std::env::temp_dir().join(format!(
        "calsync-settings-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, content).unwrap();
    path.to_string_lossy().into_owned()
}

fn settings(args: &[&str]) -> Result<Settings, String> {
    let mut argv = vec!["calsync"];
    argv.extend_from_slice(args);
    Args::try_parse_from(argv)
        .map_err(|e| e.to_string())?
        .serve
        .settings()
}

#[test]
fn development_needs_nothing_and_generates_its_secrets() {
    let s = settings(&[]).unwrap();
    assert!(!s.production);
    assert!(matches!(s.google, GoogleTarget::Emulator));
    assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
    let token = s.generated_api_token.expect("a generated token");
    assert!(s.api_tokens.accepts(&token));
    assert_eq!(s.retention_days, 180);
    assert_eq!(s.default_calendar.unwrap().as_str(), "primary");
}

#[test]
fn production_names_each_missing_setting() {
    let key = file(r#"{"type":"service_account"}"#);
    let key = key.as_str();
    let secret = file("0123456789abcdef0\n");
    let tokens = file("token-0123456789abcdef\n");
    let error = settings(&["--env", "production"]).err().unwrap();
    assert!(error.contains("GOOGLE_SERVICE_ACCOUNT_JSON"), "{error}");
    let error = settings(&[
        "--env",
        "production",
        "--google-service-account-json-file",
        key,
    ])
    .err()
    .unwrap();
    assert!(error.contains("WEBHOOK_BASE_URL"), "{error}");
    let base = [
        "--env",
        "production",
        "--google-service-account-json-file",
        key,
        "--webhook-base-url",
    ];
    let error = settings(&[&base[..], &["http://calsync.example.com"]].concat())
        .err()
        .unwrap();
    assert!(error.contains("https"), "{error}");
    let error = settings(&[&base[..], &["https://calsync.example.com"]].concat())
        .err()
        .unwrap();
    assert!(error.contains("WEBHOOK_SECRET"), "{error}");
    let with_secret = [
        &base[..],
        &[
            "https://calsync.example.com",
            "--webhook-secret-file",
            &secret,
        ],
    ]
    .concat();
    let error = settings(&with_secret).err().unwrap();
    assert!(error.contains("CALSYNC_API_TOKENS"), "{error}");
    let with_tokens = [&with_secret[..], &["--api-tokens-file", &tokens]].concat();
    let error = settings(&with_tokens).err().unwrap();
    assert!(error.contains("CALSYNC_SECRETS_KEY"), "{error}");
    let ring = file(&format!("{KEY_K2}\n"));
    let complete = [&with_tokens[..], &["--secrets-key-file", &ring]].concat();
    let s = settings(&complete).unwrap();
    assert!(s.production && s.generated_api_token.is_none() && s.default_calendar.is_none());
    assert!(!s.development_secrets_key);
}

/// Two key-ring entries (32 bytes of 0x01 and of 0x02, base64).
const KEY_K1: &str = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const KEY_K2: &str = "k2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

#[test]
fn the_change_feed_and_webhook_settings_have_their_defaults_and_bounds() {
    use calsync_domain::ports::SecretKeeper;
    let s = settings(&[]).unwrap();
    assert_eq!(s.changes_retention_days, 7);
    assert_eq!(
        s.services_config("x".into(), std::sync::Arc::new(calsync_worker::TokioTimer))
            .changes_retention_days,
        7
    );
    assert!(s.webhook_allowed_hosts.is_empty());
    // Development without a key: the public development key, flagged so
    // the server warns.
    assert!(s.development_secrets_key);
    let secret = s.secret_keeper.new_signing_secret().unwrap();
    let sealed = s.secret_keeper.seal(&secret).unwrap();
    assert!(sealed.0.starts_with("v1.dev."), "{sealed:?}");
    for days in ["1", "3650"] {
        let s = settings(&["--changes-retention-days", days]).unwrap();
        assert_eq!(s.changes_retention_days.to_string(), days);
    }
    let s = settings(&[
        "--webhook-allowed-hosts",
        " hooks.internal, 10.0.0.7 ,[fd00::1],,",
    ])
    .unwrap();
    assert_eq!(
        s.webhook_allowed_hosts,
        ["hooks.internal", "10.0.0.7", "[fd00::1]"]
    );
    // A ring in a file, one key a line: the first seals, both open.
    let ring = file(&format!("{KEY_K2}\n{KEY_K1}\n"));
    let s = settings(&["--secrets-key-file", &ring]).unwrap();
    assert!(!s.development_secrets_key);
    let sealed = s.secret_keeper.seal(&secret).unwrap();
    assert!(sealed.0.starts_with("v1.k2."), "{sealed:?}");
    assert_eq!(s.secret_keeper.open(&sealed).unwrap(), secret);
}

#[test]
fn a_bad_key_ring_is_named_without_showing_a_key() {
    for ring in [
        "k1:AQEB",
        "k1",
        "k1:not base64!",
        "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=,k1:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=",
        "",
    ] {
        let path = file(ring);
        let error = settings(&["--secrets-key-file", &path]).err().unwrap();
        assert!(error.contains("CALSYNC_SECRETS_KEY"), "{ring}: {error}");
        assert!(
            !error.contains("AQEB") && !error.contains("AgIC"),
            "{error}"
        );
    }
    let error = settings(&["--secrets-key", KEY_K1]).err().unwrap();
    assert!(error.contains("unexpected argument"), "{error}");
}

#[test]
fn secrets_are_never_flags() {
    for flag in [
        "--webhook-secret",
        "--api-tokens",
        "--google-service-account-json",
    ] {
        let error = settings(&[flag, "0123456789abcdef0123"]).err().unwrap();
        assert!(error.contains("unexpected argument"), "{flag}: {error}");
    }
    let tokens = file("first-token-0123456789\nsecond-token-0123456789\n");
    let s = settings(&["--api-tokens-file", &tokens]).unwrap();
    assert!(s.api_tokens.accepts("second-token-0123456789"));
    assert!(s.generated_api_token.is_none());
}

#[test]
fn a_separate_emulator_is_development_only_and_local() {
    let s = settings(&["--emulator-url", "http://127.0.0.1:8085/"]).unwrap();
    assert!(
        matches!(&s.google, GoogleTarget::ExternalEmulator { api_base_url }
            if api_base_url == "http://127.0.0.1:8085/calendar/v3/")
    );
    // A service-account key for the emulator does not demand https webhooks.
    let key = file(r#"{"type":"service_account"}"#);
    let s = settings(&[
        "--emulator-url",
        "http://localhost:9000",
        "--google-service-account-json-file",
        &key,
        "--webhook-base-url",
        "http://127.0.0.1:8080",
    ])
    .unwrap();
    assert!(
        matches!(&s.google, GoogleTarget::ServiceAccount { api_base_url, .. }
            if api_base_url == "http://localhost:9000/calendar/v3/")
    );
    for bad in ["http://emulator.internal:8085", "https://127.0.0.1:8085"] {
        let error = settings(&["--emulator-url", bad]).err().unwrap();
        assert!(error.contains("CALSYNC_EMULATOR_URL"), "{error}");
    }
    let error = settings(&[
        "--env",
        "production",
        "--emulator-url",
        "http://127.0.0.1:1",
    ])
    .err()
    .unwrap();
    assert!(error.contains("CALSYNC_EMULATOR_URL"), "{error}");
    assert_eq!(settings(&[]).unwrap().lease_ttl, Duration::from_secs(15));
    assert_eq!(
        settings(&[]).unwrap().outbox_retry.read_only_probe,
        Duration::from_secs(300)
    );
    assert_eq!(
        settings(&["--read-only-probe-secs", "2"])
            .unwrap()
            .outbox_retry
            .read_only_probe,
        Duration::from_secs(2)
    );
    let error = settings(&["--lease-ttl-secs", "1"]).err().unwrap();
    assert!(error.contains("CALSYNC_LEASE_TTL_SECS"), "{error}");
}

#[test]
fn every_environment_variable_is_documented() {
    let doc = include_str!("../../../../docs/CALENDAR_ENV_VARS.md");
    let command = <Args as clap::CommandFactory>::command();
    let mut checked = 0;
    for arg in command.get_arguments() {
        if let Some(env) = arg.get_env() {
            let name = env.to_string_lossy();
            assert!(
                doc.contains(&format!("| `{name}` |")),
                "{name} is missing from docs/CALENDAR_ENV_VARS.md"
            );
            // A default the code has must be the one the table shows.
            if let [default] = arg.get_default_values()
                && !default.is_empty()
            {
                let default = default.to_string_lossy();
                assert!(
                    doc.contains(&format!("| `{name}` | `{default}`")),
                    "docs/CALENDAR_ENV_VARS.md does not give {name}'s default `{default}`"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} variables found");
}

#[test]
fn bad_values_are_named() {
    let short = file("short");
    for (args, name) in [
        (vec!["--env", "staging"], "CALSYNC_ENV"),
        (vec!["--bind", "localhost"], "CALSYNC_BIND"),
        (vec!["--database-url", "mysql://x"], "DATABASE_URL"),
        (vec!["--cleanup-hour", "24"], "CALSYNC_CLEANUP_HOUR"),
        (vec!["--channel-ttl-secs", "0"], "CALSYNC_CHANNEL_TTL_SECS"),
        (vec!["--send-updates", "loud"], "CALSYNC_SEND_UPDATES"),
        (vec!["--log-level", "loud"], "CALSYNC_LOG_LEVEL"),
        (vec!["--webhook-secret-file", &short], "WEBHOOK_SECRET"),
        (
            vec!["--webhook-secret-file", "/no/such/file"],
            "WEBHOOK_SECRET_FILE",
        ),
        (
            vec!["--write-wait-secs", "100000000000"],
            "CALSYNC_WRITE_WAIT_SECS",
        ),
        (
            vec!["--trusted-proxies", "10.0.0.0/99"],
            "CALSYNC_TRUSTED_PROXIES",
        ),
        (
            vec!["--outbox-max-attempts", "0"],
            "CALSYNC_OUTBOX_MAX_ATTEMPTS",
        ),
        (
            vec!["--outbox-retry-base-ms", "0"],
            "CALSYNC_OUTBOX_RETRY_BASE_MS",
        ),
        (vec!["--sync-rest-ms", "60001"], "CALSYNC_SYNC_REST_MS"),
        (
            vec!["--read-only-probe-secs", "0"],
            "CALSYNC_READ_ONLY_PROBE_SECS",
        ),
        (
            vec!["--changes-retention-days", "0"],
            "CALSYNC_CHANGES_RETENTION_DAYS",
        ),
        (
            vec!["--changes-retention-days", "3651"],
            "CALSYNC_CHANGES_RETENTION_DAYS",
        ),
        (
            vec!["--webhook-allowed-hosts", "https://hooks.internal"],
            "CALSYNC_WEBHOOK_ALLOWED_HOSTS",
        ),
        (
            vec!["--webhook-allowed-hosts", "hooks.internal:8443"],
            "CALSYNC_WEBHOOK_ALLOWED_HOSTS",
        ),
    ] {
        let error = settings(&args)
            .err()
            .unwrap_or_else(|| panic!("{args:?} was accepted"));
        assert!(error.contains(name), "{args:?}: {error}");
    }
}
