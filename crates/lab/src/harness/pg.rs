//! A fresh Postgres schema per run, so runs never share rows. The store
//! makes and drops it (the lab writes no SQL of its own).

use calsync_store::StoreOptions;

/// The database URL the server gets, and the schema made for it, if any.
pub struct Schema {
    pub url: String,
    made: Option<(String, String)>,
}

impl Schema {
    /// The schema's name when this run made it.
    pub fn name(&self) -> Option<&str> {
        self.made.as_ref().map(|(_, name)| name.as_str())
    }
}

/// A new schema in `base`, or `base` itself when it already names one
/// (`options=-csearch_path%3D...`): the caller chose where the run goes.
pub async fn fresh_schema(base: &str) -> Result<Schema, String> {
    if base.contains("search_path") {
        return Ok(Schema {
            url: base.to_owned(),
            made: None,
        });
    }
    let (url, name) = calsync_store::create_scratch_schema(base, &StoreOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    Ok(Schema {
        url,
        made: Some((base.to_owned(), name)),
    })
}

/// A fresh schema for a Postgres URL ([`fresh_schema`]); none for SQLite,
/// whose file is the run's own.
pub async fn fresh_schema_for(url: &calsync_store::DatabaseUrl) -> Result<Option<Schema>, String> {
    match url {
        calsync_store::DatabaseUrl::Postgres(base) => fresh_schema(base).await.map(Some),
        calsync_store::DatabaseUrl::Sqlite(_) => Ok(None),
    }
}

pub async fn drop_schema(schema: &Schema) -> Result<(), String> {
    let Some((base, name)) = &schema.made else {
        return Ok(());
    };
    calsync_store::drop_scratch_schema(base, name, &StoreOptions::default())
        .await
        .map_err(|e| e.to_string())
}
