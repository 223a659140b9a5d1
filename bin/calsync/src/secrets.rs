//! `calsync secrets ...`: the key ring that seals secrets at rest
//! (`CALSYNC_SECRETS_KEY`): a new key, and re-sealing everything under the
//! ring's first key so an old key can leave the ring.

use calsync_delivery::SealingKeeper;
use calsync_domain::services::secrets::ResealService;
use clap::Subcommand;

use crate::error::CommandError;

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Re-seal every secret at rest (grants' refresh tokens, webhook
    /// signing secrets, authorizations' verifiers) under the first key of
    /// CALSYNC_SECRETS_KEY, with the same settings as `serve`. Safe while
    /// servers run; prints a JSON summary, and exits non-zero if a value
    /// does not open or could not be moved.
    Reseal {
        /// Values read per page.
        #[arg(long, default_value_t = calsync_domain::services::secrets::DEFAULT_RESEAL_PAGE)]
        page_size: u32,
        #[command(flatten)]
        settings: Box<calsync::settings::ServeArgs>,
    },
    /// Print a new key, `<key id>:<base64 of 32 random bytes>`, to put
    /// first in CALSYNC_SECRETS_KEY.
    GenerateKey {
        /// The new key's id: 1 to 32 letters, digits, '-' or '_', not
        /// already in the ring.
        #[arg(long, default_value = "k1")]
        id: String,
    },
}

pub async fn run(command: SecretsCommand) -> Result<(), CommandError> {
    match command {
        SecretsCommand::GenerateKey { id } => {
            println!("{}", SealingKeeper::generate_key_with_id(&id)?);
            Ok(())
        }
        SecretsCommand::Reseal {
            page_size,
            settings,
        } => reseal(page_size, *settings).await,
    }
}

async fn reseal(page_size: u32, args: calsync::settings::ServeArgs) -> Result<(), CommandError> {
    let settings = args.settings()?;
    if settings.development_secrets_key {
        return Err("CALSYNC_SECRETS_KEY (or CALSYNC_SECRETS_KEY_FILE) is not set: re-sealing needs the key ring, the new key first and the old ones after it".into());
    }
    let store = calsync_store::connect(&settings.database, &settings.store_options).await?;
    let keeper = settings.secret_keeper.clone();
    let report = ResealService::new(store, keeper.clone())
        .with_page_size(page_size)
        .reseal()
        .await?;
    let mut summary = serde_json::to_value(&report).unwrap_or_default();
    if let Some(fields) = summary.as_object_mut() {
        fields.insert("sealingKeyId".into(), keeper.sealing_key_id().into());
    }
    println!("{summary}");
    if !report.unopenable.is_empty() {
        return Err(format!(
            "{} value(s) do not open with any key of CALSYNC_SECRETS_KEY (listed above by column and row; put their key back in the ring after the first)",
            report.unopenable.len()
        )
        .into());
    }
    if report.left_behind > 0 {
        return Err(format!(
            "{} value(s) kept changing under another key (is a server still running the old key ring?): run it again once every server has the new ring",
            report.left_behind
        )
        .into());
    }
    Ok(())
}
