//! A configuration file layered with the environment, the twelve-factor way, read into
//! `Settings` by figment and made into a working layer: the `Settings` docs' recipe, run.
#![allow(clippy::result_large_err)] // figment's own error type, as figment returns it

use crate::common;

use common::{api_client, get, ApiServer, TokenServer, CLIENT_ID, CLIENT_SECRET};
use figment::providers::{Env, Format, Toml};
use figment::{Figment, Jail};
use tower_client_credentials::{ClientCredentialsLayer, Settings};

/// `app.toml` holds an `[auth]` table; `APP_AUTH__<KEY>` variables replace its keys.
fn read(jail: &mut Jail, token_url: &str) -> figment::Result<Settings> {
    jail.create_file(
        "app.toml",
        &format!(
            r#"
            [auth]
            token_url = "{token_url}"
            client_id = "{CLIENT_ID}"
            client_secret = "the file's secret, replaced"
            scope = "orders:read"
            refresh_ahead = "2m"
            "#
        ),
    )?;
    jail.set_env("APP_AUTH__CLIENT_SECRET", CLIENT_SECRET);
    jail.set_env("APP_AUTH__SCOPE", "orders:read orders:write");
    jail.set_env("APP_AUTH__REQUEST_TIMEOUT", "5s");
    Figment::new()
        .merge(Toml::file("app.toml"))
        .merge(Env::prefixed("APP_").split("__"))
        .extract_inner("auth")
}

#[tokio::test]
async fn a_toml_file_with_environment_overrides_makes_a_working_layer() {
    let tokens = TokenServer::start().await;
    let api = ApiServer::start().await;
    let mut settings = None;
    Jail::expect_with(|jail| {
        settings = Some(read(jail, &tokens.url)?);
        Ok(())
    });
    let config = settings.unwrap().into_config().unwrap();
    let layer = ClientCredentialsLayer::new(config);

    let (status, authorization) = get(&api_client(&layer), &api.url).await.unwrap();

    assert_eq!((status, authorization.as_str()), (200, "Bearer token-1"));
    let received = &tokens.received()[0];
    assert_eq!(received.param("scope"), Some("orders:read orders:write"), "the variable wins");
    let (id, secret) = received.basic.clone().unwrap();
    assert_eq!((id.as_str(), secret.as_str()), (CLIENT_ID, CLIENT_SECRET));
}

#[test]
fn a_misspelt_key_in_the_file_is_an_error_naming_it() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "app.toml",
            "[auth]\ntoken_url = \"https://a.example/t\"\nclient_id = \"c\"\nrefresh_ahaed = \"2m\"\n",
        )?;
        let error = Figment::new()
            .merge(Toml::file("app.toml"))
            .extract_inner::<Settings>("auth")
            .unwrap_err();
        assert!(error.to_string().contains("refresh_ahaed"), "{error}");
        Ok(())
    });
}
